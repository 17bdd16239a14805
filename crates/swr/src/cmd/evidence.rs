//! `swr evidence SPEC`: every task of a spec with the evidence of its ticks (the verify check,
//! HEAD, empty ticks), and the lines `swr history --evidence` shares with it.

use serde::Serialize;
use swr_core::config::Config;
use swr_core::runner::machine::shell_words;
use swr_core::spec::{self, TaskStatus};
use swr_core::store::{NewTick, RunnerFilter, TickFilter, TickRecord, format_ts};

use crate::cli::EvidenceArgs;
use crate::exit::{self, ExitError};
use crate::style::Paint;
use crate::text::one_line as safe;

/// Output lines of a check shown under a tick.
const SHOWN_OUTPUT_LINES: usize = 3;

#[derive(Serialize)]
struct TaskEvidence<'a> {
    task_id: &'a str,
    title: &'a str,
    status: TaskStatus,
    evidence: Vec<&'a TickRecord>,
}

pub fn run(config: &Config, args: &EvidenceArgs) -> anyhow::Result<u8> {
    let store = super::runners::open_store(config)?;
    let project = match &args.project {
        Some(p) => super::resolve_project(config, p)?.path,
        None => {
            let mut projects: Vec<std::path::PathBuf> = store
                .runners(&RunnerFilter {
                    spec: Some(args.spec.clone()),
                    ..RunnerFilter::default()
                })?
                .into_iter()
                .map(|r| r.project)
                .collect();
            projects.sort();
            projects.dedup();
            match projects.len() {
                0 => {
                    return Err(ExitError::usage(format!(
                        "no run of a spec '{}' is recorded; pass --project to list its tasks",
                        args.spec
                    ))
                    .into());
                }
                1 => projects.remove(0),
                _ => {
                    return Err(ExitError::usage(format!(
                        "specs named '{}' ran in {} projects ({}); pass --project",
                        args.spec,
                        projects.len(),
                        projects
                            .iter()
                            .map(|p| p.display().to_string())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ))
                    .into());
                }
            }
        }
    };
    let list = spec::read_tasks(&config.tasks_path(&project, &args.spec))
        .map_err(|e| ExitError::usage(e.to_string()))?;
    let ticks = store.ticks(&TickFilter {
        project: Some(project.clone()),
        spec: Some(args.spec.clone()),
        ..TickFilter::default()
    })?;
    let tasks: Vec<TaskEvidence> = list
        .tasks
        .iter()
        .map(|t| TaskEvidence {
            task_id: &t.id,
            title: &t.title,
            status: t.status,
            evidence: ticks.iter().filter(|x| x.tick.task_id == t.id).collect(),
        })
        .collect();
    if args.json {
        println!("{}", serde_json::to_string_pretty(&tasks)?);
        return Ok(exit::OK);
    }
    let p = Paint::stdout();
    println!(
        "{} · {}",
        safe(&args.spec),
        p.dim(&safe(&project.display().to_string()))
    );
    for t in &tasks {
        println!(
            "[{}] {} {}",
            t.status.mark(),
            safe(t.task_id),
            safe(t.title)
        );
        if t.evidence.is_empty() {
            if t.status == TaskStatus::Done {
                println!(
                    "    {}",
                    p.dim("no tick recorded: done before swr ran it, or by hand")
                );
            }
            continue;
        }
        for x in &t.evidence {
            for line in tick_lines(&p, x) {
                println!("    {line}");
            }
        }
    }
    Ok(exit::OK)
}

/// A tick's evidence for people: when and by which attempt, whether it stands, the check and
/// the last lines of its output, HEAD, and the empty flag.
pub fn tick_lines(p: &Paint, x: &TickRecord) -> Vec<String> {
    let mut out = vec![format!(
        "{} {} · iteration {} attempt {} · {}",
        verdict(p, &x.tick),
        p.dim(&format_ts(x.at)),
        x.iteration,
        x.attempt,
        x.tick
            .head
            .as_deref()
            .map(|h| format!("HEAD {}", safe(&h.chars().take(12).collect::<String>())))
            .unwrap_or_else(|| "no HEAD".into())
    )];
    out.extend(check_lines(p, &x.tick));
    out
}

/// The same for a tick listed under its attempt (`swr history --evidence`).
pub fn tick_lines_short(p: &Paint, t: &NewTick) -> Vec<String> {
    let mut out = vec![format!(
        "task {}{}: {}",
        safe(&t.task_id),
        t.title
            .as_deref()
            .map(|s| format!(" {}", safe(s)))
            .unwrap_or_default(),
        verdict(p, t)
    )];
    out.extend(check_lines(p, t).into_iter().map(|l| format!("  {l}")));
    out
}

fn verdict(p: &Paint, t: &NewTick) -> String {
    let mut v = if t.accepted {
        p.green("accepted")
    } else {
        p.red("rejected: put back to in progress")
    };
    if t.empty == Some(true) {
        v.push_str(&format!(
            " · {}",
            p.yellow("empty: its attempt changed nothing but tasks.md")
        ));
    }
    v
}

fn check_lines(p: &Paint, t: &NewTick) -> Vec<String> {
    let Some(c) = &t.check else {
        return vec![p.dim("no verify check")];
    };
    // The command comes from tasks.md and its output from the project: neither may drive
    // the terminal.
    let mut out = vec![format!(
        "verify `{}` ({}): {}, {:.1}s",
        safe(&shell_words(&c.command)),
        safe(&c.source),
        safe(&c.describe_end()),
        c.duration_ms as f64 / 1000.0
    )];
    let lines: Vec<&str> = c.output_tail.lines().collect();
    for l in &lines[lines.len().saturating_sub(SHOWN_OUTPUT_LINES)..] {
        out.push(format!("| {}", p.dim(&safe(l))));
    }
    if let Some(log) = &c.log_path {
        out.push(p.dim(&format!("output: {}", safe(&log.display().to_string()))));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use swr_core::store::Check;

    /// A check's output and a task's title come from the project: they are shown, never obeyed.
    #[test]
    fn evidence_lines_escape_what_the_project_printed() {
        let t = NewTick {
            task_id: "1".into(),
            title: Some("Title\u{1b}]0;owned\u{7}".into()),
            head: None,
            empty: Some(true),
            accepted: false,
            check: Some(Check {
                command: vec!["sh".into(), "-c".into(), "printf '\\033[2J'".into()],
                source: "task".into(),
                exit_code: Some(1),
                signal: None,
                timed_out: false,
                duration_ms: 10,
                output_tail: "ok\n\u{1b}[2Jcleared".into(),
                log_path: None,
            }),
        };
        let lines = tick_lines_short(&Paint { on: false }, &t);
        let all = lines.join("\n");
        assert!(!all.contains('\u{1b}') && !all.contains('\u{7}'), "{all:?}");
        assert!(all.contains("\\x1b[2Jcleared"), "{all}");
        assert!(all.contains("rejected") && all.contains("empty"), "{all}");
        assert!(all.contains("exit 1"), "{all}");
    }
}
