//! Shared by the `cli_*` end-to-end tests: a sandbox that runs the real `swr` binary with a
//! temporary HOME, XDG config and cache dirs, so no test depends on the machine's own config.
#![allow(dead_code, clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use assert_cmd::Command;

pub struct Sandbox {
    _dir: tempfile::TempDir,
    /// Canonical path of the sandbox root (swr prints canonical paths).
    pub root: PathBuf,
}

impl Sandbox {
    /// An empty sandbox with `home/`, `config/`, `cache/`, `bin/` and `work/` (the cwd).
    pub fn new() -> Sandbox {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        for d in ["home", "config", "cache", "bin", "work"] {
            std::fs::create_dir_all(root.join(d)).unwrap();
        }
        Sandbox { _dir: dir, root }
    }

    /// A sandbox whose `repos/` is a copy of `tests/fixtures/repos`.
    pub fn with_repos() -> Sandbox {
        let sb = Sandbox::new();
        copy_dir(&fixtures().join("repos"), &sb.repos());
        sb
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }

    pub fn repos(&self) -> PathBuf {
        self.root.join("repos")
    }

    /// The cache dir swr uses by default here: `$XDG_CACHE_HOME/spec-workflow-runner`.
    pub fn state_dir(&self) -> PathBuf {
        self.root.join("cache/spec-workflow-runner")
    }

    /// The user config file swr reads here.
    pub fn user_config(&self) -> PathBuf {
        self.root.join("config/spec-workflow-runner/config.json")
    }

    pub fn write(&self, rel: &str, text: &str) -> PathBuf {
        let path = self.root.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, text).unwrap();
        path
    }

    /// `swr` with nothing of the caller's environment but PATH (the sandbox's `bin/` first),
    /// run from `work/`, without colours.
    pub fn swr(&self) -> Command {
        let path = std::env::var("PATH").unwrap_or_default();
        self.swr_with_path(&format!("{}:{path}", self.root.join("bin").display()))
    }

    /// `swr` whose PATH is only the sandbox's `bin/`: no agent CLI of the machine is found.
    pub fn swr_isolated(&self) -> Command {
        self.swr_with_path(&self.root.join("bin").display().to_string())
    }

    fn swr_with_path(&self, path: &str) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_swr"));
        cmd.env_clear()
            .env("PATH", path)
            .env("HOME", self.root.join("home"))
            .env("XDG_CONFIG_HOME", self.root.join("config"))
            .env("XDG_CACHE_HOME", self.root.join("cache"))
            .env("NO_COLOR", "1")
            .current_dir(self.root.join("work"));
        cmd
    }

    /// An executable shell script in `bin/`.
    pub fn fake_bin(&self, name: &str, script: &str) {
        use std::os::unix::fs::PermissionsExt;
        let path = self.root.join("bin").join(name);
        std::fs::write(&path, format!("#!/bin/sh\n{script}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    /// Links the machine's `git` into `bin/`, for runs with an isolated PATH.
    pub fn link_git(&self) {
        let git = std::env::var_os("PATH")
            .and_then(|p| {
                std::env::split_paths(&p)
                    .map(|d| d.join("git"))
                    .find(|g| g.is_file())
            })
            .expect("git on PATH");
        std::os::unix::fs::symlink(git, self.root.join("bin/git")).unwrap();
    }

    /// Replaces the sandbox path by `[SANDBOX]`, for snapshots.
    pub fn redact(&self, text: &str) -> String {
        text.replace(&self.root.display().to_string(), "[SANDBOX]")
    }
}

pub fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// The Python spec-workflow-runner's own config.json, kept with swr-core's fixtures.
pub fn python_config() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../swr-core/tests/fixtures/config/python-tool-config.json")
}

pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

pub fn stdout(out: &std::process::Output) -> String {
    String::from_utf8(out.stdout.clone()).unwrap()
}

pub fn stderr(out: &std::process::Output) -> String {
    String::from_utf8(out.stderr.clone()).unwrap()
}
