//! End to end: `swr doctor` with fake agent CLIs on an isolated PATH: ok/warn/fail per check
//! with its fix, `--json`, exit 1 on a failed check, the state dir's permissions.
#![allow(clippy::unwrap_used)]

mod cli_support;

use std::os::unix::fs::PermissionsExt;

use cli_support::{Sandbox, stderr, stdout};
use serde_json::Value;

/// A sandbox with repos, git and a `claude` that prints a version.
fn healthy() -> Sandbox {
    let sb = Sandbox::with_repos();
    sb.link_git();
    sb.fake_bin("claude", "echo '2.1.3 (Claude Code)'");
    sb
}

fn doctor_json(sb: &Sandbox, cmd: &mut assert_cmd::Command) -> (Option<i32>, Vec<Value>) {
    doctor_json_args(sb, cmd, &[])
}

fn doctor_json_args(
    sb: &Sandbox,
    cmd: &mut assert_cmd::Command,
    args: &[&str],
) -> (Option<i32>, Vec<Value>) {
    let out = cmd.args(["doctor", "--json"]).args(args).output().unwrap();
    let checks: Vec<Value> = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", sb.redact(&stdout(&out))));
    (out.status.code(), checks)
}

fn find<'a>(checks: &'a [Value], name: &str) -> Vec<&'a Value> {
    checks.iter().filter(|c| c["check"] == name).collect()
}

#[test]
fn healthy_setup_passes_and_reports_the_agent_version() {
    let sb = healthy();
    let out = sb
        .swr_isolated()
        .env("SWR_REPOS_ROOT", sb.repos())
        .arg("doctor")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    let text = sb.redact(&stdout(&out));
    assert!(
        text.contains(
            "ok    provider claude   [SANDBOX]/bin/claude, version 2.1.3 (Claude Code)\n"
        ),
        "{text}"
    );
    // Providers that are not the default only warn, with the install command.
    assert!(
        text.contains("warn  provider codex    \"codex\" not found on PATH\n"),
        "{text}"
    );
    assert!(
        text.contains("fix: npm install -g @openai/codex, or set \"codex_command\""),
        "{text}"
    );
    assert!(text.contains("ok    git "), "{text}");
    assert!(
        text.contains("ok    specs             3 project(s), 4 spec(s) under [SANDBOX]/repos"),
        "{text}"
    );
    // The malformed tasks.md line is named with file:line.
    assert!(
        text.contains(
            "warn  spec parser       [SANDBOX]/repos/lib/.spec-workflow/specs/parser/tasks.md:4: \
             unknown checkbox mark"
        ),
        "{text}"
    );
    assert!(
        text.contains("ok    state dir         [SANDBOX]/cache/spec-workflow-runner"),
        "{text}"
    );
    assert_eq!(stderr(&out), "");
    // doctor creates the state dir private.
    let mode = std::fs::metadata(sb.state_dir())
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o077, 0, "state dir mode {mode:o}");
}

#[test]
fn json_lists_every_check_with_status_and_fix() {
    let sb = healthy();
    let (code, checks) = doctor_json(&sb, sb.swr_isolated().env("SWR_REPOS_ROOT", sb.repos()));
    assert_eq!(code, Some(0));
    for c in &checks {
        assert!(c["check"].is_string() && c["message"].is_string(), "{c}");
        let status = c["status"].as_str().unwrap();
        assert!(["ok", "warn", "fail"].contains(&status), "{c}");
        assert_eq!(
            c.get("fix").is_some(),
            status != "ok",
            "a fix exactly when not ok: {c}"
        );
    }
    let claude = find(&checks, "provider claude");
    assert_eq!(claude[0]["status"], "ok");
    assert!(
        claude[0]["message"]
            .as_str()
            .unwrap()
            .ends_with("version 2.1.3 (Claude Code)")
    );
    assert_eq!(find(&checks, "git")[0]["status"], "ok");
}

#[test]
fn missing_default_provider_fails_with_exit_1() {
    let sb = Sandbox::with_repos();
    sb.link_git();
    let out = sb
        .swr_isolated()
        .env("SWR_REPOS_ROOT", sb.repos())
        .arg("doctor")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(
        text.contains(
            "fail  provider claude   \"claude\" not found on PATH (the default provider)\n"
        ),
        "{text}"
    );
    assert!(
        text.contains("fix: npm install -g @anthropic-ai/claude-code, or set \"claude_command\""),
        "{text}"
    );
    // With codex as the default, codex is the one that fails.
    sb.fake_bin("claude", "echo 1.0");
    let (code, checks) = doctor_json(
        &sb,
        sb.swr_isolated()
            .env("SWR_REPOS_ROOT", sb.repos())
            .env("SWR_PROVIDER", "codex"),
    );
    assert_eq!(code, Some(1));
    assert_eq!(find(&checks, "provider codex")[0]["status"], "fail");
    assert_eq!(find(&checks, "provider claude")[0]["status"], "ok");
}

#[test]
fn missing_git_fails() {
    let sb = Sandbox::with_repos();
    sb.fake_bin("claude", "echo 1.0");
    let (code, checks) = doctor_json(&sb, sb.swr_isolated().env("SWR_REPOS_ROOT", sb.repos()));
    assert_eq!(code, Some(1));
    let git = find(&checks, "git");
    assert_eq!(git[0]["status"], "fail");
    assert_eq!(git[0]["fix"], "install git");
}

#[test]
fn a_silent_version_is_reported_not_fatal() {
    let sb = healthy();
    sb.fake_bin("claude", "exit 0");
    let (code, checks) = doctor_json(&sb, sb.swr_isolated().env("SWR_REPOS_ROOT", sb.repos()));
    assert_eq!(code, Some(0));
    let msg = find(&checks, "provider claude")[0]["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(msg.ends_with("(`--version` printed nothing)"), "{msg}");
}

#[test]
fn group_writable_state_dir_warns_with_the_chmod_fix() {
    let sb = healthy();
    std::fs::create_dir_all(sb.state_dir()).unwrap();
    std::fs::set_permissions(sb.state_dir(), std::fs::Permissions::from_mode(0o775)).unwrap();
    let out = sb
        .swr_isolated()
        .env("SWR_REPOS_ROOT", sb.repos())
        .arg("doctor")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "a warning is not a failure");
    let text = sb.redact(&stdout(&out));
    assert!(
        text.contains(
            "warn  state dir         writable by other users: [SANDBOX]/cache/spec-workflow-runner \
             (mode 775)\n"
        ),
        "{text}"
    );
    assert!(
        text.contains("fix: chmod go-w [SANDBOX]/cache/spec-workflow-runner\n"),
        "{text}"
    );
    // The fix works.
    std::fs::set_permissions(sb.state_dir(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let (_, checks) = doctor_json(&sb, sb.swr_isolated().env("SWR_REPOS_ROOT", sb.repos()));
    assert!(
        find(&checks, "state dir")
            .iter()
            .all(|c| c["status"] == "ok")
    );
}

#[test]
fn bad_config_fails_naming_file_line_and_key() {
    let sb = healthy();
    let file = sb.write("work/bad.json", "{\n  \"retry_max_retries\": -1\n}\n");
    let out = sb
        .swr_isolated()
        .arg("--config")
        .arg(&file)
        .arg("doctor")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = sb.redact(&stdout(&out));
    assert!(
        text.starts_with(
            "fail  config            [SANDBOX]/work/bad.json:2: key \"retry_max_retries\": must be a whole \
             number ≥ 0, got -1\n"
        ),
        "{text}"
    );
    assert!(text.contains("ok    git "), "git is still checked: {text}");
}

#[test]
fn config_warnings_are_checks_not_repeated_on_stderr() {
    let sb = healthy();
    sb.write(
        "config/spec-workflow-runner/config.json",
        "{\"retry_maxretries\": 3, \"enable_smart_completion_check\": true}",
    );
    let out = sb
        .swr_isolated()
        .env("SWR_REPOS_ROOT", sb.repos())
        .arg("doctor")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(stderr(&out), "");
    let text = stdout(&out);
    assert_eq!(
        text.matches("unknown key \"retry_maxretries\"").count(),
        1,
        "{text}"
    );
    assert!(
        text.contains("(did you mean \"retry_max_retries\"?)"),
        "{text}"
    );
    assert!(
        text.contains(
            "Python tool features switched on that swr does not have: enable_smart_completion_check"
        ),
        "{text}"
    );
}

#[test]
fn a_spec_with_a_bad_swr_json_fails_its_check() {
    // `swr run` of that spec stops with a config error (78): doctor must not say ok.
    let sb = healthy();
    let spec_dir = sb.repos().join("app/.spec-workflow/specs/auth");
    std::fs::write(
        spec_dir.join("swr.json"),
        r#"{"verify": "cargo test", "verfy": 1}"#,
    )
    .unwrap();
    let (code, checks) = doctor_json_args(
        &sb,
        sb.swr_isolated().env("SWR_REPOS_ROOT", sb.repos()),
        &["--project", "app"],
    );
    assert_eq!(code, Some(1));
    let auth = find(&checks, "spec auth");
    assert_eq!(auth.len(), 1, "{checks:#?}");
    assert_eq!(auth[0]["status"], "fail", "{checks:#?}");
    let msg = auth[0]["message"].as_str().unwrap();
    assert!(msg.contains("swr.json") && msg.contains("verfy"), "{msg}");
}

#[test]
fn project_checks_name_each_spec() {
    let sb = healthy();
    let (code, checks) = doctor_json_args(
        &sb,
        sb.swr_isolated().env("SWR_REPOS_ROOT", sb.repos()),
        &["--project", "app"],
    );
    assert_eq!(code, Some(0));
    assert_eq!(find(&checks, "spec auth")[0]["message"], "1/4 tasks done");
    let drafts = find(&checks, "spec drafts");
    assert_eq!(drafts[0]["status"], "warn");
    assert!(
        drafts[0]["message"]
            .as_str()
            .unwrap()
            .ends_with("tasks.md does not exist")
    );
    // From inside a project, that project is checked.
    let out = sb
        .swr_isolated()
        .env("SWR_REPOS_ROOT", sb.repos())
        .current_dir(sb.repos().join("lib"))
        .args(["doctor", "--json"])
        .output()
        .unwrap();
    let checks: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(find(&checks, "spec parser")[0]["status"], "warn");
    assert!(find(&checks, "spec auth").is_empty());
    // An unknown project is a failed check that says what to do.
    let (code, checks) = doctor_json_args(
        &sb,
        sb.swr_isolated().env("SWR_REPOS_ROOT", sb.repos()),
        &["--project", "nope"],
    );
    assert_eq!(code, Some(1));
    assert_eq!(find(&checks, "specs")[0]["status"], "fail");
}
