//! A 200 MB flood through the supervisor: every byte counted, the log exact, and the peak RSS
//! of this process flat. Its own test binary so no other test moves the high-water mark.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use swr_core::supervise::{self, AttemptExit, CommandSpec, StdinInput, SuperviseOptions};

fn vm_hwm_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc/self/status")
}

#[tokio::test]
async fn flood_of_200_mb_is_fully_read_with_flat_memory() {
    const TOTAL: u64 = 200_000_000;
    let dir = tempfile::tempdir().unwrap();
    let log_path = dir.path().join("flood.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let cmd = CommandSpec {
        program: "sh".into(),
        // 1000-byte lines.
        args: vec![
            "-c".into(),
            format!("yes \"$(head -c 999 /dev/zero | tr '\\0' a)\" | head -c {TOTAL}"),
        ],
        env: vec![],
        env_remove: vec![],
        cwd: std::env::temp_dir(),
        stdin: StdinInput::Null,
    };
    let before = vm_hwm_kib();
    let t = Instant::now();
    let a = supervise::spawn(&cmd, &SuperviseOptions::default(), Some(log))
        .await
        .unwrap();
    let mut lines = 0u64;
    let mut line_bytes = 0u64;
    let r = a
        .wait(|_, l| {
            lines += 1;
            line_bytes += l.len() as u64 + 1;
        })
        .await;
    let elapsed = t.elapsed();
    let grown_kib = vm_hwm_kib().saturating_sub(before);
    println!(
        "flood: {TOTAL} bytes in {elapsed:?} ({:.0} MB/s), VmHWM grew by {} KiB",
        TOTAL as f64 / 1e6 / elapsed.as_secs_f64(),
        grown_kib
    );
    assert_eq!(r.exit, AttemptExit::Exited { code: 0 });
    assert_eq!(r.stdout_bytes, TOTAL);
    assert_eq!(lines, TOTAL / 1000);
    assert_eq!(line_bytes, TOTAL);
    assert_eq!(std::fs::metadata(&log_path).unwrap().len(), TOTAL);
    assert!(grown_kib < 64 * 1024, "VmHWM grew by {grown_kib} KiB");
    assert!(r.log_error.is_none());
    assert!(elapsed < Duration::from_secs(300));
}
