//! `swr run`: picks the project and spec (asking on a terminal when they are not given),
//! installs the stop signals, makes sure no other runner has the spec, and drives the runner,
//! mapping how it ended to an exit code.

use std::io::{BufRead, IsTerminal, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use swr_core::config::Config;
use swr_core::event::{RunEnd, RunnerEvent, StopCause};
use swr_core::runner::{self, RunError, RunOptions, StopLevel, StopRequest};
use swr_core::spec::{self, Project, SpecError};
use swr_core::store::{LockError, RunnerId, RunnerStatus, RunnerUpdate, SpecGuard, SpecLock};
use tokio::sync::watch;

use crate::cli::RunArgs;
use crate::exit::{self, ExitError};
use crate::report::{Mode, Reporter};
use crate::text::one_line as safe;

pub fn run(config: &Config, args: &RunArgs) -> anyhow::Result<u8> {
    let project = pick_project(config, args.project.as_deref())?;
    let specs = pick_specs(config, &project, args)?;
    let provider = args
        .provider
        .clone()
        .unwrap_or_else(|| config.provider.clone());
    let model = args.model.clone().or_else(|| config.model.clone());
    let swr_exe = std::env::current_exe()?;
    let registry = config.provider_registry(swr_exe.clone())?;
    if let Err(e) = registry.get(&provider) {
        return Err(ExitError::usage(e.to_string()).into());
    }
    let max_runtime = match &args.max_runtime {
        Some(s) => Some(parse_max_runtime(s)?),
        None => config.max_runtime,
    };
    let base = RunOptions {
        project: project.path.clone(),
        spec: String::new(),
        provider,
        model,
        max_iterations: args.max_iterations.or(config.max_iterations),
        max_runtime,
        // --max-runtime bounds the whole command, not each spec of --all: "8h" overnight
        // must not become 8h per spec.
        clock_started: Some(jiff::Timestamp::now()),
        ignore_wait: args.ignore_wait,
        worktree: args.worktree || args.parallel.is_some(),
        max_cost_usd: args.max_cost,
        extra_env: Vec::new(),
        swr_exe,
    };
    if args.dry_run {
        for s in &specs {
            dry_run(
                config,
                &RunOptions {
                    spec: s.clone(),
                    ..base.clone()
                },
            )?;
        }
        return Ok(exit::OK);
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(async {
        let stop = Stop::install()?;
        if let Some(n) = args.parallel {
            return run_parallel(config, &base, specs, n, &stop, args.json).await;
        }
        let mut code = exit::OK;
        let mut skipped = Vec::new();
        let deadline = base
            .max_runtime
            .and_then(|d| std::time::Instant::now().checked_add(d));
        for s in specs {
            let opts = RunOptions {
                spec: s,
                ..base.clone()
            };
            if deadline.is_some_and(|d| std::time::Instant::now() >= d) {
                let _ = writeln!(
                    std::io::stderr(),
                    "swr: --max-runtime reached; spec '{}' and any after it not started",
                    safe(&opts.spec)
                );
                code = exit::FAILURE;
                break;
            }
            match run_one(config, &opts, &stop, Mode::pick(args.json)).await {
                Ok(c) => code = c,
                // With --all a spec another runner holds is its business: go on with the
                // rest instead of giving up on every spec (two `--all` runs share the work).
                Err(e)
                    if args.all
                        && e.downcast_ref::<ExitError>()
                            .is_some_and(|x| x.code == exit::TEMPFAIL) =>
                {
                    let _ = writeln!(
                        std::io::stderr(),
                        "swr: skipping spec '{}': another runner has it",
                        safe(&opts.spec)
                    );
                    skipped.push(opts.spec);
                    continue;
                }
                Err(e) => return Err(e),
            }
            if code != exit::OK {
                break;
            }
        }
        // The other runner may have finished them meanwhile.
        skipped.retain(|s| {
            let tasks = config.tasks_path(&project.path, s);
            !spec::read_tasks(&tasks)
                .is_ok_and(|l| l.counts_with(config.include_optional_tasks).is_complete())
        });
        if code == exit::OK && !skipped.is_empty() {
            return Err(ExitError::new(
                exit::TEMPFAIL,
                format!(
                    "spec(s) {} are being run by another runner; `swr status` shows them",
                    safe(&skipped.join(", "))
                ),
            )
            .into());
        }
        Ok(code)
    })
}

/// `--all --parallel N`: up to N specs at once, each in its own worktree. The exit code is
/// the worst of theirs: stopped, then failed, then skipped because another runner has it.
async fn run_parallel(
    config: &Config,
    base: &RunOptions,
    specs: Vec<String>,
    n: u32,
    stop: &Stop,
    json: bool,
) -> anyhow::Result<u8> {
    let mode = if json { Mode::Json } else { Mode::Plain };
    let slots = std::sync::Arc::new(tokio::sync::Semaphore::new(n as usize));
    let mut set = tokio::task::JoinSet::new();
    for s in specs {
        let Ok(permit) = slots.clone().acquire_owned().await else {
            break;
        };
        if stop.requests.borrow().is_set() {
            break;
        }
        let (config, stop) = (config.clone(), stop.clone());
        let opts = RunOptions {
            spec: s.clone(),
            ..base.clone()
        };
        set.spawn(async move {
            let reporter = Reporter::new(mode).with_prefix(&opts.spec);
            let code = run_with(&config, &opts, &stop, reporter).await;
            drop(permit);
            (opts.spec, code)
        });
    }
    let mut codes = Vec::new();
    while let Some(joined) = set.join_next().await {
        let (spec, code) = joined?;
        codes.push(match code {
            Ok(c) => c,
            Err(e) => {
                let code = e
                    .downcast_ref::<ExitError>()
                    .map_or(exit::FAILURE, |x| x.code);
                let _ = writeln!(
                    std::io::stderr(),
                    "swr: [{}] {}",
                    safe(&spec),
                    crate::text::lines(&format!("{e:#}"))
                );
                code
            }
        });
    }
    let rank = |c: u8| match c {
        exit::STOPPED => 4,
        exit::FAILURE => 3,
        exit::TEMPFAIL => 2,
        exit::OK => 0,
        _ => 1,
    };
    Ok(codes
        .into_iter()
        .max_by_key(|c| rank(*c))
        .unwrap_or(exit::OK))
}

/// `--max-runtime`: a duration above 0 and at most the `max_runtime` key's maximum (a year),
/// so that no deadline computed from it can overflow the clock.
fn parse_max_runtime(s: &str) -> anyhow::Result<std::time::Duration> {
    let d = swr_core::config::parse_duration(s)
        .map_err(|m| ExitError::usage(format!("--max-runtime: {m}")))?;
    // Zero would create a runner only to stop it at once with exit 1.
    if d.is_zero() {
        return Err(ExitError::usage("--max-runtime must be more than 0").into());
    }
    if let Some(max) = swr_core::config::duration_max("max_runtime")
        && d > max
    {
        return Err(ExitError::usage(format!(
            "--max-runtime {s}: at most {} is allowed",
            swr_core::config::human_duration(max)
        ))
        .into());
    }
    Ok(d)
}

/// The stop requests of a `swr run` process, and how many of its runs have an agent running
/// (`--parallel` runs several): what "stopping" can promise depends on it.
#[derive(Debug, Clone)]
pub struct Stop {
    pub requests: watch::Receiver<StopRequest>,
    agents_running: Arc<AtomicUsize>,
}

impl Stop {
    /// Listens to SIGINT, SIGTERM, SIGQUIT and SIGHUP (unless SIGHUP was ignored at start: see
    /// [`crate::signals`]). The first of them stops the run gracefully; a second SIGINT kills
    /// the agent at once. SIGQUIT is SIGTERM's twin here: its default action would dump core
    /// and leave the agent running unsupervised.
    pub fn install() -> anyhow::Result<Stop> {
        use tokio::signal::unix::{SignalKind, signal};
        let (tx, requests) = watch::channel(StopRequest::default());
        let stop = Stop {
            requests,
            agents_running: Arc::new(AtomicUsize::new(0)),
        };
        let mut int = signal(SignalKind::interrupt())?;
        let mut term = signal(SignalKind::terminate())?;
        let mut quit = signal(SignalKind::quit())?;
        let mut hup = crate::signals::hangup()?;
        let agents = stop.agents_running.clone();
        tokio::spawn(async move {
            loop {
                let (level, cause) = tokio::select! {
                    _ = int.recv() => {
                        let level = if tx.borrow().is_set() { StopLevel::Kill } else { StopLevel::Graceful };
                        (level, StopCause::User)
                    }
                    _ = term.recv() => (StopLevel::Graceful, StopCause::User),
                    _ = quit.recv() => (StopLevel::Graceful, StopCause::User),
                    () = crate::signals::recv(&mut hup) => (StopLevel::Graceful, StopCause::HangUp),
                };
                // Not eprintln!: with stderr's reader gone (as after a hang-up) it would panic
                // this task, and every later signal would be swallowed by the handler it
                // leaves installed.
                let mut err = std::io::stderr();
                let running = agents.load(Ordering::SeqCst) > 0;
                let prefix = if cause == StopCause::HangUp {
                    "\nswr: hang-up (SIGHUP)"
                } else {
                    "\nswr"
                };
                if level == StopLevel::Graceful && !tx.borrow().is_set() {
                    let _ = if running {
                        writeln!(
                            err,
                            "{prefix}: stopping the agent (SIGTERM, then SIGKILL after the grace period); press Ctrl-C again to kill it now"
                        )
                    } else {
                        writeln!(err, "{prefix}: stopping (no agent is running)")
                    };
                } else if level == StopLevel::Kill && running {
                    let _ = writeln!(err, "\nswr: killing the agent now");
                }
                tx.send_if_modified(|r| r.raise(level, cause));
            }
        });
        Ok(stop)
    }
}

/// Runs one spec to its end and maps the end to an exit code.
pub async fn run_one(
    config: &Config,
    opts: &RunOptions,
    stop: &Stop,
    mode: Mode,
) -> anyhow::Result<u8> {
    run_with(config, opts, stop, Reporter::new(mode)).await
}

async fn run_with(
    config: &Config,
    opts: &RunOptions,
    stop: &Stop,
    reporter: Reporter,
) -> anyhow::Result<u8> {
    // Held until the run ends; see `claim_spec`.
    let _guard = claim_spec(config, opts)?;
    let mode = reporter.mode();
    let reporter = Arc::new(std::sync::Mutex::new(reporter));
    let ticker = (mode == Mode::Bar).then(|| {
        let r = reporter.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(std::time::Duration::from_millis(500)).await;
                if let Ok(r) = r.lock() {
                    r.tick();
                }
            }
        })
    });
    // Whether this run's agent is running, kept in the process-wide count.
    let agents = stop.agents_running.clone();
    let mut running = false;
    let mut runner_id: Option<RunnerId> = None;
    let mut sink = |ev: &RunnerEvent| {
        if let RunnerEvent::Started { runner_id: id, .. } = ev {
            runner_id = Some(id.clone());
        }
        let now = match ev {
            RunnerEvent::AttemptStarted { .. } => Some(true),
            RunnerEvent::AttemptFinished { .. }
            | RunnerEvent::RetryScheduled { .. }
            | RunnerEvent::Waiting { .. }
            | RunnerEvent::Finished { .. } => Some(false),
            _ => None,
        };
        if let Some(now) = now.filter(|n| *n != running) {
            running = now;
            if now {
                agents.fetch_add(1, Ordering::SeqCst);
            } else {
                agents.fetch_sub(1, Ordering::SeqCst);
            }
        }
        if let Ok(mut r) = reporter.lock() {
            r.handle(ev);
        }
    };
    let result = runner::run(config, opts, stop.requests.clone(), &mut sink).await;
    if running {
        stop.agents_running.fetch_sub(1, Ordering::SeqCst);
    }
    if let Some(t) = ticker {
        t.abort();
    }
    if let (Err(RunError::Store(e)), Some(id)) = (&result, &runner_id) {
        record_store_failure(config, opts, id, &format!("state store failed: {e}"));
    }
    match result {
        Ok(end) => Ok(exit_code(&end)),
        Err(RunError::Locked(e @ LockError::Held { .. })) => Err(ExitError::new(
            exit::TEMPFAIL,
            format!(
                "{e}\n  the spec '{}' is already being run; `swr status` shows it, `swr stop {}` stops it",
                safe(&opts.spec),
                safe(&opts.spec)
            ),
        )
        .into()),
        Err(RunError::Config(e)) => Err(e.into()),
        Err(RunError::Provider(e)) => Err(ExitError::new(exit::CONFIG, e.to_string()).into()),
        Err(RunError::Spec(e)) => Err(ExitError::usage(e.to_string()).into()),
        Err(RunError::Worktree(e)) => Err(ExitError::usage(e.to_string()).into()),
        Err(e) => Err(e.into()),
    }
}

/// Makes sure nobody else runs this spec, beyond the runner's own lock file (which a user
/// cleaning `~/.cache` can delete under a live runner, and which a symlinked spec directory
/// names twice):
///
/// 1. the [`SpecGuard`] of the resolved spec directory, held for the whole run: `specs/alias
///    -> demo` and `demo` are one spec, and no file deletion frees it;
/// 2. the store's record of a live runner of the same spec (pid, start time and boot id
///    checked), for a runner that lost its lock file.
///
/// It also reconciles dead runners now, before the runner takes the lock and so truncates the
/// lock file that may hold the exit note of the last one (see [`record_store_failure`]).
fn claim_spec(config: &Config, opts: &RunOptions) -> anyhow::Result<Option<SpecGuard>> {
    let spec_dir = config.specs_dir(&opts.project).join(&opts.spec);
    let held = |holder: String| {
        ExitError::new(
            exit::TEMPFAIL,
            format!(
                "spec '{}' is already being run by {holder}; `swr status` shows it, `swr stop {}` stops it",
                safe(&opts.spec),
                safe(&opts.spec)
            ),
        )
    };
    let guard = match SpecGuard::acquire(&spec_dir) {
        Ok(g) => Some(g),
        Err(LockError::Held {
            holder_pid, path, ..
        }) => {
            let pid =
                holder_pid.map_or_else(|| "another process".to_string(), |p| format!("pid {p}"));
            return Err(held(format!("{pid} (spec directory {})", path.display())).into());
        }
        // Without the guard the lock file and the store still stand between two runners.
        Err(e @ LockError::Io { .. }) => {
            tracing::warn!("running without the spec guard: {e}");
            None
        }
    };
    let store = super::runners::open_store(config)?;
    let lock_dir = config.lock_dir();
    for r in runner::reconcile_and_reap(&store, &lock_dir)? {
        let text = if r.runner.status == RunnerStatus::Failed {
            format!(
                "runner {} of {} had ended on an error the store could not take then: {}",
                r.runner.runner_id,
                r.runner.spec,
                r.runner.reason.as_deref().unwrap_or("")
            )
        } else {
            r.describe()
        };
        let _ = writeln!(std::io::stderr(), "swr: {}", safe(&text));
    }
    if let Some(r) = store.live_runner(&lock_dir, &opts.project, &opts.spec)? {
        return Err(held(format!(
            "runner {} (pid {}), whose lock file is gone (was {} deleted?)",
            r.runner_id,
            r.pid,
            config.lock_dir().display()
        ))
        .into());
    }
    // `--ignore-wait`, once the spec is ours: the runner skips the spec's own persisted wait;
    // the shared clock of the provider account is the other wait a bogus reset leaves behind.
    if opts.ignore_wait
        && let Some(w) = store.account_wait(&opts.provider, &config.account)?
        && w.until > jiff::Timestamp::now()
    {
        store.forget_account_wait(&opts.provider, &config.account)?;
        let _ = writeln!(
            std::io::stderr(),
            "swr: --ignore-wait: not waiting for the rate limit of provider {} account {} until {} ({})",
            safe(&opts.provider),
            safe(&config.account),
            swr_core::store::format_ts(w.until),
            safe(&w.reason)
        );
    }
    Ok(guard)
}

/// The store failed mid-run (a full disk, a lock held too long): the runner ends on purpose.
/// Record that as a failure with its reason; when the store still refuses, leave the reason in
/// the lock file, so that the next look at the store records it instead of "runner process
/// died" (see `Store::reconcile`).
fn record_store_failure(config: &Config, opts: &RunOptions, id: &RunnerId, reason: &str) {
    let update = RunnerUpdate {
        status: Some(RunnerStatus::Failed),
        reason: Some(Some(format!("swr error: {reason}"))),
        agent: Some(None),
        ..Default::default()
    };
    let recorded = swr_core::store::Store::open(&config.store_path())
        .and_then(|s| s.update_runner(id, &update))
        .is_ok_and(|r| r.status == RunnerStatus::Failed);
    if !recorded
        && let Err(e) =
            SpecLock::record_exit(&config.lock_dir(), &opts.project, &opts.spec, id, reason)
    {
        let _ = writeln!(
            std::io::stderr(),
            "swr: could not record the failure anywhere ({e}); `swr status` will show the runner as crashed"
        );
    }
}

pub fn exit_code(end: &RunEnd) -> u8 {
    match end {
        RunEnd::Completed => exit::OK,
        RunEnd::Stopped { .. } => exit::STOPPED,
        _ => exit::FAILURE,
    }
}

fn pick_project(config: &Config, arg: Option<&str>) -> anyhow::Result<Project> {
    if let Some(a) = arg {
        return super::resolve_project(config, a);
    }
    let cwd = std::env::current_dir()?;
    // From anywhere inside the project (`src/`, `.spec-workflow/`), like git.
    if let Some(p) = cwd
        .ancestors()
        .find_map(|d| spec::project_at(d, &config.layout()).ok())
    {
        return Ok(p);
    }
    if !std::io::stdin().is_terminal() {
        return Err(ExitError::usage(format!(
            "no --project given and {} is not a project; pass --project DIR",
            cwd.display()
        ))
        .into());
    }
    let projects = if config.repos_root.is_dir() {
        spec::discover_projects(&config.repos_root, &config.layout(), &config.ignore_dirs)?
    } else {
        Vec::new()
    };
    if projects.is_empty() {
        return Err(ExitError::usage(format!(
            "no --project given, {} is not a project and repos_root {} holds none",
            cwd.display(),
            config.repos_root.display()
        ))
        .into());
    }
    let names: Vec<String> = projects
        .iter()
        .map(|p| format!("{}  ({})", p.name, p.path.display()))
        .collect();
    let i = ask("Project", &names)?;
    Ok(projects.into_iter().nth(i).expect("index from the list"))
}

/// The specs of `project` with work left. A spec whose tasks.md cannot be read (a FIFO, a
/// device, too large) costs a warning, never the other specs.
fn unfinished_specs(project: &Project, include_optional: bool) -> Vec<String> {
    let mut out = Vec::new();
    for s in &project.specs {
        match s.read_tasks() {
            Ok(l) if l.counts_with(include_optional).remaining() > 0 => out.push(s.name.clone()),
            Ok(_) | Err(SpecError::NotFound { .. }) => {}
            Err(e) => {
                let _ = writeln!(
                    std::io::stderr(),
                    "swr: warning: skipping spec '{}': {}",
                    safe(&s.name),
                    safe(&e.to_string())
                );
            }
        }
    }
    out
}

fn pick_specs(config: &Config, project: &Project, args: &RunArgs) -> anyhow::Result<Vec<String>> {
    // Specs running in a worktree are judged by the worktree's tasks.md.
    let mut projects = [project.clone()];
    swr_core::runner::worktree::redirect_tasks(&config.cache_dir, &mut projects, &config.layout());
    let [project] = projects;
    let project = &project;
    if args.all {
        let unfinished = unfinished_specs(project, config.include_optional_tasks);
        if unfinished.is_empty() {
            eprintln!(
                "swr: every spec of {} is done",
                safe(&project.path.display().to_string())
            );
        }
        return Ok(unfinished);
    }
    if let Some(s) = &args.spec {
        if !project.specs.iter().any(|x| &x.name == s) {
            return Err(ExitError::usage(format!(
                "no spec '{s}' in {} (specs: {})",
                config.specs_dir(&project.path).display(),
                project
                    .specs
                    .iter()
                    .map(|x| x.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
            .into());
        }
        return Ok(vec![s.clone()]);
    }
    let unfinished = unfinished_specs(project, config.include_optional_tasks);
    match unfinished.len() {
        1 => Ok(unfinished),
        0 => Err(ExitError::usage(format!(
            "no unfinished spec in {}; pass --spec NAME",
            project.path.display()
        ))
        .into()),
        _ if std::io::stdin().is_terminal() => {
            let i = ask("Spec", &unfinished)?;
            Ok(vec![unfinished[i].clone()])
        }
        _ => Err(ExitError::usage(format!(
            "several unfinished specs ({}); pass --spec NAME or --all",
            unfinished.join(", ")
        ))
        .into()),
    }
}

/// A numbered menu on stderr, answered on stdin.
fn ask(what: &str, items: &[String]) -> anyhow::Result<usize> {
    let mut err = std::io::stderr();
    for (i, item) in items.iter().enumerate() {
        writeln!(err, "  {:>3}) {item}", i + 1)?;
    }
    let stdin = std::io::stdin();
    loop {
        write!(err, "{what} [1-{}]: ", items.len())?;
        err.flush()?;
        let mut line = String::new();
        if stdin.lock().read_line(&mut line)? == 0 {
            return Err(ExitError::usage("no choice made").into());
        }
        match line.trim().parse::<usize>() {
            Ok(n) if (1..=items.len()).contains(&n) => return Ok(n - 1),
            _ => {
                if let Some(i) = items
                    .iter()
                    .position(|s| s.split_whitespace().next() == Some(line.trim()))
                {
                    return Ok(i);
                }
                writeln!(err, "  enter a number between 1 and {}", items.len())?;
            }
        }
    }
}

fn dry_run(config: &Config, opts: &RunOptions) -> anyhow::Result<()> {
    let registry = config.provider_registry(opts.swr_exe.clone())?;
    let def = registry.get(&opts.provider)?;
    let tasks_path = config.tasks_path(&opts.project, &opts.spec);
    let list = spec::read_tasks(&tasks_path)?;
    let c = list.counts_with(config.include_optional_tasks);
    let prompt = runner::render_prompt(
        config,
        &opts.project,
        &opts.spec,
        &tasks_path,
        &list,
        false,
        None,
    )?;
    let req = swr_core::provider::AttemptRequest {
        prompt: &prompt,
        model: opts.model.as_deref(),
        cwd: &opts.project,
        is_root: nix::unistd::geteuid().is_root(),
        resume_session: None,
    };
    let cmd = swr_core::provider::command(&def, &req, &config.codex_config_overrides);
    let path_env = std::env::var_os("PATH").unwrap_or_default();
    let found = swr_core::provider::which(&cmd.program, &path_env);
    println!(
        "spec:        {} ({}/{} tasks done)",
        safe(&opts.spec),
        c.done,
        c.total
    );
    println!("project:     {}", safe(&opts.project.display().to_string()));
    println!(
        "provider:    {} ({})",
        safe(&opts.provider),
        safe(
            &found
                .map(|p| p.display().to_string())
                .unwrap_or_else(|| format!("{:?} NOT FOUND on PATH", cmd.program))
        )
    );
    let argv: Vec<String> = cmd
        .args
        .iter()
        .map(|a| {
            if a == &prompt {
                "<prompt>".into()
            } else {
                a.clone()
            }
        })
        .collect();
    println!(
        "command:     {} {}",
        safe(&cmd.program),
        safe(&argv.join(" "))
    );
    if let swr_core::supervise::StdinInput::Text(t) = &cmd.stdin {
        println!(
            "stdin:       {}",
            if t == &prompt {
                format!(
                    "<prompt> ({} bytes: too large for an argument)",
                    prompt.len()
                )
            } else {
                format!("{} bytes", t.len())
            }
        );
    }
    println!(
        "logs:        {}",
        safe(
            &config
                .log_dir(&opts.project, &opts.spec)
                .display()
                .to_string()
        )
    );
    println!(
        "timeouts:    idle {}, wall {}, stop grace {:.1}s",
        fmt_opt(config.activity_timeout),
        fmt_opt(config.iteration_timeout),
        config.stop_grace.as_secs_f64()
    );
    println!(
        "retry:       {} retries, {:.1}s × {} up to {:.0}s, jitter {:?}, on {}",
        config.retry_max_retries,
        config.retry_backoff.as_secs_f64(),
        config.retry_backoff_multiplier,
        config.retry_max_backoff.as_secs_f64(),
        config.retry_jitter,
        config
            .retry_on
            .iter()
            .map(|o| o.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    );
    let budgets: Vec<String> = [
        opts.max_cost_usd
            .or(config.max_cost_usd)
            .map(|b| format!("max_cost_usd {}", swr_core::cost::usd(b))),
        config.max_tokens.map(|b| format!("max_tokens {b}")),
        config
            .spec_budget_usd
            .map(|b| format!("spec_budget_usd {}", swr_core::cost::usd(b))),
    ]
    .into_iter()
    .flatten()
    .collect();
    println!(
        "budgets:     {}",
        if budgets.is_empty() {
            "none".to_string()
        } else {
            budgets.join(", ")
        }
    );
    let spec_dir = config.specs_dir(&opts.project).join(&opts.spec);
    let spec_cfg =
        runner::verify::read_spec_config(&spec_dir).map_err(|m| ExitError::new(exit::CONFIG, m))?;
    let verify = match (&spec_cfg.verify, &config.verify_command) {
        (Some(v), _) => format!(
            "{} (the spec's {})",
            runner::machine::shell_words(v),
            runner::verify::SPEC_CONFIG_FILE
        ),
        (None, Some(v)) => format!("{} (verify_command)", runner::machine::shell_words(v)),
        (None, None) => "none (ticks are accepted as they are)".into(),
    };
    println!(
        "verify:      {}; a task's _Verify: line overrides it",
        crate::text::one_line(&verify)
    );
    println!("prompt:");
    for line in prompt.lines() {
        println!("  | {}", safe(line));
    }
    Ok(())
}

fn fmt_opt(d: Option<std::time::Duration>) -> String {
    d.map(|d| format!("{:.1}s", d.as_secs_f64()))
        .unwrap_or_else(|| "off".into())
}
