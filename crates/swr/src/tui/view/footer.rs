//! The footer: the message line (errors in red) and the keys in play.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::{fg, paint};
use crate::tui::app::{App, Overlay};
use crate::tui::keys::{self, Action};

pub fn render(app: &App, f: &mut Frame, area: Rect) {
    let msg = if app.filter_editing {
        Line::from(vec![
            Span::styled("filter: ", fg(app, Color::Cyan)),
            Span::raw(app.filter.clone()),
            Span::styled("▏", fg(app, Color::Cyan)),
            Span::styled("  Enter keep · Esc clear", fg(app, Color::DarkGray)),
        ])
    } else {
        match &app.message {
            Some((m, true)) => Line::styled(m.clone(), fg(app, Color::Red)),
            Some((m, false)) => Line::raw(m.clone()),
            None => {
                let mut parts = Vec::new();
                if !app.filter.is_empty() {
                    parts.push(format!("filter \"{}\"", app.filter));
                }
                if app.unfinished_only {
                    parts.push("unfinished only".into());
                }
                if app.active_only {
                    parts.push("active runners only".into());
                }
                if app.discovering {
                    parts.push("scanning repos_root…".into());
                }
                let n = app.active_runner_count();
                parts.push(format!("{n} active runner(s)"));
                Line::styled(parts.join(" · "), fg(app, Color::DarkGray))
            }
        }
    };
    let hints: Vec<(&str, &str)> = match &app.overlay {
        Some(Overlay::QuitConfirm(_)) => vec![
            ("y", "stop all and quit"),
            ("n", "leave running"),
            ("c", "cancel"),
        ],
        Some(Overlay::StartPrompt(_)) => {
            vec![("Tab", "next field"), ("Enter", "start"), ("Esc", "cancel")]
        }
        Some(_) => vec![("↑↓", "scroll"), ("Esc", "close")],
        None if app.filter_editing => vec![],
        None => {
            let active = app.current_runner().is_some_and(|r| r.status.is_active());
            let spec = app.current.is_some();
            keys::footer_hints(|a| match a {
                Action::Start => spec && !active,
                Action::Stop => active,
                Action::Tasks => spec,
                _ => true,
            })
        }
    };
    let key_style =
        paint(app, Style::default().fg(Color::Black).bg(Color::Cyan)).add_modifier(Modifier::BOLD);
    let mut spans = Vec::new();
    for (k, label) in hints {
        spans.push(Span::styled(format!(" {k} "), key_style));
        spans.push(Span::raw(format!(" {label}  ")));
    }
    f.render_widget(Paragraph::new(vec![msg, Line::from(spans)]), area);
}
