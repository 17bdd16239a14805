//! Reading one config layer and checking each value against its key's kind; then resolving
//! the merged layers into a [`Config`]. Values are kept in one normal JSON form per kind so the
//! layers merge by plain replacement.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Map, Value};

use super::keys::{self, KEYS, KeySpec, Kind};
use super::{Config, ConfigError, JitterSetting, Source};
use crate::outcome::Outcome;

/// One file's validated values, each with its `file:line` origin.
pub struct FileLayer {
    pub values: Vec<(String, (Value, String))>,
}

pub fn read_file(path: &Path, warnings: &mut Vec<String>) -> Result<FileLayer, ConfigError> {
    let read_err = |source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    };
    let bytes = crate::bounded_read::read_regular(path, crate::bounded_read::MAX_FILE_BYTES)
        .map_err(read_err)?;
    let text = String::from_utf8(bytes).map_err(|_| {
        read_err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "not valid UTF-8",
        ))
    })?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    let parsed: Value = serde_json::from_str(text).map_err(|e| ConfigError::Syntax {
        path: path.to_path_buf(),
        line: e.line(),
        column: e.column(),
        message: strip_position(&e.to_string()),
    })?;
    let Value::Object(map) = parsed else {
        return Err(ConfigError::NotObject {
            path: path.to_path_buf(),
            found: json_type(&parsed),
        });
    };
    let lines = top_level_key_lines(text);
    let mut values = Vec::new();
    for (key, v) in map {
        let line = lines.get(&key).copied().unwrap_or(1);
        let origin = format!("{}:{line}", path.display());
        let Some(spec) = keys::spec(&key) else {
            warnings.push(format!(
                "{origin}: unknown key \"{key}\" is ignored{}",
                did_you_mean(&key, "", false)
            ));
            continue;
        };
        let v = normalize(spec, v, &origin)?;
        values.push((key, (v, origin)));
    }
    Ok(FileLayer { values })
}

/// serde_json appends " at line L column C"; the position is already in our own prefix.
fn strip_position(msg: &str) -> String {
    match msg.rfind(" at line ") {
        Some(i) => msg[..i].to_string(),
        None => msg.to_string(),
    }
}

/// The 1-based line of each key of the top-level object. serde_json does not keep positions,
/// so this is a small scanner that follows strings and nesting depth.
pub fn top_level_key_lines(text: &str) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    let mut depth = 0usize;
    let mut line = 1usize;
    let mut chars = text.chars().peekable();
    let mut last_string: Option<(String, usize)> = None;
    while let Some(c) = chars.next() {
        match c {
            '\n' => line += 1,
            '{' | '[' => {
                depth += 1;
                last_string = None;
            }
            '}' | ']' => {
                depth = depth.saturating_sub(1);
                last_string = None;
            }
            '"' => {
                let start_line = line;
                let mut s = String::new();
                while let Some(c) = chars.next() {
                    match c {
                        '\\' => {
                            if let Some(n) = chars.next() {
                                s.push(n);
                            }
                        }
                        '"' => break,
                        '\n' => {
                            line += 1;
                            s.push(c);
                        }
                        _ => s.push(c),
                    }
                }
                last_string = Some((s, start_line));
            }
            ':' => {
                if depth == 1
                    && let Some((key, l)) = last_string.take()
                {
                    out.entry(key).or_insert(l);
                }
            }
            c if c.is_whitespace() => {}
            _ => last_string = None,
        }
    }
    out
}

pub fn did_you_mean(key: &str, prefix: &str, upper: bool) -> String {
    let best = KEYS
        .iter()
        .map(|k| (strsim::jaro_winkler(key, k.name), k.name))
        .filter(|(score, _)| *score >= 0.85)
        .max_by(|a, b| a.0.total_cmp(&b.0));
    match best {
        Some((_, name)) => {
            let name = if upper {
                name.to_ascii_uppercase()
            } else {
                name.to_string()
            };
            format!(" (did you mean \"{prefix}{name}\"?)")
        }
        None => String::new(),
    }
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn invalid(origin: &str, key: &str, message: String) -> ConfigError {
    ConfigError::Invalid {
        origin: origin.to_string(),
        key: key.to_string(),
        message,
    }
}

fn show(v: &Value) -> String {
    let s = v.to_string();
    if s.len() > 60 {
        format!("{}…", &s[..s.floor_char_boundary(60)])
    } else {
        s
    }
}

/// A string from the environment, turned into the JSON a file would hold for that key.
pub fn from_env(spec: &KeySpec, raw: &str, origin: &str) -> Result<Value, ConfigError> {
    let trimmed = raw.trim();
    let json = |what: &str| {
        serde_json::from_str::<Value>(trimmed).map_err(|e| {
            invalid(
                origin,
                spec.name,
                format!("expected {what} as JSON, got {raw:?} ({e})"),
            )
        })
    };
    Ok(match spec.kind {
        Kind::Str | Kind::Path | Kind::PromptTemplate | Kind::LogTemplate => {
            Value::String(raw.to_string())
        }
        Kind::OptStr => {
            if trimmed.is_empty() || trimmed == "null" {
                Value::Null
            } else {
                Value::String(raw.to_string())
            }
        }
        Kind::Bool => match trimmed.to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => Value::Bool(true),
            "false" | "0" | "no" | "off" => Value::Bool(false),
            _ => {
                return Err(invalid(
                    origin,
                    spec.name,
                    format!("expected true or false, got {raw:?}"),
                ));
            }
        },
        Kind::UInt { .. } | Kind::Float { .. } | Kind::OptUInt | Kind::OptUsd => {
            if trimmed == "null"
                || (matches!(spec.kind, Kind::OptUInt | Kind::OptUsd) && trimmed.is_empty())
            {
                Value::Null
            } else {
                json("a number")?
            }
        }
        Kind::Duration | Kind::OptDuration | Kind::Jitter => {
            if trimmed == "null" || trimmed.is_empty() {
                Value::Null
            } else if let Ok(n) = trimmed.parse::<f64>() {
                serde_json::Number::from_f64(n)
                    .map(Value::Number)
                    .unwrap_or(Value::String(raw.to_string()))
            } else {
                Value::String(trimmed.to_string())
            }
        }
        Kind::StrList | Kind::OutcomeList => {
            if trimmed.starts_with('[') {
                json("a list")?
            } else {
                Value::Array(
                    trimmed
                        .split(',')
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(|s| Value::String(s.to_string()))
                        .collect(),
                )
            }
        }
        Kind::Argv | Kind::OptArgv => {
            if trimmed.starts_with('[') {
                json("an argv array")?
            } else if trimmed.is_empty() && spec.kind == Kind::OptArgv {
                Value::Null
            } else {
                Value::Array(
                    trimmed
                        .split_whitespace()
                        .map(|s| Value::String(s.to_string()))
                        .collect(),
                )
            }
        }
        Kind::Object | Kind::Prices => json("an object")?,
        Kind::Webhooks => {
            if trimmed.starts_with('[') {
                json("a list")?
            } else {
                Value::Array(
                    trimmed
                        .split(',')
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(|s| Value::String(s.to_string()))
                        .collect(),
                )
            }
        }
    })
}

/// Checks a value against its key's kind and returns its normal form.
pub fn normalize(spec: &KeySpec, v: Value, origin: &str) -> Result<Value, ConfigError> {
    let key = spec.name;
    let bad = |expected: &str, v: &Value| {
        invalid(
            origin,
            key,
            format!("expected {expected}, got {} {}", json_type(v), show(v)),
        )
    };
    match spec.kind {
        Kind::Str | Kind::Path => match &v {
            Value::String(s) if !s.is_empty() || key.ends_with("prompt") => Ok(v),
            Value::String(_) => Err(invalid(origin, key, "must not be empty".into())),
            _ => Err(bad("a string", &v)),
        },
        Kind::OptStr => match &v {
            Value::String(s) if s.is_empty() => Ok(Value::Null),
            Value::String(_) | Value::Null => Ok(v),
            _ => Err(bad("a string or null", &v)),
        },
        Kind::PromptTemplate => match &v {
            Value::String(s) => {
                crate::prompt::validate_template(s)
                    .map_err(|e| invalid(origin, key, e.to_string()))?;
                Ok(v)
            }
            _ => Err(bad("a string", &v)),
        },
        Kind::LogTemplate => match &v {
            Value::String(s) => {
                validate_log_template(s).map_err(|m| invalid(origin, key, m))?;
                Ok(v)
            }
            _ => Err(bad("a string such as \"task_{index}.log\"", &v)),
        },
        Kind::Bool => match v {
            Value::Bool(_) => Ok(v),
            _ => Err(bad("true or false", &v)),
        },
        Kind::UInt { min } => {
            let n = whole_number(&v).ok_or_else(|| bad(&format!("a whole number ≥ {min}"), &v))?;
            if n < min as i128 || n > u32::MAX as i128 {
                return Err(invalid(
                    origin,
                    key,
                    format!("must be a whole number ≥ {min}, got {n}"),
                ));
            }
            Ok(Value::from(n as u64))
        }
        Kind::OptUInt => {
            if v.is_null() {
                return Ok(v);
            }
            let n = whole_number(&v).ok_or_else(|| bad("a whole number ≥ 1 or null", &v))?;
            if !(1..=u32::MAX as i128).contains(&n) {
                return Err(invalid(
                    origin,
                    key,
                    format!("must be a whole number ≥ 1 or null, got {n}"),
                ));
            }
            Ok(Value::from(n as u64))
        }
        Kind::Float { min } => {
            let n = v
                .as_f64()
                .ok_or_else(|| bad(&format!("a number ≥ {min}"), &v))?;
            if !n.is_finite() || n < min {
                return Err(invalid(
                    origin,
                    key,
                    format!("must be a number ≥ {min}, got {n}"),
                ));
            }
            Ok(Value::from(n))
        }
        Kind::OptUsd => {
            if v.is_null() {
                return Ok(v);
            }
            let n = v
                .as_f64()
                .ok_or_else(|| bad("an amount of US dollars such as 5 or 2.50, or null", &v))?;
            if !n.is_finite() || n <= 0.0 {
                return Err(invalid(
                    origin,
                    key,
                    format!("must be more than 0 US dollars (or null for no limit), got {n}"),
                ));
            }
            Ok(Value::from(n))
        }
        Kind::Prices => {
            let example = "{\"gpt-5-codex\": {\"input\": 1.25, \"cached_input\": 0.125, \"output\": 10}} (USD per million tokens)";
            let Value::Object(m) = &v else {
                return Err(bad(&format!("an object such as {example}"), &v));
            };
            for (name, entry) in m {
                let price: crate::cost::Price = serde_json::from_value(entry.clone())
                    .map_err(|e| {
                        invalid(
                            origin,
                            &format!("{key}.{name}"),
                            format!("{e}; expected {{\"input\": N, \"cached_input\": N, \"output\": N}} in USD per million tokens (cached_input optional)"),
                        )
                    })?;
                let fields = [
                    ("input", Some(price.input)),
                    ("cached_input", price.cached_input),
                    ("output", Some(price.output)),
                ];
                for (field, x) in fields {
                    if let Some(x) = x
                        && (!x.is_finite() || x < 0.0)
                    {
                        return Err(invalid(
                            origin,
                            &format!("{key}.{name}.{field}"),
                            format!("must be a price of 0 or more USD per million tokens, got {x}"),
                        ));
                    }
                }
            }
            Ok(v)
        }
        Kind::Duration | Kind::OptDuration => {
            let optional = spec.kind == Kind::OptDuration;
            if v.is_null() {
                return if optional {
                    Ok(Value::Null)
                } else {
                    Err(bad("a duration such as 5, 0.2, \"500ms\" or \"5m\"", &v))
                };
            }
            let d = match &v {
                Value::Number(n) => {
                    let secs = n.as_f64().unwrap_or(f64::NAN);
                    if !secs.is_finite() || secs < 0.0 {
                        return Err(invalid(
                            origin,
                            key,
                            format!("a duration cannot be negative, got {n}"),
                        ));
                    }
                    Duration::try_from_secs_f64(secs)
                        .map_err(|_| invalid(origin, key, format!("duration out of range: {n}")))?
                }
                Value::String(s) => parse_duration(s).map_err(|m| invalid(origin, key, m))?,
                _ => return Err(bad("a duration such as 5, 0.2, \"500ms\" or \"5m\"", &v)),
            };
            if optional && d.is_zero() {
                return Ok(Value::Null);
            }
            if let Some(max) = spec.max
                && d > max
            {
                return Err(invalid(
                    origin,
                    key,
                    format!(
                        "at most {} is allowed, got {}",
                        human_duration(max),
                        show(&v)
                    ),
                ));
            }
            Ok(Value::from(d.as_secs_f64()))
        }
        Kind::StrList => string_list(&v)
            .map(|_| v.clone())
            .ok_or_else(|| bad("an array of strings", &v)),
        Kind::Argv | Kind::OptArgv => {
            if v.is_null() && spec.kind == Kind::OptArgv {
                return Ok(v);
            }
            match string_list(&v) {
                Some(list) if !list.is_empty() && !list[0].is_empty() => Ok(v),
                Some(_) => Err(invalid(
                    origin,
                    key,
                    "must name an executable: the array is empty".into(),
                )),
                None => Err(bad("an array of strings such as [\"codex\", \"exec\"]", &v)),
            }
        }
        Kind::Object => match v {
            Value::Object(_) => Ok(v),
            _ => Err(bad("an object { ... }", &v)),
        },
        Kind::Webhooks => {
            let items = match &v {
                Value::Null => return Ok(Value::Array(Vec::new())),
                Value::Array(a) => a,
                _ => return Err(bad("an array of webhook URLs", &v)),
            };
            let mut out = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                let t = crate::webhook::WebhookTarget::from_value(item)
                    .map_err(|m| invalid(origin, key, format!("entry {}: {m}", i + 1)))?;
                out.push(t.to_value());
            }
            Ok(Value::Array(out))
        }
        Kind::Jitter => {
            let allowed = "none, full, decorrelated, or a ratio between 0 and 1 such as 0.2";
            match &v {
                Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
                    "none" | "full" | "decorrelated" => {
                        Ok(Value::String(s.trim().to_ascii_lowercase()))
                    }
                    other => match other.parse::<f64>() {
                        Ok(r) if (0.0..=1.0).contains(&r) => Ok(Value::from(r)),
                        _ => Err(invalid(
                            origin,
                            key,
                            format!("must be {allowed}, got {s:?}"),
                        )),
                    },
                },
                Value::Number(n) => match n.as_f64() {
                    Some(r) if (0.0..=1.0).contains(&r) => Ok(Value::from(r)),
                    _ => Err(invalid(origin, key, format!("must be {allowed}, got {n}"))),
                },
                _ => Err(bad(allowed, &v)),
            }
        }
        Kind::OutcomeList => {
            let list = string_list(&v).ok_or_else(|| bad("an array of outcome names", &v))?;
            for name in &list {
                let Some(o) = Outcome::parse(name) else {
                    return Err(invalid(
                        origin,
                        key,
                        format!(
                            "unknown outcome {name:?}; allowed: {}",
                            Outcome::ALL.map(|o| o.as_str()).join(", ")
                        ),
                    ));
                };
                if NEVER_RETRIED.contains(&o) {
                    return Err(invalid(
                        origin,
                        key,
                        format!("{name:?} is never retried: retrying cannot help (remove it)"),
                    ));
                }
            }
            Ok(v)
        }
    }
}

/// Outcomes no retry can fix, or that are not failures at all.
const NEVER_RETRIED: &[Outcome] = &[
    Outcome::Success,
    Outcome::NoProgress,
    Outcome::SpawnFailed,
    Outcome::Auth,
    Outcome::Usage,
    Outcome::Stopped,
    Outcome::RateLimited,
];

fn whole_number(v: &Value) -> Option<i128> {
    match v {
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                Some(i as i128)
            } else if let Some(u) = n.as_u64() {
                Some(u as i128)
            } else {
                let f = n.as_f64()?;
                (f.fract() == 0.0 && f.abs() < 1e18).then_some(f as i128)
            }
        }
        _ => None,
    }
}

fn string_list(v: &Value) -> Option<Vec<String>> {
    v.as_array()?
        .iter()
        .map(|x| x.as_str().map(str::to_string))
        .collect()
}

/// A duration maximum as people write it: `7 days`, `1 hour`, `90 s`.
pub fn human_duration(d: Duration) -> String {
    let secs = d.as_secs();
    let unit = |n: u64, one: &str| format!("{n} {one}{}", if n == 1 { "" } else { "s" });
    if secs >= 86_400 && secs.is_multiple_of(86_400) && d.subsec_nanos() == 0 {
        unit(secs / 86_400, "day")
    } else if secs >= 3600 && secs.is_multiple_of(3600) && d.subsec_nanos() == 0 {
        unit(secs / 3600, "hour")
    } else {
        format!("{} s", d.as_secs_f64())
    }
}

/// Seconds (`"5"`, `"0.2"`) or humane strings (`"500ms"`, `"5m"`, `"1h 30m"`, `"8h"`).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    if t.is_empty() {
        return Err("empty duration; use seconds such as 5 or a string such as \"5m\"".into());
    }
    if let Ok(secs) = t.parse::<f64>() {
        if !secs.is_finite() || secs < 0.0 {
            return Err(format!("a duration cannot be negative, got {t}"));
        }
        return Duration::try_from_secs_f64(secs)
            .map_err(|_| format!("duration out of range: {t}"));
    }
    if t.starts_with('-') {
        return Err(format!("a duration cannot be negative, got {t:?}"));
    }
    humantime::parse_duration(t).map_err(|e| {
        format!("{t:?} is not a duration ({e}); use seconds such as 0.5 or a string such as \"500ms\", \"5m\", \"1h30m\"")
    })
}

const LOG_TEMPLATE_VARS: &[&str] = &["index", "attempt", "iteration", "spec_name", "timestamp"];

fn validate_log_template(s: &str) -> Result<(), String> {
    if s.contains('/') || s.contains('\\') {
        return Err(format!("{s:?} must be a file name, without directories"));
    }
    let mut rest = s;
    while let Some(open) = rest.find('{') {
        let after = &rest[open + 1..];
        let close = after
            .find('}')
            .ok_or_else(|| format!("unclosed '{{' in {s:?}"))?;
        let var = &after[..close];
        if !LOG_TEMPLATE_VARS.contains(&var) {
            return Err(format!(
                "unknown variable {{{var}}} in {s:?}; allowed: {}",
                LOG_TEMPLATE_VARS
                    .iter()
                    .map(|v| format!("{{{v}}}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        rest = &after[close + 1..];
    }
    Ok(())
}

fn expand_home(s: &str, home: Option<&Path>) -> PathBuf {
    match (s.strip_prefix('~'), home) {
        (Some(""), Some(h)) => h.to_path_buf(),
        (Some(rest), Some(h)) if rest.starts_with('/') => h.join(&rest[1..]),
        _ => PathBuf::from(s),
    }
}

/// Builds the typed config from merged normal-form values, and checks rules that span keys.
pub fn resolve(
    values: Map<String, Value>,
    sources: BTreeMap<String, Source>,
    warnings: Vec<String>,
    home: Option<&Path>,
    origin_of: &dyn Fn(&str) -> String,
) -> Result<Config, ConfigError> {
    let get = |k: &str| values.get(k).cloned().unwrap_or(Value::Null);
    let s = |k: &str| get(k).as_str().unwrap_or_default().to_string();
    let opt_s = |k: &str| get(k).as_str().map(str::to_string);
    let n = |k: &str| get(k).as_u64().unwrap_or_default();
    let f = |k: &str| get(k).as_f64().unwrap_or_default();
    let d = |k: &str| Duration::from_secs_f64(get(k).as_f64().unwrap_or_default());
    let opt_d = |k: &str| get(k).as_f64().map(Duration::from_secs_f64);
    let list = |k: &str| string_list(&get(k)).unwrap_or_default();
    let path = |k: &str| expand_home(&s(k), home);

    let retry_backoff = d("retry_backoff_seconds");
    let retry_max_backoff = d("retry_max_backoff_seconds");
    if retry_max_backoff < retry_backoff {
        return Err(invalid(
            &origin_of("retry_max_backoff_seconds"),
            "retry_max_backoff_seconds",
            format!(
                "the cap ({} s) is below retry_backoff_seconds ({} s, from {}); it must be at least the initial delay",
                retry_max_backoff.as_secs_f64(),
                retry_backoff.as_secs_f64(),
                origin_of("retry_backoff_seconds"),
            ),
        ));
    }
    let retry_jitter = match get("retry_jitter") {
        Value::String(j) if j == "none" => JitterSetting::None,
        Value::String(j) if j == "full" => JitterSetting::Full,
        Value::String(_) => JitterSetting::Decorrelated,
        v => JitterSetting::Ratio(v.as_f64().unwrap_or_default()),
    };
    let retry_on = list("retry_on")
        .iter()
        .filter_map(|o| Outcome::parse(o))
        .collect::<BTreeSet<_>>();
    let codex_config_overrides = match get("codex_config_overrides") {
        Value::Object(m) => m.into_iter().collect(),
        _ => BTreeMap::new(),
    };
    let providers = match get("providers") {
        Value::Object(m) => m,
        _ => Map::new(),
    };
    let cols = n("tui_min_terminal_cols").min(u16::MAX as u64) as u16;
    let rows = n("tui_min_terminal_rows").min(u16::MAX as u64) as u16;
    Ok(Config {
        repos_root: path("repos_root"),
        spec_workflow_dir_name: s("spec_workflow_dir_name"),
        specs_subdir: s("specs_subdir"),
        tasks_filename: s("tasks_filename"),
        include_optional_tasks: get("include_optional_tasks").as_bool().unwrap_or_default(),
        provider: s("provider"),
        model: opt_s("model"),
        claude_command: list("claude_command"),
        codex_command: list("codex_command"),
        gemini_command: list("gemini_command"),
        providers,
        codex_config_overrides,
        prompt_template: s("prompt_template"),
        resume_prompt_template: s("resume_prompt_template"),
        resume_on_retry: get("resume_on_retry").as_bool().unwrap_or(true),
        result_grace: d("result_grace_seconds"),
        no_commit_limit: n("no_commit_limit") as u32,
        no_progress_limit: n("no_progress_limit") as u32,
        log_dir_name: s("log_dir_name"),
        log_file_template: s("log_file_template"),
        ignore_dirs: list("ignore_dirs"),
        cache_dir: path("cache_dir"),
        cache_max_age_days: n("cache_max_age_days"),
        activity_timeout: opt_d("activity_timeout_seconds"),
        iteration_timeout: opt_d("iteration_timeout_seconds"),
        stop_grace: d("stop_grace_seconds"),
        retry_on_crash: get("retry_on_crash").as_bool().unwrap_or(true),
        retry_max_retries: n("retry_max_retries") as u32,
        retry_backoff,
        retry_backoff_multiplier: f("retry_backoff_multiplier"),
        retry_max_backoff,
        retry_jitter,
        retry_on,
        retry_log_dir: path("retry_log_dir"),
        rate_limit_wait: d("rate_limit_wait_seconds"),
        rate_limit_jitter: d("rate_limit_jitter_seconds"),
        max_iterations: get("max_iterations").as_u64().map(|v| v as u32),
        max_runtime: opt_d("max_runtime"),
        max_cost_usd: get("max_cost_usd").as_f64(),
        max_tokens: get("max_tokens").as_u64(),
        spec_budget_usd: get("spec_budget_usd").as_f64(),
        prices: serde_json::from_value(get("prices")).unwrap_or_default(),
        verify_command: string_list(&get("verify_command")),
        verify_timeout: d("verify_timeout_seconds"),
        notify_command: string_list(&get("notify_command")),
        notify_timeout: d("notify_timeout_seconds"),
        notify_webhooks: match get("notify_webhooks") {
            Value::Array(a) => a
                .iter()
                .filter_map(|v| crate::webhook::WebhookTarget::from_value(v).ok())
                .collect(),
            _ => Vec::new(),
        },
        max_concurrent_agents: u32::try_from(n("max_concurrent_agents")).unwrap_or(u32::MAX),
        account: s("account"),
        retry_budget_per_hour: u32::try_from(n("retry_budget_per_hour")).unwrap_or(u32::MAX),
        tui_refresh: d("tui_refresh_seconds"),
        tui_log_tail_lines: n("tui_log_tail_lines") as usize,
        tui_min_terminal_cols: cols,
        tui_min_terminal_rows: rows,
        values,
        sources,
        warnings,
    })
}
