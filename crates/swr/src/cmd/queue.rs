//! `swr queue add|ls|rm|pause|resume`: the run queue that `swr serve` works through. The queue
//! lives in the store, so these commands work whether the service runs or not, and the
//! service's `GET|POST|DELETE /api/queue` call the same functions ([`add_entry`],
//! [`remove_entry`], [`set_paused`]).

use std::path::PathBuf;

use swr_core::config::Config;
use swr_core::store::{
    NewQueueEntry, QueueAdd, QueueEntry, QueueId, QueueRemove, QueueState, Store, StoreError,
};

use crate::cli::{QueueAddArgs, QueueCommand};
use crate::exit::{self, ExitError};
use crate::style::Paint;
use crate::text::one_line as safe;

/// What to queue, as typed (CLI flags or the API's JSON body), before validation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AddRequest {
    /// A project directory, or the name of a project under repos_root.
    pub project: String,
    pub spec: String,
    pub provider: Option<String>,
    pub model: Option<String>,
    pub priority: i64,
}

/// Priorities beyond this are surely typos.
pub const MAX_PRIORITY: i64 = 1_000_000;

/// Why an entry could not be queued.
#[derive(Debug)]
pub enum AddError {
    /// Bad input: the field (as named in the API and by the flag) and what is wrong.
    Field {
        field: &'static str,
        message: String,
    },
    /// The spec is already queued or running.
    Duplicate(Box<QueueEntry>),
    Store(StoreError),
}

impl std::fmt::Display for AddError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AddError::Field { message, .. } => f.write_str(message),
            AddError::Duplicate(e) => write!(
                f,
                "spec {} of {} is already in the queue as entry {} ({})",
                e.spec,
                e.project.display(),
                e.id,
                e.state
            ),
            AddError::Store(e) => write!(f, "{e}"),
        }
    }
}

/// Checks a request (the project exists, it has that spec, the provider is known) and queues
/// it. The project is stored as its canonical path.
pub fn add_entry(config: &Config, store: &Store, req: &AddRequest) -> Result<QueueEntry, AddError> {
    let field = |field: &'static str, message: String| AddError::Field { field, message };
    let (project, spec) = validate_target(config, &req.project, &req.spec)?;
    let provider = match req.provider.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(p) => {
            let exe = std::env::current_exe()
                .map_err(|e| field("provider", format!("cannot find swr's executable: {e}")))?;
            let registry = config
                .provider_registry(exe)
                .map_err(|e| field("provider", e.to_string()))?;
            registry
                .get(p)
                .map_err(|e| field("provider", e.to_string()))?;
            Some(p.to_string())
        }
    };
    if !(-MAX_PRIORITY..=MAX_PRIORITY).contains(&req.priority) {
        return Err(field(
            "priority",
            format!(
                "priority {} is out of range: use a whole number from -{MAX_PRIORITY} to {MAX_PRIORITY} (higher starts first)",
                req.priority
            ),
        ));
    }
    let model = req
        .model
        .as_deref()
        .map(str::trim)
        .filter(|m| !m.is_empty())
        .map(str::to_string);
    match store.queue_add(&NewQueueEntry {
        project,
        spec,
        provider,
        model,
        priority: req.priority,
    }) {
        Ok(QueueAdd::Added(e)) => Ok(e),
        Ok(QueueAdd::Duplicate(e)) => Err(AddError::Duplicate(Box::new(e))),
        Err(e) => Err(AddError::Store(e)),
    }
}

/// The project (canonical path) and spec a request names, or the field that is wrong. Shared
/// by the queue and by starting a runner from the API.
pub fn validate_target(
    config: &Config,
    project: &str,
    spec: &str,
) -> Result<(PathBuf, String), AddError> {
    let field = |field: &'static str, message: String| AddError::Field { field, message };
    if project.trim().is_empty() {
        return Err(field(
            "project",
            "project is empty: give a project directory or the name of a project under repos_root"
                .into(),
        ));
    }
    let project = super::resolve_project(config, project.trim())
        .map_err(|e| field("project", crate::error_text(&e)))?;
    let spec = spec.trim();
    if spec.is_empty() {
        return Err(field(
            "spec",
            "spec is empty: give the name of a spec".into(),
        ));
    }
    if !project.specs.iter().any(|s| s.name == spec) {
        let names: Vec<&str> = project.specs.iter().map(|s| s.name.as_str()).collect();
        return Err(field(
            "spec",
            format!(
                "project {} has no spec {spec:?}{}",
                project.path.display(),
                if names.is_empty() {
                    String::new()
                } else {
                    format!(" (its specs: {})", names.join(", "))
                }
            ),
        ));
    }
    Ok((project.path, spec.to_string()))
}

/// Why an entry could not be removed.
#[derive(Debug)]
pub enum RemoveError {
    NotFound(QueueId),
    Running(Box<QueueEntry>),
    Store(StoreError),
}

impl std::fmt::Display for RemoveError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RemoveError::NotFound(id) => {
                write!(f, "no queue entry {id} (`swr queue ls --all` lists them)")
            }
            RemoveError::Running(e) => write!(
                f,
                "queue entry {} is running{}: stop its runner first (`swr stop {}`)",
                e.id,
                e.runner_id
                    .as_ref()
                    .map(|r| format!(" as runner {r}"))
                    .unwrap_or_default(),
                e.runner_id
                    .as_ref()
                    .map(|r| r.to_string())
                    .unwrap_or_else(|| e.spec.clone())
            ),
            RemoveError::Store(e) => write!(f, "{e}"),
        }
    }
}

pub fn remove_entry(store: &Store, id: QueueId) -> Result<QueueEntry, RemoveError> {
    match store.queue_remove(id) {
        Ok(QueueRemove::Removed(e)) => Ok(e),
        Ok(QueueRemove::Running(e)) => Err(RemoveError::Running(Box::new(e))),
        Ok(QueueRemove::NotFound) => Err(RemoveError::NotFound(id)),
        Err(e) => Err(RemoveError::Store(e)),
    }
}

pub fn set_paused(store: &Store, paused: bool) -> Result<(), StoreError> {
    store.set_queue_paused(paused)
}

/// The queue as `swr queue ls --json` and `GET /api/queue` show it.
#[derive(Debug, serde::Serialize)]
pub struct QueueView {
    pub paused: bool,
    pub entries: Vec<QueueEntry>,
}

pub fn view(store: &Store, with_done: bool) -> Result<QueueView, StoreError> {
    Ok(QueueView {
        paused: store.queue_paused()?,
        entries: store.queue(with_done)?,
    })
}

pub fn run(config: &Config, cmd: &QueueCommand) -> anyhow::Result<u8> {
    let store = super::runners::open_store(config)?;
    match cmd {
        QueueCommand::Add(args) => add(config, &store, args),
        QueueCommand::Ls { json, all } => list(&store, *json, *all),
        QueueCommand::Rm { id } => {
            let id: QueueId = id
                .parse()
                .map_err(|e: swr_core::store::QueueIdError| ExitError::usage(e.to_string()))?;
            match remove_entry(&store, id) {
                Ok(e) => {
                    println!(
                        "removed queue entry {} ({} of {})",
                        e.id,
                        safe(&e.spec),
                        safe(&e.project.display().to_string())
                    );
                    Ok(exit::OK)
                }
                Err(RemoveError::Store(e)) => Err(e.into()),
                Err(e) => Err(ExitError::usage(safe(&e.to_string())).into()),
            }
        }
        QueueCommand::Pause => {
            set_paused(&store, true)?;
            println!(
                "queue paused: `swr serve` starts no new runner until `swr queue resume` (running ones go on)"
            );
            Ok(exit::OK)
        }
        QueueCommand::Resume => {
            set_paused(&store, false)?;
            println!("queue resumed");
            Ok(exit::OK)
        }
    }
}

fn add(config: &Config, store: &Store, args: &QueueAddArgs) -> anyhow::Result<u8> {
    let project = match &args.project {
        Some(p) => p.clone(),
        None => {
            let cwd = std::env::current_dir()?;
            cwd.ancestors()
                .find_map(|d| swr_core::spec::project_at(d, &config.layout()).ok())
                .map(|p| p.path.display().to_string())
                .ok_or_else(|| {
                    ExitError::usage(format!(
                        "no --project given and {} is not a project; pass --project DIR",
                        cwd.display()
                    ))
                })?
        }
    };
    let req = AddRequest {
        project,
        spec: args.spec.clone(),
        provider: args.provider.clone(),
        model: args.model.clone(),
        priority: args.priority,
    };
    match add_entry(config, store, &req) {
        Ok(e) => {
            if args.json {
                println!("{}", serde_json::to_string_pretty(&e)?);
            } else {
                println!(
                    "queued entry {}: {} of {} (priority {}){}",
                    e.id,
                    safe(&e.spec),
                    safe(&e.project.display().to_string()),
                    e.priority,
                    if store.queue_paused()? {
                        "; the queue is paused (`swr queue resume`)"
                    } else {
                        "; `swr serve` starts it"
                    }
                );
            }
            Ok(exit::OK)
        }
        Err(AddError::Store(e)) => Err(e.into()),
        Err(e) => Err(ExitError::usage(safe(&e.to_string())).into()),
    }
}

fn list(store: &Store, json: bool, all: bool) -> anyhow::Result<u8> {
    let v = view(store, all)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(exit::OK);
    }
    let p = Paint::stdout();
    if v.paused {
        println!("{}", p.yellow("queue paused (`swr queue resume`)"));
    }
    if v.entries.is_empty() {
        println!("The queue is empty. Add to it with `swr queue add -p PROJECT -s SPEC`.");
        return Ok(exit::OK);
    }
    for e in &v.entries {
        let state = format!("{:8}", e.state.as_str());
        let state = match e.state {
            QueueState::Running => p.green(&state),
            QueueState::Queued => p.yellow(&state),
            QueueState::Done => p.dim(&state),
        };
        println!(
            "{:>4}  {state} prio {:<4} {:<16} {}{}{}",
            e.id,
            e.priority,
            safe(&e.spec),
            p.dim(&safe(&super::display_home(&e.project))),
            e.provider
                .as_ref()
                .map(|pr| safe(&format!(
                    "  {pr}{}",
                    e.model
                        .as_ref()
                        .map(|m| format!("/{m}"))
                        .unwrap_or_default()
                ))
                .into_owned())
                .unwrap_or_default(),
            e.runner_id
                .as_ref()
                .filter(|_| e.state != QueueState::Queued)
                .map(|r| format!("  runner {r}"))
                .unwrap_or_default(),
        );
        let mut detail = Vec::new();
        if let Some(r) = &e.result {
            detail.push(r.clone());
        }
        if let Some(n) = &e.note {
            detail.push(n.clone());
        }
        if e.restarts > 0 {
            detail.push(format!(
                "restarted {} time(s) after an interruption",
                e.restarts
            ));
        }
        if !detail.is_empty() {
            println!("      {}", p.dim(&safe(&detail.join(" · "))));
        }
    }
    Ok(exit::OK)
}
