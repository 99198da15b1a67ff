//! Thin wrappers over the Linux system calls the sandbox needs.
//!
//! This module holds the crate's `unsafe` code. The functions used in the child between
//! `clone3` and `execve` (everything taking `&CStr` or raw fds below the "child side" marker)
//! only make system calls: the child of a multi-threaded process may not allocate or take locks,
//! because another thread of the parent might have held them at the moment of the clone. That
//! rules out libc wrappers that do more than the system call, such as glibc's set*id functions
//! (which synchronise every thread of the process); those are made with `syscall` directly.
#![allow(unsafe_code)]

use std::ffi::CStr;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// Result of a raw call: `-1` becomes the current `errno`.
fn check(result: libc::c_long) -> io::Result<libc::c_long> {
    if result == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(result)
    }
}

/// `struct clone_args` of `clone3(2)`.
#[repr(C)]
#[derive(Debug, Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

/// What `clone3` returned in the calling process.
#[derive(Debug)]
pub(crate) enum Cloned {
    /// In the parent: a pidfd for the child.
    Parent { pidfd: OwnedFd },
    /// In the child.
    Child,
}

/// `clone3` without `CLONE_VM`: fork semantics (the child gets a copy-on-write copy of the
/// address space and continues from here on its own copy of this thread's stack), plus the
/// namespace `flags` and a pidfd.
pub(crate) fn clone3(namespace_flags: u64) -> io::Result<Cloned> {
    let mut pidfd: libc::c_int = -1;
    let args = CloneArgs {
        flags: namespace_flags | libc::CLONE_PIDFD as u64,
        pidfd: std::ptr::addr_of_mut!(pidfd) as u64,
        exit_signal: libc::SIGCHLD as u64,
        ..CloneArgs::default()
    };
    // SAFETY: `args` is a valid, fully initialised `clone_args` of the size passed, and `pidfd`
    // outlives the call. Without CLONE_VM (and with no stack given) the child runs on a private
    // copy of this thread's stack, like fork; the caller's child branch only makes system
    // calls (see the module documentation).
    let pid = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            std::ptr::addr_of!(args),
            std::mem::size_of::<CloneArgs>(),
        )
    };
    match check(pid)? {
        0 => Ok(Cloned::Child),
        _ => {
            // SAFETY: on success the kernel stored a new, owned pidfd in `pidfd`.
            let pidfd = unsafe { OwnedFd::from_raw_fd(pidfd) };
            Ok(Cloned::Parent { pidfd })
        }
    }
}

/// A stack for children started with [`clone_vfork`], reused from spawn to spawn: the parent
/// waits until the child has exec'd or exited, after which nothing runs on it.
#[derive(Debug)]
pub(crate) struct ChildStack {
    base: *mut libc::c_void,
    size: usize,
}

impl ChildStack {
    /// Maps `size` bytes (a multiple of the page size), the lowest page a guard.
    pub(crate) fn new(size: usize) -> io::Result<Self> {
        // SAFETY: an anonymous private mapping of `size` bytes; the result is checked.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                size,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_STACK,
                -1,
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let stack = Self { base, size };
        // SAFETY: the first page of the mapping just made; an overflow faults instead of
        // writing into whatever lies below.
        check(libc::c_long::from(unsafe {
            libc::mprotect(base, 4096, libc::PROT_NONE)
        }))?;
        Ok(stack)
    }

    fn top(&self) -> *mut libc::c_void {
        // The stack grows down from the end of the mapping (16-byte aligned: size is a
        // multiple of the page size).
        self.base.wrapping_byte_add(self.size)
    }
}

impl Drop for ChildStack {
    fn drop(&mut self) {
        // SAFETY: unmapping exactly the mapping made in `new`, which nothing uses any more.
        unsafe { libc::munmap(self.base, self.size) };
    }
}

/// Starts a child with `CLONE_VM | CLONE_VFORK` (as `posix_spawn` does) in new namespaces
/// (`namespace_flags`), running `child` on `stack`, and returns once the child has called
/// `execve` or exited, with its pid and a pidfd.
///
/// Sharing the address space makes the start independent of the server's size (no page
/// tables to copy), but the child then runs in the server's memory: `child` may only make
/// system calls (see the module documentation), and signals stay blocked here until the child
/// has reset every handler (it must, before it unblocks them).
pub(crate) fn clone_vfork<F: FnMut() -> libc::c_int>(
    namespace_flags: libc::c_int,
    stack: &ChildStack,
    child: &mut F,
) -> io::Result<(libc::pid_t, OwnedFd)> {
    extern "C" fn trampoline<F: FnMut() -> libc::c_int>(arg: *mut libc::c_void) -> libc::c_int {
        // SAFETY: `arg` is the `&mut F` given to clone below; the parent is suspended
        // (CLONE_VFORK) and keeps it alive until the child execs or exits.
        let child = unsafe { &mut *arg.cast::<F>() };
        child()
    }
    let mut all_signals = std::mem::MaybeUninit::<libc::sigset_t>::uninit();
    let mut previous = std::mem::MaybeUninit::<libc::sigset_t>::uninit();
    // SAFETY: sigfillset initialises the set; pthread_sigmask reads it and writes `previous`.
    unsafe {
        libc::sigfillset(all_signals.as_mut_ptr());
        libc::pthread_sigmask(
            libc::SIG_SETMASK,
            all_signals.as_ptr(),
            previous.as_mut_ptr(),
        );
    }
    let mut pidfd: libc::c_int = -1;
    // SAFETY: the stack is a live mapping owned by the caller and unused by anyone else; `child`
    // outlives the call (see the trampoline); with CLONE_PIDFD the kernel stores the pidfd
    // through the parent_tid argument, which points to `pidfd`.
    let pid = unsafe {
        libc::clone(
            trampoline::<F>,
            stack.top(),
            libc::CLONE_VM
                | libc::CLONE_VFORK
                | libc::CLONE_PIDFD
                | namespace_flags
                | libc::SIGCHLD,
            std::ptr::from_mut(child).cast::<libc::c_void>(),
            std::ptr::addr_of_mut!(pidfd),
        )
    };
    let error = io::Error::last_os_error();
    // SAFETY: restores the mask saved above.
    unsafe {
        libc::pthread_sigmask(libc::SIG_SETMASK, previous.as_ptr(), std::ptr::null_mut());
    }
    if pid == -1 {
        return Err(error);
    }
    // SAFETY: on success the kernel stored a new, owned pidfd in `pidfd`.
    Ok((pid, unsafe { OwnedFd::from_raw_fd(pidfd) }))
}

/// A pidfd for an existing child (for processes started with `std::process::Command`).
pub(crate) fn pidfd_open(pid: libc::pid_t) -> io::Result<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1.
    let fd = check(unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) })?;
    // SAFETY: the fd was just created by the kernel and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// Sends `signal` through a pidfd (no pid-reuse race).
pub(crate) fn pidfd_send_signal(pidfd: &OwnedFd, signal: libc::c_int) -> io::Result<()> {
    // SAFETY: a valid pidfd, a signal number, no siginfo, no flags.
    check(unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            signal,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    })
    .map(drop)
}

/// How a process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    /// `exit(code)`.
    Exited(i32),
    /// Killed by a signal.
    Signaled(i32),
}

/// Reaps the child behind `pidfd` if it has exited; `None` while it runs.
pub(crate) fn try_wait(pidfd: &OwnedFd) -> io::Result<Option<ExitStatus>> {
    // SAFETY: siginfo_t is plain data; zeroed is a valid initial value for waitid to fill.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    // SAFETY: P_PIDFD with a valid pidfd and a valid out-pointer.
    let result = unsafe {
        libc::waitid(
            libc::P_PIDFD,
            pidfd.as_raw_fd() as libc::id_t,
            &mut info,
            libc::WEXITED | libc::WNOHANG,
        )
    };
    check(libc::c_long::from(result))?;
    // SAFETY: after a successful waitid the pid and status fields are initialised (si_pid is 0
    // when nothing was reaped under WNOHANG).
    let (pid, status) = unsafe { (info.si_pid(), info.si_status()) };
    if pid == 0 {
        return Ok(None);
    }
    Ok(Some(match info.si_code {
        libc::CLD_EXITED => ExitStatus::Exited(status),
        _ => ExitStatus::Signaled(status),
    }))
}

/// A pipe; both ends close on exec.
pub(crate) fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [-1; 2];
    // SAFETY: `fds` has room for the two descriptors pipe2 writes.
    check(libc::c_long::from(unsafe {
        libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC)
    }))?;
    // SAFETY: both fds were just created by the kernel and are owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

// The new mount API (Linux 5.2+), from <linux/mount.h>; the libc crate has the system call
// numbers but not these flags.
const FSOPEN_CLOEXEC: libc::c_uint = 0x1;
const FSCONFIG_SET_STRING: libc::c_uint = 1;
const FSCONFIG_CMD_CREATE: libc::c_uint = 6;
const FSMOUNT_CLOEXEC: libc::c_uint = 0x1;
const MOUNT_ATTR_NOSUID: libc::c_uint = 0x2;
const MOUNT_ATTR_NODEV: libc::c_uint = 0x4;
const OPEN_TREE_CLONE: libc::c_uint = 0x1;
const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 0x4;

/// A new tmpfs of `size_bytes`, mode 1777, nosuid and nodev, attached to no mount namespace:
/// it lives as long as a descriptor or a mount refers to it, so a killed server leaves nothing
/// mounted, and cloning mount namespaces never copies it.
pub(crate) fn detached_tmpfs(size_bytes: u64) -> io::Result<OwnedFd> {
    // SAFETY: fsopen with a NUL-terminated name and flags; returns a new fd or -1.
    let context =
        check(unsafe { libc::syscall(libc::SYS_fsopen, c"tmpfs".as_ptr(), FSOPEN_CLOEXEC) })?;
    // SAFETY: the kernel just created this descriptor; it is owned by nobody else.
    let context = unsafe { OwnedFd::from_raw_fd(context as RawFd) };
    let size = std::ffi::CString::new(size_bytes.to_string()).expect("digits have no NUL");
    for (key, value) in [(c"size", size.as_c_str()), (c"mode", c"1777")] {
        // SAFETY: fsconfig on the context with two NUL-terminated strings.
        check(unsafe {
            libc::syscall(
                libc::SYS_fsconfig,
                context.as_raw_fd(),
                FSCONFIG_SET_STRING,
                key.as_ptr(),
                value.as_ptr(),
                0,
            )
        })?;
    }
    let no_string: *const libc::c_char = std::ptr::null();
    // SAFETY: fsconfig's create command takes no key or value.
    check(unsafe {
        libc::syscall(
            libc::SYS_fsconfig,
            context.as_raw_fd(),
            FSCONFIG_CMD_CREATE,
            no_string,
            no_string,
            0,
        )
    })?;
    // SAFETY: fsmount on the configured context; returns a new mount fd or -1.
    let mount = check(unsafe {
        libc::syscall(
            libc::SYS_fsmount,
            context.as_raw_fd(),
            FSMOUNT_CLOEXEC,
            MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV,
        )
    })?;
    // SAFETY: as above.
    Ok(unsafe { OwnedFd::from_raw_fd(mount as RawFd) })
}

/// A new detached mount of the same filesystem as the detached mount `mount`: each sandbox
/// attaches its own, and the filesystem outlives them all.
pub(crate) fn clone_detached(mount: &OwnedFd) -> io::Result<OwnedFd> {
    // SAFETY: open_tree on a mount fd with an empty path; returns a new mount fd or -1.
    let clone = check(unsafe {
        libc::syscall(
            libc::SYS_open_tree,
            mount.as_raw_fd(),
            c"".as_ptr(),
            OPEN_TREE_CLONE | libc::O_CLOEXEC as libc::c_uint | libc::AT_EMPTY_PATH as libc::c_uint,
        )
    })?;
    // SAFETY: the kernel just created this descriptor.
    Ok(unsafe { OwnedFd::from_raw_fd(clone as RawFd) })
}

/// Raises this process's soft open-files limit to its hard limit (capped at the kernel's usual
/// `nr_open`, 2^20) and returns the limit now in force. Every execution environment holds a few
/// descriptors in the server, and the soft default on many systems is only 1,024.
pub fn raise_open_files_limit() -> io::Result<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into a valid, initialised rlimit.
    check(libc::c_long::from(unsafe {
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit)
    }))?;
    let wanted = limit.rlim_max.min(1 << 20);
    if limit.rlim_cur < wanted {
        limit.rlim_cur = wanted;
        // SAFETY: setrlimit reads a valid rlimit; the soft value does not exceed the hard one.
        check(libc::c_long::from(unsafe {
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit)
        }))?;
    }
    Ok(limit.rlim_cur)
}

/// Sets `O_NONBLOCK` on a descriptor (for tokio's pipe readers).
pub fn set_nonblocking(fd: &OwnedFd) -> io::Result<()> {
    // SAFETY: F_GETFL/F_SETFL on a valid fd.
    let flags = check(libc::c_long::from(unsafe {
        libc::fcntl(fd.as_raw_fd(), libc::F_GETFL)
    }))?;
    // SAFETY: as above.
    check(libc::c_long::from(unsafe {
        libc::fcntl(
            fd.as_raw_fd(),
            libc::F_SETFL,
            flags as libc::c_int | libc::O_NONBLOCK,
        )
    }))
    .map(drop)
}

/// Registers an owned descriptor with tokio's reactor.
pub(crate) fn async_fd(fd: OwnedFd) -> io::Result<tokio::io::unix::AsyncFd<OwnedFd>> {
    // SAFETY: the AsyncFd takes ownership of the OwnedFd, so the descriptor stays open and
    // unreplaced for as long as it is registered, and is closed only when the AsyncFd drops.
    Ok(unsafe { tokio::io::unix::AsyncFd::register(fd) }?)
}

/// The inode of the TCP socket whose own address is `from` and whose peer is `to`, asked of
/// the kernel's socket diagnostics (`sock_diag(7)`, an exact lookup rather than a walk of
/// `/proc/net/tcp`, which grows with every socket of the host). `None` if there is none.
pub(crate) fn tcp_socket_inode(
    from: std::net::SocketAddr,
    to: std::net::SocketAddr,
) -> io::Result<Option<u32>> {
    use std::io::{Read, Write};
    use std::net::IpAddr;

    const SOCK_DIAG_BY_FAMILY: u16 = 20;
    const NLMSG_ERROR: u16 = 2;
    const REQUEST_LENGTH: u32 = 16 + 56;
    fn address_bytes(ip: IpAddr) -> [u8; 16] {
        let mut bytes = [0u8; 16];
        match ip {
            IpAddr::V4(v4) => bytes[..4].copy_from_slice(&v4.octets()),
            IpAddr::V6(v6) => bytes = v6.octets(),
        }
        bytes
    }
    let family = match (from.ip(), to.ip()) {
        (IpAddr::V4(_), IpAddr::V4(_)) => libc::AF_INET,
        (IpAddr::V6(_), IpAddr::V6(_)) => libc::AF_INET6,
        _ => return Ok(None),
    };
    // struct nlmsghdr, then struct inet_diag_req_v2 (sock_diag(7)).
    let mut request = Vec::with_capacity(REQUEST_LENGTH as usize);
    request.extend_from_slice(&REQUEST_LENGTH.to_ne_bytes());
    request.extend_from_slice(&SOCK_DIAG_BY_FAMILY.to_ne_bytes());
    request.extend_from_slice(&(libc::NLM_F_REQUEST as u16).to_ne_bytes());
    request.extend_from_slice(&1u32.to_ne_bytes()); // sequence number
    request.extend_from_slice(&0u32.to_ne_bytes()); // port id: the kernel fills it in
    request.push(family as u8);
    request.push(libc::IPPROTO_TCP as u8);
    request.push(0); // no extensions
    request.push(0);
    request.extend_from_slice(&u32::MAX.to_ne_bytes()); // any state
    request.extend_from_slice(&from.port().to_be_bytes());
    request.extend_from_slice(&to.port().to_be_bytes());
    request.extend_from_slice(&address_bytes(from.ip()));
    request.extend_from_slice(&address_bytes(to.ip()));
    request.extend_from_slice(&0u32.to_ne_bytes()); // any interface
    request.extend_from_slice(&u32::MAX.to_ne_bytes()); // INET_DIAG_NOCOOKIE
    request.extend_from_slice(&u32::MAX.to_ne_bytes());
    debug_assert_eq!(request.len(), REQUEST_LENGTH as usize);

    // SAFETY: socket(2) takes no pointers; a non-negative result is a new descriptor that
    // nothing else owns, so OwnedFd may take it.
    let fd = check(
        unsafe {
            libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_DGRAM | libc::SOCK_CLOEXEC,
                libc::NETLINK_SOCK_DIAG,
            )
        }
        .into(),
    )?;
    // SAFETY: `fd` was just returned by socket(2) and is owned by nothing else.
    let mut socket = std::fs::File::from(unsafe { OwnedFd::from_raw_fd(fd as RawFd) });
    // An unconnected netlink socket sends to the kernel.
    socket.write_all(&request)?;
    let mut answer = [0u8; 1024];
    let length = socket.read(&mut answer)?;
    let answer = &answer[..length];
    let u16_at = |at: usize| {
        answer
            .get(at..at + 2)
            .map(|b| u16::from_ne_bytes([b[0], b[1]]))
    };
    let u32_at = |at: usize| {
        answer
            .get(at..at + 4)
            .map(|b| u32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
    };
    match u16_at(4) {
        // struct inet_diag_msg after the header: 4 bytes, the 48-byte socket id, then
        // expires, rqueue, wqueue and uid (4 bytes each), then the inode.
        Some(SOCK_DIAG_BY_FAMILY) => Ok(u32_at(16 + 4 + 48 + 16).filter(|inode| *inode != 0)),
        // The kernel's answer to a lookup that found nothing is an error message (ENOENT).
        Some(NLMSG_ERROR) => Ok(None),
        _ => Err(io::Error::other("unexpected sock_diag answer")),
    }
}

/// Mounts a tmpfs of `size_bytes` on `dir` in this process's mount namespace.
pub(crate) fn mount_tmpfs(dir: &std::path::Path, size_bytes: u64) -> io::Result<()> {
    let target = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes())
        .map_err(|_| io::Error::other("path contains a NUL byte"))?;
    let options = std::ffi::CString::new(format!("mode=1777,size={size_bytes}"))
        .map_err(|_| io::Error::other("bad tmpfs options"))?;
    mount(
        Some(c"tmpfs"),
        &target,
        Some(c"tmpfs"),
        libc::MS_NOSUID | libc::MS_NODEV,
        Some(&options),
    )
    .map_err(io::Error::from_raw_os_error)
}

/// Detaches whatever is mounted on `dir`.
pub(crate) fn unmount(dir: &std::path::Path) -> io::Result<()> {
    let target = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes())
        .map_err(|_| io::Error::other("path contains a NUL byte"))?;
    // SAFETY: a NUL-terminated path and a valid flag.
    check(libc::c_long::from(unsafe {
        libc::umount2(target.as_ptr(), libc::MNT_DETACH)
    }))
    .map(drop)
}

/// The effective user id of this process.
pub(crate) fn geteuid() -> u32 {
    // SAFETY: geteuid cannot fail.
    unsafe { libc::geteuid() }
}

// ------------------------------------------------------------------------------------------
// Child side: called between clone3 and execve. System calls only; no allocation.

/// The raw result of a child-side call: 0 or the errno.
pub(crate) type Errno = i32;

fn last_errno() -> Errno {
    io::Error::last_os_error()
        .raw_os_error()
        .unwrap_or(libc::EIO)
}

fn ok_or_errno(result: libc::c_int) -> Result<(), Errno> {
    if result == -1 {
        Err(last_errno())
    } else {
        Ok(())
    }
}

/// `ok_or_errno` for raw `syscall` results.
fn check_child(result: libc::c_long) -> Result<(), Errno> {
    if result == -1 {
        Err(last_errno())
    } else {
        Ok(())
    }
}

pub(crate) fn mount(
    source: Option<&CStr>,
    target: &CStr,
    fstype: Option<&CStr>,
    flags: libc::c_ulong,
    data: Option<&CStr>,
) -> Result<(), Errno> {
    let ptr = |value: Option<&CStr>| value.map_or(std::ptr::null(), CStr::as_ptr);
    // SAFETY: every pointer is null or a NUL-terminated string that outlives the call.
    ok_or_errno(unsafe {
        libc::mount(
            ptr(source),
            target.as_ptr(),
            ptr(fstype),
            flags,
            ptr(data).cast(),
        )
    })
}

/// Resets every signal's disposition to the default and unblocks them all. The child of
/// [`clone_vfork`] runs in the server's memory with its signal handlers installed: a signal
/// handled before this would run the server's handler in the child.
pub(crate) fn reset_signals() -> Result<(), Errno> {
    /// The kernel's `struct sigaction` (not glibc's).
    #[repr(C)]
    struct KernelSigaction {
        handler: usize,
        flags: libc::c_ulong,
        restorer: usize,
        mask: u64,
    }
    let default = KernelSigaction {
        handler: libc::SIG_DFL,
        flags: 0,
        restorer: 0,
        mask: 0,
    };
    let no_old: *mut KernelSigaction = std::ptr::null_mut();
    for signal in 1..=64 {
        if signal == libc::SIGKILL || signal == libc::SIGSTOP {
            continue;
        }
        // SAFETY: rt_sigaction with a valid kernel sigaction and the kernel's sigset size.
        // Numbers the kernel refuses (none in 1..=64 but the two above) just fail.
        let _ = unsafe {
            libc::syscall(
                libc::SYS_rt_sigaction,
                signal,
                std::ptr::addr_of!(default),
                no_old,
                8usize,
            )
        };
    }
    let empty: u64 = 0;
    let no_old_mask: *mut u64 = std::ptr::null_mut();
    // SAFETY: rt_sigprocmask with an empty kernel sigset.
    check_child(unsafe {
        libc::syscall(
            libc::SYS_rt_sigprocmask,
            libc::SIG_SETMASK,
            std::ptr::addr_of!(empty),
            no_old_mask,
            8usize,
        )
    })
}

/// Moves the calling process into the cgroup whose `cgroup.procs` is `procs` ("0": oneself).
pub(crate) fn join_cgroup(procs: &CStr) -> Result<(), Errno> {
    // SAFETY: a NUL-terminated path.
    let fd = unsafe { libc::open(procs.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC) };
    if fd == -1 {
        return Err(last_errno());
    }
    // SAFETY: writing one byte from a static buffer to the fd just opened.
    let written = unsafe { libc::write(fd, c"0".as_ptr().cast(), 1) };
    let result = if written == 1 {
        Ok(())
    } else {
        Err(last_errno())
    };
    // SAFETY: closing the fd just opened.
    unsafe { libc::close(fd) };
    result
}

/// Attaches the detached mount `mount` at `target` (in this process's mount namespace).
pub(crate) fn attach_detached(mount: RawFd, target: &CStr) -> Result<(), Errno> {
    // SAFETY: move_mount from a mount fd (empty path) to a NUL-terminated target path.
    check_child(unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            mount,
            c"".as_ptr(),
            libc::AT_FDCWD,
            target.as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH,
        )
    })
}

pub(crate) fn mkdir(path: &CStr, mode: libc::mode_t) -> Result<(), Errno> {
    // SAFETY: a NUL-terminated path.
    match ok_or_errno(unsafe { libc::mkdir(path.as_ptr(), mode) }) {
        Err(libc::EEXIST) => Ok(()),
        other => other,
    }
}

/// Creates an empty file (a bind-mount target for a file source).
pub(crate) fn touch(path: &CStr) -> Result<(), Errno> {
    // SAFETY: a NUL-terminated path; the returned fd is closed right away.
    let fd = unsafe {
        libc::open(
            path.as_ptr(),
            libc::O_CREAT | libc::O_WRONLY | libc::O_CLOEXEC,
            0o644 as libc::c_uint,
        )
    };
    if fd == -1 {
        return Err(last_errno());
    }
    // SAFETY: fd was just opened.
    unsafe { libc::close(fd) };
    Ok(())
}

pub(crate) fn symlink(target: &CStr, link: &CStr) -> Result<(), Errno> {
    // SAFETY: two NUL-terminated paths.
    match ok_or_errno(unsafe { libc::symlink(target.as_ptr(), link.as_ptr()) }) {
        Err(libc::EEXIST) => Ok(()),
        other => other,
    }
}

pub(crate) fn chdir(path: &CStr) -> Result<(), Errno> {
    // SAFETY: a NUL-terminated path.
    ok_or_errno(unsafe { libc::chdir(path.as_ptr()) })
}

/// `pivot_root(".", ".")` then detach the old root: the current directory becomes `/`.
pub(crate) fn pivot_root_here() -> Result<(), Errno> {
    let dot = c".";
    // SAFETY: two NUL-terminated paths.
    check_child(unsafe { libc::syscall(libc::SYS_pivot_root, dot.as_ptr(), dot.as_ptr()) })?;
    // SAFETY: a NUL-terminated path; MNT_DETACH is a valid flag.
    ok_or_errno(unsafe { libc::umount2(dot.as_ptr(), libc::MNT_DETACH) })?;
    chdir(c"/")
}

pub(crate) fn set_rlimit(resource: libc::__rlimit_resource_t, value: u64) -> Result<(), Errno> {
    let limit = libc::rlimit {
        rlim_cur: value,
        rlim_max: value,
    };
    // SAFETY: a valid resource and a pointer to an initialised rlimit.
    ok_or_errno(unsafe { libc::setrlimit(resource, &limit) })
}

pub(crate) fn dup2(from: RawFd, to: RawFd) -> Result<(), Errno> {
    // SAFETY: dup2 on descriptors; errors are reported through errno.
    ok_or_errno(unsafe { libc::dup2(from, to) })
}

pub(crate) fn open_read_only(path: &CStr) -> Result<RawFd, Errno> {
    // SAFETY: a NUL-terminated path.
    let fd = unsafe { libc::open(path.as_ptr(), libc::O_RDONLY) };
    if fd == -1 { Err(last_errno()) } else { Ok(fd) }
}

/// Marks every descriptor from 3 up close-on-exec.
pub(crate) fn cloexec_from_3() -> Result<(), Errno> {
    // SAFETY: close_range with the CLOEXEC flag only changes descriptor flags.
    check_child(unsafe {
        libc::syscall(
            libc::SYS_close_range,
            3u32,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        )
    })
}

pub(crate) fn drop_privileges(uid: u32, gid: u32) -> Result<(), Errno> {
    // Raw system calls, not the libc wrappers: glibc's setgroups/setresuid/setresgid apply the
    // change to every thread of the process ("setxid broadcast"), taking a lock and signalling
    // threads that only exist in the parent. In a child cloned from a multi-threaded process
    // that lock may be held forever and the wait never ends; the kernel calls change only the
    // calling thread, which here is the whole process.
    let no_groups: *const libc::gid_t = std::ptr::null();
    // SAFETY: setgroups with a size of 0 and a null list.
    check_child(unsafe { libc::syscall(libc::SYS_setgroups, 0usize, no_groups) })?;
    // SAFETY: setresgid/setresuid with plain ids.
    check_child(unsafe { libc::syscall(libc::SYS_setresgid, gid, gid, gid) })?;
    // SAFETY: as above.
    check_child(unsafe { libc::syscall(libc::SYS_setresuid, uid, uid, uid) })
}

pub(crate) fn set_no_new_privs() -> Result<(), Errno> {
    // SAFETY: prctl with integer arguments.
    ok_or_errno(unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) })
}

pub(crate) fn set_parent_death_signal() -> Result<(), Errno> {
    // SAFETY: prctl with integer arguments.
    ok_or_errno(unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) })
}

pub(crate) fn sethostname(name: &CStr) -> Result<(), Errno> {
    // SAFETY: a pointer and length within the string.
    ok_or_errno(unsafe { libc::sethostname(name.as_ptr(), name.to_bytes().len()) })
}

/// Writes all of `bytes` (best effort: the child is about to exit anyway).
pub(crate) fn write_all(fd: RawFd, bytes: &[u8]) {
    let mut written = 0;
    while written < bytes.len() {
        // SAFETY: writing from a valid slice.
        let result =
            unsafe { libc::write(fd, bytes[written..].as_ptr().cast(), bytes.len() - written) };
        if result <= 0 {
            return;
        }
        written += result as usize;
    }
}

/// `execve`; only returns on failure.
pub(crate) fn execve(
    program: &CStr,
    argv: &[*const libc::c_char],
    envp: &[*const libc::c_char],
) -> Errno {
    // SAFETY: both arrays are null-terminated arrays of NUL-terminated strings, built by the
    // parent before the clone and alive in this copy of its memory.
    unsafe { libc::execve(program.as_ptr(), argv.as_ptr(), envp.as_ptr()) };
    last_errno()
}

/// Ends the child without running destructors or atexit handlers.
pub(crate) fn exit_child(code: i32) -> ! {
    // SAFETY: _exit never returns and touches nothing of the parent's state.
    unsafe { libc::_exit(code) }
}
