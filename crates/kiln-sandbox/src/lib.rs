//! Process isolation for Kiln's execution environments.
//!
//! This crate knows nothing about Lambda: it takes a [`SandboxSpec`] (program, arguments,
//! environment, mounts, limits, where stdout and stderr go) and returns a [`Sandbox`] handle to
//! wait for, kill, freeze and account. It is the only crate with `unsafe` code, all of it in
//! `sys.rs` (and two small calls in `cgroup.rs` and `spawn.rs`), each block with a `SAFETY:`
//! comment.
//!
//! What a machine allows is probed at start-up ([`Sandboxer::start`]), by trying rather than
//! guessing, and reported as a [`Tier`]:
//!
//! | tier | isolation | limits |
//! | --- | --- | --- |
//! | `namespaces+cgroup-v2` / `-v1` | mount, PID, IPC, UTS namespaces; private read-only root; unprivileged user | memory (OOM kill), CPU quota, pids, freezer |
//! | `namespaces` | as above | none: timeouts only |
//! | `plain` | none: a child process of Kiln, run as Kiln's user (development only) | none: timeouts only |

mod cgroup;
mod peer;
mod spawn;
mod sys;

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, mpsc};

use tokio::io::unix::AsyncFd;
use tokio::sync::watch;

pub use cgroup::CgroupVersion;
pub use sys::{ExitStatus, raise_open_files_limit, set_nonblocking};

use cgroup::{Cgroup, CgroupLimits, CgroupParent, CgroupPool};

/// Why a sandbox could not be started.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error("invalid sandbox spec: {0}")]
    InvalidSpec(String),
    #[error("sandbox set-up failed while {step}: {source}")]
    Setup {
        step: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("cgroup set-up failed: {0}")]
    Cgroup(#[source] std::io::Error),
    #[error("i/o error: {0}")]
    Io(#[source] std::io::Error),
    #[error("the sandbox spawner is gone")]
    SpawnerGone,
}

/// Something to make visible inside the sandbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mount {
    /// A host file or directory at `target`, read-only unless `writable`.
    Bind {
        source: PathBuf,
        target: PathBuf,
        writable: bool,
    },
    /// A private, size-limited, writable tmpfs.
    Tmpfs { target: PathBuf, size_bytes: u64 },
    /// A symbolic link `link` pointing to `target`.
    Symlink { target: PathBuf, link: PathBuf },
    /// A [`TmpVolume`] at `target`, writable (see [`TmpVolume::mount_at`]).
    Volume {
        volume: VolumeHandle,
        target: PathBuf,
    },
}

/// A detached filesystem that sandboxes attach (compared by identity).
#[derive(Debug, Clone)]
pub struct VolumeHandle(Arc<OwnedFd>);

impl PartialEq for VolumeHandle {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for VolumeHandle {}

/// Resource limits of one sandbox.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    pub memory_bytes: u64,
    /// CPU in cores (1.0 = one CPU); `None` for no quota.
    pub cpu_cores: Option<f64>,
    pub pids: u32,
    pub open_files: u32,
}

/// What to run and how.
#[derive(Debug)]
pub struct SandboxSpec {
    /// A name for logs and for the sandbox's cgroup (letters, digits, `-`).
    pub id: String,
    /// The program, as a path inside the sandbox (or on the host, in the plain tier).
    pub program: PathBuf,
    pub args: Vec<String>,
    /// The complete environment; nothing is inherited.
    pub env: Vec<(String, String)>,
    pub cwd: PathBuf,
    /// Ignored in the plain tier, where the program sees the host's filesystem.
    pub mounts: Vec<Mount>,
    pub limits: Limits,
    pub stdout: OwnedFd,
    pub stderr: OwnedFd,
}

/// How strongly this machine lets Kiln isolate functions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tier {
    NamespacesCgroupV2,
    NamespacesCgroupV1,
    Namespaces,
    Plain,
}

impl Tier {
    /// A short name for logs and `kiln doctor`.
    pub fn name(self) -> &'static str {
        match self {
            Tier::NamespacesCgroupV2 => "namespaces+cgroup-v2",
            Tier::NamespacesCgroupV1 => "namespaces+cgroup-v1",
            Tier::Namespaces => "namespaces (no cgroups)",
            Tier::Plain => "plain processes",
        }
    }

    /// Whether functions run isolated from the host and each other.
    pub fn isolates(self) -> bool {
        self != Tier::Plain
    }

    /// Whether memory and CPU limits are enforced.
    pub fn limits(self) -> bool {
        matches!(self, Tier::NamespacesCgroupV1 | Tier::NamespacesCgroupV2)
    }
}

/// Settings of the sandboxer.
#[derive(Debug, Clone)]
pub struct SandboxerConfig {
    /// An empty directory each sandbox mounts its private root on (in its own mount
    /// namespace, so one directory serves every sandbox).
    pub root_mount_point: PathBuf,
    /// User and group the sandboxed program runs as.
    pub uid: u32,
    pub gid: u32,
    /// Use plain processes even where isolation is possible.
    pub force_plain: bool,
}

/// What start-up found, for logs and `kiln doctor`.
#[derive(Debug, Clone)]
pub struct Capabilities {
    pub tier: Tier,
    pub running_as_root: bool,
    /// Why a stronger tier was not available.
    pub limitations: Vec<String>,
}

/// Starts sandboxes; one per process.
#[derive(Debug)]
pub struct Sandboxer {
    config: SandboxerConfig,
    capabilities: Capabilities,
    cgroups: Option<Arc<CgroupPool>>,
    spawner: Option<Mutex<mpsc::Sender<spawn::SpawnJob>>>,
    /// Whether `/tmp` volumes can be detached mounts (the new mount API, Linux 5.2+).
    detached_volumes: bool,
}

impl Sandboxer {
    /// Probes the machine and prepares what sandboxes need (cgroup parent, spawner thread).
    pub fn start(config: SandboxerConfig) -> Self {
        let running_as_root = sys::geteuid() == 0;
        let mut limitations = Vec::new();
        let mut cgroups = None;
        let mut spawner = None;
        let mut version = None;

        if config.force_plain {
            limitations.push("isolation disabled by configuration".to_owned());
        } else if !running_as_root {
            limitations.push(
                "not running as root: namespaces and cgroups need root (rootless user-namespace \
                 isolation is not implemented yet)"
                    .to_owned(),
            );
        } else {
            match probe_namespaces(&config.root_mount_point) {
                Ok(()) => match spawn::start_spawner() {
                    Ok(sender) => spawner = Some(Mutex::new(sender)),
                    Err(error) => limitations.push(format!("cannot start the spawner: {error}")),
                },
                Err(reason) => limitations.push(reason),
            }
            if spawner.is_some() {
                match probe_cgroups() {
                    Ok((found, parent)) => {
                        version = Some(found);
                        let pool = Arc::new(CgroupPool::new(parent));
                        pool.refill();
                        cgroups = Some(pool);
                    }
                    Err(reason) => limitations.push(reason),
                }
            }
        }
        let detached_volumes = spawner.is_some()
            && sys::detached_tmpfs(1 << 20)
                .and_then(|volume| sys::clone_detached(&volume))
                .is_ok();
        let tier = match (&spawner, &version) {
            (None, _) => Tier::Plain,
            (Some(_), Some(CgroupVersion::V1)) => Tier::NamespacesCgroupV1,
            (Some(_), Some(CgroupVersion::V2)) => Tier::NamespacesCgroupV2,
            (Some(_), None) => Tier::Namespaces,
        };
        Self {
            config,
            capabilities: Capabilities {
                tier,
                running_as_root,
                limitations,
            },
            cgroups,
            spawner,
            detached_volumes,
        }
    }

    /// What this machine gives.
    pub fn capabilities(&self) -> &Capabilities {
        &self.capabilities
    }

    /// Starts `spec` in a new sandbox.
    pub async fn spawn(&self, spec: SandboxSpec) -> Result<Sandbox, SandboxError> {
        match &self.spawner {
            Some(spawner) => self.spawn_isolated(spawner, spec).await,
            None => spawn_plain(spec),
        }
    }

    async fn spawn_isolated(
        &self,
        spawner: &Mutex<mpsc::Sender<spawn::SpawnJob>>,
        spec: SandboxSpec,
    ) -> Result<Sandbox, SandboxError> {
        if !spec
            .id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            return Err(SandboxError::InvalidSpec(format!(
                "bad sandbox id {:?}",
                spec.id
            )));
        }
        let cgroup = match &self.cgroups {
            Some(pool) => Some(
                pool.take(CgroupLimits {
                    memory_bytes: spec.limits.memory_bytes,
                    cpu_cores: spec.limits.cpu_cores,
                    pids: spec.limits.pids,
                })
                .map_err(SandboxError::Cgroup)?,
            ),
            None => None,
        };
        let plan = spawn::ChildPlan::new(
            spec,
            &self.config.root_mount_point,
            cgroup.as_ref(),
            self.config.uid,
            self.config.gid,
        );
        let plan = match plan {
            Ok(plan) => plan,
            Err(error) => {
                if let Some(cgroup) = &cgroup {
                    cgroup.remove();
                }
                return Err(error);
            }
        };
        let (reply, answer) = tokio::sync::oneshot::channel();
        let sent = spawner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .send(spawn::SpawnJob { plan, reply });
        let started = match sent {
            Ok(()) => answer.await.unwrap_or(Err(SandboxError::SpawnerGone)),
            Err(_) => Err(SandboxError::SpawnerGone),
        };
        match started {
            Ok((pid, pidfd)) => Sandbox::watch(pid, pidfd, cgroup, Kill::PidFd),
            Err(error) => {
                if let Some(cgroup) = &cgroup {
                    cgroup.remove();
                }
                Err(error)
            }
        }
    }
}

impl Drop for Sandboxer {
    fn drop(&mut self) {
        if let Some(pool) = &self.cgroups {
            pool.remove();
        }
    }
}

/// Tries the namespace and mount calls a sandbox needs in a throw-away child.
fn probe_namespaces(root: &Path) -> Result<(), String> {
    std::fs::create_dir_all(root).map_err(|e| {
        format!(
            "cannot create the sandbox root mount point {}: {e}",
            root.display()
        )
    })?;
    let output = std::process::Command::new("/bin/sh")
        .arg("-c")
        .arg("exit 0")
        .output();
    if output.is_err() {
        return Err("cannot run /bin/sh to probe namespaces".to_owned());
    }
    let (read, write) = sys::pipe().map_err(|e| e.to_string())?;
    let root_c = std::ffi::CString::new(root.as_os_str().as_encoded_bytes())
        .map_err(|_| "bad root path".to_owned())?;
    match sys::clone3(
        (libc::CLONE_NEWNS | libc::CLONE_NEWPID | libc::CLONE_NEWIPC | libc::CLONE_NEWUTS) as u64,
    ) {
        Err(error) => Err(format!("cannot create namespaces: {error}")),
        Ok(sys::Cloned::Child) => {
            let result = sys::mount(None, c"/", None, libc::MS_REC | libc::MS_PRIVATE, None)
                .and_then(|()| {
                    sys::mount(
                        Some(c"tmpfs"),
                        &root_c,
                        Some(c"tmpfs"),
                        0,
                        Some(c"size=64k"),
                    )
                });
            let code: u8 = if result.is_ok() { 0 } else { 1 };
            sys::write_all(write.as_raw_fd(), &[code]);
            sys::exit_child(0)
        }
        Ok(sys::Cloned::Parent { pidfd }) => {
            drop(write);
            let mut answer = Vec::new();
            let _ = std::io::Read::read_to_end(&mut std::fs::File::from(read), &mut answer);
            for _ in 0..1000 {
                if !matches!(sys::try_wait(&pidfd), Ok(None)) {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            match answer.first() {
                Some(0) => Ok(()),
                _ => Err("cannot mount a private root inside a mount namespace".to_owned()),
            }
        }
    }
}

fn probe_cgroups() -> Result<(CgroupVersion, CgroupParent), String> {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").map_err(|e| e.to_string())?;
    let own = std::fs::read_to_string("/proc/self/cgroup").map_err(|e| e.to_string())?;
    let (version, hierarchies) = cgroup::discover(&mountinfo, &own).ok_or_else(|| {
        "no usable cgroup hierarchy with the memory, cpu and pids controllers".to_owned()
    })?;
    let parent = CgroupParent::create(&version, &hierarchies)
        .map_err(|e| format!("cannot create Kiln's cgroup: {e}"))?;
    Ok((version, parent))
}

/// Plain tier: an ordinary child process in its own process group.
fn spawn_plain(spec: SandboxSpec) -> Result<Sandbox, SandboxError> {
    use std::os::unix::process::CommandExt;
    let child = std::process::Command::new(&spec.program)
        .args(&spec.args)
        .env_clear()
        .envs(spec.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .current_dir(&spec.cwd)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::from(spec.stdout))
        .stderr(std::process::Stdio::from(spec.stderr))
        .process_group(0)
        .spawn()
        .map_err(|source| SandboxError::Setup {
            step: "executing the program",
            source,
        })?;
    let pid = child.id() as libc::pid_t;
    let pidfd = sys::pidfd_open(pid).map_err(SandboxError::Io)?;
    // The pidfd reaps it; std's handle must not.
    std::mem::forget(child);
    Sandbox::watch(pid, pidfd, None, Kill::ProcessGroup)
}

/// How to kill everything a sandbox started.
#[derive(Debug, Clone, Copy)]
enum Kill {
    /// Killing PID 1 of the sandbox's PID namespace kills the namespace.
    PidFd,
    /// Plain processes: the process group.
    ProcessGroup,
}

/// A running (or finished) sandbox.
#[derive(Debug)]
pub struct Sandbox {
    pid: libc::pid_t,
    pidfd: Arc<AsyncFd<OwnedFd>>,
    cgroup: Option<Cgroup>,
    kill: Kill,
    exit: watch::Receiver<Option<ExitStatus>>,
    /// Accounting read when the sandbox exited, before its cgroup was removed.
    final_stats: Arc<Mutex<Option<FinalStats>>>,
    frozen: Mutex<bool>,
    /// The cgroup's peak-memory file, opened on first use and re-read in place: it is read
    /// after every invocation, and a path walk and open each time cost more than the read.
    memory_peak_file: std::sync::OnceLock<Option<std::fs::File>>,
}

#[derive(Debug, Clone, Copy)]
struct FinalStats {
    memory_peak: Option<u64>,
    oom_killed: bool,
}

impl Sandbox {
    fn watch(
        pid: libc::pid_t,
        pidfd: OwnedFd,
        cgroup: Option<Cgroup>,
        kill: Kill,
    ) -> Result<Self, SandboxError> {
        let pidfd = Arc::new(sys::async_fd(pidfd).map_err(SandboxError::Io)?);
        let (sender, exit) = watch::channel(None);
        let waiter = Arc::clone(&pidfd);
        let cleanup = cgroup.clone();
        let final_stats = Arc::new(Mutex::new(None));
        let record = Arc::clone(&final_stats);
        tokio::spawn(async move {
            let status = loop {
                match waiter.readable().await {
                    Ok(mut guard) => match sys::try_wait(guard.get_inner()) {
                        Ok(Some(status)) => break status,
                        Ok(None) => guard.clear_ready(),
                        Err(error) => {
                            tracing::warn!(%error, pid, "waiting for a sandbox failed");
                            break ExitStatus::Signaled(libc::SIGKILL);
                        }
                    },
                    Err(error) => {
                        tracing::warn!(%error, pid, "polling a sandbox failed");
                        break ExitStatus::Signaled(libc::SIGKILL);
                    }
                }
            };
            if let Some(cgroup) = cleanup {
                // Read the accounting before the cgroup goes; whoever sees the exit sees it.
                *record
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(FinalStats {
                    memory_peak: cgroup.memory_peak(),
                    oom_killed: cgroup.oom_kills() > 0,
                });
                let _ = sender.send(Some(status));
                // Anything left (PID 1's exit already took its namespace with it).
                cgroup.kill_all();
                let _ = cgroup.set_frozen(false);
                tokio::task::spawn_blocking(move || cgroup.remove());
            } else {
                let _ = sender.send(Some(status));
            }
        });
        Ok(Self {
            pid,
            pidfd,
            cgroup,
            kill,
            exit,
            final_stats,
            frozen: Mutex::new(false),
            memory_peak_file: std::sync::OnceLock::new(),
        })
    }

    /// The host pid of the sandbox's first process.
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// Whether the loopback TCP connection from `peer` to `local` was made by a process of
    /// this sandbox (see the `peer` module). Plain processes are not isolated from each other
    /// in the first place, and may leave their process group: for them, always true.
    pub fn owns_connection(&self, peer: std::net::SocketAddr, local: std::net::SocketAddr) -> bool {
        match self.kill {
            Kill::PidFd => peer::tree_owns_connection(self.pid, peer, local),
            Kill::ProcessGroup => true,
        }
    }

    /// Waits until the sandbox's first process has exited.
    pub async fn wait(&self) -> ExitStatus {
        let mut exit = self.exit.clone();
        loop {
            if let Some(status) = *exit.borrow_and_update() {
                return status;
            }
            if exit.changed().await.is_err() {
                return ExitStatus::Signaled(libc::SIGKILL);
            }
        }
    }

    /// The exit status, if the sandbox has exited.
    pub fn exit_status(&self) -> Option<ExitStatus> {
        *self.exit.borrow()
    }

    /// Kills everything in the sandbox. Frozen processes are thawed so the kill lands.
    pub fn kill(&self) {
        match self.kill {
            Kill::PidFd => {
                let _ = sys::pidfd_send_signal(self.pidfd.get_ref(), libc::SIGKILL);
            }
            Kill::ProcessGroup => kill_group(self.pid),
        }
        if let Some(cgroup) = &self.cgroup {
            cgroup.kill_all();
            let _ = cgroup.set_frozen(false);
        }
    }

    /// Stops every process of the sandbox until [`Sandbox::thaw`] (no-op without cgroups).
    pub fn freeze(&self) -> std::io::Result<()> {
        let mut frozen = self
            .frozen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(cgroup) = &self.cgroup
            && !*frozen
        {
            cgroup.set_frozen(true)?;
            *frozen = true;
        }
        Ok(())
    }

    /// Resumes a frozen sandbox.
    pub fn thaw(&self) -> std::io::Result<()> {
        let mut frozen = self
            .frozen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(cgroup) = &self.cgroup
            && *frozen
        {
            cgroup.set_frozen(false)?;
            *frozen = false;
        }
        Ok(())
    }

    /// Changes the CPU quota (no-op without cgroups).
    pub fn set_cpu(&self, cores: Option<f64>) -> std::io::Result<()> {
        match &self.cgroup {
            Some(cgroup) => cgroup.set_cpu(cores),
            None => Ok(()),
        }
    }

    /// The sandbox's peak memory use in bytes: from the cgroup, or (without cgroups) the first
    /// process's peak resident set while it runs.
    pub fn memory_peak(&self) -> Option<u64> {
        if let Some(stats) = *self.final_stats() {
            return stats.memory_peak;
        }
        match &self.cgroup {
            Some(cgroup) => {
                use std::os::unix::fs::FileExt;
                let file = self
                    .memory_peak_file
                    .get_or_init(|| std::fs::File::open(cgroup.memory_peak_path()).ok())
                    .as_ref()?;
                let mut buffer = [0u8; 32];
                let read = file.read_at(&mut buffer, 0).ok()?;
                std::str::from_utf8(&buffer[..read])
                    .ok()?
                    .trim()
                    .parse()
                    .ok()
            }
            None => {
                let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid)).ok()?;
                let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
                let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
                Some(kib * 1024)
            }
        }
    }

    /// Whether the kernel's OOM killer killed a process of this sandbox.
    pub fn oom_killed(&self) -> bool {
        if let Some(stats) = *self.final_stats() {
            return stats.oom_killed;
        }
        self.cgroup
            .as_ref()
            .is_some_and(|cgroup| cgroup.oom_kills() > 0)
    }

    fn final_stats(&self) -> std::sync::MutexGuard<'_, Option<FinalStats>> {
        self.final_stats
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        if self.exit_status().is_none() {
            self.kill();
        }
    }
}

/// A private, size-limited scratch directory that outlives the sandboxes using it: a tmpfs
/// mounted on the host (in the isolated tiers; a plain directory in the plain tier) and bound
/// into a sandbox at `/tmp`. Lambda keeps `/tmp` when it restarts a runtime that timed out or
/// crashed; so does Kiln, by handing the volume to the restarted sandbox.
///
/// Where the new mount API is available the volume is a detached tmpfs, held by a descriptor
/// and attached inside each sandbox's own mount namespace: it is never mounted on the host, so
/// environments do not pile mounts into the server's namespace (which every new sandbox would
/// copy) and a killed server leaves nothing behind. Otherwise it is a tmpfs mounted under the
/// data directory, bind-mounted into the sandbox; in the plain tier, a directory.
#[derive(Debug)]
pub struct TmpVolume {
    kind: VolumeKind,
}

#[derive(Debug)]
enum VolumeKind {
    Detached(VolumeHandle),
    HostMount(PathBuf),
    Directory(PathBuf),
}

impl TmpVolume {
    /// Creates a volume of `size_bytes`; `dir` (which must not exist) is where it lives on the
    /// host if it has to.
    pub fn create(sandboxer: &Sandboxer, dir: PathBuf, size_bytes: u64) -> std::io::Result<Self> {
        if !sandboxer.capabilities.tier.isolates() {
            use std::os::unix::fs::PermissionsExt;
            std::fs::create_dir_all(&dir)?;
            // The sandbox user must be able to write its /tmp.
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o1777))?;
            return Ok(Self {
                kind: VolumeKind::Directory(dir),
            });
        }
        if sandboxer.detached_volumes {
            return Ok(Self {
                kind: VolumeKind::Detached(VolumeHandle(Arc::new(sys::detached_tmpfs(
                    size_bytes,
                )?))),
            });
        }
        std::fs::create_dir_all(&dir)?;
        if let Err(error) = sys::mount_tmpfs(&dir, size_bytes) {
            let _ = std::fs::remove_dir(&dir);
            return Err(error);
        }
        Ok(Self {
            kind: VolumeKind::HostMount(dir),
        })
    }

    /// How a sandbox mounts this volume at `target`.
    pub fn mount_at(&self, target: impl Into<PathBuf>) -> Mount {
        let target = target.into();
        match &self.kind {
            VolumeKind::Detached(volume) => Mount::Volume {
                volume: volume.clone(),
                target,
            },
            VolumeKind::HostMount(dir) | VolumeKind::Directory(dir) => Mount::Bind {
                source: dir.clone(),
                target,
                writable: true,
            },
        }
    }

    /// The volume's host directory, where it has one (the plain tier points `TMPDIR` at it).
    pub fn host_dir(&self) -> Option<&Path> {
        match &self.kind {
            VolumeKind::Detached(_) => None,
            VolumeKind::HostMount(dir) | VolumeKind::Directory(dir) => Some(dir),
        }
    }

    /// Removes volumes left under `parent` by a server that was killed.
    pub fn remove_leftovers(parent: &Path) {
        let Ok(entries) = std::fs::read_dir(parent) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let _ = sys::unmount(&path);
            let _ = std::fs::remove_dir_all(&path);
        }
    }
}

impl Drop for TmpVolume {
    fn drop(&mut self) {
        match &self.kind {
            VolumeKind::Detached(_) => {}
            VolumeKind::HostMount(dir) => {
                if let Err(error) = sys::unmount(dir) {
                    tracing::warn!(%error, dir = %dir.display(), "unmounting a /tmp volume failed");
                }
                let _ = std::fs::remove_dir_all(dir);
            }
            VolumeKind::Directory(dir) => {
                let _ = std::fs::remove_dir_all(dir);
            }
        }
    }
}

#[allow(unsafe_code)]
fn kill_group(pid: libc::pid_t) {
    // SAFETY: kill(2) of the process group this sandbox leads (created with process_group(0)).
    unsafe { libc::kill(-pid, libc::SIGKILL) };
}

#[cfg(test)]
mod tests;
