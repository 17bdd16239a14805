//! The `swr` binary: argument parsing, config loading, dispatch and exit codes. The engine is
//! in `swr-core`; this crate only renders and steers.

mod cli;
mod cmd;
mod exit;
mod report;
mod serve;
mod signals;
mod style;
mod text;
mod tui;

use std::process::ExitCode;

use clap::Parser;
use swr_core::config::{Config, ConfigError, LoadOptions};

use crate::cli::{Cli, Command};
use crate::exit::ExitError;

fn main() -> ExitCode {
    quiet_broken_pipe();
    let cli = Cli::parse();
    init_tracing(cli.verbose);
    match run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            let code = match err.downcast_ref::<ExitError>() {
                Some(e) => e.code,
                None if err.downcast_ref::<ConfigError>().is_some() => exit::CONFIG,
                None => exit::FAILURE,
            };
            let prefix = if code == exit::CONFIG {
                "config error"
            } else {
                "error"
            };
            eprintln!("swr: {prefix}: {}", text::lines(&error_text(&err)));
            ExitCode::from(code)
        }
    }
}

/// `swr history | head`: Rust ignores SIGPIPE, so `println!` panics once the reader is gone.
/// Exit quietly the way a process killed by SIGPIPE would (128 + 13) instead of printing a
/// panic; restoring SIGPIPE's default action would need unsafe code.
fn quiet_broken_pipe() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let msg = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or("");
        if msg.starts_with("failed printing to std") && msg.contains("Broken pipe") {
            std::process::exit(141);
        }
        default(info);
    }));
}

/// The error and its causes joined with ": ", leaving out a cause whose text the message
/// already contains (many errors print their source themselves; `{:#}` would repeat it).
pub fn error_text(err: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in err.chain() {
        let text = cause.to_string();
        if out.contains(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    out
}

fn init_tracing(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("SWR_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(crate::style::color_stderr())
        .with_target(false)
        .init();
}

/// Loads the layered config and prints its warnings once, on stderr.
pub fn load_config(cli_config: Option<&std::path::Path>) -> anyhow::Result<Config> {
    let opts = LoadOptions::from_environment(cli_config.map(|p| p.to_path_buf()));
    let config = Config::load(&opts)?;
    for w in &config.warnings {
        eprintln!("swr: warning: {}", text::lines(w));
    }
    Ok(config)
}

fn run(cli: Cli) -> anyhow::Result<u8> {
    match cli.command {
        Command::Completions { shell } => cmd::completions::run(shell),
        Command::Config(c) => cmd::config::run(cli.config.as_deref(), c),
        Command::Specs(args) => {
            let config = load_config(cli.config.as_deref())?;
            cmd::specs::run(&config, &args)
        }
        Command::Doctor(args) => cmd::doctor::run(cli.config.as_deref(), &args),
        Command::SimAgent { prompt, resume, .. } => cmd::sim::run(&prompt, resume.as_deref()),
        Command::Run(args) => cmd::run::run(&load_config(cli.config.as_deref())?, &args),
        Command::Demo(args) => cmd::demo::run(&load_config(cli.config.as_deref())?, &args),
        Command::Status(args) => cmd::runners::status(&load_config(cli.config.as_deref())?, &args),
        Command::History(args) => {
            cmd::runners::history(&load_config(cli.config.as_deref())?, &args)
        }
        Command::Stop(args) => cmd::runners::stop(&load_config(cli.config.as_deref())?, &args),
        Command::Logs(args) => cmd::runners::logs(&load_config(cli.config.as_deref())?, &args),
        Command::Tui(_) => tui::run(&load_config(cli.config.as_deref())?, cli.config.as_deref()),
        Command::Stats(args) => cmd::runners::stats(&load_config(cli.config.as_deref())?, &args),
        Command::Evidence(args) => cmd::evidence::run(&load_config(cli.config.as_deref())?, &args),
        Command::Metrics(args) => cmd::metrics::run(&load_config(cli.config.as_deref())?, &args),
        Command::Queue(c) => cmd::queue::run(&load_config(cli.config.as_deref())?, &c),
        Command::Serve(args) => serve::run(
            load_config(cli.config.as_deref())?,
            cli.config.as_deref(),
            &args,
        ),
        Command::Service(c) => cmd::service::run(cli.config.as_deref(), &c),
    }
}
