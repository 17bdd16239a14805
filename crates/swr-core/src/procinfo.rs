//! Facts about processes read from `/proc`: start times and liveness. Used to tell a live
//! process from a recycled PID before anything is signalled. Reads only; never signals.

use std::path::Path;

/// The start time of `pid` in clock ticks since boot (field 22 of `/proc/PID/stat`), or `None`
/// when there is no such process. Together with the pid it names one process for the life of
/// the machine, which a pid alone does not.
pub fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_start_time(&stat)
}

/// Field 22 of a `/proc/PID/stat` line. The command name (field 2) may contain spaces and
/// parentheses, so fields are counted from the last `)`.
pub fn parse_start_time(stat: &str) -> Option<u64> {
    let after = &stat[stat.rfind(')')? + 1..];
    // After ")" come fields 3..; starttime is field 22, the 20th of these.
    after.split_whitespace().nth(19)?.parse().ok()
}

/// The machine's boot id, so that a (pid, start time) pair recorded before a reboot is never
/// matched against a process after it.
pub fn boot_id() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .ok()
        .map(|s| s.trim().to_string())
}

/// True when `pid` is alive and is the very process that had `start_time` (not a recycled pid).
/// Zombies count as dead: they hold no resources and cannot be signalled usefully.
pub fn is_same_process(pid: u32, start_time: u64) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    if state_char(&stat) == Some('Z') {
        return false;
    }
    parse_start_time(&stat) == Some(start_time)
}

/// The one answer to "is this recorded process still the one that registered?": with a
/// recorded start time it must match (a recycled pid is another process); without one (no
/// `/proc` when it registered) an existing, non-zombie pid counts, so a live process is never
/// taken for dead.
pub fn process_alive(pid: u32, start_time: Option<u64>) -> bool {
    match start_time {
        Some(st) => is_same_process(pid, st),
        None => std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .is_ok_and(|stat| state_char(&stat) != Some('Z')),
    }
}

fn state_char(stat: &str) -> Option<char> {
    let after = &stat[stat.rfind(')')? + 1..];
    after.split_whitespace().next()?.chars().next()
}

/// Whether this process ignores signal `sig` (`SIG_IGN`), as inherited from its parent: `nohup`
/// starts its command with SIGHUP ignored. Read from the `SigIgn` mask of `/proc/self/status`
/// because asking the kernel directly (`sigaction` with no new action) is an unsafe call.
/// `None` when `/proc` cannot tell.
pub fn signal_ignored(sig: i32) -> Option<bool> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    signal_ignored_in(&status, sig)
}

/// [`signal_ignored`] on the text of a `/proc/PID/status` file.
pub fn signal_ignored_in(status: &str, sig: i32) -> Option<bool> {
    if !(1..=64).contains(&sig) {
        return None;
    }
    let mask = status
        .lines()
        .find_map(|l| l.strip_prefix("SigIgn:"))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())?;
    Some(mask & (1u64 << (sig - 1)) != 0)
}

/// Whether `/proc` is mounted at all; without it liveness checks degrade to the lock file.
pub fn available() -> bool {
    Path::new("/proc/self/stat").exists()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_field_22_after_a_command_name_with_spaces_and_parens() {
        let stat = "1234 (a (weird) name) S 1 1234 1234 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 10";
        assert_eq!(parse_start_time(stat), Some(987654));
        assert_eq!(state_char(stat), Some('S'));
    }

    #[test]
    fn own_process_is_alive_and_matches_its_start_time() {
        let pid = std::process::id();
        let st = start_time(pid).expect("own start time");
        assert!(is_same_process(pid, st));
        assert!(
            !is_same_process(pid, st + 1),
            "a different start time is another process"
        );
    }

    #[test]
    fn ignored_signals_come_from_the_sigign_mask() {
        let status =
            "Name:\tswr\nSigBlk:\t0000000000000000\nSigIgn:\t0000000000001001\nSigCgt:\t0\n";
        assert_eq!(signal_ignored_in(status, 1), Some(true)); // SIGHUP
        assert_eq!(signal_ignored_in(status, 13), Some(true)); // SIGPIPE
        assert_eq!(signal_ignored_in(status, 15), Some(false));
        assert_eq!(signal_ignored_in(status, 0), None);
        assert_eq!(signal_ignored_in("Name:\tx\n", 1), None);
        // Rust ignores SIGPIPE in every program it starts; this one included.
        assert_eq!(signal_ignored(13), Some(true));
    }

    #[test]
    fn missing_process_has_no_start_time() {
        // Above the kernel's maximum pid (4194304), so it cannot exist.
        assert_eq!(start_time(4_194_305), None);
        assert!(!is_same_process(4_194_305, 1));
    }
}
