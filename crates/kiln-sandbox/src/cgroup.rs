//! Resource limits and accounting with cgroups, v1 (per-controller hierarchies) or v2
//! (unified), under a parent cgroup this process creates inside its own.
//!
//! Paths are discovered from `/proc/self/mountinfo` and `/proc/self/cgroup` rather than
//! assumed, and nothing is ever written outside our own parent (`kiln-<pid>`).

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The controllers Kiln uses in v1.
const V1_CONTROLLERS: [&str; 4] = ["memory", "cpu", "pids", "freezer"];
/// CFS period for CPU quotas.
const CPU_PERIOD_US: u64 = 100_000;

/// Which cgroup layout is in use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CgroupVersion {
    V1,
    V2,
}

/// The parent cgroup(s) under which sandboxes get their own.
#[derive(Debug, Clone)]
pub(crate) enum CgroupParent {
    /// One directory per controller.
    V1 {
        memory: PathBuf,
        cpu: PathBuf,
        pids: PathBuf,
        freezer: PathBuf,
    },
    V2 {
        dir: PathBuf,
    },
}

/// One sandbox's cgroup(s).
#[derive(Debug, Clone)]
pub(crate) enum Cgroup {
    V1 {
        memory: PathBuf,
        cpu: PathBuf,
        pids: PathBuf,
        freezer: PathBuf,
    },
    V2 {
        dir: PathBuf,
    },
}

/// Limits applied to one sandbox.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CgroupLimits {
    pub memory_bytes: u64,
    /// CPU in cores (1.0 = one CPU); `None` leaves CPU unlimited.
    pub cpu_cores: Option<f64>,
    pub pids: u32,
}

/// Where a controller's hierarchy is mounted and where this process sits in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Hierarchy {
    pub mount_point: PathBuf,
    pub own_path: String,
}

/// Finds the v1 hierarchies of `controllers` (keyed by controller) or the v2 hierarchy.
pub(crate) fn discover(
    mountinfo: &str,
    self_cgroup: &str,
) -> Option<(CgroupVersion, Vec<(String, Hierarchy)>)> {
    let mut v1 = Vec::new();
    let mut v2_mount = None;
    for line in mountinfo.lines() {
        // ID PARENT MAJ:MIN ROOT MOUNT_POINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPER_OPTIONS
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let mount_point = left.split(' ').nth(4).unwrap_or_default();
        let mut right = right.split(' ');
        let fstype = right.next().unwrap_or_default();
        let super_options = right.nth(1).unwrap_or_default();
        match fstype {
            "cgroup" => {
                for controller in super_options.split(',') {
                    if V1_CONTROLLERS.contains(&controller) {
                        v1.push((controller.to_owned(), PathBuf::from(unescape(mount_point))));
                    }
                }
            }
            "cgroup2" => v2_mount = Some(PathBuf::from(unescape(mount_point))),
            _ => {}
        }
    }
    let own = |wanted: &str| -> Option<String> {
        self_cgroup.lines().find_map(|line| {
            let mut fields = line.splitn(3, ':');
            let _id = fields.next()?;
            let controllers = fields.next()?;
            let path = fields.next()?;
            let matches = if wanted.is_empty() {
                controllers.is_empty()
            } else {
                controllers.split(',').any(|c| c == wanted)
            };
            matches.then(|| path.to_owned())
        })
    };
    if V1_CONTROLLERS
        .iter()
        .all(|controller| v1.iter().any(|(name, _)| name == controller))
    {
        let hierarchies = v1
            .into_iter()
            .filter_map(|(controller, mount_point)| {
                let own_path = own(&controller)?;
                Some((
                    controller,
                    Hierarchy {
                        mount_point,
                        own_path,
                    },
                ))
            })
            .collect::<Vec<_>>();
        if hierarchies.len() >= V1_CONTROLLERS.len() {
            return Some((CgroupVersion::V1, hierarchies));
        }
    }
    let mount_point = v2_mount?;
    let own_path = own("")?;
    let controllers = fs::read_to_string(mount_point.join("cgroup.controllers")).ok()?;
    let needed = ["memory", "cpu", "pids"];
    if needed
        .iter()
        .all(|controller| controller_listed(&controllers, controller))
    {
        return Some((
            CgroupVersion::V2,
            vec![(
                String::new(),
                Hierarchy {
                    mount_point,
                    own_path,
                },
            )],
        ));
    }
    None
}

fn controller_listed(controllers: &str, wanted: &str) -> bool {
    controllers.split_whitespace().any(|c| c == wanted)
}

/// Mount points in mountinfo escape spaces and a few other bytes as `\ooo`.
fn unescape(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        if bytes[index] == b'\\' && index + 3 < bytes.len() {
            let digits = std::str::from_utf8(&bytes[index + 1..index + 4]).unwrap_or("");
            if let Ok(value) = u8::from_str_radix(digits, 8) {
                out.push(value);
                index += 4;
                continue;
            }
        }
        out.push(bytes[index]);
        index += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn join_own(hierarchy: &Hierarchy) -> PathBuf {
    hierarchy
        .mount_point
        .join(hierarchy.own_path.trim_start_matches('/'))
}

/// How many sandboxers of this process use its `kiln-<pid>` parent. Several do in tests, which
/// run in parallel: the parent is removed only when the last one goes, and never while another
/// is creating it (the count's lock is held for both).
static PARENT_USERS: std::sync::Mutex<usize> = std::sync::Mutex::new(0);

fn lock_parent_users() -> std::sync::MutexGuard<'static, usize> {
    PARENT_USERS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl CgroupParent {
    /// Creates `kiln-<pid>` under this process's own cgroup(s), removing stale ones left by
    /// earlier Kiln processes that are gone (after killing what still runs in them).
    pub(crate) fn create(
        version: &CgroupVersion,
        hierarchies: &[(String, Hierarchy)],
    ) -> io::Result<Self> {
        let mut users = lock_parent_users();
        let parent = Self::create_dirs(version, hierarchies)?;
        *users += 1;
        Ok(parent)
    }

    fn create_dirs(
        version: &CgroupVersion,
        hierarchies: &[(String, Hierarchy)],
    ) -> io::Result<Self> {
        let name = format!("kiln-{}", std::process::id());
        let find = |controller: &str| -> io::Result<PathBuf> {
            hierarchies
                .iter()
                .find(|(name, _)| name == controller)
                .map(|(_, hierarchy)| join_own(hierarchy))
                .ok_or_else(|| io::Error::other(format!("no {controller} hierarchy")))
        };
        match version {
            CgroupVersion::V1 => {
                let bases = V1_CONTROLLERS
                    .iter()
                    .map(|controller| find(controller))
                    .collect::<io::Result<Vec<_>>>()?;
                // Every hierarchy is cleared of stale processes before any directory is
                // removed: a v1 freezer's frozen processes die only once thawed.
                for base in &bases {
                    stop_stale(base);
                }
                let mut dirs = Vec::new();
                for base in bases {
                    remove_stale(&base);
                    let dir = base.join(&name);
                    fs::create_dir_all(&dir)?;
                    dirs.push(dir);
                }
                let mut dirs = dirs.into_iter();
                let mut next = || dirs.next().expect("one directory per v1 controller");
                Ok(CgroupParent::V1 {
                    memory: next(),
                    cpu: next(),
                    pids: next(),
                    freezer: next(),
                })
            }
            CgroupVersion::V2 => {
                let base = find("")?;
                stop_stale(&base);
                remove_stale(&base);
                // v2 allows controllers only in cgroups without processes of their own: the
                // parent gets the controllers and each sandbox is a leaf below it.
                fs::write(base.join("cgroup.subtree_control"), "+memory +cpu +pids")?;
                let dir = base.join(&name);
                fs::create_dir_all(&dir)?;
                fs::write(dir.join("cgroup.subtree_control"), "+memory +cpu +pids")?;
                Ok(CgroupParent::V2 { dir })
            }
        }
    }

    /// Creates a sandbox's cgroup(s) with its limits.
    pub(crate) fn create_child(&self, id: &str, limits: CgroupLimits) -> io::Result<Cgroup> {
        let cgroup = self.create_bare(id)?;
        if let Err(error) = cgroup.apply(limits) {
            cgroup.remove();
            return Err(error);
        }
        Ok(cgroup)
    }

    /// Creates cgroup directories `id` with only the settings every sandbox gets.
    fn create_bare(&self, id: &str) -> io::Result<Cgroup> {
        let cgroup = match self {
            CgroupParent::V1 {
                memory,
                cpu,
                pids,
                freezer,
            } => Cgroup::V1 {
                memory: memory.join(id),
                cpu: cpu.join(id),
                pids: pids.join(id),
                freezer: freezer.join(id),
            },
            CgroupParent::V2 { dir } => Cgroup::V2 { dir: dir.join(id) },
        };
        for dir in cgroup.dirs() {
            if let Err(error) = fs::create_dir(dir) {
                cgroup.remove();
                return Err(error);
            }
        }
        if let Err(error) = cgroup.set_base() {
            cgroup.remove();
            return Err(error);
        }
        Ok(cgroup)
    }

    /// Removes the parent (at shutdown) unless another sandboxer of this process still uses
    /// it; sandboxes must be gone.
    pub(crate) fn remove(&self) {
        let mut users = lock_parent_users();
        *users = users.saturating_sub(1);
        if *users > 0 {
            return;
        }
        let dirs: Vec<&Path> = match self {
            CgroupParent::V1 {
                memory,
                cpu,
                pids,
                freezer,
            } => vec![memory, cpu, pids, freezer],
            CgroupParent::V2 { dir } => vec![dir],
        };
        for dir in dirs {
            let _ = fs::remove_dir(dir);
        }
    }
}

/// How many cgroups [`CgroupPool`] keeps ready.
const SPARE_CGROUPS: usize = 4;

/// Sandbox cgroups created ahead of time. Creating one (a directory per controller, a few
/// writes) costs a few hundred microseconds, on the cold-start path unless done before: a
/// sandbox takes a spare, gets its limits (one or two writes) and a spare is made again in
/// the background.
#[derive(Debug)]
pub(crate) struct CgroupPool {
    parent: CgroupParent,
    /// Spares and the `pids.max` each was created with.
    spares: Mutex<Vec<(Cgroup, u32)>>,
    /// The pids limit of the last sandbox: spares get it too.
    pids: AtomicU32,
    refilling: AtomicBool,
}

impl CgroupPool {
    pub(crate) fn new(parent: CgroupParent) -> Self {
        Self {
            parent,
            spares: Mutex::new(Vec::new()),
            pids: AtomicU32::new(0),
            refilling: AtomicBool::new(false),
        }
    }

    fn lock_spares(&self) -> std::sync::MutexGuard<'_, Vec<(Cgroup, u32)>> {
        self.spares
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn new_id(&self) -> String {
        // Unique in the process: several sandboxers (tests) share the parent `kiln-<pid>`.
        static NEXT_ID: AtomicU64 = AtomicU64::new(0);
        format!("sb-{}", NEXT_ID.fetch_add(1, Ordering::Relaxed))
    }

    /// A cgroup with `limits`: a spare if there is one, else a new one.
    pub(crate) fn take(self: &Arc<Self>, limits: CgroupLimits) -> io::Result<Cgroup> {
        self.pids.store(limits.pids, Ordering::Relaxed);
        let spare = self.lock_spares().pop();
        let cgroup = match spare {
            Some((cgroup, pids)) => {
                let limited = cgroup
                    .set_memory(limits.memory_bytes)
                    .and_then(|()| {
                        if pids == limits.pids {
                            Ok(())
                        } else {
                            cgroup.set_pids(limits.pids)
                        }
                    })
                    .and_then(|()| match limits.cpu_cores {
                        Some(_) => cgroup.set_cpu(limits.cpu_cores),
                        None => Ok(()),
                    });
                if let Err(error) = limited {
                    cgroup.remove();
                    return Err(error);
                }
                cgroup
            }
            None => self.parent.create_child(&self.new_id(), limits)?,
        };
        self.refill_in_background();
        Ok(cgroup)
    }

    /// Makes spares until there are enough (blocking).
    pub(crate) fn refill(&self) {
        while self.lock_spares().len() < SPARE_CGROUPS {
            let pids = self.pids.load(Ordering::Relaxed);
            let made = self.parent.create_bare(&self.new_id()).and_then(|cgroup| {
                if pids == 0 {
                    return Ok((cgroup, 0));
                }
                match cgroup.set_pids(pids) {
                    Ok(()) => Ok((cgroup, pids)),
                    Err(error) => {
                        cgroup.remove();
                        Err(error)
                    }
                }
            });
            match made {
                Ok(spare) => self.lock_spares().push(spare),
                Err(error) => {
                    tracing::warn!(%error, "cannot prepare a spare sandbox cgroup");
                    return;
                }
            }
        }
    }

    fn refill_in_background(self: &Arc<Self>) {
        if self.refilling.swap(true, Ordering::AcqRel) {
            return;
        }
        let pool = Arc::clone(self);
        let refill = move || {
            pool.refill();
            pool.refilling.store(false, Ordering::Release);
        };
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn_blocking(refill);
            }
            Err(_) => refill(),
        }
    }

    /// Removes the spares, then the parent (at shutdown; sandboxes must be gone).
    pub(crate) fn remove(&self) {
        for (cgroup, _) in self.lock_spares().drain(..) {
            cgroup.remove();
        }
        self.parent.remove();
    }
}

/// The `kiln-<pid>` cgroups under `base` of Kiln processes that no longer exist.
fn stale_parents(base: &Path) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(base) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter(|entry| {
            entry
                .file_name()
                .to_str()
                .and_then(|name| name.strip_prefix("kiln-"))
                .and_then(|pid| pid.parse::<u32>().ok())
                .is_some_and(|pid| {
                    pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists()
                })
        })
        .map(|entry| entry.path())
        .collect()
}

fn sandbox_dirs(parent: &Path) -> Vec<PathBuf> {
    fs::read_dir(parent)
        .map(|children| {
            children
                .flatten()
                .map(|child| child.path())
                .filter(|path| path.is_dir())
                .collect()
        })
        .unwrap_or_default()
}

/// Kills what still runs in the sandboxes of Kiln processes that are gone. A sandbox frozen
/// when its server died is thawed first: its processes cannot die while frozen, not even of
/// the parent-death signal they already got.
fn stop_stale(base: &Path) {
    for parent in stale_parents(base) {
        for sandbox in sandbox_dirs(&parent) {
            let _ = fs::write(sandbox.join("freezer.state"), "THAWED");
            let _ = fs::write(sandbox.join("cgroup.freeze"), "0");
            kill_all_in(&sandbox);
        }
    }
}

/// Removes the cgroups of Kiln processes that are gone ([`stop_stale`] emptied them).
fn remove_stale(base: &Path) {
    for parent in stale_parents(base) {
        for sandbox in sandbox_dirs(&parent) {
            remove_dir_retrying(&sandbox);
        }
        remove_dir_retrying(&parent);
        tracing::info!(cgroup = %parent.display(), "removed a stale sandbox cgroup");
    }
}

fn kill_all_in(dir: &Path) {
    if let Ok(procs) = fs::read_to_string(dir.join("cgroup.procs")) {
        for pid in procs
            .lines()
            .filter_map(|line| line.trim().parse::<i32>().ok())
        {
            // The pid is in a cgroup only Kiln creates; it belongs to a dead Kiln's sandbox.
            let _ = kill(pid);
        }
    }
}

#[allow(unsafe_code)]
fn kill(pid: i32) -> io::Result<()> {
    // SAFETY: kill(2) with a pid and a signal number.
    if unsafe { libc::kill(pid, libc::SIGKILL) } == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// A cgroup directory can stay busy for a moment after its last process exited.
fn remove_dir_retrying(dir: &Path) {
    for _ in 0..50 {
        match fs::remove_dir(dir) {
            Ok(()) => return,
            Err(error) if error.kind() == io::ErrorKind::NotFound => return,
            Err(_) => std::thread::sleep(Duration::from_millis(2)),
        }
    }
    tracing::warn!(cgroup = %dir.display(), "cgroup could not be removed");
}

impl Cgroup {
    fn dirs(&self) -> Vec<&Path> {
        match self {
            Cgroup::V1 {
                memory,
                cpu,
                pids,
                freezer,
            } => vec![memory, cpu, pids, freezer],
            Cgroup::V2 { dir } => vec![dir],
        }
    }

    fn apply(&self, limits: CgroupLimits) -> io::Result<()> {
        self.set_base()?;
        self.set_memory(limits.memory_bytes)?;
        self.set_pids(limits.pids)?;
        self.set_cpu(limits.cpu_cores)
    }

    /// Settings every sandbox cgroup gets, whatever its limits.
    fn set_base(&self) -> io::Result<()> {
        let memory = match self {
            Cgroup::V1 { memory, .. } => memory,
            Cgroup::V2 { .. } => return Ok(()),
        };
        let _ = fs::write(memory.join("memory.swappiness"), "0");
        Ok(())
    }

    /// The memory limit; exceeding it is an OOM kill, as on Lambda (swap is forbidden).
    fn set_memory(&self, bytes: u64) -> io::Result<()> {
        match self {
            Cgroup::V1 { memory, .. } => {
                fs::write(memory.join("memory.limit_in_bytes"), bytes.to_string())?;
                // Without swap accounting this file is absent; with it, forbid swapping so that
                // exceeding the limit is an OOM kill as on Lambda.
                let swap = memory.join("memory.memsw.limit_in_bytes");
                if swap.exists() {
                    fs::write(swap, bytes.to_string())?;
                }
                Ok(())
            }
            Cgroup::V2 { dir } => {
                fs::write(dir.join("memory.max"), bytes.to_string())?;
                let _ = fs::write(dir.join("memory.swap.max"), "0");
                Ok(())
            }
        }
    }

    fn set_pids(&self, pids: u32) -> io::Result<()> {
        let dir = match self {
            Cgroup::V1 { pids, .. } => pids,
            Cgroup::V2 { dir } => dir,
        };
        fs::write(dir.join("pids.max"), pids.to_string())
    }

    /// Sets (or lifts, with `None`) the CPU quota.
    ///
    /// A small share with the default 100 ms period would let a busy function run for its few
    /// milliseconds and then stall for the rest of the period (93 ms at 128 MB). The period is
    /// therefore as short as the kernel's 1 ms minimum quota allows (10 to 100 ms), and the
    /// burst equal to the quota, so that time saved while idle covers a short spike: the
    /// average stays at the share, the stalls stay short.
    pub(crate) fn set_cpu(&self, cores: Option<f64>) -> io::Result<()> {
        let Some(cores) = cores else {
            return match self {
                Cgroup::V1 { cpu, .. } => {
                    let _ = fs::write(cpu.join("cpu.cfs_burst_us"), "0");
                    fs::write(cpu.join("cpu.cfs_quota_us"), "-1")
                }
                Cgroup::V2 { dir } => {
                    fs::write(dir.join("cpu.max"), format!("max {CPU_PERIOD_US}"))
                }
            };
        };
        let (period, quota) = cpu_bandwidth(cores);
        match self {
            Cgroup::V1 { cpu, .. } => {
                // Order matters: the kernel checks burst <= quota on every write.
                let _ = fs::write(cpu.join("cpu.cfs_burst_us"), "0");
                fs::write(cpu.join("cpu.cfs_period_us"), period.to_string())?;
                fs::write(cpu.join("cpu.cfs_quota_us"), quota.to_string())?;
                // Absent before Linux 5.14: bursts are then simply not allowed.
                let _ = fs::write(cpu.join("cpu.cfs_burst_us"), quota.to_string());
                Ok(())
            }
            Cgroup::V2 { dir } => {
                let _ = fs::write(dir.join("cpu.max.burst"), "0");
                fs::write(dir.join("cpu.max"), format!("{quota} {period}"))?;
                let _ = fs::write(dir.join("cpu.max.burst"), quota.to_string());
                Ok(())
            }
        }
    }

    /// The `cgroup.procs` file of each of this cgroup's directories.
    pub(crate) fn procs_files(&self) -> Vec<PathBuf> {
        self.dirs()
            .into_iter()
            .map(|dir| dir.join("cgroup.procs"))
            .collect()
    }

    /// The file holding the highest memory use so far, in bytes.
    pub(crate) fn memory_peak_path(&self) -> PathBuf {
        match self {
            Cgroup::V1 { memory, .. } => memory.join("memory.max_usage_in_bytes"),
            Cgroup::V2 { dir } => dir.join("memory.peak"),
        }
    }

    /// The highest memory use so far, in bytes.
    pub(crate) fn memory_peak(&self) -> Option<u64> {
        fs::read_to_string(self.memory_peak_path())
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    /// How many times the kernel's OOM killer killed a process of this cgroup.
    pub(crate) fn oom_kills(&self) -> u64 {
        let (file, key) = match self {
            Cgroup::V1 { memory, .. } => (memory.join("memory.oom_control"), "oom_kill"),
            Cgroup::V2 { dir } => (dir.join("memory.events"), "oom_kill"),
        };
        fs::read_to_string(file)
            .ok()
            .and_then(|text| {
                text.lines().find_map(|line| {
                    let (name, value) = line.split_once(' ')?;
                    (name == key).then(|| value.trim().parse().ok()).flatten()
                })
            })
            .unwrap_or(0)
    }

    /// Freezes (`true`) or thaws every process of the cgroup and waits until it took effect.
    pub(crate) fn set_frozen(&self, frozen: bool) -> io::Result<()> {
        match self {
            Cgroup::V1 { freezer, .. } => {
                let wanted = if frozen { "FROZEN" } else { "THAWED" };
                fs::write(freezer.join("freezer.state"), wanted)?;
                wait_for(|| {
                    fs::read_to_string(freezer.join("freezer.state"))
                        .map(|state| state.trim() == wanted)
                        .unwrap_or(true)
                });
            }
            Cgroup::V2 { dir } => {
                fs::write(dir.join("cgroup.freeze"), if frozen { "1" } else { "0" })?;
                let wanted = if frozen { "frozen 1" } else { "frozen 0" };
                wait_for(|| {
                    fs::read_to_string(dir.join("cgroup.events"))
                        .map(|events| events.lines().any(|line| line == wanted))
                        .unwrap_or(true)
                });
            }
        }
        Ok(())
    }

    /// Kills every process in the cgroup.
    pub(crate) fn kill_all(&self) {
        match self {
            Cgroup::V1 { memory, .. } => kill_all_in(memory),
            Cgroup::V2 { dir } => {
                if fs::write(dir.join("cgroup.kill"), "1").is_err() {
                    kill_all_in(dir);
                }
            }
        }
    }

    /// Removes the cgroup(s); the processes must be gone.
    pub(crate) fn remove(&self) {
        for dir in self.dirs() {
            remove_dir_retrying(dir);
        }
    }
}

/// The CFS period and quota, in microseconds, for a share of `cores` CPUs.
fn cpu_bandwidth(cores: f64) -> (u64, u64) {
    const MIN_QUOTA_US: f64 = 1000.0;
    const MIN_PERIOD_US: f64 = 10_000.0;
    let cores = cores.max(0.001);
    let period = (MIN_QUOTA_US / cores).clamp(MIN_PERIOD_US, CPU_PERIOD_US as f64);
    let quota = (cores * period).max(MIN_QUOTA_US);
    (period.round() as u64, quota.round() as u64)
}

/// Polls briefly for a state change (freezing takes well under a millisecond when idle).
fn wait_for(mut done: impl FnMut() -> bool) {
    for attempt in 0..2000 {
        if done() {
            return;
        }
        if attempt > 20 {
            std::thread::sleep(Duration::from_micros(100));
        } else {
            std::hint::spin_loop();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MOUNTINFO_V1: &str = "\
25 19 0:22 / /sys/fs/cgroup ro,nosuid shared:9 - tmpfs tmpfs ro,mode=755
26 25 0:23 / /sys/fs/cgroup/unified rw,nosuid shared:10 - cgroup2 cgroup2 rw
27 25 0:24 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid shared:11 - cgroup cgroup rw,cpu,cpuacct
28 25 0:25 / /sys/fs/cgroup/memory rw,nosuid shared:12 - cgroup cgroup rw,memory
29 25 0:26 / /sys/fs/cgroup/pids rw,nosuid shared:13 - cgroup cgroup rw,pids
30 25 0:27 / /sys/fs/cgroup/freezer rw,nosuid shared:14 - cgroup cgroup rw,freezer
";
    const SELF_V1: &str = "\
9:freezer:/
4:memory:/process_api/abc
2:cpu,cpuacct:/
8:pids:/
0::/
";

    #[test]
    fn discovers_v1_hierarchies_and_own_paths() {
        let (version, hierarchies) = discover(MOUNTINFO_V1, SELF_V1).unwrap();
        assert_eq!(version, CgroupVersion::V1);
        let memory = hierarchies.iter().find(|(c, _)| c == "memory").unwrap();
        assert_eq!(memory.1.mount_point, PathBuf::from("/sys/fs/cgroup/memory"));
        assert_eq!(memory.1.own_path, "/process_api/abc");
        let cpu = hierarchies.iter().find(|(c, _)| c == "cpu").unwrap();
        assert_eq!(
            cpu.1.mount_point,
            PathBuf::from("/sys/fs/cgroup/cpu,cpuacct")
        );
        assert_eq!(
            join_own(&memory.1),
            PathBuf::from("/sys/fs/cgroup/memory/process_api/abc")
        );
    }

    #[test]
    fn mount_points_are_unescaped() {
        assert_eq!(unescape(r"/a\040b"), "/a b");
        assert_eq!(unescape("/plain"), "/plain");
        assert_eq!(unescape("/ü\\üx"), "/ü\\üx");
        assert_eq!(unescape("/end\\"), "/end\\");
    }

    #[test]
    fn v1_files_are_written_and_read() {
        let root = tempfile::tempdir().unwrap();
        let dir = |name: &str| {
            let path = root.path().join(name);
            fs::create_dir_all(&path).unwrap();
            path
        };
        let cgroup = Cgroup::V1 {
            memory: dir("memory"),
            cpu: dir("cpu"),
            pids: dir("pids"),
            freezer: dir("freezer"),
        };
        cgroup
            .apply(CgroupLimits {
                memory_bytes: 128 << 20,
                cpu_cores: Some(0.5),
                pids: 1024,
            })
            .unwrap();
        let read = |path: &str| fs::read_to_string(root.path().join(path)).unwrap();
        assert_eq!(read("memory/memory.limit_in_bytes"), "134217728");
        // Half a CPU: a 10 ms period (the shortest) with a 5 ms quota and burst.
        assert_eq!(read("cpu/cpu.cfs_period_us"), "10000");
        assert_eq!(read("cpu/cpu.cfs_quota_us"), "5000");
        assert_eq!(read("cpu/cpu.cfs_burst_us"), "5000");
        assert_eq!(read("pids/pids.max"), "1024");
        cgroup.set_cpu(None).unwrap();
        assert_eq!(read("cpu/cpu.cfs_quota_us"), "-1");
        fs::write(
            root.path().join("memory/memory.max_usage_in_bytes"),
            "4096\n",
        )
        .unwrap();
        assert_eq!(cgroup.memory_peak(), Some(4096));
        fs::write(
            root.path().join("memory/memory.oom_control"),
            "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n",
        )
        .unwrap();
        assert_eq!(cgroup.oom_kills(), 2);
    }

    #[test]
    fn small_shares_get_short_periods() {
        // 128 MB: 0.072 CPUs. The 1 ms minimum quota sets a 13.8 ms period.
        let (period, quota) = cpu_bandwidth(128.0 / 1769.0);
        assert_eq!(quota, 1000);
        assert!((13_800..=13_900).contains(&period), "{period}");
        assert_eq!(cpu_bandwidth(2.0), (10_000, 20_000));
        // Tiny shares: the period never exceeds 100 ms.
        assert_eq!(cpu_bandwidth(0.001).0, 100_000);
    }

    #[test]
    fn v2_files_are_written_and_read() {
        let root = tempfile::tempdir().unwrap();
        let cgroup = Cgroup::V2 {
            dir: root.path().to_owned(),
        };
        cgroup
            .apply(CgroupLimits {
                memory_bytes: 256 << 20,
                cpu_cores: Some(1.0),
                pids: 64,
            })
            .unwrap();
        let read = |name: &str| fs::read_to_string(root.path().join(name)).unwrap();
        assert_eq!(read("memory.max"), "268435456");
        assert_eq!(read("cpu.max"), "10000 10000");
        assert_eq!(read("pids.max"), "64");
        fs::write(
            root.path().join("memory.events"),
            "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n",
        )
        .unwrap();
        assert_eq!(cgroup.oom_kills(), 1);
    }
}
