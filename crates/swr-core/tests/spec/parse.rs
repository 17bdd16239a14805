use swr_core::spec::{TaskCounts, TaskList, TaskStatus, parse};

use crate::fixture;

fn ids(list: &TaskList) -> Vec<&str> {
    list.tasks.iter().map(|t| t.id.as_str()).collect()
}

fn statuses(list: &TaskList) -> Vec<TaskStatus> {
    list.tasks.iter().map(|t| t.status).collect()
}

fn messages(list: &TaskList) -> Vec<(usize, String)> {
    list.warnings
        .iter()
        .map(|w| (w.line, w.message.clone()))
        .collect()
}

#[test]
fn mcp_format_with_metadata() {
    let list = parse(&fixture("mcp_tasks.md"));
    assert_eq!(ids(&list), ["1", "2", "3", "3.1", "3.2", "4"]);
    assert_eq!(
        statuses(&list),
        [
            TaskStatus::Done,
            TaskStatus::InProgress,
            TaskStatus::Pending,
            TaskStatus::Pending,
            TaskStatus::Blocked,
            TaskStatus::Pending
        ]
    );
    assert!(list.warnings.is_empty(), "{:?}", list.warnings);

    let t1 = &list.tasks[0];
    assert_eq!(t1.title, "Create core interfaces in src/types/feature.ts");
    assert_eq!(t1.line, 3);
    assert_eq!(t1.files, ["src/types/feature.ts"]);
    assert_eq!(t1.leverage.as_deref(), Some("src/types/base.ts"));
    assert_eq!(t1.requirements.as_deref(), Some("1.1"));
    let prompt = t1.prompt.as_deref().unwrap();
    assert!(prompt.starts_with("Role: TypeScript Developer"));
    assert!(prompt.ends_with("compile without errors"));

    let t2 = &list.tasks[1];
    assert_eq!(
        t2.files,
        ["src/models/FeatureModel.ts"],
        "(new) note dropped"
    );
    assert_eq!(t2.requirements.as_deref(), Some("2.1, 2.2"));
    assert_eq!(
        t2.prompt.as_deref(),
        Some(
            "Role: Backend Developer with expertise in Node.js | Task: Create a base model class extending BaseModel | Success: Model extends BaseModel correctly"
        )
    );
    assert_eq!(t2.criteria.len(), 2);
    assert!(t2.criteria[0].done);
    assert_eq!(t2.criteria[0].text, "Model validates required fields");
    assert!(!t2.criteria[1].done);
    assert_eq!(t2.criteria[1].line, 21);

    let t31 = &list.tasks[3];
    assert_eq!(
        t31.files,
        ["src/models/FeatureModel.ts", "src/models/rules.ts"]
    );
    let t32 = &list.tasks[4];
    assert_eq!(
        t32.blocked_reason.as_deref(),
        Some("waiting for the rules engine API")
    );
    assert_eq!(list.tasks[5].title, "Write unit tests for the model");

    assert_eq!(
        list.counts(),
        TaskCounts {
            total: 6,
            done: 1,
            in_progress: 1,
            pending: 3,
            blocked: 1
        }
    );
    insta::assert_yaml_snapshot!("mcp_tasks", list);
}

#[test]
fn python_heading_format_inside_tasks_section() {
    let list = parse(&fixture("python_heading.md"));
    assert_eq!(ids(&list), ["1", "2", "3", "4"]);
    assert_eq!(
        statuses(&list),
        [
            TaskStatus::Done,
            TaskStatus::InProgress,
            TaskStatus::Blocked,
            TaskStatus::Pending
        ]
    );
    let t1 = &list.tasks[0];
    assert_eq!(t1.title, "Add rotation config");
    assert_eq!(t1.files, ["src/config.rs", "src/rotate.rs"]);
    assert_eq!(
        t1.criteria.len(),
        2,
        "checkboxes under a heading task are its criteria"
    );
    assert_eq!(list.tasks[1].requirements.as_deref(), Some("R2"));
    assert_eq!(
        list.tasks[2].blocked_reason.as_deref(),
        Some("needs the zstd crate approved")
    );
    assert!(list.warnings.is_empty(), "{:?}", list.warnings);
    insta::assert_yaml_snapshot!("python_heading", list);
}

#[test]
fn heading_status_words() {
    for (word, status) in [
        ("pending", TaskStatus::Pending),
        ("Not started", TaskStatus::Pending),
        ("in progress", TaskStatus::InProgress),
        ("In-Progress", TaskStatus::InProgress),
        ("in_progress", TaskStatus::InProgress),
        ("completed", TaskStatus::Done),
        ("Done", TaskStatus::Done),
        ("✅ Complete", TaskStatus::Done),
        ("blocked (waiting)", TaskStatus::Blocked),
    ] {
        for line in [
            format!("**Status**: {word}"),
            format!("**Status:** {word}"),
            format!("- **Status**: {word}"),
            format!("Status: {word}"),
        ] {
            let list = parse(&format!("### TASK-7: Do it\n{line}\n"));
            assert_eq!(list.tasks.len(), 1, "{line}");
            assert_eq!(list.tasks[0].id, "7");
            assert_eq!(list.tasks[0].status, status, "{line}");
        }
    }
    let list = parse("### TASK-1: A\n**Status**: someday\n### Task 2: B\n");
    assert_eq!(ids(&list), ["1", "2"]);
    assert_eq!(list.tasks[0].status, TaskStatus::Pending);
    assert_eq!(
        messages(&list),
        [(
            2,
            "unknown status `someday` for task 1; read as pending".to_string()
        )]
    );
    // Not heading tasks: no digit in the id, or no colon.
    assert!(parse("### Task List: things\n### Tasks\n").tasks.is_empty());
}

#[test]
fn tasks_section_rule() {
    let text = "\
- [ ] 1. Outside before

## Tasks

- [ ] 1. Inside
### Group
- [x] 2. Still inside (level 3 heading)

## Later
- [ ] 3. Outside after
# Top
- [ ] 4. Outside too
";
    let list = parse(text);
    assert_eq!(ids(&list), ["1", "2"]);
    assert_eq!(list.tasks[0].title, "Inside");
    assert_eq!(list.tasks[0].line, 5);

    // Case-insensitive, and several sections add up.
    let list = parse("## tasks\n- [ ] a\n## Other\n- [ ] b\n## TASKS (part 2)\n- [ ] c\n");
    assert_eq!(
        list.tasks
            .iter()
            .map(|t| t.title.as_str())
            .collect::<Vec<_>>(),
        ["a", "c"]
    );
    // `## Tasksmith` is not a Tasks heading: the whole file counts.
    assert_eq!(parse("## Tasksmith\n- [ ] a\n").tasks.len(), 1);
    // A `## Tasks` inside a fence does not restrict anything.
    assert_eq!(parse("```\n## Tasks\n```\n- [ ] a\n").tasks.len(), 1);
    // Without any `## Tasks`, every top-level checkbox counts.
    assert_eq!(parse("# T\n- [ ] a\n## B\n- [x] b\n").counts().total, 2);
}

#[test]
fn mixed_fixture_section_fences_criteria() {
    let list = parse(&fixture("mixed_section.md"));
    assert_eq!(
        list.tasks
            .iter()
            .map(|t| t.title.as_str())
            .collect::<Vec<_>>(),
        [
            "Parse the CSV header",
            "Map columns to fields",
            "Validate rows",
            "Report invalid rows with line numbers"
        ]
    );
    assert_eq!(ids(&list), ["1", "2", "3", "4"], "positional ids");
    assert_eq!(list.tasks[1].criteria.len(), 2);
    assert!(list.warnings.is_empty(), "{:?}", list.warnings);
    assert_eq!(
        list.counts(),
        TaskCounts {
            total: 4,
            done: 1,
            in_progress: 1,
            pending: 2,
            blocked: 0
        }
    );
    insta::assert_yaml_snapshot!("mixed_section", list);
}

#[test]
fn fenced_blocks_are_skipped() {
    let text = "\
- [ ] 1. Real
  ```md
  - [ ] 2. Example in an indented fence
  ```
````
```
- [ ] 3. Inside a 4-backtick fence with a 3-backtick line
````
~~~
- [ ] 4. Tilde
~~~
- [x] 5. Real again
";
    let list = parse(text);
    assert_eq!(ids(&list), ["1", "5"]);
    assert!(list.warnings.is_empty(), "{:?}", list.warnings);

    let list = parse("- [ ] 1. A\n```\n- [ ] 2. B\n");
    assert_eq!(ids(&list), ["1"]);
    assert_eq!(
        messages(&list),
        [(
            2,
            "code fence never closes; the rest of the file was read as code".to_string()
        )]
    );
}

#[test]
fn nested_criteria_and_subtasks() {
    let text = "\
- [ ] 1. Parent
  - [x] criterion one
  - [ ] 1.1 Numbered child is a task
    - [X] child criterion
      - [ ] deeper criterion belongs to 1.1 too
  - [-] criterion in progress is not done
- [ ] unnumbered top level is a task
";
    let list = parse(text);
    assert_eq!(ids(&list), ["1", "1.1", "3"]);
    let parent = &list.tasks[0];
    assert_eq!(
        parent
            .criteria
            .iter()
            .map(|c| (c.text.as_str(), c.done, c.line))
            .collect::<Vec<_>>(),
        [
            ("criterion one", true, 2),
            ("criterion in progress is not done", false, 6)
        ]
    );
    assert_eq!(list.tasks[1].criteria.len(), 2);
    assert!(list.tasks[1].criteria[0].done, "[X] is done");
    assert_eq!(list.counts().total, 3);
}

#[test]
fn capital_x_is_done() {
    let list = parse("- [X] 1. Upper\n- [x] 2. Lower\n");
    assert_eq!(statuses(&list), [TaskStatus::Done, TaskStatus::Done]);
}

#[test]
fn id_forms() {
    let text = "\
- [ ] 1. Dot
- [ ] 2\\. Escaped dot
- [ ] 3 No dot
- [ ] 3.1 Two levels
- [ ] 3.1.2 Three levels
- [ ] 3.2. Trailing dot
- [ ] 4 \\. Spaced escape
- [ ] 1.5x faster is a title, not an id
";
    let list = parse(text);
    assert_eq!(ids(&list), ["1", "2", "3", "3.1", "3.1.2", "3.2", "4", "8"]);
    assert_eq!(
        list.tasks
            .iter()
            .map(|t| t.title.as_str())
            .collect::<Vec<_>>(),
        [
            "Dot",
            "Escaped dot",
            "No dot",
            "Two levels",
            "Three levels",
            "Trailing dot",
            "Spaced escape",
            "1.5x faster is a title, not an id"
        ]
    );
}

#[test]
fn positional_id_never_collides_with_explicit_id() {
    let list = parse("- [ ] first\n- [ ] 1. explicit one\n");
    assert_eq!(ids(&list), ["line-1", "1"]);
    assert!(list.warnings.is_empty());
}

#[test]
fn line_endings_bom_tabs_agree() {
    let lf = "# T\n- [x] 1. One\n  - _Requirements: 1_\n- [ ] 2. Two\n  - [x] crit\n";
    let expected = parse(lf);
    assert_eq!(expected.tasks.len(), 2);
    for variant in [
        lf.replace('\n', "\r\n"),
        lf.replace('\n', "\r"),
        format!("\u{feff}{lf}"),
        format!("\u{feff}{}", lf.replace('\n', "\r\n")),
        lf.replace("  ", "\t"),
        lf.replace('\n', "\r\n").replace("  ", "\t"),
    ] {
        assert_eq!(parse(&variant), expected, "{variant:?}");
    }
}

#[test]
fn tabs_mean_nesting() {
    let list =
        parse("- [ ] 1. Parent\n\t- [ ] criterion\n\t- [ ] 1.1 Child\n\t\t- [x] child crit\n");
    assert_eq!(ids(&list), ["1", "1.1"]);
    assert_eq!(list.tasks[0].criteria.len(), 1);
    assert_eq!(list.tasks[1].criteria.len(), 1);
}

#[test]
fn star_bullets_and_deep_indent() {
    let text = "\
* [ ] 1. Star
                        * [x] 1.1 Very deep numbered
                                - [ ] very deep criterion
* [-] 2. Star again
";
    let list = parse(text);
    assert_eq!(ids(&list), ["1", "1.1", "2"]);
    assert_eq!(
        statuses(&list),
        [
            TaskStatus::Pending,
            TaskStatus::Done,
            TaskStatus::InProgress
        ]
    );
    assert_eq!(list.tasks[1].criteria.len(), 1);
}

#[test]
fn not_checkboxes() {
    let text = "\
-[ ] no space after bullet
+ [ ] plus bullet
1. [ ] ordered list
- [x](link) a link
- [ ]
- [ ]   
text - [ ] mid-line
";
    let list = parse(text);
    assert!(list.tasks.is_empty(), "{:?}", list.tasks);
    assert_eq!(
        messages(&list),
        [
            (
                3,
                "ordered-list checkbox (`1. [ ] …`) is not read as a task; write it as `- [ ] …`"
                    .to_string()
            ),
            (5, "checkbox without text; line ignored".to_string()),
            (6, "checkbox without text; line ignored".to_string())
        ]
    );
}

#[test]
fn ordered_list_checkboxes_are_warned_about_not_dropped_quietly() {
    let text = "\
# Tasks

- [x] 1. First
1. [ ] 2. In an ordered list
2) [x] 3. Also ordered
- [ ] 4. Last
  1. plain ordered step, no checkbox
";
    let list = parse(text);
    assert_eq!(ids(&list), ["1", "4"]);
    let warned: Vec<usize> = messages(&list).iter().map(|(l, _)| *l).collect();
    assert_eq!(warned, [4, 5], "{:?}", messages(&list));
    assert!(messages(&list)[0].1.contains("write it as `- [ ]"));
}

#[test]
fn malformed_input_gives_warnings_with_lines() {
    let text = "\
_Requirements: 9.9_
- [?] 1. Unknown mark
- [ ] 1. First
  - _Prompt: Role: dev | Task: never closes
    and continues here
- [ ] 1. Duplicate id

## Later
- _Leverage: after a heading_
";
    let list = parse(text);
    assert_eq!(ids(&list), ["1", "1"]);
    assert_eq!(
        messages(&list),
        [
            (
                1,
                "`_Requirements:` line outside any task; ignored".to_string()
            ),
            (
                2,
                "unknown checkbox mark `[?]` (expected ` `, `-`, `x`, `X` or `~`); line ignored"
                    .to_string()
            ),
            (
                4,
                "`_Prompt:` never closes (no trailing `_` before the next item or blank line)"
                    .to_string()
            ),
            (6, "duplicate task id `1` (first at line 3)".to_string()),
            (9, "`_Leverage:` line outside any task; ignored".to_string()),
        ]
    );
    // The unclosed prompt keeps what it read.
    assert_eq!(
        list.tasks[0].prompt.as_deref(),
        Some("Role: dev | Task: never closes and continues here")
    );
}

#[test]
fn prompt_with_nested_metadata_keys_stays_one_prompt() {
    let list = parse(
        "- [ ] 1. T\n  - _Prompt: Role: x | _Requirements: 1.1_ | _Leverage: a.ts_ | Success: ok_\n",
    );
    let t = &list.tasks[0];
    assert_eq!(
        t.prompt.as_deref(),
        Some("Role: x | _Requirements: 1.1_ | _Leverage: a.ts_ | Success: ok")
    );
    assert_eq!(t.requirements, None);
    assert_eq!(t.leverage, None);
}

#[test]
fn next_task_prefers_in_progress_then_pending() {
    let list = parse("- [x] 1. a\n- [~] 2. b\n- [ ] 3. c\n- [-] 4. d\n");
    assert_eq!(list.next_task().map(|t| t.id.as_str()), Some("4"));
    let list = parse("- [x] 1. a\n- [~] 2. b\n- [ ] 3. c\n");
    assert_eq!(list.next_task().map(|t| t.id.as_str()), Some("3"));
    let list = parse("- [x] 1. a\n- [~] 2. b\n");
    assert!(list.next_task().is_none(), "blocked tasks are never next");
    assert!(list.task("2").is_some());
}

#[test]
fn progress_summary_lists_unfinished_tasks() {
    let list = parse(
        "- [x] 1. Done one\n- [-] 2.1 Doing\n- [ ] 3. Todo\n- [~] 4. Stuck\n  - _Blocked: no key_\n",
    );
    assert_eq!(
        list.progress_summary(),
        "1/4 tasks done, 1 in progress, 1 pending, 1 blocked\n\
         - [-] 2.1 Doing\n\
         - [ ] 3 Todo\n\
         - [~] 4 Stuck (blocked: no key)"
    );
    assert_eq!(
        TaskList::default().progress_summary(),
        "0/0 tasks done, 0 in progress, 0 pending, 0 blocked"
    );
}

#[test]
fn progress_summary_caps_the_list() {
    let text: String = (1..=45).map(|i| format!("- [ ] {i}. Task {i}\n")).collect();
    let summary = parse(&text).progress_summary();
    let lines: Vec<&str> = summary.lines().collect();
    assert_eq!(lines.len(), 1 + 30 + 1);
    assert_eq!(lines[30], "- [ ] 30 Task 30");
    assert_eq!(lines[31], "… and 15 more");
}

#[test]
fn status_serializes_snake_case() {
    assert_eq!(
        serde_json::to_string(&TaskStatus::InProgress).unwrap(),
        "\"in_progress\""
    );
    assert_eq!(TaskStatus::Blocked.to_string(), "blocked");
}

#[test]
fn read_tasks_errors_and_lossy_utf8() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("tasks.md");
    match swr_core::spec::read_tasks(&missing) {
        Err(swr_core::spec::SpecError::NotFound { path }) => assert_eq!(path, missing),
        other => panic!("expected NotFound, got {other:?}"),
    }
    std::fs::write(&missing, b"- [ ] 1. caf\xe9\n").unwrap();
    let list = swr_core::spec::read_tasks(&missing).unwrap();
    assert_eq!(list.tasks.len(), 1);
    assert_eq!(list.warnings[0].line, 1);
    assert!(list.warnings[0].message.contains("not valid UTF-8"));
}

#[test]
fn heading_status_led_by_a_symbol() {
    let list = parse(
        "### Task 1: A\n**Status**: ✅ Implemented and Tested\n\
         ### Task 2: B\n**Status**: ✔ Validated\n\
         ### Task 3: C\n**Status**: 🚧 Working on it\n\
         ### Task 4: D\n**Status**: ✅ Not started\n\
         ### Task 5: E\n**Status**: ❌ Failed\n",
    );
    assert_eq!(
        statuses(&list),
        [
            TaskStatus::Done,
            TaskStatus::Done,
            TaskStatus::InProgress,
            TaskStatus::Pending,
            TaskStatus::Pending
        ],
        "words win over the symbol; an unknown symbol is no status"
    );
    assert_eq!(
        messages(&list),
        [(
            10,
            "unknown status `❌ Failed` for task 5; read as pending".to_string()
        )]
    );
}

#[test]
fn files_with_notes_in_any_parentheses() {
    let list = parse(
        "- [ ] 1. A\n  - File: `pom.xml`（添加 `jjwt`、`security`, 0.11）\n\
         \x20 - Files: b.rs (new, big), `c d.rs` (moved), e.rs（改）, (gone)\n",
    );
    assert_eq!(list.tasks[0].files, ["pom.xml", "b.rs", "c d.rs", "e.rs"]);
}
