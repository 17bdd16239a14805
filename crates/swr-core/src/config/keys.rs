//! The table of every config key swr knows: its type, default and meaning. One place, so that
//! validation, `swr config show`, the env mapping and the README reference cannot drift apart.

use std::time::Duration;

use serde_json::{Value, json};

/// The shape a key's value must have. Validation turns every accepted input into one normal
/// JSON form per kind (durations become seconds as a number, jitter a string or number...).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Kind {
    Str,
    /// A string naming a directory or file; `~` is expanded when resolved.
    Path,
    /// A string or null.
    OptStr,
    Bool,
    /// A whole number at least `min`.
    UInt {
        min: u64,
    },
    /// A whole number at least 1, or null for "no limit".
    OptUInt,
    /// A number at least `min`.
    Float {
        min: f64,
    },
    /// An amount of US dollars above 0, or null for "no limit".
    OptUsd,
    /// The `prices` table: `{"model or provider": {"input": .., "cached_input": .., "output": ..}}`
    /// in USD per million tokens.
    Prices,
    /// Seconds as a number (fractions allowed) or a string such as "500ms", "5m", "1h30m".
    Duration,
    /// Like `Duration`, but null or 0 disables it.
    OptDuration,
    StrList,
    /// A non-empty array of strings: an executable and its leading arguments.
    Argv,
    /// An argv array or null.
    OptArgv,
    /// A JSON object, validated by its consumer.
    Object,
    /// The agent prompt: a template whose `{variables}` are checked at load time.
    PromptTemplate,
    /// The attempt log file name template.
    LogTemplate,
    /// `none`, `full`, `decorrelated` or a ratio between 0 and 1.
    Jitter,
    /// A list of attempt outcome names.
    OutcomeList,
    /// Webhook URLs, each a string or `{"url", "format"}`; normal form: a list of objects.
    Webhooks,
}

/// Whether swr acts on a key or only accepts it for compatibility with the Python tool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Use {
    Used,
    /// Accepted from a Python tool config.json; swr has no such feature (yet). Never warned
    /// about, but `swr config show` and `swr doctor` say it is not used.
    Compat,
}

pub struct KeySpec {
    pub name: &'static str,
    pub kind: Kind,
    pub used: Use,
    pub help: &'static str,
    /// Durations only: the largest value accepted. Every duration has one, so that no
    /// accepted value can overflow the clock arithmetic it meets (an `Instant` plus 1e19 s
    /// panics).
    pub max: Option<Duration>,
}

const fn key(name: &'static str, kind: Kind, help: &'static str) -> KeySpec {
    KeySpec {
        name,
        kind,
        used: Use::Used,
        help,
        max: None,
    }
}

const fn compat(name: &'static str, kind: Kind, help: &'static str) -> KeySpec {
    KeySpec {
        name,
        kind,
        used: Use::Compat,
        help,
        max: None,
    }
}

impl KeySpec {
    const fn max(mut self, max: Duration) -> KeySpec {
        self.max = Some(max);
        self
    }
}

const HOUR: Duration = Duration::from_secs(3600);
const DAY: Duration = Duration::from_secs(24 * 3600);
const WEEK: Duration = Duration::from_secs(7 * 24 * 3600);
/// The largest value of any duration key (`max_runtime`): a year of running is already far
/// past any real use, and keeps every deadline far inside what `Instant` and timestamps hold.
pub const MAX_DURATION: Duration = Duration::from_secs(365 * 24 * 3600);

pub const KEYS: &[KeySpec] = &[
    key(
        "repos_root",
        Kind::Path,
        "Directory under which projects are discovered.",
    ),
    key(
        "spec_workflow_dir_name",
        Kind::Str,
        "Name of the spec-workflow directory inside a project.",
    ),
    key(
        "specs_subdir",
        Kind::Str,
        "Subdirectory of the spec-workflow directory holding one directory per spec.",
    ),
    key("tasks_filename", Kind::Str, "Name of a spec's task file."),
    key(
        "include_optional_tasks",
        Kind::Bool,
        "Work through Kiro's optional tasks (`- [ ]* 2.3 …`) too: sent to the agent, and a spec is complete only once they are done.",
    ),
    key(
        "provider",
        Kind::Str,
        "Default agent provider: claude, codex, gemini, sim or a custom provider name.",
    ),
    key(
        "model",
        Kind::OptStr,
        "Default model passed to the provider (null: the agent's own default).",
    ),
    key(
        "claude_command",
        Kind::Argv,
        "Executable and leading arguments for the claude provider.",
    ),
    key(
        "codex_command",
        Kind::Argv,
        "Executable and leading arguments for the codex provider.",
    ),
    key(
        "gemini_command",
        Kind::Argv,
        "Executable and leading arguments for the gemini provider.",
    ),
    key(
        "providers",
        Kind::Object,
        "Custom providers: {\"name\": {\"command\": [...], \"prompt\": \"arg\"|\"stdin\", \"output\": ...}}.",
    ),
    key(
        "codex_config_overrides",
        Kind::Object,
        "Passed to codex as -c key=value, one per entry.",
    ),
    key(
        "prompt_template",
        Kind::PromptTemplate,
        "Prompt sent to the agent each iteration; see the variables in the README.",
    ),
    key(
        "resume_prompt_template",
        Kind::PromptTemplate,
        "Prompt of an attempt that resumes the agent's session after a failure; same variables as prompt_template.",
    ),
    key(
        "resume_on_retry",
        Kind::Bool,
        "After a crash, timeout, overload or rate limit, continue the agent's session (--resume) instead of starting afresh.",
    ),
    key(
        "result_grace_seconds",
        Kind::Duration,
        "After the agent's final result event: how long it may take to exit before swr stops it (not a failure).",
    ).max(HOUR),
    key(
        "no_commit_limit",
        Kind::UInt { min: 1 },
        "Iterations in a row with no commit and no ticked task before the circuit breaker opens.",
    ),
    key(
        "no_progress_limit",
        Kind::UInt { min: 1 },
        "Iterations in a row with commits but no ticked task before the circuit breaker opens.",
    ),
    key(
        "log_dir_name",
        Kind::Str,
        "Attempt logs go to <project>/<spec_workflow_dir_name>/<log_dir_name>/<spec>/.",
    ),
    key(
        "log_file_template",
        Kind::LogTemplate,
        "Attempt log file name; {index}, {attempt}, {iteration}, {spec_name}, {timestamp}.",
    ),
    key(
        "ignore_dirs",
        Kind::StrList,
        "Directory names never descended into when discovering projects.",
    ),
    key(
        "cache_dir",
        Kind::Path,
        "Where swr keeps its state store and locks.",
    ),
    key(
        "cache_max_age_days",
        Kind::UInt { min: 0 },
        "Finished runners and their attempts older than this many days are pruned when a run starts (0: keep all).",
    ),
    key(
        "activity_timeout_seconds",
        Kind::OptDuration,
        "Idle timeout: an attempt with no output at all for this long is stopped (null or 0: off).",
    )
    .max(WEEK),
    key(
        "iteration_timeout_seconds",
        Kind::OptDuration,
        "Wall timeout of one attempt (null or 0: off).",
    )
    .max(WEEK),
    key(
        "stop_grace_seconds",
        Kind::Duration,
        "Between SIGTERM and SIGKILL when an attempt is stopped.",
    )
    .max(HOUR),
    key(
        "retry_on_crash",
        Kind::Bool,
        "Retry failed attempts at all.",
    ),
    key(
        "retry_max_retries",
        Kind::UInt { min: 0 },
        "Retries of one iteration before the runner gives up.",
    ),
    key(
        "retry_backoff_seconds",
        Kind::Duration,
        "Delay before the first retry.",
    )
    .max(DAY),
    key(
        "retry_backoff_multiplier",
        Kind::Float { min: 1.0 },
        "Each further retry waits this many times longer.",
    ),
    key(
        "retry_max_backoff_seconds",
        Kind::Duration,
        "Upper bound of a retry delay.",
    )
    .max(DAY),
    key(
        "retry_jitter",
        Kind::Jitter,
        "Randomness of retry delays: none, full, decorrelated or a ratio such as 0.2 (±20 %).",
    ),
    key(
        "retry_on",
        Kind::OutcomeList,
        "Outcomes that are retried: crash, signal, idle_timeout, wall_timeout, overloaded, context_limit.",
    ),
    key(
        "retry_log_dir",
        Kind::Path,
        "Per-runner retry history as JSON, relative to <project>/<spec_workflow_dir_name>/.",
    ),
    key(
        "rate_limit_wait_seconds",
        Kind::Duration,
        "Wait after a rate or usage limit that gives no reset time.",
    )
    .max(WEEK),
    key(
        "rate_limit_jitter_seconds",
        Kind::Duration,
        "Random extra wait (0..this) after a rate-limit reset time.",
    )
    .max(DAY),
    key(
        "max_iterations",
        Kind::OptUInt,
        "Stop a run after this many iterations (null: no limit).",
    ),
    key(
        "max_runtime",
        Kind::OptDuration,
        "Stop a run after this long, e.g. \"8h\" (null: no limit).",
    )
    .max(MAX_DURATION),
    key(
        "max_cost_usd",
        Kind::OptUsd,
        "Stop a run when its agents' cost reaches this many US dollars, and do not start an attempt expected to pass it (also --max-cost; null: no limit).",
    ),
    key(
        "max_tokens",
        Kind::OptUInt,
        "Stop a run when its agents' input plus output tokens reach this, and do not start an attempt expected to pass it (null: no limit).",
    ),
    key(
        "spec_budget_usd",
        Kind::OptUsd,
        "Stop when the cost of every run of a spec together reaches this many US dollars (kept in the store; null: no limit).",
    ),
    key(
        "prices",
        Kind::Prices,
        "USD per million tokens by model or provider name, {\"input\", \"cached_input\", \"output\"}: an estimated cost for CLIs that report none.",
    ),
    key(
        "verify_command",
        Kind::OptArgv,
        "Run in the project after an attempt ticks tasks; failing, the ticks are put back to in progress (null: ticks are accepted as they are).",
    ),
    key(
        "verify_timeout_seconds",
        Kind::Duration,
        "How long verify_command may run before its process group is killed and the check fails.",
    )
    .max(DAY),
    key(
        "notify_command",
        Kind::OptArgv,
        "Run on completed / failed / circuit_open / budget / waiting, with SWR_EVENT and friends set.",
    ),
    key(
        "notify_webhooks",
        Kind::Webhooks,
        "URLs POSTed the notify_command events: each a URL, or {\"url\": ..., \"format\": \"json\"|\"slack\"|\"discord\"|\"ntfy\"}.",
    ),
    key(
        "max_concurrent_agents",
        Kind::UInt { min: 0 },
        "Most agent processes running at once across every swr runner sharing cache_dir (0: no cap). Default: the number of CPU cores, at least 2.",
    ),
    key(
        "account",
        Kind::Str,
        "Name of the provider account this config uses: runners of the same provider and account share one rate-limit clock.",
    ),
    key(
        "retry_budget_per_hour",
        Kind::UInt { min: 0 },
        "Most retries across all runners in any rolling hour; a runner over it waits (0: unlimited).",
    ),
    key(
        "notify_timeout_seconds",
        Kind::Duration,
        "How long a notify_command may run; at the end of a run swr waits for its notifiers this long, then kills them.",
    ).max(HOUR),
    key(
        "tui_refresh_seconds",
        Kind::Duration,
        "Safety-net refresh of the TUI; changes show at once through file notifications.",
    )
    .max(HOUR),
    key(
        "tui_log_tail_lines",
        Kind::UInt { min: 1 },
        "Lines of an attempt log the TUI log panel keeps.",
    ),
    key(
        "tui_min_terminal_cols",
        Kind::UInt { min: 1 },
        "Below this width the TUI shows a notice instead of its layout.",
    ),
    key(
        "tui_min_terminal_rows",
        Kind::UInt { min: 1 },
        "Below this height the TUI shows a notice instead of its layout.",
    ),
    compat(
        "pre_session_validation_prompt",
        Kind::Str,
        "Python tool: prompt of its pre-session template check.",
    ),
    compat(
        "enable_pre_session_validation",
        Kind::Bool,
        "Python tool: run a template check before each session.",
    ),
    compat(
        "monitor_refresh_seconds",
        Kind::Duration,
        "Python tool: refresh of spec-workflow-monitor.",
    )
    .max(MAX_DURATION),
    compat(
        "activity_check_interval_seconds",
        Kind::Duration,
        "Python tool: how often it polled for activity (swr needs no polling).",
    )
    .max(MAX_DURATION),
    compat(
        "mcp_server_name",
        Kind::Str,
        "Python tool: name of the spec-workflow MCP server.",
    ),
    compat(
        "mcp_package",
        Kind::Str,
        "Python tool: npm package of the spec-workflow MCP server.",
    ),
    compat(
        "enable_smart_completion_check",
        Kind::Bool,
        "Python tool: probe the agent before declaring a spec complete.",
    ),
    compat(
        "completion_check_max_probes",
        Kind::UInt { min: 0 },
        "Python tool: probes of the completion check.",
    ),
    compat(
        "completion_check_probe_interval",
        Kind::Duration,
        "Python tool: delay between completion probes.",
    )
    .max(MAX_DURATION),
    compat(
        "enable_three_phase_workflow",
        Kind::Bool,
        "Python tool: split sessions into implement / verify phases.",
    ),
    compat(
        "block_commits_during_implementation",
        Kind::Bool,
        "Python tool: pre-commit hook during the implementation phase.",
    ),
    compat(
        "implementation_prompt",
        Kind::Str,
        "Python tool: prompt of the implementation phase.",
    ),
    compat(
        "post_session_verification_prompt",
        Kind::Str,
        "Python tool: prompt of the verification phase.",
    ),
];

pub fn spec(name: &str) -> Option<&'static KeySpec> {
    KEYS.iter().find(|k| k.name == name)
}

/// The built-in default of every key, already in normal form.
pub fn defaults() -> serde_json::Map<String, Value> {
    let pairs: Vec<(&str, Value)> = vec![
        ("repos_root", json!("~/repos")),
        ("spec_workflow_dir_name", json!(".spec-workflow")),
        ("specs_subdir", json!("specs")),
        ("tasks_filename", json!("tasks.md")),
        ("include_optional_tasks", json!(false)),
        ("provider", json!("claude")),
        ("model", json!(null)),
        ("claude_command", json!(["claude"])),
        (
            "codex_command",
            json!([
                "codex",
                "exec",
                "--dangerously-bypass-approvals-and-sandbox"
            ]),
        ),
        ("gemini_command", json!(["gemini"])),
        ("providers", json!({})),
        ("codex_config_overrides", json!({})),
        ("prompt_template", json!(crate::prompt::DEFAULT_TEMPLATE)),
        (
            "resume_prompt_template",
            json!(crate::prompt::DEFAULT_RESUME_TEMPLATE),
        ),
        ("resume_on_retry", json!(true)),
        ("result_grace_seconds", json!(10.0)),
        ("no_commit_limit", json!(3)),
        ("no_progress_limit", json!(6)),
        ("log_dir_name", json!("logs")),
        ("log_file_template", json!("task_{index}.log")),
        (
            "ignore_dirs",
            json!([".git", ".next", "node_modules", "dist"]),
        ),
        ("cache_dir", json!(default_cache_dir())),
        ("cache_max_age_days", json!(7)),
        ("activity_timeout_seconds", json!(300.0)),
        ("iteration_timeout_seconds", json!(3600.0)),
        ("stop_grace_seconds", json!(10.0)),
        ("retry_on_crash", json!(true)),
        ("retry_max_retries", json!(3)),
        ("retry_backoff_seconds", json!(5.0)),
        ("retry_backoff_multiplier", json!(2.0)),
        ("retry_max_backoff_seconds", json!(300.0)),
        ("retry_jitter", json!(0.2)),
        (
            "retry_on",
            json!([
                "crash",
                "signal",
                "idle_timeout",
                "wall_timeout",
                "overloaded"
            ]),
        ),
        ("retry_log_dir", json!("logs/retries")),
        ("rate_limit_wait_seconds", json!(3600.0)),
        ("rate_limit_jitter_seconds", json!(30.0)),
        ("max_iterations", json!(null)),
        ("max_runtime", json!(null)),
        ("max_cost_usd", json!(null)),
        ("max_tokens", json!(null)),
        ("spec_budget_usd", json!(null)),
        ("prices", json!({})),
        ("verify_command", json!(null)),
        ("verify_timeout_seconds", json!(600.0)),
        ("notify_command", json!(null)),
        ("notify_timeout_seconds", json!(10.0)),
        ("notify_webhooks", json!([])),
        ("max_concurrent_agents", json!(default_agent_cap())),
        ("account", json!("default")),
        ("retry_budget_per_hour", json!(0)),
        ("tui_refresh_seconds", json!(2.0)),
        ("tui_log_tail_lines", json!(500)),
        ("tui_min_terminal_cols", json!(80)),
        ("tui_min_terminal_rows", json!(24)),
        ("pre_session_validation_prompt", json!("")),
        ("enable_pre_session_validation", json!(false)),
        ("monitor_refresh_seconds", json!(5.0)),
        ("activity_check_interval_seconds", json!(300.0)),
        ("mcp_server_name", json!("spec-workflow")),
        (
            "mcp_package",
            json!("npx @pimzino/spec-workflow-mcp@latest"),
        ),
        ("enable_smart_completion_check", json!(false)),
        ("completion_check_max_probes", json!(5)),
        ("completion_check_probe_interval", json!(30.0)),
        ("enable_three_phase_workflow", json!(false)),
        ("block_commits_during_implementation", json!(false)),
        ("implementation_prompt", json!("")),
        ("post_session_verification_prompt", json!("")),
    ];
    pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

/// One agent per CPU core, at least two: agents are mostly waiting on the network, but each
/// also runs tools (builds, tests) that want a core; more than that starves them into idle
/// timeouts (measured: 200 runners on 2 cores lost a quarter of their attempts so).
pub fn default_agent_cap() -> u64 {
    std::thread::available_parallelism()
        .map(|n| n.get() as u64)
        .unwrap_or(2)
        .max(2)
}

/// `$XDG_CACHE_HOME/spec-workflow-runner` when set to an absolute path, else the Python tool's
/// `~/.cache/...`. A relative `XDG_CACHE_HOME` is ignored (XDG base directory spec): it would
/// put a new state store, and new locks, in every working directory.
fn default_cache_dir() -> String {
    cache_dir_from(std::env::var_os("XDG_CACHE_HOME").as_deref())
}

fn cache_dir_from(xdg_cache_home: Option<&std::ffi::OsStr>) -> String {
    match xdg_cache_home {
        Some(dir) if std::path::Path::new(dir).is_absolute() => {
            format!("{}/spec-workflow-runner", dir.to_string_lossy())
        }
        _ => "~/.cache/spec-workflow-runner".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_relative_xdg_cache_home_is_ignored() {
        use std::ffi::OsStr;
        assert_eq!(
            cache_dir_from(Some(OsStr::new("/var/cache/u"))),
            "/var/cache/u/spec-workflow-runner"
        );
        for ignored in [None, Some(OsStr::new("")), Some(OsStr::new("rel/cache"))] {
            assert_eq!(cache_dir_from(ignored), "~/.cache/spec-workflow-runner");
        }
    }

    #[test]
    fn every_duration_key_has_a_maximum() {
        for k in KEYS {
            let is_duration = matches!(k.kind, Kind::Duration | Kind::OptDuration);
            assert_eq!(is_duration, k.max.is_some(), "{}", k.name);
        }
        assert!(KEYS.iter().filter_map(|k| k.max).all(|m| m <= MAX_DURATION));
    }
}
