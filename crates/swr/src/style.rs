//! Terminal styling that respects `NO_COLOR` and non-terminal outputs, and the text progress bar
//! shared by listings.

use std::io::IsTerminal;

/// Whether to print ANSI colours on stdout.
pub fn color_stdout() -> bool {
    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()) && std::io::stdout().is_terminal()
}

/// Whether to print ANSI colours on stderr (diagnostics, progress).
pub fn color_stderr() -> bool {
    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()) && std::io::stderr().is_terminal()
}

#[derive(Debug, Clone, Copy)]
pub struct Paint {
    pub on: bool,
}

impl Paint {
    pub fn stdout() -> Paint {
        Paint { on: color_stdout() }
    }

    fn wrap(&self, code: &str, s: &str) -> String {
        if self.on {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_string()
        }
    }

    pub fn bold(&self, s: &str) -> String {
        self.wrap("1", s)
    }
    pub fn dim(&self, s: &str) -> String {
        self.wrap("2", s)
    }
    pub fn green(&self, s: &str) -> String {
        self.wrap("32", s)
    }
    pub fn yellow(&self, s: &str) -> String {
        self.wrap("33", s)
    }
    pub fn red(&self, s: &str) -> String {
        self.wrap("31", s)
    }
    pub fn cyan(&self, s: &str) -> String {
        self.wrap("36", s)
    }
}

/// `[#####-----]`-style bar of `width` cells: done cells full, in-progress cells half.
pub fn progress_bar(done: usize, in_progress: usize, total: usize, width: usize) -> String {
    if total == 0 {
        return "·".repeat(width);
    }
    let cells = |n: usize| (n * width + total / 2) / total;
    let full = cells(done).min(width);
    let half = cells(done + in_progress).min(width).saturating_sub(full);
    format!(
        "{}{}{}",
        "█".repeat(full),
        "▒".repeat(half),
        "░".repeat(width - full - half)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bar_fills_in_proportion() {
        assert_eq!(progress_bar(0, 0, 4, 4), "░░░░");
        assert_eq!(progress_bar(2, 1, 4, 4), "██▒░");
        assert_eq!(progress_bar(4, 0, 4, 4), "████");
        assert_eq!(progress_bar(0, 0, 0, 3), "···");
    }
}
