//! Gemini CLI: `gemini --output-format stream-json --yolo --skip-trust --prompt=...` argv and
//! its event parser.
//!
//! Verified against `gemini --help` (0.61.0). The prompt is passed as `--prompt=<prompt>`, one
//! argv element: with `-p <prompt>` yargs takes a prompt starting with `-` (a task list item,
//! "- [ ] ...") for an option and leaves `-p` empty.

use serde_json::{Map, Value};

use super::classify::{classify_text, parse_reset_time};
use super::{
    AgentError, AgentSignal, AttemptRequest, Clock, ErrorClass, LineParser, ModelUsage, ResultInfo,
    TokenUsage, compact, json_object, non_json_line, str_field, u64_field,
};
use crate::supervise::CommandSpec;

pub(super) fn command(spec: &mut CommandSpec, req: &AttemptRequest) {
    spec.args.extend(
        [
            "--output-format",
            "stream-json",
            "--yolo",
            // Without it, an untrusted project directory exits 55 before doing anything.
            "--skip-trust",
        ]
        .map(String::from),
    );
    if let Some(m) = req.model {
        spec.args.extend(["-m".to_string(), m.to_string()]);
    }
    if let Some(id) = req.resume_session {
        spec.args.extend(["--resume".to_string(), id.to_string()]);
    }
    spec.args.push(format!("--prompt={}", req.prompt));
}

pub(super) struct GeminiParser {
    clock: Clock,
    /// Assistant deltas not yet emitted as one Text.
    pending: String,
    /// Assistant text since the last tool call: the final answer.
    final_text: String,
    saw_text: bool,
    tool_calls: u64,
    /// The model named by `init`, unless it is the router's `auto`.
    model: Option<String>,
}

impl GeminiParser {
    pub(super) fn new(clock: Clock) -> Self {
        GeminiParser {
            clock,
            pending: String::new(),
            final_text: String::new(),
            saw_text: false,
            tool_calls: 0,
            model: None,
        }
    }

    fn flush(&mut self, out: &mut Vec<AgentSignal>) {
        if !self.pending.is_empty() {
            out.push(AgentSignal::Text(std::mem::take(&mut self.pending)));
        }
    }

    fn result(&mut self, m: &Map<String, Value>) -> ResultInfo {
        let stats = m.get("stats").and_then(Value::as_object);
        let status = str_field(m, "status").unwrap_or("");
        let error = if status == "success" {
            // Headless gemini reports success with nothing at all when it silently dropped
            // the turn (e.g. context overflow): that is not a success.
            (!self.saw_text && self.tool_calls == 0).then(|| {
                AgentError::new(
                    ErrorClass::EmptyResponse,
                    "gemini reported success with no text and no tool call",
                )
            })
        } else {
            let e = m.get("error").and_then(Value::as_object);
            let message = e
                .and_then(|e| str_field(e, "message"))
                .unwrap_or("gemini reported an error");
            let kind = e.and_then(|e| str_field(e, "type")).unwrap_or("");
            let class = classify_text(message)
                .or_else(|| classify_text(kind))
                .unwrap_or(ErrorClass::Other);
            let mut err = AgentError::new(class, message);
            if class == ErrorClass::RateLimited {
                err.reset_at = parse_reset_time(message, (self.clock)());
            }
            Some(err)
        };
        let text = std::mem::take(&mut self.final_text);
        // `input_tokens` counts cached ones too (`input` is the uncached rest), as ours does.
        let models: Vec<ModelUsage> = stats
            .and_then(|s| s.get("models"))
            .and_then(Value::as_object)
            .map(|models| {
                models
                    .iter()
                    .filter_map(|(name, s)| {
                        Some(ModelUsage {
                            model: name.clone(),
                            usage: gemini_tokens(s.as_object()?),
                            cost_usd: None,
                        })
                    })
                    .collect()
            })
            .unwrap_or_default();
        ResultInfo {
            is_error: error.is_some(),
            subtype: Some(status.to_string()).filter(|s| !s.is_empty()),
            text: Some(text).filter(|t| !t.is_empty()),
            cost_usd: None,
            num_turns: None,
            duration_ms: stats.and_then(|s| u64_field(s, "duration_ms")),
            usage: stats.map(gemini_tokens),
            model: self.model.clone().filter(|_| models.is_empty()),
            models,
            error,
        }
    }
}

fn gemini_tokens(s: &Map<String, Value>) -> TokenUsage {
    TokenUsage {
        input: u64_field(s, "input_tokens"),
        cached_input: u64_field(s, "cached"),
        output: u64_field(s, "output_tokens"),
    }
}

impl LineParser for GeminiParser {
    fn parse_line(&mut self, line: &str) -> Vec<AgentSignal> {
        let Some(m) = json_object(line) else {
            return non_json_line(line);
        };
        let mut out = Vec::new();
        let kind = str_field(&m, "type").unwrap_or("");
        if kind != "message" {
            self.flush(&mut out);
        }
        match kind {
            "init" => {
                if let Some(id) = str_field(&m, "session_id") {
                    out.push(AgentSignal::SessionId(id.to_string()));
                }
                self.model = str_field(&m, "model")
                    .filter(|s| !s.is_empty() && *s != "auto")
                    .map(str::to_string);
            }
            "message" if str_field(&m, "role") == Some("assistant") => {
                let content = str_field(&m, "content").unwrap_or("");
                if !content.is_empty() {
                    self.saw_text = true;
                    self.final_text.push_str(content);
                    self.pending.push_str(content);
                }
                if m.get("delta").and_then(Value::as_bool) != Some(true) {
                    self.flush(&mut out);
                }
            }
            "tool_use" => {
                self.tool_calls += 1;
                self.final_text.clear();
                out.push(AgentSignal::ToolUse {
                    name: str_field(&m, "tool_name").unwrap_or("").to_string(),
                    input: compact(m.get("parameters")),
                });
            }
            "tool_result" => {
                let is_error = str_field(&m, "status") == Some("error");
                let output = match m.get("output") {
                    Some(v) if !v.is_null() => compact(Some(v)),
                    _ => compact(m.get("error").and_then(|e| e.get("message"))),
                };
                out.push(AgentSignal::ToolResult { is_error, output });
            }
            "error" => {
                out.push(AgentSignal::Notice(format!(
                    "{}: {}",
                    str_field(&m, "severity").unwrap_or("error"),
                    str_field(&m, "message").unwrap_or("")
                )));
            }
            "result" => {
                let r = self.result(&m);
                out.push(AgentSignal::Result(r));
            }
            _ => {}
        }
        out
    }

    fn finish(&mut self) -> Vec<AgentSignal> {
        let mut out = Vec::new();
        self.flush(&mut out);
        out
    }
}
