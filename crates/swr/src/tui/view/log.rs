//! The log panel: the current attempt's log, readable or raw, wrapped to the panel width and
//! filled from the bottom (only the lines in view are laid out).

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Color, Style};
use ratatui::text::Line;
use ratatui::widgets::Paragraph;

use super::{block, fg};
use crate::tui::app::App;
use crate::tui::logview::LineKind;

fn kind_style(app: &App, k: LineKind) -> Style {
    match k {
        LineKind::Meta => fg(app, Color::DarkGray),
        LineKind::Text | LineKind::Raw => Style::default(),
        LineKind::Tool => fg(app, Color::Cyan),
        LineKind::ToolResult => fg(app, Color::Blue),
        LineKind::Error => fg(app, Color::Red),
        LineKind::Stderr => fg(app, Color::Yellow),
        LineKind::Notice => fg(app, Color::DarkGray),
        LineKind::Result => fg(app, Color::Green),
    }
}

pub fn render(app: &App, f: &mut Frame, area: Rect) {
    let name = app
        .log
        .path
        .as_ref()
        .and_then(|p| p.file_name())
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "no log".into());
    let mode = match (app.log.raw, app.log.follow) {
        (true, true) => "raw · following",
        (true, false) => "raw · paused (L follows)",
        (false, true) => "following",
        (false, false) => "paused (L follows)",
    };
    let b = block(app, format!(" Log {name} · {mode} "), false);
    let inner = b.inner(area);
    f.render_widget(b, area);
    let h = inner.height as usize;
    let w = (inner.width as usize).max(1);
    if app.log.lines.is_empty() {
        let msg = if app.current_runner().is_some() {
            "(no output yet)"
        } else {
            ""
        };
        f.render_widget(Paragraph::new(msg), inner);
        return;
    }
    let end = app.log.lines.len().saturating_sub(app.log.scroll);
    let mut out: Vec<Line> = Vec::with_capacity(h);
    for l in app.log.lines.iter().take(end).rev() {
        let parts: Vec<(LineKind, &str)> = if app.log.raw {
            vec![(LineKind::Raw, l.raw.as_str())]
        } else {
            l.pretty.iter().map(|(k, s)| (*k, s.as_str())).collect()
        };
        for (k, text) in parts.into_iter().rev() {
            let chunks = wrap(text, w);
            for c in chunks.into_iter().rev() {
                out.push(Line::styled(c, kind_style(app, k)));
                if out.len() >= h {
                    break;
                }
            }
            if out.len() >= h {
                break;
            }
        }
        if out.len() >= h {
            break;
        }
    }
    out.reverse();
    f.render_widget(Paragraph::new(out), inner);
}

/// Splits `s` into pieces of at most `w` characters (tabs as spaces).
fn wrap(s: &str, w: usize) -> Vec<String> {
    let chars: Vec<char> = s.chars().map(|c| if c == '\t' { ' ' } else { c }).collect();
    if chars.is_empty() {
        return vec![String::new()];
    }
    chars.chunks(w).map(|c| c.iter().collect()).collect()
}
