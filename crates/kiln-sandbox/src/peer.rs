//! Which sandbox is on the other end of a loopback TCP connection.
//!
//! Sandboxes share the host's network, so every environment's Runtime API port is reachable
//! from every sandbox. An environment's Runtime API answers only connections made by a process
//! of its own sandbox: the kernel's socket diagnostics give the connecting socket's inode, and
//! the sandbox's processes (its PID 1 and every descendant: orphans are re-parented to PID 1 of
//! the sandbox's PID namespace, so nothing escapes the tree) must hold it. That is a netlink
//! round trip and a walk of a few descriptor tables, once per connection (runtimes keep theirs
//! open).

use std::net::SocketAddr;
use std::path::Path;

use crate::sys;

/// Whether the connection from `peer` to `local` was made by a process of the sandbox whose
/// first process is `root_pid` (a host pid).
pub(crate) fn tree_owns_connection(root_pid: i32, peer: SocketAddr, local: SocketAddr) -> bool {
    let inode = match sys::tcp_socket_inode(peer, local) {
        Ok(Some(inode)) => inode,
        Ok(None) => return false,
        Err(error) => {
            tracing::warn!(%error, "looking up a Runtime API connection's socket failed");
            return false;
        }
    };
    let wanted = format!("socket:[{inode}]");
    process_tree(root_pid)
        .iter()
        .any(|pid| holds(Path::new("/proc").join(pid.to_string()).join("fd"), &wanted))
}

/// `root` and all its descendants, from `/proc/PID/task/TID/children`.
fn process_tree(root: i32) -> Vec<i32> {
    let mut tree = vec![root];
    let mut index = 0;
    while let Some(&pid) = tree.get(index) {
        index += 1;
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
            continue;
        };
        for task in tasks.flatten() {
            let Ok(children) = std::fs::read_to_string(task.path().join("children")) else {
                continue;
            };
            for child in children
                .split_whitespace()
                .filter_map(|child| child.parse::<i32>().ok())
            {
                if !tree.contains(&child) {
                    tree.push(child);
                }
            }
        }
        // A fork bomb's tree is not walked to the end: the pids limit bounds it anyway.
        if tree.len() > 4096 {
            break;
        }
    }
    tree
}

/// Whether a process's descriptor directory has a link to `wanted` (`socket:[INODE]`).
fn holds(fd_dir: std::path::PathBuf, wanted: &str) -> bool {
    let Ok(descriptors) = std::fs::read_dir(fd_dir) else {
        return false;
    };
    descriptors.flatten().any(|descriptor| {
        std::fs::read_link(descriptor.path())
            .map(|target| target.as_os_str() == wanted)
            .unwrap_or(false)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_owns_its_own_loopback_connection() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (_server_side, peer) = listener.accept().unwrap();
        assert_eq!(peer, client.local_addr().unwrap());
        let local = listener.local_addr().unwrap();
        let me = i32::try_from(std::process::id()).unwrap();
        assert!(tree_owns_connection(me, peer, local));
        // Another process (here a child of this one, which holds none of its sockets) does not
        // own it, and a process tree that does not exist owns nothing.
        let mut other = std::process::Command::new("sleep")
            .arg("5")
            .spawn()
            .unwrap();
        let other_pid = i32::try_from(other.id()).unwrap();
        assert!(!tree_owns_connection(other_pid, peer, local));
        other.kill().unwrap();
        other.wait().unwrap();
        assert!(!tree_owns_connection(i32::MAX - 1, peer, local));
        // Another connection's address names no socket of this pair.
        let other: SocketAddr = "127.0.0.1:1".parse().unwrap();
        assert!(!tree_owns_connection(me, other, local));
    }
}
