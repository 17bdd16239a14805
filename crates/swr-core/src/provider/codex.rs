//! OpenAI Codex CLI: `codex exec ... --json` argv and its JSONL event parser.
//!
//! Verified against `codex exec --help` and `codex exec resume --help` (codex-cli 0.171.0).
//! `turn.failed` and non-transient `error` events are classified from their message; the
//! `Reconnecting...` errors are transient notices.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::classify::{classify_text, parse_reset_time};
use super::{
    AgentError, AgentSignal, AttemptRequest, Clock, ErrorClass, LineParser, ResultInfo, TokenUsage,
    compact, json_object, non_json_line, str_field, u64_field,
};
use crate::supervise::{CommandSpec, StdinInput};

pub(super) fn command(
    spec: &mut CommandSpec,
    req: &AttemptRequest,
    overrides: &BTreeMap<String, Value>,
) {
    if let Some(m) = req.model {
        spec.args.extend(["--model".to_string(), m.to_string()]);
    }
    for (key, value) in overrides {
        match toml_literal(value) {
            Some(v) => spec.args.extend(["-c".to_string(), format!("{key}={v}")]),
            None => tracing::warn!(
                key,
                "codex_config_overrides: null has no TOML form; skipped"
            ),
        }
    }
    spec.args
        .extend(["--json", "--skip-git-repo-check"].map(String::from));
    if let Some(id) = req.resume_session {
        // `resume` is a subcommand of exec: the exec options above still apply.
        spec.args.extend(["resume".to_string(), id.to_string()]);
    }
    if super::prompt_on_stdin(req) {
        // Without a prompt argument `codex exec` reads the instructions from stdin, to EOF:
        // the supervisor closes the pipe once the prompt is written.
        spec.stdin = StdinInput::Text(req.prompt.to_string());
    } else {
        // `--` so that a prompt starting with '-' (or equal to a subcommand name such as
        // `review`) stays the prompt.
        spec.args.extend(["--".to_string(), req.prompt.to_string()]);
        // Codex reads stdin until EOF when it is not a terminal: it must be /dev/null.
        spec.stdin = StdinInput::Null;
    }
}

/// A JSON value as a TOML literal for `-c key=value`: numbers and booleans bare, strings
/// quoted and escaped, arrays and objects inline. `None` for null (TOML has no null).
pub fn toml_literal(v: &Value) -> Option<String> {
    Some(match v {
        Value::Null => return None,
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => toml_string(s),
        Value::Array(a) => {
            let items: Option<Vec<String>> = a.iter().map(toml_literal).collect();
            format!("[{}]", items?.join(", "))
        }
        Value::Object(o) => {
            let items: Option<Vec<String>> = o
                .iter()
                .map(|(k, v)| toml_literal(v).map(|v| format!("{} = {v}", toml_key(k))))
                .collect();
            format!("{{{}}}", items?.join(", "))
        }
    })
}

fn toml_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn toml_key(k: &str) -> String {
    if !k.is_empty()
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        k.to_string()
    } else {
        toml_string(k)
    }
}

pub(super) struct CodexParser {
    clock: Clock,
    last_message: Option<String>,
    turns: u64,
    /// The last non-transient `error` event, in case `turn.failed` says less.
    last_error: Option<AgentError>,
    /// Tokens of the turns completed so far: each `turn.completed` reports its own turn.
    usage: Option<TokenUsage>,
}

impl CodexParser {
    pub(super) fn new(clock: Clock) -> Self {
        CodexParser {
            clock,
            last_message: None,
            turns: 0,
            last_error: None,
            usage: None,
        }
    }

    fn classify(&self, message: &str) -> AgentError {
        let class = classify_text(message).unwrap_or(ErrorClass::Other);
        let mut err = AgentError::new(class, message);
        if class == ErrorClass::RateLimited {
            err.reset_at = parse_reset_time(message, (self.clock)());
        }
        err
    }

    fn item(&mut self, phase: &str, item: &Map<String, Value>, out: &mut Vec<AgentSignal>) {
        let kind = str_field(item, "type").unwrap_or("");
        match (phase, kind) {
            ("item.completed", "agent_message") => {
                if let Some(t) = str_field(item, "text") {
                    self.last_message = Some(t.to_string());
                    out.push(AgentSignal::Text(t.to_string()));
                }
            }
            ("item.started", "command_execution") => out.push(AgentSignal::ToolUse {
                name: "command_execution".to_string(),
                input: compact(item.get("command")),
            }),
            ("item.completed", "command_execution") => out.push(AgentSignal::ToolResult {
                is_error: str_field(item, "status") == Some("failed")
                    || item
                        .get("exit_code")
                        .and_then(Value::as_i64)
                        .is_some_and(|c| c != 0),
                output: str_field(item, "aggregated_output")
                    .unwrap_or("")
                    .to_string(),
            }),
            ("item.started", "mcp_tool_call") => out.push(AgentSignal::ToolUse {
                name: format!(
                    "{}.{}",
                    str_field(item, "server").unwrap_or(""),
                    str_field(item, "tool").unwrap_or("")
                ),
                input: compact(item.get("arguments")),
            }),
            ("item.completed", "mcp_tool_call") => out.push(AgentSignal::ToolResult {
                is_error: str_field(item, "status") == Some("failed")
                    || item.get("error").is_some_and(|e| !e.is_null()),
                output: compact(item.get("result").or_else(|| item.get("error"))),
            }),
            ("item.completed", "file_change") => out.push(AgentSignal::ToolUse {
                name: "file_change".to_string(),
                input: compact(item.get("changes")),
            }),
            ("item.completed", "web_search") => out.push(AgentSignal::ToolUse {
                name: "web_search".to_string(),
                input: compact(item.get("query")),
            }),
            // A non-fatal warning (e.g. transport fallback).
            ("item.completed", "error") => {
                if let Some(msg) = str_field(item, "message") {
                    out.push(AgentSignal::Notice(msg.to_string()));
                }
            }
            _ => {}
        }
    }
}

impl LineParser for CodexParser {
    fn parse_line(&mut self, line: &str) -> Vec<AgentSignal> {
        let Some(m) = json_object(line) else {
            return non_json_line(line);
        };
        let mut out = Vec::new();
        match str_field(&m, "type").unwrap_or("") {
            "thread.started" => {
                if let Some(id) = str_field(&m, "thread_id") {
                    out.push(AgentSignal::SessionId(id.to_string()));
                }
            }
            "turn.started" => self.turns += 1,
            t @ ("item.started" | "item.updated" | "item.completed") => {
                if let Some(item) = m.get("item").and_then(Value::as_object) {
                    self.item(t, item, &mut out);
                }
            }
            "turn.completed" => {
                // Cached input is a subset of input_tokens, as in ours; reasoning tokens are
                // part of output_tokens. Newer builds add fields: all are optional.
                if let Some(u) = m.get("usage").and_then(Value::as_object) {
                    let turn = TokenUsage {
                        input: u64_field(u, "input_tokens"),
                        cached_input: u64_field(u, "cached_input_tokens"),
                        output: u64_field(u, "output_tokens"),
                    };
                    self.usage = Some(self.usage.unwrap_or_default().plus(turn));
                }
                out.push(AgentSignal::Result(ResultInfo {
                    is_error: false,
                    text: self.last_message.clone(),
                    num_turns: Some(self.turns.max(1)),
                    usage: self.usage,
                    ..ResultInfo::default()
                }));
            }
            "turn.failed" => {
                let message = m
                    .get("error")
                    .and_then(|e| e.get("message"))
                    .and_then(Value::as_str)
                    .unwrap_or("turn failed");
                let mut err = self.classify(message);
                if err.class == ErrorClass::Other
                    && let Some(prev) = &self.last_error
                {
                    err = prev.clone();
                }
                out.push(AgentSignal::Result(ResultInfo {
                    is_error: true,
                    text: self.last_message.clone(),
                    num_turns: Some(self.turns.max(1)),
                    usage: self.usage,
                    error: Some(err),
                    ..ResultInfo::default()
                }));
            }
            "error" => {
                let message = str_field(&m, "message").unwrap_or("");
                // Transient: codex retries by itself (and waits forever without network).
                if message.starts_with("Reconnecting...") {
                    out.push(AgentSignal::Notice(message.to_string()));
                } else {
                    let err = self.classify(message);
                    self.last_error = Some(err.clone());
                    out.push(AgentSignal::Error(err));
                }
            }
            _ => {}
        }
        out
    }
}
