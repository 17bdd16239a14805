//! One module per subcommand. Each takes the resolved config and its arguments and returns
//! the process exit code.

pub mod completions;
pub mod config;
pub mod demo;
pub mod doctor;
pub mod evidence;
pub mod metrics;
pub mod queue;
pub mod run;
pub mod runners;
pub mod service;
pub mod sim;
pub mod specs;

use std::path::{Path, PathBuf};

use anyhow::Context;
use swr_core::config::Config;
use swr_core::spec::{self, Project};

use crate::exit::ExitError;

/// `--project` takes a directory, or the name of a project under `repos_root`.
///
/// A bare name (no `/`) that is both a directory here and a project under `repos_root` is
/// the project when the directory is not one itself: `swr specs -p app` from a directory
/// holding an unrelated `app/` still finds `~/repos/app`.
pub fn resolve_project(config: &Config, arg: &str) -> anyhow::Result<Project> {
    let layout = config.layout();
    let as_path = expand_tilde(arg);
    let looks_like_path = arg.contains('/') || arg == "." || arg == ".." || arg.starts_with('~');
    if as_path.is_dir() {
        let dir = as_path
            .canonicalize()
            .with_context(|| format!("cannot resolve {}", as_path.display()))?;
        match spec::project_at(&dir, &layout) {
            Ok(p) => return Ok(p),
            Err(e) if looks_like_path || !config.repos_root.is_dir() => {
                return Err(not_a_project(config, &dir, &e).into());
            }
            Err(e) => {
                return match find_by_name(config, arg)? {
                    Found::One(p) => Ok(p),
                    _ => Err(not_a_project(config, &dir, &e).into()),
                };
            }
        }
    }
    if looks_like_path {
        return Err(ExitError::usage(format!(
            "--project {arg}: no such directory; pass a project directory or the name of a \
             project under repos_root ({})",
            config.repos_root.display()
        ))
        .into());
    }
    if !config.repos_root.is_dir() {
        return Err(ExitError::new(
            crate::exit::CONFIG,
            format!(
                "--project {arg}: no such directory, and repos_root {} (where project names are \
                 looked up) does not exist; pass a project directory, or set \"repos_root\" in \
                 your config file (`swr config path`) or SWR_REPOS_ROOT",
                config.repos_root.display()
            ),
        )
        .into());
    }
    match find_by_name(config, arg)? {
        Found::One(p) => Ok(p),
        Found::None(names, with_spec) => {
            let mut msg = format!(
                "--project {arg}: no such directory, and no project of that name under repos_root {}",
                config.repos_root.display()
            );
            if let Some(close) = closest(arg, &names) {
                msg.push_str(&format!(" (did you mean {close:?}?)"));
            }
            if let Some(owner) = with_spec.first() {
                msg.push_str(&format!("; {arg:?} is a spec, of project {owner:?}"));
            } else if names.is_empty() {
                msg.push_str(&format!(
                    "; it holds no project (a directory with {}/{}/<spec>/{})",
                    config.spec_workflow_dir_name, config.specs_subdir, config.tasks_filename
                ));
            } else if names.len() <= 12 {
                msg.push_str(&format!("; projects there: {}", names.join(", ")));
            } else {
                msg.push_str("; `swr specs` lists them");
            }
            Err(ExitError::usage(msg).into())
        }
        Found::Many(matches) => Err(ExitError::usage(format!(
            "--project {arg}: {} projects of that name under {}: {}; pass the path of one",
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

enum Found {
    One(Project),
    /// No match: the names of the projects that exist, and those holding a spec of that
    /// name (people pass a spec name to `--project`), for suggestions.
    None(Vec<String>, Vec<String>),
    Many(Vec<Project>),
}

fn find_by_name(config: &Config, name: &str) -> anyhow::Result<Found> {
    let projects =
        spec::discover_projects(&config.repos_root, &config.layout(), &config.ignore_dirs)
            .with_context(|| format!("cannot scan repos_root {}", config.repos_root.display()))?;
    let (mut matches, others): (Vec<Project>, Vec<Project>) =
        projects.into_iter().partition(|p| p.name == name);
    Ok(match matches.len() {
        0 => {
            let with_spec = others
                .iter()
                .filter(|p| p.specs.iter().any(|s| s.name == name))
                .map(|p| p.name.clone())
                .collect();
            let mut names: Vec<String> = others.into_iter().map(|p| p.name).collect();
            names.sort();
            names.dedup();
            Found::None(names, with_spec)
        }
        1 => Found::One(matches.remove(0)),
        _ => Found::Many(matches),
    })
}

fn not_a_project(config: &Config, dir: &Path, err: &spec::SpecError) -> ExitError {
    let detail = match err {
        spec::SpecError::NoSpecsDir { expected, .. } => {
            format!("it has no {} directory", expected.display())
        }
        other => other.to_string(),
    };
    ExitError::usage(format!(
        "{} is not a spec-workflow project: {detail}; create {}/{}/<spec>/{} in it, or pass \
         another --project (`swr specs` lists the projects under repos_root)",
        dir.display(),
        config.spec_workflow_dir_name,
        config.specs_subdir,
        config.tasks_filename
    ))
}

/// The closest name within a small edit distance, for "did you mean".
fn closest<'a>(name: &str, names: &'a [String]) -> Option<&'a str> {
    names
        .iter()
        .map(|n| (edit_distance(name, n), n))
        .filter(|(d, n)| *d <= (n.chars().count() / 3).max(1))
        .min_by_key(|(d, _)| *d)
        .map(|(_, n)| n.as_str())
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur.push((prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
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

/// A path with the home directory written `~`, for shorter listings.
pub fn display_home(path: &Path) -> String {
    match dirs_home().and_then(|h| path.strip_prefix(h).ok().map(Path::to_path_buf)) {
        Some(rest) if rest.as_os_str().is_empty() => "~".to_string(),
        Some(rest) => format!("~/{}", rest.display()),
        None => path.display().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_close_names_only() {
        let names = vec!["billing".to_string(), "app".to_string()];
        assert_eq!(closest("biling", &names), Some("billing"));
        assert_eq!(closest("ap", &names), Some("app"));
        assert_eq!(closest("zzz", &names), None);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }
}
