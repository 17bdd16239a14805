//! One module per subcommand. Each takes the resolved config and its arguments and returns
//! the process exit code.

pub mod completions;
pub mod config;
pub mod demo;
pub mod doctor;
pub mod run;
pub mod runners;
pub mod sim;
pub mod specs;

use std::path::{Path, PathBuf};

use anyhow::Context;
use swr_core::config::Config;
use swr_core::spec::{self, Project};

use crate::exit::ExitError;

/// `--project` takes a directory, or the name of a project under `repos_root`.
pub fn resolve_project(config: &Config, arg: &str) -> anyhow::Result<Project> {
    let layout = config.layout();
    let as_path = expand_tilde(arg);
    if as_path.is_dir() {
        let dir = as_path
            .canonicalize()
            .with_context(|| format!("cannot resolve {}", as_path.display()))?;
        return spec::project_at(&dir, &layout).map_err(|e| {
            ExitError::usage(format!(
                "{e}\n  a project is a directory holding {}/{}/<spec>/{}",
                config.spec_workflow_dir_name, config.specs_subdir, config.tasks_filename
            ))
            .into()
        });
    }
    if arg.contains('/') {
        return Err(ExitError::usage(format!("{arg}: no such directory")).into());
    }
    let projects = spec::discover_projects(&config.repos_root, &layout, &config.ignore_dirs)
        .with_context(|| format!("cannot scan repos_root {}", config.repos_root.display()))?;
    let matches: Vec<Project> = projects.into_iter().filter(|p| p.name == arg).collect();
    match matches.len() {
        1 => Ok(matches.into_iter().next().expect("one match")),
        0 => Err(ExitError::usage(format!(
            "no project named {arg:?} under repos_root {} (and no such directory here); \
             pass a path, or run `swr specs` to list projects",
            config.repos_root.display()
        ))
        .into()),
        _ => Err(ExitError::usage(format!(
            "{} projects are named {arg:?} under {}: {}; pass a path instead",
            matches.len(),
            config.repos_root.display(),
            matches
                .iter()
                .map(|p| p.path.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ))
        .into()),
    }
}

pub fn expand_tilde(arg: &str) -> PathBuf {
    match (arg.strip_prefix("~/"), dirs_home()) {
        (Some(rest), Some(home)) => home.join(rest),
        _ => PathBuf::from(arg),
    }
}

fn dirs_home() -> Option<PathBuf> {
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(PathBuf::from)
}

/// A path relative to `base` when it is inside it, for shorter listings.
pub fn display_relative(path: &Path, base: &Path) -> String {
    path.strip_prefix(base)
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| path.display().to_string())
}
