//! The TUI's state and its only mutator, [`App::update`]: every input (a key, a store change,
//! new log lines, a tick) is a [`Msg`]; an update changes state and may return [`Cmd`]s for
//! the loop to carry out (start or stop a runner, read a task list). No I/O here, and time is
//! an input (`Msg::Tick`), so state changes and frames are reproducible in tests.

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};

use jiff::Timestamp;
use jiff::tz::TimeZone;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use swr_core::spec::{Layout, Project, SpecRef, TaskCounts, TaskList};
use swr_core::store::{AttemptRecord, RetryStats, RunnerRecord};

use super::keys::{self, Action};
use super::logview::{LogLine, push_bounded};
use super::runner_ctl::{Exited, StartRequest, Started};

/// A spec in the tree, with its task counts when known.
#[derive(Debug, Clone, PartialEq)]
pub struct SpecNode {
    pub spec: SpecRef,
    pub counts: Option<TaskCounts>,
}

/// A project in the tree.
#[derive(Debug, Clone, PartialEq)]
pub struct ProjectNode {
    pub name: String,
    pub path: PathBuf,
    pub specs: Vec<SpecNode>,
    pub expanded: bool,
    /// Not found under repos_root: only known from a runner in the store.
    pub external: bool,
}

/// One visible line of the tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Row {
    Project(usize),
    Spec(usize, usize),
}

/// What the start prompt is editing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartPrompt {
    pub project: PathBuf,
    pub spec: String,
    pub provider: String,
    pub model: String,
    /// 0 = provider, 1 = model.
    pub field: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Overlay {
    Help,
    Config,
    Tasks {
        spec: String,
        list: Option<Result<TaskList, String>>,
    },
    Dashboard,
    StartPrompt(StartPrompt),
    /// "N runners active. Stop all and quit?"
    QuitConfirm(usize),
}

/// The log panel's content and position.
#[derive(Debug, Clone, Default)]
pub struct LogPanel {
    pub path: Option<PathBuf>,
    pub lines: VecDeque<LogLine>,
    /// Lines scrolled up from the bottom; 0 while following.
    pub scroll: usize,
    pub follow: bool,
    pub raw: bool,
    /// The panel's height at the last frame, for paging.
    pub page: usize,
}

/// Discovered projects with the task counts of each spec (same order), or why not.
pub type Discovered = Result<Vec<(Project, Vec<Option<TaskCounts>>)>, String>;

/// Everything that can happen to the TUI.
#[derive(Debug)]
pub enum Msg {
    Key(KeyEvent),
    /// The wall clock, for elapsed times and countdowns.
    Tick(Timestamp),
    /// Discovery finished: projects with the task counts of each spec (same order).
    Projects(Discovered),
    /// Every runner worth showing: the latest of each spec and every active one.
    Runners(Vec<RunnerRecord>),
    /// The attempts of the selected spec's runner.
    Attempts(Vec<AttemptRecord>),
    /// The retry dashboard's data.
    Dashboard(Vec<AttemptRecord>, RetryStats),
    /// The log panel now follows `path`; its tail.
    LogReset(Option<PathBuf>, Vec<LogLine>),
    LogAppend(Vec<LogLine>),
    Tasks(Result<TaskList, String>),
    Started(StartRequest, Result<Started, String>),
    /// A runner this TUI started has ended (reaped).
    RunnerExited(Exited),
    Info(String),
    Error(String),
    /// SIGTERM to the TUI.
    Terminate,
    /// Runners this TUI started that are still alive (pids), refreshed by the loop.
    OwnedAlive(Vec<u32>),
}

/// What the loop must do for the app.
#[derive(Debug, Clone, PartialEq)]
pub enum Cmd {
    Start(StartRequest),
    Stop(Box<RunnerRecord>),
    LoadTasks(PathBuf),
    LoadDashboard,
    Rescan,
    /// SIGTERM to every runner this TUI started that is alive.
    StopOwned,
}

/// Static settings the app needs from the config.
#[derive(Debug, Clone)]
pub struct Settings {
    pub default_provider: String,
    pub default_model: Option<String>,
    pub min_cols: u16,
    pub min_rows: u16,
    pub log_cap: usize,
    pub color: bool,
    pub tz: TimeZone,
    pub layout: Layout,
    pub repos_root: PathBuf,
    /// `(key, value, source)` of the effective config, for the `c` overlay.
    pub config_rows: Vec<(String, String, String)>,
}

/// How long a footer message stays.
pub const MESSAGE_TTL: jiff::SignedDuration = jiff::SignedDuration::from_secs(5);

#[derive(Debug)]
pub struct App {
    pub settings: Settings,
    pub now: Timestamp,
    pub projects: Vec<ProjectNode>,
    pub discovering: bool,
    /// When the task counts of the tree were read.
    pub discovered_at: Option<Timestamp>,
    pub rows: Vec<Row>,
    pub cursor: usize,
    /// The spec the status and log panels show.
    pub current: Option<(PathBuf, String)>,
    pub filter: String,
    pub filter_editing: bool,
    pub unfinished_only: bool,
    pub active_only: bool,
    /// Latest runner of each `(project, spec)`, active ones first.
    pub runners: HashMap<(PathBuf, String), RunnerRecord>,
    pub attempts: Vec<AttemptRecord>,
    pub dashboard: Option<(Vec<AttemptRecord>, RetryStats)>,
    pub show_logs: bool,
    pub log: LogPanel,
    pub overlay: Option<Overlay>,
    pub overlay_scroll: usize,
    pub message: Option<(String, bool)>,
    /// When the footer message goes away (on the first tick at or after it).
    pub message_until: Option<Timestamp>,
    /// Runners this TUI started and that are alive.
    pub owned: Vec<u32>,
    /// Runners started here that the store does not show yet: `(project, spec, pid)`. A
    /// second start of the same spec in that window would only hit the spec lock.
    pub starting: Vec<(PathBuf, String, u32)>,
    pub pending_restart: Vec<StartRequest>,
    /// Stop-all-and-quit in progress: exit once no owned runner is left.
    pub quitting: bool,
    pub should_exit: bool,
}

impl App {
    pub fn new(settings: Settings, now: Timestamp) -> App {
        App {
            settings,
            now,
            projects: Vec::new(),
            discovering: true,
            discovered_at: None,
            rows: Vec::new(),
            cursor: 0,
            current: None,
            filter: String::new(),
            filter_editing: false,
            unfinished_only: false,
            active_only: false,
            runners: HashMap::new(),
            attempts: Vec::new(),
            dashboard: None,
            show_logs: true,
            log: LogPanel {
                follow: true,
                ..LogPanel::default()
            },
            overlay: None,
            overlay_scroll: 0,
            message: None,
            message_until: None,
            owned: Vec::new(),
            starting: Vec::new(),
            pending_restart: Vec::new(),
            quitting: false,
            should_exit: false,
        }
    }

    /// The runner of the spec the panels show.
    pub fn current_runner(&self) -> Option<&RunnerRecord> {
        self.current.as_ref().and_then(|k| self.runners.get(k))
    }

    pub fn runner_of(&self, project: &Path, spec: &str) -> Option<&RunnerRecord> {
        self.runners.get(&(project.to_path_buf(), spec.to_string()))
    }

    /// Counts of a spec: the runner's (fresher while it runs) or the discovered ones.
    pub fn counts_of(&self, p: &ProjectNode, s: &SpecNode) -> Option<TaskCounts> {
        match self.runner_of(&p.path, &s.spec.name) {
            Some(r)
                if r.status.is_active()
                    || s.counts.is_none()
                    || self.discovered_at.is_none_or(|t| r.updated_at >= t) =>
            {
                Some(r.tasks)
            }
            _ => s.counts,
        }
    }

    pub fn active_runner_count(&self) -> usize {
        self.runners
            .values()
            .filter(|r| r.status.is_active())
            .count()
    }

    /// The spec under the cursor, or the project's first spec on a project row.
    fn cursor_spec(&self) -> Option<(PathBuf, String)> {
        match self.rows.get(self.cursor)? {
            Row::Spec(p, s) => {
                let p = &self.projects[*p];
                Some((p.path.clone(), p.specs[*s].spec.name.clone()))
            }
            Row::Project(_) => None,
        }
    }

    fn spec_visible(&self, p: &ProjectNode, s: &SpecNode) -> bool {
        if self.unfinished_only && self.counts_of(p, s).is_some_and(|c| c.is_complete()) {
            return false;
        }
        if self.active_only
            && !self
                .runner_of(&p.path, &s.spec.name)
                .is_some_and(|r| r.status.is_active())
        {
            return false;
        }
        if !self.filter.is_empty() {
            let f = self.filter.to_lowercase();
            return p.name.to_lowercase().contains(&f) || s.spec.name.to_lowercase().contains(&f);
        }
        true
    }

    /// Recomputes the visible rows after any change of projects, runners or filters, keeping
    /// the cursor on the same row when it is still visible.
    pub fn rebuild_rows(&mut self) {
        let keep = self.rows.get(self.cursor).map(|r| self.row_key(*r));
        let narrowing = self.unfinished_only || self.active_only || !self.filter.is_empty();
        let mut rows = Vec::new();
        for (pi, p) in self.projects.iter().enumerate() {
            let specs: Vec<usize> = (0..p.specs.len())
                .filter(|&si| self.spec_visible(p, &p.specs[si]))
                .collect();
            if narrowing && specs.is_empty() {
                continue;
            }
            rows.push(Row::Project(pi));
            // A narrowed view shows its matches without needing Enter on each project.
            if p.expanded || (narrowing && !specs.is_empty()) {
                rows.extend(specs.into_iter().map(|si| Row::Spec(pi, si)));
            }
        }
        self.rows = rows;
        if let Some(k) = keep
            && let Some(i) = self.rows.iter().position(|r| self.row_key(*r) == k)
        {
            self.cursor = i;
        }
        self.cursor = self.cursor.min(self.rows.len().saturating_sub(1));
    }

    fn row_key(&self, r: Row) -> (PathBuf, Option<String>) {
        match r {
            Row::Project(p) => (self.projects[p].path.clone(), None),
            Row::Spec(p, s) => (
                self.projects[p].path.clone(),
                Some(self.projects[p].specs[s].spec.name.clone()),
            ),
        }
    }

    fn move_cursor(&mut self, to: usize) {
        self.cursor = to.min(self.rows.len().saturating_sub(1));
        if let Some(spec) = self.cursor_spec()
            && self.current.as_ref() != Some(&spec)
        {
            self.select(spec);
        }
    }

    fn select(&mut self, spec: (PathBuf, String)) {
        self.current = Some(spec);
        self.attempts.clear();
        self.log.scroll = 0;
        self.log.follow = true;
    }

    fn set_message(&mut self, text: impl Into<String>, error: bool) {
        self.message = Some((text.into(), error));
        self.message_until = self.now.checked_add(MESSAGE_TTL).ok();
    }

    /// When the shown footer message expires: the loop wakes up once then, so an idle screen
    /// still redraws nothing in between.
    pub fn message_expiry(&self) -> Option<Timestamp> {
        self.message.as_ref().and(self.message_until)
    }

    pub fn update(&mut self, msg: Msg) -> Vec<Cmd> {
        match msg {
            Msg::Key(k) => return self.key(k),
            Msg::Tick(now) => {
                self.now = now;
                if self.message_expiry().is_some_and(|t| t <= now) {
                    self.message = None;
                    self.message_until = None;
                }
            }
            Msg::Projects(Ok(list)) => {
                self.discovering = false;
                self.discovered_at = Some(self.now);
                let expanded: std::collections::HashSet<PathBuf> = self
                    .projects
                    .iter()
                    .filter(|p| p.expanded)
                    .map(|p| p.path.clone())
                    .collect();
                let single = list.len() == 1;
                self.projects = list
                    .into_iter()
                    .map(|(p, counts)| ProjectNode {
                        expanded: single || expanded.contains(&p.path),
                        name: p.name,
                        specs: p
                            .specs
                            .into_iter()
                            .zip(counts.into_iter().chain(std::iter::repeat(None)))
                            .map(|(spec, counts)| SpecNode { spec, counts })
                            .collect(),
                        path: p.path,
                        external: false,
                    })
                    .collect();
                self.add_external_projects();
                self.rebuild_rows();
                if self.current.is_none() {
                    self.move_cursor(self.cursor);
                }
            }
            Msg::Projects(Err(e)) => {
                self.discovering = false;
                self.set_message(format!("cannot scan repos_root: {e}"), true);
            }
            Msg::Runners(list) => return self.runners_changed(list),
            Msg::Attempts(a) => self.attempts = a,
            Msg::Dashboard(a, s) => self.dashboard = Some((a, s)),
            Msg::LogReset(path, lines) => {
                self.log.path = path;
                self.log.lines.clear();
                push_bounded(&mut self.log.lines, lines, self.settings.log_cap);
                if self.log.follow {
                    self.log.scroll = 0;
                }
            }
            Msg::LogAppend(lines) => {
                let n = lines.len();
                push_bounded(&mut self.log.lines, lines, self.settings.log_cap);
                if !self.log.follow {
                    // Keep the same lines in view while reading back.
                    self.log.scroll =
                        (self.log.scroll + n).min(self.log.lines.len().saturating_sub(1));
                }
            }
            Msg::Tasks(list) => {
                if let Some(Overlay::Tasks { list: l, .. }) = &mut self.overlay {
                    *l = Some(list);
                }
            }
            Msg::Started(req, Ok(s)) => {
                self.owned.push(s.pid);
                self.starting
                    .push((req.project.clone(), req.spec.clone(), s.pid));
                self.set_message(
                    format!("started a runner on {} (pid {})", req.spec, s.pid),
                    false,
                );
            }
            Msg::Started(req, Err(e)) => {
                self.set_message(format!("cannot start {}: {e}", req.spec), true)
            }
            Msg::Info(m) => self.set_message(m, false),
            Msg::Error(m) => self.set_message(m, true),
            Msg::Terminate => {
                self.should_exit = true;
                return vec![Cmd::StopOwned];
            }
            Msg::RunnerExited(e) => {
                self.starting.retain(|s| s.2 != e.pid);
                let registered = self.runners.values().any(|r| r.pid == e.pid);
                if !e.success && !registered {
                    self.set_message(
                        format!(
                            "the runner of {} ended at once ({}): {}",
                            e.spec,
                            e.status,
                            e.last_line.as_deref().unwrap_or("no output")
                        ),
                        true,
                    );
                }
            }
            Msg::OwnedAlive(pids) => {
                self.starting.retain(|s| pids.contains(&s.2));
                self.owned = pids;
                if self.quitting && self.owned.is_empty() {
                    self.should_exit = true;
                }
            }
        }
        Vec::new()
    }

    fn runners_changed(&mut self, list: Vec<RunnerRecord>) -> Vec<Cmd> {
        let mut next: HashMap<(PathBuf, String), RunnerRecord> = HashMap::new();
        for r in list {
            let key = (r.project.clone(), r.spec.clone());
            let better = match next.get(&key) {
                None => true,
                Some(o) => {
                    (r.status.is_active(), r.started_at) > (o.status.is_active(), o.started_at)
                }
            };
            if better {
                next.insert(key, r);
            }
        }
        // Transitions worth a word in the footer: CRASHED -> RUNNING, a retry scheduled...
        let mut notes = Vec::new();
        for (k, r) in &next {
            match self.runners.get(k) {
                Some(o) if o.runner_id == r.runner_id => {
                    if o.status != r.status {
                        notes.push(format!(
                            "{}: {} → {}",
                            r.spec,
                            o.status.as_str().to_uppercase(),
                            r.status.as_str().to_uppercase()
                        ));
                    } else if r.retry_count > o.retry_count {
                        notes.push(format!(
                            "{}: retry {}/{}",
                            r.spec, r.retry_count, r.max_retries
                        ));
                    }
                }
                Some(o) if r.status.is_active() && !o.status.is_active() => notes.push(format!(
                    "{}: {} → {}",
                    r.spec,
                    o.status.as_str().to_uppercase(),
                    r.status.as_str().to_uppercase()
                )),
                _ => {}
            }
        }
        self.runners = next;
        let runners = &self.runners;
        self.starting.retain(|(p, s, pid)| {
            runners
                .get(&(p.clone(), s.clone()))
                .is_none_or(|r| r.pid != *pid)
        });
        if !notes.is_empty() {
            notes.sort();
            self.set_message(notes.join("; "), false);
        }
        let mut cmds = Vec::new();
        let pending = std::mem::take(&mut self.pending_restart);
        for req in pending {
            let busy = self
                .runner_of(&req.project, &req.spec)
                .is_some_and(|r| r.status.is_active());
            if busy {
                self.pending_restart.push(req);
            } else {
                cmds.push(Cmd::Start(req));
            }
        }
        self.add_external_projects();
        self.rebuild_rows();
        cmds
    }

    /// Runners of projects not under repos_root still deserve a row.
    fn add_external_projects(&mut self) {
        if self.discovering {
            return;
        }
        let mut keys: Vec<&(PathBuf, String)> = self.runners.keys().collect();
        keys.sort();
        let mut added = false;
        for (path, spec) in keys {
            let pi = match self.projects.iter().position(|p| &p.path == path) {
                Some(i) => i,
                None => {
                    self.projects.push(ProjectNode {
                        name: path
                            .file_name()
                            .map(|n| n.to_string_lossy().into_owned())
                            .unwrap_or_else(|| path.display().to_string()),
                        path: path.clone(),
                        specs: Vec::new(),
                        expanded: false,
                        external: true,
                    });
                    added = true;
                    self.projects.len() - 1
                }
            };
            let p = &mut self.projects[pi];
            if !p.specs.iter().any(|s| &s.spec.name == spec) {
                let dir = self.settings.layout.specs_dir(path).join(spec);
                p.specs.push(SpecNode {
                    spec: SpecRef {
                        project: p.name.clone(),
                        name: spec.clone(),
                        tasks_path: dir.join(&self.settings.layout.tasks_filename),
                        dir,
                    },
                    counts: None,
                });
                p.specs.sort_by(|a, b| a.spec.name.cmp(&b.spec.name));
                added = true;
            }
        }
        if added {
            self.projects
                .sort_by(|a, b| (a.external, &a.path).cmp(&(b.external, &b.path)));
        }
    }

    fn key(&mut self, k: KeyEvent) -> Vec<Cmd> {
        if self.filter_editing {
            match k.code {
                KeyCode::Enter => self.filter_editing = false,
                KeyCode::Esc => {
                    self.filter_editing = false;
                    self.filter.clear();
                }
                KeyCode::Backspace => {
                    self.filter.pop();
                }
                KeyCode::Char(c) if !k.modifiers.contains(KeyModifiers::CONTROL) => {
                    self.filter.push(c)
                }
                _ => {}
            }
            self.rebuild_rows();
            return Vec::new();
        }
        match self.overlay.take() {
            Some(Overlay::StartPrompt(p)) => return self.prompt_key(p, k),
            Some(Overlay::QuitConfirm(n)) => return self.quit_key(n, k),
            Some(o) => {
                self.overlay = Some(o);
                return self.overlay_key(k);
            }
            None => {}
        }
        match keys::action_for(k) {
            Some(a) => self.action(a),
            None => Vec::new(),
        }
    }

    fn overlay_key(&mut self, k: KeyEvent) -> Vec<Cmd> {
        match keys::action_for(k) {
            Some(Action::Up) => self.overlay_scroll = self.overlay_scroll.saturating_sub(1),
            Some(Action::Down) => self.overlay_scroll += 1,
            Some(Action::PageUp) => self.overlay_scroll = self.overlay_scroll.saturating_sub(10),
            Some(Action::PageDown) => self.overlay_scroll += 10,
            Some(Action::Top) => self.overlay_scroll = 0,
            Some(Action::Quit) if k.modifiers.contains(KeyModifiers::CONTROL) => {
                self.overlay = None;
                return self.action(Action::Quit);
            }
            // The key that opened an overlay closes it too.
            Some(Action::Back | Action::Quit | Action::Enter) => self.overlay = None,
            Some(a @ (Action::Help | Action::Config | Action::Tasks | Action::Dashboard)) => {
                let same = matches!(
                    (&self.overlay, a),
                    (Some(Overlay::Help), Action::Help)
                        | (Some(Overlay::Config), Action::Config)
                        | (Some(Overlay::Tasks { .. }), Action::Tasks)
                        | (Some(Overlay::Dashboard), Action::Dashboard)
                );
                self.overlay = None;
                if !same {
                    return self.action(a);
                }
            }
            _ => {}
        }
        Vec::new()
    }

    fn prompt_key(&mut self, mut p: StartPrompt, k: KeyEvent) -> Vec<Cmd> {
        match k.code {
            KeyCode::Esc => return Vec::new(),
            KeyCode::Enter => {
                let req = StartRequest {
                    project: p.project,
                    spec: p.spec,
                    provider: Some(p.provider.trim().to_string()).filter(|s| !s.is_empty()),
                    model: Some(p.model.trim().to_string()).filter(|s| !s.is_empty()),
                };
                return self.start(req);
            }
            KeyCode::Tab | KeyCode::BackTab | KeyCode::Up | KeyCode::Down => p.field = 1 - p.field,
            KeyCode::Backspace => {
                let f = if p.field == 0 {
                    &mut p.provider
                } else {
                    &mut p.model
                };
                f.pop();
            }
            KeyCode::Char(c) if !k.modifiers.contains(KeyModifiers::CONTROL) => {
                if p.field == 0 {
                    p.provider.push(c)
                } else {
                    p.model.push(c)
                }
            }
            _ => {}
        }
        self.overlay = Some(Overlay::StartPrompt(p));
        Vec::new()
    }

    fn quit_key(&mut self, n: usize, k: KeyEvent) -> Vec<Cmd> {
        match k.code {
            KeyCode::Char('y') | KeyCode::Char('Y') => {
                self.quitting = true;
                self.set_message(format!("stopping {n} runner(s)…"), false);
                vec![Cmd::StopOwned]
            }
            KeyCode::Char('n') | KeyCode::Char('N') => {
                self.should_exit = true;
                Vec::new()
            }
            KeyCode::Char('c') | KeyCode::Char('C') | KeyCode::Esc => Vec::new(),
            _ => {
                self.overlay = Some(Overlay::QuitConfirm(n));
                Vec::new()
            }
        }
    }

    /// A start, unless the spec has an active runner or one started here is not in the store
    /// yet (it would only fail on the spec lock, out of sight).
    fn start(&mut self, req: StartRequest) -> Vec<Cmd> {
        if self
            .runner_of(&req.project, &req.spec)
            .is_some_and(|r| r.status.is_active())
        {
            self.set_message(format!("{} already has an active runner", req.spec), true);
            return Vec::new();
        }
        if self
            .starting
            .iter()
            .any(|(p, s, _)| p == &req.project && s == &req.spec)
        {
            self.set_message(
                format!("a runner of {} is starting already", req.spec),
                true,
            );
            return Vec::new();
        }
        vec![Cmd::Start(req)]
    }

    fn open(&mut self, o: Overlay) {
        self.overlay = Some(o);
        self.overlay_scroll = 0;
    }

    fn current_request(&self) -> Option<StartRequest> {
        let (project, spec) = self.cursor_spec().or_else(|| self.current.clone())?;
        Some(StartRequest {
            project,
            spec,
            provider: None,
            model: None,
        })
    }

    fn action(&mut self, a: Action) -> Vec<Cmd> {
        let page = self.log.page.max(2);
        match a {
            Action::Up => self.move_cursor(self.cursor.saturating_sub(1)),
            Action::Down => self.move_cursor(self.cursor + 1),
            Action::Top => self.move_cursor(0),
            Action::Bottom => self.move_cursor(self.rows.len().saturating_sub(1)),
            Action::PageUp => self.scroll_log_up(page),
            Action::PageDown => self.scroll_log_down(page),
            Action::LogUp => self.scroll_log_up(page / 2),
            Action::LogDown => self.scroll_log_down(page / 2),
            Action::Enter => match self.rows.get(self.cursor).copied() {
                Some(Row::Project(p)) => {
                    self.projects[p].expanded = !self.projects[p].expanded;
                    self.rebuild_rows();
                }
                Some(Row::Spec(..)) => {
                    if let Some(s) = self.cursor_spec() {
                        self.select(s);
                    }
                }
                None => {}
            },
            Action::Filter => {
                self.filter_editing = true;
            }
            Action::ToggleUnfinished => {
                self.unfinished_only = !self.unfinished_only;
                self.rebuild_rows();
            }
            Action::ToggleActive => {
                self.active_only = !self.active_only;
                self.rebuild_rows();
            }
            Action::Start => match self.current_request() {
                Some(req) => return self.start(req),
                None => self.set_message("select a spec first", true),
            },
            Action::StartWith => match self.current_request() {
                Some(req) => self.open(Overlay::StartPrompt(StartPrompt {
                    project: req.project,
                    spec: req.spec,
                    provider: self.settings.default_provider.clone(),
                    model: self.settings.default_model.clone().unwrap_or_default(),
                    field: 0,
                })),
                None => self.set_message("select a spec first", true),
            },
            Action::Stop => match self.current_runner() {
                Some(r) if r.status.is_active() => return vec![Cmd::Stop(Box::new(r.clone()))],
                _ => self.set_message("no active runner on this spec", true),
            },
            Action::Restart => match self.current_runner() {
                Some(r) => {
                    let req = StartRequest {
                        project: r.project.clone(),
                        spec: r.spec.clone(),
                        provider: Some(r.provider.clone()),
                        model: r.model.clone(),
                    };
                    if r.status.is_active() {
                        let r = r.clone();
                        self.pending_restart.push(req);
                        self.set_message(format!("restarting {}…", r.spec), false);
                        return vec![Cmd::Stop(Box::new(r))];
                    }
                    return self.start(req);
                }
                None => self.set_message("no runner to restart on this spec", true),
            },
            Action::ToggleLogs => self.show_logs = !self.show_logs,
            Action::Follow => {
                self.log.follow = true;
                self.log.scroll = 0;
            }
            Action::ToggleRaw => self.log.raw = !self.log.raw,
            Action::Tasks => match self.current.clone() {
                Some((project, spec)) => {
                    let path = self
                        .projects
                        .iter()
                        .find(|p| p.path == project)
                        .and_then(|p| p.specs.iter().find(|s| s.spec.name == spec))
                        .map(|s| s.spec.tasks_path.clone())
                        .unwrap_or_else(|| {
                            self.settings
                                .layout
                                .specs_dir(&project)
                                .join(&spec)
                                .join(&self.settings.layout.tasks_filename)
                        });
                    self.open(Overlay::Tasks { spec, list: None });
                    return vec![Cmd::LoadTasks(path)];
                }
                None => self.set_message("select a spec first", true),
            },
            Action::Dashboard => {
                self.open(Overlay::Dashboard);
                return vec![Cmd::LoadDashboard];
            }
            Action::Help => self.open(Overlay::Help),
            Action::Config => self.open(Overlay::Config),
            Action::Rescan => {
                self.discovering = true;
                return vec![Cmd::Rescan];
            }
            Action::Back => {
                if !self.filter.is_empty() {
                    self.filter.clear();
                    self.rebuild_rows();
                }
                self.message = None;
            }
            Action::Quit => {
                let n = self.owned.len();
                if n > 0 {
                    self.open(Overlay::QuitConfirm(n));
                } else {
                    self.should_exit = true;
                }
            }
        }
        Vec::new()
    }

    fn scroll_log_up(&mut self, n: usize) {
        self.log.scroll = (self.log.scroll + n).min(self.log.lines.len().saturating_sub(1));
        self.log.follow = self.log.scroll == 0;
    }

    fn scroll_log_down(&mut self, n: usize) {
        self.log.scroll = self.log.scroll.saturating_sub(n);
        if self.log.scroll == 0 {
            self.log.follow = true;
        }
    }

    /// Whether the frame shows a clock-driven value (elapsed time, countdown): then the loop
    /// redraws every second; otherwise only on change.
    pub fn needs_clock(&self) -> bool {
        self.current_runner().is_some_and(|r| r.status.is_active())
    }
}

/// `1h02m`, `3m05s`, `42s`.
pub fn human_secs(secs: i64) -> String {
    let s = secs.max(0);
    match s {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m{:02}s", s / 60, s % 60),
        s if s < 86400 => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
        s => format!("{}d{:02}h", s / 86400, (s % 86400) / 3600),
    }
}
