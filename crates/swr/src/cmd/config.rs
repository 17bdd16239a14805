//! `swr config show|path`: the effective configuration and where each value came from.

use std::path::Path;

use serde_json::{Map, Value, json};
use swr_core::config::{KEYS, Use, user_config_path};

use crate::cli::ConfigCommand;
use crate::style::Paint;

pub fn run(config_file: Option<&Path>, cmd: ConfigCommand) -> anyhow::Result<u8> {
    match cmd {
        ConfigCommand::Path => {
            let env: Vec<(String, String)> = std::env::vars().collect();
            match user_config_path(&env) {
                Some(p) => println!("{}", p.display()),
                None => println!("(no HOME or XDG_CONFIG_HOME: no user config file)"),
            }
            Ok(crate::exit::OK)
        }
        ConfigCommand::Show { json } => {
            let config = crate::load_config(config_file)?;
            if json {
                let mut out = Map::new();
                for k in KEYS {
                    let value = effective(&config, k.name);
                    let source = config.sources.get(k.name).map(|s| s.to_string());
                    out.insert(
                        k.name.to_string(),
                        json!({"value": value, "source": source, "used": k.used == Use::Used}),
                    );
                }
                println!("{}", serde_json::to_string_pretty(&Value::Object(out))?);
                return Ok(crate::exit::OK);
            }
            let paint = Paint::stdout();
            let key_w = KEYS.iter().map(|k| k.name.len()).max().unwrap_or(20);
            let shown: Vec<(String, String)> = KEYS
                .iter()
                .map(|k| {
                    let value = effective(&config, k.name);
                    let source = config
                        .sources
                        .get(k.name)
                        .map(|s| s.to_string())
                        .unwrap_or_default();
                    (short_value(&value), source)
                })
                .collect();
            let value_w = shown
                .iter()
                .map(|(v, _)| v.chars().count())
                .max()
                .unwrap_or(5)
                .min(VALUE_WIDTH);
            let line = |k: &str, v: &str, s: &str| {
                let pad = value_w.saturating_sub(v.chars().count());
                println!("{k:key_w$}  {v}{}  {}", " ".repeat(pad), paint.dim(s));
            };
            println!(
                "{}",
                paint.bold(&format!("{:key_w$}  {:value_w$}  SOURCE", "KEY", "VALUE"))
            );
            for (k, (v, s)) in KEYS.iter().zip(&shown) {
                if k.used == Use::Used {
                    line(k.name, v, s);
                }
            }
            println!();
            println!(
                "{}",
                paint.bold("Accepted for the Python tool's config.json, not used by swr:")
            );
            for (k, (v, s)) in KEYS.iter().zip(&shown) {
                if k.used == Use::Compat {
                    line(k.name, v, s);
                }
            }
            Ok(crate::exit::OK)
        }
    }
}

/// Values wider than this are cut with an ellipsis: `--json` has them whole.
const VALUE_WIDTH: usize = 48;

/// A key's value as swr uses it: paths with `~` expanded (and `retry_log_dir` as given, since
/// it is relative to each project), everything else in its normal form.
fn effective(config: &swr_core::config::Config, key: &str) -> Value {
    let path = |p: &Path| Value::String(p.display().to_string());
    match key {
        "repos_root" => path(&config.repos_root),
        "cache_dir" => path(&config.cache_dir),
        _ => config.values.get(key).cloned().unwrap_or(Value::Null),
    }
}

fn short_value(value: &Value) -> String {
    let shown = match value {
        Value::String(s) => format!("{s:?}"),
        v => v.to_string(),
    };
    if shown.chars().count() <= VALUE_WIDTH {
        return shown;
    }
    let cut: String = shown.chars().take(VALUE_WIDTH - 1).collect();
    format!("{cut}…")
}
