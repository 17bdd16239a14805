//! Agent providers: for each agent CLI (claude, codex, gemini, the built-in simulated agent and
//! custom providers declared in config) a pure argv builder and a line parser that turns the
//! agent's machine output into typed [`AgentSignal`]s, plus the text classification of agent
//! failures (rate limits with their reset time, auth, context, usage...).
//!
//! Everything here is pure: no process is spawned, no file is read (except [`which`], which
//! looks at PATH). Running the command is `supervise`'s job; deciding what a classified error
//! means for the run (wait, retry, give up) is `retry`'s and `runner`'s.
//!
//! Adding a provider: one file with its `command` and its parser, one [`ProviderKind`] variant.

mod classify;
mod claude;
mod codex;
mod custom;
mod gemini;
mod text;

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::outcome::Outcome;
use crate::supervise::{CommandSpec, StdinInput};

pub use classify::{classify_exit_code, classify_tail, classify_text, parse_reset_time};
pub use codex::toml_literal;

/// The built-in providers, in the order `swr doctor` and error messages list them.
pub const BUILTIN_PROVIDERS: [&str; 4] = ["claude", "codex", "gemini", "sim"];

/// Default `codex_command`: `exec` with approvals and sandbox off, because swr runs unattended
/// and the sandbox blocks the git commits the agent is asked to make.
pub const DEFAULT_CODEX_COMMAND: [&str; 3] = [
    "codex",
    "exec",
    "--dangerously-bypass-approvals-and-sandbox",
];

/// Which argv builder and which default parser a provider uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProviderKind {
    Claude,
    Codex,
    Gemini,
    /// The simulated agent built into the swr binary (`swr sim-agent`).
    Sim,
    /// Declared in config under `providers`.
    Custom,
}

/// The shape of an agent's stdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OutputFormat {
    /// `claude -p --output-format stream-json --verbose` (also qwen, amp, cursor-agent).
    ClaudeStreamJson,
    /// `codex exec --json` JSONL.
    CodexJson,
    /// `gemini --output-format stream-json`.
    GeminiStreamJson,
    /// Plain text: every line is agent text; failures are classified from the tail only.
    Text,
}

/// How the prompt reaches the agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum PromptMode {
    /// As the last argv element.
    #[default]
    Arg,
    /// Written to stdin, which is then closed.
    Stdin,
}

/// A provider declared in config: `"providers": {"name": {...}}`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomProviderConfig {
    /// Executable and fixed leading arguments.
    pub command: Vec<String>,
    /// Where the prompt goes; default `arg` (appended as the last argument).
    #[serde(default)]
    pub prompt: PromptMode,
    /// How to read its stdout; default `text`.
    #[serde(default = "default_custom_output")]
    pub output: OutputFormat,
    /// Flag that selects a model (e.g. `--model`); without it a requested model is not passed.
    #[serde(default)]
    pub model_flag: Option<String>,
    /// Flag that resumes a session by id (e.g. `--resume`); without it swr never resumes.
    #[serde(default)]
    pub resume_flag: Option<String>,
    /// Extra environment variables for the agent.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
}

fn default_custom_output() -> OutputFormat {
    OutputFormat::Text
}

/// A resolved provider: everything [`command`] needs besides the attempt itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProviderDef {
    pub name: String,
    pub kind: ProviderKind,
    /// Executable (first element) and fixed leading arguments.
    pub command: Vec<String>,
    pub prompt: PromptMode,
    pub output: OutputFormat,
    /// Custom providers only: flag placed before a requested model.
    pub model_flag: Option<String>,
    /// Custom providers only: flag placed before a session id to resume.
    pub resume_flag: Option<String>,
    /// Custom providers only: variables set for the agent.
    pub env: Vec<(String, String)>,
}

impl ProviderDef {
    /// The executable as configured (a bare name is looked up on PATH).
    pub fn program(&self) -> &str {
        self.command.first().map(String::as_str).unwrap_or("")
    }

    /// Whether the agent can continue a previous session given its id.
    pub fn supports_resume(&self) -> bool {
        match self.kind {
            ProviderKind::Claude | ProviderKind::Codex | ProviderKind::Gemini => true,
            ProviderKind::Sim => true,
            ProviderKind::Custom => self.resume_flag.is_some(),
        }
    }
}

/// The provider-related part of the config.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct ProviderOverrides {
    pub claude_command: Option<Vec<String>>,
    pub codex_command: Option<Vec<String>>,
    pub gemini_command: Option<Vec<String>>,
    /// `providers` in config.
    #[serde(alias = "providers")]
    pub custom: BTreeMap<String, CustomProviderConfig>,
    /// Passed to codex as `-c key=value`, values rendered as TOML literals.
    pub codex_config_overrides: BTreeMap<String, serde_json::Value>,
}

/// Errors resolving a provider. Each names the provider and, where it helps, the config key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProviderError {
    #[error("unknown provider '{name}'{}; known providers: {}", suggestion_suffix(.suggestion), .known.join(", "))]
    Unknown {
        name: String,
        known: Vec<String>,
        suggestion: Option<String>,
    },
    #[error("provider '{provider}': `{key}` is empty; it must list at least the executable")]
    EmptyCommand { provider: String, key: String },
    #[error(
        "custom provider '{name}' clashes with the built-in provider of that name; \
         rename it, or use `{name}_command` to change how the built-in one is started"
    )]
    ReservedName { name: String },
    #[error("provider '{provider}': `{program}` not found on PATH{}", hint_suffix(.hint))]
    MissingBinary {
        provider: String,
        program: String,
        hint: Option<String>,
    },
}

fn suggestion_suffix(s: &Option<String>) -> String {
    s.as_ref()
        .map(|s| format!(" (did you mean '{s}'?)"))
        .unwrap_or_default()
}

fn hint_suffix(s: &Option<String>) -> String {
    s.as_ref().map(|s| format!("; {s}")).unwrap_or_default()
}

/// Resolves provider names to [`ProviderDef`]s from built-ins plus config.
#[derive(Debug, Clone)]
pub struct ProviderRegistry {
    overrides: ProviderOverrides,
    swr_exe: PathBuf,
}

impl ProviderRegistry {
    /// `swr_exe` is the path of the running swr binary (`std::env::current_exe()`), used by the
    /// `sim` provider. Construction never fails: problems surface from [`get`](Self::get) and
    /// [`validate`](Self::validate) so one bad custom provider does not break the others.
    pub fn new(overrides: &ProviderOverrides, swr_exe: PathBuf) -> Self {
        ProviderRegistry {
            overrides: overrides.clone(),
            swr_exe,
        }
    }

    /// Built-in names followed by custom names (sorted).
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = BUILTIN_PROVIDERS.iter().map(|s| s.to_string()).collect();
        names.extend(
            self.overrides
                .custom
                .keys()
                .filter(|k| !BUILTIN_PROVIDERS.contains(&k.as_str()))
                .cloned(),
        );
        names
    }

    pub fn get(&self, name: &str) -> Result<ProviderDef, ProviderError> {
        if BUILTIN_PROVIDERS.contains(&name) && self.overrides.custom.contains_key(name) {
            return Err(ProviderError::ReservedName {
                name: name.to_string(),
            });
        }
        let builtin = |kind, key: &str, cmd: &Option<Vec<String>>, default: &[&str], output| {
            let command = match cmd {
                Some(c) if c.is_empty() => {
                    return Err(ProviderError::EmptyCommand {
                        provider: name.to_string(),
                        key: key.to_string(),
                    });
                }
                Some(c) => c.clone(),
                None => default.iter().map(|s| s.to_string()).collect(),
            };
            Ok(ProviderDef {
                name: name.to_string(),
                kind,
                command,
                prompt: PromptMode::Arg,
                output,
                model_flag: None,
                resume_flag: None,
                env: Vec::new(),
            })
        };
        let o = &self.overrides;
        match name {
            "claude" => builtin(
                ProviderKind::Claude,
                "claude_command",
                &o.claude_command,
                &["claude"],
                OutputFormat::ClaudeStreamJson,
            ),
            "codex" => builtin(
                ProviderKind::Codex,
                "codex_command",
                &o.codex_command,
                &DEFAULT_CODEX_COMMAND,
                OutputFormat::CodexJson,
            ),
            "gemini" => builtin(
                ProviderKind::Gemini,
                "gemini_command",
                &o.gemini_command,
                &["gemini"],
                OutputFormat::GeminiStreamJson,
            ),
            "sim" => Ok(ProviderDef {
                name: name.to_string(),
                kind: ProviderKind::Sim,
                command: vec![
                    self.swr_exe.to_string_lossy().into_owned(),
                    "sim-agent".to_string(),
                ],
                prompt: PromptMode::Arg,
                output: OutputFormat::ClaudeStreamJson,
                model_flag: None,
                resume_flag: None,
                env: Vec::new(),
            }),
            _ => match o.custom.get(name) {
                Some(c) => custom::def(name, c),
                None => Err(self.unknown(name)),
            },
        }
    }

    fn unknown(&self, name: &str) -> ProviderError {
        let known = self.names();
        let suggestion = known
            .iter()
            .map(|k| (strsim::jaro_winkler(name, k), k))
            .filter(|(score, _)| *score > 0.8)
            .max_by(|a, b| a.0.total_cmp(&b.0))
            .map(|(_, k)| k.clone());
        ProviderError::Unknown {
            name: name.to_string(),
            known,
            suggestion,
        }
    }

    /// Every configuration problem, for `swr doctor` and config checks.
    pub fn validate(&self) -> Vec<ProviderError> {
        // A custom provider named like a built-in surfaces through the built-in's `get`.
        self.names()
            .iter()
            .filter_map(|n| self.get(n).err())
            .collect()
    }

    /// The command for one attempt with the named provider.
    pub fn command(&self, name: &str, req: &AttemptRequest) -> Result<CommandSpec, ProviderError> {
        let def = self.get(name)?;
        Ok(command(&def, req, &self.overrides.codex_config_overrides))
    }

    /// Early "missing binary" diagnosis: the resolved executable, or an error with a hint.
    pub fn locate(&self, def: &ProviderDef, path_env: &OsStr) -> Result<PathBuf, ProviderError> {
        which(def.program(), path_env).ok_or_else(|| ProviderError::MissingBinary {
            provider: def.name.clone(),
            program: def.program().to_string(),
            hint: install_hint(def.kind).map(str::to_string),
        })
    }
}

fn install_hint(kind: ProviderKind) -> Option<&'static str> {
    match kind {
        ProviderKind::Claude => Some(
            "install it with `npm install -g @anthropic-ai/claude-code` or set `claude_command`",
        ),
        ProviderKind::Codex => {
            Some("install it with `npm install -g @openai/codex` or set `codex_command`")
        }
        ProviderKind::Gemini => {
            Some("install it with `npm install -g @google/gemini-cli` or set `gemini_command`")
        }
        ProviderKind::Sim | ProviderKind::Custom => None,
    }
}

/// One attempt, as the runner asks for it.
#[derive(Debug, Clone, Copy)]
pub struct AttemptRequest<'a> {
    pub prompt: &'a str,
    pub model: Option<&'a str>,
    pub cwd: &'a Path,
    /// swr runs as root: claude refuses `--dangerously-skip-permissions` then unless
    /// `IS_SANDBOX=1` is set.
    pub is_root: bool,
    /// Continue this agent session instead of starting a new one.
    pub resume_session: Option<&'a str>,
}

/// Longest prompt passed as an argument. Linux refuses a single argument over 128 KiB
/// (`MAX_ARG_STRLEN`) with "Argument list too long", and the whole argv plus environment must
/// fit `ARG_MAX` too; a large `_Prompt:_` gets there. Longer prompts go to the agent's stdin
/// (claude `-p` and `codex exec` read the prompt there when none is given as an argument).
pub const MAX_PROMPT_ARG_BYTES: usize = 96 * 1024;

/// Whether the prompt of `req` is too large for the argv and goes to stdin instead.
pub(crate) fn prompt_on_stdin(req: &AttemptRequest) -> bool {
    req.prompt.len() > MAX_PROMPT_ARG_BYTES
}

/// The argv, env and stdin for one attempt. Pure; never a shell.
///
/// `env_remove` is left empty: fill it with [`inherited_env_to_remove`] over the real
/// environment at spawn time (keeping this function independent of the process environment).
pub fn command(
    def: &ProviderDef,
    req: &AttemptRequest,
    codex_overrides: &BTreeMap<String, serde_json::Value>,
) -> CommandSpec {
    let (program, fixed) = match def.command.split_first() {
        Some((p, rest)) => (p.clone(), rest.to_vec()),
        None => (String::new(), Vec::new()),
    };
    let mut spec = CommandSpec {
        program,
        args: fixed,
        env: Vec::new(),
        env_remove: Vec::new(),
        cwd: req.cwd.to_path_buf(),
        stdin: StdinInput::Null,
    };
    match def.kind {
        ProviderKind::Claude => claude::command(&mut spec, req),
        ProviderKind::Codex => codex::command(&mut spec, req, codex_overrides),
        ProviderKind::Gemini => gemini::command(&mut spec, req),
        ProviderKind::Sim => custom::sim_command(&mut spec, req),
        ProviderKind::Custom => custom::command(&mut spec, def, req),
    }
    spec
}

/// `PATH` lookup of `program`, honoring the executable bit. A program containing `/` is checked
/// as given. Empty PATH entries (which would mean "current directory") are skipped on purpose.
pub fn which(program: &str, path_env: &OsStr) -> Option<PathBuf> {
    if program.is_empty() {
        return None;
    }
    if program.contains('/') {
        let p = PathBuf::from(program);
        return is_executable(&p).then_some(p);
    }
    std::env::split_paths(path_env)
        .filter(|dir| !dir.as_os_str().is_empty())
        .map(|dir| dir.join(program))
        .find(|p| is_executable(p))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// `CLAUDE_CODE_*` variables users set on purpose (credentials, provider selection, documented
/// settings); a surrounding Claude Code session does not set these, so they are inherited.
/// Checked against the names in the claude 2.1.197 binary.
const CLAUDE_CODE_USER_VARS: &[&str] = &[
    "CLAUDE_CODE_OAUTH_TOKEN",
    "CLAUDE_CODE_OAUTH_REFRESH_TOKEN",
    "CLAUDE_CODE_OAUTH_SCOPES",
    "CLAUDE_CODE_USE_BEDROCK",
    "CLAUDE_CODE_USE_VERTEX",
    "CLAUDE_CODE_USE_FOUNDRY",
    "CLAUDE_CODE_SKIP_BEDROCK_AUTH",
    "CLAUDE_CODE_SKIP_VERTEX_AUTH",
    "CLAUDE_CODE_SKIP_FOUNDRY_AUTH",
    "CLAUDE_CODE_API_BASE_URL",
    "CLAUDE_CODE_API_KEY_HELPER_TTL_MS",
    "CLAUDE_CODE_CLIENT_CERT",
    "CLAUDE_CODE_CLIENT_KEY",
    "CLAUDE_CODE_CLIENT_KEY_PASSPHRASE",
    "CLAUDE_CODE_EXTRA_BODY",
    "CLAUDE_CODE_PROXY_RESOLVES_HOSTS",
    "CLAUDE_CODE_MAX_OUTPUT_TOKENS",
    "CLAUDE_CODE_FILE_READ_MAX_OUTPUT_TOKENS",
    "CLAUDE_CODE_MAX_RETRIES",
    "CLAUDE_CODE_MAX_TOOL_USE_CONCURRENCY",
    "CLAUDE_CODE_SUBAGENT_MODEL",
    "CLAUDE_CODE_EFFORT_LEVEL",
    "CLAUDE_CODE_AUTO_COMPACT_WINDOW",
    "CLAUDE_CODE_SHELL",
    "CLAUDE_CODE_SHELL_PREFIX",
    "CLAUDE_CODE_GIT_BASH_PATH",
    "CLAUDE_CODE_USE_POWERSHELL_TOOL",
    "CLAUDE_CODE_TMPDIR",
    "CLAUDE_CODE_DONT_INHERIT_ENV",
    "CLAUDE_CODE_ENABLE_TELEMETRY",
    "CLAUDE_CODE_OTEL_HEADERS_HELPER_DEBOUNCE_MS",
    "CLAUDE_CODE_IDE_SKIP_AUTO_INSTALL",
    "CLAUDE_CODE_ENABLE_FINE_GRAINED_TOOL_STREAMING",
    "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC",
    "CLAUDE_CODE_DISABLE_TERMINAL_TITLE",
    "CLAUDE_CODE_DISABLE_AUTO_MEMORY",
    "CLAUDE_CODE_DISABLE_FEEDBACK_SURVEY",
    "CLAUDE_CODE_DISABLE_EXPERIMENTAL_BETAS",
    "CLAUDE_CODE_DISABLE_BACKGROUND_TASKS",
    "CLAUDE_CODE_DISABLE_ATTACHMENTS",
    "CLAUDE_CODE_DISABLE_CLAUDE_MDS",
    "CLAUDE_CODE_DISABLE_FAST_MODE",
    "CLAUDE_CODE_DISABLE_OFFICIAL_MARKETPLACE_AUTOINSTALL",
    "CLAUDE_CODE_DISABLE_1M_CONTEXT",
    "CLAUDE_CODE_DISABLE_ADAPTIVE_THINKING",
    "CLAUDE_CODE_DISABLE_GIT_INSTRUCTIONS",
    "CLAUDE_CODE_DISABLE_NONSTREAMING_FALLBACK",
];

/// Inherited variables to drop before starting an agent: `CLAUDECODE`, `CLAUDE_PROJECT_DIR` and
/// the `CLAUDE_CODE_*` variables a surrounding Claude Code session leaves behind
/// (`CLAUDE_CODE_ENTRYPOINT`, `CLAUDE_CODE_SESSION_ID`, `CLAUDE_CODE_CHILD_SESSION`,
/// `CLAUDE_CODE_SSE_PORT`, fd-passing variables...): with them a nested `claude` believes it
/// is a sub-session of the outer one. Documented user settings and credentials are kept.
pub fn inherited_env_to_remove(vars: impl Iterator<Item = (String, String)>) -> Vec<String> {
    let mut out: Vec<String> = vars
        .map(|(k, _)| k)
        .filter(|k| {
            k == "CLAUDECODE"
                || k == "CLAUDE_PROJECT_DIR"
                || (k.starts_with("CLAUDE_CODE_") && !CLAUDE_CODE_USER_VARS.contains(&k.as_str()))
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

// ---------------------------------------------------------------------------------------------
// Signals

/// What one line of agent output means.
#[derive(Debug, Clone, PartialEq)]
pub enum AgentSignal {
    /// The agent's session/thread id, usable to resume.
    SessionId(String),
    /// Assistant text (never classified).
    Text(String),
    /// The agent started a tool; `input` is compact JSON or the command line.
    ToolUse { name: String, input: String },
    /// A tool finished.
    ToolResult { is_error: bool, output: String },
    /// The terminal event of the run.
    Result(ResultInfo),
    /// A classified error reported by the agent before its result (synthetic API-error message,
    /// rejected rate limit, fatal error event). The run usually ends soon after.
    Error(AgentError),
    /// Informational: API retries, reconnects, warnings, non-JSON lines in a JSON stream.
    Notice(String),
}

/// Token counts, when the agent reports them. The same meaning for every CLI, whatever its
/// own fields: `input` is every prompt token the model read, cached ones included (claude
/// reports cache reads and cache writes apart from its `input_tokens`; they are added here);
/// `cached_input` is the part of `input` served from the prompt cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct TokenUsage {
    pub input: Option<u64>,
    pub cached_input: Option<u64>,
    pub output: Option<u64>,
}

impl TokenUsage {
    /// Field by field; a field known on either side is known in the sum.
    pub fn plus(self, other: TokenUsage) -> TokenUsage {
        let add = |a: Option<u64>, b: Option<u64>| match (a, b) {
            (None, None) => None,
            (a, b) => Some(a.unwrap_or(0).saturating_add(b.unwrap_or(0))),
        };
        TokenUsage {
            input: add(self.input, other.input),
            cached_input: add(self.cached_input, other.cached_input),
            output: add(self.output, other.output),
        }
    }

    /// Input plus output: what `max_tokens` counts.
    pub fn total(&self) -> u64 {
        self.input
            .unwrap_or(0)
            .saturating_add(self.output.unwrap_or(0))
    }
}

/// One model's share of a run, when the CLI reports per-model totals (claude's `modelUsage`,
/// gemini's `stats.models`): a run may use several models (claude's subagents and its small
/// fast model; gemini's router).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ModelUsage {
    pub model: String,
    pub usage: TokenUsage,
    /// USD as the CLI estimates it (claude's `costUSD`); gemini and codex report none.
    pub cost_usd: Option<f64>,
}

/// The agent's own account of how the run ended.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ResultInfo {
    /// The agent says the run failed (for gemini also: an empty response, see the parser).
    pub is_error: bool,
    pub subtype: Option<String>,
    /// Final text (claude `result`, codex last agent message, gemini text after the last tool).
    pub text: Option<String>,
    /// USD as the CLI reports it (claude's `total_cost_usd`); no other CLI reports one.
    pub cost_usd: Option<f64>,
    pub num_turns: Option<u64>,
    pub duration_ms: Option<u64>,
    /// The whole run's tokens: the sum of `models` when the CLI gives per-model totals.
    pub usage: Option<TokenUsage>,
    /// Per-model totals, when the CLI reports them.
    pub models: Vec<ModelUsage>,
    /// The model the CLI said it runs (its init event), when it gave no per-model totals.
    pub model: Option<String>,
    /// The classified failure when `is_error`.
    pub error: Option<AgentError>,
}

impl ResultInfo {
    pub fn is_success(&self) -> bool {
        !self.is_error && self.error.is_none()
    }
}

/// Why an agent failed, as far as its output tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorClass {
    /// Rate or usage limit (subscription window, 429, quota per minute/day).
    RateLimited,
    /// 529/503, "at capacity".
    Overloaded,
    /// The prompt or conversation does not fit the context window.
    ContextLimit,
    /// Not logged in, bad or revoked key.
    Auth,
    /// No credit, quota tied to the plan.
    Billing,
    /// The agent rejected its command line or configuration.
    Usage,
    /// The API is unreachable.
    Network,
    /// Max turns or max budget reached.
    TurnLimit,
    /// Resuming a session that does not exist.
    BadResume,
    /// The model answered nothing (or was blocked).
    EmptyResponse,
    Other,
}

impl ErrorClass {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorClass::RateLimited => "rate_limited",
            ErrorClass::Overloaded => "overloaded",
            ErrorClass::ContextLimit => "context_limit",
            ErrorClass::Auth => "auth",
            ErrorClass::Billing => "billing",
            ErrorClass::Usage => "usage",
            ErrorClass::Network => "network",
            ErrorClass::TurnLimit => "turn_limit",
            ErrorClass::BadResume => "bad_resume",
            ErrorClass::EmptyResponse => "empty_response",
            ErrorClass::Other => "other",
        }
    }

    /// The default attempt outcome for a failure of this class. Classes without a dedicated
    /// outcome (network, turn limit, bad resume, empty response, other) are crashes: retryable.
    pub fn outcome(self) -> Outcome {
        match self {
            ErrorClass::RateLimited => Outcome::RateLimited,
            ErrorClass::Overloaded => Outcome::Overloaded,
            ErrorClass::ContextLimit => Outcome::ContextLimit,
            ErrorClass::Auth | ErrorClass::Billing => Outcome::Auth,
            ErrorClass::Usage => Outcome::Usage,
            ErrorClass::Network
            | ErrorClass::TurnLimit
            | ErrorClass::BadResume
            | ErrorClass::EmptyResponse
            | ErrorClass::Other => Outcome::Crash,
        }
    }
}

impl std::fmt::Display for ErrorClass {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A classified agent failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentError {
    pub class: ErrorClass,
    /// The agent's own words (error text, result text or the matching tail line), trimmed.
    pub message: String,
    /// When a rate/usage limit lifts, if the agent said.
    pub reset_at: Option<Timestamp>,
}

impl AgentError {
    pub fn new(class: ErrorClass, message: impl Into<String>) -> Self {
        AgentError {
            class,
            message: clip(message.into().trim()),
            reset_at: None,
        }
    }
}

/// Error messages are kept for humans; a runaway one must not bloat the store.
const MAX_MESSAGE_CHARS: usize = 2000;

fn clip(s: &str) -> String {
    match s.char_indices().nth(MAX_MESSAGE_CHARS) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

// ---------------------------------------------------------------------------------------------
// Parsers

/// Where relative reset times ("resets 2pm", "try again in 5 minutes") are anchored.
pub type Clock = fn() -> Timestamp;

/// Turns one line of agent stdout into signals. Stateful: parsers remember the session id and
/// the last API error so the final result can be classified precisely.
pub trait LineParser: Send {
    fn parse_line(&mut self, line: &str) -> Vec<AgentSignal>;
    /// End of output: flush anything buffered.
    fn finish(&mut self) -> Vec<AgentSignal> {
        Vec::new()
    }
}

/// The parser for `format`, anchoring relative reset times at the wall clock.
pub fn line_parser(format: OutputFormat) -> Box<dyn LineParser> {
    line_parser_with_clock(format, Timestamp::now)
}

pub fn line_parser_with_clock(format: OutputFormat, clock: Clock) -> Box<dyn LineParser> {
    match format {
        OutputFormat::ClaudeStreamJson => Box::new(claude::ClaudeParser::new(clock)),
        OutputFormat::CodexJson => Box::new(codex::CodexParser::new(clock)),
        OutputFormat::GeminiStreamJson => Box::new(gemini::GeminiParser::new(clock)),
        OutputFormat::Text => Box::new(text::TextParser),
    }
}

/// Parses a JSON event line; `None` for anything that is not a JSON object.
fn json_object(line: &str) -> Option<serde_json::Map<String, serde_json::Value>> {
    let t = line.trim();
    if !t.starts_with('{') {
        return None;
    }
    match serde_json::from_str::<serde_json::Value>(t) {
        Ok(serde_json::Value::Object(m)) => Some(m),
        _ => None,
    }
}

fn str_field<'a>(m: &'a serde_json::Map<String, serde_json::Value>, key: &str) -> Option<&'a str> {
    m.get(key).and_then(|v| v.as_str())
}

fn u64_field(m: &serde_json::Map<String, serde_json::Value>, key: &str) -> Option<u64> {
    m.get(key).and_then(|v| v.as_u64())
}

/// A non-JSON line on a JSON stream (a wrapper's banner, a warning) is informational.
fn non_json_line(line: &str) -> Vec<AgentSignal> {
    let t = line.trim();
    if t.is_empty() {
        Vec::new()
    } else {
        vec![AgentSignal::Notice(t.to_string())]
    }
}

/// Compact JSON of a tool input, or the string itself when it is one.
fn compact(v: Option<&serde_json::Value>) -> String {
    match v {
        None | Some(serde_json::Value::Null) => String::new(),
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(v) => v.to_string(),
    }
}
