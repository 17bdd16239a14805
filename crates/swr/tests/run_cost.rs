//! Cost and evidence end to end, with the simulated agent: tokens and cost recorded and shown,
//! budgets that stop a run, verify checks that reject and accept ticks, empty ticks, and
//! `swr metrics` read back by an OpenMetrics parser and compared with `swr stats`.

#![allow(clippy::unwrap_used)]

mod run_support;

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use openmetrics_parser::{OpenMetricsValue, openmetrics::parse_openmetrics};
use run_support::{RunResult, World};
use serde_json::{Value, json};

fn run_with(w: &World, plan: &str, env: &[(&str, &str)], extra: &[&str]) -> RunResult {
    let mut c = w.cmd(plan);
    for (k, v) in env {
        c.env(k, v);
    }
    let out = c
        .args(w.run_args())
        .args(extra)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    RunResult::from(out)
}

fn text(w: &World, args: &[&str]) -> String {
    let out = w.cmd("").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "swr {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn log_of(a: &Value) -> String {
    std::fs::read_to_string(a["log_path"].as_str().unwrap()).unwrap()
}

fn git_subjects(w: &World) -> Vec<String> {
    let out = Command::new("git")
        .args(["log", "--format=%s"])
        .current_dir(&w.project)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

/// The sim agent reports tokens and cost the way claude does: every attempt keeps them, and
/// history, status, stats and the run's end say them.
#[test]
fn tokens_and_cost_are_recorded_and_shown() {
    let w = World::new(2, json!({}));
    let r = run_with(&w, "ok,ok", &[("SWR_SIM_COST", "0.25")], &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let spend = &r.finished()["spend"];
    assert_eq!(spend["cost_usd"], 0.5);
    assert_eq!(spend["attempts"], 2);
    let h = w.history();
    for a in &h {
        assert_eq!(a["cost_usd"], 0.25);
        assert_eq!(a["cost_estimated"], false);
        assert_eq!(a["cached_tokens"], 1500, "{a}");
        assert!(a["input_tokens"].as_u64().unwrap() > 1500, "{a}");
        assert_eq!(a["output_tokens"], 250);
        assert_eq!(a["model"], "sim");
    }
    let finished: Vec<&Value> = r.of("attempt_finished");
    assert_eq!(finished[0]["usage"]["cost_usd"], 0.25);
    assert!(text(&w, &["history"]).contains("$0.25 · "));
    let st = &w.status()[0];
    assert_eq!(st["cost_usd"], 0.5);
    assert_eq!(st["cached_tokens"], 3000);
    assert!(text(&w, &["status"]).contains("cost $0.50 · "));
    let stats: Value = serde_json::from_str(&text(&w, &["stats", "--json"])).unwrap();
    assert_eq!(stats["spend"]["cost_usd"], 0.5);
    assert_eq!(stats["spend"]["output_tokens"], 500);
    let by_task: Value =
        serde_json::from_str(&text(&w, &["stats", "--by", "task", "--json"])).unwrap();
    let rows = by_task["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["task_id"], "1");
    assert_eq!(rows[0]["cost_usd"], 0.25);
    assert!(text(&w, &["stats", "--by", "day"]).contains("total"));
}

/// `max_cost_usd` $1.00, attempts at $0.40: after two ($0.80 spent) the third would pass the
/// budget, so it never starts. Status budget, exit 1, a notification naming the budget and
/// the amount.
#[test]
fn max_cost_stops_the_run_before_the_attempt_that_would_exceed_it() {
    let w = World::new(5, json!({"max_cost_usd": 1.0}));
    let notes = w.dir.path().join("notes");
    let cfg = std::fs::read_to_string(&w.config).unwrap().replacen(
        "{",
        &format!(
            "{{\"notify_command\": [\"sh\", \"-c\", \"echo \\\"$SWR_EVENT $SWR_REASON\\\" >> {}\"],",
            notes.display()
        ),
        1,
    );
    std::fs::write(&w.config, cfg).unwrap();
    let r = run_with(&w, "", &[("SWR_SIM_COST", "0.4")], &[]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let end = &r.finished()["end"];
    assert_eq!(end["kind"], "budget", "{end}");
    assert_eq!(end["budget"], "max_cost_usd");
    assert_eq!(end["limit"], 1.0);
    assert_eq!(end["expected"], 0.4);
    assert_eq!(w.history().len(), 2, "the third attempt never started");
    assert_eq!(w.tasks_done(), 2);
    let st = &w.status()[0];
    assert_eq!(st["status"], "budget");
    let reason = st["reason"].as_str().unwrap();
    assert!(
        reason.contains("max_cost_usd") && reason.contains("$1.00") && reason.contains("$0.80"),
        "{reason}"
    );
    let notes = std::fs::read_to_string(&notes).unwrap();
    assert!(
        notes.starts_with("budget budget max_cost_usd of $1.00"),
        "{notes}"
    );

    // --max-cost overrides the key: $0.50 leaves room for one attempt only.
    let w = World::new(5, json!({"max_cost_usd": 100.0}));
    let r = run_with(&w, "", &[("SWR_SIM_COST", "0.4")], &["--max-cost", "0.5"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert_eq!(r.finished()["end"]["kind"], "budget");
    assert_eq!(w.history().len(), 1);
}

/// `spec_budget_usd` counts every run of the spec: a second run starts with what the first
/// spent, and stops at once when too little is left.
#[test]
fn the_spec_budget_spans_runs() {
    let w = World::new(5, json!({"spec_budget_usd": 1.0}));
    let r = run_with(
        &w,
        "",
        &[("SWR_SIM_COST", "0.3")],
        &["--max-iterations", "2"],
    );
    assert_eq!(
        r.finished()["end"]["kind"],
        "max_iterations",
        "{}",
        r.stderr
    );
    let r = run_with(&w, "", &[("SWR_SIM_COST", "0.3")], &[]);
    assert_eq!(r.code, 1);
    let end = &r.finished()["end"];
    assert_eq!(end["kind"], "budget");
    assert_eq!(end["budget"], "spec_budget_usd");
    assert_eq!(
        w.history().len(),
        3,
        "0.60 + 0.30 spent; the next 0.30 would pass 1.00"
    );
}

/// A check that fails puts the tick back (and commits that), the attempt counts as no
/// progress, the next prompt carries the command and its output, and when the check passes
/// the tick stands. The evidence keeps both checks.
#[test]
fn a_failing_verify_unticks_reprompts_and_a_later_passing_one_accepts() {
    let count = tempfile::NamedTempFile::new().unwrap();
    let script = format!(
        "n=$(cat {c}); n=${{n:-0}}; echo $((n+1)) > {c}; \
         if [ \"$n\" -eq 0 ]; then echo 'test greeting ... FAILED'; \
         echo \"assertion failed: expected hi, got ''\"; exit 1; fi; echo 'test result: ok'",
        c = count.path().display()
    );
    let w = World::new(2, json!({"verify_command": ["sh", "-c", script]}));
    let r = w.run("ok,ok,ok");
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(w.tasks_done(), 2);
    let h = w.history();
    assert_eq!(h.len(), 3, "{h:#?}");
    assert_eq!(h[0]["outcome"], "no_progress");
    assert_eq!(h[0]["ticked"], 0);
    let note = h[0]["note"].as_str().unwrap();
    assert!(
        note.contains("verify `sh -c") && note.contains("task 1 put back"),
        "{note}"
    );
    assert_eq!(
        (h[1]["outcome"].as_str(), h[1]["ticked"].as_u64()),
        (Some("success"), Some(1))
    );
    // swr's own commit of the unticked tasks.md, naming the check.
    assert!(
        git_subjects(&w)
            .iter()
            .any(|s| s.starts_with("swr: verify failed: `sh -c") && s.contains("task 1 back")),
        "{:?}",
        git_subjects(&w)
    );
    // The retry's prompt says what failed.
    let prompt = log_of(&h[1]);
    assert!(prompt.contains("The last check failed"), "{prompt}");
    assert!(prompt.contains("test greeting ... FAILED"), "{prompt}");
    assert!(!log_of(&h[2]).contains("The last check failed"));
    let checked = r.of("checked");
    assert_eq!(checked.len(), 3);
    assert_eq!(checked[0]["passed"], false);
    assert_eq!(checked[0]["end"], "exit 1");

    let ev: Value = serde_json::from_str(&text(&w, &["evidence", "feat", "--json"])).unwrap();
    let task1 = &ev[0];
    assert_eq!(task1["task_id"], "1");
    assert_eq!(task1["status"], "done");
    let e = task1["evidence"].as_array().unwrap();
    assert_eq!(e.len(), 2);
    assert_eq!(e[0]["accepted"], false);
    assert_eq!(e[0]["check"]["exit_code"], 1);
    assert!(
        e[0]["check"]["output_tail"]
            .as_str()
            .unwrap()
            .contains("expected hi")
    );
    assert!(std::path::Path::new(e[0]["check"]["log_path"].as_str().unwrap()).is_file());
    assert_eq!(e[1]["accepted"], true);
    assert_eq!(e[1]["check"]["exit_code"], 0);
    assert_eq!(e[1]["check"]["source"], "config");
    assert_eq!(e[1]["head"].as_str().unwrap().len(), 40);
    assert_eq!(ev[1]["evidence"][0]["accepted"], true);

    let listing = text(&w, &["evidence", "feat"]);
    assert!(
        listing.contains("rejected: put back to in progress"),
        "{listing}"
    );
    assert!(listing.contains("| test greeting ... FAILED"), "{listing}");
    let history = text(&w, &["history", "--evidence"]);
    assert!(
        history.contains("task 1 Task number 1: rejected"),
        "{history}"
    );
    assert!(history.contains("verify `sh -c"), "{history}");
    assert!(w.git_status().is_empty(), "{}", w.git_status());
}

/// A tick whose attempt changed nothing but tasks.md is flagged empty, with no verify
/// command at all; a tick with real work is not.
#[test]
fn a_tick_with_nothing_behind_it_is_flagged_empty() {
    let w = World::new(2, json!({}));
    let r = w.run("empty,ok");
    assert_eq!(r.code, 0, "{}", r.stderr);
    let ev: Value = serde_json::from_str(&text(&w, &["evidence", "feat", "--json"])).unwrap();
    assert_eq!(ev[0]["evidence"][0]["empty"], true);
    assert_eq!(
        ev[0]["evidence"][0]["accepted"], true,
        "flagged, not rejected"
    );
    assert!(ev[0]["evidence"][0]["check"].is_null());
    assert_eq!(ev[1]["evidence"][0]["empty"], false);
    assert!(
        r.of("warning")
            .iter()
            .any(|e| e["message"].as_str().unwrap().contains("flagged empty"))
    );
    assert!(text(&w, &["evidence", "feat"]).contains("empty: its attempt changed nothing"));
}

/// A task's `_Verify:` line beats the spec's `swr.json`, which beats `verify_command`.
#[test]
fn a_task_line_and_the_spec_config_override_verify_command() {
    let w = World::new(0, json!({"verify_command": ["false"]}));
    let spec = w.project.join(".spec-workflow/specs/feat");
    std::fs::write(
        spec.join("tasks.md"),
        "# Tasks\n\n- [ ] 1. One\n- [ ] 2. Two\n  - _Verify: test -f sim-work-feat.txt_\n",
    )
    .unwrap();
    std::fs::write(spec.join("swr.json"), r#"{"verify": "sh -c 'exit 0'"}"#).unwrap();
    run_support::git(&w.project, &["add", "-A"]);
    run_support::git(&w.project, &["commit", "-q", "-m", "tasks"]);
    let r = w.run("ok,ok");
    assert_eq!(r.code, 0, "{}\n{:#?}", r.stderr, r.events);
    let ev: Value = serde_json::from_str(&text(&w, &["evidence", "feat", "--json"])).unwrap();
    let c1 = &ev[0]["evidence"][0]["check"];
    assert_eq!(c1["source"], "spec");
    assert_eq!(c1["command"], json!(["sh", "-c", "exit 0"]));
    let c2 = &ev[1]["evidence"][0]["check"];
    assert_eq!(c2["source"], "task");
    assert_eq!(c2["command"], json!(["test", "-f", "sim-work-feat.txt"]));
    assert_eq!(c2["exit_code"], 0);
}

/// `swr demo` ends with what it cost.
#[test]
fn the_demo_ends_with_a_cost_line() {
    let w = World::new(1, json!({}));
    let out = w.cmd("").args(["demo"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let line = stderr
        .lines()
        .find(|l| l.starts_with("cost: "))
        .unwrap_or_else(|| panic!("no cost line:\n{stderr}"));
    assert!(
        line.starts_with("cost: $0.0") && line.contains("tokens in") && line.contains("attempts"),
        "{line}"
    );
}

/// The values of every sample of a family, by one label.
fn by_label(text: &str, family: &str, label: &str) -> BTreeMap<String, f64> {
    let parsed = parse_openmetrics(text).unwrap_or_else(|e| panic!("{e:?}\n{text}"));
    let mut out = BTreeMap::new();
    let Some(f) = parsed.families.get(family) else {
        return out;
    };
    for s in f.iter_samples() {
        let key = s
            .get_labelset()
            .unwrap()
            .get_label_value(label)
            .unwrap_or("")
            .to_string();
        let v = match &s.value {
            OpenMetricsValue::Counter(c) => c.value.as_f64(),
            OpenMetricsValue::Gauge(g) => g.as_f64(),
            OpenMetricsValue::Histogram(h) => h.count.unwrap_or(0) as f64,
            other => panic!("{other:?}"),
        };
        *out.entry(key).or_insert(0.0) += v;
    }
    out
}

/// `swr metrics` is read back by an OpenMetrics parser and says what `swr stats` and
/// `swr status` say.
#[test]
fn metrics_parse_back_and_match_stats() {
    let w = World::new(2, json!({"retry_max_retries": 2}));
    let r = run_with(&w, "crash,ok,empty", &[("SWR_SIM_COST", "0.125")], &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let m = text(&w, &["metrics"]);
    let stats: Value = serde_json::from_str(&text(&w, &["stats", "--json"])).unwrap();

    let outcomes = by_label(&m, "swr_attempts", "outcome");
    let want: BTreeMap<String, f64> = stats["by_outcome"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_f64().unwrap()))
        .collect();
    assert_eq!(outcomes, want);
    assert_eq!(want.get("crash"), Some(&1.0));
    let cost: f64 = by_label(&m, "swr_cost_usd", "source").values().sum();
    assert!((cost - stats["spend"]["cost_usd"].as_f64().unwrap()).abs() < 1e-9);
    assert!((cost - 0.25).abs() < 1e-9, "{m}");
    let tokens = by_label(&m, "swr_tokens", "kind");
    for (kind, key) in [
        ("input", "input_tokens"),
        ("cached_input", "cached_tokens"),
        ("output", "output_tokens"),
    ] {
        assert_eq!(
            tokens[kind],
            stats["spend"][key].as_f64().unwrap(),
            "{kind}"
        );
    }
    assert_eq!(
        by_label(&m, "swr_retries", "provider")["sim"],
        stats["iterations_needing_retry"].as_f64().unwrap()
    );
    let runners = by_label(&m, "swr_runners", "status");
    let statuses = w.status();
    for (status, n) in &runners {
        let have = statuses.iter().filter(|s| s["status"] == *status).count();
        assert_eq!(*n as usize, have, "{status}");
    }
    assert_eq!(runners["completed"], 1.0);
    assert_eq!(
        by_label(&m, "swr_attempt_duration_seconds", "provider")["sim"],
        w.history().len() as f64
    );
    assert_eq!(by_label(&m, "swr_ticks", "result")["accepted"], 2.0);
    assert_eq!(by_label(&m, "swr_empty_ticks", "")[""], 1.0);
}

/// `--watch FILE` writes the file at once and rewrites it (whole) when a run changes the store.
#[test]
fn metrics_watch_rewrites_the_file_when_the_store_changes() {
    let w = World::new(1, json!({}));
    let out_dir = w.dir.path().join("textfile");
    std::fs::create_dir_all(&out_dir).unwrap();
    let file = out_dir.join("swr.prom");
    let mut child = w
        .cmd("")
        .args(["metrics", "--watch"])
        .arg(&file)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let attempts = |f: &std::path::Path| -> Option<f64> {
        let t = std::fs::read_to_string(f).ok()?;
        Some(by_label(&t, "swr_attempts", "outcome").values().sum())
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while attempts(&file).is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(attempts(&file), Some(0.0));
    assert_eq!(w.run("ok").code, 0);
    let deadline = Instant::now() + Duration::from_secs(30);
    while attempts(&file) != Some(1.0) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(attempts(&file), Some(1.0), "rewritten after the run");
    let _ = child.kill();
    let _ = child.wait();
    let names: Vec<_> = std::fs::read_dir(&out_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        names,
        vec![std::ffi::OsString::from("swr.prom")],
        "no temp file left"
    );
}
