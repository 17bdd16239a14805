//! Provider argv (snapshots), line parsers on recorded and synthetic agent output, tail
//! classification of recorded stderr, registry, PATH lookup and the env filter.
#![allow(clippy::unwrap_used)]

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use jiff::Timestamp;
use jiff::tz::TimeZone;
use swr_core::provider::*;
use swr_core::supervise::{CommandSpec, StdinInput};

const CWD: &str = "/work/project";
const PROMPT: &str = "- [ ] Continue work on spec 'demo':\nread tasks.md";

fn now() -> Timestamp {
    "2026-11-28T12:00:00Z".parse().unwrap()
}

fn registry(overrides: &ProviderOverrides) -> ProviderRegistry {
    ProviderRegistry::new(overrides, PathBuf::from("/opt/swr/bin/swr"))
}

fn req<'a>(model: Option<&'a str>) -> AttemptRequest<'a> {
    AttemptRequest {
        prompt: PROMPT,
        model,
        cwd: Path::new(CWD),
        is_root: false,
        resume_session: None,
    }
}

fn cmd(overrides: &ProviderOverrides, name: &str, r: &AttemptRequest) -> CommandSpec {
    registry(overrides).command(name, r).unwrap()
}

fn python_tool_overrides() -> ProviderOverrides {
    let cfg: serde_json::Value = serde_json::from_str(
        r#"{
          "codex_command": ["codex", "e", "--dangerously-bypass-approvals-and-sandbox"],
          "codex_config_overrides": {
            "mcp_servers.spec-workflow.tool_timeout_sec": 60,
            "mcp_servers.spec-workflow.startup_timeout_sec": 60
          }
        }"#,
    )
    .unwrap();
    serde_json::from_value(cfg).unwrap()
}

// ---------------------------------------------------------------------------------------------
// argv

#[test]
fn argv_claude() {
    let o = ProviderOverrides::default();
    insta::assert_yaml_snapshot!("claude_default", cmd(&o, "claude", &req(None)));
    insta::assert_yaml_snapshot!("claude_model", cmd(&o, "claude", &req(Some("opus"))));
    let mut r = req(Some("sonnet"));
    r.is_root = true;
    r.resume_session = Some("6f1c2d3e-0000-4000-8000-000000000001");
    insta::assert_yaml_snapshot!("claude_root_resume", cmd(&o, "claude", &r));
}

#[test]
fn argv_claude_prompt_follows_double_dash_and_root_sets_is_sandbox() {
    let o = ProviderOverrides {
        claude_command: Some(vec![
            "/usr/local/bin/claude".into(),
            "--allowedTools".into(),
            "Bash Edit".into(),
        ]),
        ..Default::default()
    };
    let mut r = req(None);
    let spec = cmd(&o, "claude", &r);
    assert_eq!(spec.program, "/usr/local/bin/claude");
    assert_eq!(&spec.args[..2], ["--allowedTools", "Bash Edit"]);
    let n = spec.args.len();
    assert_eq!(spec.args[n - 2], "--");
    assert_eq!(spec.args[n - 1], PROMPT);
    assert!(spec.env.is_empty());
    assert_eq!(spec.stdin, StdinInput::Null);
    r.is_root = true;
    let spec = cmd(&o, "claude", &r);
    assert_eq!(spec.env, vec![("IS_SANDBOX".to_string(), "1".to_string())]);
}

#[test]
fn argv_codex() {
    let o = ProviderOverrides::default();
    insta::assert_yaml_snapshot!("codex_default", cmd(&o, "codex", &req(None)));
    insta::assert_yaml_snapshot!("codex_model", cmd(&o, "codex", &req(Some("gpt-5.5-codex"))));
    let py = python_tool_overrides();
    insta::assert_yaml_snapshot!("codex_python_config", cmd(&py, "codex", &req(Some("o3"))));
    let mut r = req(None);
    r.resume_session = Some("01a22210-0000-7000-8000-000000000001");
    insta::assert_yaml_snapshot!("codex_resume", cmd(&o, "codex", &r));
}

#[test]
fn argv_codex_overrides_render_as_toml_literals() {
    let mut o = ProviderOverrides::default();
    let v: serde_json::Value = serde_json::json!({
        "a.int": 60,
        "b.float": 1.5,
        "c.bool": true,
        "d.str": "say \"hi\"\\n",
        "e.arr": ["x", 2],
        "f.obj": {"inherit": "all", "weird key": false},
        "g.null": null,
    });
    o.codex_config_overrides = serde_json::from_value(v).unwrap();
    let spec = cmd(&o, "codex", &req(None));
    let pairs: Vec<&str> = spec
        .args
        .windows(2)
        .filter(|w| w[0] == "-c")
        .map(|w| w[1].as_str())
        .collect();
    assert_eq!(
        pairs,
        [
            "a.int=60",
            "b.float=1.5",
            "c.bool=true",
            r#"d.str="say \"hi\"\\n""#,
            r#"e.arr=["x", 2]"#,
            r#"f.obj={inherit = "all", "weird key" = false}"#,
        ]
    );
    assert_eq!(spec.stdin, StdinInput::Null);
}

#[test]
fn argv_gemini() {
    let o = ProviderOverrides::default();
    insta::assert_yaml_snapshot!("gemini_default", cmd(&o, "gemini", &req(None)));
    insta::assert_yaml_snapshot!(
        "gemini_model",
        cmd(&o, "gemini", &req(Some("gemini-3.1-pro-preview")))
    );
    let mut r = req(None);
    r.resume_session = Some("a1b2c3d4-0000-4000-8000-000000000001");
    let spec = cmd(&o, "gemini", &r);
    assert!(
        spec.args
            .windows(2)
            .any(|w| w == ["--resume", "a1b2c3d4-0000-4000-8000-000000000001"])
    );
    assert_eq!(spec.args.last().unwrap(), &format!("--prompt={PROMPT}"));
}

/// A prompt over the single-argument limit of Linux (128 KiB) fails the spawn with "Argument
/// list too long": claude, codex and the simulated agent get it on stdin instead.
#[test]
fn a_prompt_too_large_for_argv_goes_to_stdin() {
    let o = ProviderOverrides::default();
    let big = format!("{PROMPT}\n{}", "x".repeat(200 * 1024));
    let mut r = req(Some("m"));
    r.prompt = &big;
    for name in ["claude", "codex", "sim"] {
        let spec = cmd(&o, name, &r);
        assert_eq!(spec.stdin, StdinInput::Text(big.clone()), "{name}");
        assert!(
            spec.args.iter().all(|a| a.len() < MAX_PROMPT_ARG_BYTES),
            "{name}: {:?}",
            spec.args.iter().map(String::len).collect::<Vec<_>>()
        );
        assert!(
            !spec.args.iter().any(|a| a == "--"),
            "{name}: {:?}",
            spec.args
        );
        assert!(
            spec.args.windows(2).any(|w| w == ["--model", "m"]),
            "{name}"
        );
    }
    // At the limit it is still an argument.
    let edge = "y".repeat(MAX_PROMPT_ARG_BYTES);
    r.prompt = &edge;
    for name in ["claude", "codex", "sim"] {
        let spec = cmd(&o, name, &r);
        assert_eq!(spec.args.last(), Some(&edge), "{name}");
        assert_eq!(spec.stdin, StdinInput::Null, "{name}");
    }
}

#[test]
fn argv_sim() {
    let o = ProviderOverrides::default();
    insta::assert_yaml_snapshot!("sim_default", cmd(&o, "sim", &req(None)));
    insta::assert_yaml_snapshot!("sim_model", cmd(&o, "sim", &req(Some("sim-fast"))));
}

fn custom_overrides() -> ProviderOverrides {
    let cfg = serde_json::json!({
        "custom": {
            "qwen": {
                "command": ["qwen", "-o", "stream-json", "--yolo"],
                "output": "claude-stream-json",
                "model_flag": "-m",
                "resume_flag": "--resume"
            },
            "aider": {
                "command": ["aider", "--yes-always", "--no-stream", "--message-file", "/dev/stdin"],
                "prompt": "stdin",
                "env": {"AIDER_NO_AUTO_COMMITS": "1"}
            }
        }
    });
    serde_json::from_value(cfg).unwrap()
}

#[test]
fn argv_custom() {
    let o = custom_overrides();
    insta::assert_yaml_snapshot!("custom_arg", cmd(&o, "qwen", &req(None)));
    insta::assert_yaml_snapshot!(
        "custom_arg_model",
        cmd(&o, "qwen", &req(Some("qwen3-coder")))
    );
    insta::assert_yaml_snapshot!("custom_stdin", cmd(&o, "aider", &req(None)));
    // No model_flag: the model is not passed (swr cannot guess the flag).
    insta::assert_yaml_snapshot!("custom_stdin_model", cmd(&o, "aider", &req(Some("sonnet"))));
    let def = registry(&o).get("aider").unwrap();
    assert_eq!(def.output, OutputFormat::Text);
    assert_eq!(def.prompt, PromptMode::Stdin);
    assert!(!def.supports_resume());
    assert!(registry(&o).get("qwen").unwrap().supports_resume());
}

// ---------------------------------------------------------------------------------------------
// registry and config

#[test]
fn registry_names_and_unknown_provider() {
    let reg = registry(&custom_overrides());
    assert_eq!(
        reg.names(),
        ["claude", "codex", "gemini", "sim", "aider", "qwen"]
    );
    let err = reg.get("claud").unwrap_err();
    assert_eq!(
        err.to_string(),
        "unknown provider 'claud' (did you mean 'claude'?); known providers: \
         claude, codex, gemini, sim, aider, qwen"
    );
    let err = reg.get("zzz").unwrap_err();
    assert!(
        matches!(
            &err,
            ProviderError::Unknown {
                suggestion: None,
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn registry_rejects_empty_commands_and_reserved_names() {
    let mut o = ProviderOverrides {
        codex_command: Some(vec![]),
        ..Default::default()
    };
    o.custom.insert(
        "claude".into(),
        serde_json::from_value(serde_json::json!({"command": ["my-claude"]})).unwrap(),
    );
    o.custom.insert(
        "broken".into(),
        serde_json::from_value(serde_json::json!({"command": []})).unwrap(),
    );
    let reg = registry(&o);
    assert_eq!(
        reg.get("codex").unwrap_err().to_string(),
        "provider 'codex': `codex_command` is empty; it must list at least the executable"
    );
    assert!(matches!(
        reg.get("claude"),
        Err(ProviderError::ReservedName { .. })
    ));
    assert!(matches!(
        reg.get("broken"),
        Err(ProviderError::EmptyCommand { ref key, .. }) if key == "providers.broken.command"
    ));
    let problems = reg.validate();
    assert_eq!(problems.len(), 3, "{problems:#?}");
    // The others still work.
    assert!(reg.get("gemini").is_ok());
}

#[test]
fn custom_provider_config_errors_are_clear() {
    let err = serde_json::from_str::<CustomProviderConfig>(r#"{"command":["x"],"promt":"arg"}"#)
        .unwrap_err()
        .to_string();
    assert!(err.contains("unknown field `promt`"), "{err}");
    assert!(err.contains("expected one of"), "{err}");
    let err = serde_json::from_str::<CustomProviderConfig>(r#"{"command":["x"],"output":"json"}"#)
        .unwrap_err()
        .to_string();
    assert!(err.contains("unknown variant `json`"), "{err}");
    assert!(err.contains("claude-stream-json"), "{err}");
    let err = serde_json::from_str::<CustomProviderConfig>(r#"{"prompt":"stdin"}"#)
        .unwrap_err()
        .to_string();
    assert!(err.contains("missing field `command`"), "{err}");
    let ok: CustomProviderConfig =
        serde_json::from_str(r#"{"command":["x"],"prompt":"stdin","output":"codex-json"}"#)
            .unwrap();
    assert_eq!(ok.prompt, PromptMode::Stdin);
    assert_eq!(ok.output, OutputFormat::CodexJson);
}

#[test]
fn which_honors_the_executable_bit_and_path_order() {
    use std::os::unix::fs::PermissionsExt;
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let write = |dir: &Path, mode: u32| {
        let p = dir.join("agent");
        std::fs::write(&p, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
        p
    };
    write(a.path(), 0o644);
    let exe_b = write(b.path(), 0o755);
    std::fs::create_dir(a.path().join("dir-agent")).unwrap();
    let path =
        std::env::join_paths(["", a.path().to_str().unwrap(), b.path().to_str().unwrap()]).unwrap();
    assert_eq!(which("agent", &path), Some(exe_b.clone()));
    assert_eq!(which("dir-agent", &path), None);
    assert_eq!(which("missing", &path), None);
    assert_eq!(
        which(exe_b.to_str().unwrap(), &OsString::new()),
        Some(exe_b)
    );
    assert_eq!(which(a.path().join("agent").to_str().unwrap(), &path), None);

    let reg = registry(&ProviderOverrides::default());
    let def = reg.get("gemini").unwrap();
    let err = reg.locate(&def, &path).unwrap_err().to_string();
    assert!(
        err.starts_with("provider 'gemini': `gemini` not found on PATH; install it"),
        "{err}"
    );
}

#[test]
fn env_filter_drops_nested_session_vars_and_keeps_user_settings() {
    let vars = [
        ("CLAUDECODE", "1"),
        ("CLAUDE_CODE_ENTRYPOINT", "cli"),
        ("CLAUDE_CODE_SESSION_ID", "abc"),
        ("CLAUDE_CODE_CHILD_SESSION", "1"),
        ("CLAUDE_CODE_SSE_PORT", "41234"),
        ("CLAUDE_PROJECT_DIR", "/other"),
        ("CLAUDE_CODE_OAUTH_TOKEN", "sk-ant-oat"),
        ("CLAUDE_CODE_USE_BEDROCK", "1"),
        ("CLAUDE_CODE_USE_VERTEX", "1"),
        ("CLAUDE_CODE_MAX_OUTPUT_TOKENS", "32000"),
        ("CLAUDE_CONFIG_DIR", "/home/u/.claude-work"),
        ("ANTHROPIC_API_KEY", "sk-ant"),
        ("PATH", "/usr/bin"),
    ]
    .map(|(k, v)| (k.to_string(), v.to_string()));
    assert_eq!(
        inherited_env_to_remove(vars.into_iter()),
        [
            "CLAUDECODE",
            "CLAUDE_CODE_CHILD_SESSION",
            "CLAUDE_CODE_ENTRYPOINT",
            "CLAUDE_CODE_SESSION_ID",
            "CLAUDE_CODE_SSE_PORT",
            "CLAUDE_PROJECT_DIR",
        ]
    );
}

#[test]
fn error_class_default_outcomes() {
    use swr_core::outcome::Outcome;
    assert_eq!(ErrorClass::RateLimited.outcome(), Outcome::RateLimited);
    assert_eq!(ErrorClass::Billing.outcome(), Outcome::Auth);
    assert_eq!(ErrorClass::Usage.outcome(), Outcome::Usage);
    assert_eq!(ErrorClass::Network.outcome(), Outcome::Crash);
}

// ---------------------------------------------------------------------------------------------
// parsers

fn fixture(name: &str) -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/agents")
        .join(name);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn parse(format: OutputFormat, name: &str) -> Vec<AgentSignal> {
    let mut p = line_parser_with_clock(format, now);
    let mut out: Vec<AgentSignal> = fixture(name)
        .lines()
        .flat_map(|l| p.parse_line(l))
        .collect();
    out.extend(p.finish());
    out
}

fn session(signals: &[AgentSignal]) -> Option<&str> {
    signals.iter().find_map(|s| match s {
        AgentSignal::SessionId(id) => Some(id.as_str()),
        _ => None,
    })
}

fn result(signals: &[AgentSignal]) -> &ResultInfo {
    let results: Vec<&ResultInfo> = signals
        .iter()
        .filter_map(|s| match s {
            AgentSignal::Result(r) => Some(r),
            _ => None,
        })
        .collect();
    assert_eq!(results.len(), 1, "{signals:#?}");
    results[0]
}

fn errors(signals: &[AgentSignal]) -> Vec<&AgentError> {
    signals
        .iter()
        .filter_map(|s| match s {
            AgentSignal::Error(e) => Some(e),
            _ => None,
        })
        .collect()
}

fn class_of(r: &ResultInfo) -> ErrorClass {
    r.error.as_ref().expect("result has an error").class
}

#[test]
fn claude_recorded_not_logged_in() {
    // stream-json: init, synthetic assistant error, result.
    let s = parse(OutputFormat::ClaudeStreamJson, "claude_sj_nonet.out");
    assert_eq!(session(&s), Some("12905222-6bee-46c8-b4c0-c27dd567aa19"));
    let errs = errors(&s);
    assert_eq!(errs.len(), 1);
    assert_eq!(errs[0].class, ErrorClass::Auth);
    assert_eq!(errs[0].message, "Not logged in · Please run /login");
    // The synthetic message's text is not assistant prose.
    assert!(
        !s.iter().any(|x| matches!(x, AgentSignal::Text(_))),
        "{s:#?}"
    );
    let r = result(&s);
    // subtype "success" with is_error: the result is a failure.
    assert!(r.is_error && !r.is_success());
    assert_eq!(r.subtype.as_deref(), Some("success"));
    assert_eq!(class_of(r), ErrorClass::Auth);
    assert_eq!(r.num_turns, Some(1));
    assert_eq!(r.cost_usd, Some(0.0));
    assert_eq!(r.duration_ms, Some(144));

    // The json-format result objects (one line each) parse the same way.
    for f in [
        "claude_bare_json.out",
        "claude_continue_none.out",
        "claude_json_nonet.out",
        "claude_maxturns.out",
        "claude_openstdin.out",
        "claude_skipperm_root_sandbox.out",
    ] {
        let s = parse(OutputFormat::ClaudeStreamJson, f);
        assert!(session(&s).is_some(), "{f}");
        let r = result(&s);
        assert!(r.is_error, "{f}");
        assert_eq!(class_of(r), ErrorClass::Auth, "{f}");
        assert_eq!(
            r.text.as_deref(),
            Some("Not logged in · Please run /login"),
            "{f}"
        );
    }
}

#[test]
fn claude_recorded_network_failure_after_retries() {
    let s = parse(
        OutputFormat::ClaudeStreamJson,
        "claude_sj_fakekey_nonet.out",
    );
    assert_eq!(session(&s), Some("3844a7cd-361b-4a71-847e-8f1c7f0f8c7b"));
    let notices = s
        .iter()
        .filter(|x| matches!(x, AgentSignal::Notice(n) if n.starts_with("api retry")))
        .count();
    assert_eq!(notices, 10);
    assert!(s.contains(&AgentSignal::Notice(
        "api retry 1/10 in 574 ms: unknown".into()
    )));
    assert_eq!(errors(&s)[0].class, ErrorClass::Network);
    let r = result(&s);
    assert_eq!(class_of(r), ErrorClass::Network);
    assert_eq!(r.duration_ms, Some(184010));
}

#[test]
fn claude_recorded_bad_resume() {
    let s = parse(OutputFormat::ClaudeStreamJson, "claude_resume_missing.out");
    assert_eq!(session(&s), Some("11111111-2222-3333-4444-555555555555"));
    let r = result(&s);
    assert_eq!(r.subtype.as_deref(), Some("error_during_execution"));
    assert_eq!(class_of(r), ErrorClass::BadResume);
    assert_eq!(
        r.error.as_ref().unwrap().message,
        "No conversation found with session ID: 11111111-2222-3333-4444-555555555555"
    );
    assert_eq!(r.num_turns, Some(0));
}

#[test]
fn claude_recorded_text_output_and_qwen() {
    // `--output-format text`: only the tail can tell.
    let s = parse(OutputFormat::Text, "claude_text_nonet.out");
    assert_eq!(
        s,
        [AgentSignal::Text(
            "Not logged in · Please run /login".into()
        )]
    );
    let lines: Vec<String> = fixture("claude_text_nonet.out")
        .lines()
        .map(String::from)
        .collect();
    assert_eq!(
        classify_tail(&lines, now()).unwrap().class,
        ErrorClass::Auth
    );

    // qwen-code is claude-compatible but reports `error: {message}`.
    let s = parse(OutputFormat::ClaudeStreamJson, "qwen_sj_nocreds.out");
    assert_eq!(session(&s), Some("53d3423f-5d4f-4427-b276-d6a328400616"));
    assert_eq!(class_of(result(&s)), ErrorClass::Auth);
}

#[test]
fn claude_synthetic_success() {
    let s = parse(
        OutputFormat::ClaudeStreamJson,
        "synthetic/claude_success.jsonl",
    );
    insta::assert_debug_snapshot!("claude_success_signals", s);
    let r = result(&s);
    assert!(r.is_success());
    assert_eq!(r.cost_usd, Some(0.1834));
    assert_eq!(r.num_turns, Some(4));
    assert_eq!(r.duration_ms, Some(48211));
    assert_eq!(r.usage.unwrap().cached_input, Some(30000));
    // Prose and tool output mentioning limits and 429 are never classified.
    assert!(errors(&s).is_empty());
}

#[test]
fn claude_synthetic_rate_limit_uses_resets_at() {
    let s = parse(
        OutputFormat::ClaudeStreamJson,
        "synthetic/claude_rate_limit.jsonl",
    );
    let resets_at = Timestamp::from_second(1_795_881_600).unwrap();
    assert!(s.contains(&AgentSignal::Notice(
        "rate limit warning (five_hour)".into()
    )));
    let errs = errors(&s);
    assert_eq!(errs.len(), 2, "{errs:#?}");
    assert!(
        errs.iter()
            .all(|e| e.class == ErrorClass::RateLimited && e.reset_at == Some(resets_at))
    );
    let r = result(&s);
    let e = r.error.as_ref().unwrap();
    assert_eq!(e.class, ErrorClass::RateLimited);
    assert_eq!(e.reset_at, Some(resets_at));
    assert_eq!(
        e.message,
        "You've hit your limit · resets 2pm (Asia/Shanghai)"
    );
}

#[test]
fn claude_synthetic_limits_from_text_and_fields() {
    let s = parse(
        OutputFormat::ClaudeStreamJson,
        "synthetic/claude_usage_limit_epoch.jsonl",
    );
    let e = result(&s).error.clone().unwrap();
    assert_eq!(e.class, ErrorClass::RateLimited);
    assert_eq!(
        e.reset_at,
        Some(Timestamp::from_second(1_755_615_600).unwrap())
    );

    // An API spend cap comes as invalid_request; its text is a limit with a date.
    let s = parse(
        OutputFormat::ClaudeStreamJson,
        "synthetic/claude_spend_cap.jsonl",
    );
    let e = result(&s).error.clone().unwrap();
    assert_eq!(e.class, ErrorClass::RateLimited);
    assert_eq!(e.reset_at, Some("2026-04-01T00:00:00Z".parse().unwrap()));

    let s = parse(
        OutputFormat::ClaudeStreamJson,
        "synthetic/claude_max_turns.jsonl",
    );
    let r = result(&s);
    assert_eq!(class_of(r), ErrorClass::TurnLimit);
    assert_eq!(r.error.as_ref().unwrap().message, "max_turns");
    assert_eq!(r.cost_usd, Some(4.2));

    let s = parse(
        OutputFormat::ClaudeStreamJson,
        "synthetic/claude_prompt_too_long.jsonl",
    );
    assert_eq!(class_of(result(&s)), ErrorClass::ContextLimit);

    let s = parse(
        OutputFormat::ClaudeStreamJson,
        "synthetic/claude_overloaded.jsonl",
    );
    assert!(s.contains(&AgentSignal::Notice(
        "api retry 1/10 in 600 ms: overloaded (status 529)".into()
    )));
    assert_eq!(class_of(result(&s)), ErrorClass::Overloaded);
}

#[test]
fn codex_recorded_reconnects_are_notices() {
    for f in ["codex_json_nocreds.out", "codex_long.out"] {
        let s = parse(OutputFormat::CodexJson, f);
        assert!(
            session(&s).is_some_and(|id| id.starts_with("01a222")),
            "{f}"
        );
        // Codex never exits without network: no result, no fatal error, only notices.
        assert!(errors(&s).is_empty(), "{f}: {s:#?}");
        assert!(
            !s.iter().any(|x| matches!(x, AgentSignal::Result(_))),
            "{f}"
        );
        assert!(s.iter().any(
            |x| matches!(x, AgentSignal::Notice(n) if n.starts_with("Falling back from WebSockets"))
        ));
        assert!(s.iter().any(|x| matches!(x, AgentSignal::Notice(n) if n.starts_with("Reconnecting... waiting for network"))));
    }
    let s = parse(OutputFormat::CodexJson, "codex_json_nocreds.out");
    assert_eq!(session(&s), Some("01a2220e-8599-7902-9a41-dcd7514a4eb2"));
}

#[test]
fn codex_synthetic_success_and_failures() {
    let s = parse(OutputFormat::CodexJson, "synthetic/codex_success.jsonl");
    insta::assert_debug_snapshot!("codex_success_signals", s);
    let r = result(&s);
    assert!(r.is_success());
    assert_eq!(
        r.text.as_deref(),
        Some("Implemented task 2 and ticked it in tasks.md.")
    );
    assert_eq!(r.usage.unwrap().input, Some(24763));

    let s = parse(OutputFormat::CodexJson, "synthetic/codex_usage_limit.jsonl");
    assert_eq!(errors(&s)[0].class, ErrorClass::RateLimited);
    let e = result(&s).error.clone().unwrap();
    assert_eq!(e.class, ErrorClass::RateLimited);
    // Codex prints local time.
    let expected = jiff::civil::date(2026, 8, 6)
        .at(3, 33, 0, 0)
        .to_zoned(TimeZone::system())
        .unwrap()
        .timestamp();
    assert_eq!(e.reset_at, Some(expected));

    let s = parse(OutputFormat::CodexJson, "synthetic/codex_context.jsonl");
    assert_eq!(class_of(result(&s)), ErrorClass::ContextLimit);
}

#[test]
fn gemini_recorded_fetch_failed() {
    let s = parse(OutputFormat::GeminiStreamJson, "gemini_sj_fakekey.out");
    assert_eq!(session(&s), Some("f695a397-ea04-40e3-ada2-ce926462f0fc"));
    let r = result(&s);
    assert!(r.is_error);
    assert_eq!(r.subtype.as_deref(), Some("error"));
    assert_eq!(class_of(r), ErrorClass::Network);
    assert_eq!(r.duration_ms, Some(0));
}

#[test]
fn gemini_synthetic() {
    let s = parse(
        OutputFormat::GeminiStreamJson,
        "synthetic/gemini_success.jsonl",
    );
    insta::assert_debug_snapshot!("gemini_success_signals", s);
    let r = result(&s);
    assert!(r.is_success());
    assert_eq!(r.text.as_deref(), Some("Done: task 1 is complete."));
    assert_eq!(r.duration_ms, Some(10000));

    let s = parse(
        OutputFormat::GeminiStreamJson,
        "synthetic/gemini_rate_limit.jsonl",
    );
    let e = result(&s).error.clone().unwrap();
    assert_eq!(e.class, ErrorClass::RateLimited);
    assert_eq!(e.reset_at, Some("2026-11-28T12:01:00Z".parse().unwrap()));

    let s = parse(
        OutputFormat::GeminiStreamJson,
        "synthetic/gemini_empty.jsonl",
    );
    let r = result(&s);
    assert!(r.is_error);
    assert_eq!(class_of(r), ErrorClass::EmptyResponse);

    let s = parse(
        OutputFormat::GeminiStreamJson,
        "synthetic/gemini_turn_limit.jsonl",
    );
    assert_eq!(class_of(result(&s)), ErrorClass::TurnLimit);
}

#[test]
fn non_json_lines_on_json_streams_are_notices() {
    for f in [
        OutputFormat::ClaudeStreamJson,
        OutputFormat::CodexJson,
        OutputFormat::GeminiStreamJson,
    ] {
        let mut p = line_parser(f);
        assert_eq!(
            p.parse_line("Loaded cached credentials."),
            [AgentSignal::Notice("Loaded cached credentials.".into())]
        );
        assert!(p.parse_line("").is_empty());
        assert!(p.parse_line("{not json").len() == 1);
    }
}

// ---------------------------------------------------------------------------------------------
// tail classification of recorded stderr

fn tail_class(name: &str) -> Option<ErrorClass> {
    let lines: Vec<String> = fixture(name).lines().map(String::from).collect();
    classify_tail(&lines, now()).map(|e| e.class)
}

#[test]
fn recorded_stderr_tails() {
    let cases: &[(&str, Option<ErrorClass>)] = &[
        ("claude_badflag.err", Some(ErrorClass::Usage)),
        ("claude_sj_noverbose.err", Some(ErrorClass::Usage)),
        ("claude_skipperm_root.err", Some(ErrorClass::Usage)),
        ("claude_resume_missing.err", Some(ErrorClass::BadResume)),
        ("claude_openstdin.err", None),
        ("codex_badflag.err", Some(ErrorClass::Usage)),
        ("codex_fullauto.err", Some(ErrorClass::Usage)),
        ("codex_json_nogit.err", Some(ErrorClass::Usage)),
        ("codex_resume_missing.err", Some(ErrorClass::BadResume)),
        ("codex_json_nocreds.err", None),
        ("codex_long.err", None),
        ("codex_openstdin.err", None),
        ("gemini_badflag.err", Some(ErrorClass::Usage)),
        ("gemini_json_nocreds.err", Some(ErrorClass::Auth)),
        ("gemini_sj_nocreds.err", Some(ErrorClass::Auth)),
        ("gemini_text_nocreds.err", Some(ErrorClass::Auth)),
        ("gemini_resume_missing.err", Some(ErrorClass::BadResume)),
        ("gemini_sj_fakekey.err", Some(ErrorClass::Network)),
        ("qwen_sj_nocreds.err", None),
        // The JSON event lines of a stream are the parser's business, not the tail's.
        ("codex_long.out", None),
        ("claude_sj_nonet.out", None),
    ];
    for (name, expected) in cases {
        assert_eq!(tail_class(name), *expected, "{name}");
    }
    let lines: Vec<String> = fixture("codex_badflag.err")
        .lines()
        .map(String::from)
        .collect();
    assert_eq!(
        classify_tail(&lines, now()).unwrap().message,
        "error: unexpected argument '--bogus' found"
    );
}

#[test]
fn gemini_exit_codes_from_recorded_runs() {
    // gemini_sj_nocreds exited 41, gemini_resume_missing 42 (agent-clis.md).
    assert_eq!(
        classify_exit_code(ProviderKind::Gemini, 41),
        Some(ErrorClass::Auth)
    );
    assert_eq!(
        classify_exit_code(ProviderKind::Gemini, 42),
        Some(ErrorClass::Usage)
    );
}

// ---------------------------------------------------------------------------------------------
// robustness: agent output is untrusted text

proptest::proptest! {
    #[test]
    fn parsers_and_classifiers_never_panic(line in "\\PC{0,200}") {
        for f in [OutputFormat::ClaudeStreamJson, OutputFormat::CodexJson, OutputFormat::GeminiStreamJson, OutputFormat::Text] {
            let mut p = line_parser_with_clock(f, now);
            let _ = p.parse_line(&line);
            let _ = p.finish();
        }
        let _ = classify_text(&line);
        let _ = parse_reset_time(&line, now());
        let _ = classify_tail(std::slice::from_ref(&line), now());
    }

    #[test]
    fn reset_parsing_never_panics_after_markers(
        marker in proptest::sample::select(vec!["resets ", "try again at ", "try again in ", "regain access on ", "retry after ", "resets at "]),
        rest in "[0-9a-zA-Z:/()+ ,.é-]{0,40}",
    ) {
        let _ = parse_reset_time(&format!("{marker}{rest}"), now());
    }
}

#[test]
fn overrides_accept_the_config_key_providers() {
    let o: ProviderOverrides = serde_json::from_value(serde_json::json!({
        "providers": {"x": {"command": ["x"]}}
    }))
    .unwrap();
    assert!(registry(&o).get("x").is_ok());
}

// ---------------------------------------------------------------------------------------------
// Tokens and cost

fn usage(input: u64, cached: u64, output: u64) -> TokenUsage {
    TokenUsage {
        input: Some(input),
        cached_input: Some(cached),
        output: Some(output),
    }
}

/// Every recorded claude run that got as far as a result reports a cost (0: nothing reached the
/// API) and all-zero usage, with an empty `modelUsage`; qwen (claude-compatible) reports usage
/// without a cost.
#[test]
fn recorded_claude_results_carry_zero_cost_and_usage() {
    for f in [
        "claude_sj_nonet.out",
        "claude_sj_fakekey_nonet.out",
        "claude_resume_missing.out",
        "claude_bare_json.out",
        "claude_json_nonet.out",
        "claude_maxturns.out",
    ] {
        let s = parse(OutputFormat::ClaudeStreamJson, f);
        let r = result(&s);
        assert_eq!(r.cost_usd, Some(0.0), "{f}");
        assert!(r.models.is_empty(), "{f}: {:?}", r.models);
        if f != "claude_resume_missing.out" {
            assert_eq!(r.usage, Some(usage(0, 0, 0)), "{f}");
        }
    }
    // The init event names the model when no per-model totals came.
    let s = parse(OutputFormat::ClaudeStreamJson, "claude_sj_nonet.out");
    assert_eq!(result(&s).model.as_deref(), Some("claude-opus-5-5"));

    let s = parse(OutputFormat::ClaudeStreamJson, "qwen_sj_nocreds.out");
    let r = result(&s);
    assert_eq!(r.cost_usd, None);
    assert_eq!(
        r.usage,
        Some(TokenUsage {
            input: Some(0),
            cached_input: None,
            output: Some(0),
        })
    );
}

/// claude's `usage` leaves cache reads and writes out of `input_tokens`; ours counts every
/// input token, with the cached part apart.
#[test]
fn claude_usage_counts_cache_reads_and_writes_as_input() {
    let s = parse(
        OutputFormat::ClaudeStreamJson,
        "synthetic/claude_success.jsonl",
    );
    let r = result(&s);
    assert_eq!(r.usage, Some(usage(31200, 30000, 900)));
    assert_eq!(r.cost_usd, Some(0.1834));
    assert_eq!(r.model.as_deref(), Some("claude-sonnet-4-5"));
}

/// `modelUsage` is the complete account: here a subagent's model that `usage` (main loop only)
/// leaves out. The total is the sum of the models; the cost is `total_cost_usd`.
#[test]
fn claude_model_usage_is_the_complete_total() {
    let s = parse(
        OutputFormat::ClaudeStreamJson,
        "synthetic/claude_success_subagent.jsonl",
    );
    let r = result(&s);
    assert!(r.is_success());
    assert_eq!(r.cost_usd, Some(0.1748));
    assert_eq!(r.models.len(), 2);
    let sonnet = r
        .models
        .iter()
        .find(|m| m.model == "claude-sonnet-4-5")
        .unwrap();
    assert_eq!(sonnet.usage, usage(1200 + 30000 + 2500, 30000, 900));
    assert_eq!(sonnet.cost_usd, Some(0.1734));
    let haiku = r
        .models
        .iter()
        .find(|m| m.model == "claude-haiku-4-5")
        .unwrap();
    assert_eq!(haiku.usage, usage(800, 0, 120));
    assert_eq!(r.usage, Some(usage(34500, 30000, 1020)));
    assert_eq!(r.model, None, "the per-model totals name the models");

    // Without total_cost_usd, the models' costs add up.
    let line = fixture("synthetic/claude_success_subagent.jsonl")
        .lines()
        .last()
        .unwrap()
        .replace("\"total_cost_usd\":0.1748,", "");
    let mut p = line_parser_with_clock(OutputFormat::ClaudeStreamJson, now);
    let s = p.parse_line(&line);
    let cost = result(&s).cost_usd.unwrap();
    assert!((cost - 0.1748).abs() < 1e-9, "{cost}");
}

/// codex reports tokens per turn and no cost: cached input is a subset of input; fields newer
/// builds add are ignored; a failed turn keeps the tokens of the turns before it.
#[test]
fn codex_turn_usage_adds_up_and_has_no_cost() {
    let s = parse(OutputFormat::CodexJson, "synthetic/codex_success.jsonl");
    let r = result(&s);
    assert_eq!(r.usage, Some(usage(24763, 24448, 122)));
    assert_eq!(r.cost_usd, None);

    let s = parse(
        OutputFormat::CodexJson,
        "synthetic/codex_success_newer_usage.jsonl",
    );
    assert_eq!(result(&s).usage, Some(usage(51200, 40960, 1830)));

    let mut p = line_parser_with_clock(OutputFormat::CodexJson, now);
    let mut last = None;
    for line in [
        r#"{"type":"turn.started"}"#,
        r#"{"type":"turn.completed","usage":{"input_tokens":100,"cached_input_tokens":10,"output_tokens":5}}"#,
        r#"{"type":"turn.started"}"#,
        r#"{"type":"turn.completed","usage":{"input_tokens":200,"cached_input_tokens":20,"output_tokens":7}}"#,
        r#"{"type":"turn.started"}"#,
        r#"{"type":"turn.failed","error":{"message":"stream disconnected"}}"#,
    ] {
        for s in p.parse_line(line) {
            if let AgentSignal::Result(r) = s {
                last = Some(r);
            }
        }
    }
    let r = last.unwrap();
    assert!(r.is_error);
    assert_eq!(r.usage, Some(usage(300, 30, 12)));
}

/// gemini's `stats`: totals and per-model totals, no cost; `input_tokens` already counts the
/// cached ones. The recorded failed run reports zeros for the two models behind `auto`.
#[test]
fn gemini_stats_give_tokens_per_model_and_no_cost() {
    let s = parse(
        OutputFormat::GeminiStreamJson,
        "synthetic/gemini_success_models.jsonl",
    );
    let r = result(&s);
    assert!(r.is_success());
    assert_eq!(r.cost_usd, None);
    assert_eq!(r.usage, Some(usage(20000, 12000, 850)));
    let pro = r
        .models
        .iter()
        .find(|m| m.model == "gemini-3.1-pro-preview")
        .unwrap();
    assert_eq!(pro.usage, usage(18800, 12000, 800));
    assert_eq!(r.models.len(), 2);
    assert_eq!(r.model, None, "init said `auto`; the models say which");

    let s = parse(
        OutputFormat::GeminiStreamJson,
        "synthetic/gemini_success.jsonl",
    );
    let r = result(&s);
    assert_eq!(r.usage, Some(usage(5000, 1200, 300)));
    assert_eq!(r.model.as_deref(), Some("gemini-3.1-pro-preview"));

    let s = parse(OutputFormat::GeminiStreamJson, "gemini_sj_fakekey.out");
    let r = result(&s);
    assert_eq!(r.usage, Some(usage(0, 0, 0)));
    assert_eq!(r.models.len(), 2);
    assert!(r.models.iter().all(|m| m.usage == usage(0, 0, 0)));
}

/// A custom provider declaring an output format gets the same tokens and cost; plain text gives
/// none.
#[test]
fn custom_providers_get_the_usage_of_their_declared_format() {
    let r = registry(&ProviderOverrides {
        custom: [
            (
                "qwen".to_string(),
                serde_json::from_value(serde_json::json!({
                    "command": ["qwen"], "output": "claude-stream-json"
                }))
                .unwrap(),
            ),
            (
                "aider".to_string(),
                serde_json::from_value(serde_json::json!({"command": ["aider"]})).unwrap(),
            ),
        ]
        .into_iter()
        .collect(),
        ..ProviderOverrides::default()
    });
    let qwen = r.get("qwen").unwrap();
    let mut p = line_parser_with_clock(qwen.output, now);
    let s: Vec<AgentSignal> = fixture("synthetic/claude_success_subagent.jsonl")
        .lines()
        .flat_map(|l| p.parse_line(l))
        .collect();
    assert_eq!(result(&s).usage, Some(usage(34500, 30000, 1020)));
    let aider = r.get("aider").unwrap();
    let mut p = line_parser_with_clock(aider.output, now);
    let s: Vec<AgentSignal> = fixture("synthetic/claude_success_subagent.jsonl")
        .lines()
        .flat_map(|l| p.parse_line(l))
        .collect();
    assert!(!s.iter().any(|x| matches!(x, AgentSignal::Result(_))));
}
