//! Renders the runner's events: a live progress bar on a terminal, plain timestamped lines
//! otherwise, or one JSON object per line with `--json`. Consumes `RunnerEvent`s only.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use swr_core::event::{RunEnd, RunnerEvent};
use swr_core::outcome::Outcome;

use crate::style::Paint;
use crate::text::one_line as safe;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Bar,
    Plain,
    Json,
}

impl Mode {
    pub fn pick(json: bool) -> Mode {
        if json {
            Mode::Json
        } else if std::io::stderr().is_terminal()
            && std::env::var_os("SWR_NO_PROGRESS_BAR").is_none()
        {
            Mode::Bar
        } else {
            Mode::Plain
        }
    }
}

pub struct Reporter {
    mode: Mode,
    bar: Option<ProgressBar>,
    paint: Paint,
    started: Instant,
    iteration: u32,
    attempt: u32,
    spec: String,
    /// What the bar counts down to: a retry or the end of a rate-limit wait.
    countdown: Option<(jiff::Timestamp, String)>,
    /// Put before every line when several specs report at once (`--parallel`).
    prefix: String,
    /// The spec named in every JSON event when several specs report at once.
    spec_tag: String,
}

impl Reporter {
    pub fn new(mode: Mode) -> Reporter {
        let paint = Paint {
            on: mode == Mode::Bar && crate::style::color_stderr(),
        };
        let bar = (mode == Mode::Bar).then(|| {
            let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
            let style = ProgressStyle::with_template(
                "{spinner} [{bar:24.cyan/blue}] {pos}/{len} tasks · {msg} · {elapsed_precise}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("█▓░");
            bar.set_style(style);
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        Reporter {
            mode,
            bar,
            paint,
            started: Instant::now(),
            iteration: 0,
            attempt: 0,
            spec: String::new(),
            countdown: None,
            prefix: String::new(),
            spec_tag: String::new(),
        }
    }

    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// Lines start with `[spec] `: several runners share one stderr.
    pub fn with_prefix(mut self, spec: &str) -> Reporter {
        self.prefix = format!("[{}] ", safe(spec));
        self.spec_tag = spec.to_string();
        self
    }

    /// Refreshes the countdown on the bar; called a few times a second while a run is live.
    pub fn tick(&self) {
        let (Some(bar), Some((at, label))) = (&self.bar, &self.countdown) else {
            return;
        };
        let left = (at.as_millisecond() - jiff::Timestamp::now().as_millisecond()).max(0);
        bar.set_message(format!(
            "{} · {label} in {}",
            self.status(),
            human_secs(left as u64 / 1000)
        ));
    }

    /// A line above the bar (or on stderr).
    fn line(&self, text: &str) {
        match (&self.bar, self.mode) {
            (Some(bar), _) => bar.println(text),
            (None, Mode::Plain) => {
                let t = self.started.elapsed().as_secs_f64();
                // Not eprintln!, which panics once stderr's reader is gone (`2>&1 | head`):
                // a panic here would kill the runner mid-attempt.
                let _ = writeln!(std::io::stderr(), "[{t:8.1}s] {}{text}", self.prefix);
            }
            _ => {}
        }
    }

    fn status(&self) -> String {
        format!("iteration {} · attempt {}", self.iteration, self.attempt)
    }

    pub fn handle(&mut self, ev: &RunnerEvent) {
        if self.mode == Mode::Json {
            let line = match serde_json::to_value(ev) {
                // Several specs on one stdout (--parallel): each event says whose it is.
                Ok(serde_json::Value::Object(mut o)) if !self.spec_tag.is_empty() => {
                    o.insert("spec".into(), self.spec_tag.clone().into());
                    serde_json::to_string(&o)
                }
                Ok(v) => serde_json::to_string(&v),
                Err(e) => Err(e),
            };
            if let Ok(s) = line {
                let mut out = std::io::stdout().lock();
                let _ = writeln!(out, "{s}");
                let _ = out.flush();
            }
            return;
        }
        let p = self.paint;
        match ev {
            RunnerEvent::Started {
                runner_id,
                project,
                spec,
                provider,
                model,
                tasks,
            } => {
                self.spec = spec.clone();
                if let Some(bar) = &self.bar {
                    bar.set_length(tasks.total as u64);
                    bar.set_position(tasks.done as u64);
                    bar.set_message("starting");
                }
                self.line(&format!(
                    "{} runner {runner_id}: spec {} in {} with {}{} ({}/{} tasks done)",
                    p.bold("swr"),
                    p.bold(&safe(spec)),
                    safe(&project.display().to_string()),
                    safe(provider),
                    model
                        .as_ref()
                        .map(|m| format!(" ({})", safe(m)))
                        .unwrap_or_default(),
                    tasks.done,
                    tasks.total
                ));
            }
            RunnerEvent::Warning { message } => {
                self.line(&format!("{} {}", p.yellow("warning:"), safe(message)));
            }
            RunnerEvent::IterationStarted {
                iteration,
                tasks,
                next_task,
            } => {
                self.iteration = *iteration;
                self.attempt = 0;
                if let Some(bar) = &self.bar {
                    bar.set_length(tasks.total as u64);
                    bar.set_position(tasks.done as u64);
                }
                self.line(&format!(
                    "iteration {iteration}: {}/{} done{}",
                    tasks.done,
                    tasks.total,
                    next_task
                        .as_ref()
                        .map(|t| format!(", next: {}", safe(t)))
                        .unwrap_or_default()
                ));
            }
            RunnerEvent::AttemptStarted {
                attempt,
                pid,
                log_path,
                resume,
                ..
            } => {
                self.attempt = *attempt;
                self.countdown = None;
                if let Some(bar) = &self.bar {
                    bar.set_message(self.status());
                }
                if *attempt > 1 || resume.is_some() || self.mode == Mode::Plain {
                    self.line(&format!(
                        "  attempt {attempt} started (pid {}){}, log {}",
                        pid.map(|p| p.to_string()).unwrap_or_else(|| "-".into()),
                        match resume {
                            Some(id) => format!(", resuming session {}", safe(id)),
                            None => String::new(),
                        },
                        safe(&log_path.display().to_string())
                    ));
                }
            }
            RunnerEvent::Queued { ahead, cap } => {
                self.line(&format!(
                    "  {} for an agent slot: {cap} agent(s) run already (max_concurrent_agents), {ahead} runner(s) ahead",
                    p.yellow("queued")
                ));
                if let Some(bar) = &self.bar {
                    bar.set_message(format!("queued ({ahead} ahead)"));
                }
            }
            RunnerEvent::Merge { result } => {
                let text = safe(&result.describe()).into_owned();
                let line = match result {
                    swr_core::runner::worktree::MergeResult::Merged { .. } => p.green(&text),
                    swr_core::runner::worktree::MergeResult::Kept { .. } => p.yellow(&text),
                };
                self.line(&line);
            }
            RunnerEvent::Activity { text } => {
                if let Some(bar) = &self.bar {
                    let short: String = text.chars().take(60).collect();
                    bar.set_message(format!("{} · {}", self.status(), safe(&short)));
                }
            }
            RunnerEvent::AttemptFinished {
                attempt,
                outcome,
                duration_ms,
                error,
                ticked,
                committed,
                note,
                usage,
                ..
            } => {
                let secs = *duration_ms as f64 / 1000.0;
                let label = match outcome {
                    Outcome::Success => p.green(outcome.as_str()),
                    Outcome::NoProgress => p.yellow(outcome.as_str()),
                    _ => p.red(outcome.as_str()),
                };
                let mut line = format!("  attempt {attempt}: {label} after {secs:.1}s");
                if let Some(e) = error {
                    line.push_str(&format!(": {}", safe(first_line(e))));
                }
                if !matches!(outcome, Outcome::Success | Outcome::NoProgress)
                    && (*ticked > 0 || *committed)
                {
                    line.push_str(&format!(
                        " · {}",
                        p.green(&progress_words(*ticked, *committed))
                    ));
                }
                if let Some(c) = usage.cost_usd.filter(|c| *c > 0.0) {
                    line.push_str(&format!(
                        " · {}{}",
                        swr_core::cost::usd(c),
                        if usage.estimated { " (estimated)" } else { "" }
                    ));
                }
                self.line(&line);
                if let Some(n) = note {
                    self.line(&format!("  {}", p.dim(&safe(n))));
                }
            }
            RunnerEvent::Checked {
                command,
                source,
                tasks,
                passed,
                end,
                duration_ms,
            } => {
                let verdict = if *passed {
                    p.green("passed")
                } else {
                    p.red("failed")
                };
                self.line(&format!(
                    "  verify `{}` ({source}) for task {}: {verdict} ({end}, {:.1}s)",
                    crate::text::one_line(&swr_core::runner::machine::shell_words(command)),
                    crate::text::one_line(&tasks.join(", ")),
                    *duration_ms as f64 / 1000.0
                ));
            }
            RunnerEvent::RetryScheduled {
                retry,
                max_retries,
                delay_ms,
                at,
                resume,
            } => {
                let secs = *delay_ms as f64 / 1000.0;
                self.line(&format!(
                    "  {} in {secs:.1}s (Retry: {retry}/{max_retries}){}",
                    p.yellow("retrying"),
                    match resume {
                        Some(id) => format!(", resuming session {}", safe(id)),
                        None => String::new(),
                    }
                ));
                self.countdown = Some((*at, format!("Retry: {retry}/{max_retries}")));
                self.tick();
            }
            RunnerEvent::Waiting { until, reason } => {
                self.line(&format!(
                    "  {} until {}: {}",
                    p.yellow("waiting for a rate limit"),
                    until.strftime("%Y-%m-%d %H:%M:%S UTC"),
                    safe(first_line(reason))
                ));
                self.countdown = Some((*until, "rate limit ends".to_string()));
                self.tick();
            }
            RunnerEvent::IterationFinished {
                iteration,
                tasks,
                ticked,
                committed,
                no_commit_streak,
                no_progress_streak,
                spend,
            } => {
                if let Some(bar) = &self.bar {
                    bar.set_position(tasks.done as u64);
                }
                let what = match (ticked, committed) {
                    (0, false) => format!("no commit, no task ticked (streak {no_commit_streak})"),
                    (0, true) => format!("committed, no task ticked (streak {no_progress_streak})"),
                    (n, _) => format!("{n} task(s) ticked"),
                };
                let cost = if spend.priced > 0 {
                    format!("; {}", swr_core::cost::usd(spend.cost_usd))
                } else {
                    String::new()
                };
                self.line(&format!(
                    "iteration {iteration} done: {what}; {}/{} tasks done{cost}",
                    tasks.done, tasks.total
                ));
            }
            RunnerEvent::Finished {
                end,
                tasks,
                iterations,
                spend,
            } => {
                if let Some(bar) = &self.bar {
                    bar.set_position(tasks.done as u64);
                    bar.finish_and_clear();
                }
                let elapsed = self.started.elapsed().as_secs_f64();
                let head = match end {
                    RunEnd::Completed => p.green("completed"),
                    RunEnd::Stopped { .. }
                    | RunEnd::MaxIterations { .. }
                    | RunEnd::MaxRuntime { .. }
                    | RunEnd::Budget { .. } => p.yellow(end.kind()),
                    _ => p.red(end.kind()),
                };
                let reason = end.reason();
                let text = format!(
                    "{head}: {}; {}/{} tasks done, {iterations} iteration(s), {elapsed:.1}s",
                    safe(&reason),
                    tasks.done,
                    tasks.total
                );
                let _ = writeln!(std::io::stderr(), "{}{text}", self.prefix);
                let _ = writeln!(std::io::stderr(), "{}{}", self.prefix, cost_line(spend));
            }
        }
    }
}

/// What a run cost, for its last line: every run says it, "not reported" included.
pub fn cost_line(spend: &swr_core::cost::Totals) -> String {
    match spend.describe() {
        Some(d) => format!(
            "cost: {d} ({} attempt{})",
            spend.attempts,
            if spend.attempts == 1 { "" } else { "s" }
        ),
        None => "cost: not reported by the agent (`prices` in the config can estimate it)".into(),
    }
}

/// "1 task ticked · committed", as `swr history` says it too.
pub fn progress_words(ticked: usize, committed: bool) -> String {
    let mut parts = Vec::new();
    if ticked > 0 {
        parts.push(format!(
            "{ticked} task{} ticked",
            if ticked == 1 { "" } else { "s" }
        ));
    }
    if committed {
        parts.push("committed".to_string());
    }
    parts.join(" · ")
}

fn human_secs(s: u64) -> String {
    match s {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m{:02}s", s / 60, s % 60),
        s => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
    }
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or("")
}
