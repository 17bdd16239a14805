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
                    let value = config.values.get(k.name).cloned().unwrap_or(Value::Null);
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
            let width = KEYS.iter().map(|k| k.name.len()).max().unwrap_or(20);
            for k in KEYS {
                let value = config.values.get(k.name).cloned().unwrap_or(Value::Null);
                let mut shown = match &value {
                    Value::String(s) => format!("{s:?}"),
                    v => v.to_string(),
                };
                if shown.len() > 70 {
                    let cut = shown.floor_char_boundary(67);
                    shown = format!("{}…", &shown[..cut]);
                }
                let source = config
                    .sources
                    .get(k.name)
                    .map(|s| s.to_string())
                    .unwrap_or_default();
                let note = if k.used == Use::Compat {
                    paint.yellow(" (accepted for the Python tool; not used by swr)")
                } else {
                    String::new()
                };
                println!(
                    "{:width$}  {}  {}{}",
                    k.name,
                    shown,
                    paint.dim(&format!("[{source}]")),
                    note
                );
            }
            Ok(crate::exit::OK)
        }
    }
}
