//! `swr tui`: watches and steers every runner across all projects. This module owns the
//! terminal and the event loop; state lives in [`app`], frames in [`view`], and runners are
//! started and stopped through [`runner_ctl`] as detached `swr run` processes, observed only
//! through the store and their log files (so the TUI can quit or crash without stopping work).
//!
//! The loop waits on terminal input, file notifications ([`watch`]), background results and a
//! slow safety tick, and the expiry of the footer message; it redraws only when something
//! changed, at most every ~33 ms.

pub mod app;
pub mod keys;
pub mod logview;
pub mod runner_ctl;
pub mod view;
pub mod watch;

#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use jiff::Timestamp;
use ratatui::crossterm::event::{Event, KeyEventKind};
use swr_core::config::Config;
use swr_core::provider::OutputFormat;
use swr_core::store::{AttemptFilter, RunnerFilter, Store};
use tokio::sync::mpsc;

use app::{App, Cmd, Discovered, Msg, Settings};
use logview::LogTail;
use runner_ctl::Started;

const DRAW_EVERY: Duration = Duration::from_millis(33);
const DEBOUNCE: Duration = Duration::from_millis(30);

/// The static settings of the app from the config.
pub fn settings(config: &Config) -> Settings {
    let config_rows = config
        .values
        .iter()
        .map(|(k, v)| {
            let value = match v {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            let source = config
                .sources
                .get(k)
                .map(|s| s.to_string())
                .unwrap_or_else(|| "default".into());
            (k.clone(), value, source)
        })
        .collect();
    Settings {
        default_provider: config.provider.clone(),
        default_model: config.model.clone(),
        min_cols: config.tui_min_terminal_cols,
        min_rows: config.tui_min_terminal_rows,
        log_cap: config.tui_log_tail_lines.max(10),
        color: std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()),
        tz: jiff::tz::TimeZone::system(),
        layout: config.layout(),
        repos_root: config.repos_root.clone(),
        config_rows,
    }
}

/// Scans repos_root and reads every spec's task counts.
fn discover(config: &Config) -> Discovered {
    let root = config
        .repos_root
        .canonicalize()
        .unwrap_or_else(|_| config.repos_root.clone());
    let mut projects =
        swr_core::spec::discover_projects(&root, &config.layout(), &config.ignore_dirs)
            .map_err(|e| e.to_string())?;
    // A spec running in a worktree shows the progress its agent makes there.
    swr_core::runner::worktree::redirect_tasks(&config.cache_dir, &mut projects, &config.layout());
    Ok(projects
        .into_iter()
        .map(|p| {
            let counts = p
                .specs
                .iter()
                // Counts only: no task is built, which keeps large tasks.md files cheap.
                .map(|s| {
                    s.read_summary()
                        .ok()
                        .map(|sm| sm.counts_with(config.include_optional_tasks))
                })
                .collect();
            (p, counts)
        })
        .collect())
}

/// Marks dead runners crashed and kills the agents they left, quietly (the screen is ours).
fn reconcile(store: &Store, config: &Config) -> Vec<String> {
    let mut notes = Vec::new();
    match swr_core::runner::reconcile_and_reap(store, &config.lock_dir()) {
        Ok(dead) => {
            for r in dead {
                notes.push(format!(
                    "{}: runner process died, marked crashed",
                    r.runner.spec
                ));
            }
        }
        Err(e) => notes.push(format!("cannot reconcile the store: {e}")),
    }
    notes
}

/// Runs the TUI until the user quits. `config_file` is passed on to the runners it starts.
pub fn run(config: &Config, config_file: Option<&Path>) -> anyhow::Result<u8> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    std::fs::create_dir_all(&config.cache_dir)?;
    let store = Store::open(&config.store_path())?;
    let early = reconcile(&store, config);
    let config_file = config_file.map(|c| c.canonicalize().unwrap_or_else(|_| c.to_path_buf()));
    let mut terminal = ratatui::init();
    let res = rt.block_on(event_loop(
        &mut terminal,
        config,
        config_file.as_deref(),
        store,
        early,
    ));
    ratatui::restore();
    res
}

struct Loop<'a> {
    config: &'a Config,
    config_file: Option<&'a Path>,
    store: Store,
    exe: PathBuf,
    registry: Option<swr_core::provider::ProviderRegistry>,
    tail: Option<LogTail>,
    /// Runner whose attempts are loaded, and the log it follows.
    attempts_of: Option<swr_core::store::RunnerId>,
    started: Vec<Started>,
    msg_tx: mpsc::UnboundedSender<Msg>,
    /// Active runners whose death a lock watcher reports, and where it reports.
    lock_watched: std::collections::HashSet<swr_core::store::RunnerId>,
    gone_tx: mpsc::UnboundedSender<()>,
}

impl Loop<'_> {
    fn format_of(&self, provider: &str) -> OutputFormat {
        self.registry
            .as_ref()
            .and_then(|r| r.get(provider).ok())
            .map(|d| d.output)
            .unwrap_or(OutputFormat::Text)
    }

    fn load_runners(&mut self, app: &mut App) -> Vec<Cmd> {
        let cmds = match self.store.runners(&RunnerFilter::default()) {
            Ok(list) => app.update(Msg::Runners(list)),
            Err(e) => app.update(Msg::Error(format!("cannot read the store: {e}"))),
        };
        self.watch_active(app);
        cmds
    }

    /// A runner killed with -9 writes nothing: a watcher per active runner reports its death
    /// at once, instead of the next safety tick.
    fn watch_active(&mut self, app: &App) {
        let lock_dir = self.config.lock_dir();
        for r in app.runners.values().filter(|r| r.status.is_active()) {
            if self.lock_watched.insert(r.runner_id.clone()) {
                let tx = self.gone_tx.clone();
                runner_ctl::watch_runner(&lock_dir, r, move || {
                    let _ = tx.send(());
                });
            }
        }
    }

    /// Keeps attempts and log in step with the selected runner.
    fn sync_current(&mut self, app: &mut App, store_changed: bool) {
        let cur = app
            .current_runner()
            .map(|r| (r.runner_id.clone(), r.log_path.clone(), r.provider.clone()));
        let id = cur.as_ref().map(|c| c.0.clone());
        if store_changed || id != self.attempts_of {
            let attempts = match &id {
                Some(id) => self
                    .store
                    .attempts(&AttemptFilter {
                        runner: Some(id.clone()),
                        ..Default::default()
                    })
                    .unwrap_or_default(),
                None => Vec::new(),
            };
            app.update(Msg::Attempts(attempts));
            self.attempts_of = id;
        }
        let want = cur.as_ref().and_then(|c| c.1.clone());
        let have = self.tail.as_ref().map(|t| t.path.clone());
        if want != have {
            match &want {
                Some(p) => {
                    let fmt = self.format_of(cur.as_ref().map(|c| c.2.as_str()).unwrap_or(""));
                    let (tail, lines) = LogTail::open(p, fmt, app.settings.log_cap);
                    self.tail = Some(tail);
                    app.update(Msg::LogReset(want.clone(), lines));
                }
                None => {
                    self.tail = None;
                    app.update(Msg::LogReset(None, Vec::new()));
                }
            }
        }
    }

    fn poll_log(&mut self, app: &mut App) -> bool {
        let Some(t) = self.tail.as_mut() else {
            return false;
        };
        let lines = t.poll();
        if lines.is_empty() {
            return false;
        }
        app.update(Msg::LogAppend(lines));
        true
    }

    fn load_dashboard(&self, app: &mut App) {
        let attempts = self
            .store
            .attempts(&AttemptFilter::default())
            .unwrap_or_default();
        let keep = attempts.len().saturating_sub(5000);
        let attempts = attempts.into_iter().skip(keep).collect();
        let stats = self.store.retry_stats(None).unwrap_or_default();
        app.update(Msg::Dashboard(attempts, stats));
    }

    fn spawn_discovery(&self) {
        let config = self.config.clone();
        let tx = self.msg_tx.clone();
        let _ = std::thread::Builder::new()
            .name("swr-tui-discover".into())
            .spawn(move || {
                let _ = tx.send(Msg::Projects(discover(&config)));
            });
    }

    /// Carries out the app's commands; their results come back as messages.
    fn exec(&mut self, app: &mut App, cmds: Vec<Cmd>) {
        let mut queue = cmds;
        while let Some(cmd) = queue.pop() {
            let more = match cmd {
                Cmd::Start(req) => {
                    // An unknown provider would only show in the detached runner's output.
                    let unknown = match (&req.provider, &self.registry) {
                        (Some(p), Some(reg)) => reg.get(p).err().map(|e| e.to_string()),
                        _ => None,
                    };
                    let res = match unknown {
                        Some(e) => Err(e),
                        None => {
                            let out_dir = self.config.cache_dir.join("tui");
                            let tx = self.msg_tx.clone();
                            runner_ctl::start(
                                &self.exe,
                                self.config_file,
                                &out_dir,
                                &req,
                                move |e| {
                                    let _ = tx.send(Msg::RunnerExited(e));
                                },
                            )
                            .map_err(|e| format!("{e:#}"))
                        }
                    };
                    if let Ok(s) = &res {
                        self.started.push(s.clone());
                    }
                    app.update(Msg::Started(req, res))
                }
                Cmd::Stop(r) => match runner_ctl::stop(&self.config.lock_dir(), &r) {
                    Ok(true) => app.update(Msg::Info(format!(
                        "asked the runner of {} to stop (pid {})",
                        r.spec, r.pid
                    ))),
                    Ok(false) => {
                        let notes = reconcile(&self.store, self.config);
                        let mut c = self.load_runners(app);
                        c.extend(app.update(Msg::Info(format!(
                            "the runner of {} was no longer alive{}",
                            r.spec,
                            if notes.is_empty() {
                                ""
                            } else {
                                "; marked crashed"
                            }
                        ))));
                        c
                    }
                    Err(e) => app.update(Msg::Error(format!("cannot stop {}: {e}", r.spec))),
                },
                Cmd::LoadTasks(p) => app.update(Msg::Tasks(
                    swr_core::spec::read_tasks(&p).map_err(|e| e.to_string()),
                )),
                Cmd::LoadDashboard => {
                    self.load_dashboard(app);
                    Vec::new()
                }
                Cmd::Rescan => {
                    self.spawn_discovery();
                    Vec::new()
                }
                Cmd::StopOwned => {
                    for s in &self.started {
                        if runner_ctl::alive(s) {
                            let _ = runner_ctl::terminate(s.pid);
                        }
                    }
                    Vec::new()
                }
            };
            queue.extend(more);
        }
    }

    /// Drops the runners we started that have ended; tells the app when the set changed.
    fn prune_started(&mut self, app: &mut App) {
        let before = self.started.len();
        self.started.retain(runner_ctl::alive);
        if self.started.len() != before || app.owned.len() != self.started.len() {
            app.update(Msg::OwnedAlive(
                self.started.iter().map(|s| s.pid).collect(),
            ));
        }
    }

    /// Whether an active runner's process is gone without a word in the store.
    fn any_active_dead(&self, app: &App) -> bool {
        app.runners
            .values()
            .filter(|r| r.status.is_active())
            .any(|r| match r.pid_start_time {
                Some(st) => !swr_core::procinfo::is_same_process(r.pid, st),
                None => !Path::new(&format!("/proc/{}", r.pid)).exists(),
            })
    }
}

async fn event_loop(
    terminal: &mut ratatui::DefaultTerminal,
    config: &Config,
    config_file: Option<&Path>,
    store: Store,
    early: Vec<String>,
) -> anyhow::Result<u8> {
    let (msg_tx, mut msg_rx) = mpsc::unbounded_channel::<Msg>();
    let (input_tx, mut input_rx) = mpsc::unbounded_channel::<Event>();
    let (wake_tx, mut wake_rx) = mpsc::unbounded_channel::<()>();
    let (gone_tx, mut gone_rx) = mpsc::unbounded_channel::<()>();
    // crossterm's blocking read on its own thread: no polling, no extra crate feature.
    std::thread::Builder::new()
        .name("swr-tui-input".into())
        .spawn(move || {
            while let Ok(ev) = ratatui::crossterm::event::read() {
                if input_tx.send(ev).is_err() {
                    break;
                }
            }
        })?;
    let exe = std::env::current_exe()?;
    let mut lp = Loop {
        config,
        config_file,
        store,
        registry: config.provider_registry(exe.clone()).ok(),
        exe,
        tail: None,
        attempts_of: None,
        started: Vec::new(),
        msg_tx,
        lock_watched: Default::default(),
        gone_tx,
    };
    let mut app = App::new(settings(config), Timestamp::now());
    lp.spawn_discovery();
    let store_dir = config
        .store_path()
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let store_name = config
        .store_path()
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut watch = match watch::Watch::new(&store_dir, &store_name, wake_tx) {
        Ok(w) => Some(w),
        Err(e) => {
            app.update(Msg::Error(format!(
                "file notifications unavailable ({e}); refreshing every {:.0}s",
                config.tui_refresh.as_secs_f64()
            )));
            None
        }
    };
    let mut sigterm = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    // SIGQUIT (Ctrl-\ outside raw mode, `kill -QUIT`) would otherwise dump core and leave the
    // terminal in raw mode: handled like SIGTERM.
    let mut sigquit = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::quit())?;
    let mut sighup = crate::signals::hangup()?;
    if !early.is_empty() {
        app.update(Msg::Info(early.join("; ")));
    }
    let cmds = lp.load_runners(&mut app);
    lp.exec(&mut app, cmds);

    let refresh = config.tui_refresh.max(Duration::from_millis(100));
    let mut next_tick = tokio::time::Instant::now() + refresh;
    let mut reload_at: Option<tokio::time::Instant> = None;
    let mut dirty = true;
    let mut last_draw = Instant::now() - DRAW_EVERY;
    let mut quit_deadline: Option<Instant> = None;
    loop {
        lp.sync_current(&mut app, false);
        if let Some(w) = watch.as_mut() {
            w.follow_log(lp.tail.as_ref().map(|t| t.path.as_path()));
        }
        if app.should_exit {
            break;
        }
        if app.quitting && quit_deadline.is_none() {
            quit_deadline = Some(Instant::now() + config.stop_grace + Duration::from_secs(10));
        }
        if quit_deadline.is_some_and(|d| Instant::now() > d) {
            break;
        }
        let draw_at = if dirty {
            let due = last_draw + DRAW_EVERY;
            if Instant::now() >= due {
                let size = terminal.size()?;
                app.log.page = (size.height as usize).saturating_sub(14).max(4);
                terminal.draw(|f| view::draw(&app, f))?;
                last_draw = Instant::now();
                dirty = false;
                None
            } else {
                Some(tokio::time::Instant::from_std(due))
            }
        } else {
            None
        };
        // The clock only matters while the shown runner is active (elapsed, countdown) or
        // while quitting (waiting for our runners to end).
        let clock_at = if app.needs_clock() || app.quitting {
            let ms = if app.quitting {
                200
            } else {
                1000 - (Timestamp::now().subsec_millisecond() as u64 % 1000)
            };
            Some(tokio::time::Instant::now() + Duration::from_millis(ms.max(10)))
        } else {
            None
        };
        // One wake-up when the footer message expires, not a poll: idle stays idle.
        let message_at = app.message_expiry().map(|t| {
            let left = Duration::try_from(t.duration_since(Timestamp::now())).unwrap_or_default();
            (tokio::time::Instant::now() + left, t)
        });
        tokio::select! {
            ev = input_rx.recv() => {
                let Some(ev) = ev else { break };
                let mut evs = vec![ev];
                while let Ok(e) = input_rx.try_recv() {
                    evs.push(e);
                }
                app.update(Msg::Tick(Timestamp::now()));
                for ev in evs {
                    match ev {
                        Event::Key(k) if k.kind != KeyEventKind::Release => {
                            let cmds = app.update(Msg::Key(k));
                            lp.exec(&mut app, cmds);
                        }
                        Event::Resize(..) => {}
                        _ => continue,
                    }
                    dirty = true;
                }
            }
            Some(()) = wake_rx.recv() => {
                if reload_at.is_none() {
                    reload_at = Some(tokio::time::Instant::now() + DEBOUNCE);
                }
            }
            _ = async { if let Some(t) = reload_at { tokio::time::sleep_until(t).await } }, if reload_at.is_some() => {
                reload_at = None;
                while wake_rx.try_recv().is_ok() {}
                let (store_changed, log_changed) = match &watch {
                    Some(w) => (w.flags.store.swap(false, Ordering::SeqCst), w.flags.log.swap(false, Ordering::SeqCst)),
                    None => (true, true),
                };
                app.update(Msg::Tick(Timestamp::now()));
                if store_changed {
                    let cmds = lp.load_runners(&mut app);
                    lp.exec(&mut app, cmds);
                    lp.sync_current(&mut app, true);
                    if matches!(app.overlay, Some(app::Overlay::Dashboard)) {
                        lp.load_dashboard(&mut app);
                    }
                    lp.prune_started(&mut app);
                    dirty = true;
                }
                if log_changed {
                    dirty |= lp.poll_log(&mut app);
                }
            }
            Some(()) = gone_rx.recv() => {
                while gone_rx.try_recv().is_ok() {}
                let notes = reconcile(&lp.store, config);
                if !notes.is_empty() {
                    app.update(Msg::Info(notes.join("; ")));
                }
                app.update(Msg::Tick(Timestamp::now()));
                let cmds = lp.load_runners(&mut app);
                lp.exec(&mut app, cmds);
                lp.sync_current(&mut app, true);
                lp.prune_started(&mut app);
                dirty = true;
            }
            Some(m) = msg_rx.recv() => {
                app.update(Msg::Tick(Timestamp::now()));
                let cmds = app.update(m);
                lp.exec(&mut app, cmds);
                dirty = true;
            }
            _ = tokio::time::sleep_until(next_tick) => {
                next_tick = tokio::time::Instant::now() + refresh;
                // Safety net: a runner killed with -9 writes nothing; notifications can be lost.
                let before = app.owned.len();
                lp.prune_started(&mut app);
                let mut changed = before != app.owned.len();
                if lp.any_active_dead(&app) {
                    let notes = reconcile(&lp.store, config);
                    if !notes.is_empty() {
                        app.update(Msg::Info(notes.join("; ")));
                    }
                    changed = true;
                }
                if changed || watch.is_none() {
                    app.update(Msg::Tick(Timestamp::now()));
                    let cmds = lp.load_runners(&mut app);
                    lp.exec(&mut app, cmds);
                    lp.sync_current(&mut app, true);
                    lp.poll_log(&mut app);
                    dirty = true;
                }
            }
            _ = async { if let Some(t) = clock_at { tokio::time::sleep_until(t).await } }, if clock_at.is_some() => {
                app.update(Msg::Tick(Timestamp::now()));
                if app.quitting {
                    lp.prune_started(&mut app);
                }
                dirty = true;
            }
            _ = async { if let Some((t, _)) = message_at { tokio::time::sleep_until(t).await } }, if message_at.is_some() => {
                // Due by the monotonic clock: expire it even if the wall clock lags behind.
                let due = message_at.map(|(_, t)| t).unwrap_or_else(Timestamp::now);
                app.update(Msg::Tick(Timestamp::now().max(due)));
                dirty = true;
            }
            _ = async { if let Some(t) = draw_at { tokio::time::sleep_until(t).await } }, if draw_at.is_some() => {}
            _ = sigterm.recv() => {
                let cmds = app.update(Msg::Terminate);
                lp.exec(&mut app, cmds);
            }
            _ = sigquit.recv() => {
                let cmds = app.update(Msg::Terminate);
                lp.exec(&mut app, cmds);
            }
            // The terminal went away: runners are detached by design and keep working.
            () = crate::signals::recv(&mut sighup) => app.should_exit = true,
        }
    }
    Ok(crate::exit::OK)
}
