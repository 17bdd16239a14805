//! `swr specs`: projects and specs with task progress, as a table or JSON.

use serde::Serialize;
use swr_core::config::Config;
use swr_core::spec::{self, Project, SpecError, TaskCounts};

use super::{display_relative, resolve_project};
use crate::cli::SpecsArgs;
use crate::style::{Paint, progress_bar};

#[derive(Debug, Serialize)]
pub struct SpecRow {
    pub project: String,
    pub project_path: String,
    pub spec: String,
    pub path: String,
    pub tasks_path: String,
    #[serde(flatten)]
    pub counts: TaskCounts,
    /// `line: message` of each tasks.md problem; a missing tasks.md is one of them.
    pub warnings: Vec<String>,
}

pub fn rows(projects: &[Project]) -> Vec<SpecRow> {
    let mut out = Vec::new();
    for p in projects {
        for s in &p.specs {
            let (counts, warnings) = match s.read_tasks() {
                Ok(list) => (
                    list.counts(),
                    list.warnings
                        .iter()
                        .map(|w| format!("{}: {}", w.line, w.message))
                        .collect(),
                ),
                Err(SpecError::NotFound { .. }) => (
                    TaskCounts::default(),
                    vec![format!("no {} yet", display_name(&s.tasks_path))],
                ),
                Err(e) => (TaskCounts::default(), vec![e.to_string()]),
            };
            out.push(SpecRow {
                project: p.name.clone(),
                project_path: p.path.display().to_string(),
                spec: s.name.clone(),
                path: s.dir.display().to_string(),
                tasks_path: s.tasks_path.display().to_string(),
                counts,
                warnings,
            });
        }
    }
    out
}

fn display_name(p: &std::path::Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

pub fn run(config: &Config, args: &SpecsArgs) -> anyhow::Result<u8> {
    let projects = match &args.project {
        Some(p) => vec![resolve_project(config, p)?],
        None => {
            if !config.repos_root.is_dir() {
                return Err(crate::exit::ExitError::new(
                    crate::exit::CONFIG,
                    format!(
                        "repos_root {} is not a directory; set \"repos_root\" in your config \
                         (swr config path) or SWR_REPOS_ROOT, or pass --project DIR",
                        config.repos_root.display()
                    ),
                )
                .into());
            }
            spec::discover_projects(&config.repos_root, &config.layout(), &config.ignore_dirs)?
        }
    };
    let mut rows = rows(&projects);
    if args.unfinished {
        rows.retain(|r| r.counts.remaining() > 0);
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(crate::exit::OK);
    }
    print_table(config, &rows);
    Ok(crate::exit::OK)
}

fn print_table(config: &Config, rows: &[SpecRow]) {
    let paint = Paint::stdout();
    if rows.is_empty() {
        println!(
            "No specs found under {}. A project is a directory holding {}/{}/<spec>/{}.",
            config.repos_root.display(),
            config.spec_workflow_dir_name,
            config.specs_subdir,
            config.tasks_filename
        );
        return;
    }
    let name_w = rows
        .iter()
        .map(|r| r.spec.chars().count())
        .max()
        .unwrap_or(4)
        .max(4);
    let mut current = None;
    for r in rows {
        if current != Some(&r.project_path) {
            current = Some(&r.project_path);
            let where_ =
                display_relative(std::path::Path::new(&r.project_path), &config.repos_root);
            println!("{}  {}", paint.bold(&r.project), paint.dim(&where_));
        }
        let c = r.counts;
        let bar = progress_bar(c.done, c.in_progress, c.total, 20);
        let bar = if c.is_complete() {
            paint.green(&bar)
        } else {
            paint.cyan(&bar)
        };
        let mut detail = format!(
            "{:>3}/{:<3} done {} · in progress {} · pending {}",
            c.done, c.total, c.done, c.in_progress, c.pending
        );
        if c.blocked > 0 {
            detail.push_str(&paint.red(&format!(" · blocked {}", c.blocked)));
        }
        let warn = if r.warnings.is_empty() {
            String::new()
        } else {
            paint.yellow(&format!(
                "  ({} warning{})",
                r.warnings.len(),
                if r.warnings.len() == 1 { "" } else { "s" }
            ))
        };
        println!("  {:name_w$}  {bar}  {detail}{warn}", r.spec);
    }
    let warned: Vec<&SpecRow> = rows.iter().filter(|r| !r.warnings.is_empty()).collect();
    for r in warned {
        for w in r.warnings.iter().take(5) {
            eprintln!("swr: warning: {}:{}", r.tasks_path, w);
        }
        if r.warnings.len() > 5 {
            eprintln!(
                "swr: warning: {}: … and {} more",
                r.tasks_path,
                r.warnings.len() - 5
            );
        }
    }
}
