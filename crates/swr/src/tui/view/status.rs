//! The status panel of the selected spec: status, Retry N/M, provider and model, pid, times,
//! iteration, tasks, the countdown to the next attempt, the last outcome, commit, and the
//! runner's cost and tokens (estimates said to be).

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};
use swr_core::store::{AttemptRecord, RunnerRecord, RunnerStatus};

use super::{block, bold, clock, fg, status_color};
use crate::style::progress_bar;
use crate::tui::app::{App, human_secs};

/// Rows the panel wants, borders included.
pub fn height(app: &App) -> u16 {
    lines(app, 60).len() as u16 + 2
}

pub fn render(app: &App, f: &mut Frame, area: Rect) {
    let title = match &app.current {
        Some((p, s)) => format!(
            " {s} · {} ",
            p.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default()
        ),
        None => " Status ".to_string(),
    };
    let b = block(app, title, false);
    let inner = b.inner(area);
    f.render_widget(b, area);
    f.render_widget(
        Paragraph::new(lines(app, inner.width as usize)).wrap(Wrap { trim: false }),
        inner,
    );
}

fn label(app: &App, l: &str) -> Span<'static> {
    Span::styled(format!("{l:<10}"), fg(app, Color::DarkGray))
}

fn lines(app: &App, _w: usize) -> Vec<Line<'static>> {
    let Some((project, spec)) = &app.current else {
        return vec![
            Line::raw("Select a spec (↑↓, Enter)."),
            Line::raw("s starts a runner, ? shows every key."),
        ];
    };
    let Some(r) = app.current_runner() else {
        return vec![
            Line::raw(format!("No runner has run {spec} yet.")),
            Line::raw(format!(
                "s starts one with {}{}; S asks for provider and model.",
                app.settings.default_provider,
                app.settings
                    .default_model
                    .as_ref()
                    .map(|m| format!(" ({m})"))
                    .unwrap_or_default()
            )),
            Line::styled(project.display().to_string(), fg(app, Color::DarkGray)),
        ];
    };
    runner_lines(app, r)
}

fn runner_lines(app: &App, r: &RunnerRecord) -> Vec<Line<'static>> {
    let now = app.now;
    let mut out = Vec::new();
    let retry_style = if r.retry_count > 0 {
        fg(app, Color::Yellow).add_modifier(Modifier::BOLD)
    } else {
        fg(app, Color::Reset)
    };
    out.push(Line::from(vec![
        label(app, "Status"),
        Span::styled(
            format!("{:<10}", r.status.as_str().to_uppercase()),
            fg(app, status_color(r.status)).add_modifier(Modifier::BOLD),
        ),
        Span::styled(
            format!("Retry: {}/{}", r.retry_count, r.max_retries),
            retry_style,
        ),
    ]));
    out.push(Line::from(vec![
        label(app, "Provider"),
        Span::raw(format!(
            "{} · model {}",
            r.provider,
            r.model.as_deref().unwrap_or("default")
        )),
    ]));
    let elapsed = match (r.status.is_active(), r.ended_at) {
        (false, Some(end)) => end.as_second() - r.started_at.as_second(),
        _ => now.as_second() - r.started_at.as_second(),
    };
    out.push(Line::from(vec![
        label(app, "PID"),
        Span::raw(format!(
            "{} · started {} · {}",
            r.pid,
            clock(app, r.started_at),
            human_secs(elapsed)
        )),
    ]));
    let t = r.tasks;
    let attempt = app
        .attempts
        .iter()
        .rev()
        .find(|a| a.iteration == r.iteration)
        .map(|a| format!(" · attempt {}", a.attempt))
        .unwrap_or_default();
    out.push(Line::from(vec![
        label(app, "Iteration"),
        Span::raw(format!(
            "{}{attempt} · tasks {}/{} ",
            r.iteration, t.done, t.total
        )),
        Span::styled(
            progress_bar(t.done, t.in_progress, t.total, 10),
            fg(app, Color::Blue),
        ),
    ]));
    if let Some(next) = r.next_attempt_at
        && r.status.is_active()
    {
        let left = next.as_second() - now.as_second();
        let budget = r
            .reason
            .as_deref()
            .is_some_and(|x| x.starts_with("retry budget"));
        let what = match r.status {
            RunnerStatus::Waiting if budget => "retry budget frees",
            RunnerStatus::Waiting => "rate limit ends",
            _ => "next attempt",
        };
        let when = if left > 0 {
            format!("in {}", human_secs(left))
        } else {
            "now".to_string()
        };
        out.push(Line::from(vec![
            label(app, "Next"),
            Span::styled(
                format!("{what} {when} ({})", clock(app, next)),
                fg(app, Color::Yellow),
            ),
        ]));
    }
    if let Some(l) = last_outcome(app, r) {
        out.push(Line::from(vec![label(app, "Last"), l]));
    }
    if let Some(w) = &r.worktree {
        out.push(Line::from(vec![
            label(app, "Worktree"),
            Span::raw(w.display().to_string()),
        ]));
    }
    if let Some(c) = &r.last_commit {
        out.push(Line::from(vec![
            label(app, "Commit"),
            Span::raw(c.chars().take(12).collect::<String>()),
        ]));
    }
    if let Some(spend) = spend(r) {
        out.push(Line::from(vec![label(app, "Cost"), Span::raw(spend)]));
    }
    if let Some(reason) = &r.reason {
        out.push(Line::from(vec![
            label(app, "Reason"),
            Span::raw(reason.lines().next().unwrap_or("").to_string()),
        ]));
    }
    out.push(Line::styled(
        r.runner_id.to_string(),
        fg(app, Color::DarkGray),
    ));
    out
}

/// "$1.25 · 412.0k in, 9.8k out": short enough for the panel at 80 columns.
fn spend(r: &RunnerRecord) -> Option<String> {
    use swr_core::cost::{tokens, usd};
    let mut parts = Vec::new();
    if let Some(c) = r.cost_usd {
        let est = match r.cost_estimated_usd {
            Some(e) if e > 0.0 => " est.",
            _ => "",
        };
        parts.push(format!("{}{est}", usd(c)));
    }
    if r.input_tokens.is_some() || r.output_tokens.is_some() {
        parts.push(format!(
            "{} in, {} out",
            tokens(r.input_tokens.unwrap_or(0)),
            tokens(r.output_tokens.unwrap_or(0))
        ));
    }
    (!parts.is_empty()).then(|| parts.join(" · "))
}

/// The last finished attempt: outcome, exit code or signal, duration, error.
fn last_outcome(app: &App, r: &RunnerRecord) -> Option<Span<'static>> {
    let a: Option<&AttemptRecord> = app.attempts.iter().rev().find(|a| a.outcome.is_some());
    match a {
        Some(a) => {
            let o = a.outcome?;
            let mut s = o.as_str().to_string();
            match (&a.signal, a.exit_code) {
                (Some(sig), _) => s.push_str(&format!(", {sig}")),
                (None, Some(c)) => s.push_str(&format!(", exit {c}")),
                _ => {}
            }
            if let Some(end) = a.ended_at {
                let ms = end.as_millisecond() - a.started_at.as_millisecond();
                s.push_str(&format!(", {:.1}s", ms as f64 / 1000.0));
            }
            if let Some(e) = &a.error {
                s.push_str(&format!(": {}", e.lines().next().unwrap_or("")));
            }
            let ticked = a.ticked.unwrap_or(0) as usize;
            let committed = a.committed.unwrap_or(false);
            if ticked > 0 || committed {
                s.push_str(&format!(
                    " · {}",
                    crate::report::progress_words(ticked, committed)
                ));
            }
            let color = if o.as_str() == "success" {
                Color::Green
            } else {
                Color::Red
            };
            Some(Span::styled(s, fg(app, color)))
        }
        None => r
            .last_outcome
            .map(|o| Span::styled(o.as_str().to_string(), bold())),
    }
}
