//! The runner's async shell: performs the [`Effect`]s of the [`Machine`] and turns what
//! happened into its next [`Input`]. It decides nothing: what to run next, whether to retry,
//! when to stop, which ticks stand are the machine's. It owns the I/O: the agent's process and
//! the verify checks' (through `supervise`), the attempt logs, tasks.md (through the
//! [`TasksGuard`]), git, the store, the notifiers and the clock.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use jiff::Timestamp;
use tokio::sync::watch;

use crate::config::Config;
use crate::cost::{Totals, Usage};
use crate::event::{RunEnd, RunnerEvent, StopCause};
use crate::provider::{self, AgentSignal, ProviderDef};
use crate::slots::{Slot, SlotPool};
use crate::spec::{TaskList, TaskStatus};
use crate::store::{
    AccountWait, AgentProcess, AttemptEnd, AttemptFilter, NewAttempt, RunnerId, RunnerStatus,
    RunnerUpdate, Store, StoreError, StoreTx,
};
use crate::supervise::{self, AttemptExit, ExitReport, StopHandle, SuperviseOptions};

use super::attempt_log::{self, LogNamer};
use super::classify::{self, AttemptSignals};
use super::guard::TasksGuard;
use super::machine::{
    AttemptPlan, AttemptReport, AttemptVerdict, CheckRun, Effect, Input, Machine, Observation,
    PersistedWait, Record, RetryGrant,
};
use super::notify::{Notice, Notifiers, NotifyEvent};
use super::verify::{self, SpecConfig, VerifyCommand};
use super::worktree::{self, MergeResult, Worktree};
use super::{EventSink, RunError, RunOptions, StopLevel, StopRequest, git, record_swr_failure};

/// An attempt between its record and its spawn.
struct StartedAttempt {
    attempt_id: i64,
    cmd: supervise::CommandSpec,
    sopts: SuperviseOptions,
    /// Handed to the supervisor at the spawn.
    log: Option<std::fs::File>,
    log_path: PathBuf,
    started_at: Timestamp,
}

/// The attempt that ended last, until the machine's verdict on it is written.
struct Ended {
    attempt_id: i64,
    log_path: PathBuf,
    /// Everything but the verdict's parts.
    end: AttemptEnd,
    summary: String,
    /// When its exit was seen, for the overhead measurement.
    exit_seen: Option<Instant>,
}

pub(super) struct Driver<'a, 'e> {
    config: &'a Config,
    opts: &'a RunOptions,
    def: ProviderDef,
    store: Store,
    runner_id: RunnerId,
    guard: TasksGuard,
    /// tasks.md as last read: what the next prompt is rendered from.
    list: TaskList,
    stop: watch::Receiver<StopRequest>,
    emit: EventSink<'e>,
    log_namer: LogNamer,
    is_root: bool,
    /// Where the agent works: the project, or the spec's git worktree.
    workdir: PathBuf,
    worktree: Option<Worktree>,
    git: bool,
    /// tasks.md relative to the repository top, to read it back from HEAD.
    tasks_in_repo: Option<String>,
    pending: Vec<Record>,
    ended: Option<Ended>,
    notifiers: Notifiers,
    slots: SlotPool,
    /// A slot taken after waiting in line, kept while the machine decides again; released by
    /// anything but the next spawn.
    held_slot: Option<Slot>,
    /// Notifications the machine asked for, sent once the store says what they announce.
    notices: Vec<(NotifyEvent, String)>,
    /// The spec's `swr.json`, read when the run starts.
    spec_config: SpecConfig,
    /// HEAD and the paths with changes before the current attempt: what it changed is
    /// measured from these.
    head_before: Option<String>,
    /// Uncommitted paths as last seen (at the start, then after a ticking attempt).
    dirty_before: Vec<String>,
    /// HEAD at the last observation: the next attempt's starting point.
    last_head: Option<String>,
    /// Tasks done when the current attempt started: a tick is a task done now, not then.
    done_before: std::collections::HashSet<String>,
    head_reader: Option<git::HeadReader>,
    /// The log of the attempt that ended last, for its checks' logs beside it.
    last_log: Option<PathBuf>,
    /// When the last agent's exit was seen, and the time spent since in git and tasks.md:
    /// the runner's own overhead between agents is measured from these.
    last_exit: Option<Instant>,
    checks_time: Duration,
}

impl<'a, 'e> Driver<'a, 'e> {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn new(
        config: &'a Config,
        opts: &'a RunOptions,
        def: ProviderDef,
        store: Store,
        runner_id: RunnerId,
        guard: TasksGuard,
        list: TaskList,
        stop: watch::Receiver<StopRequest>,
        emit: EventSink<'e>,
        worktree: Option<Worktree>,
    ) -> Result<Self, RunError> {
        let log_dir = config.log_dir(&opts.project, &opts.spec);
        let log_namer = match LogNamer::new(&log_dir, &config.log_file_template, &opts.spec) {
            Ok(n) => n,
            Err(source) => {
                let e = RunError::Io {
                    path: log_dir,
                    source,
                };
                record_swr_failure(&store, &runner_id, &e);
                return Err(e);
            }
        };
        let workdir = worktree
            .as_ref()
            .map_or_else(|| opts.project.clone(), |w| w.path.clone());
        let is_git = git::is_repo(&workdir);
        let tasks_in_repo = if is_git {
            git::repo_relative(&workdir, guard.path())
        } else {
            None
        };
        // The spec's own directory where the agent works (its worktree, when it has one).
        let spec_dir = guard.path().parent().map_or_else(
            || config.specs_dir(&workdir).join(&opts.spec),
            Path::to_path_buf,
        );
        let spec_config = match verify::read_spec_config(&spec_dir) {
            Ok(c) => c,
            Err(message) => {
                let e = RunError::Config(crate::config::ConfigError::Invalid {
                    origin: spec_dir
                        .join(verify::SPEC_CONFIG_FILE)
                        .display()
                        .to_string(),
                    key: "verify".into(),
                    message,
                });
                record_swr_failure(&store, &runner_id, &e);
                return Err(e);
            }
        };
        let outbox = crate::webhook::Outbox::new(
            config.notify_webhooks.clone(),
            config.store_path(),
            runner_id.clone(),
        );
        let mut d = Driver {
            config,
            opts,
            def,
            store,
            runner_id,
            guard,
            list,
            stop,
            emit,
            log_namer,
            is_root: nix::unistd::Uid::effective().is_root(),
            workdir,
            worktree,
            git: is_git,
            tasks_in_repo,
            pending: Vec::new(),
            ended: None,
            notifiers: Notifiers::new(config.notify_command.clone(), config.notify_timeout)
                .with_webhooks(outbox),
            slots: SlotPool::new(&config.cache_dir, config.max_concurrent_agents),
            held_slot: None,
            notices: Vec::new(),
            spec_config,
            head_before: None,
            dirty_before: Vec::new(),
            last_head: None,
            done_before: Default::default(),
            head_reader: None,
            last_log: None,
            last_exit: None,
            checks_time: Duration::ZERO,
        };
        d.prepare_project();
        Ok(d)
    }

    /// tasks.md relative to the repository top, `None` outside git.
    pub(super) fn tasks_in_repo(&self) -> Option<String> {
        self.tasks_in_repo.clone()
    }

    fn warn(&mut self, message: String) {
        (self.emit)(&RunnerEvent::Warning { message });
    }

    /// Warns about what the user should know before the first attempt, and keeps swr's own
    /// files out of `git status`.
    fn prepare_project(&mut self) {
        let project = self.opts.project.clone();
        if !self.git {
            self.warn(format!(
                "{} is not a git repository: progress is judged by tasks.md alone",
                project.display()
            ));
            return;
        }
        let dirty = git::dirty_paths(&self.workdir);
        // What was changed before any attempt is not what an attempt changed.
        self.dirty_before.clone_from(&dirty);
        self.head_reader = Some(git::HeadReader::new(&self.workdir));
        if let Some(first) = dirty.first() {
            self.warn(format!(
                "the working tree has {} uncommitted change(s) (e.g. {first}); the agent will see them",
                dirty.len()
            ));
        }
        let logs_root = project
            .join(&self.config.spec_workflow_dir_name)
            .join(&self.config.log_dir_name);
        let retry_dir = self.config.retry_log_dir(&project);
        let patterns: Vec<String> = [logs_root, retry_dir]
            .iter()
            .filter_map(|p| git::repo_relative(&project, p))
            .map(|rel| format!("/{rel}/"))
            .collect();
        if let Err(e) = git::ensure_excluded(&project, &patterns) {
            self.warn(format!(
                "could not add swr's log dirs to .git/info/exclude: {e}"
            ));
        }
    }

    fn stop_request(&self) -> StopRequest {
        *self.stop.borrow()
    }

    /// Performs the machine's effects until it finishes the run.
    pub(super) async fn drive(&mut self, m: &mut Machine) -> Result<RunEnd, RunError> {
        let wait = self
            .store
            .wait_for(&self.opts.project, &self.opts.spec)?
            .map(|(until, reason)| PersistedWait { until, reason });
        let spec_spent = self.store.spec_spend(&self.opts.project, &self.opts.spec)?;
        let head = self.head();
        let observed = self.observation(head);
        let mut input = Input::Started {
            now: Timestamp::now(),
            observed,
            wait,
            spec_spent,
        };
        loop {
            let mut next = None;
            for effect in m.step(input) {
                if !matches!(
                    effect,
                    Effect::Spawn(_) | Effect::Record(_) | Effect::Emit(_)
                ) {
                    self.held_slot = None;
                }
                match effect {
                    Effect::Record(r) => self.pending.push(r),
                    Effect::Emit(ev) => (self.emit)(&ev),
                    Effect::Notify { event, message } => self.notices.push((event, message)),
                    Effect::Observe => {
                        self.flush()?;
                        self.send_notices();
                        next = Some(self.observe());
                    }
                    Effect::Spawn(plan) => next = Some(self.attempt(plan, m.deadline()).await?),
                    Effect::Verify { tasks, head } => {
                        next = Some(self.verify(&tasks, head.as_deref(), m.deadline()).await);
                    }
                    Effect::Untick { tasks, message } => {
                        next = Some(self.untick(&tasks, &message));
                    }
                    Effect::SleepUntil(t) => {
                        self.flush()?;
                        self.send_notices();
                        next = Some(self.sleep_until(t).await);
                    }
                    Effect::TakeRetry => {
                        self.flush()?;
                        self.send_notices();
                        next = Some(self.take_retry()?);
                    }
                    Effect::Finish(end) => {
                        // The run's notification waits for `finish`, which writes its end.
                        self.flush()?;
                        return Ok(end);
                    }
                }
            }
            input = match next {
                Some(i) => i,
                None => {
                    // Every step ends with one of the effects above: the machine would be stuck.
                    return Err(RunError::Io {
                        path: self.guard.path().to_path_buf(),
                        source: std::io::Error::other("swr internal error: the runner stalled"),
                    });
                }
            };
        }
    }

    /// Sends the notifications asked for so far.
    fn send_notices(&mut self) {
        for (event, reason) in std::mem::take(&mut self.notices) {
            self.notifiers.notify(Notice {
                event,
                project: &self.opts.project,
                spec: &self.opts.spec,
                runner_id: self.runner_id.as_str(),
                reason: &reason,
            });
        }
    }

    fn head(&mut self) -> Option<String> {
        if !self.git {
            return None;
        }
        let t = Instant::now();
        let head = match &self.head_reader {
            Some(r) => r.head(),
            None => git::head(&self.workdir),
        };
        self.checks_time += t.elapsed();
        self.last_head.clone_from(&head);
        head
    }

    fn observation(&self, head: Option<String>) -> Observation {
        let account_wait = self.account_wait_now();
        let optional = self.config.include_optional_tasks;
        Observation {
            counts: self.list.counts_with(optional),
            optional: self.list.optional_counts().total,
            head,
            next_task: self
                .list
                .next_task_with(optional)
                .map(|t| format!("{} {}", t.id, t.title)),
            account_wait,
            done: self
                .list
                .tasks
                .iter()
                .filter(|t| t.status == TaskStatus::Done)
                .map(|t| (t.id.clone(), t.title.clone()))
                .collect(),
        }
    }

    /// Runs the verify command of each ticked task (see `verify`) against HEAD as the attempt
    /// left it, each in its own process group with its timeout; a stop or `--max-runtime`
    /// stops a check like an attempt, and a stopped check has failed.
    async fn verify(
        &mut self,
        tasks: &[String],
        head: Option<&str>,
        deadline: Option<Timestamp>,
    ) -> Input {
        let text = std::fs::read_to_string(self.guard.path()).unwrap_or_default();
        let lines = verify::task_verify_lines(&text, &self.list);
        let plan = verify::plan(
            tasks,
            &lines,
            self.spec_config.verify.as_deref(),
            self.config.verify_command.as_deref(),
        );
        let timeout = self
            .spec_config
            .verify_timeout
            .unwrap_or(self.config.verify_timeout);
        let mut checks = Vec::new();
        for (n, (cmd, ids)) in plan.into_iter().enumerate() {
            let check = match cmd {
                Ok(cmd) => {
                    self.run_check(&cmd, &ids, head, timeout, n + 1, deadline)
                        .await
                }
                Err(why) => verify::unrunnable(why),
            };
            checks.push(CheckRun { tasks: ids, check });
        }
        Input::Verified {
            now: Timestamp::now(),
            checks,
        }
    }

    async fn run_check(
        &mut self,
        cmd: &VerifyCommand,
        tasks: &[String],
        head: Option<&str>,
        timeout: Duration,
        n: usize,
        deadline: Option<Timestamp>,
    ) -> crate::store::Check {
        let log_path = self
            .last_log
            .as_ref()
            .map(|l| PathBuf::from(format!("{}.verify-{n}.log", l.display())));
        let log = log_path.as_ref().and_then(|p| {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .ok()
        });
        let (program, args) = match cmd.argv.split_first() {
            Some((p, rest)) => (p.clone(), rest.to_vec()),
            None => (String::new(), Vec::new()),
        };
        let mut env = vec![
            ("SWR_RUNNER_ID".to_string(), self.runner_id.to_string()),
            ("SWR_SPEC".to_string(), self.opts.spec.clone()),
            (
                "SWR_PROJECT".to_string(),
                self.workdir.display().to_string(),
            ),
            (
                "SWR_TASKS_PATH".to_string(),
                self.guard.path().display().to_string(),
            ),
            ("SWR_VERIFY_TASKS".to_string(), tasks.join(" ")),
        ];
        if let Some(h) = head {
            env.push(("SWR_HEAD".to_string(), h.to_string()));
        }
        let spec = supervise::CommandSpec {
            program,
            args,
            env,
            env_remove: provider::inherited_env_to_remove(std::env::vars()),
            cwd: self.workdir.clone(),
            stdin: supervise::StdinInput::Null,
        };
        let sopts = SuperviseOptions {
            wall_timeout: Some(timeout),
            stop_grace: self.config.stop_grace,
            tail_lines: 60,
            ..SuperviseOptions::default()
        };
        let started_at = Timestamp::now();
        let report = if self.stop_request().is_set() {
            // Asked to stop before the check could run: it has not passed.
            let mut r = failed_spawn_report(
                supervise::SpawnError::Other {
                    program: spec.program.clone(),
                    message: "not run: the run is stopping".into(),
                },
                started_at,
            );
            r.raw_signal = None;
            r
        } else {
            match supervise::spawn(&spec, &sopts, log).await {
                Err(e) => failed_spawn_report(e, started_at),
                Ok(running) => {
                    let watcher = tokio::spawn(watch_stops(
                        running.stop_handle(),
                        self.stop.clone(),
                        deadline,
                        Arc::new(Mutex::new(None)),
                    ));
                    let report = running.wait_lines(|_| {}).await;
                    watcher.abort();
                    report
                }
            }
        };
        verify::check_from_report(cmd, &report, log_path)
    }

    /// Puts `tasks` back to in progress and commits tasks.md alone with `message`, then reads
    /// tasks.md and HEAD again.
    fn untick(&mut self, tasks: &[String], message: &str) -> Input {
        let path = self.guard.path().to_path_buf();
        for id in tasks {
            if let Err(e) = crate::spec::set_task_status(&path, id, TaskStatus::InProgress) {
                self.warn(format!(
                    "could not put task {id} back to in progress in {}: {e}",
                    path.display()
                ));
            }
        }
        if self.git
            && let Some(rel) = &self.tasks_in_repo
            && let Err(e) = git::commit_paths(&self.workdir, &[rel.as_str()], message)
        {
            self.warn(format!("could not commit the unticked tasks.md: {e}"));
        }
        let keep_as = PathBuf::from(format!("{}.tasks-damaged.md", path.display()));
        match self.reread_tasks(keep_as) {
            Ok(Some(warning)) => self.warn(warning),
            Ok(None) => {}
            Err(e) => self.warn(format!("cannot read tasks.md: {e}; using the last copy")),
        }
        let head = self.head();
        Input::Unticked {
            now: Timestamp::now(),
            observed: self.observation(head),
        }
    }

    /// The paths the current attempt changed: its commits, and (when its tick is not among
    /// them) the files it left changed. Only asked for attempts that ticked a task, and with
    /// as few git processes as that allows: one `git diff` when the tick was committed.
    fn changed_paths(&mut self, head: Option<&str>) -> Option<Vec<String>> {
        if !self.git {
            return None;
        }
        let t = Instant::now();
        let mut changed = match (self.head_before.as_deref(), head) {
            (Some(a), Some(b)) if a != b => git::changed_between(&self.workdir, a, b)?,
            (None, Some(b)) => git::changed_between(&self.workdir, git::EMPTY_TREE, b)?,
            _ => Vec::new(),
        };
        let tick_committed = self
            .tasks_in_repo
            .as_ref()
            .is_some_and(|t| changed.contains(t));
        if !tick_committed {
            let dirty = git::dirty_paths(&self.workdir);
            for p in &dirty {
                if !self.dirty_before.contains(p) && !changed.contains(p) {
                    changed.push(p.clone());
                }
            }
            self.dirty_before = dirty;
        }
        self.checks_time += t.elapsed();
        Some(changed)
    }

    fn take_retry(&mut self) -> Result<Input, RunError> {
        let now = Timestamp::now();
        let grant =
            match self
                .store
                .take_retry(self.config.retry_budget_per_hour, &self.runner_id, now)?
            {
                Ok(()) => RetryGrant::Granted,
                Err(spent) => RetryGrant::Spent {
                    free_at: spent.free_at,
                    used: spent.used,
                },
            };
        Ok(Input::RetryGrant { now, grant })
    }

    /// Re-reads tasks.md through the guard. `keep_as` is where a damaged file is kept.
    fn reread_tasks(&mut self, keep_as: PathBuf) -> Result<Option<String>, RunError> {
        let t = Instant::now();
        let project = self.workdir.clone();
        let in_repo = self.tasks_in_repo.clone();
        let (list, repair) = self.guard.check(&keep_as, || {
            in_repo.and_then(|p| git::head_file(&project, &p))
        })?;
        self.checks_time += t.elapsed();
        self.list = list;
        Ok(repair.map(|r| r.describe(self.guard.path())))
    }

    /// After waiting for an agent slot: like [`Driver::observe`], answered as
    /// [`Input::Deferred`] (the planned attempt has not started).
    fn look_again(&mut self) -> Input {
        match self.observe() {
            Input::Observed { now, observed } => Input::Deferred { now, observed },
            other => other,
        }
    }

    /// After a sleep: tasks.md and HEAD as they are now, or the stop that came meanwhile.
    fn observe(&mut self) -> Input {
        let now = Timestamp::now();
        let req = self.stop_request();
        if req.is_set() {
            return Input::StopRequested {
                now,
                cause: req.cause_or_user(),
            };
        }
        let keep_as = self
            .config
            .log_dir(&self.opts.project, &self.opts.spec)
            .join(format!(
                "tasks-damaged-{}.md",
                now.strftime("%Y%m%dT%H%M%S")
            ));
        match self.reread_tasks(keep_as) {
            Ok(Some(warning)) => self.warn(warning),
            Ok(None) => {}
            Err(e) => self.warn(format!("cannot read tasks.md: {e}; using the last copy")),
        }
        let head = self.head();
        Input::Observed {
            now: Timestamp::now(),
            observed: self.observation(head),
        }
    }

    async fn sleep_until(&mut self, t: Timestamp) -> Input {
        let now = Timestamp::now();
        let d: Duration = (t - now).try_into().unwrap_or(Duration::ZERO);
        let mut stop = self.stop.clone();
        let stopped = tokio::select! {
            () = tokio::time::sleep(d) => None,
            r = stop.wait_for(StopRequest::is_set) => r.ok().map(|r| r.cause_or_user()),
        };
        match stopped {
            Some(cause) => Input::StopRequested {
                now: Timestamp::now(),
                cause,
            },
            // A timer may fire a hair early against the wall clock: never report a time
            // before the one asked for, or the machine would sleep again for nothing.
            None => Input::TimerFired {
                now: Timestamp::now().max(t),
            },
        }
    }

    /// Writes what the machine recorded, in one transaction, plus `then` in the same one.
    fn flush_with<T>(
        &mut self,
        then: impl FnOnce(&StoreTx<'_>) -> Result<T, StoreError>,
    ) -> Result<T, RunError> {
        let records = std::mem::take(&mut self.pending);
        let ended_id = self.ended.as_ref().map(|e| e.attempt_id);
        let mut closed = None;
        let mut ends = Vec::new();
        for r in &records {
            if let Record::Attempt(v) = r
                && let Some(e) = self.ended.take()
            {
                ends.push((e.attempt_id, verdict_end(&e.end, v)));
                closed = Some((e, v.clone()));
            }
        }
        let id = &self.runner_id;
        let (project, spec) = (&self.opts.project, &self.opts.spec);
        let (provider, account) = (&self.opts.provider, &self.config.account);
        let out = self.store.transaction(|tx| {
            let mut ends = ends.iter();
            for r in &records {
                match r {
                    Record::Runner(u) => {
                        tx.update_runner(id, u)?;
                    }
                    Record::Attempt(_) => {
                        if let Some((attempt_id, end)) = ends.next() {
                            tx.finish_attempt(*attempt_id, end)?;
                        }
                    }
                    Record::Ticks(ticks) => {
                        if let Some(id) = ended_id {
                            tx.add_ticks(id, ticks)?;
                        }
                    }
                    Record::SetWait { until, reason } => {
                        tx.set_wait(project, spec, *until, reason)?
                    }
                    Record::ClearWait => tx.clear_wait(project, spec)?,
                    Record::SetAccountWait {
                        reset_at,
                        until,
                        reason,
                    } => tx.set_account_wait(&AccountWait {
                        provider: provider.clone(),
                        account: account.clone(),
                        reset_at: *reset_at,
                        until: *until,
                        reason: reason.clone(),
                    })?,
                    Record::ClearAccountWait => {
                        tx.clear_account_wait(provider, account, Timestamp::now())?
                    }
                }
            }
            then(tx)
        })?;
        if let Some((e, v)) = closed {
            if let Some(seen) = e.exit_seen {
                tracing::debug!(
                    target: "swr::timing",
                    exit_to_recorded_us = seen.elapsed().as_micros() as u64,
                    "attempt recorded"
                );
            }
            self.write_footer(&e, &v);
        }
        Ok(out)
    }

    fn flush(&mut self) -> Result<(), RunError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        self.flush_with(|_| Ok(()))
    }

    fn write_footer(&mut self, e: &Ended, v: &AttemptVerdict) {
        let mut summary = format!("outcome: {}; {}", v.outcome, e.summary);
        if v.ticked > 0 || v.committed {
            summary.push_str(&format!(
                "; progress: {} task(s) ticked{}",
                v.ticked,
                if v.committed { ", committed" } else { "" }
            ));
        }
        if let Some(d) = v.delay {
            summary.push_str(&format!("; next attempt in {:.3}s", d.as_secs_f64()));
        }
        if let Some(n) = &v.note {
            summary.push_str(&format!("; {n}"));
        }
        if let Err(err) = attempt_log::write_footer(&e.log_path, &summary, Timestamp::now()) {
            self.warn(format!(
                "could not finish the attempt log {}: {err}",
                e.log_path.display()
            ));
        }
    }

    /// Runs one attempt from prompt to report.
    async fn attempt(
        &mut self,
        plan: AttemptPlan,
        deadline: Option<Timestamp>,
    ) -> Result<Input, RunError> {
        let req = self.stop_request();
        if req.is_set() {
            self.flush()?;
            return Ok(Input::StopRequested {
                now: Timestamp::now(),
                cause: req.cause_or_user(),
            });
        }
        let slot = match self.held_slot.take() {
            Some(slot) => slot,
            None => match self.take_slot(deadline).await? {
                Ok((slot, false)) => slot,
                // It waited in line: tasks.md, HEAD and the account's rate-limit clock may
                // have moved meanwhile. The machine decides again from a fresh look; the slot
                // is kept for the attempt it plans next.
                Ok((slot, true)) => {
                    self.held_slot = Some(slot);
                    self.flush()?;
                    return Ok(self.look_again());
                }
                Err(stopped) => {
                    self.flush()?;
                    return Ok(stopped);
                }
            },
        };
        let mut s = self.start_attempt(&plan)?;
        let (report, signals, stopped_by) = self.supervise(&plan, &mut s, deadline).await?;
        // Free for the next in line while this runner judges the attempt.
        drop(slot);
        self.report(plan, s, report, signals, stopped_by)
    }

    /// The account's rate-limit wait, if one is running now.
    fn account_wait_now(&self) -> Option<PersistedWait> {
        match self
            .store
            .account_wait(&self.opts.provider, &self.config.account)
        {
            Ok(w) => w
                .filter(|w| w.until > Timestamp::now())
                .map(|w| PersistedWait {
                    until: w.until,
                    reason: w.reason,
                }),
            Err(e) => {
                tracing::warn!("cannot read the account's rate-limit clock: {e}");
                None
            }
        }
    }

    /// An agent slot (`max_concurrent_agents`), in line behind the runners that asked first.
    /// While it waits the runner is `queued`; a stop or `--max-runtime` ends the wait.
    /// The slot comes with whether the runner had to stand in line for it.
    async fn take_slot(
        &mut self,
        deadline: Option<Timestamp>,
    ) -> Result<Result<(Slot, bool), Input>, RunError> {
        let pool = self.slots.clone();
        let io = |source| RunError::Io {
            path: self.config.cache_dir.join("slots"),
            source,
        };
        if !pool.anyone_waiting()
            && let Some(slot) = pool.try_acquire().map_err(io)?
        {
            return Ok(Ok((slot, false)));
        }
        // It will wait: what the machine recorded (a new iteration...) shows while it does.
        self.flush()?;
        let cap = pool.cap();
        let (store, id) = (&self.store, &self.runner_id);
        let emit = &mut *self.emit;
        let mut stop = self.stop.clone();
        let until = deadline.map(instant_at);
        let cancel = async move {
            tokio::select! {
                _ = stop.wait_for(StopRequest::is_set) => {}
                () = sleep_until_opt(until) => {}
            }
        };
        let got = pool
            .acquire(
                id.as_str(),
                |ahead| {
                    let update = RunnerUpdate {
                        status: Some(RunnerStatus::Queued),
                        reason: Some(Some(format!(
                            "waiting for an agent slot ({ahead} ahead; max_concurrent_agents {cap})"
                        ))),
                        agent: Some(None),
                        ..Default::default()
                    };
                    if let Err(e) = store.update_runner(id, &update) {
                        tracing::warn!("cannot record the queued state: {e}");
                    }
                    emit(&RunnerEvent::Queued { ahead, cap });
                },
                cancel,
            )
            .await
            .map_err(|source| RunError::Io {
                path: self.config.cache_dir.join("slots"),
                source,
            })?;
        Ok(match got {
            Some(slot) => Ok((slot, true)),
            None => {
                let req = self.stop_request();
                Err(Input::StopRequested {
                    now: Timestamp::now(),
                    cause: if req.is_set() {
                        req.cause_or_user()
                    } else {
                        StopCause::MaxRuntime
                    },
                })
            }
        })
    }

    /// The prompt, the command, the log file with its header, and the attempt's record, written
    /// with whatever the machine recorded before it in one transaction.
    fn start_attempt(&mut self, plan: &AttemptPlan) -> Result<StartedAttempt, RunError> {
        let prompt = super::render_prompt(
            self.config,
            &self.workdir,
            &self.opts.spec,
            self.guard.path(),
            &self.list,
            plan.resume.is_some(),
            plan.verify_failure.as_deref(),
        )?;
        // HEAD as last observed: reading it again would cost a process per attempt.
        self.head_before.clone_from(&self.last_head);
        self.done_before = self
            .list
            .tasks
            .iter()
            .filter(|t| t.status == TaskStatus::Done)
            .map(|t| t.id.clone())
            .collect();
        let cmd = self.command(plan, &prompt);
        let log_dir = self.config.log_dir(&self.opts.project, &self.opts.spec);
        let (log_path, mut log) = self
            .log_namer
            .create(plan.iteration, plan.attempt)
            .map_err(|source| RunError::Io {
                path: log_dir,
                source,
            })?;
        let started_at = Timestamp::now();
        attempt_log::write_header(
            &mut log,
            attempt_log::AttemptIds {
                runner_id: self.runner_id.as_str(),
                spec: &self.opts.spec,
                iteration: plan.iteration,
                attempt: plan.attempt,
            },
            &cmd,
            &prompt,
            started_at,
        )
        .map_err(|source| RunError::Io {
            path: log_path.clone(),
            source,
        })?;
        let sopts = SuperviseOptions {
            idle_timeout: self.config.activity_timeout,
            wall_timeout: self.config.iteration_timeout,
            stop_grace: self.config.stop_grace,
            result_grace: self.config.result_grace,
            ..SuperviseOptions::default()
        };
        // The marker is recorded before the agent exists, so a crash of swr right after the
        // spawn still leaves what its processes can be found by.
        let new_attempt = NewAttempt {
            runner_id: self.runner_id.clone(),
            iteration: plan.iteration,
            attempt: plan.attempt,
            started_at,
            log_path: log_path.clone(),
            resumed_session: plan.resume.clone(),
        };
        // Running again, whatever it showed while it waited for its slot (or for the account's
        // clock) since the machine said so.
        let patch = RunnerUpdate {
            status: Some(RunnerStatus::Running),
            reason: Some(None),
            next_attempt_at: Some(None),
            log_path: Some(Some(log_path.clone())),
            agent: Some(Some(AgentProcess {
                pid: 0,
                pgid: 0,
                start_time: None,
                marker: Some(sopts.marker.clone()),
            })),
            ..Default::default()
        };
        let id = self.runner_id.clone();
        let attempt_id = self.flush_with(|tx| {
            let attempt_id = tx.start_attempt(&new_attempt)?;
            tx.update_runner(&id, &patch)?;
            Ok(attempt_id)
        })?;
        Ok(StartedAttempt {
            attempt_id,
            cmd,
            sopts,
            log: Some(log),
            log_path,
            started_at,
        })
    }

    /// Classifies the attempt, re-reads tasks.md (through the guard) and HEAD, and keeps what
    /// the store will need once the machine has judged it.
    fn report(
        &mut self,
        plan: AttemptPlan,
        s: StartedAttempt,
        report: ExitReport,
        signals: AttemptSignals,
        stopped_by: Option<StopCause>,
    ) -> Result<Input, RunError> {
        let exit_seen = Instant::now().checked_sub(report.after_exit);
        let tail: Vec<String> = report.tail.iter().map(|(_, l)| l.clone()).collect();
        let mut classified = classify::classify(
            self.def.kind,
            &report.exit,
            &signals,
            &tail,
            Timestamp::now(),
        );
        if let Some(cause) = stopped_by {
            classified.error = Some(cause.describe().to_string());
        }
        if let Some(seen) = exit_seen {
            self.last_exit = Some(seen);
        }
        tracing::debug!(
            target: "swr::timing",
            cleanup_us = report.after_exit.as_micros() as u64,
            "attempt ended"
        );
        // Progress is judged from tasks.md and HEAD as the agent left them, however it ended.
        let keep_as = PathBuf::from(format!("{}.tasks-damaged.md", s.log_path.display()));
        let warning = match self.reread_tasks(keep_as) {
            Ok(w) => w,
            // Not even the copy could be written back (a read-only directory...): judge by
            // the last good reading rather than end the run over it.
            Err(e) => Some(format!(
                "cannot read or restore {}: {e}; progress judged from the last good copy",
                self.guard.path().display()
            )),
        };
        if let Some(w) = &warning {
            self.warn(w.clone());
        }
        let head = self.head();
        let ticked = self
            .list
            .tasks
            .iter()
            .any(|t| t.status == TaskStatus::Done && !self.done_before.contains(&t.id));
        let changed = if ticked {
            self.changed_paths(head.as_deref())
        } else {
            None
        };
        // Each attempt is its own session: its result's figures are its own, not cumulative.
        let usage = signals
            .result
            .as_ref()
            .map(|r| {
                Usage::from_result(
                    r,
                    &self.def.name,
                    self.opts.model.as_deref(),
                    &self.config.prices,
                )
            })
            .unwrap_or_default();
        if let Some(err) = &report.log_error {
            self.warn(format!(
                "the attempt log {} is incomplete: {err}",
                s.log_path.display()
            ));
        }
        let signal = report.raw_signal.map(supervise::signal_name);
        let mut end = AttemptEnd::new(report.ended_at, classified.outcome);
        end.exit_code = report.raw_code;
        end.signal = signal.clone();
        end.error = classified.error.clone();
        end.session_id = signals.session_id.clone();
        end.cost_usd = usage.cost_usd;
        end.cost_estimated = usage.estimated;
        end.tokens = usage.tokens;
        end.model = usage.model.clone();
        end.warning = warning;
        let mut summary = format!(
            "{}; duration {:.3}s",
            describe_exit(&report),
            report.duration.as_secs_f64()
        );
        if let Some(e) = &classified.error {
            summary.push_str(&format!("; error: {}", e.replace('\n', " ")));
        }
        self.last_log = Some(s.log_path.clone());
        self.ended = Some(Ended {
            attempt_id: s.attempt_id,
            log_path: s.log_path,
            end,
            summary,
            exit_seen,
        });
        let observed = self.observation(head);
        Ok(Input::AttemptEnded {
            now: Timestamp::now(),
            report: Box::new(AttemptReport {
                classified,
                session_id: signals.session_id,
                resumed: plan.resume,
                stopped_by,
                exit_code: report.raw_code,
                signal,
                duration_ms: u64::try_from(report.duration.as_millis()).unwrap_or(u64::MAX),
                after: observed,
                usage,
                changed,
            }),
        })
    }

    /// Spawns the agent and follows it to its end: its output through the provider's parser
    /// (the final result starts the result grace), stops from the user, and `--max-runtime`.
    async fn supervise(
        &mut self,
        plan: &AttemptPlan,
        s: &mut StartedAttempt,
        deadline: Option<Timestamp>,
    ) -> Result<(ExitReport, AttemptSignals, Option<StopCause>), RunError> {
        let spawn_started = Instant::now();
        let running = match supervise::spawn(&s.cmd, &s.sopts, s.log.take()).await {
            Err(e) => {
                return Ok((
                    failed_spawn_report(e, s.started_at),
                    AttemptSignals::default(),
                    None,
                ));
            }
            Ok(r) => r,
        };
        if let Some(prev) = self.last_exit.take() {
            tracing::debug!(
                target: "swr::timing",
                exit_to_next_spawn_us = prev.elapsed().as_micros() as u64,
                git_and_tasks_us = std::mem::take(&mut self.checks_time).as_micros() as u64,
                spawn_us = spawn_started.elapsed().as_micros() as u64,
                "agent started"
            );
        }
        self.store.update_runner(
            &self.runner_id,
            &RunnerUpdate {
                agent: Some(Some(AgentProcess {
                    pid: running.pid,
                    pgid: running.pgid,
                    start_time: running.start_time,
                    marker: Some(running.marker.clone()),
                })),
                ..Default::default()
            },
        )?;
        (self.emit)(&RunnerEvent::AttemptStarted {
            iteration: plan.iteration,
            attempt: plan.attempt,
            pid: Some(running.pid),
            log_path: s.log_path.clone(),
            resume: plan.resume.clone(),
        });
        let stopped_by = Arc::new(Mutex::new(None));
        let watcher = tokio::spawn(watch_stops(
            running.stop_handle(),
            self.stop.clone(),
            deadline,
            Arc::clone(&stopped_by),
        ));
        let result_seen = running.stop_handle();
        let mut parser = provider::line_parser(self.def.output);
        let mut signals = AttemptSignals::default();
        let emit = &mut *self.emit;
        let mut last_activity = Instant::now() - Duration::from_secs(1);
        let report = running
            .wait_lines(|line| {
                if line.stream != supervise::Stream::Stdout {
                    return;
                }
                for s in parser.parse_line(line.text) {
                    if matches!(s, AgentSignal::Result(_)) {
                        result_seen.result_seen();
                    }
                    collect(&mut signals, s, emit, &mut last_activity);
                }
            })
            .await;
        for s in parser.finish() {
            collect(&mut signals, s, emit, &mut last_activity);
        }
        watcher.abort();
        let stopped_by = match report.exit {
            AttemptExit::Stopped => stopped_by.lock().ok().and_then(|c| *c),
            _ => None,
        };
        Ok((report, signals, stopped_by))
    }

    fn command(&self, plan: &AttemptPlan, prompt: &str) -> supervise::CommandSpec {
        let req = provider::AttemptRequest {
            prompt,
            model: self.opts.model.as_deref(),
            cwd: &self.workdir,
            is_root: self.is_root,
            resume_session: plan.resume.as_deref(),
        };
        let mut cmd = provider::command(&self.def, &req, &self.config.codex_config_overrides);
        cmd.env_remove = provider::inherited_env_to_remove(std::env::vars());
        cmd.env.extend([
            ("SWR_RUNNER_ID".to_string(), self.runner_id.to_string()),
            ("SWR_SPEC".to_string(), self.opts.spec.clone()),
            (
                "SWR_PROJECT".to_string(),
                self.workdir.display().to_string(),
            ),
            (
                "SWR_TASKS_PATH".to_string(),
                self.guard.path().display().to_string(),
            ),
            ("SWR_ITERATION".to_string(), plan.iteration.to_string()),
            ("SWR_ATTEMPT".to_string(), plan.attempt.to_string()),
        ]);
        if self.worktree.is_some() {
            cmd.env.push((
                "SWR_MAIN_PROJECT".to_string(),
                self.opts.project.display().to_string(),
            ));
        }
        cmd.env.extend(self.opts.extra_env.iter().cloned());
        cmd
    }

    /// Final bookkeeping: status, reason, the Python-compatible retry log, the notification,
    /// and the notifiers waited for (then killed) so none outlives the run.
    pub(super) fn finish(
        &mut self,
        end: &RunEnd,
        iterations: u32,
        spend: Totals,
    ) -> Result<(), RunError> {
        let merge = self.merge_back(end);
        let status = match end {
            RunEnd::Completed => RunnerStatus::Completed,
            RunEnd::Stopped { .. } | RunEnd::MaxIterations { .. } | RunEnd::MaxRuntime { .. } => {
                RunnerStatus::Stopped
            }
            RunEnd::Budget { .. } => RunnerStatus::Budget,
            _ => RunnerStatus::Failed,
        };
        let counts = crate::spec::read_tasks(self.guard.path())
            .map(|l| l.counts_with(self.config.include_optional_tasks))
            .unwrap_or_else(|_| self.list.counts_with(self.config.include_optional_tasks));
        // A wait cut short stays in the store for the next run; the runner's record keeps
        // saying when it ends.
        let waiting = matches!(end, RunEnd::Stopped { .. } | RunEnd::MaxRuntime { .. })
            && self
                .store
                .wait_for(&self.opts.project, &self.opts.spec)?
                .is_some_and(|(until, _)| until > Timestamp::now());
        let reason = match &merge {
            Some(m) => format!("{}; {}", end.reason(), m.describe()),
            None => end.reason(),
        };
        self.store.update_runner(
            &self.runner_id,
            &RunnerUpdate {
                status: Some(status),
                reason: Some(Some(reason)),
                tasks: Some(counts),
                agent: Some(None),
                next_attempt_at: if waiting { None } else { Some(None) },
                ..Default::default()
            },
        )?;
        if let Some(record) = self.store.runner(&self.runner_id)? {
            let attempts = self.store.attempts(&AttemptFilter {
                runner: Some(self.runner_id.clone()),
                ..Default::default()
            })?;
            let dir = self.config.retry_log_dir(&self.opts.project);
            if let Err(e) = crate::store::write_retry_log(&dir, &record, &attempts) {
                self.warn(format!(
                    "could not write the retry log in {}: {e}",
                    dir.display()
                ));
            }
        }
        // The machine asked for the run's notification; now the store says how it ended.
        self.send_notices();
        (self.emit)(&RunnerEvent::Finished {
            end: end.clone(),
            tasks: counts,
            iterations,
            spend,
        });
        self.notifiers.wait_all();
        Ok(())
    }

    /// A completed spec's worktree goes back into the project; an unfinished one stays for the
    /// next run, which says so.
    fn merge_back(&mut self, end: &RunEnd) -> Option<MergeResult> {
        let w = self.worktree.clone()?;
        if *end != RunEnd::Completed {
            self.warn(format!(
                "the work stays on branch {} in the worktree {}; the next `swr run` of {} continues there",
                w.branch,
                w.path.display(),
                w.spec
            ));
            return None;
        }
        let result = worktree::merge_back(&self.config.cache_dir, &w);
        (self.emit)(&RunnerEvent::Merge {
            result: result.clone(),
        });
        Some(result)
    }

    /// swr itself failed mid-run: the record says so.
    pub(super) fn failed(&mut self, e: &RunError) {
        record_swr_failure(&self.store, &self.runner_id, e);
        self.notifiers.wait_all();
    }
}

/// The attempt's end with the machine's verdict on it.
fn verdict_end(base: &AttemptEnd, v: &AttemptVerdict) -> AttemptEnd {
    let mut end = base.clone();
    end.outcome = v.outcome;
    end.ticked = Some(u32::try_from(v.ticked).unwrap_or(u32::MAX));
    end.committed = Some(v.committed);
    end.delay_before_next_ms = v
        .delay
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    end.note = v.note.clone();
    end
}

/// Forwards stop requests to the agent and stops it at `--max-runtime`, remembering why.
async fn watch_stops(
    handle: StopHandle,
    mut stop: watch::Receiver<StopRequest>,
    deadline: Option<Timestamp>,
    cause: Arc<Mutex<Option<StopCause>>>,
) {
    let set_cause = |c: StopCause| {
        if let Ok(mut slot) = cause.lock() {
            slot.get_or_insert(c);
        }
    };
    let until_deadline = deadline.map(instant_at);
    let mut deadline_passed = false;
    let mut stop_open = true;
    loop {
        let req = *stop.borrow_and_update();
        match req.level {
            StopLevel::None => {}
            StopLevel::Graceful => {
                set_cause(req.cause_or_user());
                handle.stop();
            }
            StopLevel::Kill => {
                set_cause(req.cause_or_user());
                handle.kill();
                return;
            }
        }
        tokio::select! {
            r = stop.changed(), if stop_open => {
                stop_open = r.is_ok();
            }
            () = sleep_until_opt(until_deadline), if !deadline_passed => {
                deadline_passed = true;
                set_cause(StopCause::MaxRuntime);
                handle.stop();
            }
            else => return,
        }
    }
}

/// The monotonic instant of a wall-clock time (now, if it has passed).
fn instant_at(t: Timestamp) -> tokio::time::Instant {
    let left: Duration = (t - Timestamp::now()).try_into().unwrap_or(Duration::ZERO);
    tokio::time::Instant::now() + left.min(Duration::from_secs(100 * 365 * 86_400))
}

async fn sleep_until_opt(t: Option<tokio::time::Instant>) {
    match t {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}

fn collect(
    signals: &mut AttemptSignals,
    s: AgentSignal,
    emit: &mut (dyn FnMut(&RunnerEvent) + Send),
    last_activity: &mut Instant,
) {
    // Activity is shown, not stored: at most a few lines a second reach the consumers even
    // when the agent floods.
    let mut activity = |text: String| {
        if last_activity.elapsed() >= Duration::from_millis(200) {
            *last_activity = Instant::now();
            let text: String = text.chars().take(200).collect();
            emit(&RunnerEvent::Activity { text });
        }
    };
    match s {
        AgentSignal::SessionId(id) => signals.session_id = Some(id),
        AgentSignal::Result(r) => signals.result = Some(r),
        AgentSignal::Error(e) => signals.errors.push(e),
        AgentSignal::Text(t) => {
            if let Some(line) = t.lines().find(|l| !l.trim().is_empty()) {
                activity(line.trim().to_string());
            }
        }
        AgentSignal::ToolUse { name, input } => activity(format!("{name} {input}")),
        AgentSignal::ToolResult { .. } | AgentSignal::Notice(_) => {}
    }
}

fn failed_spawn_report(e: supervise::SpawnError, started_at: Timestamp) -> ExitReport {
    ExitReport {
        exit: AttemptExit::SpawnFailed(e),
        raw_code: None,
        raw_signal: None,
        started_at,
        ended_at: Timestamp::now(),
        duration: Duration::ZERO,
        escalated_to_kill: false,
        leftovers_killed: 0,
        tail: Vec::new(),
        stdout_bytes: 0,
        stderr_bytes: 0,
        pipes_leaked: false,
        log_error: None,
        after_exit: Duration::ZERO,
    }
}

fn describe_exit(r: &ExitReport) -> String {
    match (&r.exit, r.raw_code, r.raw_signal) {
        (AttemptExit::SpawnFailed(e), _, _) => format!("spawn failed: {e}"),
        (_, Some(code), _) => format!("exit code {code}"),
        (_, _, Some(sig)) => format!("killed by {}", supervise::signal_name(sig)),
        _ => "no exit status".to_string(),
    }
}
