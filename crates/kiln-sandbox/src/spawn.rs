//! Starting a process in new namespaces with a private root.
//!
//! The parent turns a [`SandboxSpec`](crate::SandboxSpec) into a [`ChildPlan`]: every path,
//! argument and environment string is a ready `CString`, every pointer array built. A dedicated
//! spawner thread then starts the child with `clone(CLONE_VM | CLONE_VFORK)` (as `posix_spawn`
//! does: no page tables copied, so starting does not slow down as the server grows) and new
//! mount, PID, IPC and UTS namespaces, and is suspended until the child execs or exits. The
//! child resets its signal handlers, joins its cgroups, builds its root from the plan with
//! system calls only and `execve`s the program; a failing step writes `(step, errno)` to an
//! error pipe that closes on exec, so the parent learns whether the program started.
//!
//! The spawner is a dedicated thread because `PR_SET_PDEATHSIG` fires when the *thread* that
//! created the child exits: a thread that lives as long as the process makes it mean "when
//! Kiln dies", so sandboxes never outlive a killed server.

use std::ffi::{CString, OsStr};
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::mpsc;

use crate::cgroup::Cgroup;
use crate::sys;
use crate::{Mount, SandboxError, SandboxSpec};

/// The steps of the child's set-up, reported with the errno when one fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Step {
    Signals = 1,
    PrivatePropagation,
    RootTmpfs,
    Mkdir,
    Symlink,
    BindFile,
    Bind,
    BindReadOnly,
    Tmpfs,
    Proc,
    PivotRoot,
    RootReadOnly,
    Hostname,
    Limits,
    Stdio,
    CloseFds,
    Chdir,
    Credentials,
    NoNewPrivs,
    DeathSignal,
    Exec,
    AttachVolume,
    JoinCgroup,
}

impl Step {
    fn from_byte(byte: u8) -> &'static str {
        const NAMES: [&str; 23] = [
            "resetting signal handlers",
            "making mounts private",
            "mounting the root tmpfs",
            "creating a directory",
            "creating a symlink",
            "creating a bind-mount target file",
            "bind-mounting",
            "remounting a bind mount read-only",
            "mounting a tmpfs",
            "mounting /proc",
            "pivoting the root",
            "remounting the root read-only",
            "setting the hostname",
            "setting resource limits",
            "redirecting standard streams",
            "closing inherited descriptors",
            "changing to the working directory",
            "dropping privileges",
            "setting no_new_privs",
            "setting the parent-death signal",
            "executing the program",
            "attaching a volume",
            "joining its cgroup",
        ];
        NAMES
            .get(usize::from(byte).wrapping_sub(1))
            .copied()
            .unwrap_or("an unknown step")
    }
}

/// One bind mount, ready for the child.
#[derive(Debug)]
struct PlannedBind {
    source: CString,
    target: CString,
    writable: bool,
    /// A file bind whose mount point the child creates first.
    touch: bool,
}

/// Everything the child needs, prepared before the clone.
#[derive(Debug)]
pub(crate) struct ChildPlan {
    root: CString,
    directories: Vec<CString>,
    symlinks: Vec<(CString, CString)>,
    binds: Vec<PlannedBind>,
    tmpfs: Vec<(CString, CString)>,
    /// Detached mounts (a clone per sandbox, open in the child) and where they go.
    volumes: Vec<(OwnedFd, CString)>,
    proc_dir: CString,
    cwd: CString,
    program: CString,
    _argv: Vec<CString>,
    argv_pointers: Vec<*const libc::c_char>,
    _envp: Vec<CString>,
    envp_pointers: Vec<*const libc::c_char>,
    /// The `cgroup.procs` files the child writes itself into.
    cgroup_procs: Vec<CString>,
    uid: u32,
    gid: u32,
    open_files: u64,
    stdout: OwnedFd,
    stderr: OwnedFd,
}

// SAFETY (justification for Send): the raw pointers point into the CStrings owned by the same
// plan, which moves with them to the spawner thread and is never mutated.
#[allow(unsafe_code)]
unsafe impl Send for ChildPlan {}

fn cstring(bytes: &[u8]) -> Result<CString, SandboxError> {
    CString::new(bytes)
        .map_err(|_| SandboxError::InvalidSpec("a string contains a NUL byte".into()))
}

fn path_cstring(path: &Path) -> Result<CString, SandboxError> {
    cstring(path.as_os_str().as_bytes())
}

/// `root` joined with an absolute in-sandbox path.
fn under(root: &Path, inside: &Path) -> PathBuf {
    root.join(inside.strip_prefix("/").unwrap_or(inside))
}

impl ChildPlan {
    pub(crate) fn new(
        spec: SandboxSpec,
        root: &Path,
        cgroup: Option<&Cgroup>,
        uid: u32,
        gid: u32,
    ) -> Result<Self, SandboxError> {
        let mut directories: Vec<PathBuf> = Vec::new();
        // Directories bound so far: a later mount inside one uses the bound source's own
        // directory as its mount point, so nothing is created for it in the root.
        let mut bound_dirs: Vec<PathBuf> = Vec::new();
        let mut ensure_dir = |inside: &Path| {
            // Every ancestor, shallowest first, so that mkdir succeeds without recursion.
            let mut ancestors: Vec<&Path> = inside.ancestors().collect();
            ancestors.reverse();
            for ancestor in ancestors {
                if ancestor != Path::new("/") && !directories.iter().any(|d| d == ancestor) {
                    directories.push(ancestor.to_owned());
                }
            }
        };
        let standard = ["/proc", "/dev", "/tmp"];
        for dir in standard {
            ensure_dir(Path::new(dir));
        }
        let mut symlinks = Vec::new();
        let mut binds = Vec::new();
        let mut tmpfs = Vec::new();
        let mut volumes = Vec::new();
        for mount in &spec.mounts {
            let inside_bound = |target: &Path| {
                bound_dirs
                    .iter()
                    .any(|bound| target != bound && target.starts_with(bound))
            };
            match mount {
                Mount::Bind {
                    source,
                    target,
                    writable,
                } => {
                    let is_file = source.metadata().map(|m| !m.is_dir()).unwrap_or(false);
                    let inside = inside_bound(target);
                    if inside {
                        // The mount point comes with the bound directory.
                    } else if is_file {
                        if let Some(parent) = target.parent() {
                            ensure_dir(parent);
                        }
                    } else {
                        ensure_dir(target);
                    }
                    if !is_file {
                        bound_dirs.push(target.clone());
                    }
                    binds.push(PlannedBind {
                        source: path_cstring(source)?,
                        target: path_cstring(&under(root, target))?,
                        writable: *writable,
                        // A file inside a bound directory is its own mount point.
                        touch: is_file && !inside,
                    });
                }
                Mount::Tmpfs { target, size_bytes } => {
                    if target != Path::new("/tmp") {
                        ensure_dir(target);
                    }
                    tmpfs.push((
                        path_cstring(&under(root, target))?,
                        cstring(format!("mode=1777,size={size_bytes}").as_bytes())?,
                    ));
                }
                Mount::Volume { volume, target } => {
                    ensure_dir(target);
                    let clone = sys::clone_detached(&volume.0).map_err(SandboxError::Io)?;
                    volumes.push((clone, path_cstring(&under(root, target))?));
                }
                Mount::Symlink { target, link } => {
                    if let Some(parent) = link.parent() {
                        ensure_dir(parent);
                    }
                    symlinks.push((path_cstring(target)?, path_cstring(&under(root, link))?));
                }
            }
        }
        let directories = directories
            .iter()
            .map(|dir| path_cstring(&under(root, dir)))
            .collect::<Result<Vec<_>, _>>()?;
        let argv = std::iter::once(spec.program.as_os_str())
            .chain(spec.args.iter().map(|arg| OsStr::new(arg.as_str())))
            .map(|arg| cstring(arg.as_bytes()))
            .collect::<Result<Vec<_>, _>>()?;
        let envp = spec
            .env
            .iter()
            .map(|(key, value)| cstring(format!("{key}={value}").as_bytes()))
            .collect::<Result<Vec<_>, _>>()?;
        let pointers = |strings: &[CString]| -> Vec<*const libc::c_char> {
            strings
                .iter()
                .map(|s| s.as_ptr())
                .chain(std::iter::once(std::ptr::null()))
                .collect()
        };
        Ok(Self {
            root: path_cstring(root)?,
            directories,
            symlinks,
            binds,
            tmpfs,
            volumes,
            proc_dir: path_cstring(&under(root, Path::new("/proc")))?,
            cwd: path_cstring(&spec.cwd)?,
            program: path_cstring(&spec.program)?,
            argv_pointers: pointers(&argv),
            _argv: argv,
            envp_pointers: pointers(&envp),
            _envp: envp,
            cgroup_procs: cgroup
                .map(Cgroup::procs_files)
                .unwrap_or_default()
                .iter()
                .map(|path| path_cstring(path))
                .collect::<Result<Vec<_>, _>>()?,
            uid,
            gid,
            open_files: u64::from(spec.limits.open_files),
            stdout: spec.stdout,
            stderr: spec.stderr,
        })
    }
}

/// A request to the spawner thread.
pub(crate) struct SpawnJob {
    pub plan: ChildPlan,
    pub reply: tokio::sync::oneshot::Sender<Result<(libc::pid_t, OwnedFd), SandboxError>>,
}

impl std::fmt::Debug for SpawnJob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpawnJob").finish_non_exhaustive()
    }
}

/// The child's stack: its set-up needs a few kilobytes; the rest is margin.
const CHILD_STACK_BYTES: usize = 256 * 1024;

/// Starts the spawner thread; it lives until the sender is dropped.
pub(crate) fn start_spawner() -> io::Result<mpsc::Sender<SpawnJob>> {
    let (sender, receiver) = mpsc::channel::<SpawnJob>();
    let (ready, started) = mpsc::channel::<io::Result<()>>();
    std::thread::Builder::new()
        .name("kiln-spawner".into())
        .spawn(move || {
            let stack = match sys::ChildStack::new(CHILD_STACK_BYTES) {
                Ok(stack) => {
                    let _ = ready.send(Ok(()));
                    stack
                }
                Err(error) => {
                    let _ = ready.send(Err(error));
                    return;
                }
            };
            for job in receiver {
                let result = spawn_namespaced(&job.plan, &stack);
                // The plan (and its copies of the stdio descriptors) is dropped here, in the
                // parent, after the child has its own copies.
                drop(job.plan);
                let _ = job.reply.send(result);
            }
        })?;
    started
        .recv()
        .unwrap_or_else(|_| Err(io::Error::other("the spawner thread did not start")))?;
    Ok(sender)
}

/// Namespaces every sandbox gets.
const NAMESPACES: libc::c_int =
    libc::CLONE_NEWNS | libc::CLONE_NEWPID | libc::CLONE_NEWIPC | libc::CLONE_NEWUTS;

fn spawn_namespaced(
    plan: &ChildPlan,
    stack: &sys::ChildStack,
) -> Result<(libc::pid_t, OwnedFd), SandboxError> {
    let (error_read, error_write) = sys::pipe().map_err(SandboxError::Io)?;
    let error_fd = error_write.as_raw_fd();
    let mut child = || -> libc::c_int { child_main(plan, error_fd) };
    let (pid, pidfd) = sys::clone_vfork(NAMESPACES, stack, &mut child).map_err(SandboxError::Io)?;
    // The child has exec'd (closing its copy of the write end) or reported and exited.
    drop(error_write);
    let mut report = Vec::new();
    let read = std::io::Read::read_to_end(&mut std::fs::File::from(error_read), &mut report);
    if read.is_ok() && report.len() >= 5 {
        let step = Step::from_byte(report[0]);
        let errno = i32::from_le_bytes([report[1], report[2], report[3], report[4]]);
        reap(&pidfd);
        return Err(SandboxError::Setup {
            step,
            source: io::Error::from_raw_os_error(errno),
        });
    }
    Ok((pid, pidfd))
}

/// Waits (briefly, synchronously) for a child that failed to start.
fn reap(pidfd: &OwnedFd) {
    for _ in 0..1000 {
        if matches!(sys::try_wait(pidfd), Ok(Some(_)) | Err(_)) {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
}

/// The child's whole life before `execve`. System calls only.
fn child_main(plan: &ChildPlan, error_fd: RawFd) -> ! {
    let fail = |step: Step, errno: sys::Errno| -> ! {
        let errno = errno.to_le_bytes();
        sys::write_all(
            error_fd,
            &[step as u8, errno[0], errno[1], errno[2], errno[3]],
        );
        sys::exit_child(127)
    };
    macro_rules! step {
        ($step:expr, $call:expr) => {
            if let Err(errno) = $call {
                fail($step, errno);
            }
        };
    }
    step!(Step::Signals, sys::reset_signals());
    // First, so that the set-up below is already limited and accounted to the sandbox.
    for procs in &plan.cgroup_procs {
        step!(Step::JoinCgroup, sys::join_cgroup(procs));
    }
    step!(
        Step::PrivatePropagation,
        sys::mount(None, c"/", None, libc::MS_REC | libc::MS_PRIVATE, None)
    );
    step!(
        Step::RootTmpfs,
        sys::mount(
            Some(c"tmpfs"),
            &plan.root,
            Some(c"tmpfs"),
            libc::MS_NOSUID | libc::MS_NODEV,
            Some(c"mode=0755,size=4m"),
        )
    );
    for dir in &plan.directories {
        step!(Step::Mkdir, sys::mkdir(dir, 0o755));
    }
    for (target, link) in &plan.symlinks {
        step!(Step::Symlink, sys::symlink(target, link));
    }
    for bind in &plan.binds {
        if bind.touch {
            step!(Step::BindFile, sys::touch(&bind.target));
        }
        step!(
            Step::Bind,
            sys::mount(
                Some(&bind.source),
                &bind.target,
                None,
                libc::MS_BIND | libc::MS_REC,
                None,
            )
        );
        if !bind.writable {
            step!(
                Step::BindReadOnly,
                sys::mount(
                    None,
                    &bind.target,
                    None,
                    libc::MS_BIND
                        | libc::MS_REMOUNT
                        | libc::MS_RDONLY
                        | libc::MS_NOSUID
                        | libc::MS_NODEV,
                    None,
                )
            );
        }
    }
    for (target, options) in &plan.tmpfs {
        step!(
            Step::Tmpfs,
            sys::mount(
                Some(c"tmpfs"),
                target,
                Some(c"tmpfs"),
                libc::MS_NOSUID | libc::MS_NODEV,
                Some(options),
            )
        );
    }
    for (volume, target) in &plan.volumes {
        step!(
            Step::AttachVolume,
            sys::attach_detached(volume.as_raw_fd(), target)
        );
    }
    step!(
        Step::Proc,
        sys::mount(
            Some(c"proc"),
            &plan.proc_dir,
            Some(c"proc"),
            libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
            None,
        )
    );
    step!(Step::PivotRoot, sys::chdir(&plan.root));
    step!(Step::PivotRoot, sys::pivot_root_here());
    step!(
        Step::RootReadOnly,
        sys::mount(
            None,
            c"/",
            None,
            libc::MS_REMOUNT | libc::MS_RDONLY | libc::MS_NOSUID | libc::MS_NODEV,
            None,
        )
    );
    step!(Step::Hostname, sys::sethostname(c"localhost"));
    let null = match sys::open_read_only(c"/dev/null") {
        Ok(fd) => fd,
        Err(errno) => fail(Step::Stdio, errno),
    };
    step!(Step::Stdio, sys::dup2(null, 0));
    step!(Step::Stdio, sys::dup2(plan.stdout.as_raw_fd(), 1));
    step!(Step::Stdio, sys::dup2(plan.stderr.as_raw_fd(), 2));
    step!(Step::CloseFds, sys::cloexec_from_3());
    // Only now: the child still holds every descriptor of the server (closed at exec), so an
    // open-files limit set earlier would make opening /dev/null fail with EMFILE once the
    // server has more descriptors than the sandbox may.
    step!(
        Step::Limits,
        sys::set_rlimit(libc::RLIMIT_NOFILE, plan.open_files)
    );
    step!(Step::Limits, sys::set_rlimit(libc::RLIMIT_CORE, 0));
    step!(Step::Chdir, sys::chdir(&plan.cwd));
    step!(Step::Credentials, sys::drop_privileges(plan.uid, plan.gid));
    step!(Step::NoNewPrivs, sys::set_no_new_privs());
    // After the credential change, which would clear it.
    step!(Step::DeathSignal, sys::set_parent_death_signal());
    let errno = sys::execve(&plan.program, &plan.argv_pointers, &plan.envp_pointers);
    fail(Step::Exec, errno)
}
