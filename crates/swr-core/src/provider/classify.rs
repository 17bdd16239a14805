//! Text classification of agent failures and parsing of the reset times in rate-limit messages.
//!
//! Only ever applied to error texts (result/error fields of structured output) and to the raw
//! tail of stdout+stderr, never to assistant prose or tool output inside JSON events: the
//! patterns are precise substrings of the messages the agent CLIs actually print
//! (see agent-clis.md), so that "src/http429.rs:429" is not a rate limit.

use jiff::civil::{Date, Time};
use jiff::tz::{Offset, TimeZone};
use jiff::{SignedDuration, Timestamp};

use super::{AgentError, ErrorClass, ProviderKind, clip, json_object};

/// How many trailing lines [`classify_tail`] looks at.
/// Generous enough for a usage error printed above a 45-line `--help` (gemini).
pub const TAIL_LINES: usize = 60;

/// Classifies one error text, or `None` when no precise pattern matches.
pub fn classify_text(text: &str) -> Option<ErrorClass> {
    let l = text.to_lowercase();
    let has = |pats: &[&str]| pats.iter().any(|p| l.contains(p));

    // Order matters: the more specific and the less retryable classes first, e.g. codex's
    // "Quota exceeded. Check your plan and billing" is billing, gemini's "exceeded your current
    // quota" is a rate limit.
    if has(&[
        "no conversation found with session id",
        "no rollout found",
        "no previous sessions found",
        "error resuming session",
    ]) {
        return Some(ErrorClass::BadResume);
    }
    if has(&[
        "not logged in · please run /login",
        "please run /login",
        "invalid api key",
        "invalid_api_key",
        "oauth token revoked",
        "oauth token has expired",
        "login expired",
        "please set an auth method",
        "no auth type is selected",
        "401 unauthorized",
        "authentication_error",
        "authentication_failed",
    ]) || l.trim() == "not logged in"
        || has_status(&l, "401")
    {
        return Some(ErrorClass::Auth);
    }
    if has(&[
        "credit balance is too low",
        "quota exceeded. check your plan and billing",
        "billing_error",
        "insufficient_quota",
    ]) {
        return Some(ErrorClass::Billing);
    }
    if has(&[
        "error: unknown option",
        "unexpected argument '",
        "requires --verbose",
        "input must be provided",
        "unknown argument:",
        "unknown arguments:",
        "cannot be used with root/sudo privileges",
        "not inside a trusted directory",
        "not running in a trusted directory",
        "error: invalid value '",
    ]) {
        return Some(ErrorClass::Usage);
    }
    if has(&[
        "prompt is too long",
        "ran out of room in the model's context window",
        "context_length_exceeded",
        "maximum context length",
        "exceeded the token limit",
    ]) {
        return Some(ErrorClass::ContextLimit);
    }
    if has(&[
        "usage limit reached",
        "-hour limit reached",
        "weekly limit reached",
        "reached your specified api usage limits",
        "exceed your account's rate limit",
        "rate_limit_error",
        "rate limit exceeded",
        "rate_limit_exceeded",
        "resource_exhausted",
        "resource has been exhausted",
        "exceeded your current quota",
        "exhausted your daily quota",
        "usage_limit_reached",
        "usage_not_included",
        "too many requests",
    ]) || (l.contains("you've hit your") && l.contains("limit"))
        || has_status(&l, "429")
    {
        return Some(ErrorClass::RateLimited);
    }
    if has(&[
        "529 overloaded",
        "repeated 529",
        "overloaded_error",
        "api error: overloaded",
        "model is overloaded",
        "is at capacity",
        "model_capacity_exhausted",
        "exhausted your capacity",
        "no capacity available",
        "503 service unavailable",
    ]) || has_status(&l, "529")
        || has_status(&l, "503")
    {
        return Some(ErrorClass::Overloaded);
    }
    if has(&[
        "can't reach the api server",
        "fetch failed",
        "eai_again",
        "waiting for network",
        "stream disconnected before completion",
        "cannot connect to api",
    ]) {
        return Some(ErrorClass::Network);
    }
    if has(&[
        "reached max session turns",
        "error_max_turns",
        "maximum number of turns",
        "error_max_budget_usd",
    ]) {
        return Some(ErrorClass::TurnLimit);
    }
    if has(&[
        "returned an empty response",
        "no messages returned from query",
        "response was blocked due to safety",
    ]) {
        return Some(ErrorClass::EmptyResponse);
    }
    None
}

/// An HTTP status written as a status, not as any number: `(429)`, `status: 429`,
/// `api error: 429`, `"code": 429`... `l` is lowercase.
fn has_status(l: &str, code: &str) -> bool {
    let pats = [
        format!("({code})"),
        format!("status: {code}"),
        format!("status {code}"),
        format!("status code {code}"),
        format!("status\":{code}"),
        format!("status\": {code}"),
        format!("code\":{code}"),
        format!("code\": {code}"),
        format!("http {code}"),
        format!("api error: {code}"),
        format!("error {code}:"),
    ];
    pats.iter().any(|p| {
        l.match_indices(p.as_str()).any(|(i, m)| {
            // "(429)" is closed; the others must not continue with a digit ("status: 4290").
            let next = l[i + m.len()..].chars().next();
            !matches!(next, Some(c) if c.is_ascii_digit())
        })
    })
}

/// Fallback classification from the last lines of stdout+stderr. Single-line JSON events are
/// skipped: the line parser already saw them, and they carry assistant prose and tool output.
/// The most recent matching line wins.
pub fn classify_tail(lines: &[String], now: Timestamp) -> Option<AgentError> {
    classify_tail_in(lines, now, &TimeZone::system())
}

pub(crate) fn classify_tail_in(
    lines: &[String],
    now: Timestamp,
    local: &TimeZone,
) -> Option<AgentError> {
    let start = lines.len().saturating_sub(TAIL_LINES);
    let tail: Vec<&str> = lines[start..]
        .iter()
        .map(|s| s.trim())
        .filter(|s| !s.is_empty() && !is_json_event(s))
        .collect();
    let (idx, class) = tail
        .iter()
        .enumerate()
        .rev()
        .find_map(|(i, line)| classify_text(line).map(|c| (i, c)))?;
    let line = tail[idx];
    let mut err = AgentError {
        class,
        message: clip(line),
        reset_at: None,
    };
    if class == ErrorClass::RateLimited {
        // Gemini prints "Access resets at ..." on its own line after the limit message.
        err.reset_at = parse_reset_time_in(line, now, local).or_else(|| {
            tail.iter()
                .rev()
                .find_map(|l| parse_reset_time_in(l, now, local))
        });
    }
    Some(err)
}

fn is_json_event(line: &str) -> bool {
    json_object(line).is_some_and(|m| m.contains_key("type"))
}

/// Classification of documented exit codes (gemini: its exit codes; codex: clap's 2).
pub fn classify_exit_code(kind: ProviderKind, code: i32) -> Option<ErrorClass> {
    match kind {
        ProviderKind::Gemini => match code {
            41 => Some(ErrorClass::Auth),
            42 | 44 | 52 | 55 => Some(ErrorClass::Usage),
            53 => Some(ErrorClass::TurnLimit),
            // `process.exit(httpStatus)` truncated to a byte: 429, 503, 500.
            173 => Some(ErrorClass::RateLimited),
            247 | 244 => Some(ErrorClass::Overloaded),
            _ => None,
        },
        ProviderKind::Codex => match code {
            2 => Some(ErrorClass::Usage),
            _ => None,
        },
        ProviderKind::Claude | ProviderKind::Sim | ProviderKind::Custom => None,
    }
}

// ---------------------------------------------------------------------------------------------
// Reset times

/// The moment a rate/usage limit lifts, from the texts the agent CLIs print:
/// `Claude AI usage limit reached|1755615600`, `"resetsAt":1755615600`,
/// `try again at Aug 6th, 2026 3:33 AM` (local time), `try again in 5 days 22 hours 11 minutes`,
/// `resets 2pm (Asia/Shanghai)`, `resets 12:50am (America/Los_Angeles)`,
/// `You will regain access on 2026-04-01 at 00:00 UTC`, `Suggested retry after 60s`,
/// `Please retry in 41.8s`, `Access resets at 3:45 PM PST`. Times without a zone are local;
/// times without a date are the next such time after `now`.
pub fn parse_reset_time(text: &str, now: Timestamp) -> Option<Timestamp> {
    parse_reset_time_in(text, now, &TimeZone::system())
}

pub(crate) fn parse_reset_time_in(
    text: &str,
    now: Timestamp,
    local: &TimeZone,
) -> Option<Timestamp> {
    epoch_after_pipe(text)
        .or_else(|| epoch_after_key(text, "resetsAt"))
        .or_else(|| {
            after_any(text, &["try again at ", "resets at ", "reset at "])
                .and_then(|rest| clock_time(rest, now, local))
        })
        .or_else(|| {
            after_any(
                text,
                &[
                    "try again in ",
                    "retry after ",
                    "retry in ",
                    "resets in ",
                    "reset in ",
                    "retry-after: ",
                ],
            )
            .and_then(duration)
            .and_then(|d| now.checked_add(d).ok())
        })
        .or_else(|| {
            after_any(text, &["regain access on "]).and_then(|rest| clock_time(rest, now, local))
        })
        .or_else(|| after_any(text, &["resets "]).and_then(|rest| clock_time(rest, now, local)))
}

/// The text right after the first (case-insensitive) occurrence of any marker.
fn after_any<'a>(text: &'a str, markers: &[&str]) -> Option<&'a str> {
    let lower = text.to_ascii_lowercase();
    markers
        .iter()
        .filter_map(|m| lower.find(m).map(|i| i + m.len()))
        .min()
        .map(|i| &text[i..])
}

/// `...limit reached|1755615600`: epoch seconds (or milliseconds) after a pipe.
fn epoch_after_pipe(text: &str) -> Option<Timestamp> {
    let lower = text.to_ascii_lowercase();
    let i = lower.find("limit reached|")? + "limit reached|".len();
    epoch(&text[i..])
}

/// `"resetsAt":1755615600` or `resetsAt=...`.
fn epoch_after_key(text: &str, key: &str) -> Option<Timestamp> {
    let i = text.find(key)? + key.len();
    let rest = text[i..].trim_start_matches(['"', ':', '=', ' ']);
    epoch(rest)
}

fn epoch(s: &str) -> Option<Timestamp> {
    let digits: String = s.chars().take_while(|c| c.is_ascii_digit()).collect();
    let n: i64 = digits.parse().ok()?;
    // Milliseconds are 13 digits for the foreseeable future; seconds are 10.
    if n > 100_000_000_000 {
        Timestamp::from_millisecond(n).ok()
    } else {
        Timestamp::from_second(n).ok()
    }
}

/// `5 days 22 hours 11 minutes`, `60s`, `41.8s`, `1h 30m`, `2 hours and 5 minutes`.
fn duration(s: &str) -> Option<SignedDuration> {
    let mut total = 0f64;
    let mut found = false;
    let mut rest = s.trim_start();
    loop {
        let num_len = rest
            .char_indices()
            .take_while(|(_, c)| c.is_ascii_digit() || *c == '.')
            .map(|(i, c)| i + c.len_utf8())
            .last();
        let Some(num_len) = num_len else { break };
        let Ok(n) = rest[..num_len].trim_end_matches('.').parse::<f64>() else {
            break;
        };
        let after = rest[num_len..].trim_start();
        let unit_len = after
            .char_indices()
            .take_while(|(_, c)| c.is_ascii_alphabetic())
            .map(|(i, c)| i + c.len_utf8())
            .last()
            .unwrap_or(0);
        let unit = after[..unit_len].to_ascii_lowercase();
        let secs = match unit.as_str() {
            "d" | "day" | "days" => 86_400.0,
            "h" | "hr" | "hrs" | "hour" | "hours" => 3_600.0,
            "m" | "min" | "mins" | "minute" | "minutes" => 60.0,
            "s" | "sec" | "secs" | "second" | "seconds" => 1.0,
            "ms" => 0.001,
            _ => break,
        };
        total += n * secs;
        found = true;
        rest = after[unit_len..].trim_start_matches([',', ' ']);
        if let Some(r) = rest.strip_prefix("and ") {
            rest = r;
        }
    }
    if !found || !total.is_finite() || total < 0.0 {
        return None;
    }
    SignedDuration::try_from_secs_f64(total).ok()
}

/// An absolute or next-occurrence wall-clock time at the start of `s`:
/// `[Aug 6th, 2026 ]3:33 AM`, `2pm (Asia/Shanghai)`, `2026-04-01 at 00:00 UTC`,
/// `Oct 9, 10am (America/New_York)`, `3:45 PM PST`.
fn clock_time(s: &str, now: Timestamp, local: &TimeZone) -> Option<Timestamp> {
    let mut toks = Tokens::new(s);
    let mut date: Option<(Option<i16>, i8, i8)> = None;

    if let Some((y, m, d)) = toks.iso_date() {
        date = Some((Some(y), m, d));
        toks.skip_word("at");
    } else if let Some(month) = toks.month() {
        let day = toks.day()?;
        let year = toks.year();
        date = Some((year, month, day));
        toks.skip_word("at");
    }
    let time = toks.time()?;
    let tz = toks.zone().unwrap_or_else(|| local.clone());

    let today = now.to_zoned(tz.clone()).date();
    let resolve = |d: Date| {
        d.to_datetime(time)
            .to_zoned(tz.clone())
            .ok()
            .map(|z| z.timestamp())
    };
    match date {
        Some((Some(y), m, d)) => resolve(Date::new(y, m, d).ok()?),
        Some((None, m, d)) => {
            let this_year = resolve(Date::new(today.year(), m, d).ok()?)?;
            if this_year > now {
                Some(this_year)
            } else {
                resolve(Date::new(today.year() + 1, m, d).ok()?)
            }
        }
        None => {
            let t = resolve(today)?;
            if t > now {
                Some(t)
            } else {
                resolve(today.tomorrow().ok()?)
            }
        }
    }
}

/// A tiny cursor over the words of a reset message.
struct Tokens<'a> {
    rest: &'a str,
}

impl<'a> Tokens<'a> {
    fn new(s: &'a str) -> Self {
        Tokens {
            rest: s.trim_start(),
        }
    }

    fn advance(&mut self, n: usize) {
        self.rest = self.rest[n..].trim_start_matches([' ', ',']);
    }

    fn skip_word(&mut self, w: &str) {
        let lower = self.rest.to_ascii_lowercase();
        if lower.starts_with(w)
            && !lower[w.len()..].starts_with(|c: char| c.is_ascii_alphanumeric())
        {
            self.advance(w.len());
        }
    }

    fn leading_digits(&self) -> &'a str {
        let n = self
            .rest
            .char_indices()
            .find(|(_, c)| !c.is_ascii_digit())
            .map(|(i, _)| i)
            .unwrap_or(self.rest.len());
        &self.rest[..n]
    }

    /// `2026-04-01`
    fn iso_date(&mut self) -> Option<(i16, i8, i8)> {
        let s = self.rest.get(..10)?;
        let b = s.as_bytes();
        if b[4] != b'-' || b[7] != b'-' {
            return None;
        }
        let y = s[..4].parse().ok()?;
        let m = s[5..7].parse().ok()?;
        let d = s[8..10].parse().ok()?;
        self.advance(10);
        Some((y, m, d))
    }

    /// `Aug`, `August`, `Sept`
    fn month(&mut self) -> Option<i8> {
        const MONTHS: [&str; 12] = [
            "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
        ];
        let word_len = self
            .rest
            .char_indices()
            .find(|(_, c)| !c.is_ascii_alphabetic())
            .map(|(i, _)| i)
            .unwrap_or(self.rest.len());
        if word_len < 3 {
            return None;
        }
        let word = self.rest[..word_len].to_ascii_lowercase();
        let idx = MONTHS.iter().position(|m| word.starts_with(m))?;
        self.advance(word_len);
        self.rest = self.rest.trim_start_matches('.').trim_start();
        i8::try_from(idx + 1).ok()
    }

    /// `6th`, `6`, `21st`
    fn day(&mut self) -> Option<i8> {
        let digits = self.leading_digits();
        if digits.is_empty() || digits.len() > 2 {
            return None;
        }
        let d: i8 = digits.parse().ok()?;
        let mut n = digits.len();
        let suffix = self.rest[n..].get(..2).map(|s| s.to_ascii_lowercase());
        if matches!(suffix.as_deref(), Some("st" | "nd" | "rd" | "th")) {
            n += 2;
        }
        self.advance(n);
        Some(d)
    }

    /// `2026` (only when followed by a time, i.e. not `2pm`)
    fn year(&mut self) -> Option<i16> {
        let digits = self.leading_digits();
        if digits.len() != 4 || self.rest[4..].starts_with(':') {
            return None;
        }
        let y = digits.parse().ok()?;
        self.advance(4);
        Some(y)
    }

    /// `3:33 AM`, `2pm`, `12:50am`, `00:00`, `15:04:05`
    fn time(&mut self) -> Option<Time> {
        let hour_s = self.leading_digits();
        if hour_s.is_empty() || hour_s.len() > 2 {
            return None;
        }
        let mut hour: i8 = hour_s.parse().ok()?;
        let mut n = hour_s.len();
        let mut minute: i8 = 0;
        let mut second: i8 = 0;
        let mut parts = 0;
        while self.rest[n..].starts_with(':') && parts < 2 {
            let field = self.rest.get(n + 1..n + 3)?;
            let v: i8 = field.parse().ok()?;
            if parts == 0 {
                minute = v;
            } else {
                second = v;
            }
            n += 3;
            parts += 1;
        }
        let after = self.rest[n..].trim_start();
        let ampm = after.get(..2).map(|s| s.to_ascii_lowercase());
        let consumed_ampm = match ampm.as_deref() {
            Some("am") | Some("pm")
                if !after[2..].starts_with(|c: char| c.is_ascii_alphabetic()) =>
            {
                let pm = ampm.as_deref() == Some("pm");
                if !(1..=12).contains(&hour) {
                    return None;
                }
                hour = match (pm, hour) {
                    (false, 12) => 0,
                    (false, h) => h,
                    (true, 12) => 12,
                    (true, h) => h + 12,
                };
                true
            }
            _ => {
                // A bare hour ("resets 9") is too ambiguous to act on.
                if parts == 0 {
                    return None;
                }
                false
            }
        };
        let time = Time::new(hour, minute, second, 0).ok()?;
        let skip = if consumed_ampm {
            self.rest.len() - after.len() + 2
        } else {
            n
        };
        self.advance(skip);
        Some(time)
    }

    /// `(Asia/Shanghai)`, `UTC`, `GMT+2`, `PST`
    fn zone(&mut self) -> Option<TimeZone> {
        let rest = self.rest.trim_start();
        if let Some(inner) = rest.strip_prefix('(') {
            let end = inner.find(')')?;
            return zone_named(inner[..end].trim());
        }
        let word_len = rest
            .char_indices()
            .find(|(_, c)| !(c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '/' | '_' | ':')))
            .map(|(i, _)| i)
            .unwrap_or(rest.len());
        zone_named(rest[..word_len].trim_end_matches(['.', ':']))
    }
}

fn zone_named(name: &str) -> Option<TimeZone> {
    if name.is_empty() {
        return None;
    }
    let upper = name.to_ascii_uppercase();
    let fixed = |h: i8| Offset::from_hours(h).ok().map(TimeZone::fixed);
    match upper.as_str() {
        "UTC" | "GMT" | "Z" => return Some(TimeZone::UTC),
        "PST" => return fixed(-8),
        "PDT" | "MST" => return fixed(-7),
        "MDT" | "CST" => return fixed(-6),
        "CDT" | "EST" => return fixed(-5),
        "EDT" => return fixed(-4),
        "CET" => return fixed(1),
        "CEST" => return fixed(2),
        "JST" | "KST" => return fixed(9),
        _ => {}
    }
    for prefix in ["UTC", "GMT"] {
        if let Some(off) = upper.strip_prefix(prefix) {
            let (sign, digits) = match off.as_bytes().first() {
                Some(b'+') => (1i32, &off[1..]),
                Some(b'-') => (-1i32, &off[1..]),
                _ => continue,
            };
            let (h, m) = match digits.split_once(':') {
                Some((h, m)) => (h.parse::<i32>().ok()?, m.parse::<i32>().ok()?),
                None => (digits.parse::<i32>().ok()?, 0),
            };
            let secs = sign * (h * 3600 + m * 60);
            return Offset::from_seconds(secs).ok().map(TimeZone::fixed);
        }
    }
    if name.contains('/') {
        return TimeZone::get(name).ok();
    }
    None
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    // 2026-11-28 12:00:00 UTC, a Saturday.
    fn now() -> Timestamp {
        ts("2026-11-28T12:00:00Z")
    }

    fn reset(text: &str) -> Option<Timestamp> {
        parse_reset_time_in(text, now(), &TimeZone::UTC)
    }

    #[test]
    fn reset_epoch_after_pipe() {
        assert_eq!(
            reset("Claude AI usage limit reached|1755615600"),
            Some(Timestamp::from_second(1_755_615_600).unwrap())
        );
    }

    #[test]
    fn reset_epoch_resets_at_field() {
        assert_eq!(
            reset(r#"{"status":"rejected","resetsAt":1764345600,"rateLimitType":"five_hour"}"#),
            Some(Timestamp::from_second(1_764_345_600).unwrap())
        );
    }

    #[test]
    fn reset_codex_try_again_at_absolute_local() {
        let text = "You've hit your usage limit. Upgrade to Plus to continue using Codex \
                    (https://chatgpt.com/explore/plus), or try again at Aug 6th, 2026 3:33 AM.";
        assert_eq!(reset(text), Some(ts("2026-08-06T03:33:00Z")));
        // Interpreted in the local zone when none is printed.
        let la = TimeZone::get("America/Los_Angeles").unwrap();
        assert_eq!(
            parse_reset_time_in(text, now(), &la),
            Some(ts("2026-08-06T10:33:00Z"))
        );
    }

    #[test]
    fn reset_codex_try_again_in_duration() {
        let text = "You've hit your usage limit. ... or try again in 5 days 22 hours 11 minutes.";
        let expected = now()
            .checked_add(SignedDuration::from_secs(5 * 86_400 + 22 * 3_600 + 11 * 60))
            .unwrap();
        assert_eq!(reset(text), Some(expected));
    }

    #[test]
    fn reset_claude_resets_hour_with_iana_zone() {
        // 12:00Z is 20:00 in Shanghai: 2pm today has passed, so tomorrow 14:00 +08:00.
        assert_eq!(
            reset("You've hit your limit · resets 2pm (Asia/Shanghai)"),
            Some(ts("2026-11-29T06:00:00Z"))
        );
    }

    #[test]
    fn reset_claude_resets_minutes_am_los_angeles() {
        // 12:00Z is 04:00 PST: 12:50am has passed today, so tomorrow 00:50 -08:00.
        assert_eq!(
            reset("You've hit your session limit · resets 12:50am (America/Los_Angeles)"),
            Some(ts("2026-11-29T08:50:00Z"))
        );
    }

    #[test]
    fn reset_claude_resets_later_today_without_zone_is_local() {
        assert_eq!(
            reset("5-hour limit reached ∙ resets 9pm"),
            Some(ts("2026-11-28T21:00:00Z"))
        );
    }

    #[test]
    fn reset_claude_resets_with_month_day() {
        assert_eq!(
            reset("You've hit your weekly limit · resets Dec 2, 10am (America/New_York)"),
            Some(ts("2026-12-02T15:00:00Z"))
        );
    }

    #[test]
    fn reset_api_spend_cap_regain_access() {
        assert_eq!(
            reset(
                "You have reached your specified API usage limits. \
                 You will regain access on 2026-04-01 at 00:00 UTC."
            ),
            Some(ts("2026-04-01T00:00:00Z"))
        );
    }

    #[test]
    fn reset_gemini_suggested_retry_after() {
        assert_eq!(
            reset("Quota exceeded for quota metric ... Suggested retry after 60s."),
            Some(ts("2026-11-28T12:01:00Z"))
        );
        assert_eq!(
            reset("Please retry in 41.5s."),
            Some(ts("2026-11-28T12:00:41.5Z"))
        );
    }

    #[test]
    fn reset_gemini_access_resets_at_short_zone() {
        assert_eq!(
            reset("Usage limit reached for gemini-3.1-pro. Access resets at 3:45 PM PST."),
            Some(ts("2026-11-28T23:45:00Z"))
        );
        assert_eq!(
            reset("Access resets at 11:30 AM UTC."),
            Some(ts("2026-11-29T11:30:00Z"))
        );
    }

    #[test]
    fn reset_none_without_a_time() {
        assert_eq!(reset("You've hit your usage limit. Try again later."), None);
        assert_eq!(reset("resets 9"), None);
        assert_eq!(reset("src/http429.rs:429: assertion failed"), None);
    }

    #[test]
    fn reset_public_fn_uses_the_local_zone_consistently() {
        // Only the zone-qualified form, so the expectation does not depend on the machine.
        assert_eq!(
            parse_reset_time("resets 2pm (Asia/Shanghai)", now()),
            Some(ts("2026-11-29T06:00:00Z"))
        );
    }

    fn class(text: &str) -> Option<ErrorClass> {
        classify_text(text)
    }

    #[test]
    fn classify_rate_limits() {
        for t in [
            "You've hit your limit · resets 2pm (Asia/Shanghai)",
            "You've hit your session limit · resets 12:50am (America/Los_Angeles)",
            "5-hour limit reached ∙ resets 9pm",
            "Claude AI usage limit reached|1755615600",
            "You have reached your specified API usage limits. You will regain access on 2026-04-01 at 00:00 UTC.",
            "API Error: Request rejected (429) · Rate limited. Please try again later.",
            "This request would exceed your account's rate limit. Please try again later.",
            "You've hit your usage limit. Upgrade to Plus to continue using Codex (https://chatgpt.com/explore/plus), or try again at Aug 6th, 2026 3:33 AM.",
            "You've hit your usage limit. Try again later.",
            "exceeded retry limit, last status: 429 Too Many Requests, request id: abc",
            "[API Error: You exceeded your current quota, please check your plan and billing details. (Status: RESOURCE_EXHAUSTED)]",
            "Resource has been exhausted (e.g. check quota).",
            "You have exhausted your daily quota on this model.",
            "Usage limit reached for gemini-3.1-pro-preview.",
        ] {
            assert_eq!(class(t), Some(ErrorClass::RateLimited), "{t}");
        }
    }

    #[test]
    fn classify_429_in_file_names_and_line_numbers_is_not_a_rate_limit() {
        for t in [
            "src/http429.rs:429: assertion failed",
            "thread 'main' panicked at src/http429.rs:429:5:",
            "error[E0308]: mismatched types --> src/lib.rs:429:12",
            "test status_4290 ... FAILED",
            "    at Object.<anonymous> (test/limits.test.js:429:7)",
        ] {
            assert_eq!(class(t), None, "{t}");
        }
    }

    #[test]
    fn classify_auth_billing_usage() {
        for t in [
            "Not logged in · Please run /login",
            "Invalid API key · Fix external API key",
            "OAuth token revoked · Please run /login",
            "Login expired · Please run /login",
            "Please set an Auth method in your $HOME/.gemini/settings.json or specify one of the following environment variables before running: GEMINI_API_KEY",
            "401 Unauthorized: Incorrect API key provided (invalid_api_key)",
            "Not logged in",
        ] {
            assert_eq!(class(t), Some(ErrorClass::Auth), "{t}");
        }
        for t in [
            "Credit balance is too low",
            "Quota exceeded. Check your plan and billing details.",
        ] {
            assert_eq!(class(t), Some(ErrorClass::Billing), "{t}");
        }
        for t in [
            "error: unknown option '--bogus-flag'",
            "error: unexpected argument '--full-auto' found",
            "Error: When using --print, --output-format=stream-json requires --verbose",
            "Error: Input must be provided either through stdin or as a prompt argument when using --print",
            "Unknown argument: bogus",
            "--dangerously-skip-permissions cannot be used with root/sudo privileges for security reasons",
            "Not inside a trusted directory and --skip-git-repo-check was not specified.",
        ] {
            assert_eq!(class(t), Some(ErrorClass::Usage), "{t}");
        }
    }

    #[test]
    fn classify_context_overloaded_network_resume() {
        for t in [
            "Prompt is too long · the request is ~210000 tokens (limit 200000)",
            "Codex ran out of room in the model's context window. Start a new thread or clear earlier history before retrying.",
        ] {
            assert_eq!(class(t), Some(ErrorClass::ContextLimit), "{t}");
        }
        for t in [
            "API Error: Repeated 529 Overloaded errors",
            "API Error: 529 Overloaded. This is a server-side issue, usually temporary",
            "Selected model is at capacity. Please try a different model.",
            "MODEL_CAPACITY_EXHAUSTED",
        ] {
            assert_eq!(class(t), Some(ErrorClass::Overloaded), "{t}");
        }
        for t in [
            "API Error: Can't reach the API server — check your internet or DNS (EAI_AGAIN)",
            "[API Error: exception TypeError: fetch failed sending request]",
        ] {
            assert_eq!(class(t), Some(ErrorClass::Network), "{t}");
        }
        for t in [
            "No conversation found with session ID: 11111111-2222-3333-4444-555555555555",
            "Error: thread/resume: thread/resume failed: no rollout found for thread id 1111 (code -32600)",
            "Error resuming session: No previous sessions found for this project.",
        ] {
            assert_eq!(class(t), Some(ErrorClass::BadResume), "{t}");
        }
        assert_eq!(
            class(
                "Reached max session turns for this session. Increase the number of turns by specifying maxSessionTurns in settings.json."
            ),
            Some(ErrorClass::TurnLimit)
        );
        assert_eq!(
            class(
                "The model returned an empty response with no text or thoughts. This may be a transient API issue; please try again."
            ),
            Some(ErrorClass::EmptyResponse)
        );
        assert_eq!(class("C++: call of overloaded 'f(int)' is ambiguous"), None);
    }

    fn lines(s: &[&str]) -> Vec<String> {
        s.iter().map(|l| l.to_string()).collect()
    }

    #[test]
    fn tail_most_recent_match_wins_and_json_events_are_skipped() {
        let tail = lines(&[
            r#"{"type":"assistant","message":{"content":[{"type":"text","text":"You've hit your limit · resets 2pm"}]}}"#,
            "warning: something",
            "error: unexpected argument '--bogus' found",
            "",
            "  tip: to pass '--bogus' as a value, use '-- --bogus'",
            "For more information, try '--help'.",
        ]);
        let e = classify_tail_in(&tail, now(), &TimeZone::UTC).unwrap();
        assert_eq!(e.class, ErrorClass::Usage);
        assert_eq!(e.message, "error: unexpected argument '--bogus' found");
        assert_eq!(e.reset_at, None);

        let only_json = lines(&[
            r#"{"type":"assistant","message":{"content":[{"type":"text","text":"Not logged in · Please run /login"}]}}"#,
        ]);
        assert_eq!(classify_tail_in(&only_json, now(), &TimeZone::UTC), None);
    }

    #[test]
    fn tail_false_positive_429() {
        let tail = lines(&[
            "running 3 tests",
            "test limits::retries ... FAILED",
            "src/http429.rs:429: assertion failed",
            "error: test failed, to rerun pass `--lib`",
        ]);
        assert_eq!(classify_tail_in(&tail, now(), &TimeZone::UTC), None);
    }

    #[test]
    fn tail_rate_limit_takes_reset_from_a_neighbouring_line() {
        let tail = lines(&[
            "Usage limit reached for gemini-3.1-pro-preview.",
            "Access resets at 3:45 PM UTC.",
        ]);
        let e = classify_tail_in(&tail, now(), &TimeZone::UTC).unwrap();
        assert_eq!(e.class, ErrorClass::RateLimited);
        assert_eq!(e.reset_at, Some(ts("2026-11-28T15:45:00Z")));
    }

    #[test]
    fn tail_only_looks_at_the_last_lines() {
        let mut v = vec!["Not logged in · Please run /login".to_string()];
        v.extend((0..TAIL_LINES).map(|i| format!("line {i}")));
        assert_eq!(classify_tail_in(&v, now(), &TimeZone::UTC), None);
    }

    #[test]
    fn exit_codes() {
        assert_eq!(
            classify_exit_code(ProviderKind::Gemini, 41),
            Some(ErrorClass::Auth)
        );
        assert_eq!(
            classify_exit_code(ProviderKind::Gemini, 42),
            Some(ErrorClass::Usage)
        );
        assert_eq!(
            classify_exit_code(ProviderKind::Gemini, 52),
            Some(ErrorClass::Usage)
        );
        assert_eq!(
            classify_exit_code(ProviderKind::Gemini, 53),
            Some(ErrorClass::TurnLimit)
        );
        assert_eq!(
            classify_exit_code(ProviderKind::Gemini, 55),
            Some(ErrorClass::Usage)
        );
        assert_eq!(
            classify_exit_code(ProviderKind::Gemini, 173),
            Some(ErrorClass::RateLimited)
        );
        assert_eq!(
            classify_exit_code(ProviderKind::Gemini, 247),
            Some(ErrorClass::Overloaded)
        );
        assert_eq!(
            classify_exit_code(ProviderKind::Gemini, 244),
            Some(ErrorClass::Overloaded)
        );
        assert_eq!(classify_exit_code(ProviderKind::Gemini, 1), None);
        assert_eq!(
            classify_exit_code(ProviderKind::Codex, 2),
            Some(ErrorClass::Usage)
        );
        assert_eq!(classify_exit_code(ProviderKind::Claude, 41), None);
    }
}
