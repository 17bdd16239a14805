//! `swr service install|uninstall`: a systemd user unit (a launchd agent on macOS) that runs
//! `swr serve` and brings it back after a failure or a reboot. It writes and removes files and
//! prints the commands to run; it never calls systemctl or launchctl itself, so it does the
//! same on a machine without a user session bus (CI, a container) as on a desktop.

use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::cli::{DEFAULT_LISTEN, ServeArgs, ServiceCommand};
use crate::exit;

/// The systemd unit's name.
pub const UNIT_NAME: &str = "swr.service";
/// The launchd agent's label.
pub const LAUNCHD_LABEL: &str = "dev.swr.serve";

/// Everything a unit needs to start `swr serve` the way this shell would.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitSpec {
    pub exe: PathBuf,
    pub config: Option<PathBuf>,
    pub listen: String,
    pub token_file: Option<PathBuf>,
    /// The agents' CLIs (claude, codex...) are found through it: services start with a bare
    /// PATH otherwise.
    pub path_env: String,
}

impl UnitSpec {
    fn argv(&self) -> Vec<String> {
        let mut v = vec![self.exe.display().to_string()];
        if let Some(c) = &self.config {
            v.extend(["--config".to_string(), c.display().to_string()]);
        }
        v.push("serve".into());
        if self.listen != DEFAULT_LISTEN {
            v.extend(["--listen".to_string(), self.listen.clone()]);
        }
        if let Some(t) = &self.token_file {
            v.extend(["--token-file".to_string(), t.display().to_string()]);
        }
        v
    }
}

/// systemd quoting for ExecStart: every argument in double quotes, `\` `"` escaped, `%`
/// doubled (a specifier otherwise), `$` doubled (a variable otherwise).
fn systemd_quote(arg: &str) -> String {
    let mut s = String::from("\"");
    for c in arg.chars() {
        match c {
            '\\' => s.push_str("\\\\"),
            '"' => s.push_str("\\\""),
            '%' => s.push_str("%%"),
            '$' => s.push_str("$$"),
            c => s.push(c),
        }
    }
    s.push('"');
    s
}

/// The systemd user unit. `Restart=on-failure` brings the service back after a crash;
/// `KillMode=process` because the service stops its own runners gracefully on SIGTERM (and
/// leaves their queue entries to resume), and a crash of the service must not take running
/// agents down with it: the next start adopts them.
pub fn systemd_unit(u: &UnitSpec) -> String {
    let exec: Vec<String> = u.argv().iter().map(|a| systemd_quote(a)).collect();
    format!(
        "# Written by `swr service install`; remove with `swr service uninstall`.
[Unit]
Description=swr serve: the spec-workflow runner's queue, API and dashboard
After=network-online.target

[Service]
Type=simple
ExecStart={exec}
Environment={path}
Restart=on-failure
RestartSec=5
KillMode=process
# Long enough for the runners' graceful stop (stop_grace_seconds) and their bookkeeping.
TimeoutStopSec=120

[Install]
WantedBy=default.target
",
        exec = exec.join(" "),
        path = systemd_quote(&format!("PATH={}", u.path_env)),
    )
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The launchd agent: started at login (`RunAtLoad`) and again after a failure (`KeepAlive`
/// with `SuccessfulExit` false: a clean stop stays stopped).
pub fn launchd_plist(u: &UnitSpec, log: &Path) -> String {
    let args: String = u
        .argv()
        .iter()
        .map(|a| format!("    <string>{}</string>\n", xml_escape(a)))
        .collect();
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<!-- Written by `swr service install`; remove with `swr service uninstall`. -->
<plist version="1.0">
<dict>
  <key>Label</key>
  <string>{LAUNCHD_LABEL}</string>
  <key>ProgramArguments</key>
  <array>
{args}  </array>
  <key>EnvironmentVariables</key>
  <dict>
    <key>PATH</key>
    <string>{path}</string>
  </dict>
  <key>RunAtLoad</key>
  <true/>
  <key>KeepAlive</key>
  <dict>
    <key>SuccessfulExit</key>
    <false/>
  </dict>
  <key>StandardOutPath</key>
  <string>{log}</string>
  <key>StandardErrorPath</key>
  <string>{log}</string>
</dict>
</plist>
"#,
        path = xml_escape(&u.path_env),
        log = xml_escape(&log.display().to_string()),
    )
}

fn home() -> anyhow::Result<PathBuf> {
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(PathBuf::from)
        .context("HOME is not set: cannot tell where the unit goes")
}

/// `$XDG_CONFIG_HOME/systemd/user/swr.service`, else `~/.config/systemd/user/swr.service`.
fn systemd_unit_path() -> anyhow::Result<PathBuf> {
    let base = match std::env::var_os("XDG_CONFIG_HOME").filter(|v| !v.is_empty()) {
        Some(x) => PathBuf::from(x),
        None => home()?.join(".config"),
    };
    Ok(base.join("systemd").join("user").join(UNIT_NAME))
}

fn launchd_plist_path() -> anyhow::Result<PathBuf> {
    Ok(home()?
        .join("Library")
        .join("LaunchAgents")
        .join(format!("{LAUNCHD_LABEL}.plist")))
}

fn absolute(p: &Path) -> anyhow::Result<PathBuf> {
    let p = super::expand_tilde(&p.display().to_string());
    if p.is_absolute() {
        Ok(p)
    } else {
        Ok(std::env::current_dir()?.join(p))
    }
}

pub fn run(config_file: Option<&Path>, cmd: &ServiceCommand) -> anyhow::Result<u8> {
    match cmd {
        ServiceCommand::Install { serve, print } => install(config_file, serve, *print),
        ServiceCommand::Uninstall => uninstall(),
    }
}

fn install(config_file: Option<&Path>, serve: &ServeArgs, print: bool) -> anyhow::Result<u8> {
    // Refuse what `swr serve` would refuse, now rather than in the journal after a reboot.
    crate::serve::check_listen(&serve.listen).map_err(crate::exit::ExitError::usage)?;
    let spec = UnitSpec {
        exe: std::env::current_exe()?.canonicalize()?,
        config: config_file.map(absolute).transpose()?,
        listen: serve.listen.clone(),
        token_file: serve.token_file.as_deref().map(absolute).transpose()?,
        path_env: std::env::var("PATH").unwrap_or_else(|_| "/usr/local/bin:/usr/bin:/bin".into()),
    };
    let macos = cfg!(target_os = "macos");
    let (path, text) = if macos {
        let log = home()?.join("Library").join("Logs").join("swr-serve.log");
        (launchd_plist_path()?, launchd_plist(&spec, &log))
    } else {
        (systemd_unit_path()?, systemd_unit(&spec))
    };
    if print {
        print!("{text}");
        return Ok(exit::OK);
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
    println!("wrote {}", path.display());
    if macos {
        println!("start it now and at every login:");
        println!("  launchctl load -w {}", path.display());
        println!("logs: ~/Library/Logs/swr-serve.log");
    } else {
        println!("enable and start it:");
        println!("  systemctl --user daemon-reload");
        println!("  systemctl --user enable --now {UNIT_NAME}");
        println!("keep it running after you log out, and start it at boot before you log in:");
        println!("  loginctl enable-linger \"$USER\"");
        println!("status and logs:");
        println!("  systemctl --user status {UNIT_NAME}");
        println!("  journalctl --user -u {UNIT_NAME} -f");
    }
    Ok(exit::OK)
}

fn uninstall() -> anyhow::Result<u8> {
    let macos = cfg!(target_os = "macos");
    let path = if macos {
        launchd_plist_path()?
    } else {
        systemd_unit_path()?
    };
    if macos {
        println!(
            "first stop it, if it runs:  launchctl unload -w {}",
            path.display()
        );
    }
    let mut removed = false;
    // `enable` links the unit into default.target.wants; removing the link is what `disable`
    // does, so a removed unit is never started at the next login.
    if !macos && let Some(dir) = path.parent() {
        let wants = dir.join("default.target.wants").join(UNIT_NAME);
        if std::fs::symlink_metadata(&wants).is_ok() {
            std::fs::remove_file(&wants)
                .with_context(|| format!("cannot remove {}", wants.display()))?;
            println!("removed {}", wants.display());
            removed = true;
        }
    }
    match std::fs::remove_file(&path) {
        Ok(()) => {
            println!("removed {}", path.display());
            removed = true;
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => {
            return Err(anyhow::Error::new(e).context(format!("cannot remove {}", path.display())));
        }
    }
    if !removed {
        println!("nothing to remove: {} does not exist", path.display());
        return Ok(exit::OK);
    }
    if !macos {
        println!("stop a running service and forget the unit:");
        println!("  systemctl --user stop {UNIT_NAME}");
        println!("  systemctl --user daemon-reload");
    }
    Ok(exit::OK)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> UnitSpec {
        UnitSpec {
            exe: PathBuf::from("/home/u/.cargo/bin/swr"),
            config: Some(PathBuf::from("/home/u/my 100% config.json")),
            listen: "0.0.0.0:8787".into(),
            token_file: Some(PathBuf::from("/home/u/.config/swr-token")),
            path_env: "/home/u/.local/bin:/usr/bin".into(),
        }
    }

    #[test]
    fn systemd_unit_restarts_on_failure_and_quotes_its_arguments() {
        let unit = systemd_unit(&spec());
        assert!(unit.contains("\nRestart=on-failure\n"), "{unit}");
        assert!(unit.contains("\nKillMode=process\n"));
        assert!(unit.contains("\nWantedBy=default.target\n"));
        assert!(
            unit.contains(
                "ExecStart=\"/home/u/.cargo/bin/swr\" \"--config\" \"/home/u/my 100%% config.json\" \"serve\" \"--listen\" \"0.0.0.0:8787\" \"--token-file\" \"/home/u/.config/swr-token\"\n"
            ),
            "{unit}"
        );
        assert!(unit.contains("Environment=\"PATH=/home/u/.local/bin:/usr/bin\""));
        let plain = UnitSpec {
            config: None,
            listen: DEFAULT_LISTEN.into(),
            token_file: None,
            ..spec()
        };
        assert!(systemd_unit(&plain).contains("ExecStart=\"/home/u/.cargo/bin/swr\" \"serve\"\n"));
    }

    #[test]
    fn launchd_plist_keeps_it_alive_after_failures() {
        let p = launchd_plist(&spec(), Path::new("/home/u/Library/Logs/swr-serve.log"));
        assert!(p.contains("<string>dev.swr.serve</string>"));
        assert!(p.contains("<key>SuccessfulExit</key>\n    <false/>"));
        assert!(p.contains("    <string>serve</string>\n"));
        assert!(p.contains("<string>/home/u/my 100% config.json</string>"));
    }
}
