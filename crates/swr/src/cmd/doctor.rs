//! `swr doctor`: the Python tool's validation script, done properly. Each check says ok, warn
//! or fail and, when not ok, how to fix it.

use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::Serialize;
use swr_core::config::{Config, LoadOptions};
use swr_core::provider;
use swr_core::spec::{self, SpecError};

use crate::cli::DoctorArgs;
use crate::style::Paint;
use crate::text::one_line as safe;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Ok,
    Warn,
    Fail,
}

#[derive(Debug, Serialize)]
pub struct Check {
    pub check: String,
    pub status: Status,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

fn check(name: &str, status: Status, message: impl Into<String>, fix: Option<String>) -> Check {
    Check {
        check: name.to_string(),
        status,
        message: message.into(),
        fix,
    }
}

pub fn run(config_file: Option<&Path>, args: &DoctorArgs) -> anyhow::Result<u8> {
    let mut checks = Vec::new();
    // Loaded here rather than with `crate::load_config`: its warnings become checks below
    // instead of being printed on stderr as well.
    let opts = LoadOptions::from_environment(config_file.map(Path::to_path_buf));
    let config = match Config::load(&opts) {
        Ok(c) => c,
        Err(e) => {
            checks.push(check(
                "config",
                Status::Fail,
                e.to_string(),
                Some(
                    "correct the value named above, then run `swr doctor` again; the other \
                     checks need a valid config"
                        .into(),
                ),
            ));
            checks.push(git_check());
            return report(&checks, args.json);
        }
    };
    checks.extend(config_checks(&config));
    checks.extend(provider_checks(&config));
    checks.push(git_check());
    checks.extend(layout_checks(&config, args.project.as_deref()));
    checks.push(state_dir_check(&config));
    checks.extend(state_dir_permissions(&config));
    report(&checks, args.json)
}

fn report(checks: &[Check], json: bool) -> anyhow::Result<u8> {
    if json {
        println!("{}", serde_json::to_string_pretty(checks)?);
    } else {
        let paint = Paint::stdout();
        // Fixed, so messages line up the same on every run; a longer name (a long spec
        // name) pushes only its own line.
        let w = 16;
        for c in checks {
            let tag = match c.status {
                Status::Ok => paint.green("ok  "),
                Status::Warn => paint.yellow("warn"),
                Status::Fail => paint.red("fail"),
            };
            // Spec names, paths and tasks.md text are not ours: shown, never obeyed.
            println!("{tag}  {:w$}  {}", safe(&c.check), safe(&c.message));
            if let Some(fix) = &c.fix {
                println!("      {:w$}  {} {}", "", paint.dim("fix:"), safe(fix));
            }
        }
    }
    let failed = checks.iter().any(|c| c.status == Status::Fail);
    Ok(if failed {
        crate::exit::FAILURE
    } else {
        crate::exit::OK
    })
}

fn config_checks(config: &Config) -> Vec<Check> {
    let mut out = Vec::new();
    let files: Vec<String> = config
        .sources
        .values()
        .filter_map(|s| match s {
            swr_core::config::Source::UserFile(p) | swr_core::config::Source::ConfigFile(p) => {
                Some(p.display().to_string())
            }
            _ => None,
        })
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let from = if files.is_empty() {
        "built-in defaults (no config file)".to_string()
    } else {
        files.join(", ")
    };
    out.push(check("config", Status::Ok, format!("valid: {from}"), None));
    for w in &config.warnings {
        out.push(check(
            "config",
            Status::Warn,
            w.clone(),
            Some("remove or rename the key".into()),
        ));
    }
    let compat = config.unused_compat_keys();
    let active: Vec<&str> = compat
        .into_iter()
        .filter(|k| {
            k.starts_with("enable_")
                && config.values.get(*k).and_then(|v| v.as_bool()) == Some(true)
        })
        .collect();
    if !active.is_empty() {
        out.push(check(
            "config",
            Status::Warn,
            format!(
                "Python tool features switched on that swr does not have: {}",
                active.join(", ")
            ),
            Some("they are ignored; swr checks progress from git and tasks.md itself".into()),
        ));
    }
    if config.repos_root.is_dir() {
        out.push(check(
            "repos_root",
            Status::Ok,
            config.repos_root.display().to_string(),
            None,
        ));
    } else {
        out.push(check(
            "repos_root",
            Status::Warn,
            format!("{} is not a directory", config.repos_root.display()),
            Some("set \"repos_root\" in the config (swr config path) or SWR_REPOS_ROOT".into()),
        ));
    }
    out
}

fn provider_checks(config: &Config) -> Vec<Check> {
    let mut out = Vec::new();
    let exe = std::env::current_exe().unwrap_or_else(|_| PathBuf::from("swr"));
    let registry = match config.provider_registry(exe) {
        Ok(r) => r,
        Err(e) => {
            out.push(check(
                "providers",
                Status::Fail,
                e.to_string(),
                Some("fix the \"providers\" entry named above".into()),
            ));
            return out;
        }
    };
    let path_env = std::env::var_os("PATH").unwrap_or_default();
    for name in registry.names() {
        let Ok(def) = registry.get(&name) else {
            continue;
        };
        if def.kind == provider::ProviderKind::Sim {
            continue;
        }
        let is_default = name == config.provider;
        let program = def.command.first().cloned().unwrap_or_default();
        let label = format!("provider {name}");
        match provider::which(&program, &path_env) {
            Some(path) => {
                let message = match version_of(&path) {
                    Some(v) => format!("{}, version {v}", path.display()),
                    None => format!("{} (`--version` printed nothing)", path.display()),
                };
                out.push(check(&label, Status::Ok, message, None));
            }
            None => {
                let status = if is_default {
                    Status::Fail
                } else {
                    Status::Warn
                };
                let fix = match name.as_str() {
                    "claude" => {
                        "npm install -g @anthropic-ai/claude-code, or set \"claude_command\""
                    }
                    "codex" => "npm install -g @openai/codex, or set \"codex_command\"",
                    "gemini" => "npm install -g @google/gemini-cli, or set \"gemini_command\"",
                    _ => "fix the provider's \"command\" in \"providers\"",
                };
                out.push(check(
                    &label,
                    status,
                    format!(
                        "{program:?} not found on PATH{}",
                        if is_default {
                            " (the default provider)"
                        } else {
                            ""
                        }
                    ),
                    Some(fix.to_string()),
                ));
            }
        }
    }
    if registry.get(&config.provider).is_err() {
        out.push(check(
            "provider",
            Status::Fail,
            format!("default provider {:?} is not defined", config.provider),
            Some(format!("use one of: {}", registry.names().join(", "))),
        ));
    }
    out
}

/// First line of `<exe> --version`, waiting at most 5 s (some CLIs start slowly).
fn version_of(path: &Path) -> Option<String> {
    let mut child = Command::new(path)
        .arg("--version")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return Some("unknown: `--version` did not answer within 5 s".into());
            }
        }
    }
    let out = child.wait_with_output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .map(str::to_string)
}

fn git_check() -> Check {
    match Command::new("git")
        .arg("--version")
        .stdin(Stdio::null())
        .output()
    {
        Ok(out) if out.status.success() => check(
            "git",
            Status::Ok,
            String::from_utf8_lossy(&out.stdout).trim().to_string(),
            None,
        ),
        _ => check(
            "git",
            Status::Fail,
            "git not found on PATH: progress is judged from commits",
            Some("install git".into()),
        ),
    }
}

fn layout_checks(config: &Config, project: Option<&str>) -> Vec<Check> {
    let mut out = Vec::new();
    let project = match project {
        Some(arg) => match super::resolve_project(config, arg) {
            Ok(p) => p,
            Err(e) => {
                out.push(check(
                    "specs",
                    Status::Fail,
                    e.to_string(),
                    Some("pass a project directory, or a project name `swr specs` lists".into()),
                ));
                return out;
            }
        },
        None => {
            let Ok(cwd) = std::env::current_dir() else {
                return out;
            };
            match spec::project_at(&cwd, &config.layout()) {
                Ok(p) => p,
                Err(_) => return repos_overview(config),
            }
        }
    };
    if project.specs.is_empty() {
        out.push(check(
            "specs",
            Status::Warn,
            format!("{}: no spec directories", project.path.display()),
            Some(format!(
                "create {}/<spec>/{}",
                config.specs_dir(&project.path).display(),
                config.tasks_filename
            )),
        ));
    }
    for s in &project.specs {
        let label = format!("spec {}", s.name);
        // Its swr.json (verify command): `swr run` of the spec refuses a bad one (exit 78).
        if let Err(m) = swr_core::runner::verify::read_spec_config(&s.dir) {
            out.push(check(
                &label,
                Status::Fail,
                m,
                Some(format!(
                    "fix or remove {}: `swr run` of this spec stops with a config error until then",
                    s.dir
                        .join(swr_core::runner::verify::SPEC_CONFIG_FILE)
                        .display()
                )),
            ));
            continue;
        }
        match s.read_summary() {
            Ok(list) if list.warnings.is_empty() => {
                let c = list.counts;
                out.push(check(
                    &label,
                    Status::Ok,
                    format!("{}/{} tasks done", c.done, c.total),
                    None,
                ));
            }
            Ok(list) => {
                out.push(tasks_warning(s, &list.warnings[0], list.warnings.len()));
            }
            Err(SpecError::NotFound { path }) => out.push(check(
                &label,
                Status::Warn,
                format!("{} does not exist", path.display()),
                Some("write the spec's tasks first".into()),
            )),
            Err(e) => out.push(check(&label, Status::Fail, e.to_string(), None)),
        }
    }
    out
}

/// Outside a project: what discovery finds under `repos_root`, and the tasks files with
/// problems (the first few; `swr specs` lists them all).
fn repos_overview(config: &Config) -> Vec<Check> {
    const MAX_SPECS_WARNED: usize = 5;
    if !config.repos_root.is_dir() {
        // The repos_root check already says so.
        return Vec::new();
    }
    let projects =
        match spec::discover_projects(&config.repos_root, &config.layout(), &config.ignore_dirs) {
            Ok(p) => p,
            Err(e) => {
                return vec![check(
                    "specs",
                    Status::Fail,
                    e.to_string(),
                    Some("make repos_root readable, or set \"repos_root\"".into()),
                )];
            }
        };
    let specs: Vec<&spec::SpecRef> = projects.iter().flat_map(|p| &p.specs).collect();
    let layout_hint = format!(
        "{}/{}/<spec>/{}",
        config.spec_workflow_dir_name, config.specs_subdir, config.tasks_filename
    );
    if projects.is_empty() {
        return vec![check(
            "specs",
            Status::Warn,
            format!("no projects under {}", config.repos_root.display()),
            Some(format!(
                "a project is a directory holding {layout_hint}; create one, or set \"repos_root\""
            )),
        )];
    }
    let mut out = vec![check(
        "specs",
        Status::Ok,
        format!(
            "{} project(s), {} spec(s) under {} (`swr doctor -p NAME` checks one project)",
            projects.len(),
            specs.len(),
            config.repos_root.display()
        ),
        None,
    )];
    let mut warned = 0;
    for s in &specs {
        let problem = match s.read_summary() {
            Ok(list) => list
                .warnings
                .first()
                .map(|first| tasks_warning(s, first, list.warnings.len())),
            Err(SpecError::NotFound { .. }) => None,
            // A FIFO or a device in place of tasks.md: this spec is unusable, the others are not.
            Err(e) => Some(check(
                &format!("spec {}", s.name),
                Status::Warn,
                e.to_string(),
                Some("make it a regular file".into()),
            )),
        };
        if let Some(c) = problem {
            warned += 1;
            if warned <= MAX_SPECS_WARNED {
                out.push(c);
            }
        }
    }
    if warned > MAX_SPECS_WARNED {
        out.push(check(
            "specs",
            Status::Warn,
            format!(
                "{} more tasks files with warnings",
                warned - MAX_SPECS_WARNED
            ),
            Some("`swr specs` prints every warning with its file and line".into()),
        ));
    }
    out
}

fn tasks_warning(s: &spec::SpecRef, first: &spec::ParseWarning, count: usize) -> Check {
    let more = if count > 1 {
        format!(" (and {} more)", count - 1)
    } else {
        String::new()
    };
    check(
        &format!("spec {}", s.name),
        Status::Warn,
        format!(
            "{}:{}: {}{more}",
            s.tasks_path.display(),
            first.line,
            first.message
        ),
        Some(format!(
            "edit the line named; `swr specs -p {}` lists every warning",
            s.project
        )),
    )
}

fn state_dir_check(config: &Config) -> Check {
    let dir = &config.cache_dir;
    // 0700 like the store creates it: the state dir holds prompts and agent pids.
    if let Err(e) = std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
    {
        return check(
            "state dir",
            Status::Fail,
            format!("{}: cannot create: {e}", dir.display()),
            Some("set \"cache_dir\" to a writable directory".into()),
        );
    }
    let probe = dir.join(format!(".doctor-{}", std::process::id()));
    match std::fs::write(&probe, b"probe") {
        Ok(()) => {
            let _ = std::fs::remove_file(&probe);
        }
        Err(e) => {
            return check(
                "state dir",
                Status::Fail,
                format!("{}: not writable: {e}", dir.display()),
                Some("fix its permissions or set \"cache_dir\"".into()),
            );
        }
    }
    match swr_core::store::Store::open(&config.store_path()) {
        Ok(_) => check(
            "state dir",
            Status::Ok,
            format!("{} (store readable and writable)", dir.display()),
            None,
        ),
        Err(e) => check(
            "state dir",
            Status::Fail,
            format!("{}: {e}", config.store_path().display()),
            Some("move the damaged store aside; swr recreates it".into()),
        ),
    }
}

/// The state dir decides which processes swr kills and holds the prompts: anyone else who
/// can write there can plant a runner record or a lock. Checks the dir, its locks dir and the
/// store for group/world write permission and a foreign owner.
fn state_dir_permissions(config: &Config) -> Vec<Check> {
    let me = nix::unistd::getuid().as_raw();
    let mut writable = Vec::new();
    let mut foreign = Vec::new();
    for path in [
        config.cache_dir.clone(),
        config.lock_dir(),
        config.store_path(),
    ] {
        let Ok(meta) = std::fs::metadata(&path) else {
            continue;
        };
        if meta.mode() & 0o022 != 0 {
            writable.push((path.clone(), meta.mode() & 0o777));
        }
        if meta.uid() != me {
            foreign.push((path, meta.uid()));
        }
    }
    let mut out = Vec::new();
    if !writable.is_empty() {
        out.push(check(
            "state dir",
            Status::Warn,
            format!(
                "writable by other users: {}",
                writable
                    .iter()
                    .map(|(p, m)| format!("{} (mode {m:o})", p.display()))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Some(format!(
                "chmod go-w {}",
                writable
                    .iter()
                    .map(|(p, _)| shell_quote(&p.display().to_string()))
                    .collect::<Vec<_>>()
                    .join(" ")
            )),
        ));
    }
    if !foreign.is_empty() {
        out.push(check(
            "state dir",
            Status::Warn,
            format!(
                "owned by another user: {}",
                foreign
                    .iter()
                    .map(|(p, uid)| format!("{} (uid {uid})", p.display()))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Some(format!(
                "chown it to yourself (uid {me}), or set \"cache_dir\" to a directory of your own"
            )),
        ));
    }
    out
}

/// Quotes a path for a shell command line when it needs it.
fn shell_quote(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-+=:,@%".contains(c))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}
