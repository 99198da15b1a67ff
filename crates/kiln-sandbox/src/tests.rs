//! Real processes: plain everywhere; isolated where this machine allows it (root with
//! namespaces, as on Kiln's CI machines). Isolated checks report and return when it does not.

use std::io::Read;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::*;

fn pipe_pair() -> (std::fs::File, OwnedFd) {
    let (read, write) = sys::pipe().unwrap();
    (std::fs::File::from(read), write)
}

fn host_system_mounts() -> Vec<Mount> {
    let mut mounts = vec![Mount::Bind {
        source: "/usr".into(),
        target: "/usr".into(),
        writable: false,
    }];
    for dir in ["bin", "lib", "lib64", "sbin"] {
        let host = Path::new("/").join(dir);
        match std::fs::read_link(&host) {
            Ok(target) => mounts.push(Mount::Symlink {
                target,
                link: host.clone(),
            }),
            Err(_) if host.is_dir() => mounts.push(Mount::Bind {
                source: host.clone(),
                target: host,
                writable: false,
            }),
            Err(_) => {}
        }
    }
    for device in ["null", "zero", "urandom"] {
        mounts.push(Mount::Bind {
            source: PathBuf::from("/dev").join(device),
            target: PathBuf::from("/dev").join(device),
            writable: true,
        });
    }
    mounts
}

struct Run {
    stdout: String,
    status: ExitStatus,
}

async fn run(
    sandboxer: &Sandboxer,
    script: &str,
    mounts: Vec<Mount>,
    memory_mb: u64,
) -> (Sandbox, std::fs::File) {
    let (stdout_read, stdout_write) = pipe_pair();
    let (_stderr_read, stderr_write) = pipe_pair();
    let sandbox = sandboxer
        .spawn(SandboxSpec {
            id: format!("test-{}", std::process::id()) + &format!("-{}", rand_suffix()),
            program: "/bin/sh".into(),
            args: vec!["-c".into(), script.into()],
            env: vec![
                ("PATH".into(), "/usr/bin:/bin".into()),
                ("MARKER".into(), "42".into()),
            ],
            cwd: "/".into(),
            mounts,
            limits: Limits {
                memory_bytes: memory_mb << 20,
                cpu_cores: None,
                pids: 64,
                open_files: 256,
            },
            stdout: stdout_write,
            stderr: stderr_write,
        })
        .await
        .expect("spawn");
    (sandbox, stdout_read)
}

fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

async fn run_to_end(
    sandboxer: &Sandboxer,
    script: &str,
    mounts: Vec<Mount>,
    memory_mb: u64,
) -> Run {
    let (sandbox, mut stdout) = run(sandboxer, script, mounts, memory_mb).await;
    let status = tokio::time::timeout(Duration::from_secs(20), sandbox.wait())
        .await
        .expect("sandbox finished in time");
    let mut output = String::new();
    stdout.read_to_string(&mut output).unwrap();
    Run {
        stdout: output,
        status,
    }
}

fn sandboxer(dir: &Path, force_plain: bool) -> Sandboxer {
    Sandboxer::start(SandboxerConfig {
        root_mount_point: dir.join("root"),
        uid: 993,
        gid: 990,
        force_plain,
    })
}

#[tokio::test]
async fn plain_processes_run_with_exactly_the_given_environment() {
    let dir = tempfile::tempdir().unwrap();
    let sandboxer = sandboxer(dir.path(), true);
    assert_eq!(sandboxer.capabilities().tier, Tier::Plain);
    let run = run_to_end(
        &sandboxer,
        "echo $MARKER; echo ${HOME:-unset}; exit 3",
        Vec::new(),
        128,
    )
    .await;
    assert_eq!(run.stdout, "42\nunset\n");
    assert_eq!(run.status, ExitStatus::Exited(3));
}

#[tokio::test]
async fn plain_processes_are_killed_with_their_children() {
    let dir = tempfile::tempdir().unwrap();
    let sandboxer = sandboxer(dir.path(), true);
    let (sandbox, _stdout) = run(&sandboxer, "sleep 30 & sleep 30", Vec::new(), 128).await;
    sandbox.kill();
    let status = tokio::time::timeout(Duration::from_secs(5), sandbox.wait())
        .await
        .unwrap();
    assert_eq!(status, ExitStatus::Signaled(libc::SIGKILL));
}

/// An isolating sandboxer, or `None` (with a note) where this machine gives none.
fn isolating(dir: &Path) -> Option<Sandboxer> {
    let sandboxer = sandboxer(dir, false);
    if sandboxer.capabilities().tier.isolates() {
        Some(sandboxer)
    } else {
        eprintln!(
            "isolation unavailable here ({:?}); isolated checks skipped",
            sandboxer.capabilities().limitations
        );
        None
    }
}

#[tokio::test]
async fn isolated_processes_see_only_their_mounts_as_an_unprivileged_user() {
    let dir = tempfile::tempdir().unwrap();
    let Some(sandboxer) = isolating(dir.path()) else {
        return;
    };
    let code = dir.path().join("code");
    std::fs::create_dir_all(&code).unwrap();
    std::fs::write(code.join("file.txt"), "code").unwrap();
    let mut mounts = host_system_mounts();
    mounts.push(Mount::Bind {
        source: code,
        target: "/var/task".into(),
        writable: false,
    });
    mounts.push(Mount::Tmpfs {
        target: "/tmp".into(),
        size_bytes: 1 << 20,
    });
    let script = "id -u; id -g; echo $$; cat /var/task/file.txt; echo; \
                  (touch /var/task/new 2>/dev/null && echo task-writable) || echo task-readonly; \
                  (touch /new 2>/dev/null && echo root-writable) || echo root-readonly; \
                  echo data > /tmp/t && cat /tmp/t; \
                  ls /proc | grep -c '^[0-9]'; \
                  test -e /root && echo sees-root || echo no-root; \
                  hostname";
    let run = run_to_end(&sandboxer, script, mounts, 128).await;
    assert_eq!(run.status, ExitStatus::Exited(0), "{}", run.stdout);
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines[0], "993", "runs as the sandbox user");
    assert_eq!(lines[1], "990");
    assert_eq!(lines[2], "1", "PID 1 of its own PID namespace");
    assert_eq!(lines[3], "code");
    assert_eq!(lines[4], "task-readonly");
    assert_eq!(lines[5], "root-readonly");
    assert_eq!(lines[6], "data", "/tmp is writable");
    assert!(
        lines[7].parse::<u32>().unwrap() <= 3,
        "sees only its own processes"
    );
    assert_eq!(lines[8], "no-root", "the host filesystem is not visible");
    assert_eq!(lines[9], "localhost");
}

#[tokio::test]
async fn mounts_inside_a_bound_directory_use_its_own_mount_points() {
    let dir = tempfile::tempdir().unwrap();
    let Some(sandboxer) = isolating(dir.path()) else {
        return;
    };
    // Like Kiln's /etc: one directory bound read-only, a host directory bound on top of one of
    // its (empty) subdirectories.
    let etc = dir.path().join("etc");
    std::fs::create_dir_all(etc.join("certs")).unwrap();
    std::fs::write(etc.join("hosts"), "127.0.0.1 localhost\n").unwrap();
    let certs = dir.path().join("host-certs");
    std::fs::create_dir_all(&certs).unwrap();
    std::fs::write(certs.join("ca.pem"), "pem").unwrap();
    let mut mounts = host_system_mounts();
    mounts.push(Mount::Bind {
        source: etc.clone(),
        target: "/etc".into(),
        writable: false,
    });
    mounts.push(Mount::Bind {
        source: certs,
        target: "/etc/certs".into(),
        writable: false,
    });
    let script = "cat /etc/hosts; cat /etc/certs/ca.pem; echo; \
                  (touch /etc/new 2>/dev/null && echo etc-writable) || echo etc-readonly; \
                  (touch /etc/certs/new 2>/dev/null && echo certs-writable) || echo certs-readonly";
    let run = run_to_end(&sandboxer, script, mounts, 128).await;
    assert_eq!(run.status, ExitStatus::Exited(0), "{}", run.stdout);
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(
        lines,
        [
            "127.0.0.1 localhost",
            "pem",
            "etc-readonly",
            "certs-readonly"
        ]
    );
    // The sandbox's mounts changed nothing in the bound directory on the host.
    let mut entries: Vec<String> = std::fs::read_dir(&etc)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    entries.sort();
    assert_eq!(entries, ["certs", "hosts"]);
    assert_eq!(std::fs::read_dir(etc.join("certs")).unwrap().count(), 0);
}

#[tokio::test]
async fn tmp_is_limited_to_its_size() {
    let dir = tempfile::tempdir().unwrap();
    let Some(sandboxer) = isolating(dir.path()) else {
        return;
    };
    let mut mounts = host_system_mounts();
    mounts.push(Mount::Tmpfs {
        target: "/tmp".into(),
        size_bytes: 1 << 20,
    });
    let run = run_to_end(
        &sandboxer,
        "dd if=/dev/zero of=/tmp/big bs=1024 count=2048 2>/dev/null || echo full",
        mounts,
        128,
    )
    .await;
    assert_eq!(run.stdout.trim(), "full");
}

#[tokio::test]
async fn exceeding_memory_is_an_oom_kill() {
    let dir = tempfile::tempdir().unwrap();
    let Some(sandboxer) = isolating(dir.path()) else {
        return;
    };
    if !sandboxer.capabilities().tier.limits() {
        eprintln!("no cgroups here; memory limits are not enforced");
        return;
    }
    if !Path::new("/usr/bin/python3").exists() {
        eprintln!("no /usr/bin/python3 to allocate memory with");
        return;
    }
    let (stdout_read, stdout_write) = pipe_pair();
    let (_stderr_read, stderr_write) = pipe_pair();
    drop(stdout_read);
    let sandbox = sandboxer
        .spawn(SandboxSpec {
            id: format!("oom-{}", std::process::id()),
            program: "/usr/bin/python3".into(),
            args: vec![
                "-c".into(),
                "x = bytearray(200 << 20); print(len(x))".into(),
            ],
            env: Vec::new(),
            cwd: "/".into(),
            mounts: host_system_mounts(),
            limits: Limits {
                memory_bytes: 64 << 20,
                cpu_cores: Some(1.0),
                pids: 64,
                open_files: 256,
            },
            stdout: stdout_write,
            stderr: stderr_write,
        })
        .await
        .unwrap();
    let status = tokio::time::timeout(Duration::from_secs(20), sandbox.wait())
        .await
        .unwrap();
    assert_eq!(status, ExitStatus::Signaled(libc::SIGKILL));
    assert!(sandbox.oom_killed());
    assert!(sandbox.memory_peak().unwrap_or(0) >= 60 << 20);
}

#[tokio::test]
async fn frozen_sandboxes_make_no_progress_and_kills_reach_them() {
    let dir = tempfile::tempdir().unwrap();
    let Some(sandboxer) = isolating(dir.path()) else {
        return;
    };
    if !sandboxer.capabilities().tier.limits() {
        return;
    }
    let (sandbox, mut stdout) = run(
        &sandboxer,
        "i=0; while true; do i=$((i+1)); echo $i; sleep 0.01; done",
        host_system_mounts(),
        64,
    )
    .await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    sandbox.freeze().unwrap();
    crate::sys::set_nonblocking(&OwnedFd::from(stdout.try_clone().unwrap())).unwrap();
    let mut drained = Vec::new();
    let _ = stdout.read_to_end(&mut drained);
    tokio::time::sleep(Duration::from_millis(150)).await;
    let mut while_frozen = Vec::new();
    let _ = stdout.read_to_end(&mut while_frozen);
    assert!(while_frozen.is_empty(), "no output while frozen");
    sandbox.thaw().unwrap();
    tokio::time::sleep(Duration::from_millis(150)).await;
    let mut after = Vec::new();
    let _ = stdout.read_to_end(&mut after);
    assert!(!after.is_empty(), "output resumes after thawing");
    sandbox.freeze().unwrap();
    sandbox.kill();
    let status = tokio::time::timeout(Duration::from_secs(5), sandbox.wait())
        .await
        .unwrap();
    assert_eq!(status, ExitStatus::Signaled(libc::SIGKILL));
}

#[tokio::test]
async fn a_missing_program_is_a_setup_error() {
    let dir = tempfile::tempdir().unwrap();
    let Some(sandboxer) = isolating(dir.path()) else {
        return;
    };
    let (_read, stdout) = pipe_pair();
    let (_read2, stderr) = pipe_pair();
    let error = sandboxer
        .spawn(SandboxSpec {
            id: format!("missing-{}", std::process::id()),
            program: "/nowhere/bootstrap".into(),
            args: Vec::new(),
            env: Vec::new(),
            cwd: "/".into(),
            mounts: host_system_mounts(),
            limits: Limits {
                memory_bytes: 64 << 20,
                cpu_cores: None,
                pids: 16,
                open_files: 64,
            },
            stdout,
            stderr,
        })
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            SandboxError::Setup {
                step: "executing the program",
                ..
            }
        ),
        "{error}"
    );
}

/// The child between clone and exec must not wait on locks the parent's other threads held at
/// the moment of the clone (glibc's set*id wrappers did: they synchronise "all" threads under a
/// lock that thread creation and exit also take). Threads churn here while sandboxes start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sandboxes_start_while_other_threads_come_and_go() {
    let dir = tempfile::tempdir().unwrap();
    let Some(sandboxer) = isolating(dir.path()) else {
        return;
    };
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let churners: Vec<_> = (0..2)
        .map(|_| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    std::thread::spawn(|| {}).join().unwrap();
                }
            })
        })
        .collect();
    for _ in 0..60 {
        let (sandbox, _stdout) = tokio::time::timeout(
            Duration::from_secs(10),
            run(&sandboxer, "exit 0", host_system_mounts(), 64),
        )
        .await
        .expect("the sandbox started (its child did not deadlock before exec)");
        let status = tokio::time::timeout(Duration::from_secs(10), sandbox.wait())
            .await
            .expect("sandbox finished in time");
        assert_eq!(status, ExitStatus::Exited(0));
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for churner in churners {
        churner.join().unwrap();
    }
}

/// A server with more descriptors open than a sandbox may have still starts sandboxes, and
/// the sandbox gets its own limit.
#[tokio::test]
async fn sandboxes_start_while_the_server_holds_many_descriptors() {
    let dir = tempfile::tempdir().unwrap();
    let Some(sandboxer) = isolating(dir.path()) else {
        return;
    };
    // The sandbox's limit below is 256; hold more than that in this process.
    let held: Vec<std::fs::File> = (0..400)
        .map(|_| std::fs::File::open("/dev/null").unwrap())
        .collect();
    let run = run_to_end(&sandboxer, "ulimit -n", host_system_mounts(), 64).await;
    assert_eq!(run.status, ExitStatus::Exited(0));
    assert_eq!(run.stdout, "256\n");
    drop(held);
}

/// The peak-memory reading follows a running sandbox (it is re-read in place after every
/// invocation, not captured once).
#[tokio::test]
async fn peak_memory_is_read_live() {
    let dir = tempfile::tempdir().unwrap();
    let Some(sandboxer) = isolating(dir.path()) else {
        return;
    };
    if !sandboxer.capabilities().tier.limits() || !Path::new("/usr/bin/python3").exists() {
        eprintln!("no cgroups or no /usr/bin/python3 here");
        return;
    }
    let (_stdout_read, stdout_write) = pipe_pair();
    let (_stderr_read, stderr_write) = pipe_pair();
    let sandbox = sandboxer
        .spawn(SandboxSpec {
            id: format!("peak-{}", std::process::id()),
            program: "/usr/bin/python3".into(),
            args: vec![
                "-c".into(),
                "import time; time.sleep(0.5); x = b'x' * (48 << 20); time.sleep(30)".into(),
            ],
            env: Vec::new(),
            cwd: "/".into(),
            mounts: host_system_mounts(),
            limits: Limits {
                memory_bytes: 256 << 20,
                cpu_cores: None,
                pids: 64,
                open_files: 256,
            },
            stdout: stdout_write,
            stderr: stderr_write,
        })
        .await
        .unwrap();
    let before = sandbox.memory_peak().expect("a live reading");
    assert!(before < 40 << 20, "{before}");
    let mut after = before;
    for _ in 0..100 {
        after = sandbox.memory_peak().expect("a live reading");
        if after >= 48 << 20 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        after >= 48 << 20,
        "the peak grew from {before} to only {after}"
    );
    sandbox.kill();
    let _ = tokio::time::timeout(Duration::from_secs(5), sandbox.wait()).await;
}

/// A `/tmp` volume: writable by the sandbox user, limited to its size, kept across sandboxes
/// (a restarted environment finds its files), and never mounted in the server's namespace.
#[tokio::test]
async fn tmp_volumes_persist_across_sandboxes_and_stay_off_the_host() {
    let dir = tempfile::tempdir().unwrap();
    let Some(sandboxer) = isolating(dir.path()) else {
        return;
    };
    let volume = TmpVolume::create(&sandboxer, dir.path().join("volume"), 1 << 20).unwrap();
    let with_volume = || {
        let mut mounts = host_system_mounts();
        mounts.push(volume.mount_at("/tmp"));
        mounts
    };
    let first = run_to_end(
        &sandboxer,
        "echo kept > /tmp/note && (dd if=/dev/zero of=/tmp/big bs=1024 count=2048 2>/dev/null \
         || echo full); rm -f /tmp/big",
        with_volume(),
        64,
    )
    .await;
    assert_eq!(
        first.stdout.trim(),
        "full",
        "the volume is limited to its size"
    );
    let second = run_to_end(&sandboxer, "cat /tmp/note", with_volume(), 64).await;
    assert_eq!(
        second.stdout, "kept\n",
        "a later sandbox sees the same volume"
    );
    if volume.host_dir().is_none() {
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        assert!(
            !mounts.contains(&dir.path().display().to_string()),
            "a detached volume is not mounted on the host"
        );
    }
}

/// The function starts with every signal at its default disposition and none blocked, whatever
/// the server ignores (Rust ignores SIGPIPE) or blocks while it starts sandboxes.
#[tokio::test]
async fn sandboxed_processes_start_with_default_signals() {
    let dir = tempfile::tempdir().unwrap();
    let Some(sandboxer) = isolating(dir.path()) else {
        return;
    };
    let run = run_to_end(
        &sandboxer,
        "grep -E '^Sig(Ign|Blk)' /proc/self/status",
        host_system_mounts(),
        64,
    )
    .await;
    assert_eq!(
        run.stdout,
        "SigBlk:\t0000000000000000\nSigIgn:\t0000000000000000\n"
    );
}
