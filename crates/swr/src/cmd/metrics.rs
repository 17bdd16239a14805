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
    // Histograms carry their unit in the name only: some OpenMetrics readers refuse a UNIT
    // line on them.
    reg.register(
        "attempt_duration_seconds",
        "How long agent attempts ran, by provider",
        durations,
    );

    let checks = Histogram::new(CHECK_BUCKETS.iter().copied());
    for s in &m.verify_seconds {
        checks.observe(*s);
    }
    reg.register(
        "verify_duration_seconds",
        "How long verify checks ran",
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use openmetrics_parser::{OpenMetricsType, OpenMetricsValue, openmetrics::parse_openmetrics};
    use swr_core::cost::Totals;
    use swr_core::outcome::Outcome;
    use swr_core::store::{OutcomeCount, RunnerStatus};

    fn snapshot() -> MetricsSnapshot {
        MetricsSnapshot {
            runners: RunnerStatus::ALL
                .iter()
                .map(|s| (*s, u64::from(*s == RunnerStatus::Budget) * 2))
                .collect(),
            attempts: vec![
                OutcomeCount {
                    provider: "claude".into(),
                    outcome: Outcome::Crash,
                    count: 3,
                },
                OutcomeCount {
                    provider: "codex \"quoted\"".into(),
                    outcome: Outcome::Success,
                    count: 4,
                },
            ],
            retries: vec![("claude".into(), 2)],
            rate_limit_waits: vec![("claude".into(), 1, 3600.5)],
            attempt_seconds: vec![("claude".into(), vec![0.5, 42.0, 9000.0])],
            verify_seconds: vec![1.25],
            spend: vec![(
                "claude".into(),
                Totals {
                    attempts: 7,
                    priced: 7,
                    metered: 7,
                    input_tokens: 1000,
                    cached_tokens: 600,
                    output_tokens: 50,
                    cost_usd: 1.75,
                    estimated_usd: 0.25,
                },
            )],
            ticks_accepted: 5,
            ticks_rejected: 1,
            ticks_empty: 1,
        }
    }

    /// The text is valid OpenMetrics (a strict parser that passes the specification's test
    /// cases reads it back) and says what the snapshot holds.
    #[test]
    fn the_text_is_openmetrics_and_carries_every_figure() {
        let text = render(&snapshot()).unwrap();
        assert!(text.ends_with("# EOF\n"), "{text}");
        let parsed = parse_openmetrics(&text).unwrap();
        let fam = |n: &str| {
            parsed
                .families
                .get(n)
                .unwrap_or_else(|| panic!("no {n} in {text}"))
        };
        let value = |n: &str, labels: &[(&str, &str)]| -> f64 {
            let f = fam(n);
            let s = f
                .iter_samples()
                .find(|s| {
                    let set = s.get_labelset().unwrap();
                    labels
                        .iter()
                        .all(|(k, v)| set.get_label_value(k) == Some(*v))
                })
                .unwrap_or_else(|| panic!("no {n}{labels:?}"));
            match &s.value {
                OpenMetricsValue::Counter(c) => c.value.as_f64(),
                OpenMetricsValue::Gauge(g) => g.as_f64(),
                other => panic!("{other:?}"),
            }
        };
        assert_eq!(fam("swr_runners").family_type, OpenMetricsType::Gauge);
        assert_eq!(value("swr_runners", &[("status", "budget")]), 2.0);
        assert_eq!(value("swr_runners", &[("status", "running")]), 0.0);
        assert_eq!(fam("swr_attempts").family_type, OpenMetricsType::Counter);
        assert_eq!(
            value(
                "swr_attempts",
                &[("provider", "claude"), ("outcome", "crash")]
            ),
            3.0
        );
        assert_eq!(
            value(
                "swr_attempts",
                &[("provider", "codex \"quoted\""), ("outcome", "success")]
            ),
            4.0
        );
        assert_eq!(value("swr_retries", &[]), 2.0);
        assert_eq!(value("swr_rate_limit_waits", &[]), 1.0);
        assert_eq!(fam("swr_rate_limit_wait_seconds").unit, "seconds");
        assert_eq!(value("swr_rate_limit_wait_seconds", &[]), 3600.5);
        assert_eq!(value("swr_tokens", &[("kind", "cached_input")]), 600.0);
        assert_eq!(value("swr_cost_usd", &[("source", "reported")]), 1.5);
        assert_eq!(value("swr_cost_usd", &[("source", "estimated")]), 0.25);
        assert_eq!(value("swr_ticks", &[("result", "rejected")]), 1.0);
        assert_eq!(value("swr_empty_ticks", &[]), 1.0);
        let h = fam("swr_attempt_duration_seconds");
        assert_eq!(h.family_type, OpenMetricsType::Histogram);
        match &h.iter_samples().next().unwrap().value {
            OpenMetricsValue::Histogram(h) => {
                assert_eq!(h.count, Some(3));
                assert!((h.sum.unwrap().as_f64() - 9042.5).abs() < 1e-9);
                let le = |b: f64| {
                    h.buckets
                        .iter()
                        .find(|x| x.upper_bound == b)
                        .unwrap()
                        .count
                        .as_f64()
                };
                assert_eq!((le(1.0), le(60.0), le(f64::INFINITY)), (1.0, 2.0, 3.0));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            fam("swr_verify_duration_seconds").family_type,
            OpenMetricsType::Histogram
        );
    }

    #[test]
    fn an_empty_store_still_gives_valid_text() {
        let m = MetricsSnapshot {
            runners: RunnerStatus::ALL.iter().map(|s| (*s, 0)).collect(),
            ..MetricsSnapshot::default()
        };
        let text = render(&m).unwrap();
        parse_openmetrics(&text).unwrap();
    }

    #[test]
    fn the_file_is_replaced_whole() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("swr.prom");
        write_atomically(&f, "a 1\n# EOF\n").unwrap();
        write_atomically(&f, "b 2\n# EOF\n").unwrap();
        assert_eq!(std::fs::read_to_string(&f).unwrap(), "b 2\n# EOF\n");
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("swr.prom")]);
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&f).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o644);
    }
}
