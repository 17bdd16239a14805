//! The circuit breaker: judging each finished iteration by what it changed. Pure.
//!
//! A ticked task is progress and resets both streaks. Neither a commit nor a tick adds to the
//! no-commit streak (`no_commit_limit`, the Python tool's rule). Commits without a tick add
//! to the no-progress streak (`no_progress_limit`): an agent that keeps committing without
//! finishing anything is also stuck, which the Python tool never noticed.

/// What one iteration changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// At least one task more is done.
    Progress,
    /// Commits, but no task ticked.
    CommitsOnly,
    /// No commit and no task ticked.
    Nothing,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Streaks {
    pub no_commit: u32,
    pub no_progress: u32,
}

impl Streaks {
    pub fn record(&mut self, ticked: usize, committed: bool) -> Verdict {
        if ticked > 0 {
            *self = Streaks::default();
            Verdict::Progress
        } else if committed {
            self.no_progress += 1;
            self.no_commit = 0;
            Verdict::CommitsOnly
        } else {
            self.no_commit += 1;
            Verdict::Nothing
        }
    }

    /// The reason the breaker opens, if a streak reached its limit.
    pub fn circuit_open(&self, no_commit_limit: u32, no_progress_limit: u32) -> Option<String> {
        if self.no_commit >= no_commit_limit {
            Some(format!(
                "circuit breaker open: {} iterations in a row with no commit and no task ticked (no_commit_limit {})",
                self.no_commit, no_commit_limit
            ))
        } else if self.no_progress >= no_progress_limit {
            Some(format!(
                "circuit breaker open: {} iterations in a row with commits but no task ticked (no_progress_limit {})",
                self.no_progress, no_progress_limit
            ))
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn three_idle_iterations_open_the_breaker() {
        let mut s = Streaks::default();
        assert_eq!(s.record(0, false), Verdict::Nothing);
        assert_eq!(s.record(0, false), Verdict::Nothing);
        assert_eq!(s.circuit_open(3, 6), None);
        s.record(0, false);
        let reason = s.circuit_open(3, 6).expect("open");
        assert!(
            reason.contains("3 iterations in a row with no commit"),
            "{reason}"
        );
    }

    #[test]
    fn a_tick_resets_both_streaks() {
        let mut s = Streaks::default();
        s.record(0, false);
        s.record(0, true);
        s.record(0, false);
        assert_eq!(
            s,
            Streaks {
                no_commit: 1,
                no_progress: 1
            }
        );
        assert_eq!(s.record(2, true), Verdict::Progress);
        assert_eq!(s, Streaks::default());
    }

    #[test]
    fn commits_without_ticks_open_the_breaker_at_their_own_limit() {
        let mut s = Streaks::default();
        for _ in 0..5 {
            assert_eq!(s.record(0, true), Verdict::CommitsOnly);
            assert_eq!(
                s.circuit_open(3, 6),
                None,
                "commits reset the no-commit streak"
            );
        }
        s.record(0, true);
        let reason = s.circuit_open(3, 6).expect("open");
        assert!(
            reason.contains("6 iterations in a row with commits but no task ticked"),
            "{reason}"
        );
    }
}
