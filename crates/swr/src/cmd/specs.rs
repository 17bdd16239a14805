//! `swr specs`: projects and specs with task progress, as a table or JSON. Reads tasks.md
//! files; never writes anything.

use serde::Serialize;
use swr_core::config::Config;
use swr_core::spec::{self, ChecklistSummary, Project, SpecError, TaskCounts};

use super::{display_home, resolve_project};
use crate::cli::SpecsArgs;
use crate::exit::{CONFIG, ExitError, OK};
use crate::style::{Paint, progress_bar};
use crate::text::{NAME_MAX, clipped, lines, one_line as safe};

/// One spec, as printed by `swr specs --json`.
#[derive(Debug, Serialize)]
pub struct SpecRow {
    pub project: String,
    pub project_path: String,
    pub spec: String,
    pub path: String,
    pub tasks_path: String,
    /// False while the spec has no tasks file yet (its counts are then all 0).
    pub tasks_file_exists: bool,
    /// The tasks to work through: optional ones too when `include_optional_tasks` is set.
    #[serde(flatten)]
    pub counts: TaskCounts,
    /// Kiro's optional tasks (`- [ ]* …`) left out of the counts above (all 0 when
    /// `include_optional_tasks` folds them in).
    pub optional: TaskCounts,
    /// Unnumbered checkboxes in sections of their own ("Verification Checklist", "Phase 2
    /// (Future)"): listed with their own counts, never tasks.
    pub checklists: Vec<ChecklistSummary>,
    /// Problems found in the tasks file, each with its 1-based line when it has one.
    pub warnings: Vec<RowWarning>,
}

#[derive(Debug, Serialize)]
pub struct RowWarning {
    pub line: Option<usize>,
    pub message: String,
}

/// One row per spec. Only counts are read (no task is built), which keeps a listing of
/// large tasks.md files fast.
pub fn rows(projects: &[Project], include_optional: bool) -> Vec<SpecRow> {
    let mut out = Vec::new();
    for p in projects {
        for s in &p.specs {
            let mut optional = TaskCounts::default();
            let mut checklists = Vec::new();
            let (exists, counts, warnings) = match s.read_summary() {
                Ok(summary) => {
                    let counts = summary.counts_with(include_optional);
                    if !include_optional {
                        optional = summary.optional;
                    }
                    checklists = summary.checklists;
                    let warnings = summary
                        .warnings
                        .into_iter()
                        .map(|w| RowWarning {
                            line: Some(w.line),
                            message: w.message,
                        })
                        .collect();
                    (true, counts, warnings)
                }
                Err(SpecError::NotFound { .. }) => (false, TaskCounts::default(), Vec::new()),
                Err(e) => (
                    s.tasks_path.exists(),
                    TaskCounts::default(),
                    vec![RowWarning {
                        line: None,
                        message: format!("cannot read: {e}"),
                    }],
                ),
            };
            out.push(SpecRow {
                project: p.name.clone(),
                project_path: p.path.display().to_string(),
                spec: s.name.clone(),
                path: s.dir.display().to_string(),
                tasks_path: s.tasks_path.display().to_string(),
                tasks_file_exists: exists,
                counts,
                optional,
                checklists,
                warnings,
            });
        }
    }
    out
}

pub fn run(config: &Config, args: &SpecsArgs) -> anyhow::Result<u8> {
    let projects = match &args.project {
        Some(p) => vec![resolve_project(config, p)?],
        None => {
            if !config.repos_root.is_dir() {
                return Err(ExitError::new(
                    CONFIG,
                    format!(
                        "repos_root {} does not exist, so there are no projects to list; set \
                         \"repos_root\" in your config file (`swr config path` prints where it \
                         is) or SWR_REPOS_ROOT, or pass --project DIR",
                        config.repos_root.display()
                    ),
                )
                .into());
            }
            spec::discover_projects(&config.repos_root, &config.layout(), &config.ignore_dirs)?
        }
    };
    let mut projects = projects;
    swr_core::runner::worktree::redirect_tasks(&config.cache_dir, &mut projects, &config.layout());
    let mut rows = rows(&projects, config.include_optional_tasks);
    let summary = Summary::of(&projects, &rows);
    if args.unfinished {
        rows.retain(|r| r.counts.remaining() > 0);
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(OK);
    }
    let shown: Vec<&Project> = if args.unfinished {
        projects
            .iter()
            .filter(|p| {
                rows.iter()
                    .any(|r| r.project_path == p.path.display().to_string())
            })
            .collect()
    } else {
        projects.iter().collect()
    };
    print_table(config, &shown, &rows, &summary, args.unfinished);
    print_warnings(&rows);
    Ok(OK)
}

struct Summary {
    projects: usize,
    specs: usize,
    done: usize,
    left: usize,
    warnings: usize,
}

impl Summary {
    fn of(projects: &[Project], rows: &[SpecRow]) -> Summary {
        Summary {
            projects: projects.len(),
            specs: rows.len(),
            done: rows.iter().filter(|r| r.counts.is_complete()).count(),
            left: rows.iter().filter(|r| r.counts.remaining() > 0).count(),
            warnings: rows.iter().map(|r| r.warnings.len()).sum(),
        }
    }
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

fn print_table(
    config: &Config,
    projects: &[&Project],
    rows: &[SpecRow],
    summary: &Summary,
    unfinished: bool,
) {
    let paint = Paint::stdout();
    let layout_hint = format!(
        "{}/{}/<spec>/{}",
        config.spec_workflow_dir_name, config.specs_subdir, config.tasks_filename
    );
    if summary.projects == 0 {
        println!(
            "No projects under {}: a project is a directory holding {layout_hint}.",
            display_home(&config.repos_root)
        );
        println!("Create one there, set \"repos_root\" in your config, or pass --project DIR.");
        return;
    }
    if unfinished && rows.is_empty() {
        println!(
            "Nothing left to do: {} in {}, every task done.",
            plural(summary.specs, "spec", "specs"),
            plural(summary.projects, "project", "projects"),
        );
        return;
    }
    let name_w = rows
        .iter()
        .map(|r| clipped(&r.spec, NAME_MAX).chars().count())
        .max()
        .unwrap_or(0);
    let done_w = rows
        .iter()
        .map(|r| r.counts.done.to_string().len())
        .max()
        .unwrap_or(1);
    let total_w = rows
        .iter()
        .map(|r| r.counts.total.to_string().len())
        .max()
        .unwrap_or(1);
    for (i, p) in projects.iter().enumerate() {
        if i > 0 {
            println!();
        }
        println!(
            "{}  {}",
            paint.bold(&clipped(&p.name, NAME_MAX)),
            paint.dim(&safe(&display_home(&p.path)))
        );
        let path = p.path.display().to_string();
        let mine: Vec<&SpecRow> = rows.iter().filter(|r| r.project_path == path).collect();
        if mine.is_empty() {
            println!(
                "  {}",
                paint.yellow(&format!(
                    "no specs yet: create {}",
                    safe(&display_home(
                        &config
                            .specs_dir(&p.path)
                            .join("<spec>")
                            .join(&config.tasks_filename)
                    ))
                ))
            );
        }
        for r in mine {
            let c = r.counts;
            let bar = progress_bar(c.done, c.in_progress, c.total, 20);
            let bar = if c.is_complete() {
                paint.green(&bar)
            } else {
                paint.cyan(&bar)
            };
            let frac = format!("{:>done_w$}/{:<total_w$}", c.done, c.total);
            let pct = match (c.done * 100).checked_div(c.total) {
                Some(p) => format!("{p:>3}%"),
                None => "    ".to_string(),
            };
            let mut detail = Vec::new();
            if !r.tasks_file_exists {
                detail.push(paint.yellow(&format!("no {} yet", config.tasks_filename)));
            } else if c.total == 0 && r.optional.total > 0 {
                detail.push(paint.yellow(&format!("only optional tasks ({})", r.optional.total)));
            } else if c.total == 0 {
                detail.push(paint.yellow(&format!("no tasks in {}", config.tasks_filename)));
            } else if c.is_complete() {
                detail.push(paint.green("done"));
            } else {
                if c.in_progress > 0 {
                    detail.push(paint.yellow(&format!("{} in progress", c.in_progress)));
                }
                if c.pending > 0 {
                    detail.push(format!("{} pending", c.pending));
                }
                if c.blocked > 0 {
                    detail.push(paint.red(&format!("{} blocked", c.blocked)));
                }
            }
            let optional_left = r.optional.total - r.optional.done;
            if c.total > 0 && optional_left > 0 {
                detail.push(paint.dim(&format!("{optional_left} optional left")));
            }
            if !r.warnings.is_empty() {
                detail.push(paint.yellow(&plural(r.warnings.len(), "warning", "warnings")));
            }
            println!(
                "  {:name_w$}  {bar}  {frac} {pct}  {}",
                clipped(&r.spec, NAME_MAX),
                detail.join(" · ")
            );
        }
    }
    println!();
    let mut line = plural(summary.projects, "project", "projects");
    if summary.specs == 0 {
        line.push_str(", no specs yet");
    } else {
        line.push_str(&format!(
            ", {}: {} done, {} with work left",
            plural(summary.specs, "spec", "specs"),
            summary.done,
            summary.left
        ));
        let empty = summary.specs - summary.done - summary.left;
        if empty > 0 {
            line.push_str(&format!(", {empty} without tasks"));
        }
    }
    if unfinished && summary.done + (summary.specs - summary.done - summary.left) > 0 {
        line.push_str(" (the others hidden by --unfinished)");
    }
    if summary.warnings > 0 {
        line.push_str(&format!(
            "; {} in tasks files, on stderr",
            plural(summary.warnings, "warning", "warnings")
        ));
    }
    println!("{}", paint.dim(&format!("{line}.")));
}

/// tasks.md problems as `file:line: message`, the form editors and terminals jump to.
fn print_warnings(rows: &[SpecRow]) {
    const MAX_PER_FILE: usize = 5;
    for r in rows {
        let path = safe(&r.tasks_path);
        for w in r.warnings.iter().take(MAX_PER_FILE) {
            let message = lines(&w.message);
            match w.line {
                Some(line) => eprintln!("swr: warning: {path}:{line}: {message}"),
                None => eprintln!("swr: warning: {path}: {message}"),
            }
        }
        if r.warnings.len() > MAX_PER_FILE {
            eprintln!(
                "swr: warning: {path}: {} more (all of them: swr specs --json)",
                r.warnings.len() - MAX_PER_FILE
            );
        }
    }
}
