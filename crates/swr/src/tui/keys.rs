//! The key map: every key the TUI understands maps to one [`Action`], and the same table
//! generates the help overlay and the footer hints, so help can never drift from behaviour.
//! Text-entry modes (filter, provider/model prompt, quit confirmation) are handled by the app,
//! not here.

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

/// What a key asks for, independent of the key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    Up,
    Down,
    Top,
    Bottom,
    PageUp,
    PageDown,
    /// Expand/collapse a project, select a spec.
    Enter,
    Filter,
    ToggleUnfinished,
    ToggleActive,
    Start,
    StartWith,
    Stop,
    Restart,
    ToggleLogs,
    Follow,
    ToggleRaw,
    LogUp,
    LogDown,
    Tasks,
    Dashboard,
    Help,
    Config,
    Rescan,
    /// Close an overlay / clear the filter.
    Back,
    Quit,
}

/// One line of the key map: the keys as shown in help, whether it is shown in the footer, and
/// what it does.
pub struct Binding {
    pub keys: &'static str,
    pub action: Action,
    pub help: &'static str,
    /// The footer's label; `None` keeps it out of the footer (which has one line).
    pub footer: Option<&'static str>,
}

pub const BINDINGS: &[Binding] = &[
    b("↑/k", Action::Up, "move up", None),
    b("↓/j", Action::Down, "move down", None),
    b("g/G", Action::Top, "top / bottom", None),
    b("PgUp/PgDn", Action::PageUp, "scroll log a full page", None),
    b(
        "Ctrl-u/Ctrl-d",
        Action::LogUp,
        "scroll log half a page",
        None,
    ),
    b("Enter", Action::Enter, "open project, pick spec", None),
    b("/", Action::Filter, "filter by name", Some("filter")),
    b("u", Action::ToggleUnfinished, "only unfinished specs", None),
    b("a", Action::ToggleActive, "only active runners", None),
    b("s", Action::Start, "start with the defaults", Some("start")),
    b("S", Action::StartWith, "start, ask provider+model", None),
    b("x", Action::Stop, "stop the runner (SIGTERM)", Some("stop")),
    b("r", Action::Restart, "restart the runner", None),
    b(
        "l",
        Action::ToggleLogs,
        "show/hide the log panel",
        Some("logs"),
    ),
    b(
        "L",
        Action::Follow,
        "follow the log again (auto-scroll)",
        None,
    ),
    b(
        "w",
        Action::ToggleRaw,
        "raw log lines / readable lines",
        None,
    ),
    b(
        "t",
        Action::Tasks,
        "task list of the selected spec",
        Some("tasks"),
    ),
    b("d", Action::Dashboard, "retry dashboard", Some("retries")),
    b("c", Action::Config, "effective configuration", None),
    b("R", Action::Rescan, "rescan repos_root for projects", None),
    b("?", Action::Help, "this help", Some("help")),
    b("Esc", Action::Back, "close overlay / clear filter", None),
    b("q", Action::Quit, "quit", Some("quit")),
];

const fn b(
    keys: &'static str,
    action: Action,
    help: &'static str,
    footer: Option<&'static str>,
) -> Binding {
    Binding {
        keys,
        action,
        help,
        footer,
    }
}

/// The action of a key in the normal (non text-entry) mode.
pub fn action_for(key: KeyEvent) -> Option<Action> {
    let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
    Some(match key.code {
        KeyCode::Char('c') if ctrl => Action::Quit,
        KeyCode::Char('u') if ctrl => Action::LogUp,
        KeyCode::Char('d') if ctrl => Action::LogDown,
        _ if ctrl => return None,
        KeyCode::Up | KeyCode::Char('k') => Action::Up,
        KeyCode::Down | KeyCode::Char('j') => Action::Down,
        KeyCode::Home | KeyCode::Char('g') => Action::Top,
        KeyCode::End | KeyCode::Char('G') => Action::Bottom,
        KeyCode::PageUp => Action::PageUp,
        KeyCode::PageDown => Action::PageDown,
        KeyCode::Enter => Action::Enter,
        KeyCode::Char('/') => Action::Filter,
        KeyCode::Char('u') => Action::ToggleUnfinished,
        KeyCode::Char('a') => Action::ToggleActive,
        KeyCode::Char('s') => Action::Start,
        KeyCode::Char('S') => Action::StartWith,
        KeyCode::Char('x') => Action::Stop,
        KeyCode::Char('r') => Action::Restart,
        KeyCode::Char('l') => Action::ToggleLogs,
        KeyCode::Char('L') => Action::Follow,
        KeyCode::Char('w') => Action::ToggleRaw,
        KeyCode::Char('t') => Action::Tasks,
        KeyCode::Char('d') => Action::Dashboard,
        KeyCode::Char('?') => Action::Help,
        KeyCode::Char('c') => Action::Config,
        KeyCode::Char('R') => Action::Rescan,
        KeyCode::Esc => Action::Back,
        KeyCode::Char('q') => Action::Quit,
        _ => return None,
    })
}

/// The first of `a/b` keys (`/` itself is a key).
pub fn first_key(keys: &str) -> &str {
    if keys == "/" {
        return keys;
    }
    keys.split('/').next().unwrap_or(keys)
}

/// `(keys, description)` for the help overlay, in key-map order.
pub fn help_lines() -> Vec<(&'static str, &'static str)> {
    BINDINGS.iter().map(|b| (b.keys, b.help)).collect()
}

/// Short `key label` pairs for the footer, for the actions `in_play` allows now.
pub fn footer_hints(in_play: impl Fn(Action) -> bool) -> Vec<(&'static str, &'static str)> {
    BINDINGS
        .iter()
        .filter(|b| in_play(b.action))
        .filter_map(|b| Some((first_key(b.keys), b.footer?)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k(c: KeyCode) -> KeyEvent {
        KeyEvent::new(c, KeyModifiers::NONE)
    }

    #[test]
    fn python_tool_keys_map_to_their_actions() {
        let cases = [
            (KeyCode::Up, Action::Up),
            (KeyCode::Char('k'), Action::Up),
            (KeyCode::Down, Action::Down),
            (KeyCode::Char('j'), Action::Down),
            (KeyCode::Enter, Action::Enter),
            (KeyCode::Char('g'), Action::Top),
            (KeyCode::Char('G'), Action::Bottom),
            (KeyCode::Char('/'), Action::Filter),
            (KeyCode::Char('u'), Action::ToggleUnfinished),
            (KeyCode::Char('a'), Action::ToggleActive),
            (KeyCode::Char('s'), Action::Start),
            (KeyCode::Char('S'), Action::StartWith),
            (KeyCode::Char('x'), Action::Stop),
            (KeyCode::Char('r'), Action::Restart),
            (KeyCode::Char('l'), Action::ToggleLogs),
            (KeyCode::Char('L'), Action::Follow),
            (KeyCode::Char('t'), Action::Tasks),
            (KeyCode::Char('?'), Action::Help),
            (KeyCode::Char('c'), Action::Config),
            (KeyCode::Char('q'), Action::Quit),
            (KeyCode::PageUp, Action::PageUp),
            (KeyCode::PageDown, Action::PageDown),
            (KeyCode::Char('d'), Action::Dashboard),
        ];
        for (code, action) in cases {
            assert_eq!(action_for(k(code)), Some(action), "{code:?}");
        }
        assert_eq!(action_for(k(KeyCode::Char('Z'))), None);
        let ctrl_c = KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL);
        assert_eq!(action_for(ctrl_c), Some(Action::Quit));
    }

    #[test]
    fn every_documented_key_reaches_its_action() {
        // The help table is generated from BINDINGS: check each entry's first key really maps.
        for b in BINDINGS {
            let first = first_key(b.keys);
            let code = match first {
                "↑" => KeyCode::Up,
                "↓" => KeyCode::Down,
                "PgUp" => KeyCode::PageUp,
                "Enter" => KeyCode::Enter,
                "Esc" => KeyCode::Esc,
                "Ctrl-u" => {
                    let e = KeyEvent::new(KeyCode::Char('u'), KeyModifiers::CONTROL);
                    assert_eq!(action_for(e), Some(b.action));
                    continue;
                }
                s if s.chars().count() == 1 => KeyCode::Char(s.chars().next().unwrap_or(' ')),
                other => panic!("unmapped help key {other}"),
            };
            assert_eq!(action_for(k(code)), Some(b.action), "{}", b.keys);
        }
        assert!(footer_hints(|_| true).iter().any(|(k, _)| *k == "q"));
        let no_stop = footer_hints(|a| a != Action::Stop);
        assert!(!no_stop.iter().any(|(k, _)| *k == "x"));
    }
}
