//! The tree of projects and specs: progress bars and runner badges. Only the rows in view are
//! built, so 2,000 projects cost no more per frame than 20.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::{badge, block, fg, fit, paint, status_color};
use crate::style::progress_bar;
use crate::tui::app::{App, Row};

pub fn render(app: &App, f: &mut Frame, area: Rect) {
    let title = format!(
        " Projects {}{} ",
        app.projects.iter().filter(|p| !p.external).count(),
        if app.discovering {
            " (scanning…)"
        } else {
            ""
        }
    );
    let b = block(app, title, app.overlay.is_none());
    let inner = b.inner(area);
    f.render_widget(b, area);
    let h = inner.height as usize;
    let w = inner.width as usize;
    if app.rows.is_empty() {
        let text = if app.discovering {
            "Looking for projects…".to_string()
        } else if app.projects.is_empty() {
            format!(
                "No project under {}.\nA project holds {}/{}/<spec>/{}.",
                app.settings.repos_root.display(),
                app.settings.layout.spec_workflow_dir_name,
                app.settings.layout.specs_subdir,
                app.settings.layout.tasks_filename
            )
        } else {
            "Nothing matches. Esc clears the filter; u and a toggle.".to_string()
        };
        f.render_widget(
            Paragraph::new(text).wrap(ratatui::widgets::Wrap { trim: true }),
            inner,
        );
        return;
    }
    // Keep the cursor in view, a little above the middle when scrolling.
    let start = if app.cursor < h {
        0
    } else {
        (app.cursor + h / 3)
            .saturating_sub(h - 1)
            .min(app.rows.len().saturating_sub(h))
    };
    let mut lines = Vec::with_capacity(h);
    for (i, row) in app.rows.iter().enumerate().skip(start).take(h) {
        let mut line = row_line(app, *row, w);
        if i == app.cursor {
            line = line.patch_style(
                paint(app, Style::default().bg(Color::DarkGray)).add_modifier(Modifier::REVERSED),
            );
            if !app.settings.color {
                line = line.patch_style(Style::default().add_modifier(Modifier::REVERSED));
            }
        }
        lines.push(line);
    }
    f.render_widget(Paragraph::new(lines), inner);
}

fn row_line(app: &App, row: Row, w: usize) -> Line<'static> {
    match row {
        Row::Project(pi) => {
            let p = &app.projects[pi];
            let arrow = if p.expanded
                || app
                    .rows
                    .iter()
                    .any(|r| matches!(r, Row::Spec(x, _) if *x == pi))
            {
                "▾"
            } else {
                "▸"
            };
            let active = p
                .specs
                .iter()
                .filter(|s| {
                    app.runner_of(&p.path, &s.spec.name)
                        .is_some_and(|r| r.status.is_active())
                })
                .count();
            let unfinished = p
                .specs
                .iter()
                .filter(|s| !app.counts_of(p, s).is_some_and(|c| c.is_complete()))
                .count();
            let right = if active > 0 {
                format!(" {active}▶")
            } else {
                String::new()
            };
            let info = format!(" {}/{}", unfinished, p.specs.len());
            let name_w = w.saturating_sub(2 + info.chars().count() + right.chars().count());
            Line::from(vec![
                Span::raw(format!("{arrow} ")),
                Span::styled(
                    format!("{:<name_w$}", fit(&p.name, name_w)),
                    Style::default().add_modifier(Modifier::BOLD),
                ),
                Span::styled(info, fg(app, Color::DarkGray)),
                Span::styled(right, fg(app, Color::Green)),
            ])
        }
        Row::Spec(pi, si) => {
            let p = &app.projects[pi];
            let s = &p.specs[si];
            let counts = app.counts_of(p, s);
            let runner = app.runner_of(&p.path, &s.spec.name);
            let (bar, frac) = match counts {
                Some(c) => (
                    progress_bar(c.done, c.in_progress, c.total, 6),
                    format!("{:>2}/{:<2}", c.done, c.total),
                ),
                None => ("······".to_string(), " -/- ".to_string()),
            };
            let (b, color) = match runner {
                Some(r) => (badge(r.status), status_color(r.status)),
                None => ("", Color::Reset),
            };
            let current = app
                .current
                .as_ref()
                .is_some_and(|(pp, ss)| pp == &p.path && ss == &s.spec.name);
            let mark = if current { "•" } else { " " };
            // "  • name  ██░░░░  2/5  CRASH"
            let fixed = 4 + 1 + 6 + 1 + 5 + 1 + 5;
            let name_w = w.saturating_sub(fixed).max(4);
            Line::from(vec![
                Span::raw(format!("  {mark} ")),
                Span::raw(format!("{:<name_w$} ", fit(&s.spec.name, name_w))),
                Span::styled(bar, fg(app, Color::Blue)),
                Span::raw(format!(" {frac} ")),
                Span::styled(
                    format!("{b:<5}"),
                    fg(app, color).add_modifier(Modifier::BOLD),
                ),
            ])
        }
    }
}
