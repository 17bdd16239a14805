//! Claude Code: `claude -p --output-format stream-json --verbose` argv and its event parser.
//!
//! Verified against `claude --help` (2.1.197) and recorded 2.1.332 output. Failures are taken
//! from structured fields first: the synthetic assistant message's `error`, a `rate_limit_event`
//! with `status:"rejected"`, the result's `subtype`/`terminal_reason`/`api_error_status`; the
//! result or `errors[]` text is only classified when those say nothing precise.

use serde_json::{Map, Value};

use super::classify::{classify_text, parse_reset_time};
use super::{
    AgentError, AgentSignal, AttemptRequest, Clock, ErrorClass, LineParser, ModelUsage, ResultInfo,
    TokenUsage, clip, compact, json_object, non_json_line, str_field, u64_field,
};
use crate::supervise::{CommandSpec, StdinInput};

pub(super) fn command(spec: &mut CommandSpec, req: &AttemptRequest) {
    spec.args.extend(
        [
            "-p",
            "--output-format",
            "stream-json",
            // stream-json in print mode is refused without --verbose.
            "--verbose",
            "--dangerously-skip-permissions",
        ]
        .map(String::from),
    );
    if let Some(m) = req.model {
        spec.args.extend(["--model".to_string(), m.to_string()]);
    }
    if let Some(id) = req.resume_session {
        spec.args.extend(["--resume".to_string(), id.to_string()]);
    }
    if super::prompt_on_stdin(req) {
        // `claude -p` reads the prompt from stdin when no argument gives it.
        spec.stdin = StdinInput::Text(req.prompt.to_string());
    } else {
        // Variadic options (--allowedTools, --mcp-config) in fixed args would swallow the
        // prompt, and a prompt starting with '-' would be read as an option.
        spec.args.extend(["--".to_string(), req.prompt.to_string()]);
    }
    if req.is_root {
        // --dangerously-skip-permissions exits 1 as root unless the environment says sandbox.
        spec.env.push(("IS_SANDBOX".to_string(), "1".to_string()));
    }
}

pub(super) struct ClaudeParser {
    clock: Clock,
    session_seen: bool,
    /// The last synthetic API-error message: the most precise account of a failure.
    api_error: Option<AgentError>,
    /// A `rate_limit_event` with status `rejected`.
    rejected: Option<AgentError>,
    /// The model named by `system/init`.
    model: Option<String>,
}

impl ClaudeParser {
    pub(super) fn new(clock: Clock) -> Self {
        ClaudeParser {
            clock,
            session_seen: false,
            api_error: None,
            rejected: None,
            model: None,
        }
    }

    fn session(&mut self, m: &Map<String, Value>, out: &mut Vec<AgentSignal>) {
        if !self.session_seen
            && let Some(id) = str_field(m, "session_id")
        {
            self.session_seen = true;
            out.push(AgentSignal::SessionId(id.to_string()));
        }
    }

    fn assistant(&mut self, m: &Map<String, Value>, out: &mut Vec<AgentSignal>) {
        let content = m
            .get("message")
            .and_then(|msg| msg.get("content"))
            .and_then(Value::as_array);
        if let Some(code) = str_field(m, "error") {
            // Synthetic message: its text is the error, not prose.
            let text = content.map(|c| block_texts(c)).unwrap_or_default();
            let err = self.api_error_from(code, str_field(m, "api_error"), &text);
            self.api_error = Some(err.clone());
            out.push(AgentSignal::Error(err));
            return;
        }
        for block in content.into_iter().flatten() {
            match block.get("type").and_then(Value::as_str) {
                Some("text") => {
                    if let Some(t) = block.get("text").and_then(Value::as_str)
                        && !t.is_empty()
                    {
                        out.push(AgentSignal::Text(t.to_string()));
                    }
                }
                Some("tool_use") => out.push(AgentSignal::ToolUse {
                    name: block
                        .get("name")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_string(),
                    input: compact(block.get("input")),
                }),
                _ => {}
            }
        }
    }

    fn api_error_from(&self, code: &str, api_error: Option<&str>, text: &str) -> AgentError {
        let message = if text.is_empty() { code } else { text };
        let class = match code {
            "authentication_failed" => ErrorClass::Auth,
            "billing_error" => ErrorClass::Billing,
            "rate_limit" => ErrorClass::RateLimited,
            "overloaded" => ErrorClass::Overloaded,
            "model_not_found" => ErrorClass::Usage,
            // Broad codes: the text says which (e.g. an API spend cap is an invalid_request
            // whose text is a usage limit with a date; a prompt too long is one too).
            _ => classify_text(text).unwrap_or(match (code, api_error) {
                (_, Some("connection_failed")) => ErrorClass::Network,
                _ => ErrorClass::Other,
            }),
        };
        let mut err = AgentError::new(class, message);
        if class == ErrorClass::RateLimited {
            err.reset_at = self
                .rejected_reset()
                .or_else(|| parse_reset_time(message, (self.clock)()));
        }
        err
    }

    /// The exact epoch of a rejected rate limit beats any time parsed from text.
    fn rejected_reset(&self) -> Option<jiff::Timestamp> {
        self.rejected.as_ref().and_then(|r| r.reset_at)
    }

    fn rate_limit_event(&mut self, m: &Map<String, Value>, out: &mut Vec<AgentSignal>) {
        let Some(info) = m.get("rate_limit_info").and_then(Value::as_object) else {
            return;
        };
        let status = str_field(info, "status").unwrap_or("");
        let kind = str_field(info, "rateLimitType").unwrap_or("unknown");
        match status {
            "rejected" => {
                let mut err = AgentError::new(
                    ErrorClass::RateLimited,
                    format!("rate limit rejected ({kind})"),
                );
                err.reset_at = info
                    .get("resetsAt")
                    .and_then(Value::as_i64)
                    .and_then(|s| jiff::Timestamp::from_second(s).ok());
                self.rejected = Some(err.clone());
                out.push(AgentSignal::Error(err));
            }
            "allowed_warning" => {
                out.push(AgentSignal::Notice(format!("rate limit warning ({kind})")));
            }
            _ => {}
        }
    }

    fn result(&mut self, m: &Map<String, Value>) -> ResultInfo {
        let subtype = str_field(m, "subtype").map(str::to_string);
        let terminal_reason = str_field(m, "terminal_reason");
        let is_error = m.get("is_error").and_then(Value::as_bool).unwrap_or(false);
        let text = str_field(m, "result").map(str::to_string);
        let failed = is_error
            || subtype.as_deref().is_some_and(|s| s != "success")
            || terminal_reason.is_some_and(|r| r != "completed");
        let models = model_usage(m);
        // `usage` covers the main loop only; `modelUsage` adds subagents and the small fast
        // model, so its sum is the run's total whenever it is there.
        let usage = if models.is_empty() {
            m.get("usage").and_then(Value::as_object).map(|u| {
                tokens(
                    u64_field(u, "input_tokens"),
                    u64_field(u, "cache_read_input_tokens"),
                    u64_field(u, "cache_creation_input_tokens"),
                    u64_field(u, "output_tokens"),
                )
            })
        } else {
            Some(
                models
                    .iter()
                    .fold(TokenUsage::default(), |acc, x| acc.plus(x.usage)),
            )
        };
        let cost_usd = m.get("total_cost_usd").and_then(Value::as_f64).or_else(|| {
            let costs: Vec<f64> = models.iter().filter_map(|x| x.cost_usd).collect();
            (!costs.is_empty()).then(|| costs.iter().sum())
        });
        let error = failed.then(|| self.result_error(m, subtype.as_deref(), terminal_reason));
        ResultInfo {
            is_error: failed,
            subtype,
            text,
            cost_usd,
            num_turns: u64_field(m, "num_turns"),
            duration_ms: u64_field(m, "duration_ms"),
            usage,
            model: self.model.clone().filter(|_| models.is_empty()),
            models,
            error,
        }
    }

    fn result_error(
        &self,
        m: &Map<String, Value>,
        subtype: Option<&str>,
        terminal_reason: Option<&str>,
    ) -> AgentError {
        let errors: Vec<&str> = m
            .get("errors")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        // qwen-code (claude-compatible) reports `error: {message}` instead of `errors[]`.
        let error_obj = m
            .get("error")
            .and_then(|e| e.get("message"))
            .and_then(Value::as_str);
        let message = if !errors.is_empty() {
            errors.join("; ")
        } else if let Some(e) = error_obj {
            e.to_string()
        } else if let Some(r) = str_field(m, "result").filter(|r| !r.is_empty()) {
            r.to_string()
        } else {
            terminal_reason.or(subtype).unwrap_or("error").to_string()
        };

        let mut err = if let Some(e) = &self.api_error {
            e.clone()
        } else if let Some(e) = &self.rejected {
            // The result text ("You've hit your limit · resets 2pm") says more than the event.
            AgentError {
                message: clip(message.trim()),
                ..e.clone()
            }
        } else {
            let class = match (subtype, terminal_reason) {
                (Some("error_max_turns" | "error_max_budget_usd"), _)
                | (_, Some("max_turns" | "budget_exhausted")) => Some(ErrorClass::TurnLimit),
                (_, Some("prompt_too_long")) => Some(ErrorClass::ContextLimit),
                _ => None,
            }
            .or_else(|| status_class(m.get("api_error_status").and_then(Value::as_u64)))
            .or_else(|| classify_text(&message))
            .unwrap_or(ErrorClass::Other);
            AgentError::new(class, &message)
        };
        if err.class == ErrorClass::RateLimited {
            err.reset_at = self
                .rejected_reset()
                .or(err.reset_at)
                .or_else(|| parse_reset_time(&message, (self.clock)()));
        }
        err
    }
}

/// claude's fields to ours: its `input_tokens` leaves out cache reads and cache writes.
fn tokens(
    input: Option<u64>,
    cache_read: Option<u64>,
    cache_write: Option<u64>,
    output: Option<u64>,
) -> TokenUsage {
    let input = match (input, cache_read, cache_write) {
        (None, None, None) => None,
        (a, b, c) => Some(
            a.unwrap_or(0)
                .saturating_add(b.unwrap_or(0))
                .saturating_add(c.unwrap_or(0)),
        ),
    };
    TokenUsage {
        input,
        cached_input: cache_read,
        output,
    }
}

/// `modelUsage`: `{"<model>": {inputTokens, outputTokens, cacheReadInputTokens,
/// cacheCreationInputTokens, costUSD, ...}}` (Agent SDK `ModelUsage`), in the CLI's order.
fn model_usage(m: &Map<String, Value>) -> Vec<ModelUsage> {
    let Some(models) = m.get("modelUsage").and_then(Value::as_object) else {
        return Vec::new();
    };
    models
        .iter()
        .filter_map(|(name, u)| {
            let u = u.as_object()?;
            Some(ModelUsage {
                model: name.clone(),
                usage: tokens(
                    u64_field(u, "inputTokens"),
                    u64_field(u, "cacheReadInputTokens"),
                    u64_field(u, "cacheCreationInputTokens"),
                    u64_field(u, "outputTokens"),
                ),
                cost_usd: u.get("costUSD").and_then(Value::as_f64),
            })
        })
        .collect()
}

fn status_class(status: Option<u64>) -> Option<ErrorClass> {
    match status? {
        429 => Some(ErrorClass::RateLimited),
        529 | 503 => Some(ErrorClass::Overloaded),
        401 | 403 => Some(ErrorClass::Auth),
        402 => Some(ErrorClass::Billing),
        413 => Some(ErrorClass::ContextLimit),
        _ => None,
    }
}

fn block_texts(content: &[Value]) -> String {
    content
        .iter()
        .filter_map(|b| b.get("text").and_then(Value::as_str))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Text of a tool_result block's `content`: a string or a list of text blocks.
fn tool_result_text(v: Option<&Value>) -> String {
    match v {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(a)) => block_texts(a),
        _ => String::new(),
    }
}

impl LineParser for ClaudeParser {
    fn parse_line(&mut self, line: &str) -> Vec<AgentSignal> {
        let Some(m) = json_object(line) else {
            return non_json_line(line);
        };
        let mut out = Vec::new();
        self.session(&m, &mut out);
        if str_field(&m, "type") == Some("system")
            && str_field(&m, "subtype") == Some("init")
            && let Some(model) = str_field(&m, "model").filter(|s| !s.is_empty())
        {
            self.model = Some(model.to_string());
        }
        match str_field(&m, "type") {
            Some("system") if str_field(&m, "subtype") == Some("api_retry") => {
                out.push(AgentSignal::Notice(format!(
                    "api retry {}/{} in {} ms: {}{}",
                    u64_field(&m, "attempt").unwrap_or(0),
                    u64_field(&m, "max_retries").unwrap_or(0),
                    u64_field(&m, "retry_delay_ms").unwrap_or(0),
                    str_field(&m, "error").unwrap_or("unknown"),
                    u64_field(&m, "error_status")
                        .map(|s| format!(" (status {s})"))
                        .unwrap_or_default(),
                )));
            }
            Some("assistant") => self.assistant(&m, &mut out),
            Some("user") => {
                let content = m
                    .get("message")
                    .and_then(|msg| msg.get("content"))
                    .and_then(Value::as_array);
                for block in content.into_iter().flatten() {
                    if block.get("type").and_then(Value::as_str) == Some("tool_result") {
                        out.push(AgentSignal::ToolResult {
                            is_error: block
                                .get("is_error")
                                .and_then(Value::as_bool)
                                .unwrap_or(false),
                            output: tool_result_text(block.get("content")),
                        });
                    }
                }
            }
            Some("rate_limit_event") => self.rate_limit_event(&m, &mut out),
            Some("result") => {
                let r = self.result(&m);
                out.push(AgentSignal::Result(r));
            }
            _ => {}
        }
        out
    }
}
