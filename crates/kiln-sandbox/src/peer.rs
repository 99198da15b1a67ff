//! Which sandbox is on the other end of a loopback TCP connection.
//!
//! Sandboxes share the host's network, so every environment's Runtime API port is reachable
//! from every sandbox. An environment's Runtime API answers only connections made by a process
//! of its own sandbox: the kernel's socket diagnostics give the connecting socket's inode, and
//! the sandbox's processes (its PID 1 and every descendant: orphans are re-parented to PID 1 of
//! the sandbox's PID namespace, so nothing escapes the tree) must hold it. That is a netlink
//! round trip and a walk of a few descriptor tables, once per connection (runtimes keep theirs
//! open). Where socket diagnostics find nothing (a kernel without `inet_diag` answers every
//! lookup that way), the socket table in `/proc/net/tcp` is read instead: slower (milliseconds
//! with thousands of sockets on the host), but a missing module must not lock every runtime out.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::Path;

use crate::sys;

/// Whether the connection from `peer` to `local` was made by a process of the sandbox whose
/// first process is `root_pid` (a host pid).
pub(crate) fn tree_owns_connection(root_pid: i32, peer: SocketAddr, local: SocketAddr) -> bool {
    let inode = match sys::tcp_socket_inode(peer, local) {
        Ok(Some(inode)) => Some(u64::from(inode)),
        Ok(None) => proc_socket_inode(peer, local),
        Err(error) => {
            tracing::debug!(%error, "socket diagnostics failed; reading /proc/net/tcp");
            proc_socket_inode(peer, local)
        }
    };
    let Some(inode) = inode else {
        return false;
    };
    let wanted = format!("socket:[{inode}]");
    process_tree(root_pid)
        .iter()
        .any(|pid| holds(Path::new("/proc").join(pid.to_string()).join("fd"), &wanted))
}

/// The inode of the socket bound to `peer` and connected to `local`, from `/proc/net/tcp` (or
/// `tcp6`).
fn proc_socket_inode(peer: SocketAddr, local: SocketAddr) -> Option<u64> {
    let table = if peer.is_ipv4() {
        "/proc/net/tcp"
    } else {
        "/proc/net/tcp6"
    };
    socket_inode_in(&std::fs::read_to_string(table).ok()?, peer, local)
}

fn socket_inode_in(table: &str, peer: SocketAddr, local: SocketAddr) -> Option<u64> {
    table.lines().skip(1).find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let (own, remote, inode) = (fields.get(1)?, fields.get(2)?, fields.get(9)?);
        (parse_address(own)? == peer && parse_address(remote)? == local)
            .then(|| inode.parse().ok())
            .flatten()
            .filter(|inode| *inode != 0)
    })
}

/// `0100007F:1F90` (the address as the kernel's 32-bit words in host byte order, the port in
/// hexadecimal) as a socket address.
fn parse_address(text: &str) -> Option<SocketAddr> {
    let (address, port) = text.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let words = address
        .as_bytes()
        .chunks(8)
        .map(|word| {
            let word = std::str::from_utf8(word).ok()?;
            Some(u32::from_str_radix(word, 16).ok()?.to_ne_bytes())
        })
        .collect::<Option<Vec<[u8; 4]>>>()?;
    let ip = match words.as_slice() {
        [one] => IpAddr::V4(Ipv4Addr::from(*one)),
        [a, b, c, d] => {
            let mut bytes = [0u8; 16];
            for (index, word) in [a, b, c, d].into_iter().enumerate() {
                bytes[index * 4..index * 4 + 4].copy_from_slice(word);
            }
            IpAddr::V6(Ipv6Addr::from(bytes))
        }
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
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
    fn addresses_parse_as_the_kernel_prints_them() {
        assert_eq!(
            parse_address("0100007F:1F90"),
            Some("127.0.0.1:8080".parse().unwrap())
        );
        assert_eq!(
            parse_address("00000000000000000000000001000000:0050"),
            Some("[::1]:80".parse().unwrap())
        );
        assert_eq!(parse_address("zz:1"), None);
    }

    #[test]
    fn the_proc_table_and_socket_diagnostics_agree() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (_server_side, peer) = listener.accept().unwrap();
        let local = listener.local_addr().unwrap();
        let from_proc = proc_socket_inode(peer, local).expect("the socket is in /proc/net/tcp");
        match sys::tcp_socket_inode(peer, local) {
            Ok(Some(inode)) => assert_eq!(u64::from(inode), from_proc),
            // A kernel without inet_diag: the /proc fallback is what serves there.
            other => eprintln!("socket diagnostics unavailable here: {other:?}"),
        }
        drop(client);
    }

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
