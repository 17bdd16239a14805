//! Observing and steering runners from the command line: `status`, `history`, `stop`, `logs`,
//! `stats` (retries, and tokens and cost). Everything goes through the state store and the log
//! files, like the TUI.

use std::io::{IsTerminal, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use jiff::Timestamp;
use swr_core::config::Config;
use swr_core::cost::{Totals, tokens, usd};
use swr_core::store::{
    AttemptFilter, AttemptRecord, NewTick, RunnerFilter, RunnerId, RunnerRecord, RunnerStatus,
    SpendGroup, SpendReport, Store, TickFilter, format_ts,
};

use crate::cli::{HistoryArgs, LogsArgs, StatsArgs, StatsBy, StatusArgs, StopArgs};
use crate::exit::{self, ExitError};
use crate::style::{Paint, progress_bar};
use crate::text::{NAME_MAX, clipped, one_line as safe};

/// Opens the store for a command that only looks: it never changes a record or kills a
/// process (a runner found dead is shown as such; `swr status --reap`, `swr run` and the TUI
/// clean up after it).
pub fn open_store(config: &Config) -> anyhow::Result<Store> {
    Ok(Store::open(&config.store_path())?)
}

/// [`open_store`], or, when the cache dir is read-only (a mounted backup, a permission) and
/// the store cannot be opened for writing, the store opened read-only: looking must still
/// work. `swr stop` and `--reap` need to write and use [`open_store`].
fn open_store_to_read(config: &Config) -> anyhow::Result<Store> {
    match open_store(config) {
        Ok(store) => Ok(store),
        Err(e) => match Store::open_read_only(&config.store_path()) {
            Ok(store) => {
                eprintln!(
                    "swr: note: the state store cannot be opened for writing ({}); reading it read-only",
                    crate::text::lines(&crate::error_text(&e))
                );
                Ok(store)
            }
            Err(_) => Err(e),
        },
    }
}

/// Marks dead runners crashed and kills what they left behind, saying so.
pub fn reap_dead(store: &Store, config: &Config) -> anyhow::Result<usize> {
    let reaped = swr_core::runner::reconcile_and_reap(store, &config.lock_dir())?;
    for r in &reaped {
        eprintln!("swr: {}", r.describe());
    }
    Ok(reaped.len())
}

/// A runner as `swr status --json` and `GET /api/runners` show it: the record, and for an
/// active one whether its process is really alive (false: it died without cleaning up;
/// `--reap` records that). It also carries the rate-limit waits a later `swr run` of its spec
/// would wait for (the spec's own, and the shared clock of its provider account: this
/// config's `account`), and its webhook deliveries that did not go through.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RunnerView {
    #[serde(flatten)]
    pub record: RunnerRecord,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alive: Option<bool>,
    pub rate_limit_wait: Option<PendingWait>,
    pub account_rate_limit_wait: Option<PendingWait>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub webhook_failures: Vec<WebhookFailure>,
}

/// A webhook delivery that failed (given up) or is waiting for a retry after failing.
#[derive(Debug, Clone, serde::Serialize)]
pub struct WebhookFailure {
    pub url: String,
    pub event: String,
    /// `failed` (given up) or `pending` (retried later).
    pub state: String,
    pub tries: u32,
    pub error: Option<String>,
}

/// Which runners a listing shows.
#[derive(Debug, Clone, Default)]
pub struct RunnerQuery {
    /// Only active runners.
    pub active: bool,
    /// Every runner recorded, not only the latest of each spec plus the active ones.
    pub all: bool,
    pub spec: Option<String>,
}

/// The runners a listing shows, newest first: by default the latest runner of each spec plus
/// every active one. Only looks; never reaps.
pub fn runner_views(
    config: &Config,
    store: &Store,
    q: &RunnerQuery,
) -> anyhow::Result<Vec<RunnerView>> {
    let mut runners = store.runners(&RunnerFilter {
        active_only: q.active,
        ..Default::default()
    })?;
    if let Some(spec) = &q.spec {
        runners.retain(|r| &r.spec == spec);
    }
    if !q.all && !q.active {
        // One line per spec: its latest runner, plus every active one.
        let mut seen = std::collections::BTreeSet::new();
        runners.sort_by_key(|r| std::cmp::Reverse(r.started_at));
        runners
            .retain(|r| r.status.is_active() || seen.insert((r.project.clone(), r.spec.clone())));
    }
    runners.sort_by_key(|r| std::cmp::Reverse(r.started_at));
    let problems = store.delivery_problems(200)?;
    let lock_dir = config.lock_dir();
    let mut views = Vec::with_capacity(runners.len());
    for r in runners {
        views.push(RunnerView {
            alive: r
                .status
                .is_active()
                .then(|| swr_core::store::runner_alive(&r, &lock_dir)),
            rate_limit_wait: pending_wait(store, &r)?,
            account_rate_limit_wait: pending_account_wait(store, config, &r)?,
            webhook_failures: problems
                .iter()
                .filter(|d| d.runner_id.as_ref() == Some(&r.runner_id))
                .map(|d| WebhookFailure {
                    url: d.url.clone(),
                    event: d.event.clone(),
                    state: d.state.as_str().to_string(),
                    tries: d.tries,
                    error: d.last_error.clone(),
                })
                .collect(),
            record: r,
        });
    }
    Ok(views)
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct PendingWait {
    /// RFC 3339, like every time of the status JSON.
    #[serde(serialize_with = "ser_ts")]
    pub until: Timestamp,
    pub reason: String,
}

fn ser_ts<S: serde::Serializer>(t: &Timestamp, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format_ts(*t))
}

/// The spec's persisted rate-limit wait, when it has not ended yet.
fn pending_wait(store: &Store, r: &RunnerRecord) -> anyhow::Result<Option<PendingWait>> {
    Ok(store
        .wait_for(&r.project, &r.spec)?
        .filter(|(until, _)| *until > Timestamp::now())
        .map(|(until, reason)| PendingWait { until, reason }))
}

/// The shared rate-limit clock of the runner's provider and this config's account, when it
/// has not ended yet.
fn pending_account_wait(
    store: &Store,
    config: &Config,
    r: &RunnerRecord,
) -> anyhow::Result<Option<PendingWait>> {
    Ok(store
        .account_wait(&r.provider, &config.account)?
        .filter(|w| w.until > Timestamp::now())
        .map(|w| PendingWait {
            until: w.until,
            reason: w.reason,
        }))
}

pub fn status(config: &Config, args: &StatusArgs) -> anyhow::Result<u8> {
    let store = if args.reap {
        open_store(config)?
    } else {
        open_store_to_read(config)?
    };
    if args.reap {
        let n = reap_dead(&store, config)?;
        if n == 0 && !args.json {
            eprintln!("swr: no dead runner to clean up");
        }
    }
    let views = runner_views(
        config,
        &store,
        &RunnerQuery {
            active: args.active,
            all: args.all,
            spec: args.spec.clone(),
        },
    )?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&views)?);
        return Ok(exit::OK);
    }
    if views.is_empty() {
        println!(
            "No runners yet. Start one with `swr run --project DIR --spec NAME` (or `swr demo`)."
        );
        return Ok(exit::OK);
    }
    let p = Paint::stdout();
    for v in &views {
        print_runner(&p, &v.record);
        if v.alive == Some(false) {
            println!(
                "          {}",
                p.red("its swr process is gone: `swr status --reap` marks it crashed and kills what it left")
            );
        }
        for w in &v.webhook_failures {
            let what = if w.state == "failed" {
                format!(
                    "webhook {} ({}) failed after {} tries",
                    w.url, w.event, w.tries
                )
            } else {
                format!(
                    "webhook {} ({}) failed {} time(s), retried later (by this runner or `swr serve`)",
                    w.url, w.event, w.tries
                )
            };
            let err = w
                .error
                .as_deref()
                .map(|e| format!(": {e}"))
                .unwrap_or_default();
            println!("          {}", p.yellow(&safe(&format!("{what}{err}"))));
        }
        // An active runner shows its own wait above; a stopped one's waits still hold the
        // next run, and nothing else would say so.
        if v.record.status.is_active() {
            continue;
        }
        let waits = [
            ("rate-limit wait pending", &v.rate_limit_wait),
            (
                "rate-limit wait of its provider account pending",
                &v.account_rate_limit_wait,
            ),
        ];
        let mut shown = false;
        for (what, w) in waits {
            let Some(w) = w else { continue };
            shown = true;
            println!(
                "          {} until {} (in {}): {}",
                p.yellow(what),
                format_ts(w.until),
                human_since(Timestamp::now(), w.until),
                safe(w.reason.lines().next().unwrap_or(""))
            );
        }
        if shown {
            println!(
                "          the next `swr run` waits for it; `swr run --ignore-wait` or `swr stop {}` clears it",
                safe(&v.record.spec)
            );
        }
    }
    Ok(exit::OK)
}

fn status_label(p: &Paint, s: RunnerStatus) -> String {
    let t = format!("{:9}", s.as_str());
    match s {
        RunnerStatus::Running => p.green(&t),
        RunnerStatus::Queued | RunnerStatus::Waiting => p.yellow(&t),
        RunnerStatus::Completed => p.cyan(&t),
        RunnerStatus::Stopped => p.dim(&t),
        RunnerStatus::Crashed | RunnerStatus::Failed => p.red(&t),
        RunnerStatus::Budget => p.yellow(&t),
    }
}

fn print_runner(p: &Paint, r: &RunnerRecord) {
    let t = r.tasks;
    let bar = progress_bar(t.done, t.in_progress, t.total, 12);
    let now = Timestamp::now();
    let age = human_since(r.started_at, now);
    println!(
        "{} {}  {:<16} {bar} {:>3}/{:<3} iter {:<3} retry {}/{}  {}{}  pid {}  started {age} ago",
        status_label(p, r.status),
        p.dim(r.runner_id.as_str()),
        clipped(&r.spec, NAME_MAX),
        t.done,
        t.total,
        r.iteration,
        r.retry_count,
        r.max_retries,
        safe(&r.provider),
        r.model
            .as_ref()
            .map(|m| format!("/{}", safe(m)))
            .unwrap_or_default(),
        r.pid,
    );
    println!(
        "          {}",
        p.dim(&safe(&r.project.display().to_string()))
    );
    if let Some(next) = r.next_attempt_at
        && r.status.is_active()
    {
        let wait = if next > now {
            format!("in {}", human_since(now, next))
        } else {
            "now".into()
        };
        let what = if r.status == RunnerStatus::Waiting {
            "rate limit ends"
        } else {
            "next attempt"
        };
        println!("          {what} {wait} ({})", format_ts(next));
    }
    if let Some(spend) = runner_spend(r) {
        println!("          {spend}");
    }
    if let Some(reason) = &r.reason {
        println!("          {}", safe(reason.lines().next().unwrap_or("")));
    }
}

/// "cost $0.42 · 31.2k tokens in (28.0k cached), 900 out", when the agent reported any.
pub fn runner_spend(r: &RunnerRecord) -> Option<String> {
    let t = Totals {
        priced: u64::from(r.cost_usd.is_some()),
        metered: u64::from(r.input_tokens.is_some() || r.output_tokens.is_some()),
        input_tokens: r.input_tokens.unwrap_or(0),
        cached_tokens: r.cached_tokens.unwrap_or(0),
        output_tokens: r.output_tokens.unwrap_or(0),
        cost_usd: r.cost_usd.unwrap_or(0.0),
        estimated_usd: r.cost_estimated_usd.unwrap_or(0.0),
        ..Totals::default()
    };
    t.describe().map(|d| format!("cost {d}"))
}

/// "$0.18 · 31.2k in, 900 out" for one attempt; "est." marks an estimate.
fn attempt_spend(a: &AttemptRecord) -> Option<String> {
    let mut parts = Vec::new();
    if let Some(c) = a.cost_usd {
        parts.push(format!(
            "{}{}",
            usd(c),
            if a.cost_estimated == Some(true) {
                " est."
            } else {
                ""
            }
        ));
    }
    if a.input_tokens.is_some() || a.output_tokens.is_some() {
        parts.push(format!(
            "{} in, {} out",
            tokens(a.input_tokens.unwrap_or(0)),
            tokens(a.output_tokens.unwrap_or(0))
        ));
    }
    (!parts.is_empty()).then(|| parts.join(" · "))
}

/// An attempt with the tasks it ticked (`swr history --evidence --json`).
#[derive(serde::Serialize)]
struct AttemptWithTicks<'a> {
    #[serde(flatten)]
    attempt: &'a AttemptRecord,
    ticks: Vec<&'a NewTick>,
}

fn human_since(from: Timestamp, to: Timestamp) -> String {
    let secs = (to.as_second() - from.as_second()).max(0);
    match secs {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m{:02}s", s / 60, s % 60),
        s if s < 86400 => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
        s => format!("{}d{:02}h", s / 86400, (s % 86400) / 3600),
    }
}

pub fn history(config: &Config, args: &HistoryArgs) -> anyhow::Result<u8> {
    let store = open_store_to_read(config)?;
    let runner = match &args.runner {
        Some(id) => Some(
            id.parse::<RunnerId>()
                .map_err(|e| ExitError::usage(e.to_string()))?,
        ),
        None => None,
    };
    let mut attempts = store.attempts(&AttemptFilter {
        runner,
        spec: args.spec.clone(),
        ..Default::default()
    })?;
    if let Some(n) = args.limit
        && attempts.len() > n
    {
        attempts.drain(..attempts.len() - n);
    }
    let ticks = if args.evidence {
        store.ticks(&TickFilter {
            spec: args.spec.clone(),
            runner: args.runner.as_ref().and_then(|r| r.parse().ok()),
            ..TickFilter::default()
        })?
    } else {
        Vec::new()
    };
    let ticks_of = |a: &AttemptRecord| -> Vec<&NewTick> {
        ticks
            .iter()
            .filter(|t| t.attempt_id == a.id)
            .map(|t| &t.tick)
            .collect()
    };
    if args.json {
        if args.evidence {
            let with: Vec<AttemptWithTicks> = attempts
                .iter()
                .map(|a| AttemptWithTicks {
                    attempt: a,
                    ticks: ticks_of(a),
                })
                .collect();
            println!("{}", serde_json::to_string_pretty(&with)?);
        } else {
            println!("{}", serde_json::to_string_pretty(&attempts)?);
        }
        return Ok(exit::OK);
    }
    if attempts.is_empty() {
        println!("No attempts recorded yet.");
        return Ok(exit::OK);
    }
    let p = Paint::stdout();
    for a in &attempts {
        let dur = a
            .ended_at
            .map(|e| {
                format!(
                    "{:.1}s",
                    (e.as_millisecond() - a.started_at.as_millisecond()) as f64 / 1000.0
                )
            })
            .unwrap_or_else(|| "running".into());
        // Ended without an outcome: swr died during the attempt (closed by reconcile).
        let outcome = match (a.outcome, a.ended_at) {
            (Some(o), _) => o.as_str(),
            (None, Some(_)) => "unknown",
            (None, None) => "running",
        };
        let exit = match (&a.exit_code, &a.signal) {
            (_, Some(s)) => safe(s).into_owned(),
            (Some(c), None) => format!("exit {c}"),
            _ => "-".into(),
        };
        let delay = a
            .delay_before_next_ms
            .map(|d| format!(" then {:.1}s", d as f64 / 1000.0))
            .unwrap_or_default();
        let ticked = a.ticked.unwrap_or(0) as usize;
        let committed = a.committed.unwrap_or(false);
        let mut progress = if ticked > 0 || committed {
            format!(" · {}", crate::report::progress_words(ticked, committed))
        } else {
            String::new()
        };
        if let Some(s) = attempt_spend(a) {
            progress.push_str(&format!(" · {s}"));
        }
        println!(
            "{} {} {:<14} it {:<3} try {:<2} {:<13} {:<8} {:>8}{delay}{progress}",
            format_ts(a.started_at),
            p.dim(a.runner_id.as_str()),
            clipped(&a.spec, NAME_MAX),
            a.iteration,
            a.attempt,
            outcome,
            exit,
            dur,
        );
        if let Some(e) = &a.error {
            println!("    {}", safe(e.lines().next().unwrap_or("")));
        }
        if let Some(s) = &a.resumed_session {
            println!("    {}", p.dim(&format!("resumed session {}", safe(s))));
        }
        if let Some(n) = &a.note {
            println!("    {}", p.dim(&safe(n)));
        }
        if let Some(w) = &a.warning {
            println!("    {}", p.yellow(&format!("warning: {}", safe(w))));
        }
        for t in ticks_of(a) {
            for line in super::evidence::tick_lines_short(&p, t) {
                println!("    {line}");
            }
        }
    }
    Ok(exit::OK)
}

/// Finds the runner a user means by `spec-or-id`: a runner id, or the latest runner of a spec
/// (active ones first).
/// `project` is `--project` as typed: a directory (`~` allowed) or the name of a project
/// under repos_root, resolved as `swr run -p` resolves it.
fn find_runner(
    config: &Config,
    store: &Store,
    target: &str,
    project: Option<&str>,
) -> anyhow::Result<RunnerRecord> {
    let project = project.map(|p| project_path(config, p)).transpose()?;
    let project = project.as_deref();
    if let Ok(id) = target.parse::<RunnerId>()
        && let Some(r) = store.runner(&id)?
    {
        return Ok(r);
    }
    let mut runners = store.runners(&RunnerFilter {
        spec: Some(target.to_string()),
        project: project.map(Path::to_path_buf),
        ..Default::default()
    })?;
    runners.sort_by(|a, b| {
        (b.status.is_active(), b.started_at).cmp(&(a.status.is_active(), a.started_at))
    });
    let active: Vec<&RunnerRecord> = runners.iter().filter(|r| r.status.is_active()).collect();
    if active.len() > 1 {
        return Err(ExitError::usage(format!(
            "{} runners are active on specs named '{target}' (in {}); pass --project or a runner id",
            active.len(),
            active
                .iter()
                .map(|r| r.project.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ))
        .into());
    }
    runners.into_iter().next().ok_or_else(|| {
        ExitError::usage(format!(
            "no runner for '{target}': not a runner id nor a spec that has run (see `swr status`)"
        ))
        .into()
    })
}

/// The project `--project` names, the way `swr run -p` finds it; a directory that is no
/// longer a project (its runners are still in the store) is taken as it is.
fn project_path(config: &Config, arg: &str) -> anyhow::Result<PathBuf> {
    match super::resolve_project(config, arg) {
        Ok(p) => Ok(p.path.canonicalize().unwrap_or(p.path)),
        Err(e) => super::expand_tilde(arg).canonicalize().map_err(|_| e),
    }
}

/// `swr stop` is the way out of a pending rate-limit wait too (a bogus reset time can hold
/// every later run of the spec for days): the spec's own, and the shared clock of its provider
/// account, which would hold it just the same. Runners of the account already waiting keep
/// their wait; new ones start and find out for themselves.
fn clear_wait(store: &Store, config: &Config, r: &RunnerRecord) -> anyhow::Result<()> {
    if let Some(w) = pending_wait(store, r)? {
        println!(
            "cleared the rate-limit wait of {} (it ran until {})",
            safe(&r.spec),
            format_ts(w.until)
        );
    }
    store.clear_wait(&r.project, &r.spec)?;
    if let Some(w) = pending_account_wait(store, config, r)? {
        store.forget_account_wait(&r.provider, &config.account)?;
        println!(
            "cleared the rate-limit wait of provider {} account {} (it ran until {})",
            safe(&r.provider),
            safe(&config.account),
            format_ts(w.until)
        );
    }
    Ok(())
}

/// What asking a runner to stop did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopSent {
    /// It had already ended, with this status.
    NotActive(RunnerStatus),
    /// Its process was gone: it is now marked crashed (and what it left killed).
    WasDead,
    /// SIGTERM (or, with `kill`, two SIGINTs: "kill the agent now") was sent.
    Signalled,
}

/// Asks a runner to stop, the way `swr stop` does: only the very process that registered is
/// signalled (a recycled pid is left alone); a dead one is reaped instead. A runner that has
/// already ended has its pending rate-limit waits cleared. Returns at once; the caller clears
/// the waits of a signalled runner when it has ended (a stopping runner sets no new wait, so
/// clearing at once is final too).
pub fn stop_runner(
    config: &Config,
    store: &Store,
    r: &RunnerRecord,
    kill: bool,
) -> anyhow::Result<StopSent> {
    if !r.status.is_active() {
        clear_wait(store, config, r)?;
        return Ok(StopSent::NotActive(r.status));
    }
    // Signal only the very process that registered: a recycled pid is left alone.
    if !swr_core::store::runner_alive(r, &config.lock_dir()) {
        reap_dead(store, config)?;
        clear_wait(store, config, r)?;
        return Ok(StopSent::WasDead);
    }
    let sig = if kill {
        nix::sys::signal::Signal::SIGINT
    } else {
        nix::sys::signal::Signal::SIGTERM
    };
    let pid = nix::unistd::Pid::from_raw(r.pid as i32);
    nix::sys::signal::kill(pid, sig)?;
    if kill {
        // A second SIGINT is the runner's "kill the agent now".
        std::thread::sleep(Duration::from_millis(50));
        let _ = nix::sys::signal::kill(pid, sig);
    }
    Ok(StopSent::Signalled)
}

/// [`stop_runner`] without waiting, as `--no-wait` and `POST /api/runners/{id}/stop` do.
pub fn stop_runner_no_wait(
    config: &Config,
    store: &Store,
    r: &RunnerRecord,
    kill: bool,
) -> anyhow::Result<StopSent> {
    let sent = stop_runner(config, store, r, kill)?;
    if sent == StopSent::Signalled {
        clear_wait(store, config, r)?;
    }
    Ok(sent)
}

pub fn stop(config: &Config, args: &StopArgs) -> anyhow::Result<u8> {
    let store = open_store(config)?;
    let r = find_runner(config, &store, &args.target, args.project.as_deref())?;
    if args.no_wait {
        match stop_runner_no_wait(config, &store, &r, args.kill)? {
            StopSent::Signalled => {
                println!("asked runner {} ({}) to stop", r.runner_id, safe(&r.spec))
            }
            other => say_not_stopped(&r, other),
        }
        return Ok(exit::OK);
    }
    match stop_runner(config, &store, &r, args.kill)? {
        StopSent::Signalled => {}
        other => {
            say_not_stopped(&r, other);
            return Ok(exit::OK);
        }
    }
    let deadline = Instant::now() + config.stop_grace + Duration::from_secs(10);
    eprint!("stopping runner {} ({})…", r.runner_id, safe(&r.spec));
    loop {
        // A runner that dies instead of stopping is marked crashed, not waited for.
        reap_dead(&store, config)?;
        let now = store.runner(&r.runner_id)?;
        match now {
            Some(n) if !n.status.is_active() => {
                eprintln!(" {}", n.status.as_str());
                // After the end: a runner stopped mid-wait leaves its wait in the store.
                clear_wait(&store, config, &r)?;
                return Ok(exit::OK);
            }
            _ if Instant::now() > deadline => {
                eprintln!(
                    " still running after {:.0}s",
                    (config.stop_grace + Duration::from_secs(10)).as_secs_f64()
                );
                return Ok(exit::FAILURE);
            }
            _ => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

fn say_not_stopped(r: &RunnerRecord, sent: StopSent) {
    match sent {
        StopSent::NotActive(status) => println!(
            "runner {} ({}) is not running: {}",
            r.runner_id,
            safe(&r.spec),
            status.as_str()
        ),
        StopSent::WasDead => {
            println!("runner {} was no longer alive; marked crashed", r.runner_id)
        }
        StopSent::Signalled => {}
    }
}

pub fn logs(config: &Config, args: &LogsArgs) -> anyhow::Result<u8> {
    let store = open_store_to_read(config)?;
    let r = find_runner(config, &store, &args.target, args.project.as_deref())?;
    let Some(mut path) = r.log_path.clone() else {
        println!("runner {} has no attempt log yet", r.runner_id);
        return Ok(exit::OK);
    };
    // On a terminal the log's control characters are shown, not obeyed: the agent wrote them.
    let mut esc = std::io::stdout()
        .is_terminal()
        .then(crate::text::ByteEscaper::default);
    let mut out = std::io::stdout().lock();
    let mut pos = print_from(&path, 0, &mut out, esc.as_mut())?;
    if !args.follow {
        return Ok(exit::OK);
    }
    // Follow: new bytes of the current log, then the next attempt's log when the runner moves on.
    let mut ticks = 0u32;
    loop {
        std::thread::sleep(Duration::from_millis(100));
        pos = print_from(&path, pos, &mut out, esc.as_mut())?;
        ticks += 1;
        let Some(now) = store.runner(&r.runner_id)? else {
            return Ok(exit::OK);
        };
        // A runner killed -9 never writes its end: without this the follow never ends.
        if ticks.is_multiple_of(10)
            && now.status.is_active()
            && !swr_core::store::runner_alive(&now, &config.lock_dir())
        {
            print_from(&path, pos, &mut out, esc.as_mut())?;
            eprintln!(
                "swr: runner {} died without finishing; `swr status --reap` cleans up after it",
                now.runner_id
            );
            return Ok(exit::OK);
        }
        if let Some(next) = &now.log_path
            && next != &path
        {
            print_from(&path, pos, &mut out, esc.as_mut())?;
            writeln!(out, "\n==> {} <==", safe(&next.display().to_string()))?;
            path = next.clone();
            pos = 0;
            continue;
        }
        if !now.status.is_active() {
            print_from(&path, pos, &mut out, esc.as_mut())?;
            return Ok(exit::OK);
        }
    }
}

/// Copies `path` from byte `pos` to `out`; returns the new position.
fn print_from(
    path: &PathBuf,
    pos: u64,
    out: &mut impl Write,
    mut esc: Option<&mut crate::text::ByteEscaper>,
) -> anyhow::Result<u64> {
    let mut f = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(pos),
        Err(e) => return Err(e.into()),
    };
    f.seek(SeekFrom::Start(pos))?;
    let mut buf = vec![0u8; 64 * 1024];
    let mut at = pos;
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        match esc.as_deref_mut() {
            Some(e) => out.write_all(e.push(&buf[..n]).as_bytes())?,
            None => out.write_all(&buf[..n])?,
        }
        at += n as u64;
    }
    out.flush()?;
    Ok(at)
}

pub fn stats(config: &Config, args: &StatsArgs) -> anyhow::Result<u8> {
    let store = open_store_to_read(config)?;
    let since = match &args.since {
        Some(s) => {
            let d = swr_core::config::parse_duration(s)
                .map_err(|m| ExitError::usage(format!("--since: {m}")))?;
            // Further back than timestamps go is "all of it", not an overflow panic.
            let span = jiff::SignedDuration::try_from(d).unwrap_or(jiff::SignedDuration::MAX);
            Some(Timestamp::now().checked_sub(span).unwrap_or(Timestamp::MIN))
        }
        None => None,
    };
    if let Some(by) = args.by {
        let group = match by {
            StatsBy::Task => SpendGroup::Task,
            StatsBy::Spec => SpendGroup::Spec,
            StatsBy::Day => SpendGroup::Day,
            StatsBy::Runner => SpendGroup::Runner,
            StatsBy::Iteration => SpendGroup::Iteration,
        };
        let report = store.spend(since, group)?;
        if args.json {
            println!("{}", serde_json::to_string_pretty(&report)?);
        } else {
            print_spend(&report);
        }
        return Ok(exit::OK);
    }
    let st = store.retry_stats(since)?;
    let budget_used = store.retries_granted(Timestamp::now())?;
    let spend = store.spend(since, SpendGroup::Spec)?.total;
    if args.json {
        let mut v = serde_json::to_value(&st)?;
        if let Some(o) = v.as_object_mut() {
            o.insert(
                "retry_budget".into(),
                serde_json::json!({
                    "per_hour": config.retry_budget_per_hour,
                    "used": budget_used,
                }),
            );
            o.insert("spend".into(), serde_json::to_value(spend)?);
        }
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(exit::OK);
    }
    let pct = |v: Option<f64>| {
        v.map(|x| format!("{:.1} %", x * 100.0))
            .unwrap_or_else(|| "n/a".into())
    };
    println!(
        "period:              {}",
        args.since
            .as_ref()
            .map(|s| format!("last {s}"))
            .unwrap_or_else(|| "all recorded history".into())
    );
    println!("iterations:          {}", st.iterations);
    println!(
        "retry success rate:  {}  ({} of {} iterations that needed a retry then succeeded)",
        pct(st.retry_success_rate),
        st.retried_then_succeeded,
        st.iterations_needing_retry
    );
    println!(
        "final failure rate:  {}  ({} of {} iterations ran out of retries)",
        pct(st.final_failure_rate),
        st.iterations_out_of_retries,
        st.iterations
    );
    println!(
        "average backoff:     {}",
        st.average_backoff_ms
            .map(|ms| format!("{:.1}s", ms / 1000.0))
            .unwrap_or_else(|| "n/a".into())
    );
    if config.retry_budget_per_hour > 0 {
        println!(
            "retry budget:        {budget_used} of {} retries used in the last hour (all runners)",
            config.retry_budget_per_hour
        );
    }
    if !st.by_outcome.is_empty() {
        println!("attempts by outcome:");
        for (o, n) in &st.by_outcome {
            println!("  {:<14} {n}", o.as_str());
        }
    }
    println!(
        "spend:               {}",
        spend
            .describe()
            .map(|d| format!(
                "{d} ({} of {} attempts reported a cost)",
                spend.priced, spend.attempts
            ))
            .unwrap_or_else(|| "nothing reported".into())
    );
    Ok(exit::OK)
}

/// One line per group: its cost, tokens and attempts, then the total.
fn print_spend(r: &SpendReport) {
    if r.rows.is_empty() {
        println!("No attempt with tokens or cost recorded in this period.");
    }
    for row in &r.rows {
        let k = &row.key;
        let label = match r.by {
            SpendGroup::Task => format!(
                "{} {} {}",
                k.spec.as_deref().unwrap_or(""),
                k.task_id.as_deref().unwrap_or(""),
                k.title.as_deref().unwrap_or("")
            ),
            SpendGroup::Spec => format!(
                "{} ({})",
                k.spec.as_deref().unwrap_or(""),
                k.project
                    .as_deref()
                    .map(super::display_home)
                    .unwrap_or_default()
            ),
            SpendGroup::Day => k.day.clone().unwrap_or_default(),
            SpendGroup::Runner => format!(
                "{} {}",
                k.runner_id.as_ref().map(RunnerId::as_str).unwrap_or(""),
                k.spec.as_deref().unwrap_or("")
            ),
            SpendGroup::Iteration => format!(
                "{} {} it {}",
                k.runner_id.as_ref().map(RunnerId::as_str).unwrap_or(""),
                k.spec.as_deref().unwrap_or(""),
                k.iteration.unwrap_or(0)
            ),
        };
        // Spec names and task titles come from the project: escaped, and cut to fit the row.
        println!("{}", spend_line(&clipped(&label, 44), &row.totals));
    }
    if let Some(u) = &r.unattributed
        && u.attempts > 0
    {
        println!("{}", spend_line("(attempts that ticked no task)", u));
    }
    println!("{}", spend_line("total", &r.total));
}

fn spend_line(label: &str, t: &Totals) -> String {
    let est = if t.estimated_usd > 0.0 {
        format!(" (est. {})", usd(t.estimated_usd))
    } else {
        String::new()
    };
    format!(
        "{label:<44} {:>9}{est}  {:>7} in {:>7} cached {:>7} out  {} attempt{}",
        usd(t.cost_usd),
        tokens(t.input_tokens),
        tokens(t.cached_tokens),
        tokens(t.output_tokens),
        t.attempts,
        if t.attempts == 1 { "" } else { "s" }
    )
}
