//! The tasks.md parser. One forward pass over the lines, no regex, no panics: anything odd
//! becomes a [`ParseWarning`].
//!
//! - [`lines`] reads one line or one value (headings, checkboxes, ids, statuses, file lists).
//! - [`builder`] is the pass's state: it records each checkbox or heading that may be a task,
//!   as a [`Task`] for [`parse`] or as a few borrowed fields for [`summarize`] ([`record`]),
//!   with what cannot be decided yet.
//! - [`resolve`] decides that once the whole file is read: a task heading titles a group only
//!   if a numbered checkbox shows up beneath it, and unnumbered checkboxes are checklists only
//!   in a file that has numbered tasks. In the usual file nothing is left to decide and the
//!   recorded tasks are the result, with no second copy.
//!
//! It also records where each task's status is written ([`StatusSite`]) so that
//! [`super::set_task_status`] can change exactly that text and nothing else.

mod builder;
mod lines;
mod record;
mod resolve;

use builder::Builder;
use lines::{Fence, heading, heading_task, is_tasks_title, split_indent, trim_end};
pub(super) use lines::{status_box, status_word};
// The frozen parser shares the `Files:` splitter (see parse_reference.rs).
#[cfg(test)]
use lines::split_files;
use record::{Counted, Record};

use super::{Task, TaskList, TaskSummary};

/// Where a task's status is written, as byte offsets into the parsed text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StatusSite {
    /// The checkbox mark character (always one ASCII byte for a recognised mark).
    Checkbox { offset: usize },
    /// The value of a `**Status**: …` line under a task heading.
    HeadingValue { start: usize, end: usize },
    /// A task heading with no status line: a status line may be inserted here (just after
    /// the heading line and its terminator).
    HeadingMissing { insert_at: usize },
}

/// Rules the frozen first parser (`parse_reference.rs`) did not have. The parser notes each
/// one whose reading can differ from that parser's, so that the differential tests compare
/// the two on every input where none applied; the fixture tests say what each rule reads.
pub(crate) mod rule {
    /// An HTML comment was skipped.
    pub const COMMENT: u16 = 1 << 0;
    /// A Kiro optional checkbox `- [ ]* …`.
    pub const OPTIONAL: u16 = 1 << 1;
    /// An id form the MCP server does not read (`3.13a.`, `A1:`, `1:`, `🔴 1.1`, `**1.2**`,
    /// `Task 1.2:`).
    pub const AUTHOR_ID: u16 = 1 << 2;
    /// A heading read by the new heading rules: a task heading that titles a group, a
    /// numbered sub-heading owning checkboxes, a deeper heading inside a task, a state taken
    /// from criteria, a task heading that keeps a `## Tasks` section open.
    pub const HEADING: u16 = 1 << 3;
    /// Unnumbered checkboxes read as a checklist.
    pub const CHECKLIST: u16 = 1 << 4;
    /// A `_Prompt:` read past a blank line or a bullet, or made of sub-bullets.
    pub const PROMPT: u16 = 1 << 5;
    /// A checkbox in an ordered list item (`1. [ ] …`), warned about.
    pub const ORDERED: u16 = 1 << 6;
}

pub(crate) struct Parsed {
    pub list: TaskList,
    /// One per task, same order as `list.tasks`.
    pub sites: Vec<StatusSite>,
    /// The [`rule`]s applied.
    #[cfg_attr(not(test), allow(dead_code))]
    pub rules: u16,
}

/// Parses tasks.md text. Never fails: odd input yields warnings with 1-based line numbers.
///
/// Rules (the README's "tasks.md" section says where they differ from the MCP server and the
/// Python tool): `-`/`*` checkbox items at any indent; `[ ]` pending, `[-]` in progress,
/// `[x]`/`[X]` done, `[~]` blocked, `]*` optional; the author's id (`1`, `1.2`, `1.`, `1\.`,
/// `3.13a.`, `A1:`, `🔴 1.1`); an unnumbered checkbox nested under a task (or beneath its
/// heading) is an acceptance criterion; other unnumbered checkboxes are tasks with a
/// positional id, or checklists when the file has numbered tasks and they sit in a section of
/// their own; task headings (`### Task 1:`) with a `Status:` line or criteria, or titling a
/// group of numbered checkboxes; numbered sub-headings (`### 1.1 Login`) lend their id to the
/// checkboxes beneath; only `## Tasks` sections count when one exists; fenced code blocks and
/// HTML comments are skipped.
pub fn parse(text: &str) -> TaskList {
    scan::<Task>(text).finish(false).list
}

/// What [`parse`] would count, without building the tasks: equal to `parse(text).summary()`.
pub fn summarize(text: &str) -> TaskSummary {
    scan::<Counted>(text).summary()
}

pub(crate) fn parse_with_sites(text: &str) -> Parsed {
    scan::<Task>(text).finish(true)
}

/// Finds where lines end: `\n`, `\r\n`, or a lone `\r` when the text holds any.
#[derive(Clone, Copy)]
struct LineEnds {
    cr: bool,
    /// memchr's free functions choose their CPU path at every call, a cost comparable to the
    /// search itself on lines of 50 bytes: the AVX2 searchers are made once instead.
    #[cfg(target_arch = "x86_64")]
    avx2: Option<(
        memchr::arch::x86_64::avx2::memchr::One,
        memchr::arch::x86_64::avx2::memchr::Two,
    )>,
}

impl LineEnds {
    fn new(text: &[u8]) -> LineEnds {
        LineEnds {
            // One SIMD scan of the whole text spares a two-byte search on every line of the
            // usual file, which has no `\r`.
            cr: memchr::memchr(b'\r', text).is_some(),
            #[cfg(target_arch = "x86_64")]
            avx2: memchr::arch::x86_64::avx2::memchr::One::new(b'\n')
                .zip(memchr::arch::x86_64::avx2::memchr::Two::new(b'\n', b'\r')),
        }
    }

    #[inline(always)]
    fn find(&self, hay: &[u8]) -> Option<usize> {
        #[cfg(target_arch = "x86_64")]
        if let Some((one, two)) = &self.avx2 {
            return if self.cr {
                two.find(hay)
            } else {
                one.find(hay)
            };
        }
        if self.cr {
            memchr::memchr2(b'\n', b'\r', hay)
        } else {
            memchr::memchr(b'\n', hay)
        }
    }

    /// The line starting at `pos`: its length and the length of its terminator (0 at the end
    /// of the text).
    #[inline(always)]
    fn at(&self, bytes: &[u8], pos: usize) -> (usize, usize) {
        let rest = bytes.get(pos..).unwrap_or_default();
        match self.find(rest) {
            Some(i) if rest[i] == b'\r' && rest.get(i + 1) == Some(&b'\n') => (i, 2),
            Some(i) => (i, 1),
            None => (rest.len(), 0),
        }
    }
}

/// The line pass.
fn scan<'a, R: Record<'a>>(text: &'a str) -> Builder<'a, R> {
    let bytes = text.as_bytes();
    let ends = LineEnds::new(bytes);
    let mut b = Builder::new(text, ends);
    if R::FULL {
        // Every task line holds a `[`: reserving up front avoids re-copying a large Vec of
        // tasks (and glibc's costly frees of the old buffers) on big files.
        let estimate = memchr::memchr_iter(b'[', bytes).count().min(text.len() / 8);
        b.records.reserve(estimate);
        b.extras.reserve(estimate);
    }
    let mut fence: Option<Fence> = None;
    let mut comment: Option<usize> = None;
    let mut scope = Scope::Whole;
    let mut pos = if text.starts_with('\u{feff}') { 3 } else { 0 };
    let mut no = 0;
    while pos < bytes.len() {
        no += 1;
        let (len, term) = ends.at(bytes, pos);
        // Terminators are ASCII, so these are char boundaries.
        let Some(line) = text.get(pos..pos + len) else {
            break;
        };
        pos += len + term;

        let (indent, rest) = split_indent(line);
        let first = rest.as_bytes().first().copied();
        if let Some(f) = fence {
            if first == Some(f.ch) && f.closes(rest) {
                fence = None;
            }
            continue;
        }
        if comment.is_some() {
            if memchr::memmem::find(rest.as_bytes(), b"-->").is_some() {
                comment = None;
            }
            continue;
        }
        let Some(first) = first else {
            // Blank: only an open prompt cares (it is never a heading).
            if scope != Scope::Out {
                b.line(no, pos, indent, rest);
            }
            continue;
        };
        if matches!(first, b'`' | b'~')
            && let Some(f) = Fence::open(rest, no)
        {
            b.end_prompt();
            fence = Some(f);
            continue;
        }
        if first == b'<' && rest.starts_with("<!--") {
            // The template's instructions (`<!-- … _Prompt: … -->`) and commented-out items
            // are not read, as a Markdown viewer does not show them.
            b.end_prompt();
            b.rules |= rule::COMMENT;
            if memchr::memmem::find(&rest.as_bytes()[4..], b"-->").is_none() {
                comment = Some(no);
            }
            continue;
        }
        if first == b'#'
            && let Some((level, title)) = heading(indent, rest)
            && level <= 2
        {
            // Only `## Tasks` sections count once one exists. The first one found throws
            // away what was read before it, as if that text had never been in scope.
            if level == 2 && is_tasks_title(title) {
                if scope == Scope::Whole {
                    b.reset();
                }
                scope = Scope::In;
            } else if scope == Scope::In {
                if heading_task(title).is_some() {
                    // `## Task 3: …` is the section's content, not the next section.
                    b.rules |= rule::HEADING;
                } else {
                    scope = Scope::Out;
                }
            }
        }
        if scope != Scope::Out {
            b.line(no, pos, indent, trim_end(rest));
        }
    }
    if let Some(f) = fence {
        b.warn(
            f.line,
            "code fence never closes; the rest of the file was read as code".to_string(),
        );
    }
    if let Some(line) = comment {
        b.warn(
            line,
            "HTML comment never closes (no `-->`); the rest of the file was not read".to_string(),
        );
    }
    b.end_prompt();
    b
}

/// Which lines are read: all of them until a `## Tasks` heading is seen, then only those
/// inside `## Tasks` sections (up to the next heading of level 1 or 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scope {
    Whole,
    In,
    Out,
}

#[cfg(test)]
#[path = "../parse_reference.rs"]
mod reference;

/// Differential tests: the live parser against the frozen pre-rewrite parser, on every input
/// to which the live parser applied none of the rules added since (see [`super::rule`]): the
/// readings those rules changed on purpose are tested by the fixture tests instead. The
/// fixtures below must be compared, and so must most generated inputs, so that the rule flags
/// cannot quietly excuse a difference.
#[cfg(test)]
mod same_as_reference {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use proptest::prelude::*;
    use proptest::test_runner::{Config, TestRunner};

    /// Compares the two parsers on `text`; false when a new rule applied (nothing compared).
    fn same(text: &str) -> bool {
        let new = super::parse_with_sites(text);
        if new.rules != 0 {
            return false;
        }
        let old = super::reference::parse_with_sites(text);
        assert_eq!(new.list, old.list, "text: {text:?}");
        assert_eq!(new.sites, old.sites, "text: {text:?}");
        true
    }

    fn assert_same(text: &str) {
        assert!(same(text), "a new rule applied, nothing compared: {text:?}");
    }

    /// Runs `cases` generated inputs through [`same`]; at least `min_percent` of them must
    /// have been compared.
    fn run_compared(strategy: impl Strategy<Value = String>, cases: u32, min_percent: usize) {
        let compared = AtomicUsize::new(0);
        let mut runner = TestRunner::new(Config {
            cases,
            failure_persistence: None,
            ..Config::default()
        });
        let result = runner.run(&strategy, |text| {
            if same(&text) {
                compared.fetch_add(1, Ordering::Relaxed);
            }
            Ok(())
        });
        if let Err(e) = result {
            panic!("{e}");
        }
        let compared = compared.into_inner();
        assert!(
            compared * 100 >= cases as usize * min_percent,
            "only {compared} of {cases} inputs compared"
        );
    }

    #[test]
    fn fixtures_and_edge_cases() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/spec");
        for name in ["mcp_tasks.md", "mixed_section.md", "python_heading.md"] {
            let text = std::fs::read_to_string(format!("{dir}/{name}")).expect("fixture");
            assert_same(&text);
            assert_same(&text.replace('\n', "\r\n"));
            assert_same(&text.replace('\n', "\r"));
            assert_same(&format!("\u{feff}{text}"));
        }
        for text in [
            "",
            "\n",
            "\r\n\r",
            "\u{feff}",
            "- [ ] 1. a\u{a0}\n  - _Prompt: x\u{3000}_\u{85}\n",
            "- [ ] 1. a\x0b\n\x0b- [ ] 2. b\x0c\n",
            "## Tasks\n- [ ] 1. a\n## Other\n- [ ] 2. b\n## Tasks\n- [ ] 3. c",
            "- [ ] 0. pre\n```\n## Tasks\n```\n## TASKS (v2)\n- [ ] 1. a\n# Top\n- [ ] 2. b",
            "- [ ] 1. a\n  - _Prompt: open\n## Other\n## Tasks\n- [ ] 2. b\n",
            "## Tasks\n- [ ] 1. a\n  - _Prompt: open\n## Other\nmore\n## Tasks\n",
            "### TASK-1: A\n**Status**: done\n### Task 2: B\n- **Status:** wip\n### task_3: C\n",
            "- [ ] 1. a\n  - **Files**: `a.rs` (new), b.rs, (x)\n  - File: c.rs\n  - files: d\n",
            "- [ ] a\n- [ ] b\n- [ ] 2. c\n- [é] d\n- [ ]\n- [x]  \n*\t[X]\t1\\.\tt",
        ] {
            assert_same(text);
        }
    }

    /// Each rule flag stands for a reading that differs: on the fixtures of the new
    /// constructs, the flags are raised and the frozen parser does read them otherwise.
    #[test]
    fn new_constructs_are_flagged_and_read_differently() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/spec/authored");
        for (name, flag) in [
            ("task_headings.md", super::rule::HEADING),
            ("heading_state.md", super::rule::HEADING),
            ("checklists.md", super::rule::CHECKLIST),
            ("ids.md", super::rule::AUTHOR_ID),
            ("kiro_optional.md", super::rule::OPTIONAL),
            ("prompts.md", super::rule::COMMENT | super::rule::PROMPT),
        ] {
            let text = std::fs::read_to_string(format!("{dir}/{name}")).expect("fixture");
            let new = super::parse_with_sites(&text);
            assert_eq!(new.rules & flag, flag, "{name}: rules {:#b}", new.rules);
            let old = super::reference::parse_with_sites(&text);
            assert_ne!(new.list, old.list, "{name}");
        }
    }

    fn line() -> impl Strategy<Value = String> {
        let body = prop_oneof![
            Just("- [ ] 1. Task".to_string()),
            Just("- [x] 1.2 Done".to_string()),
            Just("* [-] 2\\. Doing".to_string()),
            Just("- [~] 3. Stuck".to_string()),
            Just("- [X] criterion".to_string()),
            Just("+ [ ] plus".to_string()),
            Just("- [?] odd".to_string()),
            Just("- [é] odd".to_string()),
            Just("- [ ]".to_string()),
            Just("- [ ] 1.2.3\\. deep".to_string()),
            Just("- [ ] 7 .x".to_string()),
            Just("- _Prompt: Role: x | Task: y_".to_string()),
            Just("- _Prompt: unclosed".to_string()),
            Just("_Prompt:_".to_string()),
            Just("continues_".to_string()),
            Just("still going".to_string()),
            Just("- _Requirements: 1.1_".to_string()),
            Just("- _Leverage: a.ts_".to_string()),
            Just("- _Blocked: why_".to_string()),
            Just("- File: a.rs, b.rs (new)".to_string()),
            Just("**Files:** `x.rs`, (gone)".to_string()),
            Just("Purpose: p".to_string()),
            Just("## Tasks".to_string()),
            Just("## tasks (v2) ##".to_string()),
            Just("## Tasksmith".to_string()),
            Just("## Other".to_string()),
            Just("# Top".to_string()),
            Just("####### seven".to_string()),
            Just("### TASK-1: Heading".to_string()),
            Just("### Task 2.1: Heading".to_string()),
            Just("### Task List: no".to_string()),
            Just("**Status**: in progress".to_string()),
            Just("- **Status:** completed".to_string()),
            Just("Status: blocked".to_string()),
            Just("**Status**: ???".to_string()),
            Just("```".to_string()),
            Just("```rust".to_string()),
            Just("``` a`b".to_string()),
            Just("~~~~".to_string()),
            Just("````".to_string()),
            Just("".to_string()),
            Just("\u{feff}".to_string()),
            Just("\u{a0}".to_string()),
            Just("\u{3000}x\u{2003}".to_string()),
            Just("\x0b".to_string()),
            "[ -~]{0,20}",
            "[-*_\\[\\]x~#`: .1-9a-zA-Z\t]{0,16}",
            "\\PC{0,12}",
        ];
        let ws = prop_oneof![
            Just(""),
            Just(" "),
            Just("\t"),
            Just("\u{a0}"),
            Just("  \t")
        ];
        (0usize..10, prop_oneof![Just(" "), Just("\t")], body, ws)
            .prop_map(|(n, indent, body, trail)| format!("{}{body}{trail}", indent.repeat(n)))
    }

    fn markdownish_mix() -> impl Strategy<Value = String> {
        (
            proptest::collection::vec(line(), 0..40),
            prop_oneof![Just("\n"), Just("\r\n"), Just("\r"), Just("\n\r")],
            any::<bool>(),
        )
            .prop_map(|(lines, eol, bom)| {
                let mut text = if bom {
                    "\u{feff}".to_string()
                } else {
                    String::new()
                };
                text.push_str(&lines.join(eol));
                text
            })
    }

    #[test]
    fn same_on_markdownish_mixes() {
        run_compared(markdownish_mix(), 2048, 80);
    }

    #[test]
    fn same_on_arbitrary_text() {
        run_compared("\\PC*", 256, 95);
    }
}
