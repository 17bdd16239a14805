//! Turning what one attempt did (its exit as the supervisor saw it, the signals its output
//! carried, its last lines) into one [`Outcome`]. Pure: no process, no clock read.
//!
//! Order of evidence: what swr itself did (spawn failure, stop, timeout) first; then the
//! agent's structured output (result event, classified error events); then the exit code
//! where a CLI documents its codes; then precise patterns on the last lines only. An exit
//! code alone never decides success: claude exits 1 for everything.

use jiff::Timestamp;

use crate::outcome::Outcome;
use crate::provider::{self, AgentError, ErrorClass, ProviderKind, ResultInfo};
use crate::supervise::{AttemptExit, SpawnError, TimeoutKind, signal_name};

/// What the line parser gathered during one attempt.
#[derive(Debug, Clone, Default)]
pub struct AttemptSignals {
    pub session_id: Option<String>,
    pub result: Option<ResultInfo>,
    /// Classified errors seen before the result (synthetic API errors, rejected rate limits).
    pub errors: Vec<AgentError>,
}

/// How an attempt is judged before progress is looked at.
#[derive(Debug, Clone, PartialEq)]
pub struct Classified {
    /// `Success` here means "finished cleanly; judge it by progress". The runner turns it
    /// into `Success` or `NoProgress` once it has looked at git and tasks.md.
    pub outcome: Outcome,
    /// A short human explanation: the agent's error text, the signal, the timeout.
    pub error: Option<String>,
    /// When a rate limit lifts, if the agent said.
    pub reset_at: Option<Timestamp>,
    /// The agent's own error class when one was recognised: it tells apart failures that share
    /// an outcome (a rejected resume is a `crash` that is answered by a fresh session).
    pub class: Option<ErrorClass>,
}

impl Classified {
    fn new(outcome: Outcome, error: Option<String>) -> Classified {
        Classified {
            outcome,
            error,
            reset_at: None,
            class: None,
        }
    }

    fn from_error(e: &AgentError) -> Classified {
        Classified {
            outcome: outcome_of(e.class),
            error: Some(e.message.clone()),
            reset_at: e.reset_at,
            class: Some(e.class),
        }
    }

    /// The agent CLI refused to resume the session it was given (unknown or expired id).
    pub fn rejected_resume(&self) -> bool {
        self.class == Some(ErrorClass::BadResume)
    }
}

/// Failure classes whose iteration is still judged by progress: the agent worked and then hit
/// a turn or budget cap, or answered nothing. Its commits and ticks count.
fn judged_by_progress(class: ErrorClass) -> bool {
    matches!(class, ErrorClass::TurnLimit | ErrorClass::EmptyResponse)
}

fn outcome_of(class: ErrorClass) -> Outcome {
    if judged_by_progress(class) {
        Outcome::Success
    } else {
        class.outcome()
    }
}

/// Text claude prints when a run produced no message at all: judged by progress, not a crash.
const NO_MESSAGES: &str = "No messages returned";

pub fn classify(
    kind: ProviderKind,
    exit: &AttemptExit,
    signals: &AttemptSignals,
    tail: &[String],
    now: Timestamp,
) -> Classified {
    match exit {
        AttemptExit::SpawnFailed(e) => {
            return Classified::new(Outcome::SpawnFailed, Some(spawn_message(e)));
        }
        AttemptExit::Stopped => {
            return Classified::new(Outcome::Stopped, Some("stopped by the user".into()));
        }
        AttemptExit::StoppedAfterResult => {
            // Judged by the result it reported, like an agent that exited after it.
            let mut c = match &signals.result {
                Some(r) if !r.is_success() => match r.error.as_ref().or(signals.errors.last()) {
                    Some(e) => Classified::from_error(e),
                    None => Classified::new(Outcome::Crash, r.text.clone()),
                },
                _ => Classified::new(Outcome::Success, None),
            };
            let note = "swr ended the agent after its final result (it did not exit by itself)";
            c.error = Some(match c.error {
                Some(e) => format!("{e}; {note}"),
                None => note.to_string(),
            });
            return c;
        }
        AttemptExit::TimedOut { kind } => {
            // An agent that reported a rate limit and then hung waiting for it (codex keeps
            // reconnecting) is rate limited, not idle.
            if let Some(e) = rate_limit(signals) {
                return Classified::from_error(e);
            }
            return match kind {
                TimeoutKind::Idle => Classified::new(
                    Outcome::IdleTimeout,
                    Some("no output for the activity timeout".into()),
                ),
                TimeoutKind::Wall => Classified::new(
                    Outcome::WallTimeout,
                    Some("ran past the iteration timeout".into()),
                ),
            };
        }
        AttemptExit::Exited { .. } | AttemptExit::Signaled { .. } => {}
    }

    if let Some(result) = &signals.result {
        if result.is_success() {
            return Classified::new(Outcome::Success, None);
        }
        if let Some(e) = &result.error {
            return Classified::from_error(e);
        }
        // A failed result without its own class: the errors before it usually say why.
        if let Some(e) = signals.errors.last() {
            return Classified::from_error(e);
        }
    } else if let Some(e) = rate_limit(signals).or(signals.errors.last()) {
        return Classified::from_error(e);
    }

    match exit {
        AttemptExit::Signaled { signal } => {
            let name = signal_name(*signal);
            Classified::new(Outcome::Signal, Some(format!("killed by {name}")))
        }
        AttemptExit::Exited { code } => {
            if let Some(class) = provider::classify_exit_code(kind, *code) {
                let from_tail = provider::classify_tail(tail, now);
                return match from_tail {
                    // gemini exits 42 ("usage") when a resume finds no session: the text is
                    // the precise account, and a fresh session is the answer, not giving up.
                    Some(e) if e.class == class || e.class == ErrorClass::BadResume => {
                        Classified::from_error(&e)
                    }
                    _ => Classified {
                        class: Some(class),
                        ..Classified::new(
                            outcome_of(class),
                            Some(format!("exit code {code} ({class})")),
                        )
                    },
                };
            }
            if *code == 126 || *code == 127 {
                return Classified::new(
                    Outcome::SpawnFailed,
                    Some(format!(
                        "exit code {code}: the agent's command could not be executed"
                    )),
                );
            }
            let text_error = provider::classify_tail(tail, now);
            if let Some(e) = &text_error
                && e.class != ErrorClass::Other
            {
                return Classified::from_error(e);
            }
            if *code == 0 {
                return Classified::new(Outcome::Success, None);
            }
            if tail.iter().any(|l| l.contains(NO_MESSAGES)) {
                return Classified::new(
                    Outcome::Success,
                    Some(format!("exit code {code}: {NO_MESSAGES}")),
                );
            }
            // The line worth quoting is the last one that is not a JSON event: events were
            // already read by the line parser, and stdout and stderr arrive in no fixed order,
            // so "the last line" alone could be an event printed just before the error.
            let lines = || {
                tail.iter()
                    .rev()
                    .map(|l| l.trim())
                    .filter(|l| !l.is_empty())
            };
            let last = lines()
                .find(|l| !l.starts_with('{'))
                .or_else(|| lines().next())
                .map(|l| clip(l, 300));
            Classified::new(
                Outcome::Crash,
                Some(match last {
                    Some(l) => format!("exit code {code}: {l}"),
                    None => format!("exit code {code}"),
                }),
            )
        }
        _ => Classified::new(Outcome::Crash, None),
    }
}

fn rate_limit(signals: &AttemptSignals) -> Option<&AgentError> {
    signals
        .errors
        .iter()
        .rev()
        .find(|e| e.class == ErrorClass::RateLimited)
}

fn spawn_message(e: &SpawnError) -> String {
    match e {
        SpawnError::NotFound { program } => format!(
            "cannot run `{program}`: not found on PATH; install it or set the provider's command in config"
        ),
        other => other.to_string(),
    }
}

fn clip(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn now() -> Timestamp {
        "2026-11-28T12:00:00Z".parse().unwrap()
    }

    fn tail(lines: &[&str]) -> Vec<String> {
        lines.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn exit_zero_without_result_is_judged_by_progress() {
        let c = classify(
            ProviderKind::Custom,
            &AttemptExit::Exited { code: 0 },
            &AttemptSignals::default(),
            &[],
            now(),
        );
        assert_eq!(c.outcome, Outcome::Success);
    }

    #[test]
    fn claude_exit_one_with_auth_result_is_auth() {
        let mut p = provider::line_parser(provider::OutputFormat::ClaudeStreamJson);
        let mut signals = AttemptSignals::default();
        for line in include_str!("../../tests/fixtures/agents/claude_sj_nonet.out").lines() {
            for s in p.parse_line(line) {
                match s {
                    provider::AgentSignal::Result(r) => signals.result = Some(r),
                    provider::AgentSignal::Error(e) => signals.errors.push(e),
                    _ => {}
                }
            }
        }
        let c = classify(
            ProviderKind::Claude,
            &AttemptExit::Exited { code: 1 },
            &signals,
            &[],
            now(),
        );
        assert_eq!(c.outcome, Outcome::Auth, "{c:?}");
        assert!(c.error.unwrap().contains("Not logged in"));
    }

    #[test]
    fn a_429_in_a_file_name_is_a_crash_not_a_rate_limit() {
        let c = classify(
            ProviderKind::Custom,
            &AttemptExit::Exited { code: 1 },
            &AttemptSignals::default(),
            &tail(&["error at src/http429.rs:429: assertion failed"]),
            now(),
        );
        assert_eq!(c.outcome, Outcome::Crash);
        assert!(c.error.unwrap().contains("http429.rs"));
    }

    #[test]
    fn signal_is_named() {
        let c = classify(
            ProviderKind::Claude,
            &AttemptExit::Signaled { signal: 11 },
            &AttemptSignals::default(),
            &[],
            now(),
        );
        assert_eq!(c.outcome, Outcome::Signal);
        assert_eq!(c.error.as_deref(), Some("killed by SIGSEGV"));
    }

    #[test]
    fn timeouts_stops_and_spawn_failures_win() {
        let s = AttemptSignals::default();
        let idle = classify(
            ProviderKind::Codex,
            &AttemptExit::TimedOut {
                kind: TimeoutKind::Idle,
            },
            &s,
            &[],
            now(),
        );
        assert_eq!(idle.outcome, Outcome::IdleTimeout);
        let wall = classify(
            ProviderKind::Codex,
            &AttemptExit::TimedOut {
                kind: TimeoutKind::Wall,
            },
            &s,
            &[],
            now(),
        );
        assert_eq!(wall.outcome, Outcome::WallTimeout);
        let stop = classify(ProviderKind::Codex, &AttemptExit::Stopped, &s, &[], now());
        assert_eq!(stop.outcome, Outcome::Stopped);
        let spawn = classify(
            ProviderKind::Codex,
            &AttemptExit::SpawnFailed(SpawnError::NotFound {
                program: "codex".into(),
            }),
            &s,
            &[],
            now(),
        );
        assert_eq!(spawn.outcome, Outcome::SpawnFailed);
        assert!(spawn.error.unwrap().contains("not found on PATH"));
    }

    #[test]
    fn rate_limit_event_before_a_hang_is_a_rate_limit_with_reset() {
        let reset: Timestamp = "2026-11-28T13:00:00Z".parse().unwrap();
        let mut e = AgentError::new(ErrorClass::RateLimited, "limit");
        e.reset_at = Some(reset);
        let s = AttemptSignals {
            errors: vec![e],
            ..Default::default()
        };
        let c = classify(
            ProviderKind::Claude,
            &AttemptExit::TimedOut {
                kind: TimeoutKind::Wall,
            },
            &s,
            &[],
            now(),
        );
        assert_eq!(c.outcome, Outcome::RateLimited);
        assert_eq!(c.reset_at, Some(reset));
    }

    #[test]
    fn no_messages_returned_is_judged_by_progress() {
        let c = classify(
            ProviderKind::Claude,
            &AttemptExit::Exited { code: 1 },
            &AttemptSignals::default(),
            &tail(&["Error: No messages returned from query"]),
            now(),
        );
        assert_eq!(c.outcome, Outcome::Success);
    }

    #[test]
    fn exit_127_is_never_retried() {
        let c = classify(
            ProviderKind::Custom,
            &AttemptExit::Exited { code: 127 },
            &AttemptSignals::default(),
            &tail(&["sh: 1: foo: not found"]),
            now(),
        );
        assert_eq!(c.outcome, Outcome::SpawnFailed);
    }

    #[test]
    fn a_crash_quotes_the_error_line_not_a_json_event_that_came_after_it() {
        let c = classify(
            ProviderKind::Claude,
            &AttemptExit::Exited { code: 1 },
            &AttemptSignals::default(),
            &tail(&[
                "Error: simulated crash",
                r#"{"type":"assistant","message":{"content":[{"type":"text","text":"bye"}]}}"#,
            ]),
            now(),
        );
        assert_eq!(c.outcome, Outcome::Crash);
        assert_eq!(
            c.error.as_deref(),
            Some("exit code 1: Error: simulated crash")
        );
    }

    #[test]
    fn plain_crash_quotes_the_last_line() {
        let c = classify(
            ProviderKind::Custom,
            &AttemptExit::Exited { code: 3 },
            &AttemptSignals::default(),
            &tail(&["working", "panic: boom", ""]),
            now(),
        );
        assert_eq!(c.outcome, Outcome::Crash);
        assert_eq!(c.error.as_deref(), Some("exit code 3: panic: boom"));
    }

    fn signals_of(format: provider::OutputFormat, out: &str) -> AttemptSignals {
        let mut p = provider::line_parser(format);
        let mut signals = AttemptSignals::default();
        for line in out.lines() {
            for s in p.parse_line(line) {
                match s {
                    provider::AgentSignal::Result(r) => signals.result = Some(r),
                    provider::AgentSignal::Error(e) => signals.errors.push(e),
                    provider::AgentSignal::SessionId(id) => signals.session_id = Some(id),
                    _ => {}
                }
            }
        }
        signals
    }

    /// The recorded answers of each CLI to `--resume <unknown id>` are rejected resumes, so the
    /// runner starts a fresh session instead of retrying or giving up.
    #[test]
    fn each_cli_refusing_a_resume_is_recognised() {
        let claude = classify(
            ProviderKind::Claude,
            &AttemptExit::Exited { code: 1 },
            &signals_of(
                provider::OutputFormat::ClaudeStreamJson,
                include_str!("../../tests/fixtures/agents/claude_resume_missing.out"),
            ),
            &tail(&[include_str!(
                "../../tests/fixtures/agents/claude_resume_missing.err"
            )]),
            now(),
        );
        assert!(claude.rejected_resume(), "{claude:?}");
        let codex_err = include_str!("../../tests/fixtures/agents/codex_resume_missing.err");
        let codex = classify(
            ProviderKind::Codex,
            &AttemptExit::Exited { code: 1 },
            &AttemptSignals::default(),
            &codex_err.lines().map(str::to_string).collect::<Vec<_>>(),
            now(),
        );
        assert!(codex.rejected_resume(), "{codex:?}");
        // gemini exits 42, its "usage" code, for this: the text wins, or the run would give up.
        let gemini = classify(
            ProviderKind::Gemini,
            &AttemptExit::Exited { code: 42 },
            &AttemptSignals::default(),
            &tail(&[include_str!(
                "../../tests/fixtures/agents/gemini_resume_missing.err"
            )]),
            now(),
        );
        assert!(gemini.rejected_resume(), "{gemini:?}");
        assert_eq!(gemini.outcome, Outcome::Crash);
        // An ordinary crash is not a rejected resume.
        let crash = classify(
            ProviderKind::Claude,
            &AttemptExit::Exited { code: 1 },
            &AttemptSignals::default(),
            &tail(&["Error: boom"]),
            now(),
        );
        assert!(!crash.rejected_resume());
    }

    #[test]
    fn an_agent_stopped_after_its_result_is_judged_by_the_result() {
        let ok = AttemptSignals {
            result: Some(provider::ResultInfo::default()),
            ..Default::default()
        };
        let c = classify(
            ProviderKind::Claude,
            &AttemptExit::StoppedAfterResult,
            &ok,
            &[],
            now(),
        );
        assert_eq!(c.outcome, Outcome::Success);
        assert!(c.error.unwrap().contains("after its final result"));
        let mut e = AgentError::new(ErrorClass::Overloaded, "529 Overloaded");
        e.reset_at = None;
        let failed = AttemptSignals {
            result: Some(provider::ResultInfo {
                is_error: true,
                error: Some(e),
                ..Default::default()
            }),
            ..Default::default()
        };
        let c = classify(
            ProviderKind::Claude,
            &AttemptExit::StoppedAfterResult,
            &failed,
            &[],
            now(),
        );
        assert_eq!(c.outcome, Outcome::Overloaded);
        assert!(c.error.unwrap().starts_with("529 Overloaded; swr ended"));
    }
}
