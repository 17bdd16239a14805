//! Layered configuration: built-in defaults < user file < `--config` file < `SWR_*` environment
//! < command-line flags. Accepts the Python spec-workflow-runner's `config.json` keys unchanged.
//!
//! Every layer is validated on its own, so an error names the place the bad value came from
//! (file and line, environment variable or flag). The merged result is a resolved [`Config`]
//! with no optional plumbing left, plus where each value came from for `swr config show`.
//! This module reads files and the environment; it never writes anything.

mod keys;
mod value;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Map, Value};

pub use keys::{KEYS, Kind, MAX_DURATION, Use};
pub use value::{human_duration, parse_duration};

/// The largest value the duration key `key` accepts (`None` for a key that is no duration):
/// flags that set a duration check against the same maximum as the key.
pub fn duration_max(key: &str) -> Option<Duration> {
    keys::spec(key).and_then(|k| k.max)
}

use crate::outcome::Outcome;

/// Where the effective value of a key came from.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "kind", content = "from", rename_all = "snake_case")]
pub enum Source {
    Default,
    UserFile(PathBuf),
    ConfigFile(PathBuf),
    Env(String),
    Flag(String),
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Default => f.write_str("default"),
            Source::UserFile(p) => write!(f, "user config {}", p.display()),
            Source::ConfigFile(p) => write!(f, "--config {}", p.display()),
            Source::Env(v) => write!(f, "env {v}"),
            Source::Flag(flag) => write!(f, "flag {flag}"),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{}: cannot read config file: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}:{line}:{column}: not valid JSON: {message}", path.display())]
    Syntax {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{}: a config file must hold one JSON object {{ ... }}, found {found}", path.display())]
    NotObject { path: PathBuf, found: &'static str },
    /// A value of the wrong type or out of range. `origin` is `file:line`, `environment
    /// variable SWR_X` or `flag --x`.
    #[error("{origin}: key \"{key}\": {message}")]
    Invalid {
        origin: String,
        key: String,
        message: String,
    },
}

/// The retry jitter setting, as configured.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub enum JitterSetting {
    None,
    Full,
    Decorrelated,
    Ratio(f64),
}

/// The resolved, validated configuration. Every field has its final value.
#[derive(Debug, Clone)]
pub struct Config {
    pub repos_root: PathBuf,
    pub spec_workflow_dir_name: String,
    pub specs_subdir: String,
    pub tasks_filename: String,
    /// Kiro's optional tasks are worked through like the others (`TaskList::counts_with`,
    /// `next_task_with`, `progress_summary_with`).
    pub include_optional_tasks: bool,
    pub provider: String,
    pub model: Option<String>,
    pub claude_command: Vec<String>,
    pub codex_command: Vec<String>,
    pub gemini_command: Vec<String>,
    /// Custom provider definitions, validated by the provider registry.
    pub providers: Map<String, Value>,
    pub codex_config_overrides: BTreeMap<String, Value>,
    pub prompt_template: String,
    pub resume_prompt_template: String,
    pub resume_on_retry: bool,
    pub result_grace: Duration,
    pub no_commit_limit: u32,
    pub no_progress_limit: u32,
    pub log_dir_name: String,
    pub log_file_template: String,
    pub ignore_dirs: Vec<String>,
    pub cache_dir: PathBuf,
    pub cache_max_age_days: u64,
    pub activity_timeout: Option<Duration>,
    pub iteration_timeout: Option<Duration>,
    pub stop_grace: Duration,
    pub retry_on_crash: bool,
    pub retry_max_retries: u32,
    pub retry_backoff: Duration,
    pub retry_backoff_multiplier: f64,
    pub retry_max_backoff: Duration,
    pub retry_jitter: JitterSetting,
    pub retry_on: BTreeSet<Outcome>,
    pub retry_log_dir: PathBuf,
    pub rate_limit_wait: Duration,
    pub rate_limit_jitter: Duration,
    pub max_iterations: Option<u32>,
    pub max_runtime: Option<Duration>,
    /// Budgets: per run in USD and in tokens, per spec across runs in USD.
    pub max_cost_usd: Option<f64>,
    pub max_tokens: Option<u64>,
    pub spec_budget_usd: Option<f64>,
    pub prices: crate::cost::Prices,
    /// Checks ticks: argv run in the project after an attempt ticks tasks.
    pub verify_command: Option<Vec<String>>,
    pub verify_timeout: Duration,
    pub notify_command: Option<Vec<String>>,
    pub notify_timeout: Duration,
    pub notify_webhooks: Vec<crate::webhook::WebhookTarget>,
    /// 0: no cap.
    pub max_concurrent_agents: u32,
    pub account: String,
    /// 0: unlimited.
    pub retry_budget_per_hour: u32,
    pub tui_refresh: Duration,
    pub tui_log_tail_lines: usize,
    pub tui_min_terminal_cols: u16,
    pub tui_min_terminal_rows: u16,
    /// Every key in normal JSON form, for `swr config show`.
    pub values: Map<String, Value>,
    /// Where each key's value came from.
    pub sources: BTreeMap<String, Source>,
    /// Unknown keys and other things worth one warning.
    pub warnings: Vec<String>,
}

/// What to layer on top of the defaults. The CLI fills it; tests build it by hand so they never
/// depend on the machine's environment or home directory.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// The user config file; `None` for no user layer. See [`user_config_path`].
    pub user_file: Option<PathBuf>,
    /// `--config FILE`: must exist.
    pub config_file: Option<PathBuf>,
    /// `(name, value)` pairs of the environment; only `SWR_*` names are looked at.
    pub env: Vec<(String, String)>,
    /// `(key, value, flag)`: values from command-line flags, already typed as JSON.
    pub flags: Vec<(String, Value, String)>,
    /// `$HOME`, for `~` expansion.
    pub home: Option<PathBuf>,
}

impl LoadOptions {
    /// The options of a real invocation: the XDG user file, the process environment and home.
    pub fn from_environment(config_file: Option<PathBuf>) -> LoadOptions {
        let env: Vec<(String, String)> = std::env::vars().collect();
        LoadOptions {
            user_file: user_config_path(&env),
            config_file,
            env,
            flags: Vec::new(),
            home: dirs::home_dir(),
        }
    }
}

/// `$XDG_CONFIG_HOME/spec-workflow-runner/config.json`, else `~/.config/...`. A relative
/// `XDG_CONFIG_HOME` is ignored, as the XDG base directory spec requires: it would name a
/// different file in every working directory.
pub fn user_config_path(env: &[(String, String)]) -> Option<PathBuf> {
    let get = |name: &str| {
        env.iter()
            .find(|(k, v)| k == name && !v.is_empty())
            .map(|(_, v)| PathBuf::from(v))
    };
    let get = |name: &str| get(name).filter(|p| name == "HOME" || p.is_absolute());
    let base = get("XDG_CONFIG_HOME").or_else(|| get("HOME").map(|h| h.join(".config")))?;
    Some(base.join("spec-workflow-runner").join("config.json"))
}

/// Environment variables that start with `SWR_` but are not config keys: swr's own plumbing.
const NON_CONFIG_ENV: &[&str] = &[
    "SWR_CONFIG",
    "SWR_LOG",
    "SWR_ATTEMPT_MARKER",
    "SWR_SIM_PLAN",
    "SWR_SIM_STATE",
    "SWR_SIM_COST",
    "SWR_EVENT",
    "SWR_PROJECT",
    "SWR_SPEC",
    "SWR_RUNNER_ID",
    "SWR_REASON",
    "SWR_NO_PROGRESS_BAR",
];

impl Config {
    /// Defaults only: what a machine with no config at all gets.
    pub fn defaults() -> Config {
        match Config::load(&LoadOptions::default()) {
            Ok(c) => c,
            // The defaults are a constant validated by tests; failing here is a bug in swr.
            Err(e) => panic!("built-in defaults are invalid: {e}"),
        }
    }

    pub fn load(opts: &LoadOptions) -> Result<Config, ConfigError> {
        let mut values = keys::defaults();
        let mut sources: BTreeMap<String, Source> = values
            .keys()
            .map(|k| (k.clone(), Source::Default))
            .collect();
        let mut warnings = Vec::new();
        let mut origins: BTreeMap<String, String> = BTreeMap::new();

        if let Some(path) = &opts.user_file
            && path.exists()
        {
            let layer = value::read_file(path, &mut warnings)?;
            apply(&mut values, &mut sources, &mut origins, layer, |_| {
                Source::UserFile(path.clone())
            });
        }
        if let Some(path) = &opts.config_file {
            let layer = value::read_file(path, &mut warnings)?;
            apply(&mut values, &mut sources, &mut origins, layer, |_| {
                Source::ConfigFile(path.clone())
            });
        }
        let mut env: Vec<&(String, String)> = opts
            .env
            .iter()
            .filter(|(k, _)| k.starts_with("SWR_"))
            .collect();
        env.sort();
        for (name, raw) in env {
            if NON_CONFIG_ENV.contains(&name.as_str()) {
                continue;
            }
            let key = name["SWR_".len()..].to_ascii_lowercase();
            let Some(spec) = keys::spec(&key) else {
                warnings.push(format!(
                    "environment variable {name} is not a swr setting{}",
                    value::did_you_mean(&key, "SWR_", true)
                ));
                continue;
            };
            let origin = format!("environment variable {name}");
            let v = value::from_env(spec, raw, &origin)?;
            let v = value::normalize(spec, v, &origin)?;
            origins.insert(key.clone(), origin);
            sources.insert(key.clone(), Source::Env(name.clone()));
            values.insert(key, v);
        }
        for (key, v, flag) in &opts.flags {
            let origin = format!("flag {flag}");
            let spec = keys::spec(key).ok_or_else(|| ConfigError::Invalid {
                origin: origin.clone(),
                key: key.clone(),
                message: "not a config key (bug in swr's flag table)".into(),
            })?;
            let v = value::normalize(spec, v.clone(), &origin)?;
            origins.insert(key.clone(), origin);
            sources.insert(key.clone(), Source::Flag(flag.clone()));
            values.insert(key.clone(), v);
        }
        let origin_of = |key: &str| {
            origins
                .get(key)
                .cloned()
                .unwrap_or_else(|| "built-in defaults".to_string())
        };
        value::resolve(values, sources, warnings, opts.home.as_deref(), &origin_of)
    }

    /// The directory holding one directory per spec, inside a project.
    pub fn specs_dir(&self, project: &Path) -> PathBuf {
        project
            .join(&self.spec_workflow_dir_name)
            .join(&self.specs_subdir)
    }

    /// A spec's tasks.md: the one place this path is built.
    pub fn tasks_path(&self, project: &Path, spec: &str) -> PathBuf {
        self.specs_dir(project)
            .join(spec)
            .join(&self.tasks_filename)
    }

    /// Where the attempt logs of a spec go.
    pub fn log_dir(&self, project: &Path, spec: &str) -> PathBuf {
        project
            .join(&self.spec_workflow_dir_name)
            .join(&self.log_dir_name)
            .join(spec)
    }

    /// The Python tool's per-runner retry history directory.
    pub fn retry_log_dir(&self, project: &Path) -> PathBuf {
        if self.retry_log_dir.is_absolute() {
            self.retry_log_dir.clone()
        } else {
            project
                .join(&self.spec_workflow_dir_name)
                .join(&self.retry_log_dir)
        }
    }

    /// The state store.
    pub fn store_path(&self) -> PathBuf {
        self.cache_dir.join("swr.sqlite3")
    }

    /// Per-spec lock files.
    pub fn lock_dir(&self) -> PathBuf {
        self.cache_dir.join("locks")
    }

    /// Where specs live inside a project.
    pub fn layout(&self) -> crate::spec::Layout {
        crate::spec::Layout {
            spec_workflow_dir_name: self.spec_workflow_dir_name.clone(),
            specs_subdir: self.specs_subdir.clone(),
            tasks_filename: self.tasks_filename.clone(),
        }
    }

    /// The providers this config defines: the built-in ones with their command overrides, and
    /// the custom ones under `providers`, each checked here so a bad entry is a config error
    /// naming it.
    pub fn provider_registry(
        &self,
        swr_exe: PathBuf,
    ) -> Result<crate::provider::ProviderRegistry, ConfigError> {
        let mut custom = BTreeMap::new();
        for (name, v) in &self.providers {
            let def: crate::provider::CustomProviderConfig = serde_json::from_value(v.clone())
                .map_err(|e| ConfigError::Invalid {
                    origin: self
                        .sources
                        .get("providers")
                        .map(|s| s.to_string())
                        .unwrap_or_default(),
                    key: format!("providers.{name}"),
                    message: format!(
                        "{e}; expected {{\"command\": [...], \"prompt\": \"arg\"|\"stdin\", \"output\": \"claude-stream-json\"|\"codex-json\"|\"gemini-stream-json\"|\"text\"}}"
                    ),
                })?;
            if def.command.first().is_none_or(|p| p.is_empty()) {
                return Err(ConfigError::Invalid {
                    origin: self
                        .sources
                        .get("providers")
                        .map(|s| s.to_string())
                        .unwrap_or_default(),
                    key: format!("providers.{name}.command"),
                    message: "must name an executable: the array is empty".into(),
                });
            }
            custom.insert(name.clone(), def);
        }
        let overrides = crate::provider::ProviderOverrides {
            claude_command: Some(self.claude_command.clone()),
            codex_command: Some(self.codex_command.clone()),
            gemini_command: Some(self.gemini_command.clone()),
            custom,
            codex_config_overrides: self.codex_config_overrides.clone(),
        };
        Ok(crate::provider::ProviderRegistry::new(&overrides, swr_exe))
    }

    /// Keys set to a value that would matter in the Python tool but that swr does not act on.
    pub fn unused_compat_keys(&self) -> Vec<&'static str> {
        KEYS.iter()
            .filter(|k| k.used == Use::Compat)
            .filter(|k| !matches!(self.sources.get(k.name), Some(Source::Default) | None))
            .map(|k| k.name)
            .collect()
    }
}

fn apply(
    values: &mut Map<String, Value>,
    sources: &mut BTreeMap<String, Source>,
    origins: &mut BTreeMap<String, String>,
    layer: value::FileLayer,
    source: impl Fn(&str) -> Source,
) {
    for (key, (v, origin)) in layer.values {
        sources.insert(key.clone(), source(&key));
        origins.insert(key.clone(), origin);
        values.insert(key, v);
    }
}

#[cfg(test)]
mod tests;
