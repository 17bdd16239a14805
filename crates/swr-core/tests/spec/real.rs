//! Real tasks.md files from public repositories, parsed and counted the way a careful reader
//! counts them. Sources (one stored version of each, copied verbatim):
//!
//! - `real/mia_ai.md`: Akarin-Akari/MIA_AI `.spec-workflow/specs/tasks.md`
//! - `real/trade.md`: Ye-Yu-Mo/trade `.spec-workflow/specs/tasks.md`
//! - `real/ai_demo.md`: lshstyle/ai-demo `.spec-workflow/specs/tasks.md`
//! - `real/git_hooks.md`: DevGuyRash/git-hooks-runner-toolkit
//!   `.spec-workflow/specs/pre-commit-configured-actions/tasks.md`
//! - `real/validation_report.md`: PaiCY-T/LLM-strategy-generator `.spec-workflow/specs/tasks.md`

use swr_core::spec::{TaskCounts, TaskList, TaskStatus, parse};

use crate::fixture;

fn real(name: &str) -> TaskList {
    parse(&fixture(&format!("real/{name}")))
}

fn ids(list: &TaskList) -> Vec<&str> {
    list.tasks.iter().map(|t| t.id.as_str()).collect()
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

/// 24 numbered tasks over four `## Layer` sections split by `---` rules, all pending.
#[test]
fn mia_ai_numbered_tasks_across_sections() {
    let list = real("mia_ai.md");
    assert!(list.warnings.is_empty(), "{:?}", list.warnings);
    assert_eq!(list.counts(), counts(24, 0, 0, 24));
    let expected: Vec<String> = (1..=24).map(|n| n.to_string()).collect();
    assert_eq!(ids(&list), expected);
    assert_eq!(list.tasks[0].files, ["app/llm/base.py"]);
    assert_eq!(list.tasks[0].requirements.as_deref(), Some("R1.3, R1.4"));
    assert_eq!(
        list.tasks[8].leverage.as_deref(),
        Some("`working.py`, `markdown.py`, `sqlite.py`")
    );
}

/// Eight parent tasks with 23 nested subtasks written `1.1.` (trailing dot), fenced code
/// inside list items, and `*Requirements*:` in italics (not metadata).
#[test]
fn trade_nested_subtasks_with_trailing_dot_ids() {
    let list = real("trade.md");
    assert!(list.warnings.is_empty(), "{:?}", list.warnings);
    assert_eq!(list.counts(), counts(31, 0, 0, 31));
    let ids = ids(&list);
    assert_eq!(&ids[..5], ["1", "1.1", "1.2", "1.3", "2"]);
    assert_eq!(ids.last(), Some(&"8.3"));
    assert_eq!(list.tasks[1].title, "更新 Cargo.toml");
    assert_eq!(list.tasks[0].title, "**配置项目依赖和环境**");
    // The ```rust block inside 7.1 holds `// 1. 获取K线数据` lines; none is read as a task.
    let t71 = list.tasks.iter().find(|t| t.id == "7.1").expect("7.1");
    assert!(t71.criteria.is_empty());
}

/// `1.1`-style ids without a dot after them, several `File:` lines per task, and a mermaid
/// graph whose `1.1[...] --> 1.2[...]` lines must not be read.
#[test]
fn ai_demo_dotted_ids_and_mermaid_graph() {
    let list = real("ai_demo.md");
    assert!(list.warnings.is_empty(), "{:?}", list.warnings);
    assert_eq!(list.counts(), counts(21, 0, 0, 21));
    assert_eq!(
        ids(&list),
        [
            "1.1", "1.2", "1.3", "1.4", "2.1", "2.2", "3.1", "3.2", "3.3", "3.4", "3.5", "3.6",
            "4.1", "4.2", "4.3", "4.4", "4.5", "4.6", "5.1", "5.2", "5.3"
        ]
    );
    let t12 = &list.tasks[1];
    assert_eq!(
        t12.files,
        [
            "backend/user-service/pom.xml",
            "backend/user-service/src/main/resources/application.yml"
        ]
    );
    assert!(t12.prompt.as_deref().is_some_and(
        |p| p.starts_with("Role: Java Backend Developer") && p.ends_with("能成功连接 MySQL")
    ));
}

/// A file with no heading at all, `Files:` lists with `(new)` notes, and prompts that quote
/// `_Leverage: …_` in the middle of the line (which must not end the prompt early).
#[test]
fn git_hooks_prompts_quoting_metadata_mid_line() {
    let list = real("git_hooks.md");
    assert!(list.warnings.is_empty(), "{:?}", list.warnings);
    assert_eq!(list.counts(), counts(5, 1, 0, 4));
    assert_eq!(list.tasks[0].status, TaskStatus::Done);
    assert_eq!(
        list.tasks[0].files,
        [
            "lib/watch-configured-actions.sh",
            "examples/watch-configured-actions.sh"
        ]
    );
    let prompt = list.tasks[1].prompt.as_deref().expect("prompt");
    assert!(prompt.starts_with("Role: Git Hooks Engineer"));
    assert!(prompt.ends_with("exits appropriately on matches and failures"));
    assert_eq!(
        list.tasks[1].leverage.as_deref(),
        Some("lib/watch-configured-actions.sh, lib/common.sh")
    );
}

/// A hand-written status report in the heading format (`#### Task 1.1: …`,
/// `**Status**: ✅ Implemented and Tested`). Statuses led by ✅ are done, `⏳ Planned` is
/// pending, and none of them warns.
///
/// Left as is: tasks 1.1 to 2.3 have no `Status:` line of their own (their week's heading
/// says complete and their bullets are ticked with ✅), so they read as pending; a reader
/// would call them done.
#[test]
fn validation_report_heading_tasks_with_emoji_statuses() {
    let list = real("validation_report.md");
    assert!(list.warnings.is_empty(), "{:?}", list.warnings);
    assert_eq!(list.counts(), counts(27, 14, 0, 13));
    let status = |id: &str| {
        list.tasks
            .iter()
            .find(|t| t.id == id)
            .map(|t| t.status)
            .expect(id)
    };
    for id in ["5.1", "5.2", "5.3", "6.3", "6.6", "7.1", "7.5"] {
        assert_eq!(status(id), TaskStatus::Done, "task {id}");
    }
    for id in ["1.1", "2.3", "8.1", "8.7"] {
        assert_eq!(status(id), TaskStatus::Pending, "task {id}");
    }
}
