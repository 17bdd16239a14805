//! `swr metrics`: the store as OpenMetrics text, for node_exporter's textfile collector or a
//! scrape. Runners by status, attempts by provider and outcome, retries, rate-limit waits,
//! attempt and check durations as histograms, tokens, cost and ticks. `--watch FILE` rewrites
//! FILE (temp file + rename, so a reader never sees half of it) whenever the store changes.
//!
//! The encoding is `prometheus-client`'s, not ours: names, `_total` suffixes, escaping and
//! the `# EOF` terminator follow the OpenMetrics specification as that crate implements it.
//! Every metric is built afresh from one snapshot of the store on each rendering: the counters
//! are the store's totals, not this process's.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant};

use anyhow::Context;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};
use swr_core::config::Config;
use swr_core::store::MetricsSnapshot;

use crate::cli::MetricsArgs;
use crate::exit;

type Labels = Vec<(&'static str, String)>;

/// Attempt lengths, seconds: from a quick failure to a long session.
const ATTEMPT_BUCKETS: [f64; 12] = [
    1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1200.0, 1800.0, 3600.0, 7200.0,
];
/// Verify check lengths, seconds.
const CHECK_BUCKETS: [f64; 10] = [0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0];

pub fn run(config: &Config, args: &MetricsArgs) -> anyhow::Result<u8> {
    let store = super::runners::open_store(config)?;
    match &args.watch {
        None => {
            let text = render(&store.metrics()?)?;
            let mut out = std::io::stdout().lock();
            out.write_all(text.as_bytes())?;
            out.flush()?;
            Ok(exit::OK)
        }
        Some(file) => watch(config, &store, file),
    }
}

/// The OpenMetrics text of one snapshot.
pub fn render(m: &MetricsSnapshot) -> anyhow::Result<String> {
    let mut reg = Registry::with_prefix("swr");

    let runners = Family::<Labels, Gauge>::default();
    for (status, n) in &m.runners {
        runners
            .get_or_create(&vec![("status", status.as_str().to_string())])
            .set(i64::try_from(*n).unwrap_or(i64::MAX));
    }
    reg.register(
        "runners",
        "Runners recorded in the store, by status",
        runners,
    );

    let attempts = Family::<Labels, Counter>::default();
    for c in &m.attempts {
        attempts
            .get_or_create(&vec![
                ("provider", c.provider.clone()),
                ("outcome", c.outcome.as_str().to_string()),
            ])
            .inc_by(c.count);
    }
    reg.register(
        "attempts",
        "Agent attempts that ended, by provider and outcome",
        attempts,
    );

    let retries = Family::<Labels, Counter>::default();
    for (provider, n) in &m.retries {
        retries
            .get_or_create(&vec![("provider", provider.clone())])
            .inc_by(*n);
    }
    reg.register(
        "retries",
        "Retries scheduled after a failed attempt, by provider",
        retries,
    );

    let waits = Family::<Labels, Counter>::default();
    let waited = Family::<Labels, Counter<f64, AtomicU64>>::default();
    for (provider, n, secs) in &m.rate_limit_waits {
        let l = vec![("provider", provider.clone())];
        waits.get_or_create(&l).inc_by(*n);
        waited.get_or_create(&l).inc_by(*secs);
    }
    reg.register("rate_limit_waits", "Rate-limit waits, by provider", waits);
    reg.register_with_unit(
        "rate_limit_wait",
        "Time scheduled to wait for rate limits to reset, by provider",
        Unit::Seconds,
        waited,
    );

    let durations = Family::<Labels, Histogram>::new_with_constructor(|| {
        Histogram::new(ATTEMPT_BUCKETS.iter().copied())
    });
    for (provider, secs) in &m.attempt_seconds {
        let h = durations.get_or_create(&vec![("provider", provider.clone())]);
        for s in secs {
            h.observe(*s);
        }
    }
    reg.register_with_unit(
        "attempt_duration",
        "How long agent attempts ran, by provider",
        Unit::Seconds,
        durations,
    );

    let checks = Histogram::new(CHECK_BUCKETS.iter().copied());
    for s in &m.verify_seconds {
        checks.observe(*s);
    }
    reg.register_with_unit(
        "verify_duration",
        "How long verify checks ran",
        Unit::Seconds,
        checks,
    );

    let tokens = Family::<Labels, Counter>::default();
    let cost = Family::<Labels, Counter<f64, AtomicU64>>::default();
    for (provider, t) in &m.spend {
        if t.metered > 0 {
            for (kind, n) in [
                ("input", t.input_tokens),
                ("cached_input", t.cached_tokens),
                ("output", t.output_tokens),
            ] {
                tokens
                    .get_or_create(&vec![("provider", provider.clone()), ("kind", kind.into())])
                    .inc_by(n);
            }
        }
        if t.priced > 0 {
            for (source, usd) in [
                ("reported", t.cost_usd - t.estimated_usd),
                ("estimated", t.estimated_usd),
            ] {
                cost.get_or_create(&vec![
                    ("provider", provider.clone()),
                    ("source", source.into()),
                ])
                .inc_by(usd.max(0.0));
            }
        }
    }
    reg.register(
        "tokens",
        "Tokens the agents reported, by provider and kind (input counts cached_input too)",
        tokens,
    );
    reg.register(
        "cost_usd",
        "US dollars the agents reported, or estimated from the prices table, by provider",
        cost,
    );

    let ticks = Family::<Labels, Counter>::default();
    ticks
        .get_or_create(&vec![("result", "accepted".into())])
        .inc_by(m.ticks_accepted);
    ticks
        .get_or_create(&vec![("result", "rejected".into())])
        .inc_by(m.ticks_rejected);
    reg.register(
        "ticks",
        "Tasks ticked by agents: accepted, or put back by a failed verify check",
        ticks,
    );
    let empty = Counter::<u64>::default();
    empty.inc_by(m.ticks_empty);
    reg.register(
        "empty_ticks",
        "Ticks whose attempt changed nothing but tasks.md",
        empty,
    );

    let mut text = String::new();
    encode(&mut text, &reg).context("encoding the metrics")?;
    Ok(text)
}

/// Rewrites `file` now and after every change of the store, until killed. A change is seen
/// through the store's files (its `-wal` grows on every commit); a slow timer catches
/// anything a notification missed.
fn watch(config: &Config, store: &swr_core::store::Store, file: &Path) -> anyhow::Result<u8> {
    use notify::{RecursiveMode, Watcher};
    let store_path = config.store_path();
    let dir = store_path
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    let name = store_path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let mut watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        let Ok(ev) = res else { return };
        if matches!(ev.kind, notify::EventKind::Access(_)) {
            return;
        }
        let ours = ev.paths.iter().any(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with(&name))
        });
        if ours {
            let _ = tx.send(());
        }
    })?;
    watcher.watch(&dir, RecursiveMode::NonRecursive)?;
    let mut last = String::new();
    loop {
        let text = render(&store.metrics()?)?;
        if text != last {
            write_atomically(file, &text)
                .with_context(|| format!("cannot write {}", file.display()))?;
            last = text;
        }
        // Let a burst of commits settle into one rendering.
        let _ = rx.recv_timeout(Duration::from_secs(10));
        let settle = Instant::now() + Duration::from_millis(200);
        while let Some(left) = settle.checked_duration_since(Instant::now()) {
            if rx.recv_timeout(left).is_err() {
                break;
            }
        }
    }
}

/// Writes `text` to a temporary file beside `file` and renames it over `file`. The temporary
/// name does not end in `.prom`, so the textfile collector never reads it.
fn write_atomically(file: &Path, text: &str) -> std::io::Result<()> {
    let dir = file
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut tmp = tempfile::Builder::new()
        .prefix(".swr-metrics-")
        .suffix(".tmp")
        .tempfile_in(dir)?;
    tmp.write_all(text.as_bytes())?;
    // Readable by the collector, which often runs as another user.
    tmp.as_file()
        .set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o644))?;
    tmp.as_file().sync_all()?;
    tmp.persist(file).map_err(|e| e.error)?;
    Ok(())
}
