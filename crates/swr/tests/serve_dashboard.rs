//! End to end: the dashboard of a real `swr serve` in real headless Chromium (Debian's
//! `chromium` and `chromium-driver`, driven over WebDriver with fantoccini). The page lists a
//! simulated runner, shows `Retry: 1/3` after its agent crashes, shows the live log, stops it
//! with its button and starts it again with the project's Start button. Screenshots at desktop
//! and phone widths are saved under `target/tmp/dashboard/`.
//!
//! Never skipped: without Chromium the test fails and says how to get it (`.ci/run` installs
//! it on CI).

#![allow(clippy::unwrap_used)]

mod run_support;
mod serve_support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use run_support::World;
use serde_json::{Value, json};
use serve_support::{Service, queue_add};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// Generous: CI runs this beside the rest of the suite on two cores.
const T: Duration = Duration::from_secs(180);

/// chromedriver, and through it Chromium; on drop every process started with our profile
/// directory is killed (a failed test leaves no browser behind).
struct Browser {
    driver: Child,
    port: u16,
    profile: tempfile::TempDir,
}

impl Browser {
    fn start() -> Browser {
        for (bin, pkg) in [(CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")] {
            assert!(
                Path::new(bin).exists(),
                "{bin} is missing: the dashboard tests need Debian's {pkg} package. `.ci/run` installs it \
                 (apt-get install -y chromium chromium-driver); on a workstation run that once."
            );
        }
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let b = Browser {
            driver,
            port,
            profile: tempfile::tempdir().unwrap(),
        };
        let deadline = Instant::now() + T;
        while serve_support::try_get(&format!("http://127.0.0.1:{port}/status")).is_none() {
            assert!(
                Instant::now() < deadline,
                "chromedriver did not answer on port {port}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        b
    }

    async fn client(&self) -> Client {
        let args = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            "--window-size=1280,900",
        ]
        .iter()
        .map(|s| s.to_string())
        .chain([format!("--user-data-dir={}", self.profile.path().display())])
        .collect::<Vec<_>>();
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            json!({"binary": CHROMIUM, "args": args}),
        );
        ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{}", self.port))
            .await
            .unwrap()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
        let marker = self.profile.path().display().to_string();
        if let Ok(dir) = std::fs::read_dir("/proc") {
            for e in dir.flatten() {
                let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
                    continue;
                };
                let cmdline = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
                if String::from_utf8_lossy(&cmdline).contains(&marker) {
                    let _ = nix::sys::signal::kill(
                        nix::unistd::Pid::from_raw(pid),
                        nix::sys::signal::Signal::SIGKILL,
                    );
                }
            }
        }
    }
}

/// Polls a script's value until `pred` holds; panics with the last value and the page text.
async fn wait_js(c: &Client, what: &str, script: &str, pred: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + T;
    loop {
        let v = c.execute(script, Vec::new()).await.unwrap_or(Value::Null);
        if pred(&v) {
            return v;
        }
        if Instant::now() > deadline {
            let body = c
                .execute("return document.body.innerText", Vec::new())
                .await
                .unwrap_or_default();
            panic!(
                "timed out waiting for {what}; last value {v}; page:\n{}",
                body.as_str().unwrap_or("")
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn artifacts() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("dashboard");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Clicks the element `css` finds, the way a user would (WebDriver's click: it must be visible
/// and enabled). The page redraws live, so an element found just before a redraw may be gone:
/// then it is found again.
async fn click(c: &Client, css: &str) {
    let deadline = Instant::now() + T;
    loop {
        let r = match c.find(Locator::Css(css)).await {
            Ok(el) => el.click().await,
            Err(e) => Err(e),
        };
        match r {
            Ok(()) => return,
            Err(e) if Instant::now() > deadline => panic!("cannot click {css}: {e}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

const CARD: &str = "document.querySelector('.runner[data-spec=\"feat\"]')";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_shows_a_runner_its_retry_and_log_and_stops_it() {
    // A 4 s backoff after the crash: long enough to see the countdown to the retry.
    let w = World::new(
        3,
        json!({"max_concurrent_agents": 2, "retry_backoff_seconds": 4}),
    );
    // The agent crashes once, then hangs: the runner stays at Retry: 1/3. The runner started
    // again at the end hangs too.
    let svc = Service::start(&w, "crash,hang,hang", &[]);
    let browser = Browser::start();
    let c = browser.client().await;
    c.goto(&svc.base).await.unwrap();
    wait_js(
        &c,
        "the live connection",
        "return document.getElementById('conn').textContent",
        |v| v == "live",
    )
    .await;
    wait_js(
        &c,
        "the project list",
        "return document.querySelector('.project .spec-row[data-spec=\"feat\"]') !== null",
        |v| v == true,
    )
    .await;

    queue_add(&w, &w.project, "feat", &[]);
    wait_js(
        &c,
        "the countdown to the retry",
        &format!("const c = {CARD}; return c ? c.innerText : null"),
        |v| {
            v.as_str()
                .is_some_and(|t| t.contains("Retry: 1/3") && t.contains("next attempt in "))
        },
    )
    .await;
    let card = wait_js(
        &c,
        "the runner card with Retry: 1/3",
        &format!(
            "const c = {CARD}; return c ? [c.dataset.status, c.dataset.id, c.innerText] : null"
        ),
        |v| v[0] == "running" && v[2].as_str().is_some_and(|t| t.contains("Retry: 1/3")),
    )
    .await;
    let first_id = card[1].as_str().unwrap().to_string();
    assert!(card[2].as_str().unwrap().contains("last: crash"), "{card}");

    // The live log of the selected runner: the retry's attempt log.
    click(&c, ".runner[data-spec=\"feat\"] button.log-btn").await;
    wait_js(
        &c,
        "the retry's log",
        "return document.getElementById('log').innerText",
        |v| {
            v.as_str()
                .is_some_and(|t| t.contains("attempt 2") && t.contains("Retry: 1"))
        },
    )
    .await;
    // The retry dashboard: the runner's first iteration, its crash, then the retry.
    wait_js(
        &c,
        "the retry dashboard",
        "return document.getElementById('dashboard').innerText",
        |v| {
            v.as_str().is_some_and(|t| {
                t.contains(&first_id) && t.contains("crash") && t.contains("running")
            })
        },
    )
    .await;
    let desktop = c.screenshot().await.unwrap();
    std::fs::write(artifacts().join("dashboard-desktop.png"), &desktop).unwrap();

    // A phone: one column, nothing wider than the screen.
    c.set_window_size(390, 844).await.unwrap();
    let fits = wait_js(
        &c,
        "the phone layout",
        "return [window.innerWidth, document.documentElement.scrollWidth, getComputedStyle(document.querySelector('main')).gridTemplateColumns.split(' ').length]",
        |v| v[0].as_u64().is_some_and(|w| w < 500),
    )
    .await;
    c.execute("window.scrollTo(0, 0)", Vec::new())
        .await
        .unwrap();
    let phone = c.screenshot().await.unwrap();
    std::fs::write(artifacts().join("dashboard-phone.png"), &phone).unwrap();
    assert!(
        fits[1].as_u64() <= fits[0].as_u64(),
        "the page scrolls sideways on a phone: {fits}"
    );
    assert_eq!(fits[2], 1, "one column on a phone: {fits}");
    c.set_window_size(1280, 900).await.unwrap();

    // Stop it with its button: the card and the log say so, and so does the store.
    click(&c, ".runner[data-spec=\"feat\"] button.stop").await;
    wait_js(
        &c,
        "the stopped runner",
        &format!("const c = {CARD}; return c ? c.dataset.status : null"),
        |v| v == "stopped",
    )
    .await;
    wait_js(
        &c,
        "the end of the log",
        "return document.getElementById('log').innerText",
        |v| {
            v.as_str()
                .is_some_and(|t| t.contains("runner ended: stopped"))
        },
    )
    .await;
    let status = w.status();
    let r = status
        .iter()
        .find(|r| r["runner_id"] == first_id.as_str())
        .unwrap();
    assert_eq!(r["status"], "stopped", "{r}");

    // Start it again from the project list: a new runner appears.
    click(&c, ".project .spec-row[data-spec=\"feat\"] button.start").await;
    wait_js(
        &c,
        "a new runner from the Start button",
        &format!("const c = {CARD}; return c ? [c.dataset.status, c.dataset.id] : null"),
        |v| v[0] == "running" && v[1] != first_id.as_str(),
    )
    .await;
    c.close().await.unwrap();
    drop(browser);
    drop(svc);
    assert!(desktop.starts_with(b"\x89PNG") && phone.starts_with(b"\x89PNG"));
}
