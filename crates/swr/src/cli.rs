//! Command-line definitions. Every command explains itself with examples in `--help`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

const AFTER_HELP: &str = "\
Examples:
  swr demo                                  run a simulated agent through a throw-away spec
  swr specs --unfinished                    every spec under repos_root with work left
  swr run --project ~/repos/app --spec auth run an agent until the spec is done
  swr status                                what every runner is doing
  swr doctor                                check config, agents, git and the state dir

Exit codes:
  0   success (every task done, or the command did what it was asked)
  1   failure (retries exhausted, circuit breaker open, non-retryable agent failure, a failed check)
  2   usage error (bad arguments)
  75  temporary: the spec is locked by another runner
  78  configuration error (the message names the file, line and key)
  130 stopped (Ctrl-C, SIGTERM, SIGQUIT, a hang-up, swr stop)

Configuration: built-in defaults < ~/.config/spec-workflow-runner/config.json (XDG aware)
< --config FILE < SWR_<KEY> environment variables < flags. `swr config show` prints the
effective values and where each came from.";

#[derive(Debug, Parser)]
#[command(
    name = "swr",
    version,
    about = "swr, the spec-workflow runner: keeps AI coding agents working through a spec until it is done",
    long_about = None,
    after_long_help = AFTER_HELP,
    after_help = "Run `swr --help` for examples and exit codes."
)]
pub struct Cli {
    /// Config file in the Python tool's config.json format, layered over the user config.
    #[arg(
        long,
        short = 'c',
        global = true,
        env = "SWR_CONFIG",
        value_name = "FILE"
    )]
    pub config: Option<PathBuf>,

    /// More diagnostics on stderr (repeat for more).
    #[arg(long, short = 'v', global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run an agent through a spec until every task is done.
    #[command(after_help = "\
Each iteration reads tasks.md, sends the prompt to the agent, and judges progress by commits
and ticked tasks. Failed attempts are retried with backoff; rate limits are waited out; the
circuit breaker stops a run that makes no progress. Ctrl-C, SIGTERM and SIGQUIT stop the
agent gracefully (SIGTERM, grace period, SIGKILL); a second Ctrl-C kills it at once. A hang-up
(SIGHUP) stops it the same way, unless swr was started with SIGHUP ignored (`nohup swr run`):
then the run goes on after the terminal closes.

Examples:
  swr run --project ~/repos/app --spec auth
  swr run -p app -s auth --provider codex --model o4-mini
  swr run --all --max-iterations 20 --max-runtime 8h --max-cost 25
  swr run -p app -s auth --dry-run          show the command and prompt, run nothing
  swr run -p app -s auth --ignore-wait      start now despite a pending rate-limit wait
  swr run -p app --all --parallel 3         three specs at once, each in its own git worktree
  nohup swr run -p app --all &              keeps running after you log out
  swr run -p app -s auth --json | jq .      one JSON event per line

Exit codes: 0 every task done; 1 failed (retries exhausted, circuit open, non-retryable
failure such as auth or a missing binary, limits or budgets reached with work left); 2 usage;
75 spec locked by another runner; 78 config error; 130 stopped.")]
    Run(RunArgs),

    /// Show runners: what each is doing, its retries and progress.
    #[command(after_help = "\
By default: the latest runner of each spec, plus every active one. Runners whose process
died are marked crashed and their orphaned agents are killed.

JSON: an array of runners with runner_id, project, spec, provider, model, status
(running|waiting|stopped|crashed|completed|failed|budget), reason, pid, retry_count,
max_retries, next_attempt_at, tasks {total, done, in_progress, pending, blocked}, started_at,
updated_at, cost_usd, cost_estimated_usd, input_tokens, cached_tokens, output_tokens.

Examples:
  swr status
  swr status --active --json")]
    Status(StatusArgs),

    /// Show the recorded attempts (one agent process each).
    #[command(after_help = "\
Each attempt: outcome, exit, duration, progress, and its tokens and cost as the agent
reported them (\"est.\": estimated from the prices table). --evidence adds every task it
ticked: the verify check (command, exit, duration, output tail), HEAD, and whether the
attempt changed nothing but tasks.md (empty).

JSON: an array of attempts with runner_id, iteration, attempt, started_at, ended_at,
exit_code, signal, outcome, error, delay_before_next_ms, log_path, session_id, cost_usd,
cost_estimated, input_tokens, cached_tokens, output_tokens, model (and ticks with --evidence).

Examples:
  swr history --spec auth
  swr history --spec auth --evidence
  swr history --runner r-20261128T132855-4f2a --json")]
    History(HistoryArgs),

    /// Every task of a spec with the evidence of its ticks: verify checks, HEAD, empty ticks.
    #[command(after_help = "\
A tick is accepted when its verify check passed (or it had none), rejected when the check
failed and swr put the task back to in progress. \"empty\": the attempt that ticked it
changed nothing but tasks.md. A task done without any recorded tick was ticked before swr
ran it, or by hand.

JSON: an array of tasks with task_id, title, status and evidence (the ticks, oldest first).

Examples:
  swr evidence auth
  swr evidence auth --project ~/repos/app --json")]
    Evidence(EvidenceArgs),

    /// OpenMetrics text from the store, for Prometheus or node_exporter's textfile collector.
    #[command(after_help = "\
Metrics (prefix swr_): runners by status; attempts_total by provider and outcome;
retries_total; rate_limit_waits_total and rate_limit_wait_seconds_total; attempt and verify
durations as histograms; tokens_total by provider and kind; cost_usd_total by provider and
source (reported or estimated); ticks_total (accepted, rejected); empty_ticks_total.

Examples:
  swr metrics
  swr metrics --watch /var/lib/node_exporter/textfile/swr.prom")]
    Metrics(MetricsArgs),

    /// Stop a runner gracefully (its agent gets SIGTERM, then SIGKILL after the grace period).
    #[command(after_help = "\
Also clears the spec's pending rate-limit wait, so that the next `swr run` starts at once.

Examples:
  swr stop auth                      the active runner of spec auth
  swr stop r-20261128T132855-4f2a    a runner by id
  swr stop auth --kill               kill the agent at once")]
    Stop(StopArgs),

    /// Print a runner's current attempt log; -f follows it across attempts.
    #[command(after_help = "\
Examples:
  swr logs auth
  swr logs auth -f")]
    Logs(LogsArgs),

    /// Retry statistics, and tokens and cost per task, spec, day, runner or iteration.
    #[command(after_help = "\
Retry success rate: iterations that needed a retry and then succeeded, over iterations that
needed a retry. Final failure rate: iterations that ran out of retries, over all iterations.
Average backoff: mean delay of the retries scheduled. Spend: tokens and US dollars of the
attempts, as the agents reported them (or estimated from the prices table, and said so).

--by task: each attempt's cost split evenly between the tasks it ticked that stand; attempts
that ticked nothing are counted apart. --by day: by the attempt's start, UTC.

JSON: the retry figures and \"spend\"; with --by, {by, rows, total, unattributed}.

Examples:
  swr stats --since 24h
  swr stats --by task --since 7d
  swr stats --by day --json")]
    Stats(StatsArgs),

    /// Watch and steer every runner across all projects in a terminal UI.
    #[command(after_help = "\
Runners started here are detached `swr run` processes: they keep working after you quit.
Press ? inside for every key.

Examples:
  swr tui
  NO_COLOR=1 swr --config ~/old-tool/config.json tui")]
    Tui(TuiArgs),

    /// Run the simulated agent through a throw-away spec: crash, hang, rate limit, done.
    #[command(after_help = "\
Needs no agent CLI and no network: the built-in simulated agent plays the part.

Examples:
  swr demo
  swr demo --keep       keep the project, its logs and its store to look around")]
    Demo(DemoArgs),

    /// The simulated agent used by the `sim` provider and the tests.
    #[command(hide = true)]
    SimAgent {
        /// Accepted like claude's; the simulation ignores it.
        #[arg(long)]
        model: Option<String>,
        /// Continue a session this simulated agent started before; an unknown id is refused
        /// the way claude refuses it.
        #[arg(long)]
        resume: Option<String>,
        /// The prompt (ignored beyond its length).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        prompt: Vec<String>,
    },

    /// List projects and specs with task progress.
    #[command(after_help = "\
Examples:
  swr specs                          every project under repos_root
  swr specs --project ~/repos/app    one project, by path
  swr specs --project app            one project, by its name under repos_root
  swr specs --unfinished --json      specs with work left, as JSON for scripts

JSON: an array of objects with project, project_path, spec, path, tasks_path,
tasks_file_exists, total, done, in_progress, pending, blocked, optional (the same counts for
Kiro's optional tasks, left out of the others unless include_optional_tasks is set),
checklists ([{title, line, total, done}]: checkboxes that are not tasks) and warnings
([{line, message}]: tasks.md problems). Warnings are printed on stderr as file:line: message.")]
    Specs(SpecsArgs),

    /// The run queue that `swr serve` works through: add, list, remove, pause, resume.
    #[command(
        subcommand,
        after_help = "\
The queue lives in the state store: entries added while the service is down wait for it, and
nothing queued is lost when it stops. The service starts queued entries as ordinary `swr run`
runners, highest priority first, then oldest, while fewer than max_concurrent_agents of its
runners are active (0: no cap).

Examples:
  swr queue add -p ~/repos/app -s auth
  swr queue add -p app -s billing --priority 10 --provider codex
  swr queue ls
  swr queue rm 3
  swr queue pause                    start nothing new (running runners go on)
  swr queue resume"
    )]
    Queue(QueueCommand),

    /// Run the local service: the queue, an HTTP API and a live web dashboard.
    #[command(after_help = "\
Starts queued runs as ordinary `swr run` runners (see `swr queue`), serves the state store as
JSON and a dashboard at http://127.0.0.1:8787/, and delivers pending webhooks. On start it
reconciles the store and re-queues runs interrupted by a crash, a kill -9 or a reboot (not
those stopped by the user or ended by the circuit breaker or a failure). SIGTERM or Ctrl-C
stops its runners gracefully and leaves their entries queued, to be resumed at the next start.

Security: only 127.0.0.1 by default. Listening on any other address needs a token: from
--token-file, or generated and printed once. Clients send it as `Authorization: Bearer TOKEN`
(the dashboard: open /?token=TOKEN once; it is kept in a cookie).

Examples:
  swr serve
  swr serve --listen 0.0.0.0:8787 --token-file ~/.config/swr-token
  curl -s localhost:8787/api/runners | jq .")]
    Serve(ServeArgs),

    /// Install or remove a systemd user unit (launchd agent on macOS) running `swr serve`.
    #[command(
        subcommand,
        after_help = "\
Examples:
  swr service install                write ~/.config/systemd/user/swr.service, print how to enable it
  swr service install --listen 0.0.0.0:8787 --token-file ~/.config/swr-token
  swr service uninstall"
    )]
    Service(ServiceCommand),

    /// Show the effective configuration.
    #[command(
        subcommand,
        after_help = "\
Examples:
  swr config show                    every key, its value and where it came from
  swr config show --json
  swr config path                    the user config file swr reads"
    )]
    Config(ConfigCommand),

    /// Check config, agent CLIs, git, spec layout and the state directory.
    #[command(after_help = "\
Checks the config files (and keys it does not know), repos_root, each provider's executable
and version (a missing default provider fails), git, the specs of one project or, outside a
project, of repos_root (tasks.md warnings as file:line), and the state dir (writable, not
writable by other users). Each check prints ok, warn or fail, and how to fix it. Exit code 1
when a check fails.

Examples:
  swr doctor
  swr doctor --project ~/repos/app --json")]
    Doctor(DoctorArgs),

    /// Print shell completions.
    #[command(after_help = "\
Examples:
  swr completions bash > ~/.local/share/bash-completion/completions/swr
  swr completions zsh > \"${fpath[1]}/_swr\"
  swr completions fish > ~/.config/fish/completions/swr.fish")]
    Completions {
        /// The shell to generate completions for.
        shell: Shell,
    },
}

#[derive(Debug, Args)]
pub struct SpecsArgs {
    /// A project directory, or the name of a project under repos_root.
    #[arg(long, short = 'p', value_name = "PATH|NAME")]
    pub project: Option<String>,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Only specs with tasks left to do.
    #[arg(long, short = 'u')]
    pub unfinished: bool,
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print every key's effective value and where it came from.
    #[command(after_help = "\
Examples:
  swr config show
  swr --config ~/old-tool/config.json config show
  SWR_NO_COMMIT_LIMIT=5 swr config show --json")]
    Show {
        /// Print JSON: {key: {value, source, used}}.
        #[arg(long)]
        json: bool,
    },
    /// Print the path of the user config file swr reads.
    #[command(after_help = "\
Examples:
  swr config path
  cp ~/old-tool/config.json \"$(swr config path)\"")]
    Path,
}

#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// Check the specs of this project (path or name). Default: the current directory if it is a project, else every project under repos_root.
    #[arg(long, short = 'p', value_name = "PATH|NAME")]
    pub project: Option<String>,
    /// Print JSON: an array of {check, status, message, fix}.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
    Elvish,
    Powershell,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The project: a directory, or the name of a project under repos_root. Default: the current directory.
    #[arg(long, short = 'p', value_name = "PATH|NAME")]
    pub project: Option<String>,
    /// The spec to run (a directory under .spec-workflow/specs/). Asked for on a terminal when missing.
    #[arg(long, short = 's', value_name = "NAME")]
    pub spec: Option<String>,
    /// Run every unfinished spec of the project, one after another.
    #[arg(long, conflicts_with = "spec")]
    pub all: bool,
    /// claude, codex, gemini, sim, or a custom provider from the config. Default: the config's "provider".
    #[arg(long, value_name = "NAME")]
    pub provider: Option<String>,
    /// Model passed to the agent. Default: the config's "model", else the agent's own default.
    #[arg(long, short = 'm', value_name = "MODEL")]
    pub model: Option<String>,
    /// Stop after this many iterations (at least 1).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub max_iterations: Option<u32>,
    /// Stop after this long, e.g. 8h, 90m (at most 365 days).
    #[arg(long, value_name = "DURATION")]
    pub max_runtime: Option<String>,
    /// Stop when the agents' cost reaches this many US dollars, and start no attempt expected
    /// to pass it (overrides `max_cost_usd`).
    #[arg(long, value_name = "USD", value_parser = parse_usd)]
    pub max_cost: Option<f64>,
    /// Print what would run (command, prompt, timeouts) and exit.
    #[arg(long)]
    pub dry_run: bool,
    /// Start at once even if an earlier run of this spec left a rate-limit wait that has not
    /// ended (`swr status` shows it); the wait is cleared.
    #[arg(long)]
    pub ignore_wait: bool,
    /// Run the spec in its own git worktree (under swr's state directory, on a branch
    /// swr/<spec>) and merge it back when it is done. A spec that already has a worktree
    /// always continues there.
    #[arg(long)]
    pub worktree: bool,
    /// With --all: run up to N unfinished specs at once, each in its own git worktree (within
    /// max_concurrent_agents).
    #[arg(long, value_name = "N", requires = "all", value_parser = clap::value_parser!(u32).range(1..))]
    pub parallel: Option<u32>,
    /// One JSON event per line on stdout instead of the progress display.
    #[arg(long)]
    pub json: bool,
}

fn parse_usd(s: &str) -> Result<f64, String> {
    let v: f64 = s
        .trim()
        .trim_start_matches('$')
        .parse()
        .map_err(|_| format!("{s:?} is not an amount of US dollars, e.g. 5 or 2.50"))?;
    if v.is_finite() && v > 0.0 {
        Ok(v)
    } else {
        Err(format!("must be more than 0, got {s}"))
    }
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
    /// Only running and waiting runners.
    #[arg(long)]
    pub active: bool,
    /// Every runner ever recorded, not only the latest of each spec.
    #[arg(long)]
    pub all: bool,
    /// Only runners of this spec.
    #[arg(long, short = 's')]
    pub spec: Option<String>,
    /// First mark runners whose swr process died as crashed and kill the agent processes
    /// they left behind (plain `status` only looks).
    #[arg(long)]
    pub reap: bool,
}

#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
    /// Only attempts of this spec.
    #[arg(long, short = 's')]
    pub spec: Option<String>,
    /// Only attempts of this runner.
    #[arg(long, short = 'r', value_name = "RUNNER_ID")]
    pub runner: Option<String>,
    /// Only the last N attempts.
    #[arg(long, short = 'n')]
    pub limit: Option<usize>,
    /// With every task each attempt ticked and the evidence of it.
    #[arg(long)]
    pub evidence: bool,
}

#[derive(Debug, Args)]
pub struct EvidenceArgs {
    /// The spec.
    #[arg(value_name = "SPEC")]
    pub spec: String,
    /// The project, when several have a spec of that name (default: the one the store knows).
    #[arg(long, short = 'p', value_name = "PATH|NAME")]
    pub project: Option<String>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct MetricsArgs {
    /// Keep FILE up to date instead of printing: rewritten atomically whenever the store
    /// changes, until killed.
    #[arg(long, value_name = "FILE")]
    pub watch: Option<std::path::PathBuf>,
}

/// How `swr stats --by` groups tokens and cost.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum StatsBy {
    Task,
    Spec,
    Day,
    Runner,
    Iteration,
}

#[derive(Debug, Args)]
pub struct StopArgs {
    /// A spec name or a runner id.
    #[arg(value_name = "SPEC|RUNNER_ID")]
    pub target: String,
    /// The project (a directory, or the name of a project under repos_root), when several have a spec of that name.
    #[arg(long, short = 'p', value_name = "PATH|NAME")]
    pub project: Option<String>,
    /// Kill the agent at once instead of SIGTERM and a grace period.
    #[arg(long)]
    pub kill: bool,
    /// Return at once instead of waiting for the runner to end.
    #[arg(long)]
    pub no_wait: bool,
}

#[derive(Debug, Args)]
pub struct LogsArgs {
    /// A spec name or a runner id.
    #[arg(value_name = "SPEC|RUNNER_ID")]
    pub target: String,
    /// The project (a directory, or the name of a project under repos_root), when several have a spec of that name.
    #[arg(long, short = 'p', value_name = "PATH|NAME")]
    pub project: Option<String>,
    /// Keep printing as the agent writes, moving to each new attempt's log.
    #[arg(long, short = 'f')]
    pub follow: bool,
}

#[derive(Debug, Args)]
pub struct StatsArgs {
    /// Only attempts started within this period, e.g. 24h, 7d.
    #[arg(long, value_name = "DURATION")]
    pub since: Option<String>,
    /// Tokens and cost per task, spec, day, runner or iteration.
    #[arg(long, value_name = "GROUP")]
    pub by: Option<StatsBy>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Keep the throw-away project, its logs and its store.
    #[arg(long)]
    pub keep: bool,
    /// Create the throw-away project under this directory instead of the system temp dir.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<std::path::PathBuf>,
    /// One JSON event per line on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct TuiArgs {}

#[derive(Debug, Subcommand)]
pub enum QueueCommand {
    /// Queue a spec: `swr serve` starts a runner for it.
    #[command(after_help = "\
Examples:
  swr queue add -p ~/repos/app -s auth
  swr queue add -s auth --priority 5       the project containing the current directory")]
    Add(QueueAddArgs),
    /// List the queue: running entries, then queued ones in the order they start.
    #[command(after_help = "\
Examples:
  swr queue ls
  swr queue ls --all --json | jq '.entries[] | {id, spec, state, result}'")]
    Ls {
        /// Print JSON: {paused, entries: [...]}.
        #[arg(long)]
        json: bool,
        /// Also entries whose runner has ended.
        #[arg(long)]
        all: bool,
    },
    /// Remove a queued (or ended) entry. A running one: stop its runner first.
    #[command(after_help = "\
Examples:
  swr queue rm 3")]
    Rm {
        /// The entry's id, from `swr queue ls`.
        id: String,
    },
    /// Start nothing new from the queue (running runners go on).
    #[command(after_help = "\
Examples:
  swr queue pause")]
    Pause,
    /// Start queued entries again.
    #[command(after_help = "\
Examples:
  swr queue resume")]
    Resume,
}

#[derive(Debug, Args)]
pub struct QueueAddArgs {
    /// A project directory, or the name of a project under repos_root. Default: the current directory's project.
    #[arg(long, short = 'p', value_name = "PATH|NAME")]
    pub project: Option<String>,
    /// The spec to run.
    #[arg(long, short = 's', value_name = "NAME")]
    pub spec: String,
    /// Higher starts first; equal priorities go oldest first.
    #[arg(
        long,
        default_value_t = 0,
        allow_negative_numbers = true,
        value_name = "N"
    )]
    pub priority: i64,
    /// claude, codex, gemini, sim, or a custom provider. Default: the config's "provider" when the runner starts.
    #[arg(long, value_name = "NAME")]
    pub provider: Option<String>,
    /// Model passed to the agent.
    #[arg(long, short = 'm', value_name = "MODEL")]
    pub model: Option<String>,
    /// Print the new entry as JSON.
    #[arg(long)]
    pub json: bool,
}

/// The address `swr serve` listens on unless told otherwise.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8787";

#[derive(Debug, Args, Clone)]
pub struct ServeArgs {
    /// Address and port to listen on. Anything but a loopback address needs a token.
    #[arg(long, value_name = "ADDR", default_value = DEFAULT_LISTEN)]
    pub listen: String,
    /// A file holding the bearer token clients must send. Without it, a non-loopback --listen
    /// generates a token and prints it once.
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum ServiceCommand {
    /// Write the unit (systemd user unit; launchd agent on macOS) and print how to enable it.
    #[command(after_help = "\
The unit runs `swr serve` with these --listen and --token-file, this --config, and this
shell's PATH; Restart=on-failure brings it back after a crash.

Examples:
  swr service install
  swr service install --listen 0.0.0.0:8787 --token-file ~/.config/swr-token
  swr service install --print")]
    Install {
        #[command(flatten)]
        serve: ServeArgs,
        /// Print the unit instead of writing it.
        #[arg(long)]
        print: bool,
    },
    /// Remove the unit written by `install` and its enable link; prints how to stop a running one.
    #[command(after_help = "\
Examples:
  swr service uninstall")]
    Uninstall,
}
