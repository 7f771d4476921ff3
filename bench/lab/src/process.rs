//! The lab's processes, found through /proc and signalled with kill(1): no `unsafe`, and no
//! parsing of `ps` output.

use std::collections::BTreeSet;
use std::fs;
use std::thread;
use std::time::{Duration, Instant};

use super::command::run;
use crate::Error;

/// Every process id currently in /proc.
pub(crate) fn all_pids() -> Vec<u32> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect()
}

/// The process's command line with NULs turned into spaces; `None` once it is gone.
/// nginx rewrites its own: "nginx: master process /usr/sbin/nginx -p ... -c ...",
/// "nginx: worker process".
pub(crate) fn cmdline(pid: u32) -> Option<String> {
    let raw = fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let text = String::from_utf8_lossy(&raw).replace('\0', " ");
    Some(text.trim_end().to_owned())
}

/// State letter and parent pid from /proc/<pid>/stat. The command name sits in parentheses
/// and may itself contain spaces and parentheses, so the fields are read after the last ')'.
fn stat(pid: u32) -> Option<(char, u32)> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat(&text)
}

fn parse_stat(text: &str) -> Option<(char, u32)> {
    let mut fields = text.get(text.rfind(')')? + 1..)?.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let ppid = fields.next()?.parse().ok()?;
    Some((state, ppid))
}

/// Alive means present and not a zombie: a killed daemon whose parent has not reaped it yet
/// holds no sockets and no namespace.
pub(crate) fn alive(pid: u32) -> bool {
    matches!(stat(pid), Some((state, _)) if state != 'Z' && state != 'X')
}

/// The processes whose parent is one of `parents`.
pub(crate) fn children_of(parents: &BTreeSet<u32>) -> BTreeSet<u32> {
    all_pids()
        .into_iter()
        .filter(|&pid| matches!(stat(pid), Some((_, ppid)) if parents.contains(&ppid)))
        .collect()
}

/// The inode of the network namespace the process lives in (`/proc/<pid>/ns/net` reads as
/// "net:[4026532290]"); equal to the inode of `/run/netns/<name>` for a named namespace.
pub(crate) fn netns_inode(pid: u32) -> Option<u64> {
    let link = fs::read_link(format!("/proc/{pid}/ns/net")).ok()?;
    let text = link.to_str()?;
    text.strip_prefix("net:[")?.strip_suffix(']')?.parse().ok()
}

/// Sends `signal` (a name such as "TERM") to each process. A process that exits between the
/// scan and the signal is not an error.
pub(crate) fn signal(pids: &BTreeSet<u32>, signal: &str) -> Result<(), Error> {
    for pid in pids {
        let pid = pid.to_string();
        if let Err(e) = run("kill", &["-s", signal, &pid]) {
            if pid.parse().is_ok_and(alive) {
                return Err(e);
            }
        }
    }
    Ok(())
}

/// Waits until none of `pids` is alive or `timeout` has passed; returns the survivors.
pub(crate) fn wait_gone(pids: &BTreeSet<u32>, timeout: Duration) -> BTreeSet<u32> {
    let deadline = Instant::now() + timeout;
    loop {
        let survivors: BTreeSet<u32> = pids.iter().copied().filter(|&p| alive(p)).collect();
        if survivors.is_empty() || Instant::now() >= deadline {
            return survivors;
        }
        thread::sleep(Duration::from_millis(20));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_after_a_command_name_with_parentheses() {
        let line = "4242 (nginx: (odd) name) S 1 4242 4242 0 -1 4194624 ...";
        assert_eq!(parse_stat(line), Some(('S', 1)));
        assert_eq!(parse_stat("garbage"), None);
    }

    #[test]
    fn this_process_is_alive_and_named() {
        let me = std::process::id();
        assert!(alive(me));
        assert!(all_pids().contains(&me));
        assert!(cmdline(me).is_some());
        assert!(netns_inode(me).is_some());
    }
}
