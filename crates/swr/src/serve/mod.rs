//! `swr serve`: one more front end over the same runner processes and store. It owns the
//! process's lifetime (listener, signals, shutdown order), the store watch that makes
//! everything live, and the token. The work is in:
//! - [`scheduler`]: the queue loop. Starts queued entries as ordinary detached `swr run`
//!   runners within `max_concurrent_agents`, settles entries whose runner ended, re-queues runs
//!   interrupted by a crash, and on SIGTERM stops its runners and leaves their entries queued.
//! - [`api`]: the HTTP layer: the guard (Host, token, Origin), typed requests validated at the
//!   edge, handlers that call the same functions as the CLI commands.
//! - [`sse`]: the live streams (state, and a runner's log across attempts).
//! - `assets/`: the dashboard, embedded with `include_str!` (no Node build step).
//!
//! It owns nothing the CLI cannot see: the queue, its pause switch and the webhook outbox are
//! in the store; runners are in the store and their logs in files.

mod api;
mod scheduler;
mod sse;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use swr_core::config::Config;
use swr_core::store::{DeliveryScope, Store};
use tokio::sync::watch;

use crate::cli::ServeArgs;
use crate::exit::{self, ExitError};

use scheduler::{SchedMsg, Scheduler};

/// The address `--listen` names. A bare port means 127.0.0.1; `localhost` is 127.0.0.1.
pub fn check_listen(listen: &str) -> Result<SocketAddr, String> {
    let s = listen.trim();
    if let Ok(port) = s.parse::<u16>() {
        return Ok(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port));
    }
    if let Some(port) = s.strip_prefix("localhost:") {
        return port
            .parse::<u16>()
            .map(|p| SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), p))
            .map_err(|_| format!("--listen {listen}: {port:?} is not a port number"));
    }
    s.parse::<SocketAddr>().map_err(|_| {
        format!(
            "--listen {listen}: expected ADDRESS:PORT such as 127.0.0.1:8787, 0.0.0.0:8787 or [::1]:8787"
        )
    })
}

/// The bearer token clients must send, if any: read from `--token-file`, or generated (and
/// printed once) when listening beyond loopback. `Ok(None)` on loopback without a file.
fn token(args: &ServeArgs, loopback: bool) -> anyhow::Result<Option<String>> {
    if let Some(f) = &args.token_file {
        let path = crate::cmd::expand_tilde(&f.display().to_string());
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("--token-file {}: cannot read it", path.display()))?;
        let t = text.trim().to_string();
        if t.len() < 16 || t.chars().any(|c| !c.is_ascii_graphic()) {
            return Err(ExitError::usage(format!(
                "--token-file {}: the token must be at least 16 visible ASCII characters (e.g. `openssl rand -hex 32 > {}`)",
                path.display(),
                path.display()
            ))
            .into());
        }
        return Ok(Some(t));
    }
    if loopback {
        return Ok(None);
    }
    use rand::Rng;
    let bytes: [u8; 32] = rand::rng().random();
    Ok(Some(bytes.iter().map(|b| format!("{b:02x}")).collect()))
}

/// One service per store: two would both start the same queued entries. The kernel drops
/// the lock when the service dies, kill -9 included.
fn lock_service(config: &Config) -> anyhow::Result<nix::fcntl::Flock<std::fs::File>> {
    use std::io::{Read, Seek, Write};
    std::fs::create_dir_all(&config.cache_dir)
        .with_context(|| format!("cannot create {}", config.cache_dir.display()))?;
    let path = config.cache_dir.join("serve.lock");
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    match nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusiveNonblock) {
        Ok(mut lock) => {
            lock.set_len(0)?;
            lock.rewind()?;
            write!(lock, "{}", std::process::id())?;
            Ok(lock)
        }
        Err((mut file, _)) => {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            Err(ExitError::new(
                exit::TEMPFAIL,
                format!(
                    "another swr serve (pid {}) already serves the store in {}; stop it first",
                    holder.trim(),
                    config.cache_dir.display()
                ),
            )
            .into())
        }
    }
}

pub fn run(config: Config, config_file: Option<&Path>, args: &ServeArgs) -> anyhow::Result<u8> {
    let addr = check_listen(&args.listen).map_err(ExitError::usage)?;
    let loopback = addr.ip().is_loopback();
    let token = token(args, loopback)?;
    let _lock = lock_service(&config)?;
    let store = Arc::new(Store::open(&config.store_path())?);
    // The same reconciliation `swr run` does at its start, before anything is served: the
    // first page and the first scheduling pass see runners that died as crashed.
    for r in swr_core::runner::reconcile_and_reap(&store, &config.lock_dir())? {
        eprintln!("swr serve: {}", crate::text::one_line(&r.describe()));
    }
    let exe = std::env::current_exe().context("cannot find swr's own executable")?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    // Runners start in their project's directory: a relative --config must not change meaning.
    let config_file = match config_file {
        Some(p) if p.is_relative() => Some(std::env::current_dir()?.join(p)),
        other => other.map(Path::to_path_buf),
    };
    let code = rt.block_on(serve(
        config,
        config_file,
        exe,
        store,
        addr,
        token,
        args.token_file.is_none(),
    ))?;
    // SSE streams and log followers are cut here; every runner is already stopped.
    rt.shutdown_timeout(Duration::from_secs(1));
    Ok(code)
}

async fn serve(
    config: Config,
    config_file: Option<std::path::PathBuf>,
    exe: std::path::PathBuf,
    store: Arc<Store>,
    addr: SocketAddr,
    token: Option<String>,
    token_generated: bool,
) -> anyhow::Result<u8> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    let local = listener.local_addr()?;
    let (sched_tx, sched_rx) = std::sync::mpsc::channel::<SchedMsg>();
    let (changes_tx, changes_rx) = watch::channel(0u64);
    let deliverer = swr_core::webhook::Deliverer::spawn(config.store_path(), DeliveryScope::All)
        .context("cannot start the webhook delivery thread")?;
    let _watcher = watch_store(&config, sched_tx.clone(), changes_tx, deliverer.poker())?;

    let scheduler = Scheduler::new(
        config.clone(),
        config_file,
        exe,
        store.clone(),
        sched_tx.clone(),
    );
    let sched_thread = std::thread::Builder::new()
        .name("swr-serve-queue".into())
        .spawn(move || scheduler.run(sched_rx))?;

    let shared = Arc::new(api::Shared {
        config,
        store,
        token: token.clone(),
        loopback: local.ip().is_loopback(),
        changes: changes_rx,
        sched: sched_tx.clone(),
    });
    let app = api::router(shared);
    // The token first: whoever waits for "listening" has it by then.
    if let (Some(t), true) = (&token, token_generated) {
        eprintln!(
            "swr serve: token (shown once; clients send `Authorization: Bearer TOKEN`, browsers open http://{local}/?token=TOKEN): {t}"
        );
    }
    eprintln!("swr serve: listening on http://{local}/ (dashboard and API)");

    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = stop_rx.await;
            })
            .await;
    });

    wait_for_signal().await?;
    eprintln!("swr serve: stopping: its runners are stopped gracefully and stay queued");
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    let _ = sched_tx.send(SchedMsg::Shutdown(done_tx));
    tokio::task::spawn_blocking(move || {
        let _ = done_rx.recv();
        let _ = sched_thread.join();
    })
    .await?;
    let _ = stop_tx.send(());
    // Open SSE streams would hold a graceful shutdown forever: give requests in flight a
    // moment, then go.
    let _ = tokio::time::timeout(Duration::from_secs(2), server).await;
    deliverer.finish(Duration::from_secs(2));
    eprintln!("swr serve: stopped");
    Ok(exit::OK)
}

async fn wait_for_signal() -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut hup = signal(SignalKind::hangup())?;
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
        _ = hup.recv() => {}
    }
    Ok(())
}

/// Watches the store's directory: every commit of any process (a runner, `swr queue add`, the
/// service itself) changes its `-wal` file. Each change bumps the generation the SSE streams
/// wait on, wakes the scheduler, and pokes the webhook deliverer. Reads change nothing, so an
/// idle store means no wake-ups at all.
fn watch_store(
    config: &Config,
    sched: std::sync::mpsc::Sender<SchedMsg>,
    changes: watch::Sender<u64>,
    deliverer: swr_core::webhook::Poker,
) -> anyhow::Result<notify::RecommendedWatcher> {
    use notify::{RecursiveMode, Watcher};
    let store_path = config.store_path();
    let dir = store_path
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| config.cache_dir.clone());
    let name = store_path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let dir_in = dir.clone();
    let sched = std::sync::Mutex::new(sched);
    let mut watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        let Ok(ev) = res else { return };
        if matches!(ev.kind, notify::EventKind::Access(_)) {
            return;
        }
        let ours = ev.paths.iter().any(|p| {
            p.parent() == Some(dir_in.as_path())
                && p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with(&name))
        });
        if !ours {
            return;
        }
        changes.send_modify(|g| *g = g.wrapping_add(1));
        if let Ok(s) = sched.lock() {
            let _ = s.send(SchedMsg::Wake);
        }
        deliverer.poke();
    })?;
    watcher
        .watch(&dir, RecursiveMode::NonRecursive)
        .with_context(|| format!("cannot watch {}", dir.display()))?;
    Ok(watcher)
}
