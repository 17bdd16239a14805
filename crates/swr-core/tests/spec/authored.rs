//! tasks.md as people write it (with the MCP server's templates, by hand, or with Kiro): task
//! headings, status checkboxes, checklists that are not tasks, authors' ids, optional tasks,
//! prompts over several lines and template comments. Each fixture holds several variants of
//! one construct; `complete/` holds one finished spec per construct, which must read complete.

use swr_core::spec::{Task, TaskCounts, TaskList, TaskStatus, parse, summarize};

use crate::fixture;

fn authored(name: &str) -> TaskList {
    let list = parse(&fixture(&format!("authored/{name}.md")));
    // The listing path reads every fixture the same way as the full parse.
    assert_eq!(
        summarize(&fixture(&format!("authored/{name}.md"))),
        list.summary(),
        "{name}"
    );
    list
}

fn authored_text(text: &str) -> TaskList {
    let list = parse(text);
    assert_eq!(summarize(text), list.summary());
    list
}

fn ids(list: &TaskList) -> Vec<&str> {
    list.tasks.iter().map(|t| t.id.as_str()).collect()
}

fn task<'l>(list: &'l TaskList, id: &str) -> &'l Task {
    list.task(id)
        .unwrap_or_else(|| panic!("no task {id} in {:?}", ids(list)))
}

fn counts(total: usize, done: usize, in_progress: usize, pending: usize) -> TaskCounts {
    TaskCounts {
        total,
        done,
        in_progress,
        pending,
        blocked: 0,
    }
}

#[test]
fn task_headings_above_numbered_checkboxes_title_groups() {
    let list = authored("task_headings");
    assert!(list.warnings.is_empty(), "{:?}", list.warnings);
    // `## Task 1:` and `## Task 2:` title groups; `### Task 3.1:` directly above
    // `- [x] 3.1.` is the same task, not a second one with the same id.
    assert_eq!(
        ids(&list),
        ["1.1", "1.2", "2.1", "2.2", "2.3", "3.1", "3.2"]
    );
    assert_eq!(list.counts(), counts(7, 4, 1, 2));
    assert_eq!(task(&list, "1.1").requirements.as_deref(), Some("1.1"));
    assert!(task(&list, "1.2").prompt.is_some());
    assert_eq!(task(&list, "2.2").criteria.len(), 1);
    assert_eq!(task(&list, "3.1").files, ["src/auth/refresh.rs"]);
    assert_eq!(task(&list, "3.1").line, 16, "the checkbox is the task");
}

#[test]
fn task_heading_variants() {
    // A heading with the same id right above its checkbox, at any level.
    for heading in [
        "## Task 1.1: Setup",
        "### Task 1.1: Setup",
        "#### TASK-1.1: Setup",
    ] {
        let list = parse(&format!("{heading}\n- [x] 1.1. Setup\n"));
        assert_eq!(ids(&list), ["1.1"], "{heading}");
        assert!(list.counts().is_complete(), "{heading}");
        assert!(list.warnings.is_empty(), "{heading}: {:?}", list.warnings);
    }
    // A task heading above task headings, with no state of its own, titles them too.
    let list = parse(
        "## Task 1: Backend\n### Task 1.1: Model\n**Status**: done\n### Task 1.2: API\n- [x] Routes\n",
    );
    assert_eq!(ids(&list), ["1.1", "1.2"]);
    assert!(list.counts().is_complete());
    // One with its own status stays a task.
    let list =
        parse("## Task 1: Backend\n**Status**: done\n### Task 1.1: Model\n**Status**: done\n");
    assert_eq!(ids(&list), ["1", "1.1"]);
    // A task heading with nothing beneath it is still a pending task, as before.
    let list = parse("### Task 4: Later\nSome text.\n");
    assert_eq!(ids(&list), ["4"]);
    assert_eq!(list.tasks[0].status, TaskStatus::Pending);
    // `## Task 3:` inside a `## Tasks` section does not end the section.
    let list = parse(
        "# Plan\n## Tasks\n## Task 3: Auth\n- [x] 3.1 Login\n## Notes\n- [ ] 9. Not a task\n",
    );
    assert_eq!(ids(&list), ["3.1"]);
}

#[test]
fn heading_tasks_interleaved_with_numbered_checkboxes() {
    // Task headings with a state of their own, numbered checkboxes between them: each heading
    // is a task and each checkbox the next one, not a group and its members.
    let text = "\
## Task 1: Group
- [x] 1.1 Implement part 1
### Task 1.2: Test part 2
#### Acceptance Criteria
- [x] Unit tests pass
- [ ] Load test run
- [x] 1.3 Implement part 3
### Task 1.4: Review part 4
**Status:** [x] Completed

- [ ] 1.5 Implement part 5
### Task 1.6: Sub-tasks of its own
**Status:** in progress
- [x] 1.6.1 First half
";
    let list = authored_text(text);
    assert_eq!(ids(&list), ["1.1", "1.2", "1.3", "1.4", "1.5", "1.6.1"]);
    assert_eq!(task(&list, "1.2").status, TaskStatus::InProgress);
    assert_eq!(task(&list, "1.2").criteria.len(), 2);
    assert_eq!(task(&list, "1.4").status, TaskStatus::Done);
    assert!(list.warnings.is_empty(), "{:?}", list.warnings);
}

#[test]
fn status_checkboxes_and_criteria_give_a_heading_task_its_state() {
    let list = authored("heading_state");
    assert!(list.warnings.is_empty(), "{:?}", list.warnings);
    let status = |id: &str| task(&list, id).status;
    assert_eq!(status("1"), TaskStatus::Done, "**Status:** [x]");
    assert_eq!(status("2"), TaskStatus::Done, "**Status**: [x] Completed");
    assert_eq!(status("3"), TaskStatus::InProgress, "Status: [-]");
    assert_eq!(status("4"), TaskStatus::Done, "all criteria ticked");
    assert_eq!(
        status("5"),
        TaskStatus::InProgress,
        "some ticked, under a subheading"
    );
    assert_eq!(
        status("6"),
        TaskStatus::Pending,
        "none ticked, under a subheading"
    );
    assert_eq!(
        status("7"),
        TaskStatus::Done,
        "the Status line wins over its criteria"
    );
    assert_eq!(status("8"), TaskStatus::Blocked, "Status: [~]");
    assert_eq!(
        task(&list, "5").criteria.len(),
        2,
        "kept under `#### Acceptance Criteria`"
    );
    assert_eq!(task(&list, "7").criteria.len(), 2);
    assert_eq!(
        task(&list, "8").blocked_reason.as_deref(),
        Some("needs the vendor API key")
    );
    assert_eq!(list.counts().total, 8);
}

#[test]
fn criteria_states_in_detail() {
    for (boxes, status) in [
        ("- [x] a\n- [X] b\n", TaskStatus::Done),
        ("- [x] a\n- [ ] b\n", TaskStatus::InProgress),
        ("- [-] a\n- [ ] b\n", TaskStatus::InProgress),
        ("- [ ] a\n- [ ] b\n", TaskStatus::Pending),
        ("- [x] a\n- [~] b\n", TaskStatus::Blocked),
        ("- [~] a\n", TaskStatus::Blocked),
        ("- [ ] a\n- [~] b\n", TaskStatus::Pending),
    ] {
        let list = parse(&format!("### Task 1: T\n#### Acceptance Criteria\n{boxes}"));
        assert_eq!(list.tasks[0].status, status, "{boxes:?}");
    }
}

#[test]
fn status_value_forms() {
    for (value, status) in [
        ("[x]", TaskStatus::Done),
        ("[X] Done", TaskStatus::Done),
        ("[ ]", TaskStatus::Pending),
        ("[ ] Not started", TaskStatus::Pending),
        ("[-]", TaskStatus::InProgress),
        ("[~] waiting", TaskStatus::Blocked),
    ] {
        for line in [
            format!("**Status:** {value}"),
            format!("**Status**: {value}"),
            format!("- Status: {value}"),
        ] {
            let list = parse(&format!("### Task 1: T\n{line}\n"));
            assert_eq!(list.tasks[0].status, status, "{line}");
            assert!(list.warnings.is_empty(), "{line}: {:?}", list.warnings);
        }
    }
}

#[test]
fn checklists_in_a_file_with_numbered_tasks_are_not_tasks() {
    let list = authored("checklists");
    assert!(list.warnings.is_empty(), "{:?}", list.warnings);
    assert_eq!(ids(&list), ["1", "2", "3"]);
    assert_eq!(list.counts(), counts(3, 2, 0, 1));
    let titles: Vec<&str> = list.checklists.iter().map(|c| c.title.as_str()).collect();
    assert_eq!(
        titles,
        [
            "Verification Checklist",
            "Success Criteria",
            "Phase 2 Enhancements (Future)",
            "Orchestration Log"
        ]
    );
    let summary = list.summary();
    let own: Vec<(usize, usize)> = summary
        .checklists
        .iter()
        .map(|c| (c.done, c.total))
        .collect();
    assert_eq!(own, [(1, 3), (0, 1), (0, 3), (2, 2)]);
    assert_eq!(list.checklists[0].line, 8);
    assert_eq!(
        list.checklists[2].items[2].text, "Also to XLSX",
        "nested items are listed"
    );
    // The criterion nested under task 1 stays a criterion.
    assert_eq!(task(&list, "1").criteria.len(), 1);
    // Nothing of the checklists reaches the agent.
    let prompt = list.progress_summary();
    assert!(!prompt.contains("Dark mode"), "{prompt}");
    assert_eq!(list.next_task().map(|t| t.id.as_str()), Some("3"));
}

#[test]
fn numbered_list_plus_a_future_checklist_is_complete_when_the_list_is() {
    let text = "\
# Tasks

- [x] 1. Build the importer
- [x] 2. Wire it into the CLI

## Phase 2 (Future)

- [ ] Streaming import
- [ ] Progress bar
";
    let list = parse(text);
    assert_eq!(list.counts(), counts(2, 2, 0, 0));
    assert!(list.counts().is_complete());
    assert_eq!(list.checklists.len(), 1);
    assert_eq!(list.checklists[0].items.len(), 2);
    assert!(list.next_task().is_none());
}

#[test]
fn without_numbered_tasks_top_level_checkboxes_stay_tasks() {
    let text = "## Verification Checklist\n- [x] a\n- [ ] b\n## Success Criteria\n- [ ] c\n";
    let list = parse(text);
    assert_eq!(ids(&list), ["1", "2", "3"]);
    assert!(list.checklists.is_empty());
    // An unnumbered checkbox in a section that has numbered tasks is a task too.
    let list = parse("## Tasks\n- [x] 1. a\n- [ ] Deploy by hand\n## Checklist\n- [ ] c\n");
    assert_eq!(ids(&list), ["1", "2"]);
    assert_eq!(
        list.checklists.len(),
        0,
        "`## Checklist` is outside `## Tasks`"
    );
    let list = parse("# Plan\n## Build\n- [x] 1. a\n- [ ] Deploy by hand\n## Checklist\n- [ ] c\n");
    assert_eq!(ids(&list), ["1", "2"]);
    assert_eq!(list.checklists.len(), 1);
    // Checkboxes above every heading belong to the whole file, which has numbered tasks.
    let list = parse("- [ ] Read the design\n## Build\n- [x] 1. a\n");
    assert_eq!(ids(&list), ["line-1", "1"]);
}

#[test]
fn authors_ids_are_kept() {
    let list = authored("ids");
    assert!(list.warnings.is_empty(), "{:?}", list.warnings);
    assert_eq!(
        ids(&list),
        ["1.1", "1.2", "3.13a", "A1", "2.1.1", "2.2", "2.3", "8"]
    );
    // `### 1.1 Login form` lends its id and title to the checkboxes beneath, its criteria.
    let login = task(&list, "1.1");
    assert_eq!(login.title, "Login form");
    assert_eq!(login.status, TaskStatus::Done);
    assert_eq!(login.criteria.len(), 2);
    assert_eq!(task(&list, "1.2").status, TaskStatus::Pending);
    assert_eq!(task(&list, "3.13a").title, "Fix the export header");
    assert_eq!(task(&list, "A1").title, "Audit the log format");
    assert_eq!(task(&list, "2.1.1").title, "Handle the empty report");
    assert_eq!(task(&list, "2.2").title, "Paginate the report");
    assert_eq!(task(&list, "2.3").title, "Cache the report");
    assert_eq!(
        task(&list, "8").title,
        "1.5x faster rendering is a title, not an id"
    );
}

#[test]
fn id_forms_in_detail() {
    for (text, id, title) in [
        ("3.13a. Fix", "3.13a", "Fix"),
        ("3.13a: Fix", "3.13a", "Fix"),
        ("12: Fix", "12", "Fix"),
        ("A1: Audit", "A1", "Audit"),
        ("T2.3. Audit", "T2.3", "Audit"),
        ("🔴 1.1.1 Urgent", "1.1.1", "Urgent"),
        ("⚠️ 🔴 4 Both", "4", "Both"),
        ("**2.2** Bold id", "2.2", "Bold id"),
        ("**2.2:** Bold id", "2.2", "Bold id"),
        ("**2.2 Bold all**", "2.2", "Bold all"),
        ("**Task 5:** Prefixed", "5", "Prefixed"),
        ("Task 6: Prefixed", "6", "Prefixed"),
    ] {
        let list = parse(&format!("- [ ] {text}\n"));
        assert_eq!(
            (list.tasks[0].id.as_str(), list.tasks[0].title.as_str()),
            (id, title),
            "{text}"
        );
    }
    // Not ids: a version, a time, a word in capitals, a bold word, an emoji alone.
    for text in [
        "V2 migration",
        "10:30 stand-up",
        "MVP: ship",
        "**Important** read this",
        "🔴 urgent",
        "1.5x faster",
    ] {
        let list = parse(&format!("- [ ] {text}\n"));
        assert_eq!(list.tasks[0].id, "1", "{text}");
        assert_eq!(list.tasks[0].title, text);
    }
}

#[test]
fn numbered_sub_headings() {
    // A numbered heading with numbered checkboxes beneath titles them.
    let list = parse("## 2. Reporting\n- [x] 2.1 Export\n- [ ] 2.2 Import\n");
    assert_eq!(ids(&list), ["2.1", "2.2"]);
    // One with nothing beneath is no task; a level-1 one titles the document.
    let list = parse("# 1. Plan\n- [ ] a\n## 2. Notes\nText.\n");
    assert_eq!(ids(&list), ["1"]);
    assert_eq!(list.tasks[0].title, "a");
    // A deeper plain heading stays inside the numbered one.
    let list = parse("### 1.1 Login\n#### Checks\n- [x] a\n- [x] b\n### 1.2 Logout\n- [ ] c\n");
    assert_eq!(ids(&list), ["1.1", "1.2"]);
    assert_eq!(task(&list, "1.1").criteria.len(), 2);
    assert_eq!(task(&list, "1.1").status, TaskStatus::Done);
}

#[test]
fn kiro_optional_tasks_are_counted_apart() {
    let list = authored("kiro_optional");
    assert!(list.warnings.is_empty(), "{:?}", list.warnings);
    assert_eq!(ids(&list), ["1", "2", "2.1", "2.2", "2.3", "2.4"]);
    assert!(task(&list, "2.2").optional);
    assert!(task(&list, "2.4").optional);
    assert!(!task(&list, "2.3").optional);
    assert_eq!(list.counts(), counts(4, 2, 0, 2));
    assert_eq!(list.optional_counts(), counts(2, 1, 0, 1));
    assert_eq!(list.counts_with(true), counts(6, 3, 0, 3));
    // The next task skips optional ones unless asked for them.
    let list = parse("- [x] 1. a\n- [ ]* 2. Optional tests\n- [ ] 3. b\n");
    assert_eq!(list.next_task().map(|t| t.id.as_str()), Some("3"));
    assert_eq!(list.next_task_with(true).map(|t| t.id.as_str()), Some("2"));
    assert!(!list.progress_summary().contains("Optional tests"));
    assert!(list.progress_summary_with(true).contains("Optional tests"));
    assert!(list.progress_summary().starts_with("1/2 tasks done"));
    // Only optional work left: complete, unless optional tasks are included.
    let list = parse("- [x] 1. a\n- [ ]* 2. Optional tests\n");
    assert!(list.counts().is_complete());
    assert!(!list.counts_with(true).is_complete());
    assert!(list.next_task().is_none());
}

#[test]
fn prompts_over_several_lines_and_template_comments() {
    let list = authored("prompts");
    // The comment's `_Prompt:` and `- [ ] = Pending` lines are not read; the prompt of task
    // 1 runs past a blank line and bullets to its closing `_`; task 2's prompt is a list of
    // fields; task 3's never closes and says so.
    assert_eq!(ids(&list), ["1", "2", "3"]);
    assert_eq!(
        list.tasks[0].prompt.as_deref(),
        Some(
            "Role: Frontend developer | Task: Build the login form following the design in \
             design.md section 3. Restrictions: no new dependencies - keep the existing layout \
             - reuse the Button component Success: the form validates its input"
        )
    );
    assert_eq!(list.tasks[0].requirements.as_deref(), Some("1.1"));
    assert_eq!(
        list.tasks[1].prompt.as_deref(),
        Some(
            "Role: Backend developer | Task: Store sessions in Redis | Requirements: 2.1 | \
             Success: sessions survive a restart"
        )
    );
    assert_eq!(list.tasks[1].requirements, None, "the prompt's own field");
    assert_eq!(list.tasks[1].leverage.as_deref(), Some("src/store.rs"));
    assert_eq!(list.tasks[2].requirements.as_deref(), Some("3.1"));
    assert_eq!(
        list.warnings.iter().map(|w| w.line).collect::<Vec<_>>(),
        [29],
        "{:?}",
        list.warnings
    );
}

#[test]
fn prompt_and_comment_variants() {
    // Closing on a later line after a blank line: one prompt, no warning.
    let list = parse("- [ ] 1. a\n  - _Prompt: Role: x\n\n    Task: y_\n- [ ] 2. b\n");
    assert_eq!(list.tasks[0].prompt.as_deref(), Some("Role: x Task: y"));
    assert!(list.warnings.is_empty(), "{:?}", list.warnings);
    // A metadata line is never swallowed by a prompt looking for its end.
    let list = parse("- [ ] 1. a\n  - _Prompt: Role: x\n  - _Requirements: 1.1_\n");
    assert_eq!(list.tasks[0].prompt.as_deref(), Some("Role: x"));
    assert_eq!(list.tasks[0].requirements.as_deref(), Some("1.1"));
    assert_eq!(list.warnings.len(), 1);
    // Text back at the task's level after a blank line ends the search too.
    let list = parse("- [ ] 1. a\n  - _Prompt: Role: x\n\nA paragraph about snake_case_\n");
    assert_eq!(list.tasks[0].prompt.as_deref(), Some("Role: x"));
    assert_eq!(list.warnings.len(), 1);
    // A one-line comment, a comment opening and closing later, a commented-out task.
    let text = "\
<!-- _Requirements: 9.9_ -->
- [ ] 1. a
<!--
- [ ] 2. commented out
_Prompt: not this_
-->
- [ ] 3. c
";
    let list = parse(text);
    assert_eq!(ids(&list), ["1", "3"]);
    assert!(list.warnings.is_empty(), "{:?}", list.warnings);
    assert_eq!(list.tasks[0].prompt, None);
    // A comment that never closes hides the rest, with a warning.
    let list = parse("- [ ] 1. a\n<!-- note\n- [ ] 2. b\n");
    assert_eq!(ids(&list), ["1"]);
    assert_eq!(list.warnings.len(), 1);
    assert_eq!(list.warnings[0].line, 2);
}

/// Every construct, all ticked: complete, nothing for an agent to do.
#[test]
fn finished_specs_in_every_form_read_complete() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/spec/complete");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert!(names.len() >= 7, "{names:?}");
    for name in names {
        let text = fixture(&format!("complete/{name}"));
        let list = parse(&text);
        assert!(list.counts().is_complete(), "{name}: {:?}", list.counts());
        assert!(list.next_task().is_none(), "{name}");
        assert!(list.warnings.is_empty(), "{name}: {:?}", list.warnings);
        assert_eq!(summarize(&text), list.summary(), "{name}");
    }
}

/// Kiro nests subtasks under a numbered parent: the agent is sent to the first unfinished
/// subtask, never to the parent while its subtasks are open.
#[test]
fn the_next_task_is_the_first_open_subtask_of_an_open_parent() {
    let list = authored_text(
        "# Implementation Plan\n\n\
         - [x] 1. Set up the project\n\
         - [ ] 2. Implement the data models\n\
         \x20 - [x] 2.1 Create the interfaces\n\
         \x20 - [ ] 2.2 Implement the User model\n\
         \x20 - [ ]* 2.3 Write property tests\n\
         - [ ] 3. Wire the API\n\
         - [ ] 12. Unrelated twelve\n",
    );
    assert_eq!(list.next_task().map(|t| t.id.as_str()), Some("2.2"));
    let list = authored_text(
        "# Tasks\n\n- [x] 1. A\n- [ ] 2. B\n  - [x] 2.1 B1\n  - [x] 2.2 B2\n- [ ] 20. C\n",
    );
    // Every subtask done: the parent itself is what is left (and 20 is not a subtask of 2).
    assert_eq!(list.next_task().map(|t| t.id.as_str()), Some("2"));
    let list = authored_text("# Tasks\n\n- [-] 3. C\n  - [ ] 3.1 C1\n  - [-] 3.2 C2\n- [ ] 4. D\n");
    assert_eq!(
        list.next_task().map(|t| t.id.as_str()),
        Some("3.2"),
        "in progress first"
    );
}
