//! Pure rendering: `fn render(&App, &mut Frame, Rect)` per panel and overlay. Rendering never
//! mutates state and reads no file and no clock (time is `App::now`), so a frame is a function
//! of the state and snapshot tests are stable.

mod footer;
mod log;
mod overlay;
mod status;
mod tree;

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::Line;
use ratatui::widgets::{Block, Paragraph, Wrap};

use super::app::App;
use swr_core::store::RunnerStatus;

/// Draws the whole screen.
pub fn draw(app: &App, f: &mut Frame) {
    render(app, f, f.area());
}

pub fn render(app: &App, f: &mut Frame, area: Rect) {
    let s = &app.settings;
    if area.width < s.min_cols || area.height < s.min_rows {
        // q still works here; its question must be visible, or the next keys go to an
        // invisible prompt.
        let msg = match &app.overlay {
            Some(super::app::Overlay::QuitConfirm(n)) => format!(
                "{n} runner{} active. Stop all and quit? (y/n/c)",
                if *n == 1 { "" } else { "s" }
            ),
            _ => format!(
                "Terminal too small: {}x{}. swr tui needs at least {}x{} \
                 (tui_min_terminal_cols/rows). Enlarge the window, or press q to quit.",
                area.width, area.height, s.min_cols, s.min_rows
            ),
        };
        f.render_widget(
            Paragraph::new(msg)
                .wrap(Wrap { trim: true })
                .block(Block::bordered()),
            area,
        );
        return;
    }
    let [main, foot] = split_v(area, [Constraint::Min(3), Constraint::Length(2)]);
    let tree_w = (main.width * 2 / 5).clamp(30, 60);
    let [left, right] = split_h(main, [Constraint::Length(tree_w), Constraint::Min(20)]);
    tree::render(app, f, left);
    if app.show_logs {
        let status_h = status::height(app).min(right.height / 2 + 2);
        let [st, lg] = split_v(right, [Constraint::Length(status_h), Constraint::Min(3)]);
        status::render(app, f, st);
        log::render(app, f, lg);
    } else {
        status::render(app, f, right);
    }
    footer::render(app, f, foot);
    if app.overlay.is_some() {
        overlay::render(app, f, main);
    }
}

fn split_v<const N: usize>(area: Rect, c: [Constraint; N]) -> [Rect; N] {
    Layout::vertical(c).areas(area)
}

fn split_h<const N: usize>(area: Rect, c: [Constraint; N]) -> [Rect; N] {
    Layout::horizontal(c).areas(area)
}

/// `style` when colour is on, the plain style otherwise (NO_COLOR). Bold and reverse survive:
/// they are not colour.
pub(crate) fn paint(app: &App, style: Style) -> Style {
    if app.settings.color {
        style
    } else {
        Style {
            add_modifier: style.add_modifier,
            ..Style::default()
        }
    }
}

pub(crate) fn fg(app: &App, c: Color) -> Style {
    paint(app, Style::default().fg(c))
}

pub(crate) fn bold() -> Style {
    Style::default().add_modifier(Modifier::BOLD)
}

pub(crate) fn status_color(s: RunnerStatus) -> Color {
    match s {
        RunnerStatus::Running => Color::Green,
        RunnerStatus::Queued | RunnerStatus::Waiting => Color::Yellow,
        RunnerStatus::Completed => Color::Cyan,
        RunnerStatus::Stopped => Color::DarkGray,
        RunnerStatus::Crashed | RunnerStatus::Failed => Color::Red,
        RunnerStatus::Budget => Color::Magenta,
    }
}

pub(crate) fn badge(s: RunnerStatus) -> &'static str {
    match s {
        RunnerStatus::Queued => "QUEUE",
        RunnerStatus::Running => "RUN",
        RunnerStatus::Waiting => "WAIT",
        RunnerStatus::Completed => "DONE",
        RunnerStatus::Stopped => "STOP",
        RunnerStatus::Crashed => "CRASH",
        RunnerStatus::Failed => "FAIL",
        RunnerStatus::Budget => "BUDGET",
    }
}

pub(crate) fn block<'a>(app: &App, title: impl Into<Line<'a>>, focus: bool) -> Block<'a> {
    let b = Block::bordered().title(title);
    if focus {
        b.border_style(fg(app, Color::Cyan))
    } else {
        b.border_style(fg(app, Color::DarkGray))
    }
}

/// Cuts `s` to `w` characters, with an ellipsis when cut.
pub(crate) fn fit(s: &str, w: usize) -> String {
    if s.chars().count() <= w {
        return s.to_string();
    }
    if w == 0 {
        return String::new();
    }
    let mut t: String = s.chars().take(w - 1).collect();
    t.push('…');
    t
}

/// A timestamp as local wall-clock time of the app's zone.
pub(crate) fn clock(app: &App, t: jiff::Timestamp) -> String {
    t.to_zoned(app.settings.tz.clone())
        .strftime("%H:%M:%S")
        .to_string()
}
