//! `swr demo`: a throw-away git project with a small spec, run to completion by the simulated
//! agent through a crash, a hang and a rate limit, with retries shown as they happen. Needs
//! no agent CLI and no network.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use swr_core::config::{Config, JitterSetting};
use swr_core::runner::RunOptions;

use crate::cli::DemoArgs;
use crate::report::Mode;

const TASKS: &str = "\
# Tasks: demo

## Tasks

- [ ] 1. Write the greeting module
  - _Prompt: Role: developer | Task: add a greeting function_
- [ ] 2. Add tests for the greeting
  - _Requirements: 1.1_
- [ ] 3. Handle an empty name
- [ ] 4. Document the greeting in the README
- [ ] 5. Release the greeting
";

/// The plan: ok; a crash after committing (progress all the same); a crash, retried by
/// resuming the agent's session; a hang (idle timeout); a rate limit; ok to the end.
pub const PLAN: &str = "ok,tick-crash,crash,ok,hang,ok,ratelimit:3,ok";

pub fn run(config: &Config, args: &DemoArgs) -> anyhow::Result<u8> {
    let root = match &args.dir {
        Some(d) => {
            std::fs::create_dir_all(d)?;
            tempfile::Builder::new().prefix("swr-demo-").tempdir_in(d)?
        }
        None => tempfile::Builder::new().prefix("swr-demo-").tempdir()?,
    };
    let project = root.path().join("greeter");
    make_project(&project)?;
    let mut config = config.clone();
    // Short timers so the whole story fits in well under a minute; the demo's store and
    // locks live beside the project so it never touches the user's runners.
    config.cache_dir = root.path().join("state");
    config.provider = "sim".into();
    config.activity_timeout = Some(Duration::from_secs(2));
    config.iteration_timeout = Some(Duration::from_secs(30));
    config.stop_grace = Duration::from_secs(1);
    config.retry_backoff = Duration::from_secs(1);
    config.retry_backoff_multiplier = 2.0;
    config.retry_max_backoff = Duration::from_secs(10);
    config.retry_jitter = JitterSetting::None;
    config.rate_limit_jitter = Duration::from_secs(1);
    config.notify_command = None;
    config.max_iterations = None;
    config.max_runtime = Some(Duration::from_secs(120));

    eprintln!(
        "swr demo: a throw-away project in {} with 5 tasks.\n\
         The simulated agent will succeed, crash after committing, crash, hang and hit a rate\n\
         limit (plan {PLAN}); swr counts the committed work, resumes the crashed session,\n\
         times out and waits as it would with a real agent.\n",
        project.display()
    );
    let swr_exe = std::env::current_exe()?;
    let opts = RunOptions {
        project: project.canonicalize()?,
        spec: "demo".into(),
        provider: "sim".into(),
        model: None,
        max_iterations: None,
        max_runtime: config.max_runtime,
        clock_started: None,
        ignore_wait: false,
        worktree: false,
        max_cost_usd: None,
        extra_env: vec![
            ("SWR_SIM_PLAN".into(), PLAN.into()),
            (
                "SWR_SIM_STATE".into(),
                root.path().join("sim-state").display().to_string(),
            ),
        ],
        swr_exe,
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let code = rt.block_on(async {
        let stop = super::run::Stop::install()?;
        super::run::run_one(&config, &opts, &stop, Mode::pick(args.json)).await
    })?;
    let log = Command::new("git")
        .args(["log", "--oneline"])
        .current_dir(&project)
        .output()?;
    eprintln!(
        "\nThe agent's commits:\n{}\nAttempt logs: {}",
        String::from_utf8_lossy(&log.stdout),
        config.log_dir(&project, "demo").display()
    );
    if args.keep {
        let kept = root.keep();
        eprintln!("Kept in {}", kept.display());
    } else {
        eprintln!("(removed; pass --keep to look around)");
    }
    Ok(code)
}

fn make_project(dir: &Path) -> anyhow::Result<()> {
    let spec = dir.join(".spec-workflow/specs/demo");
    std::fs::create_dir_all(&spec)?;
    std::fs::write(
        spec.join("requirements.md"),
        "# Requirements\n\n1.1 The program greets the user.\n",
    )?;
    std::fs::write(
        spec.join("design.md"),
        "# Design\n\nOne function, one test.\n",
    )?;
    std::fs::write(spec.join("tasks.md"), TASKS)?;
    std::fs::write(dir.join("README.md"), "# greeter\n")?;
    let git = |args: &[&str]| -> anyhow::Result<()> {
        let ok = Command::new("git")
            .args([
                "-c",
                "user.name=swr-demo",
                "-c",
                "user.email=demo@swr.invalid",
            ])
            .args(args)
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()?
            .success();
        anyhow::ensure!(ok, "git {} failed in {}", args.join(" "), dir.display());
        Ok(())
    };
    git(&["init", "-q"])?;
    git(&["add", "-A"])?;
    git(&["commit", "-q", "-m", "demo: the spec"])?;
    Ok(())
}
