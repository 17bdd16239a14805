//! Finding and killing what is left of an attempt: members of its process group and every
//! process that carries its marker in `/proc/PID/environ` (which catches `setsid` escapees
//! and works after swr itself was killed). A process is only signalled after its start time
//! was checked again, so a recycled pid is never hit.

use std::collections::HashSet;

use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::{Pid, getpgrp};

use crate::procinfo;

/// The variable every process of an attempt inherits. Its value is a comma-separated list of
/// tokens so an swr nested inside an agent keeps its parent's token too.
pub const MARKER_VAR: &str = "SWR_ATTEMPT_MARKER";

/// A process seen in `/proc`, named by pid and start time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ProcId {
    pub pid: u32,
    pub start_time: u64,
}

/// Why a process was killed by [`kill_orphans`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KillReason {
    /// Member of the recorded process group whose leader was verified.
    Group,
    /// Carries the attempt's marker.
    Marker,
}

/// What [`kill_orphans`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OrphanReport {
    pub killed: Vec<(ProcId, KillReason)>,
    /// A leader pid was given but the process there is not the recorded one (or is gone), so
    /// the group was not signalled as a whole.
    pub leader_mismatch: bool,
}

/// Live (non-zombie) processes, other than the caller, that are in `pgid` or carry `marker`.
/// With `since` (the leader's start time), older processes are skipped without reading
/// their environment: a descendant cannot have started before the leader.
pub(crate) fn scan(
    pgid: Option<u32>,
    marker: Option<&str>,
    since: Option<u64>,
) -> Vec<(ProcId, KillReason)> {
    let me = std::process::id();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut found = Vec::new();
    for entry in dir.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        if pid == me {
            continue;
        }
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let Some((state, pgrp, start_time)) = parse_stat(&stat) else {
            continue;
        };
        if state == 'Z' || since.is_some_and(|t| start_time < t) {
            continue;
        }
        let id = ProcId { pid, start_time };
        if pgid.is_some_and(|g| g == pgrp) {
            found.push((id, KillReason::Group));
        } else if let Some(m) = marker
            && has_marker(pid, m)
        {
            found.push((id, KillReason::Marker));
        }
    }
    found
}

/// State, process group and start time from a `/proc/PID/stat` line.
fn parse_stat(stat: &str) -> Option<(char, u32, u64)> {
    let after = &stat[stat.rfind(')')? + 1..];
    let mut f = after.split_whitespace();
    let state = f.next()?.chars().next()?;
    let _ppid = f.next()?;
    let pgrp = f.next()?.parse().ok()?;
    let start = procinfo::parse_start_time(stat)?;
    Some((state, pgrp, start))
}

fn has_marker(pid: u32, token: &str) -> bool {
    let path = format!("/proc/{pid}/environ");
    // A process in the middle of exec (a `setsid sleep` just started) shows an empty environ
    // for a moment; read it again briefly rather than let an escapee slip through. Only
    // processes with an empty environ pay for this, which normal ones never have.
    for _ in 0..5 {
        match std::fs::read(&path) {
            Ok(env) if env.is_empty() => std::thread::sleep(std::time::Duration::from_millis(1)),
            Ok(env) => return env_has_marker(&env, token),
            Err(_) => return false,
        }
    }
    false
}

pub(crate) fn env_has_marker(environ: &[u8], token: &str) -> bool {
    let key = format!("{MARKER_VAR}=");
    environ.split(|&b| b == 0).any(|var| {
        var.strip_prefix(key.as_bytes())
            .is_some_and(|v| v.split(|&b| b == b',').any(|t| t == token.as_bytes()))
    })
}

/// Signals `p` only if it is still the process that was seen.
pub(crate) fn kill_verified(p: ProcId, sig: Signal) -> bool {
    procinfo::is_same_process(p.pid, p.start_time)
        && pid_of(p.pid).is_some_and(|pid| kill(pid, sig).is_ok())
}

pub(crate) fn killpg_raw(pgid: u32, sig: Signal) -> bool {
    pid_of(pgid).is_some_and(|g| killpg(g, sig).is_ok())
}

fn pid_of(pid: u32) -> Option<Pid> {
    i32::try_from(pid)
        .ok()
        .filter(|&p| p > 1)
        .map(Pid::from_raw)
}

/// Recovery after swr was killed: kills the recorded group if its leader is verifiably the
/// recorded process (pid and start time), and every process carrying `marker`. Never
/// signals the caller, a pid whose start time differs, or a group whose leader is not the
/// recorded one. Uses SIGKILL: the attempt's supervisor is gone, nobody waits for a graceful
/// end. Blocks for a few tens of milliseconds at most.
pub fn kill_orphans(
    marker: &str,
    pgid: Option<u32>,
    leader_pid: Option<u32>,
    leader_start_time: Option<u64>,
) -> OrphanReport {
    let mut report = OrphanReport::default();
    let leader_ok = match (leader_pid, leader_start_time) {
        (Some(p), Some(st)) => procinfo::is_same_process(p, st),
        _ => false,
    };
    report.leader_mismatch = leader_pid.is_some() && !leader_ok;
    let group = if leader_ok { pgid } else { None };
    let marker = (!marker.is_empty()).then_some(marker);
    if group.is_none() && marker.is_none() {
        return report;
    }
    let mut seen = HashSet::new();
    // A few rounds: a process may fork between the scan and the signal.
    for _ in 0..5 {
        let found = scan(group, marker, None);
        let fresh: Vec<_> = found
            .into_iter()
            .filter(|(p, _)| !seen.contains(p))
            .collect();
        if fresh.is_empty() {
            break;
        }
        // killpg on the caller's own group would kill the caller: signal members one by one.
        let whole_group = group.filter(|&g| u32::try_from(getpgrp().as_raw()).ok() != Some(g));
        if let Some(g) = whole_group
            && fresh.iter().any(|(_, r)| *r == KillReason::Group)
        {
            killpg_raw(g, Signal::SIGKILL);
        }
        for (p, reason) in fresh {
            seen.insert(p);
            if reason == KillReason::Marker || whole_group.is_none() {
                kill_verified(p, Signal::SIGKILL);
            }
            report.killed.push((p, reason));
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    report
}

/// "SIGSEGV" for 11; "signal N" for numbers nix does not name (real-time signals).
pub fn signal_name(sig: i32) -> String {
    Signal::try_from(sig)
        .map(|s| s.as_str().to_string())
        .unwrap_or_else(|_| format!("signal {sig}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marker_matches_a_token_in_the_list_only() {
        let env = b"A=1\0SWR_ATTEMPT_MARKER=outer,tok\0B=2\0";
        assert!(env_has_marker(env, "tok"));
        assert!(env_has_marker(env, "outer"));
        assert!(!env_has_marker(env, "to"));
        assert!(!env_has_marker(b"X_SWR_ATTEMPT_MARKER=tok\0", "tok"));
    }

    #[test]
    fn signal_names() {
        assert_eq!(signal_name(11), "SIGSEGV");
        assert_eq!(signal_name(9), "SIGKILL");
        assert_eq!(signal_name(40), "signal 40");
    }

    #[test]
    fn stat_fields() {
        let stat = "1234 (a (b) c) S 1 777 1234 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1 1";
        assert_eq!(parse_stat(stat), Some(('S', 777, 987654)));
    }
}
