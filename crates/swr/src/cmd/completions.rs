//! `swr completions SHELL`: shell completion scripts generated from the clap definitions.

use clap::CommandFactory;
use clap_complete::Shell as Target;

use crate::cli::{Cli, Shell};

pub fn run(shell: Shell) -> anyhow::Result<u8> {
    let target = match shell {
        Shell::Bash => Target::Bash,
        Shell::Zsh => Target::Zsh,
        Shell::Fish => Target::Fish,
        Shell::Elvish => Target::Elvish,
        Shell::Powershell => Target::PowerShell,
    };
    let mut cmd = without_hidden(Cli::command());
    clap_complete::generate(target, &mut cmd, "swr", &mut std::io::stdout());
    Ok(crate::exit::OK)
}

/// The command tree minus hidden subcommands (`sim-agent`), which some generators would
/// otherwise offer on every `swr s<TAB>`.
fn without_hidden(full: clap::Command) -> clap::Command {
    let mut cmd = clap::Command::new("swr").version(env!("CARGO_PKG_VERSION"));
    if let Some(about) = full.get_about() {
        cmd = cmd.about(about.clone());
    }
    for arg in full.get_arguments() {
        if !matches!(arg.get_id().as_str(), "help" | "version") {
            cmd = cmd.arg(arg.clone());
        }
    }
    for sub in full.get_subcommands().filter(|s| !s.is_hide_set()) {
        cmd = cmd.subcommand(sub.clone());
    }
    cmd
}
