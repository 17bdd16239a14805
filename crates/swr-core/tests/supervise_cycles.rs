//! Many start/stop cycles leave no file descriptor, thread or child behind. Its own test
//! binary so parallel tests don't change the counts.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use swr_core::supervise::{self, AttemptExit, CommandSpec, StdinInput, SuperviseOptions};

fn count(dir: &str) -> usize {
    std::fs::read_dir(dir).unwrap().count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_stop_cycles_leak_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let opts = SuperviseOptions {
        stop_grace: Duration::from_millis(500),
        ..SuperviseOptions::default()
    };
    let cmd = CommandSpec {
        program: "sh".into(),
        args: vec!["-c".into(), "echo up; sleep 1000 & exec sleep 1000".into()],
        env: vec![],
        env_remove: vec![],
        cwd: std::env::temp_dir(),
        stdin: StdinInput::Text("prompt".into()),
    };
    let mut baseline = None;
    for i in 0..60 {
        let log = std::fs::File::create(dir.path().join(format!("{i}.log"))).unwrap();
        let a = supervise::spawn(&cmd, &opts, Some(log)).await.unwrap();
        let h = a.stop_handle();
        let r = a.wait(move |_, _| h.stop()).await;
        assert_eq!(r.exit, AttemptExit::Stopped);
        if i == 9 {
            // After warm-up: runtime threads and lazily opened fds exist by now.
            baseline = Some((count("/proc/self/fd"), count("/proc/self/task")));
        }
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (fds, tasks) = baseline.unwrap();
    let (fds_now, tasks_now) = (count("/proc/self/fd"), count("/proc/self/task"));
    assert!(fds_now <= fds, "fds {fds} -> {fds_now}");
    assert!(tasks_now <= tasks + 1, "threads {tasks} -> {tasks_now}");
    // Children are listed under the thread that spawned them.
    let children: String = std::fs::read_dir("/proc/self/task")
        .unwrap()
        .flatten()
        .map(|t| std::fs::read_to_string(t.path().join("children")).unwrap_or_default())
        .collect();
    assert!(children.trim().is_empty(), "children left: {children}");
}
