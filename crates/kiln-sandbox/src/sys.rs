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
    /// In the parent: the child's pid and a pidfd for it.
    Parent { pid: libc::pid_t, pidfd: OwnedFd },
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
        pid => {
            // SAFETY: on success the kernel stored a new, owned pidfd in `pidfd`.
            let pidfd = unsafe { OwnedFd::from_raw_fd(pidfd) };
            Ok(Cloned::Parent {
                pid: pid as libc::pid_t,
                pidfd,
            })
        }
    }
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

/// Blocks until one byte (or EOF) can be read from `fd`.
pub(crate) fn read_byte(fd: RawFd) -> Result<(), Errno> {
    let mut byte = 0u8;
    loop {
        // SAFETY: reading at most one byte into a valid buffer.
        let read = unsafe { libc::read(fd, std::ptr::addr_of_mut!(byte).cast(), 1) };
        if read >= 0 {
            return Ok(());
        }
        let errno = last_errno();
        if errno != libc::EINTR {
            return Err(errno);
        }
    }
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
