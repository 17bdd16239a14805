//! Verified ticks: which command checks a ticked task, and running it.
//!
//! The command of a task is the first of: its own `_Verify: <command>_` line in tasks.md; the
//! `verify` entry of the spec's own config (`<spec dir>/swr.json`); the `verify_command` key.
//! A task with none of them is accepted as ticked. The command runs in the project (argv,
//! never a shell) in its own process group, killed with that group after its timeout.
//!
//! `_Verify:` lines are found here by a small scan of the lines under each task (from the
//! parsed task's line to the next task's), not by the tasks.md parser: the parser never needs
//! them, and this keeps them out of its rules.
//!
//! Deciding what a failing check means for the run is the machine's job; this module resolves
//! and runs commands, and says how they ended.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::spec::TaskList;
use crate::store::Check;
use crate::supervise::{self, AttemptExit, ExitReport};

/// The spec's own config file, next to its tasks.md.
pub const SPEC_CONFIG_FILE: &str = "swr.json";

/// Lines of a check's output kept in the evidence and in the next prompt.
const TAIL_LINES: usize = 40;
/// The same tail, in bytes at most (the end is kept).
const TAIL_BYTES: usize = 4000;

/// A command and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyCommand {
    pub argv: Vec<String>,
    /// `task`, `spec` or `config`.
    pub source: &'static str,
}

/// `<spec dir>/swr.json`: `{"verify": ["cargo", "test"] | "cargo test",
/// "verify_timeout_seconds": 300}`. Both optional.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SpecConfig {
    pub verify: Option<Vec<String>>,
    pub verify_timeout: Option<Duration>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSpecConfig {
    #[serde(default)]
    verify: Option<ArgvOrLine>,
    #[serde(default)]
    verify_timeout_seconds: Option<f64>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum ArgvOrLine {
    Argv(Vec<String>),
    Line(String),
}

/// Reads the spec's `swr.json`; `Ok(default)` when there is none. The error names the file
/// and says what is allowed.
pub fn read_spec_config(spec_dir: &Path) -> Result<SpecConfig, String> {
    let path = spec_dir.join(SPEC_CONFIG_FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(SpecConfig::default()),
        Err(e) => return Err(format!("{}: {e}", path.display())),
    };
    let allowed = "expected {\"verify\": [\"cargo\", \"test\"] or \"cargo test\", \"verify_timeout_seconds\": 600}";
    let raw: RawSpecConfig =
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}; {allowed}", path.display()))?;
    let verify = match raw.verify {
        None => None,
        Some(ArgvOrLine::Argv(a)) => Some(a),
        Some(ArgvOrLine::Line(l)) => {
            Some(split_words(&l).map_err(|e| format!("{}: \"verify\": {e}", path.display()))?)
        }
    };
    if verify
        .as_ref()
        .is_some_and(|a| a.first().is_none_or(|p| p.is_empty()))
    {
        return Err(format!(
            "{}: \"verify\" must name an executable; {allowed}",
            path.display()
        ));
    }
    let verify_timeout = match raw.verify_timeout_seconds {
        None => None,
        // The same bounds as the `verify_timeout_seconds` key.
        Some(s) if s.is_finite() && s > 0.0 && s <= 86_400.0 => Duration::try_from_secs_f64(s).ok(),
        Some(s) => {
            return Err(format!(
                "{}: \"verify_timeout_seconds\" must be more than 0 and at most 86400 (1 day), got {s}",
                path.display()
            ));
        }
    };
    Ok(SpecConfig {
        verify,
        verify_timeout,
    })
}

/// Each task's `_Verify: <command>_` line (the text between `_Verify:` and the closing `_`),
/// found among the lines from the task's own line to the next task's.
pub fn task_verify_lines(text: &str, list: &TaskList) -> BTreeMap<String, String> {
    let lines: Vec<&str> = text.lines().collect();
    let mut starts: Vec<(usize, &str)> =
        list.tasks.iter().map(|t| (t.line, t.id.as_str())).collect();
    starts.sort();
    let mut out = BTreeMap::new();
    for (i, (line, id)) in starts.iter().enumerate() {
        let end = starts
            .get(i + 1)
            .map_or(lines.len(), |(next, _)| next.saturating_sub(1));
        let from = (*line).min(lines.len());
        for l in &lines[from..end.max(from)] {
            let t = l.trim_start();
            let t = t
                .strip_prefix("- ")
                .or_else(|| t.strip_prefix("* "))
                .map(str::trim_start)
                .unwrap_or(t);
            if let Some(rest) = t.strip_prefix("_Verify:") {
                let rest = rest.trim();
                let cmd = rest.strip_suffix('_').unwrap_or(rest).trim();
                if !cmd.is_empty() {
                    out.entry(id.to_string()).or_insert_with(|| cmd.to_string());
                }
                break;
            }
        }
    }
    out
}

/// Splits a command line into words like a POSIX shell, without any expansion: blanks separate
/// words, `'…'` and `"…"` quote, `\` escapes the next character. For pipes or `&&`, write
/// `sh -c '…'`.
pub fn split_words(line: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(x) => cur.push(x),
                        None => return Err(format!("unclosed ' in {line:?}")),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(x @ ('"' | '\\' | '$' | '`')) => cur.push(x),
                            Some(x) => {
                                cur.push('\\');
                                cur.push(x);
                            }
                            None => return Err(format!("unclosed \" in {line:?}")),
                        },
                        Some(x) => cur.push(x),
                        None => return Err(format!("unclosed \" in {line:?}")),
                    }
                }
            }
            '\\' => {
                in_word = true;
                if let Some(x) = chars.next() {
                    cur.push(x);
                }
            }
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    if words.is_empty() {
        return Err("empty command".into());
    }
    Ok(words)
}

/// The command of each task, grouped: one run per distinct command, with the tasks it
/// covers, in the order of `tasks`. Tasks without any command are left out. A `_Verify:` line
/// that cannot be split is a check that fails with the reason as its output.
pub fn plan(
    tasks: &[String],
    task_lines: &BTreeMap<String, String>,
    spec: Option<&[String]>,
    config: Option<&[String]>,
) -> Vec<(Result<VerifyCommand, String>, Vec<String>)> {
    let mut out: Vec<(Result<VerifyCommand, String>, Vec<String>)> = Vec::new();
    for id in tasks {
        let cmd = if let Some(line) = task_lines.get(id) {
            split_words(line)
                .map(|argv| VerifyCommand {
                    argv,
                    source: "task",
                })
                .map_err(|e| format!("task {id}: _Verify: {e}"))
        } else if let Some(a) = spec {
            Ok(VerifyCommand {
                argv: a.to_vec(),
                source: "spec",
            })
        } else if let Some(a) = config {
            Ok(VerifyCommand {
                argv: a.to_vec(),
                source: "config",
            })
        } else {
            continue;
        };
        match out.iter_mut().find(|(c, _)| *c == cmd) {
            Some((_, ids)) => ids.push(id.clone()),
            None => out.push((cmd, vec![id.clone()])),
        }
    }
    out
}

/// A check that could not run (a `_Verify:` line swr cannot split): it fails, and says why.
pub fn unrunnable(line_error: String) -> Check {
    Check {
        command: Vec::new(),
        source: "task".into(),
        exit_code: None,
        signal: None,
        timed_out: false,
        duration_ms: 0,
        output_tail: line_error,
        log_path: None,
    }
}

/// How a check ended, from the supervisor's report.
pub fn check_from_report(cmd: &VerifyCommand, r: &ExitReport, log_path: Option<PathBuf>) -> Check {
    let mut tail: Vec<&str> = r.tail.iter().map(|(_, l)| l.as_str()).collect();
    if tail.len() > TAIL_LINES {
        tail.drain(..tail.len() - TAIL_LINES);
    }
    let mut output_tail = tail.join("\n");
    if output_tail.len() > TAIL_BYTES {
        let cut = output_tail.ceil_char_boundary(output_tail.len() - TAIL_BYTES);
        output_tail = format!("…{}", &output_tail[cut..]);
    }
    if let AttemptExit::SpawnFailed(e) = &r.exit {
        output_tail = e.to_string();
    }
    Check {
        command: cmd.argv.clone(),
        source: cmd.source.to_string(),
        exit_code: r.raw_code,
        signal: r.raw_signal.map(supervise::signal_name),
        timed_out: matches!(r.exit, AttemptExit::TimedOut { .. }),
        duration_ms: u64::try_from(r.duration.as_millis()).unwrap_or(u64::MAX),
        output_tail,
        log_path,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn words_split_like_a_shell_without_expansion() {
        assert_eq!(
            split_words("cargo test -p auth").unwrap(),
            s(&["cargo", "test", "-p", "auth"])
        );
        assert_eq!(
            split_words(r#"sh -c 'cargo test && echo "$HOME"'"#).unwrap(),
            s(&["sh", "-c", r#"cargo test && echo "$HOME""#])
        );
        assert_eq!(
            split_words(r#"grep "a \"b\" c" x\ y ''"#).unwrap(),
            s(&["grep", r#"a "b" c"#, "x y", ""])
        );
        assert!(split_words("echo 'open").is_err());
        assert!(split_words("   ").is_err());
    }

    #[test]
    fn verify_lines_belong_to_the_task_above_them() {
        let text = "# Tasks\n\
            - [x] 1. One\n  - _Verify: cargo test -p one_\n\
            - [x] 2. Two\n  - _Requirements: 1_\n\
            - [ ] 3. Three\n  _Verify: make check_\n  - _Verify: ignored second line_\n";
        let list = crate::spec::parse(text);
        let v = task_verify_lines(text, &list);
        assert_eq!(v.get("1").map(String::as_str), Some("cargo test -p one"));
        assert_eq!(v.get("2"), None);
        assert_eq!(v.get("3").map(String::as_str), Some("make check"));
    }

    #[test]
    fn a_task_line_beats_the_spec_config_which_beats_the_key() {
        let lines: BTreeMap<String, String> = [("1".to_string(), "make one".to_string())]
            .into_iter()
            .collect();
        let spec = s(&["cargo", "test"]);
        let config = s(&["make", "check"]);
        let p = plan(&s(&["1", "2", "3"]), &lines, Some(&spec), Some(&config));
        assert_eq!(p.len(), 2);
        assert_eq!(p[0].0.as_ref().unwrap().argv, s(&["make", "one"]));
        assert_eq!(p[0].0.as_ref().unwrap().source, "task");
        assert_eq!(p[0].1, s(&["1"]));
        assert_eq!(p[1].0.as_ref().unwrap().source, "spec");
        assert_eq!(
            p[1].1,
            s(&["2", "3"]),
            "one run for the tasks sharing a command"
        );
        let p = plan(&s(&["2"]), &lines, None, Some(&config));
        assert_eq!(p[0].0.as_ref().unwrap().source, "config");
        assert!(plan(&s(&["2"]), &lines, None, None).is_empty());
    }

    #[test]
    fn the_spec_config_takes_an_argv_or_a_line_and_names_its_file_when_wrong() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read_spec_config(dir.path()).unwrap(), SpecConfig::default());
        std::fs::write(
            dir.path().join(SPEC_CONFIG_FILE),
            r#"{"verify": "cargo test -p 'my crate'", "verify_timeout_seconds": 30}"#,
        )
        .unwrap();
        let c = read_spec_config(dir.path()).unwrap();
        assert_eq!(c.verify, Some(s(&["cargo", "test", "-p", "my crate"])));
        assert_eq!(c.verify_timeout, Some(Duration::from_secs(30)));
        std::fs::write(dir.path().join(SPEC_CONFIG_FILE), r#"{"verfy": ["x"]}"#).unwrap();
        let e = read_spec_config(dir.path()).unwrap_err();
        assert!(e.contains("swr.json") && e.contains("unknown field"), "{e}");
        std::fs::write(dir.path().join(SPEC_CONFIG_FILE), r#"{"verify": []}"#).unwrap();
        assert!(
            read_spec_config(dir.path())
                .unwrap_err()
                .contains("executable")
        );
    }
}
