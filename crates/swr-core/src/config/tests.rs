#![allow(clippy::unwrap_used)]

use super::*;
use std::io::Write;

fn write(dir: &tempfile::TempDir, name: &str, text: &str) -> PathBuf {
    let p = dir.path().join(name);
    let mut f = std::fs::File::create(&p).unwrap();
    f.write_all(text.as_bytes()).unwrap();
    p
}

fn load_file(text: &str) -> Result<Config, ConfigError> {
    let dir = tempfile::tempdir().unwrap();
    let p = write(&dir, "config.json", text);
    Config::load(&LoadOptions {
        config_file: Some(p),
        home: Some(PathBuf::from("/home/u")),
        ..Default::default()
    })
}

/// The error text with the temp dir replaced, so messages can be compared exactly.
fn load_err(text: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let p = write(&dir, "config.json", text);
    let err = Config::load(&LoadOptions {
        config_file: Some(p),
        ..Default::default()
    })
    .expect_err("should be rejected");
    err.to_string()
        .replace(&dir.path().display().to_string(), "<dir>")
}

#[test]
fn defaults_match_the_python_tool() {
    let c = Config::defaults();
    assert_eq!(c.no_commit_limit, 3);
    assert_eq!(c.no_progress_limit, 6);
    assert_eq!(c.retry_max_retries, 3);
    assert_eq!(c.retry_backoff, Duration::from_secs(5));
    assert_eq!(c.retry_backoff_multiplier, 2.0);
    assert_eq!(c.retry_max_backoff, Duration::from_secs(300));
    assert!(c.retry_on_crash);
    assert!(
        !c.include_optional_tasks,
        "Kiro's optional tasks are left to the user"
    );
    assert_eq!(c.activity_timeout, Some(Duration::from_secs(300)));
    assert_eq!(c.stop_grace, Duration::from_secs(10));
    assert_eq!(c.log_file_template, "task_{index}.log");
    assert_eq!(c.retry_jitter, JitterSetting::Ratio(0.2));
    assert_eq!(
        c.retry_on,
        [
            Outcome::Crash,
            Outcome::Signal,
            Outcome::IdleTimeout,
            Outcome::WallTimeout,
            Outcome::Overloaded
        ]
        .into_iter()
        .collect()
    );
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    assert!(c.sources.values().all(|s| *s == Source::Default));
}

#[test]
fn every_key_has_a_default_and_every_default_a_key() {
    let d = keys::defaults();
    for k in KEYS {
        assert!(d.contains_key(k.name), "no default for {}", k.name);
    }
    for k in d.keys() {
        assert!(keys::spec(k).is_some(), "default for unknown key {k}");
    }
}

#[test]
fn python_tool_config_is_accepted_unchanged() {
    let c = load_file(include_str!(
        "../../tests/fixtures/config/python-tool-config.json"
    ))
    .unwrap();
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    assert_eq!(c.repos_root, PathBuf::from("/home/u/repos"));
    assert_eq!(
        c.codex_command,
        ["codex", "e", "--dangerously-bypass-approvals-and-sandbox"]
    );
    assert_eq!(
        c.codex_config_overrides
            .get("mcp_servers.spec-workflow.tool_timeout_sec"),
        Some(&serde_json::json!(60))
    );
    assert_eq!(
        c.cache_dir,
        PathBuf::from("/home/u/.cache/spec-workflow-runner")
    );
    assert!(
        c.prompt_template
            .starts_with("Continue work on spec '{spec_name}'")
    );
    assert!(matches!(
        c.sources["retry_max_retries"],
        Source::ConfigFile(_)
    ));
    // The Python tool's own feature switches are accepted and reported as not used.
    assert!(
        c.unused_compat_keys()
            .contains(&"enable_three_phase_workflow")
    );
}

#[test]
fn durations_accept_fractions_and_strings() {
    let c = load_file(
        r#"{"activity_timeout_seconds": 0.2, "iteration_timeout_seconds": "5m",
            "stop_grace_seconds": "500ms", "max_runtime": "8h", "retry_backoff_seconds": "1.5"}"#,
    )
    .unwrap();
    assert_eq!(c.activity_timeout, Some(Duration::from_millis(200)));
    assert_eq!(c.iteration_timeout, Some(Duration::from_secs(300)));
    assert_eq!(c.stop_grace, Duration::from_millis(500));
    assert_eq!(c.max_runtime, Some(Duration::from_secs(8 * 3600)));
    assert_eq!(c.retry_backoff, Duration::from_millis(1500));
}

#[test]
fn zero_or_null_disables_optional_timeouts() {
    let c =
        load_file(r#"{"activity_timeout_seconds": 0, "iteration_timeout_seconds": null}"#).unwrap();
    assert_eq!(c.activity_timeout, None);
    assert_eq!(c.iteration_timeout, None);
}

#[test]
fn negative_retries_name_file_line_key_and_rule() {
    assert_eq!(
        load_err("{\n  \"no_commit_limit\": 3,\n  \"retry_max_retries\": -1\n}"),
        "<dir>/config.json:3: key \"retry_max_retries\": must be a whole number ≥ 0, got -1"
    );
}

#[test]
fn multiplier_below_one_is_rejected() {
    assert_eq!(
        load_err("{\"retry_backoff_multiplier\": 0.5}"),
        "<dir>/config.json:1: key \"retry_backoff_multiplier\": must be a number ≥ 1, got 0.5"
    );
}

#[test]
fn cap_below_initial_delay_is_rejected() {
    assert_eq!(
        load_err("{\n\"retry_backoff_seconds\": 60,\n\"retry_max_backoff_seconds\": 30\n}"),
        "<dir>/config.json:3: key \"retry_max_backoff_seconds\": the cap (30 s) is below \
         retry_backoff_seconds (60 s, from <dir>/config.json:2); it must be at least the initial delay"
    );
}

#[test]
fn wrong_types_say_what_was_found() {
    assert_eq!(
        load_err("{\"retry_on_crash\": \"yes\"}"),
        "<dir>/config.json:1: key \"retry_on_crash\": expected true or false, got a string \"yes\""
    );
    assert_eq!(
        load_err("{\"include_optional_tasks\": 1}"),
        "<dir>/config.json:1: key \"include_optional_tasks\": expected true or false, got a number 1"
    );
    assert_eq!(
        load_err("{\"codex_command\": \"codex exec\"}"),
        "<dir>/config.json:1: key \"codex_command\": expected an array of strings such as \
         [\"codex\", \"exec\"], got a string \"codex exec\""
    );
    assert_eq!(
        load_err("{\"codex_command\": []}"),
        "<dir>/config.json:1: key \"codex_command\": must name an executable: the array is empty"
    );
    assert_eq!(
        load_err("{\"no_commit_limit\": 2.5}"),
        "<dir>/config.json:1: key \"no_commit_limit\": expected a whole number ≥ 1, got a number 2.5"
    );
}

#[test]
fn bad_durations_and_jitter_explain_the_allowed_forms() {
    let e = load_err("{\"stop_grace_seconds\": \"ten\"}");
    assert!(
        e.starts_with("<dir>/config.json:1: key \"stop_grace_seconds\": \"ten\" is not a duration"),
        "{e}"
    );
    assert!(e.contains("\"500ms\""), "{e}");
    assert_eq!(
        load_err("{\"stop_grace_seconds\": -1}"),
        "<dir>/config.json:1: key \"stop_grace_seconds\": a duration cannot be negative, got -1"
    );
    assert_eq!(
        load_err("{\"retry_jitter\": \"random\"}"),
        "<dir>/config.json:1: key \"retry_jitter\": must be none, full, decorrelated, or a ratio \
         between 0 and 1 such as 0.2, got \"random\""
    );
}

#[test]
fn retry_on_rejects_unknown_and_never_retried_outcomes() {
    let e = load_err("{\"retry_on\": [\"crash\", \"segfault\"]}");
    assert!(
        e.contains("unknown outcome \"segfault\"; allowed: success, no_progress, crash"),
        "{e}"
    );
    assert_eq!(
        load_err("{\"retry_on\": [\"auth\"]}"),
        "<dir>/config.json:1: key \"retry_on\": \"auth\" is never retried: retrying cannot help (remove it)"
    );
}

#[test]
fn unknown_prompt_variable_is_a_load_time_error() {
    let e = load_err("{\n\"prompt_template\": \"Work on {spec}\"\n}");
    assert!(
        e.starts_with("<dir>/config.json:2: key \"prompt_template\": unknown variable {spec}"),
        "{e}"
    );
}

#[test]
fn log_template_variables_are_checked() {
    let e = load_err("{\"log_file_template\": \"run_{n}.log\"}");
    assert!(e.contains("unknown variable {n}"), "{e}");
    let e = load_err("{\"log_file_template\": \"a/b_{index}.log\"}");
    assert!(e.contains("must be a file name"), "{e}");
}

#[test]
fn syntax_errors_give_line_and_column() {
    assert_eq!(
        load_err("{\n  \"no_commit_limit\": 3,\n}"),
        "<dir>/config.json:3:1: not valid JSON: trailing comma"
    );
    assert_eq!(
        load_err("[1, 2]"),
        "<dir>/config.json: a config file must hold one JSON object { ... }, found an array"
    );
}

#[test]
fn missing_config_file_is_an_error_naming_it() {
    let err = Config::load(&LoadOptions {
        config_file: Some(PathBuf::from("/nonexistent/swr.json")),
        ..Default::default()
    })
    .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("/nonexistent/swr.json: cannot read config file:"),
        "{err}"
    );
}

#[test]
fn unknown_keys_warn_once_with_did_you_mean() {
    let c = load_file("{\n\"retry_max_retry\": 5,\n\"zzz\": 1\n}").unwrap();
    assert_eq!(c.warnings.len(), 2, "{:?}", c.warnings);
    assert!(
        c.warnings[0].ends_with(
            "config.json:2: unknown key \"retry_max_retry\" is ignored (did you mean \"retry_max_retries\"?)"
        ),
        "{:?}",
        c.warnings
    );
    assert!(
        c.warnings[1].ends_with("unknown key \"zzz\" is ignored"),
        "{:?}",
        c.warnings
    );
    assert_eq!(c.retry_max_retries, 3, "an unknown key changes nothing");
}

#[test]
fn layers_override_in_order_and_record_sources() {
    let dir = tempfile::tempdir().unwrap();
    let user = write(
        &dir,
        "user.json",
        r#"{"no_commit_limit": 4, "retry_max_retries": 7, "model": "a"}"#,
    );
    let file = write(&dir, "cfg.json", r#"{"no_commit_limit": 5, "model": "b"}"#);
    let c = Config::load(&LoadOptions {
        user_file: Some(user.clone()),
        config_file: Some(file.clone()),
        env: vec![
            ("SWR_NO_COMMIT_LIMIT".into(), "6".into()),
            ("PATH".into(), "/bin".into()),
        ],
        flags: vec![("model".into(), serde_json::json!("c"), "--model".into())],
        home: None,
    })
    .unwrap();
    assert_eq!(c.retry_max_retries, 7);
    assert_eq!(c.sources["retry_max_retries"], Source::UserFile(user));
    assert_eq!(c.no_commit_limit, 6);
    assert_eq!(
        c.sources["no_commit_limit"],
        Source::Env("SWR_NO_COMMIT_LIMIT".into())
    );
    assert_eq!(c.model.as_deref(), Some("c"));
    assert_eq!(c.sources["model"], Source::Flag("--model".into()));
    assert_eq!(c.sources["tasks_filename"], Source::Default);
}

#[test]
fn env_values_are_typed_per_key() {
    let c = Config::load(&LoadOptions {
        env: vec![
            ("SWR_RETRY_ON_CRASH".into(), "false".into()),
            ("SWR_INCLUDE_OPTIONAL_TASKS".into(), "true".into()),
            ("SWR_IGNORE_DIRS".into(), ".git, target,vendor".into()),
            ("SWR_CODEX_COMMAND".into(), "codex exec --full".into()),
            (
                "SWR_CLAUDE_COMMAND".into(),
                r#"["/opt/claude", "--x"]"#.into(),
            ),
            ("SWR_ACTIVITY_TIMEOUT_SECONDS".into(), "90s".into()),
            ("SWR_RETRY_JITTER".into(), "none".into()),
            ("SWR_CODEX_CONFIG_OVERRIDES".into(), r#"{"a.b": 1}"#.into()),
            ("SWR_ATTEMPT_MARKER".into(), "not config".into()),
        ],
        ..Default::default()
    })
    .unwrap();
    assert!(!c.retry_on_crash);
    assert!(c.include_optional_tasks);
    assert_eq!(c.ignore_dirs, [".git", "target", "vendor"]);
    assert_eq!(c.codex_command, ["codex", "exec", "--full"]);
    assert_eq!(c.claude_command, ["/opt/claude", "--x"]);
    assert_eq!(c.activity_timeout, Some(Duration::from_secs(90)));
    assert_eq!(c.retry_jitter, JitterSetting::None);
    assert_eq!(c.codex_config_overrides.len(), 1);
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
}

#[test]
fn bad_env_values_name_the_variable() {
    let err = Config::load(&LoadOptions {
        env: vec![("SWR_NO_COMMIT_LIMIT".into(), "lots".into())],
        ..Default::default()
    })
    .unwrap_err();
    assert!(
        err.to_string().starts_with(
            "environment variable SWR_NO_COMMIT_LIMIT: key \"no_commit_limit\": expected a number as JSON, got \"lots\""
        ),
        "{err}"
    );
    let err = Config::load(&LoadOptions {
        env: vec![("SWR_RETRY_MAX_RETRIES".into(), "-2".into())],
        ..Default::default()
    })
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "environment variable SWR_RETRY_MAX_RETRIES: key \"retry_max_retries\": must be a whole number ≥ 0, got -2"
    );
}

#[test]
fn unknown_env_names_warn_with_did_you_mean() {
    let c = Config::load(&LoadOptions {
        env: vec![("SWR_NO_COMIT_LIMIT".into(), "5".into())],
        ..Default::default()
    })
    .unwrap();
    assert_eq!(
        c.warnings,
        [
            "environment variable SWR_NO_COMIT_LIMIT is not a swr setting (did you mean \"SWR_NO_COMMIT_LIMIT\"?)"
        ]
    );
}

#[test]
fn user_config_path_is_xdg_aware() {
    let env = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    };
    assert_eq!(
        user_config_path(&env(&[("HOME", "/h"), ("XDG_CONFIG_HOME", "/x")])),
        Some(PathBuf::from("/x/spec-workflow-runner/config.json"))
    );
    assert_eq!(
        user_config_path(&env(&[("HOME", "/h")])),
        Some(PathBuf::from("/h/.config/spec-workflow-runner/config.json"))
    );
    // XDG base directory spec: a relative path is invalid and must be ignored.
    assert_eq!(
        user_config_path(&env(&[("HOME", "/h"), ("XDG_CONFIG_HOME", "rel/x")])),
        Some(PathBuf::from("/h/.config/spec-workflow-runner/config.json"))
    );
}

/// Values that validation accepted and that then panicked the run ("overflow when adding
/// duration to instant"): every duration key has a documented maximum, in every layer.
#[test]
fn durations_past_their_maximum_are_config_errors() {
    for k in KEYS
        .iter()
        .filter(|k| matches!(k.kind, Kind::Duration | Kind::OptDuration))
    {
        for bad in ["1e19", "\"3000000000000000h\"", "\"100000000h\""] {
            let err = load_err(&format!("{{\"{}\": {bad}}}", k.name));
            assert!(
                err.contains(&format!("key \"{}\": at most ", k.name)),
                "{}: {err}",
                k.name
            );
        }
        let max = k.max.unwrap();
        // The cap must stay at least the first delay: raise it with it.
        let cap = r#", "retry_max_backoff_seconds": 86400"#;
        let at_max = load_file(&format!(
            "{{\"{}\": {}{}}}",
            k.name,
            max.as_secs_f64(),
            if k.name == "retry_backoff_seconds" {
                cap
            } else {
                ""
            }
        ));
        assert!(at_max.is_ok(), "{} at its maximum: {at_max:?}", k.name);
        let env_err = Config::load(&LoadOptions {
            env: vec![(
                format!("SWR_{}", k.name.to_ascii_uppercase()),
                "1e19".into(),
            )],
            ..Default::default()
        })
        .unwrap_err()
        .to_string();
        assert!(env_err.contains("at most"), "{env_err}");
    }
    assert_eq!(
        load_err(r#"{"stop_grace_seconds": "2h"}"#),
        "<dir>/config.json:1: key \"stop_grace_seconds\": at most 1 hour is allowed, got \"2h\""
    );
}

mod no_accepted_duration_panics {
    use super::*;
    use proptest::prelude::*;
    use rand::SeedableRng;

    fn any_duration_text() -> impl Strategy<Value = String> {
        prop_oneof![
            (0.0f64..1e21).prop_map(|s| s.to_string()),
            (0u64..u64::MAX).prop_map(|s| s.to_string()),
            (
                0u64..10_000_000_000_000_000,
                prop::sample::select(vec!["ms", "s", "m", "h", "d", "w", "y"])
            )
                .prop_map(|(n, u)| format!("\"{n}{u}\"")),
        ]
    }

    fn duration_keys() -> impl Strategy<Value = &'static str> {
        prop::sample::select(
            KEYS.iter()
                .filter(|k| matches!(k.kind, Kind::Duration | Kind::OptDuration))
                .map(|k| k.name)
                .collect::<Vec<_>>(),
        )
    }

    proptest! {
        /// Whatever duration a config file holds, either validation refuses it or every
        /// place where a run adds it to the clock copes: the supervisor's timers, the retry
        /// and rate-limit decisions and their timestamps, the run deadline.
        #[test]
        fn accepted_durations_meet_the_clock_without_overflow(
            key in duration_keys(),
            value in any_duration_text(),
            seed in any::<u64>(),
        ) {
            // retry_max_backoff_seconds must be ≥ retry_backoff_seconds: keep the pair valid.
            let text = if key == "retry_backoff_seconds" {
                format!("{{\"{key}\": {value}, \"retry_max_backoff_seconds\": 86400}}")
            } else {
                format!("{{\"{key}\": {value}}}")
            };
            let Ok(c) = load_file(&text) else { return Ok(()) };
            let d = Duration::from_secs_f64(c.values[key].as_f64().unwrap_or(0.0));
            prop_assert!(d <= MAX_DURATION);
            let now = tokio::time::Instant::now();
            for t in [c.activity_timeout, c.iteration_timeout, Some(c.stop_grace), c.max_runtime] {
                prop_assert_eq!(crate::supervise::deadline_after(now, t).is_some(), t.is_some());
            }
            prop_assert!(std::time::Instant::now().checked_add(d).is_some());
            let ts = jiff::Timestamp::now();
            prop_assert!(ts.checked_add(jiff::SignedDuration::try_from(d).unwrap()).is_ok());
            let policy = crate::runner::retry_policy(&c);
            let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
            let mut state = crate::retry::RetryState::default();
            for outcome in [Outcome::Crash, Outcome::RateLimited, Outcome::Crash, Outcome::RateLimited] {
                let decision = crate::retry::decide(&policy, &state, outcome, None, ts, &mut rng);
                match &decision {
                    crate::retry::Decision::RetryAfter(delay) => {
                        prop_assert!(ts.checked_add(jiff::SignedDuration::try_from(*delay).unwrap()).is_ok());
                    }
                    crate::retry::Decision::WaitUntil(until) => {
                        prop_assert!(*until <= ts + jiff::SignedDuration::from_hours(7 * 24));
                    }
                    _ => {}
                }
                state.record(&decision);
            }
        }
    }
}

#[test]
fn key_lines_follow_nesting_and_strings() {
    let text = "{\n \"a\": {\"b\": 1,\n \"c\": \"x:y\"},\n \"d\"\n : [\"e\"]\n}";
    let lines = value::top_level_key_lines(text);
    assert_eq!(lines.get("a"), Some(&2));
    assert_eq!(lines.get("d"), Some(&4));
    assert_eq!(lines.get("b"), None, "nested keys are not top-level");
}

#[test]
fn parse_duration_forms() {
    assert_eq!(parse_duration("5").unwrap(), Duration::from_secs(5));
    assert_eq!(parse_duration("0.25").unwrap(), Duration::from_millis(250));
    assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
    assert_eq!(parse_duration("1h30m").unwrap(), Duration::from_secs(5400));
    assert!(parse_duration("-5").is_err());
    assert!(parse_duration("-5m").is_err());
    assert!(parse_duration("").is_err());
}

#[test]
fn budgets_prices_and_verify_are_typed_and_checked() {
    let c = Config::defaults();
    assert_eq!(c.max_cost_usd, None);
    assert_eq!(c.max_tokens, None);
    assert_eq!(c.spec_budget_usd, None);
    assert!(c.prices.is_empty());
    assert_eq!(c.verify_command, None);
    assert_eq!(c.verify_timeout, Duration::from_secs(600));

    let c = load_file(
        r#"{"max_cost_usd": 5, "max_tokens": 2000000, "spec_budget_usd": 20.5,
            "verify_command": ["cargo", "test"], "verify_timeout_seconds": "2m",
            "prices": {"gpt-5-codex": {"input": 1.25, "cached_input": 0.125, "output": 10},
                       "gemini": {"input": 2, "output": 12}}}"#,
    )
    .unwrap();
    assert_eq!(c.max_cost_usd, Some(5.0));
    assert_eq!(c.max_tokens, Some(2_000_000));
    assert_eq!(c.spec_budget_usd, Some(20.5));
    assert_eq!(c.verify_command, Some(vec!["cargo".into(), "test".into()]));
    assert_eq!(c.verify_timeout, Duration::from_secs(120));
    assert_eq!(c.prices["gpt-5-codex"].cached_input, Some(0.125));
    assert_eq!(c.prices["gemini"].cached_input, None);

    let e = load_err(r#"{"max_cost_usd": 0}"#);
    assert!(e.contains("\"max_cost_usd\": must be more than 0"), "{e}");
    let e = load_err(r#"{"max_cost_usd": "lots"}"#);
    assert!(e.contains("expected an amount of US dollars"), "{e}");
    let e = load_err(r#"{"prices": {"m": {"input": 1}}}"#);
    assert!(e.contains("\"prices.m\"") && e.contains("output"), "{e}");
    let e = load_err(r#"{"prices": {"m": {"input": 1, "output": -2}}}"#);
    assert!(e.contains("\"prices.m.output\""), "{e}");
    let e = load_err(r#"{"prices": {"m": {"input": 1, "output": 2, "outptu": 3}}}"#);
    assert!(e.contains("unknown field"), "{e}");
    let e = load_err(r#"{"verify_command": []}"#);
    assert!(e.contains("must name an executable"), "{e}");

    let c = Config::load(&LoadOptions {
        env: vec![
            ("SWR_MAX_COST_USD".into(), "2.5".into()),
            ("SWR_VERIFY_COMMAND".into(), "make check".into()),
        ],
        ..Default::default()
    })
    .unwrap();
    assert_eq!(c.max_cost_usd, Some(2.5));
    assert_eq!(
        c.verify_command,
        Some(vec!["make".to_string(), "check".to_string()])
    );
}

/// The README's key table lists every key swr acts on, and its compatibility paragraph every
/// key it only accepts.
#[test]
fn the_readme_lists_every_key() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap();
    let missing: Vec<&str> = KEYS
        .iter()
        .filter(|k| match k.used {
            Use::Used => !readme.contains(&format!("\n| `{}` |", k.name)),
            Use::Compat => !readme.contains(&format!("`{}`", k.name)),
        })
        .map(|k| k.name)
        .collect();
    assert!(missing.is_empty(), "not in the README: {missing:?}");
}

#[test]
fn webhooks_take_urls_or_objects_and_errors_name_the_entry() {
    let c = load_file(
        r#"{"notify_webhooks": ["https://hooks.slack.com/services/x", {"url": "http://127.0.0.1:9/h", "format": "ntfy"}]}"#,
    )
    .unwrap();
    let formats: Vec<&str> = c
        .notify_webhooks
        .iter()
        .map(|t| t.format.as_str())
        .collect();
    assert_eq!(formats, ["slack", "ntfy"]);
    assert_eq!(
        c.values["notify_webhooks"][0],
        serde_json::json!({"url": "https://hooks.slack.com/services/x", "format": "slack"}),
        "normal form: objects"
    );
    let e = load_err(
        r#"{"notify_webhooks": ["https://a.example/h", {"url": "https://b", "format": "teams"}]}"#,
    );
    assert!(
        e.contains("key \"notify_webhooks\": entry 2: unknown format \"teams\""),
        "{e}"
    );
    let e = load_err(r#"{"notify_webhooks": "https://a.example/h"}"#);
    assert!(e.contains("expected an array of webhook URLs"), "{e}");
    // From the environment: a comma-separated list.
    let c = Config::load(&LoadOptions {
        env: vec![(
            "SWR_NOTIFY_WEBHOOKS".into(),
            "http://127.0.0.1:1/a, https://ntfy.sh/t".into(),
        )],
        ..Default::default()
    })
    .unwrap();
    assert_eq!(c.notify_webhooks.len(), 2);
    assert_eq!(c.notify_webhooks[1].format.as_str(), "ntfy");
    assert!(Config::defaults().notify_webhooks.is_empty());
}
