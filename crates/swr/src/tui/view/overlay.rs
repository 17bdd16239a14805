//! Overlays drawn over the main area: help (generated from the key map), effective config,
//! task list, retry dashboard, the start prompt and the quit confirmation.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, Paragraph, Wrap};
use swr_core::spec::{TaskList, TaskStatus};
use swr_core::store::AttemptRecord;

use super::{block, bold, fg, fit, status_color};
use crate::text::one_line;
use crate::tui::app::{App, Overlay, human_secs};
use crate::tui::keys;

fn mark(status: TaskStatus) -> (&'static str, Color) {
    match status {
        TaskStatus::Done => ("[x]", Color::Green),
        TaskStatus::InProgress => ("[-]", Color::Yellow),
        TaskStatus::Pending => ("[ ]", Color::Reset),
        TaskStatus::Blocked => ("[~]", Color::Red),
    }
}

/// The task view: counts, the tasks (Kiro's optional ones marked `*`), then the checklists,
/// which are listed but are not tasks, then the warnings. tasks.md text is not ours: control
/// characters in it are shown escaped, never sent to the terminal.
fn task_lines(app: &App, l: &TaskList) -> Vec<Line<'static>> {
    let c = l.counts();
    let mut head = format!(
        "{}/{} done · {} in progress · {} pending · {} blocked",
        c.done, c.total, c.in_progress, c.pending, c.blocked
    );
    let o = l.optional_counts();
    if o.total > 0 {
        head.push_str(&format!(" · optional {}/{} done", o.done, o.total));
    }
    let mut v = vec![Line::styled(head, bold())];
    for t in &l.tasks {
        let (mark, color) = mark(t.status);
        let star = if t.optional { "*" } else { " " };
        v.push(Line::from(vec![
            Span::styled(format!("{mark}{star}"), fg(app, color)),
            Span::raw(format!("{:<5} {}", one_line(&t.id), one_line(&t.title))),
        ]));
    }
    for cl in &l.checklists {
        let s = cl.summary();
        v.push(Line::raw(""));
        v.push(Line::styled(
            format!(
                "{} · {}/{} · checklist, not tasks",
                one_line(&cl.title),
                s.done,
                s.total
            ),
            fg(app, Color::DarkGray).add_modifier(Modifier::BOLD),
        ));
        for i in &cl.items {
            let (mark, color) = mark(i.status);
            v.push(Line::from(vec![
                Span::styled(format!("{mark}  "), fg(app, color)),
                Span::styled(one_line(&i.text).into_owned(), fg(app, Color::DarkGray)),
            ]));
        }
    }
    for w in &l.warnings {
        v.push(Line::styled(
            format!("warning: {}", one_line(&w.to_string())),
            fg(app, Color::Yellow),
        ));
    }
    v
}

fn centered(area: Rect, w: u16, h: u16) -> Rect {
    let w = w.min(area.width);
    let h = h.min(area.height);
    Rect {
        x: area.x + (area.width - w) / 2,
        y: area.y + (area.height - h) / 2,
        width: w,
        height: h,
    }
}

pub fn render(app: &App, f: &mut Frame, area: Rect) {
    let Some(o) = &app.overlay else { return };
    let big = Rect {
        x: area.x + 2,
        y: area.y + 1,
        width: area.width.saturating_sub(4),
        height: area.height.saturating_sub(2),
    };
    match o {
        Overlay::Help => help(app, f, area),
        Overlay::Config => {
            let w = big.width.saturating_sub(2) as usize;
            let lines: Vec<Line> = app
                .settings
                .config_rows
                .iter()
                .map(|(k, v, s)| {
                    Line::from(vec![
                        Span::styled(format!("{k:<28} "), fg(app, Color::Cyan)),
                        Span::raw(fit(v, w.saturating_sub(30 + s.len() + 3))),
                        Span::styled(format!("  {s}"), fg(app, Color::DarkGray)),
                    ])
                })
                .collect();
            scrolled(app, f, big, " Effective config (value, source) ", lines);
        }
        Overlay::Tasks { spec, list } => {
            let lines = match list {
                None => vec![Line::raw("reading tasks.md…")],
                Some(Err(e)) => vec![Line::styled(e.clone(), fg(app, Color::Red))],
                Some(Ok(l)) => task_lines(app, l),
            };
            scrolled(app, f, big, &format!(" Tasks of {spec} "), lines);
        }
        Overlay::Dashboard => {
            let lines = dashboard_lines(app);
            scrolled(app, f, big, " Retry dashboard ", lines);
        }
        Overlay::StartPrompt(p) => {
            let r = centered(area, 56, 8);
            f.render_widget(Clear, r);
            let b = block(app, format!(" Start a runner on {} ", p.spec), true);
            let inner = b.inner(r);
            f.render_widget(b, r);
            let field = |i: usize, name: &str, v: &str| {
                let sel = p.field == i;
                Line::from(vec![
                    Span::styled(format!("{name:<10}"), fg(app, Color::DarkGray)),
                    Span::styled(
                        format!("{v}{}", if sel { "▏" } else { "" }),
                        if sel {
                            fg(app, Color::Cyan).add_modifier(Modifier::BOLD)
                        } else {
                            Default::default()
                        },
                    ),
                ])
            };
            let lines = vec![
                field(0, "provider", &p.provider),
                field(1, "model", &p.model),
                Line::raw(""),
                Line::styled(
                    "Tab switches · Enter starts · Esc cancels",
                    fg(app, Color::DarkGray),
                ),
                Line::styled(
                    "(empty model: the agent's default)",
                    fg(app, Color::DarkGray),
                ),
            ];
            f.render_widget(Paragraph::new(lines), inner);
        }
        Overlay::QuitConfirm(n) => {
            let r = centered(area, 66, 6);
            f.render_widget(Clear, r);
            let b = block(app, " Quit ", true);
            let inner = b.inner(r);
            f.render_widget(b, r);
            let lines = vec![
                Line::styled(
                    format!(
                        "{n} runner{} active. Stop all and quit? (y/n/c)",
                        if *n == 1 { "" } else { "s" }
                    ),
                    bold(),
                ),
                Line::styled(
                    "(started here) y stops them gracefully · n leaves them · c cancels",
                    fg(app, Color::DarkGray),
                ),
            ];
            f.render_widget(Paragraph::new(lines).wrap(Wrap { trim: true }), inner);
        }
    }
}

/// The key table; in two columns when one does not fit the height (80x24 leaves 22 rows for
/// 25 keys), so every key stays visible without scrolling.
fn help(app: &App, f: &mut Frame, area: Rect) {
    let entries = keys::help_lines();
    let key_style = fg(app, Color::Cyan).add_modifier(Modifier::BOLD);
    if entries.len() as u16 + 2 <= area.height {
        let lines: Vec<Line> = entries
            .into_iter()
            .map(|(k, h)| {
                Line::from(vec![
                    Span::styled(format!("{k:>14}  "), key_style),
                    Span::raw(h),
                ])
            })
            .collect();
        let r = centered(area, 64, lines.len() as u16 + 2);
        scrolled(app, f, r, " Keys (Esc closes) ", lines);
        return;
    }
    let rows = entries.len().div_ceil(2);
    let (left, right) = entries.split_at(rows);
    let widths = |col: &[(&str, &str)]| {
        col.iter().fold((0, 0), |(kw, hw), (k, h)| {
            (kw.max(k.chars().count()), hw.max(h.chars().count()))
        })
    };
    let (lk, lh) = widths(left);
    let (rk, rh) = widths(right);
    let inner = (area.width.saturating_sub(2) as usize).min(lk + lh + rk + rh + 3);
    // Keys first, then the descriptions share what is left; the left column gets any slack.
    let rw = (rk + 1 + rh).min(inner / 2);
    let lw = inner.saturating_sub(rw + 1);
    let ld = lw.saturating_sub(lk + 1).min(lh);
    let rd = rw.saturating_sub(rk + 1);
    let lines: Vec<Line> = (0..rows)
        .map(|i| {
            let (k, h) = left[i];
            let mut spans = vec![
                Span::styled(format!("{k:>lk$} "), key_style),
                Span::raw(format!(
                    "{:<w$} ",
                    fit(h, ld),
                    w = lw.saturating_sub(lk + 1)
                )),
            ];
            if let Some((k, h)) = right.get(i) {
                spans.push(Span::styled(format!("{k:>rk$} "), key_style));
                spans.push(Span::raw(fit(h, rd)));
            }
            Line::from(spans)
        })
        .collect();
    let r = centered(area, inner as u16 + 2, rows as u16 + 2);
    scrolled(app, f, r, " Keys (Esc closes) ", lines);
}

fn scrolled(app: &App, f: &mut Frame, r: Rect, title: &str, lines: Vec<Line<'static>>) {
    f.render_widget(Clear, r);
    let b = block(app, title.to_string(), true);
    let inner = b.inner(r);
    f.render_widget(b, r);
    let max = lines.len().saturating_sub(inner.height as usize);
    let skip = app.overlay_scroll.min(max);
    let shown: Vec<Line> = lines.into_iter().skip(skip).collect();
    f.render_widget(Paragraph::new(shown), inner);
}

fn secs(ms: i64) -> String {
    if ms < 60_000 {
        format!("{:.1}s", ms as f64 / 1000.0)
    } else {
        human_secs(ms / 1000)
    }
}

fn attempt_token(a: &AttemptRecord) -> (String, Color) {
    let o = a.outcome.map(|o| o.as_str()).unwrap_or("running");
    let detail = match (&a.signal, a.exit_code) {
        (Some(s), _) => format!(" {s}"),
        (None, Some(c)) if c != 0 => format!(" exit {c}"),
        _ => String::new(),
    };
    let dur = a
        .ended_at
        .map(|e| {
            format!(
                " {}",
                secs(e.as_millisecond() - a.started_at.as_millisecond())
            )
        })
        .unwrap_or_default();
    let color = match o {
        "success" | "no_progress" => Color::Green,
        "running" => Color::Cyan,
        "rate_limited" | "stopped" => Color::Yellow,
        _ => Color::Red,
    };
    (format!("{o}{detail}{dur}"), color)
}

fn dashboard_lines(app: &App) -> Vec<Line<'static>> {
    let Some((attempts, st)) = &app.dashboard else {
        return vec![Line::raw("reading the store…")];
    };
    let pct = |v: Option<f64>| {
        v.map(|x| format!("{:.1} %", x * 100.0))
            .unwrap_or_else(|| "n/a".into())
    };
    let mut out = vec![
        Line::from(vec![
            Span::styled("retry success rate ", fg(app, Color::DarkGray)),
            Span::styled(pct(st.retry_success_rate), bold()),
            Span::raw(format!(
                " ({}/{})   ",
                st.retried_then_succeeded, st.iterations_needing_retry
            )),
            Span::styled("final failure rate ", fg(app, Color::DarkGray)),
            Span::styled(pct(st.final_failure_rate), bold()),
            Span::raw(format!(
                " ({}/{})",
                st.iterations_out_of_retries, st.iterations
            )),
        ]),
        Line::from(vec![
            Span::styled("average backoff ", fg(app, Color::DarkGray)),
            Span::styled(
                st.average_backoff_ms
                    .map(|ms| format!("{:.1}s", ms / 1000.0))
                    .unwrap_or_else(|| "n/a".into()),
                bold(),
            ),
            Span::raw(format!(
                "   {} iteration(s), {} attempt(s)",
                st.iterations,
                attempts.len()
            )),
        ]),
        Line::raw(""),
    ];
    // Runners, newest first; each a line per iteration: attempt → delay → attempt...
    let mut ids: Vec<&swr_core::store::RunnerId> = Vec::new();
    for a in attempts.iter().rev() {
        if !ids.contains(&&a.runner_id) {
            ids.push(&a.runner_id);
        }
    }
    for id in ids {
        let runner = app.runners.values().find(|r| &r.runner_id == id);
        let mine: Vec<&AttemptRecord> = attempts.iter().filter(|a| &a.runner_id == id).collect();
        let spec = mine.first().map(|a| a.spec.clone()).unwrap_or_default();
        let mut head = vec![
            Span::styled(format!("{spec} "), bold()),
            Span::styled(id.to_string(), fg(app, Color::DarkGray)),
        ];
        if let Some(r) = runner {
            head.push(Span::styled(
                format!(" {}", r.status.as_str().to_uppercase()),
                fg(app, status_color(r.status)),
            ));
            head.push(Span::raw(format!(
                " retry {}/{}",
                r.retry_count, r.max_retries
            )));
        }
        out.push(Line::from(head));
        let mut iters: Vec<u32> = mine.iter().map(|a| a.iteration).collect();
        iters.dedup();
        let shown = iters.len().saturating_sub(6);
        if shown > 0 {
            out.push(Line::styled(
                format!("  … {shown} earlier iteration(s)"),
                fg(app, Color::DarkGray),
            ));
        }
        for it in iters.into_iter().skip(shown) {
            let mut spans = vec![Span::styled(
                format!("  it {it:<3}"),
                fg(app, Color::DarkGray),
            )];
            for a in mine.iter().filter(|a| a.iteration == it) {
                let (t, c) = attempt_token(a);
                spans.push(Span::styled(t, fg(app, c)));
                if let Some(d) = a.delay_before_next_ms {
                    spans.push(Span::styled(
                        format!(" ─{}→ ", secs(d as i64)),
                        fg(app, Color::DarkGray),
                    ));
                }
            }
            out.push(Line::from(spans));
        }
    }
    if out.len() == 3 {
        out.push(Line::raw("No attempt recorded yet."));
    }
    out
}
