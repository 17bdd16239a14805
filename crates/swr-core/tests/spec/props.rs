use proptest::prelude::*;
use swr_core::spec::{TaskList, parse, summarize};

fn check(text: &str, list: &TaskList) {
    let c = list.counts();
    assert_eq!(c.total, c.done + c.in_progress + c.pending + c.blocked);
    let o = list.optional_counts();
    assert_eq!(c.total + o.total, list.tasks.len());
    assert_eq!(list.counts_with(true).total, list.tasks.len());
    // The listing path reads every text as the full parse does.
    assert_eq!(summarize(text), list.summary());
    // Line numbers point inside the text (a lone trailing terminator adds no line).
    let max_line = text.split_terminator(['\n']).count().max(1) + text.matches('\r').count() + 1;
    for t in &list.tasks {
        assert!(t.line >= 1 && t.line <= max_line, "task line {}", t.line);
        assert!(!t.id.is_empty());
        for cr in &t.criteria {
            assert!(cr.line > t.line || cr.line >= 1);
        }
    }
    for w in &list.warnings {
        assert!(w.line >= 1 && w.line <= max_line, "warning line {}", w.line);
    }
    for c in &list.checklists {
        assert!(!c.items.is_empty());
        for i in &c.items {
            assert!(i.line >= 1 && i.line <= max_line, "item line {}", i.line);
        }
    }
    let _ = list.progress_summary();
}

fn markdownish_line() -> impl Strategy<Value = String> {
    let body = prop_oneof![
        Just("- [ ] 1. Task".to_string()),
        Just("- [x] 1.2 Done".to_string()),
        Just("* [-] 2\\. Doing".to_string()),
        Just("- [~] 3. Stuck".to_string()),
        Just("- [X] criterion".to_string()),
        Just("- [?] odd".to_string()),
        Just("- [ ]".to_string()),
        Just("- _Prompt: Role: x | Task: y_".to_string()),
        Just("- _Prompt: unclosed".to_string()),
        Just("continues_".to_string()),
        Just("- _Requirements: 1.1_".to_string()),
        Just("- _Leverage: a.ts_".to_string()),
        Just("- _Blocked: why_".to_string()),
        Just("- File: a.rs, b.rs (new)".to_string()),
        Just("## Tasks".to_string()),
        Just("## Other".to_string()),
        Just("### TASK-1: Heading".to_string()),
        Just("**Status**: in progress".to_string()),
        Just("**Status**: ???".to_string()),
        Just("```".to_string()),
        Just("~~~~".to_string()),
        // The constructs authors write (task headings, status boxes, checklists, ids,
        // optional tasks, prompts over several lines, comments).
        Just("## Task 3: Auth flow".to_string()),
        Just("### Task 1.1: Title".to_string()),
        Just("#### Acceptance Criteria".to_string()),
        Just("### 1.1 Login form".to_string()),
        Just("## Verification Checklist".to_string()),
        Just("## Phase 2 (Future)".to_string()),
        Just("**Status:** [x]".to_string()),
        Just("Status: [-]".to_string()),
        Just("- [ ] 3.13a. Fix".to_string()),
        Just("- [x] A1: Audit".to_string()),
        Just("- [ ] 🔴 1.1.1 Urgent".to_string()),
        Just("- [ ]* 2.3 Optional".to_string()),
        Just("- [x]* optional criterion".to_string()),
        Just("- _Prompt:_".to_string()),
        Just("  - _Role: x_".to_string()),
        Just("<!-- note -->".to_string()),
        Just("<!--".to_string()),
        Just("-->".to_string()),
        Just("".to_string()),
        Just("\u{feff}".to_string()),
        "[ -~]{0,20}",
        "\\PC{0,12}",
    ];
    (0usize..12, prop_oneof![Just(" "), Just("\t")], body)
        .prop_map(|(n, ws, body)| format!("{}{body}", ws.repeat(n)))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn never_panics_on_arbitrary_text(text in "\\PC*") {
        let list = parse(&text);
        check(&text, &list);
    }

    #[test]
    fn never_panics_on_arbitrary_bytes_as_lossy_text(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let list = parse(&text);
        check(&text, &list);
    }

    #[test]
    fn never_panics_on_markdownish_mixes(
        lines in proptest::collection::vec(markdownish_line(), 0..40),
        eol in prop_oneof![Just("\n"), Just("\r\n"), Just("\r")],
        bom in any::<bool>(),
    ) {
        let mut text = if bom { "\u{feff}".to_string() } else { String::new() };
        text.push_str(&lines.join(eol));
        let list = parse(&text);
        check(&text, &list);
        // Same document with LF endings parses to the same tasks.
        let lf = parse(&text.replace("\r\n", "\n").replace('\r', "\n"));
        prop_assert_eq!(&lf.tasks, &list.tasks);
    }
}
