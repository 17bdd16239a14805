//! End to end: config layering (defaults < user file < --config < SWR_* env), the Python
//! tool's config.json accepted as is, errors that name file, line and key (exit 78), unknown
//! keys warned about once, and `swr config show|path`.
#![allow(clippy::unwrap_used)]

mod cli_support;

use cli_support::{Sandbox, python_config, stderr, stdout};
use serde_json::Value;

fn show_json(cmd: &mut assert_cmd::Command) -> Value {
    let out = cmd.args(["config", "show", "--json"]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn python_tool_config_is_accepted_as_is() {
    let sb = Sandbox::new();
    let out = sb
        .swr()
        .arg("--config")
        .arg(python_config())
        .args(["config", "show", "--json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stderr(&out), "", "no warning for any of its keys");
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let from = format!("--config {}", python_config().display());
    assert_eq!(v["codex_command"]["value"][1], "e");
    assert_eq!(v["codex_command"]["source"], from.as_str());
    assert_eq!(v["enable_pre_session_validation"]["used"], false);
    assert_eq!(v["no_progress_limit"]["source"], "default");
    assert_eq!(v["no_commit_limit"]["value"], 3);
    // Shown as swr uses it: "~/repos" expanded against HOME.
    let repos = sb.path("home").join("repos").display().to_string();
    assert_eq!(v["repos_root"]["value"], repos.as_str());
}

#[test]
fn layers_override_in_order_and_show_their_source() {
    let sb = Sandbox::new();
    sb.write(
        "config/spec-workflow-runner/config.json",
        r#"{"no_commit_limit": 4, "no_progress_limit": 7, "retry_max_retries": 1}"#,
    );
    let file = sb.write(
        "work/team.json",
        r#"{"no_progress_limit": 8, "retry_max_retries": 2}"#,
    );
    let v = show_json(
        sb.swr()
            .env("SWR_RETRY_MAX_RETRIES", "5")
            .arg("--config")
            .arg(&file),
    );
    let user = sb.user_config().display().to_string();
    assert_eq!(v["no_commit_limit"]["value"], 4);
    assert_eq!(
        v["no_commit_limit"]["source"],
        format!("user config {user}")
    );
    assert_eq!(v["no_progress_limit"]["value"], 8);
    assert_eq!(
        v["no_progress_limit"]["source"],
        format!("--config {}", file.display())
    );
    assert_eq!(v["retry_max_retries"]["value"], 5);
    assert_eq!(
        v["retry_max_retries"]["source"],
        "env SWR_RETRY_MAX_RETRIES"
    );
    assert_eq!(v["stop_grace_seconds"]["source"], "default");

    // SWR_CONFIG is --config by another name.
    let v = show_json(sb.swr().env("SWR_CONFIG", &file));
    assert_eq!(v["no_progress_limit"]["value"], 8);
}

#[test]
fn user_config_follows_xdg_then_home() {
    let sb = Sandbox::new();
    let out = sb.swr().args(["config", "path"]).output().unwrap();
    assert_eq!(stdout(&out), format!("{}\n", sb.user_config().display()));
    // Without XDG_CONFIG_HOME: ~/.config.
    sb.write(
        "home/.config/spec-workflow-runner/config.json",
        r#"{"no_commit_limit": 9}"#,
    );
    let out = sb
        .swr()
        .env_remove("XDG_CONFIG_HOME")
        .args(["config", "path"])
        .output()
        .unwrap();
    assert_eq!(
        stdout(&out),
        format!(
            "{}\n",
            sb.path("home/.config/spec-workflow-runner/config.json")
                .display()
        )
    );
    let v = show_json(sb.swr().env_remove("XDG_CONFIG_HOME"));
    assert_eq!(v["no_commit_limit"]["value"], 9);
}

#[test]
fn cache_dir_defaults_to_xdg_cache_home() {
    let sb = Sandbox::new();
    let v = show_json(&mut sb.swr());
    assert_eq!(
        v["cache_dir"]["value"],
        sb.state_dir().display().to_string()
    );
}

/// Runs `swr --config bad.json config show` and returns (exit code, stderr with the sandbox
/// path redacted).
fn bad_config(text: &str) -> (Option<i32>, String) {
    let sb = Sandbox::new();
    let file = sb.write("work/bad.json", text);
    let out = sb
        .swr()
        .arg("--config")
        .arg(&file)
        .args(["config", "show"])
        .output()
        .unwrap();
    (out.status.code(), sb.redact(&stderr(&out)))
}

#[test]
fn wrong_values_name_file_line_key_and_what_is_allowed() {
    let cases = [
        (
            "{\n  \"retry_max_retries\": -1\n}\n",
            "swr: config error: [SANDBOX]/work/bad.json:2: key \"retry_max_retries\": must be a \
             whole number ≥ 0, got -1\n",
        ),
        (
            "{\n  \"no_commit_limit\": 3,\n  \"retry_backoff_multiplier\": 0.5\n}\n",
            "swr: config error: [SANDBOX]/work/bad.json:3: key \"retry_backoff_multiplier\": must \
             be a number ≥ 1, got 0.5\n",
        ),
        (
            "{\"no_commit_limit\": \"three\"}",
            "swr: config error: [SANDBOX]/work/bad.json:1: key \"no_commit_limit\": expected a \
             whole number ≥ 1, got a string \"three\"\n",
        ),
        (
            "{\"repos_root\": \"x\",}",
            "swr: config error: [SANDBOX]/work/bad.json:1:20: not valid JSON: trailing comma\n",
        ),
        (
            "[1]",
            "swr: config error: [SANDBOX]/work/bad.json: a config file must hold one JSON object \
             { ... }, found an array\n",
        ),
    ];
    for (text, want) in cases {
        let (code, err) = bad_config(text);
        assert_eq!(code, Some(78), "{text}");
        assert_eq!(err, want, "{text}");
    }
}

#[test]
fn cap_below_initial_delay_is_an_error() {
    let (code, err) =
        bad_config("{\n  \"retry_backoff_seconds\": 10,\n  \"retry_max_backoff_seconds\": 5\n}\n");
    assert_eq!(code, Some(78));
    assert!(
        err.starts_with(
            "swr: config error: [SANDBOX]/work/bad.json:3: key \"retry_max_backoff_seconds\":"
        ),
        "{err}"
    );
    assert!(err.contains("at least the initial delay"), "{err}");
}

#[test]
fn environment_errors_name_the_variable() {
    let sb = Sandbox::new();
    let out = sb
        .swr()
        .env("SWR_RETRY_BACKOFF_MULTIPLIER", "0.1")
        .args(["config", "show"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(78));
    assert_eq!(
        stderr(&out),
        "swr: config error: environment variable SWR_RETRY_BACKOFF_MULTIPLIER: key \
         \"retry_backoff_multiplier\": must be a number ≥ 1, got 0.1\n"
    );
}

#[test]
fn missing_config_file_is_a_config_error_said_once() {
    let sb = Sandbox::new();
    let out = sb
        .swr()
        .args(["--config", "nowhere.json", "specs"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(78));
    assert_eq!(
        stderr(&out),
        "swr: config error: nowhere.json: cannot read config file: No such file or directory \
         (os error 2)\n"
    );
}

#[test]
fn unknown_keys_warn_once_with_did_you_mean() {
    let sb = Sandbox::with_repos();
    let file = sb.write("work/typo.json", "{\n  \"retry_maxretries\": 3\n}\n");
    let out = sb
        .swr()
        .env("SWR_REPOS_ROOT", sb.repos())
        .env("SWR_NO_COMIT_LIMIT", "2")
        .arg("--config")
        .arg(&file)
        .args(["specs", "--json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        sb.redact(&stderr(&out)),
        "swr: warning: [SANDBOX]/work/typo.json:2: unknown key \"retry_maxretries\" is ignored \
         (did you mean \"retry_max_retries\"?)\n\
         swr: warning: environment variable SWR_NO_COMIT_LIMIT is not a swr setting (did you \
         mean \"SWR_NO_COMMIT_LIMIT\"?)\n"
    );
}

#[test]
fn show_prints_aligned_values_and_sources() {
    let sb = Sandbox::new();
    let out = sb
        .swr()
        .env("SWR_NO_COMMIT_LIMIT", "5")
        .arg("--config")
        .arg(python_config())
        .args(["config", "show"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines[0].starts_with("KEY ") && lines[0].ends_with("SOURCE"),
        "{text}"
    );
    let source_col = lines[0].find("SOURCE").unwrap();
    let line = |key: &str| {
        *lines
            .iter()
            .find(|l| l.starts_with(&format!("{key} ")))
            .unwrap_or_else(|| panic!("no {key} in\n{text}"))
    };
    let ncl = line("no_commit_limit");
    assert_eq!(
        ncl.split_whitespace().collect::<Vec<_>>(),
        ["no_commit_limit", "5", "env", "SWR_NO_COMMIT_LIMIT"]
    );
    assert_eq!(
        ncl.chars().count() - "env SWR_NO_COMMIT_LIMIT".len(),
        source_col
    );
    assert!(line("prompt_template").contains('…'), "long values are cut");
    assert!(line("no_progress_limit").ends_with("  default"));
    // The Python tool's extra keys come last, under their own heading.
    let heading = lines
        .iter()
        .position(|l| l.starts_with("Accepted for the Python tool's config.json, not used by swr:"))
        .unwrap();
    let mcp = lines
        .iter()
        .position(|l| l.starts_with("mcp_package "))
        .unwrap();
    let retry = lines
        .iter()
        .position(|l| l.starts_with("retry_on "))
        .unwrap();
    assert!(retry < heading && heading < mcp, "{text}");
}

/// XDG base directory spec: a relative `XDG_CACHE_HOME` or `XDG_CONFIG_HOME` is invalid and
/// ignored; otherwise every working directory would get its own store, locks and config.
#[test]
fn relative_xdg_dirs_are_ignored() {
    let sb = Sandbox::new();
    sb.write(
        "work/rel-config/spec-workflow-runner/config.json",
        r#"{"no_commit_limit": 9}"#,
    );
    let v = show_json(
        sb.swr()
            .env("XDG_CACHE_HOME", "rel-cache")
            .env("XDG_CONFIG_HOME", "rel-config"),
    );
    let home_cache = sb
        .path("home")
        .join(".cache/spec-workflow-runner")
        .display()
        .to_string();
    assert_eq!(v["cache_dir"]["value"], home_cache.as_str());
    assert_eq!(
        v["no_commit_limit"]["value"], 3,
        "the relative config dir was read"
    );
    let out = sb
        .swr()
        .env("XDG_CONFIG_HOME", "rel-config")
        .args(["config", "path"])
        .output()
        .unwrap();
    let expected = sb
        .path("home")
        .join(".config/spec-workflow-runner/config.json");
    assert_eq!(stdout(&out).trim(), expected.display().to_string());
}

/// `--config /dev/zero` grew swr to 1.9 GB; a FIFO blocked it forever. Only regular files are
/// read, up to 64 MB.
#[test]
fn a_config_that_is_no_regular_file_or_too_large_is_refused_at_once() {
    let sb = Sandbox::new();
    let fifo = sb.path("work/fifo.json");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let big = sb.path("work/big.json");
    std::fs::File::create(&big)
        .unwrap()
        .set_len(65 * 1024 * 1024)
        .unwrap();
    for (file, says) in [
        (
            std::path::PathBuf::from("/dev/zero"),
            "not a regular file (a character device)",
        ),
        (fifo, "not a regular file (a FIFO)"),
        (big, "larger than 64 MB"),
    ] {
        let out = sb
            .swr()
            .arg("--config")
            .arg(&file)
            .args(["config", "show"])
            .timeout(std::time::Duration::from_secs(30))
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(78),
            "{}: {}",
            file.display(),
            stderr(&out)
        );
        assert!(stderr(&out).contains(says), "{}", stderr(&out));
    }
}

#[test]
fn include_optional_tasks_is_a_used_switch_off_by_default() {
    let sb = Sandbox::new();
    let v = show_json(&mut sb.swr());
    assert_eq!(v["include_optional_tasks"]["value"], false);
    assert_eq!(v["include_optional_tasks"]["source"], "default");
    assert_eq!(v["include_optional_tasks"]["used"], true);
    let v = show_json(sb.swr().env("SWR_INCLUDE_OPTIONAL_TASKS", "true"));
    assert_eq!(v["include_optional_tasks"]["value"], true);
    assert_eq!(
        v["include_optional_tasks"]["source"],
        "env SWR_INCLUDE_OPTIONAL_TASKS"
    );
}
