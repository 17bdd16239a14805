//! The retry policy: given what an attempt came to, decide whether to continue, retry after a
//! backoff, wait out a rate limit or give up.
//!
//! Pure: no I/O and no clock reads. The current time and the random number generator are
//! parameters, so every schedule is reproducible with a seeded RNG. The caller (the runner)
//! owns a [`RetryState`] per iteration, feeds each decision back through
//! [`RetryState::record`], and persists whatever it wants to survive a restart.
//!
//! Keys and defaults follow the Python spec-workflow-runner (`retry_on_crash`,
//! `retry_max_retries` 3, `retry_backoff_seconds` 5, `retry_backoff_multiplier` 2.0,
//! `retry_max_backoff_seconds` 300: 5 s, 10 s, 20 s, then give up), plus selective retry by
//! outcome class, jitter, and rate limits that are waited out instead of counted as failures.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use rand::Rng;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::outcome::Outcome;

/// Outcomes that are never retried, whatever `retry_on` says: retrying cannot change them
/// (a missing binary, bad credentials, a rejected command line) or the user asked to stop.
pub const NEVER_RETRY: [Outcome; 4] = [
    Outcome::SpawnFailed,
    Outcome::Auth,
    Outcome::Usage,
    Outcome::Stopped,
];

/// The longest a rate-limit wait may last. Claude's weekly limit and Codex's "try again in
/// 5 days 22 hours" are the longest real resets; anything beyond a week is a parse error or a
/// clock problem, and waiting longer would look like a hang.
pub const MAX_RATE_LIMIT_WAIT: Duration = Duration::from_secs(7 * 24 * 3600);

/// The shortest repeated rate-limit wait, whatever the configuration says: with
/// `rate_limit_wait_seconds`, `rate_limit_jitter_seconds` and `retry_backoff_seconds` at 0, an
/// agent that keeps reporting a limit without a future reset would otherwise be restarted back
/// to back (1,938 attempts in 8 s, each with its log file). See [`rate_limit_floor`].
pub const MIN_RATE_LIMIT_WAIT: Duration = Duration::from_secs(1);

/// How far the floor of repeated rate-limit waits grows at least, even when
/// `rate_limit_wait_seconds` and `retry_max_backoff_seconds` are lower: five minutes, so that a
/// limit that never lifts costs a dozen attempts an hour, not thousands.
pub const MIN_RATE_LIMIT_FLOOR_CAP: Duration = Duration::from_secs(300);

/// How the nominal exponential delay is randomized, so that runners that failed together do
/// not restart together.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Jitter {
    /// Exact delays: `min(cap, base · multiplier^n)`.
    None,
    /// `U(0, d)` where `d` is the exact delay (AWS "full jitter").
    Full,
    /// `min(cap, U(base, 3 · prev))` (AWS "decorrelated jitter"); ignores the multiplier.
    Decorrelated,
    /// `min(cap, d · U(1 − r, 1 + r))`: ±r around the exact delay. `r` is in `[0, 1]`.
    Ratio(f64),
}

impl Default for Jitter {
    /// ±20 %: the Python schedule stays recognizable (5/10/20 s give or take) while
    /// simultaneous crashes spread out, and no delay drops below 80 % of the base.
    fn default() -> Self {
        Jitter::Ratio(0.2)
    }
}

/// A `retry_jitter` value that is neither a known name nor a ratio in `[0, 1]`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid retry_jitter {value:?}: expected \"none\", \"full\", \"decorrelated\" or a ratio between 0 and 1 such as 0.2"
)]
pub struct JitterParseError {
    pub value: String,
}

impl Jitter {
    fn from_ratio(r: f64, original: &str) -> Result<Jitter, JitterParseError> {
        if r.is_finite() && (0.0..=1.0).contains(&r) {
            Ok(Jitter::Ratio(r))
        } else {
            Err(JitterParseError {
                value: original.to_string(),
            })
        }
    }
}

impl FromStr for Jitter {
    type Err = JitterParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "none" | "off" => Ok(Jitter::None),
            "full" => Ok(Jitter::Full),
            "decorrelated" => Ok(Jitter::Decorrelated),
            other => match other.parse::<f64>() {
                Ok(r) => Jitter::from_ratio(r, s),
                Err(_) => Err(JitterParseError {
                    value: s.to_string(),
                }),
            },
        }
    }
}

impl fmt::Display for Jitter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Jitter::None => f.write_str("none"),
            Jitter::Full => f.write_str("full"),
            Jitter::Decorrelated => f.write_str("decorrelated"),
            Jitter::Ratio(r) => write!(f, "{r}"),
        }
    }
}

impl Serialize for Jitter {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Jitter::Ratio(r) => s.serialize_f64(*r),
            other => s.serialize_str(&other.to_string()),
        }
    }
}

impl<'de> Deserialize<'de> for Jitter {
    /// Accepts `"none"`, `"full"`, `"decorrelated"`, a number (`0.2`) or a numeric string
    /// (`"0.2"`), since hand-written JSON config files use both.
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Num(f64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Num(r) => Jitter::from_ratio(r, &r.to_string()).map_err(serde::de::Error::custom),
            Raw::Text(s) => s.parse().map_err(serde::de::Error::custom),
        }
    }
}

/// The retry policy as data, resolved from config. `Default` is the Python tool's behaviour
/// plus ±20 % jitter and selective retry.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// `retry_on_crash`: false disables every retry (failures give up at once).
    pub retry_on_crash: bool,
    /// `retry_max_retries`: retries per iteration, not counting the first attempt.
    pub max_retries: u32,
    /// `retry_backoff_seconds`: the first delay, and the floor of decorrelated jitter.
    pub backoff: Duration,
    /// `retry_backoff_multiplier`.
    pub multiplier: f64,
    /// `retry_max_backoff_seconds`: no delay exceeds it, jitter included.
    pub max_backoff: Duration,
    /// `retry_jitter`.
    pub jitter: Jitter,
    /// `retry_on`: the failure classes that are retried. [`NEVER_RETRY`] classes are ignored here.
    pub retry_on: BTreeSet<Outcome>,
    /// `rate_limit_wait`: how long to wait on a rate limit that names no reset time.
    pub rate_limit_wait: Duration,
    /// `rate_limit_jitter`: a rate-limit wait ends at a random point within this window after
    /// the reset, so runners sharing one account do not all restart on the same second.
    pub rate_limit_jitter: Duration,
}

impl RetryPolicy {
    /// The default `retry_on`: transient classes only. `context_limit` is left out because the
    /// same prompt in a fresh session usually overflows the same way.
    pub fn default_retry_on() -> BTreeSet<Outcome> {
        [
            Outcome::Crash,
            Outcome::Signal,
            Outcome::IdleTimeout,
            Outcome::WallTimeout,
            Outcome::Overloaded,
        ]
        .into_iter()
        .collect()
    }
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            retry_on_crash: true,
            max_retries: 3,
            backoff: Duration::from_secs(5),
            multiplier: 2.0,
            max_backoff: Duration::from_secs(300),
            jitter: Jitter::default(),
            retry_on: RetryPolicy::default_retry_on(),
            // Without a reset time we cannot know when the limit lifts. Codex's own text says
            // "try again later" for limits that last hours; an hour keeps us from hammering the
            // provider (each probe costs a spawn and may count against the limit) while still
            // resuming within the same working session. Providers that name a reset time
            // (Claude's resetsAt, Codex's "try again at") override this.
            rate_limit_wait: Duration::from_secs(3600),
            rate_limit_jitter: Duration::from_secs(30),
        }
    }
}

/// Retry bookkeeping of the current iteration. The runner resets it when an iteration ends
/// (a clean attempt) and may persist `retries_used` as the runner's `retry_count`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RetryState {
    /// Retries scheduled so far in this iteration (rate-limit waits do not count).
    pub retries_used: u32,
    /// The previous retry delay, which decorrelated jitter grows from.
    pub last_delay: Option<Duration>,
    /// Rate-limit waits decided so far in this iteration: the floor of the next one grows
    /// with it.
    pub rate_limit_waits: u32,
}

impl RetryState {
    /// Apply a decision: a `RetryAfter` uses up one retry and becomes `last_delay`; a
    /// `Continue` ends the failure streak (the iteration finished) and resets the state; a
    /// `WaitUntil` is counted in `rate_limit_waits` but uses up no retry; `GiveUp` leaves it
    /// unchanged (the counts are kept for reporting).
    pub fn record(&mut self, d: &Decision) {
        match d {
            Decision::RetryAfter(delay) => {
                self.retries_used = self.retries_used.saturating_add(1);
                self.last_delay = Some(*delay);
            }
            Decision::Continue => self.reset(),
            Decision::WaitUntil(_) => {
                self.rate_limit_waits = self.rate_limit_waits.saturating_add(1);
            }
            Decision::GiveUp { .. } => {}
        }
    }

    pub fn reset(&mut self) {
        *self = RetryState::default();
    }
}

/// What the runner does after an attempt.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// The attempt was not a failure (success or no progress): the runner judges progress
    /// and goes on with the next iteration.
    Continue,
    /// Retry the same iteration after this delay.
    RetryAfter(Duration),
    /// A rate limit: do nothing until this time, then try again without using up a retry.
    WaitUntil(Timestamp),
    /// Stop this runner. `reason` names the last outcome and the retry count; see
    /// [`Decision::with_detail`] to add the attempt's own description.
    GiveUp { reason: String },
}

impl Decision {
    /// Append the caller's description of the last attempt to a `GiveUp` reason, e.g.
    /// `"retries exhausted after 3 retries: last attempt crash"` + `"exit code 1"` gives
    /// `"retries exhausted after 3 retries: last attempt crash (exit code 1)"`. Other
    /// decisions and an empty detail are returned unchanged.
    pub fn with_detail(self, detail: &str) -> Decision {
        match self {
            Decision::GiveUp { reason } if !detail.trim().is_empty() => Decision::GiveUp {
                reason: format!("{reason} ({})", detail.trim()),
            },
            other => other,
        }
    }
}

/// Decide what follows an attempt that came to `outcome`.
///
/// - `success`, `no_progress` → [`Decision::Continue`].
/// - `rate_limited` → [`Decision::WaitUntil`]: `reset_at + U(0, rate_limit_jitter)` when the
///   reset is in the future; `now + U(0, rate_limit_jitter)` when it has passed; `now +
///   rate_limit_wait + U(0, rate_limit_jitter)` when no reset is known (jittered too: runners
///   sharing an account hit the limit together); never earlier than `now +`
///   [`rate_limit_floor`] and never later than `now + 7 days`.
/// - [`NEVER_RETRY`] classes, any failure when `retry_on_crash` is false, and classes outside
///   `retry_on` → [`Decision::GiveUp`] at once.
/// - otherwise [`Decision::RetryAfter`] with [`backoff`] while `retries_used < max_retries`,
///   then `GiveUp`.
///
/// `state` must already reflect the retries scheduled before this attempt.
pub fn decide(
    policy: &RetryPolicy,
    state: &RetryState,
    outcome: Outcome,
    reset_at: Option<Timestamp>,
    now: Timestamp,
    rng: &mut impl Rng,
) -> Decision {
    let used = state.retries_used;
    match outcome {
        Outcome::Success | Outcome::NoProgress => return Decision::Continue,
        Outcome::RateLimited => {
            let until = rate_limit_until(policy, reset_at, now, rng);
            let floor = rate_limit_floor(policy, state.rate_limit_waits);
            return Decision::WaitUntil(until.max(add(now, floor)));
        }
        _ => {}
    }
    let n = format!("{used} {}", if used == 1 { "retry" } else { "retries" });
    let give_up = |why: &str| Decision::GiveUp {
        reason: format!("gave up after {n} ({why}): last attempt {outcome}"),
    };
    if NEVER_RETRY.contains(&outcome) {
        return give_up(&format!("{outcome} is never retried"));
    }
    if !policy.retry_on_crash {
        return give_up("retry_on_crash = false");
    }
    if !policy.retry_on.contains(&outcome) {
        return give_up(&format!("{outcome} is not in retry_on"));
    }
    if used >= policy.max_retries {
        return Decision::GiveUp {
            reason: format!("retries exhausted after {n}: last attempt {outcome}"),
        };
    }
    Decision::RetryAfter(backoff(policy, used, state.last_delay, rng))
}

/// The delay before retry number `retry_index + 1` (0-based: index 0 is the first retry).
/// `prev` is the previous delay, used only by decorrelated jitter (the base when `None`).
/// Never above `max_backoff`.
pub fn backoff(
    policy: &RetryPolicy,
    retry_index: u32,
    prev: Option<Duration>,
    rng: &mut impl Rng,
) -> Duration {
    let base = policy.backoff.as_secs_f64();
    let cap = policy.max_backoff.as_secs_f64();
    let exact = exact_secs(policy, retry_index).min(cap);
    let secs = match policy.jitter {
        Jitter::None => exact,
        Jitter::Full => uniform(rng, 0.0, exact),
        Jitter::Decorrelated => {
            let prev = prev.map_or(base, |p| p.as_secs_f64());
            // A previous delay below base (from another jitter mode or a lowered cap) would
            // make the range empty; the base is the floor.
            let hi = (3.0 * prev).max(base);
            uniform(rng, base, hi).min(cap)
        }
        Jitter::Ratio(r) => {
            let r = r.clamp(0.0, 1.0);
            (exact * uniform(rng, 1.0 - r, 1.0 + r)).min(cap)
        }
    };
    secs_to_duration(secs)
}

/// `base · multiplier^n` in seconds; infinity when it overflows (callers cap it).
fn exact_secs(policy: &RetryPolicy, n: u32) -> f64 {
    let base = policy.backoff.as_secs_f64();
    let mult = if policy.multiplier.is_finite() && policy.multiplier > 0.0 {
        policy.multiplier
    } else {
        1.0
    };
    let exp = i32::try_from(n).unwrap_or(i32::MAX);
    base * mult.powi(exp)
}

fn uniform(rng: &mut impl Rng, lo: f64, hi: f64) -> f64 {
    // Also catches NaN bounds, for which every comparison is false.
    let usable = lo.is_finite() && hi.is_finite() && hi > lo;
    if !usable {
        return if lo.is_finite() { lo } else { 0.0 };
    }
    rng.random_range(lo..=hi)
}

fn secs_to_duration(secs: f64) -> Duration {
    if secs.is_nan() || secs <= 0.0 {
        return Duration::ZERO;
    }
    Duration::try_from_secs_f64(secs).unwrap_or(Duration::MAX)
}

/// The shortest wait after a rate limit, when `waits` rate-limit waits came before it in the
/// iteration. The first one honours the reset as given (a reset already past may well have
/// lifted the limit: trying again at once is right once). From the second on: the retry
/// backoff, at least [`MIN_RATE_LIMIT_WAIT`], grown by the multiplier per wait (by 2 when the
/// multiplier is 1), up to the largest of `rate_limit_wait`, `max_backoff` and
/// [`MIN_RATE_LIMIT_FLOOR_CAP`]. A limit that keeps naming a reset already
/// past (a CLI misreporting it, a skewed clock) then backs off like a crash instead of
/// restarting the agent back to back, and no cap set to 0 can turn the floor off.
pub fn rate_limit_floor(policy: &RetryPolicy, waits: u32) -> Duration {
    let Some(exp) = waits.checked_sub(1) else {
        return Duration::ZERO;
    };
    let base = policy.backoff.max(MIN_RATE_LIMIT_WAIT).as_secs_f64();
    let cap = policy
        .rate_limit_wait
        .max(policy.max_backoff)
        .clamp(MIN_RATE_LIMIT_FLOOR_CAP, MAX_RATE_LIMIT_WAIT)
        .as_secs_f64();
    // A multiplier of 1 (constant retry delays) must not make the floor constant too.
    let mult = if policy.multiplier.is_finite() && policy.multiplier > 1.0 {
        policy.multiplier
    } else {
        2.0
    };
    let exp = i32::try_from(exp).unwrap_or(i32::MAX);
    secs_to_duration((base * mult.powi(exp)).min(cap))
}

fn rate_limit_until(
    policy: &RetryPolicy,
    reset_at: Option<Timestamp>,
    now: Timestamp,
    rng: &mut impl Rng,
) -> Timestamp {
    let jitter = secs_to_duration(uniform(rng, 0.0, policy.rate_limit_jitter.as_secs_f64()));
    let start = match reset_at {
        Some(reset) if reset > now => reset,
        Some(_) => now,
        None => add(now, policy.rate_limit_wait),
    };
    let latest = add(now, MAX_RATE_LIMIT_WAIT);
    add(start, jitter).min(latest)
}

fn add(t: Timestamp, d: Duration) -> Timestamp {
    SignedDuration::try_from(d)
        .ok()
        .and_then(|sd| t.checked_add(sd).ok())
        .unwrap_or(Timestamp::MAX)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    fn exact() -> RetryPolicy {
        RetryPolicy {
            jitter: Jitter::None,
            ..RetryPolicy::default()
        }
    }

    fn now() -> Timestamp {
        "2026-01-30T12:00:00Z".parse().unwrap()
    }

    /// Run failures of `outcome` through decide/record until it gives up; returns the delays.
    fn run_to_give_up(
        policy: &RetryPolicy,
        outcome: Outcome,
        seed: u64,
    ) -> (Vec<Duration>, String) {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut state = RetryState::default();
        let mut delays = Vec::new();
        for _ in 0..100 {
            let d = decide(policy, &state, outcome, None, now(), &mut rng);
            state.record(&d);
            match d {
                Decision::RetryAfter(delay) => delays.push(delay),
                Decision::GiveUp { reason } => return (delays, reason),
                other => panic!("unexpected {other:?}"),
            }
        }
        panic!("never gave up");
    }

    #[test]
    fn python_schedule_is_exact_without_jitter() {
        let (delays, reason) = run_to_give_up(&exact(), Outcome::Crash, 1);
        assert_eq!(
            delays,
            [5, 10, 20].map(Duration::from_secs).to_vec(),
            "5 s, 10 s, 20 s"
        );
        assert_eq!(
            reason,
            "retries exhausted after 3 retries: last attempt crash"
        );
        let d = Decision::GiveUp { reason }.with_detail("exit code 1");
        assert_eq!(
            d,
            Decision::GiveUp {
                reason: "retries exhausted after 3 retries: last attempt crash (exit code 1)"
                    .into()
            }
        );
    }

    #[test]
    fn delays_are_capped() {
        let policy = RetryPolicy {
            max_retries: 12,
            max_backoff: Duration::from_secs(60),
            ..exact()
        };
        let (delays, _) = run_to_give_up(&policy, Outcome::Signal, 1);
        let secs: Vec<u64> = delays.iter().map(Duration::as_secs).collect();
        assert_eq!(secs, [5, 10, 20, 40, 60, 60, 60, 60, 60, 60, 60, 60]);
        // Far past any representable exponent still yields the cap, not a panic.
        let mut rng = StdRng::seed_from_u64(0);
        assert_eq!(
            backoff(&policy, u32::MAX, None, &mut rng),
            Duration::from_secs(60)
        );
    }

    #[test]
    fn default_jitter_stays_within_twenty_percent() {
        let policy = RetryPolicy::default();
        for seed in 0..500 {
            let (delays, _) = run_to_give_up(&policy, Outcome::Crash, seed);
            assert_eq!(delays.len(), 3);
            for (d, nominal) in delays.iter().zip([5.0, 10.0, 20.0]) {
                let s = d.as_secs_f64();
                assert!(
                    s >= nominal * 0.8 - 1e-9 && s <= nominal * 1.2 + 1e-9,
                    "{s} vs {nominal}"
                );
            }
        }
    }

    #[test]
    fn full_jitter_is_within_zero_and_exact() {
        let policy = RetryPolicy {
            jitter: Jitter::Full,
            ..RetryPolicy::default()
        };
        let mut rng = StdRng::seed_from_u64(7);
        let mut below_half = 0;
        for _ in 0..1000 {
            let d = backoff(&policy, 2, None, &mut rng).as_secs_f64();
            assert!((0.0..=20.0).contains(&d), "{d}");
            if d < 10.0 {
                below_half += 1;
            }
        }
        // Uniform: about half the samples fall in the lower half.
        assert!((350..650).contains(&below_half), "{below_half}");
    }

    #[test]
    fn decorrelated_jitter_is_within_base_and_three_prev_and_cap() {
        let policy = RetryPolicy {
            jitter: Jitter::Decorrelated,
            max_retries: 50,
            max_backoff: Duration::from_secs(120),
            ..RetryPolicy::default()
        };
        for seed in 0..50 {
            let mut rng = StdRng::seed_from_u64(seed);
            let mut prev: Option<Duration> = None;
            for i in 0..50 {
                let d = backoff(&policy, i, prev, &mut rng);
                let p = prev.unwrap_or(policy.backoff).as_secs_f64();
                let s = d.as_secs_f64();
                assert!(s >= 5.0 - 1e-9, "never faster than base: {s}");
                assert!(s <= (3.0 * p).min(120.0) + 1e-9, "{s} vs prev {p}");
                prev = Some(d);
            }
        }
        // A previous delay below the base still yields at least the base.
        let mut rng = StdRng::seed_from_u64(3);
        let d = backoff(&policy, 0, Some(Duration::from_millis(10)), &mut rng);
        assert_eq!(d, Duration::from_secs(5));
    }

    #[test]
    fn same_seed_same_schedule() {
        let policy = RetryPolicy::default();
        assert_eq!(
            run_to_give_up(&policy, Outcome::Crash, 42),
            run_to_give_up(&policy, Outcome::Crash, 42)
        );
        assert_ne!(
            run_to_give_up(&policy, Outcome::Crash, 42).0,
            run_to_give_up(&policy, Outcome::Crash, 43).0
        );
    }

    #[test]
    fn never_retry_classes_give_up_even_when_listed() {
        let policy = RetryPolicy {
            retry_on: Outcome::ALL.into_iter().collect(),
            ..exact()
        };
        let mut rng = StdRng::seed_from_u64(0);
        for o in NEVER_RETRY {
            let d = decide(&policy, &RetryState::default(), o, None, now(), &mut rng);
            let Decision::GiveUp { reason } = d else {
                panic!("{o} was retried: {d:?}")
            };
            assert!(reason.contains(o.as_str()), "{reason}");
            assert!(reason.contains("after 0 retries"), "{reason}");
        }
    }

    #[test]
    fn retry_on_crash_false_gives_up_at_once() {
        let policy = RetryPolicy {
            retry_on_crash: false,
            ..exact()
        };
        let (delays, reason) = run_to_give_up(&policy, Outcome::Crash, 0);
        assert!(delays.is_empty());
        assert!(reason.contains("retry_on_crash = false"), "{reason}");
    }

    #[test]
    fn classes_outside_retry_on_give_up_and_context_limit_is_not_default() {
        let (delays, reason) = run_to_give_up(&exact(), Outcome::ContextLimit, 0);
        assert!(delays.is_empty());
        assert_eq!(
            reason,
            "gave up after 0 retries (context_limit is not in retry_on): last attempt context_limit"
        );
        let policy = RetryPolicy {
            retry_on: [Outcome::Crash].into_iter().collect(),
            ..exact()
        };
        assert!(
            run_to_give_up(&policy, Outcome::IdleTimeout, 0)
                .0
                .is_empty()
        );
        for o in [
            Outcome::Signal,
            Outcome::IdleTimeout,
            Outcome::WallTimeout,
            Outcome::Overloaded,
        ] {
            assert_eq!(run_to_give_up(&exact(), o, 0).0.len(), 3, "{o}");
        }
    }

    #[test]
    fn clean_outcomes_continue_and_reset_the_state() {
        let mut rng = StdRng::seed_from_u64(0);
        let mut state = RetryState {
            retries_used: 2,
            last_delay: Some(Duration::from_secs(10)),
            rate_limit_waits: 1,
        };
        for o in [Outcome::Success, Outcome::NoProgress] {
            let d = decide(&exact(), &state, o, None, now(), &mut rng);
            assert_eq!(d, Decision::Continue);
        }
        state.record(&Decision::Continue);
        assert_eq!(state, RetryState::default());
    }

    #[test]
    fn rate_limit_waits_until_reset_plus_jitter_without_using_retries() {
        let policy = RetryPolicy::default();
        let reset = now() + SignedDuration::from_secs(2 * 3600);
        let mut state = RetryState {
            retries_used: 3, // even with no retries left
            last_delay: None,
            rate_limit_waits: 0,
        };
        for seed in 0..200 {
            let mut rng = StdRng::seed_from_u64(seed);
            let d = decide(
                &policy,
                &state,
                Outcome::RateLimited,
                Some(reset),
                now(),
                &mut rng,
            );
            let Decision::WaitUntil(t) = d else {
                panic!("{d:?}")
            };
            assert!(
                t >= reset && t <= reset + SignedDuration::from_secs(30),
                "{t}"
            );
            let before = state.clone();
            state.record(&d);
            assert_eq!(
                state.retries_used, before.retries_used,
                "a wait uses up no retry"
            );
            assert_eq!(state.rate_limit_waits, before.rate_limit_waits + 1);
        }
    }

    #[test]
    fn rate_limit_without_reset_waits_the_configured_time() {
        let policy = RetryPolicy::default();
        let mut rng = StdRng::seed_from_u64(1);
        let d = decide(
            &policy,
            &RetryState::default(),
            Outcome::RateLimited,
            None,
            now(),
            &mut rng,
        );
        let Decision::WaitUntil(t) = d else {
            panic!("{d:?}")
        };
        let lo = now() + SignedDuration::from_secs(3600);
        assert!(t >= lo && t <= lo + SignedDuration::from_secs(30), "{t}");
    }

    #[test]
    fn rate_limit_reset_in_the_past_waits_only_the_jitter() {
        let policy = RetryPolicy::default();
        let past = now() - SignedDuration::from_secs(600);
        for seed in 0..100 {
            let mut rng = StdRng::seed_from_u64(seed);
            let d = decide(
                &policy,
                &RetryState::default(),
                Outcome::RateLimited,
                Some(past),
                now(),
                &mut rng,
            );
            let Decision::WaitUntil(t) = d else {
                panic!("{d:?}")
            };
            assert!(
                t >= now() && t <= now() + SignedDuration::from_secs(30),
                "{t}"
            );
        }
    }

    /// The configuration that ran 1,938 attempts in 8 s: every wait and jitter at 0.
    #[test]
    fn rate_limits_back_off_even_with_every_wait_configured_to_zero() {
        let policy = RetryPolicy {
            backoff: Duration::ZERO,
            max_backoff: Duration::ZERO,
            rate_limit_wait: Duration::ZERO,
            rate_limit_jitter: Duration::ZERO,
            ..exact()
        };
        let mut rng = StdRng::seed_from_u64(0);
        let mut state = RetryState::default();
        let mut waits = Vec::new();
        for reset in [
            None,
            Some(now()),
            Some(now() - SignedDuration::from_secs(60)),
            None,
        ] {
            let d = decide(
                &policy,
                &state,
                Outcome::RateLimited,
                reset,
                now(),
                &mut rng,
            );
            let Decision::WaitUntil(t) = d else {
                panic!("{d:?}")
            };
            waits.push(t.duration_since(now()).as_secs());
            state.record(&d);
        }
        assert_eq!(state.rate_limit_waits, 4);
        // Once at once, then 1 s (the floor's minimum) doubling.
        assert_eq!(waits, [0, 1, 2, 4]);
        // With a backoff the floor grows from it, up to rate_limit_wait, max_backoff or
        // five minutes, whichever is largest.
        let policy = RetryPolicy {
            backoff: Duration::from_secs(60),
            max_backoff: Duration::from_secs(60),
            rate_limit_wait: Duration::ZERO,
            multiplier: 1.0,
            ..policy
        };
        let floors: Vec<u64> = (0..7)
            .map(|n| rate_limit_floor(&policy, n).as_secs())
            .collect();
        assert_eq!(floors, [0, 60, 120, 240, 300, 300, 300]);
        let policy = RetryPolicy {
            rate_limit_wait: Duration::from_secs(900),
            ..policy
        };
        assert_eq!(rate_limit_floor(&policy, 6).as_secs(), 900);
    }

    #[test]
    fn rate_limit_is_clamped_to_seven_days() {
        let policy = RetryPolicy::default();
        let mut rng = StdRng::seed_from_u64(1);
        let far = now() + SignedDuration::from_hours(24 * 365);
        let d = decide(
            &policy,
            &RetryState::default(),
            Outcome::RateLimited,
            Some(far),
            now(),
            &mut rng,
        );
        assert_eq!(
            d,
            Decision::WaitUntil(now() + SignedDuration::from_hours(7 * 24))
        );
        let d = decide(
            &policy,
            &RetryState::default(),
            Outcome::RateLimited,
            Some(Timestamp::MAX),
            now(),
            &mut rng,
        );
        assert_eq!(
            d,
            Decision::WaitUntil(now() + SignedDuration::from_hours(7 * 24))
        );
    }

    #[test]
    fn jitter_parses_names_numbers_and_numeric_strings() {
        let parse = |j: &str| serde_json::from_str::<Jitter>(j);
        assert_eq!(parse("\"none\"").unwrap(), Jitter::None);
        assert_eq!(parse("\"Full\"").unwrap(), Jitter::Full);
        assert_eq!(parse("\"decorrelated\"").unwrap(), Jitter::Decorrelated);
        assert_eq!(parse("0.2").unwrap(), Jitter::Ratio(0.2));
        assert_eq!(parse("\"0.25\"").unwrap(), Jitter::Ratio(0.25));
        assert_eq!(parse("0").unwrap(), Jitter::Ratio(0.0));
        let err = parse("1.5").unwrap_err().to_string();
        assert!(err.contains("invalid retry_jitter"), "{err}");
        assert!(parse("\"equal\"").is_err());
        assert!(parse("-0.1").is_err());
        for j in [
            Jitter::None,
            Jitter::Full,
            Jitter::Decorrelated,
            Jitter::Ratio(0.2),
        ] {
            assert_eq!(j.to_string().parse::<Jitter>().unwrap(), j);
            let json = serde_json::to_string(&j).unwrap();
            assert_eq!(serde_json::from_str::<Jitter>(&json).unwrap(), j);
        }
        assert_eq!(Jitter::Ratio(0.2).to_string(), "0.2");
    }

    mod props {
        use super::*;
        use proptest::prelude::*;

        fn jitter() -> impl Strategy<Value = Jitter> {
            prop_oneof![
                Just(Jitter::None),
                Just(Jitter::Full),
                Just(Jitter::Decorrelated),
                (0.0f64..=1.0).prop_map(Jitter::Ratio),
            ]
        }

        proptest! {
            #[test]
            fn no_delay_exceeds_the_cap(
                base_ms in 0u64..600_000,
                cap_ms in 0u64..600_000,
                mult in 1.0f64..10.0,
                j in jitter(),
                idx in 0u32..64,
                prev_ms in proptest::option::of(0u64..10_000_000),
                seed in any::<u64>(),
            ) {
                let policy = RetryPolicy {
                    backoff: Duration::from_millis(base_ms),
                    max_backoff: Duration::from_millis(cap_ms),
                    multiplier: mult,
                    jitter: j,
                    ..RetryPolicy::default()
                };
                let mut rng = StdRng::seed_from_u64(seed);
                let d = backoff(&policy, idx, prev_ms.map(Duration::from_millis), &mut rng);
                prop_assert!(d <= policy.max_backoff);
                if let Jitter::Ratio(r) = j {
                    // Never below (1 - r) of the exact delay, itself at least min(base, cap).
                    let floor = (base_ms.min(cap_ms) as f64 / 1000.0) * (1.0 - r);
                    prop_assert!(d.as_secs_f64() >= floor - 1e-6, "{:?} < {}", d, floor);
                }
            }

            /// Whatever the policy, no repeated rate limit restarts the agent sooner than a
            /// second later, and later waits of an iteration are never shorter than earlier
            /// floors.
            #[test]
            fn no_policy_restarts_a_rate_limited_agent_back_to_back(
                backoff_ms in 0u64..20_000,
                extra_cap_ms in 0u64..100_000,
                mult in 1.0f64..4.0,
                wait_ms in 0u64..20_000,
                jitter_ms in 0u64..2_000,
                resets in proptest::collection::vec(proptest::option::of(-100i64..3), 1..12),
                seed in any::<u64>(),
            ) {
                let policy = RetryPolicy {
                    backoff: Duration::from_millis(backoff_ms),
                    max_backoff: Duration::from_millis(backoff_ms + extra_cap_ms),
                    multiplier: mult,
                    rate_limit_wait: Duration::from_millis(wait_ms),
                    rate_limit_jitter: Duration::from_millis(jitter_ms),
                    jitter: Jitter::None,
                    ..RetryPolicy::default()
                };
                let mut rng = StdRng::seed_from_u64(seed);
                let mut state = RetryState::default();
                let mut last_floor = Duration::ZERO;
                for r in resets {
                    let reset = r.map(|s| now() + SignedDuration::from_secs(s));
                    let d = decide(&policy, &state, Outcome::RateLimited, reset, now(), &mut rng);
                    let Decision::WaitUntil(t) = d else { panic!("{d:?}") };
                    if state.rate_limit_waits > 0 {
                        prop_assert!(t >= now() + SignedDuration::from_secs(1), "{t}");
                    }
                    let floor = rate_limit_floor(&policy, state.rate_limit_waits);
                    prop_assert!(floor >= last_floor);
                    last_floor = floor;
                    state.record(&d);
                }
            }

            #[test]
            fn rate_limit_wait_is_within_now_and_seven_days(
                offset_s in -1_000_000i64..100_000_000,
                has_reset in any::<bool>(),
                seed in any::<u64>(),
            ) {
                let reset = has_reset.then(|| now() + SignedDuration::from_secs(offset_s));
                let mut rng = StdRng::seed_from_u64(seed);
                let d = decide(&RetryPolicy::default(), &RetryState::default(), Outcome::RateLimited, reset, now(), &mut rng);
                let Decision::WaitUntil(t) = d else { panic!("{d:?}") };
                prop_assert!(t >= now());
                prop_assert!(t <= now() + SignedDuration::from_hours(7 * 24));
            }
        }
    }
}
