//! End to end: `--help` of every command, shell completions, usage errors and the documented
//! exit codes, as a new user meets them.
#![allow(clippy::unwrap_used)]

mod cli_support;

use cli_support::{Sandbox, stderr, stdout};

/// Every user-facing subcommand, as typed.
const SUBCOMMANDS: &[&[&str]] = &[
    &["run"],
    &["status"],
    &["history"],
    &["stop"],
    &["logs"],
    &["stats"],
    &["demo"],
    &["specs"],
    &["config"],
    &["config", "show"],
    &["config", "path"],
    &["doctor"],
    &["completions"],
    &["queue"],
    &["queue", "add"],
    &["queue", "ls"],
    &["queue", "rm"],
    &["queue", "pause"],
    &["queue", "resume"],
    &["serve"],
    &["service"],
    &["service", "install"],
    &["service", "uninstall"],
];

#[test]
fn top_level_help_lists_commands_examples_and_exit_codes() {
    let sb = Sandbox::new();
    let out = sb.swr().arg("--help").output().unwrap();
    assert!(out.status.success());
    let text = stdout(&out);
    for code in ["0 ", "1 ", "2 ", "75 ", "78 ", "130 "] {
        assert!(
            text.lines().any(|l| l.trim_start().starts_with(code)),
            "exit code {code}missing from --help:\n{text}"
        );
    }
    insta::assert_snapshot!("help_top_level", text);
}

#[test]
fn short_help_points_to_long_help() {
    let sb = Sandbox::new();
    let out = sb.swr().arg("-h").output().unwrap();
    assert!(out.status.success());
    assert!(stdout(&out).contains("Run `swr --help` for examples and exit codes."));
}

#[test]
fn every_subcommand_help_has_examples() {
    let sb = Sandbox::new();
    for args in SUBCOMMANDS {
        let out = sb.swr().args(*args).arg("--help").output().unwrap();
        let text = stdout(&out);
        assert!(out.status.success(), "swr {args:?} --help failed");
        assert!(
            text.contains("Examples:"),
            "swr {} --help has no examples:\n{text}",
            args.join(" ")
        );
        assert!(text.contains("Usage: swr"), "{text}");
    }
}

#[test]
fn specs_and_doctor_help_snapshots() {
    let sb = Sandbox::new();
    let specs = stdout(&sb.swr().args(["specs", "--help"]).output().unwrap());
    insta::assert_snapshot!("help_specs", specs);
    let doctor = stdout(&sb.swr().args(["doctor", "--help"]).output().unwrap());
    insta::assert_snapshot!("help_doctor", doctor);
}

#[test]
fn completions_name_the_subcommands() {
    let sb = Sandbox::new();
    for shell in ["bash", "zsh", "fish"] {
        let out = sb.swr().args(["completions", shell]).output().unwrap();
        assert!(out.status.success(), "{shell}: {}", stderr(&out));
        let script = stdout(&out);
        assert!(script.len() > 500, "{shell} script is too short");
        for sub in ["run", "specs", "doctor", "status", "config", "completions"] {
            assert!(script.contains(sub), "{shell} completions lack {sub}");
        }
        // The hidden plumbing command is not offered.
        assert!(!script.contains("sim-agent"), "{shell} offers sim-agent");
    }
    assert!(
        stdout(&sb.swr().args(["completions", "bash"]).output().unwrap()).contains("complete -F")
    );
    assert!(
        stdout(&sb.swr().args(["completions", "zsh"]).output().unwrap())
            .starts_with("#compdef swr")
    );
    assert!(
        stdout(&sb.swr().args(["completions", "fish"]).output().unwrap())
            .contains("complete -c swr")
    );
}

#[test]
fn usage_errors_exit_2() {
    let sb = Sandbox::new();
    for args in [
        &[][..],
        &["bogus"][..],
        &["completions", "tcsh"][..],
        &["specs", "--bogus"][..],
        &["config"][..],
    ] {
        let out = sb.swr().args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "swr {args:?}: {}", stderr(&out));
        assert!(!stderr(&out).is_empty(), "swr {args:?} said nothing");
    }
    let out = sb.swr().arg("bogus").output().unwrap();
    assert!(stderr(&out).contains("unrecognized subcommand 'bogus'"));
    let out = sb.swr().args(["completions", "tcsh"]).output().unwrap();
    assert!(stderr(&out).contains("[possible values: bash, zsh, fish"));
}

#[test]
fn version_prints_name_and_version() {
    let sb = Sandbox::new();
    let out = sb.swr().arg("--version").output().unwrap();
    assert!(out.status.success());
    assert_eq!(stdout(&out), format!("swr {}\n", env!("CARGO_PKG_VERSION")));
}
