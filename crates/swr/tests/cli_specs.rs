//! End to end: `swr specs` as a new user runs it, on a copy of `tests/fixtures/repos`
//! (app: auth 1/4 with one blocked, billing done, drafts without tasks.md; lib: parser with a
//! malformed line 4; empty: a project without specs).
#![allow(clippy::unwrap_used)]

mod cli_support;

use cli_support::{Sandbox, python_config, stderr, stdout};
use serde_json::Value;

fn specs(sb: &Sandbox, args: &[&str]) -> std::process::Output {
    sb.swr()
        .env("SWR_REPOS_ROOT", sb.repos())
        .arg("specs")
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn table_lists_every_project_with_aligned_progress() {
    let sb = Sandbox::with_repos();
    let out = specs(&sb, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = sb.redact(&stdout(&out));
    assert!(!text.contains('\x1b'), "NO_COLOR is set: no escapes");
    insta::assert_snapshot!("specs_table", text);
    // The bars of every spec start in the same column.
    let cols: Vec<usize> = text
        .lines()
        .filter_map(|l| l.find(['█', '░', '·']).map(|b| l[..b].chars().count()))
        .collect();
    assert_eq!(cols.len(), 4, "{text}");
    assert!(cols.windows(2).all(|w| w[0] == w[1]), "{text}");
    // tasks.md problems go to stderr, as file:line: message.
    assert_eq!(
        sb.redact(&stderr(&out)),
        "swr: warning: [SANDBOX]/repos/lib/.spec-workflow/specs/parser/tasks.md:4: unknown \
         checkbox mark `[?]` (expected ` `, `-`, `x`, `X` or `~`); line ignored\n"
    );
}

#[test]
fn json_has_the_documented_fields() {
    let sb = Sandbox::with_repos();
    let out = specs(&sb, &["--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let rows: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    let names: Vec<String> = rows
        .iter()
        .map(|r| {
            format!(
                "{}/{}",
                r["project"].as_str().unwrap(),
                r["spec"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        names,
        ["app/auth", "app/billing", "app/drafts", "lib/parser"]
    );
    let auth = &rows[0];
    for (key, want) in [
        ("total", 4),
        ("done", 1),
        ("in_progress", 1),
        ("pending", 1),
        ("blocked", 1),
    ] {
        assert_eq!(auth[key], want, "auth.{key}");
    }
    let repos = sb.repos();
    assert_eq!(
        auth["path"],
        repos
            .join("app/.spec-workflow/specs/auth")
            .display()
            .to_string()
    );
    assert_eq!(
        auth["tasks_path"],
        repos
            .join("app/.spec-workflow/specs/auth/tasks.md")
            .display()
            .to_string()
    );
    assert_eq!(
        auth["project_path"],
        repos.join("app").display().to_string()
    );
    assert_eq!(rows[2]["tasks_file_exists"], false);
    assert_eq!(rows[2]["total"], 0);
    assert_eq!(rows[3]["warnings"][0]["line"], 4);
    // JSON mode keeps stderr for real problems only.
    assert_eq!(stderr(&out), "");
}

#[test]
fn unfinished_keeps_only_specs_with_work_left() {
    let sb = Sandbox::with_repos();
    let out = specs(&sb, &["--unfinished", "--json"]);
    let rows: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    let names: Vec<&str> = rows.iter().map(|r| r["spec"].as_str().unwrap()).collect();
    assert_eq!(names, ["auth", "parser"]);

    let text = stdout(&specs(&sb, &["-u"]));
    assert!(text.contains("auth"), "{text}");
    assert!(!text.contains("billing"), "{text}");
    assert!(
        !text.contains("empty"),
        "projects with nothing left are hidden: {text}"
    );
    assert!(
        text.contains("(the others hidden by --unfinished)"),
        "{text}"
    );
}

#[test]
fn unfinished_with_everything_done_says_so() {
    let sb = Sandbox::new();
    sb.write(
        "repos/done/.spec-workflow/specs/one/tasks.md",
        "- [x] 1. only task\n",
    );
    let out = specs(&sb, &["--unfinished"]);
    assert!(out.status.success());
    assert_eq!(
        stdout(&out),
        "Nothing left to do: 1 spec in 1 project, every task done.\n"
    );
}

#[test]
fn project_by_name_by_path_and_relative_path() {
    let sb = Sandbox::with_repos();
    let by_name = stdout(&specs(&sb, &["--project", "app"]));
    let path = sb.repos().join("app").display().to_string();
    let by_path = stdout(&specs(&sb, &["--project", &path]));
    assert_eq!(by_name, by_path);
    assert!(
        by_name.contains("auth") && !by_name.contains("parser"),
        "{by_name}"
    );
    assert!(by_name.ends_with("1 project, 3 specs: 1 done, 1 with work left, 1 without tasks.\n"));
    let rel = stdout(&specs(&sb, &["--project", "../repos/app"]));
    assert_eq!(rel, by_name);
    let out = sb
        .swr()
        .env("HOME", &sb.root)
        .args(["specs", "-p", "~/repos/app"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn a_local_directory_that_is_no_project_does_not_hide_the_named_project() {
    let sb = Sandbox::with_repos();
    std::fs::create_dir_all(sb.path("work/app")).unwrap();
    let out = specs(&sb, &["-p", "app"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("auth"));
}

#[test]
fn python_tool_config_lists_the_specs() {
    let sb = Sandbox::with_repos();
    // As is, with repos_root redirected by the environment.
    let out = sb
        .swr()
        .env("SWR_REPOS_ROOT", sb.repos())
        .arg("--config")
        .arg(python_config())
        .args(["specs", "--json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stderr(&out), "", "the Python config gives no warnings");
    let rows: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(rows.len(), 4);
    // A modified copy with repos_root in the file, as the user config.
    let mut cfg: Value =
        serde_json::from_str(&std::fs::read_to_string(python_config()).unwrap()).unwrap();
    cfg["repos_root"] = Value::String(sb.repos().display().to_string());
    sb.write(
        "config/spec-workflow-runner/config.json",
        &serde_json::to_string_pretty(&cfg).unwrap(),
    );
    let out = sb.swr().arg("specs").output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("3 projects, 4 specs"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn missing_repos_root_is_a_config_error_saying_what_to_do() {
    let sb = Sandbox::new();
    let out = sb.swr().arg("specs").output().unwrap();
    assert_eq!(out.status.code(), Some(78));
    assert_eq!(
        sb.redact(&stderr(&out)),
        "swr: config error: repos_root [SANDBOX]/home/repos does not exist, so there are no \
         projects to list; set \"repos_root\" in your config file (`swr config path` prints where \
         it is) or SWR_REPOS_ROOT, or pass --project DIR\n"
    );
    // A project name cannot be looked up either.
    let out = sb.swr().args(["specs", "-p", "app"]).output().unwrap();
    assert_eq!(out.status.code(), Some(78));
    assert!(stderr(&out).contains("repos_root"), "{}", stderr(&out));
}

#[test]
fn unknown_project_name_suggests_and_lists() {
    let sb = Sandbox::with_repos();
    let out = specs(&sb, &["--project", "ap"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        sb.redact(&stderr(&out)),
        "swr: error: --project ap: no such directory, and no project of that name under \
         repos_root [SANDBOX]/repos (did you mean \"app\"?); projects there: app, empty, lib\n"
    );
    let out = specs(&sb, &["--project", "billing"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).ends_with("; \"billing\" is a spec, of project \"app\"\n"),
        "{}",
        stderr(&out)
    );
    let out = specs(&sb, &["--project", "./nowhere"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).starts_with("swr: error: --project ./nowhere: no such directory"));
}

#[test]
fn project_directory_without_specs_says_what_to_create() {
    let sb = Sandbox::with_repos();
    let plain = sb.path("plain");
    std::fs::create_dir_all(&plain).unwrap();
    let out = specs(&sb, &["--project", &plain.display().to_string()]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        sb.redact(&stderr(&out)),
        "swr: error: [SANDBOX]/plain is not a spec-workflow project: it has no \
         [SANDBOX]/plain/.spec-workflow/specs directory; create .spec-workflow/specs/<spec>/tasks.md \
         in it, or pass another --project (`swr specs` lists the projects under repos_root)\n"
    );
    // A project whose specs dir is empty is listed, with the same advice.
    let out = specs(&sb, &["--project", "empty"]);
    assert!(out.status.success());
    assert_eq!(
        sb.redact(&stdout(&out)),
        "empty  [SANDBOX]/repos/empty\n  no specs yet: create \
         [SANDBOX]/repos/empty/.spec-workflow/specs/<spec>/tasks.md\n\n1 project, no specs yet.\n"
    );
}

#[test]
fn no_projects_at_all() {
    let sb = Sandbox::new();
    std::fs::create_dir_all(sb.repos()).unwrap();
    let out = specs(&sb, &[]);
    assert!(out.status.success());
    assert_eq!(
        sb.redact(&stdout(&out)),
        "No projects under [SANDBOX]/repos: a project is a directory holding \
         .spec-workflow/specs/<spec>/tasks.md.\nCreate one there, set \"repos_root\" in your \
         config, or pass --project DIR.\n"
    );
    assert_eq!(stdout(&specs(&sb, &["--json"])), "[]\n");
}

#[test]
fn many_warnings_are_capped_per_file() {
    let sb = Sandbox::new();
    let body: String = (1..=8).map(|i| format!("- [?] {i}. odd\n")).collect();
    sb.write("repos/p/.spec-workflow/specs/s/tasks.md", &body);
    let out = specs(&sb, &[]);
    let err = sb.redact(&stderr(&out));
    assert_eq!(err.lines().count(), 6, "{err}");
    assert!(err.contains("tasks.md:5: unknown checkbox mark"), "{err}");
    assert!(
        err.ends_with("tasks.md: 3 more (all of them: swr specs --json)\n"),
        "{err}"
    );
}

/// swr-core's `spec/complete/` fixtures: one finished spec per construct authors write (task
/// headings, status checkboxes, criteria, checklists, their own ids, Kiro's optional tasks,
/// prompts over several lines and template comments), all ticked.
fn finished_forms(sb: &Sandbox) -> Vec<String> {
    let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../swr-core/tests/fixtures/spec/complete");
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(&path).unwrap();
        sb.write(
            &format!("repos/forms/.spec-workflow/specs/{name}/tasks.md"),
            &text,
        );
        names.push(name);
    }
    names.sort();
    assert!(names.len() >= 7, "{names:?}");
    names
}

#[test]
fn finished_specs_in_every_form_say_complete() {
    let sb = Sandbox::new();
    let names = finished_forms(&sb);
    let out = specs(&sb, &["--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let rows: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(rows.len(), names.len());
    for r in &rows {
        let spec = r["spec"].as_str().unwrap();
        assert!(r["total"].as_u64().unwrap() > 0, "{spec}: {r}");
        assert_eq!(r["done"], r["total"], "{spec}: {r}");
        assert_eq!(r["warnings"], serde_json::json!([]), "{spec}: {r}");
    }
    let out = specs(&sb, &["--unfinished"]);
    assert_eq!(
        stdout(&out),
        format!(
            "Nothing left to do: {} specs in 1 project, every task done.\n",
            names.len()
        )
    );
    let table = stdout(&specs(&sb, &[]));
    assert!(
        table.ends_with(&format!(
            "1 project, {n} specs: {n} done, 0 with work left.\n",
            n = names.len()
        )),
        "{table}"
    );
}

#[test]
fn json_lists_optional_tasks_and_checklists_apart() {
    let sb = Sandbox::new();
    sb.write(
        "repos/app/.spec-workflow/specs/kiro/tasks.md",
        "# Plan\n\n- [x] 1. Build\n- [ ]* 2. Property tests\n- [ ] 3. Ship\n\n\
         ## Verification Checklist\n- [x] Tested by hand\n- [ ] Reviewed\n",
    );
    let rows: Vec<Value> = serde_json::from_slice(&specs(&sb, &["--json"]).stdout).unwrap();
    let kiro = &rows[0];
    assert_eq!((&kiro["total"], &kiro["done"]), (&2.into(), &1.into()));
    assert_eq!(kiro["optional"]["total"], 1);
    assert_eq!(kiro["optional"]["pending"], 1);
    assert_eq!(
        kiro["checklists"],
        serde_json::json!([{"title": "Verification Checklist", "line": 7, "total": 2, "done": 1}])
    );
    let table = stdout(&specs(&sb, &[]));
    assert!(table.contains("1/2"), "{table}");
    assert!(table.contains("1 optional left"), "{table}");
    // With include_optional_tasks, they are tasks like the others.
    let out = sb
        .swr()
        .env("SWR_REPOS_ROOT", sb.repos())
        .env("SWR_INCLUDE_OPTIONAL_TASKS", "true")
        .args(["specs", "--json"])
        .output()
        .unwrap();
    let rows: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (&rows[0]["total"], &rows[0]["done"]),
        (&3.into(), &1.into())
    );
    assert_eq!(rows[0]["optional"]["total"], 0);
}

/// `swr run` on a finished spec ends at once with exit 0: the agent, a script that would leave
/// a mark and fail, never starts.
#[test]
fn run_on_a_finished_spec_in_every_form_starts_no_agent() {
    let sb = Sandbox::new();
    let names = finished_forms(&sb);
    let marker = sb.path("agent-started");
    sb.fake_bin(
        "loud-agent",
        &format!("touch '{}'\necho 'started' >&2\nexit 1", marker.display()),
    );
    let config = serde_json::json!({
        "repos_root": sb.repos().display().to_string(),
        "provider": "loud",
        "providers": {"loud": {
            "command": [sb.path("bin/loud-agent").display().to_string()],
            "prompt": "arg",
            "output": "text"
        }},
        "retry_on_crash": false,
    });
    sb.write(
        "config/spec-workflow-runner/config.json",
        &serde_json::to_string(&config).unwrap(),
    );
    let project = sb.repos().join("forms");
    for name in &names {
        let start = std::time::Instant::now();
        let out = sb
            .swr()
            .arg("run")
            .arg("--project")
            .arg(&project)
            .args(["--spec", name])
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{name}: {}{}",
            stdout(&out),
            stderr(&out)
        );
        assert!(!marker.exists(), "{name}: the agent was started");
        assert!(
            start.elapsed() < std::time::Duration::from_secs(10),
            "{name}: not at once"
        );
    }
    // `--all` finds nothing to run either.
    let out = sb
        .swr()
        .arg("run")
        .arg("--project")
        .arg(&project)
        .arg("--all")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(!marker.exists(), "--all started the agent");
}
