//! The tasks.md parser. One forward pass over the lines, no regex, no panics: anything odd
//! becomes a [`ParseWarning`].
//!
//! The pass records drafts that borrow from the text, so reading allocates nothing per task.
//! A short resolution step then decides what each draft is, which needs the whole file: a
//! task heading is a group title only once a numbered checkbox shows up beneath it, and
//! unnumbered checkboxes are checklists only in a file that has numbered tasks. [`parse`]
//! copies the result into owned [`Task`]s; [`summarize`] only counts it, which is all a
//! listing of specs needs and costs a fraction of a full parse on large files.
//!
//! It also records where each task's status is written ([`StatusSite`]) so that
//! [`super::set_task_status`] can change exactly that text and nothing else.

use std::borrow::Cow;
use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};

use super::{
    Checklist, ChecklistItem, ChecklistSummary, Criterion, ParseWarning, Task, TaskCounts,
    TaskList, TaskStatus, TaskSummary,
};

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
    // SIMD scans (memchr) over the whole text cost far less than one per-line pass.
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

/// Whether a byte is ASCII and not whitespace in `char::is_whitespace`'s sense (which,
/// unlike `u8::is_ascii_whitespace`, includes the vertical tab).
fn is_solid_ascii(b: u8) -> bool {
    b < 0x80 && !matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// `str::trim_end`, without decoding a char when the last byte settles it.
fn trim_end(s: &str) -> &str {
    match s.as_bytes().last() {
        Some(&b) if !is_solid_ascii(b) => s.trim_end(),
        _ => s,
    }
}

/// `str::trim_start`, without decoding a char when the first byte settles it.
fn trim_start(s: &str) -> &str {
    match s.as_bytes().first() {
        Some(&b) if !is_solid_ascii(b) => s.trim_start(),
        _ => s,
    }
}

/// `str::trim`, without decoding chars when the end bytes settle it.
fn trim(s: &str) -> &str {
    trim_end(trim_start(s))
}

/// Width of the leading whitespace in columns (a tab advances to the next multiple of 4, as
/// CommonMark does) and the rest of the line.
fn split_indent(line: &str) -> (usize, &str) {
    let mut col = 0;
    for (i, b) in line.bytes().enumerate() {
        match b {
            b' ' => col += 1,
            b'\t' => col = (col / 4 + 1) * 4,
            _ => return (col, &line[i..]),
        }
    }
    (col, "")
}

#[derive(Debug, Clone, Copy)]
struct Fence {
    ch: u8,
    len: usize,
    line: usize,
}

impl Fence {
    /// A line opening a fenced code block: 3+ backticks or tildes (at any indent, since
    /// fences inside list items are indented).
    fn open(rest: &str, line: usize) -> Option<Fence> {
        let bytes = rest.as_bytes();
        let ch = *bytes.first()?;
        if ch != b'`' && ch != b'~' {
            return None;
        }
        let len = bytes.iter().take_while(|&&c| c == ch).count();
        if len < 3 || (ch == b'`' && memchr::memchr(b'`', &bytes[len..]).is_some()) {
            return None;
        }
        Some(Fence { ch, len, line })
    }

    fn closes(&self, rest: &str) -> bool {
        let bytes = rest.as_bytes();
        let len = bytes.iter().take_while(|&&c| c == self.ch).count();
        len >= self.len && trim(&rest[len..]).is_empty()
    }
}

/// An ATX heading (`#` to `######`, at most 3 columns of indent): its level and its text
/// without the optional closing `#`s.
fn heading(indent: usize, rest: &str) -> Option<(usize, &str)> {
    if indent > 3 || !rest.starts_with('#') {
        return None;
    }
    let level = rest.bytes().take_while(|&c| c == b'#').count();
    let after = &rest[level..];
    if level > 6 || !(after.is_empty() || after.starts_with([' ', '\t'])) {
        return None;
    }
    let mut text = trim(after);
    let unclosed = text.trim_end_matches('#');
    if unclosed.is_empty() || unclosed.ends_with([' ', '\t']) {
        text = trim_end(unclosed);
    }
    Some((level, text))
}

/// `Tasks`, `TASKS`, `Tasks (v2)`, … but not `Tasksmith`.
fn is_tasks_title(title: &str) -> bool {
    title
        .get(..5)
        .is_some_and(|p| p.eq_ignore_ascii_case("tasks"))
        && title[5..]
            .chars()
            .next()
            .is_none_or(|c| !c.is_alphanumeric())
}

/// `TASK-1: Title`, `Task 2.3: Title`, `task_7: Title`: the Python tool's heading tasks.
/// The id must contain a digit so that `### Task List: …` is not a task.
fn heading_task(title: &str) -> Option<(&str, &str)> {
    if !title.get(..4)?.eq_ignore_ascii_case("task") {
        return None;
    }
    let rest = title[4..].strip_prefix(['-', '_', ' ', '\t'])?.trim_start();
    let colon = rest.find(':')?;
    let id = rest[..colon].trim_end();
    let valid = id.bytes().any(|c| c.is_ascii_digit())
        && id
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'-' | b'_'));
    valid.then(|| (id, rest[colon + 1..].trim()))
}

/// A GFM task-list item: `-` or `*`, whitespace, `[c]`, then whitespace or end of line; or
/// Kiro's optional item, `]*` then whitespace or end of line. Returns the mark, its byte
/// offset in `rest`, whether the item is optional, and the text after `]` (or `]*`).
#[inline(always)]
fn checkbox(rest: &str) -> Option<(char, usize, bool, &str)> {
    let bytes = rest.as_bytes();
    if bytes.len() < 4 || !matches!(bytes[0], b'-' | b'*') || !matches!(bytes[1], b' ' | b'\t') {
        return None;
    }
    let blanks = bytes[1..]
        .iter()
        .take_while(|&&c| matches!(c, b' ' | b'\t'))
        .count();
    let after_bullet = &rest[1 + blanks..];
    let inner = after_bullet.strip_prefix('[')?;
    let mark = inner.chars().next()?;
    let after = inner[mark.len_utf8()..].strip_prefix(']')?;
    let (optional, after) = match after.strip_prefix('*') {
        Some(a) => (true, a),
        None => (false, after),
    };
    if !(after.is_empty() || after.starts_with([' ', '\t'])) {
        return None;
    }
    let offset = rest.len() - after_bullet.len() + 1;
    Some((mark, offset, optional, after))
}

/// Splits a leading task id off a checkbox text, as the MCP server's
/// `^(\d+(?:\.\d+)*)\s*\\?\.?\s+(.+)` does (also accepting an id with no title), and also
/// `1: Title` and a one-letter suffix before a `.` or `:` (`3.13a. Title`). The flag says
/// whether one of those two extensions was needed.
fn split_id(text: &str) -> Option<(&str, &str, bool)> {
    let b = text.as_bytes();
    let mut i = 0;
    loop {
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == start {
            return None;
        }
        if i + 1 < b.len() && b[i] == b'.' && b[i + 1].is_ascii_digit() {
            i += 1;
            continue;
        }
        break;
    }
    let mut extended = false;
    // `3.13a.`: a letter suffix, only before punctuation, so `1.5x faster` stays a title.
    if i + 1 < b.len() && b[i].is_ascii_lowercase() && matches!(b[i + 1], b'.' | b':') {
        i += 1;
        extended = true;
    }
    let id_end = i;
    let skip_ws = |mut j: usize| {
        while j < b.len() && matches!(b[j], b' ' | b'\t') {
            j += 1;
        }
        j
    };
    let mut j = skip_ws(i);
    let ws_before = j > i;
    let mut punct = false;
    if j < b.len() && b[j] == b'\\' {
        j += 1;
        punct = true;
    }
    if j < b.len() && b[j] == b'.' {
        j += 1;
        punct = true;
    } else if !punct && j == i && j < b.len() && b[j] == b':' {
        j += 1;
        punct = true;
        extended = true;
    }
    let k = skip_ws(j);
    let separated = k == b.len() || k > j || (!punct && ws_before);
    if !separated {
        return None;
    }
    Some((&text[..id_end], trim_end(&text[k..]), extended))
}

/// `A1: Title`, `T2.3. Title`: one to three capitals, a number, then `:` or `.` and
/// whitespace (so that `V2 migration` stays a title).
fn letter_id(text: &str) -> Option<(&str, &str)> {
    let b = text.as_bytes();
    let letters = b
        .iter()
        .take(4)
        .take_while(|c| c.is_ascii_uppercase())
        .count();
    if letters == 0 || letters > 3 {
        return None;
    }
    let (num, rest, _) = split_id(&text[letters..])?;
    let id = &text[..letters + num.len()];
    let sep = b.get(id.len()).copied();
    if !matches!(sep, Some(b':' | b'.')) {
        return None;
    }
    Some((id, rest))
}

/// The author's id at the start of a checkbox's or a heading's text, and the title after it:
/// the MCP server's forms through [`split_id`], else `A1:`, `Task 1.2:`, `**1.2**`, or any of
/// these after leading emoji markers (`🔴 1.1.1 Title`). The flag says whether the MCP server
/// would not have read that id.
#[inline(always)]
fn author_id(text: &str) -> Option<(&str, &str, bool)> {
    if text.as_bytes().first().is_some_and(u8::is_ascii_digit) {
        return split_id(text);
    }
    let mut s = text;
    // Priority and status markers before the id: `🔴`, `⚠️`, `✅`.
    for _ in 0..2 {
        if s.as_bytes().first().is_none_or(|&c| c < 0x80) {
            break;
        }
        let Some(end) = s.find([' ', '\t']) else {
            break;
        };
        if !s[..end]
            .chars()
            .all(|c| !c.is_ascii() && !c.is_alphanumeric())
        {
            break;
        }
        s = trim_start(&s[end..]);
    }
    if let Some(inner) = s.strip_prefix("**") {
        // `**1.2** Title`, `**1.2:** Title`, `**Task 1.2:** Title`, `**1.2 Title**`.
        let close = inner.find("**")?;
        let (id, title) = bare_id(&inner[..close])?;
        let after = trim(inner[close + 2..].trim_start_matches(':'));
        return match (title.is_empty(), after.is_empty()) {
            (true, _) => Some((id, after, true)),
            (false, true) => Some((id, title, true)),
            (false, false) => None,
        };
    }
    bare_id(s).map(|(id, title)| (id, title, true))
}

fn bare_id(s: &str) -> Option<(&str, &str)> {
    match s.as_bytes().first()? {
        b'0'..=b'9' => split_id(s).map(|(id, title, _)| (id, title)),
        b'T' | b't' if heading_task(s).is_some() => heading_task(s),
        _ => letter_id(s),
    }
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &s[prefix.len()..])
}

/// `Key:` with optional bold in either place (`**Key**:`, `**Key:**`): the value after it.
fn labelled<'a>(s: &'a str, key: &str) -> Option<&'a str> {
    let s = s.strip_prefix("**").unwrap_or(s);
    let rest = strip_prefix_ci(s, key)?;
    let rest = rest.strip_prefix("**").unwrap_or(rest);
    let rest = rest.strip_prefix(':')?;
    let rest = rest.strip_prefix("**").unwrap_or(rest);
    Some(trim(rest))
}

/// A `**Status**:` value of a task heading: a checkbox (`[x]`, `[-] In progress`) or words.
pub(super) fn status_word(value: &str) -> Option<TaskStatus> {
    if let Some(status) = status_box(value) {
        return Some(status);
    }
    let v = value.trim_start_matches(|c: char| !c.is_alphanumeric());
    let v: String = v
        .chars()
        .take(16)
        .map(|c| match c {
            '-' | '_' => ' ',
            c => c.to_ascii_lowercase(),
        })
        .collect();
    let any = |words: &[&str]| words.iter().any(|w| v.starts_with(w));
    if any(&[
        "in progress",
        "inprogress",
        "wip",
        "started",
        "ongoing",
        "doing",
    ]) {
        Some(TaskStatus::InProgress)
    } else if any(&["pending", "todo", "to do", "not started", "open", "planned"]) {
        Some(TaskStatus::Pending)
    } else if any(&["completed", "complete", "done", "finished"]) {
        Some(TaskStatus::Done)
    } else if any(&["blocked"]) {
        Some(TaskStatus::Blocked)
    } else {
        status_symbol(value)
    }
}

/// A status value written as a checkbox: `[x]`, `[ ] Pending`, `[~]`.
pub(super) fn status_box(value: &str) -> Option<TaskStatus> {
    let inner = value.strip_prefix('[')?;
    let mark = inner.chars().next()?;
    let after = inner[mark.len_utf8()..].strip_prefix(']')?;
    if !(after.is_empty() || after.starts_with([' ', '\t'])) {
        return None;
    }
    TaskStatus::from_mark(mark)
}

/// A status given by its leading symbol when its words say nothing we know: real heading-format
/// files write `**Status**: ✅ Implemented and Tested` or `✅ Validated`, and reading those as
/// pending (with a warning each) would keep a finished spec running forever.
fn status_symbol(value: &str) -> Option<TaskStatus> {
    match value.trim_start().chars().next()? {
        '✅' | '✔' | '☑' | '✓' => Some(TaskStatus::Done),
        '🚧' | '🔄' => Some(TaskStatus::InProgress),
        _ => None,
    }
}

/// Removes one list bullet (`- `, `* `, `+ `) from a line's content.
fn strip_bullet(content: &str) -> &str {
    let b = content.as_bytes();
    if b.len() >= 2 && matches!(b[0], b'-' | b'*' | b'+') && matches!(b[1], b' ' | b'\t') {
        trim_start(&content[2..])
    } else {
        content
    }
}

fn is_bullet(content: &str) -> bool {
    let b = content.as_bytes();
    b.len() >= 2 && matches!(b[0], b'-' | b'*' | b'+') && matches!(b[1], b' ' | b'\t')
}

/// Whether a line ends a multi-line `_Prompt:` that never closes (the MCP server stops at a
/// bullet, a `Files:` or a `Purpose:` line; a heading ends it too).
fn ends_prompt(content: &str) -> bool {
    is_bullet(content) || content.starts_with('#') || is_file_or_purpose(content)
}

fn is_file_or_purpose(s: &str) -> bool {
    strip_prefix_ci(s, "file").is_some_and(|r| r.starts_with(':') || r.starts_with("s:"))
        || strip_prefix_ci(s, "purpose:").is_some()
}

/// A metadata line (after an optional bullet): never part of another item's prompt.
fn is_metadata_line(content: &str) -> bool {
    let s = strip_bullet(content);
    is_file_or_purpose(s)
        || ["_Prompt:", "_Requirements:", "_Leverage:", "_Blocked:"]
            .iter()
            .any(|k| s.starts_with(k))
}

/// File paths from a `Files:` value: separated by commas outside parentheses and backticks;
/// a path in backticks is the text between them, whatever note follows it; notes in `( )` or
/// full-width `（ ）` (as in `` `pom.xml`（添加 `jjwt`）``, seen in real files) are dropped.
pub(super) fn split_files(value: &str, out: &mut Vec<String>) {
    let b = value.as_bytes();
    let mut depth = 0usize;
    let mut in_code = false;
    let mut start = 0;
    // Every delimiter is ASCII except the full-width parentheses, U+FF08/U+FF09
    // (EF BC 88/89 in UTF-8): a byte scan finds them all without decoding chars.
    for (i, &c) in b.iter().enumerate() {
        match c {
            b'`' => in_code = !in_code,
            b'(' if !in_code => depth += 1,
            b')' if !in_code => depth = depth.saturating_sub(1),
            0xEF if !in_code && b.get(i + 1) == Some(&0xBC) => match b.get(i + 2) {
                Some(0x88) => depth += 1,
                Some(0x89) => depth = depth.saturating_sub(1),
                _ => {}
            },
            b',' if !in_code && depth == 0 => {
                push_file(&value[start..i], out);
                start = i + 1;
            }
            _ => {}
        }
    }
    push_file(&value[start..], out);
}

fn push_file(piece: &str, out: &mut Vec<String>) {
    let piece = trim(piece);
    if !piece
        .bytes()
        .any(|c| matches!(c, b'`' | b'(' | b')' | 0xEF))
    {
        // The usual plain path: nothing to strip.
        if !piece.is_empty() {
            out.push(piece.to_string());
        }
        return;
    }
    if let Some(rest) = piece.strip_prefix('`')
        && let Some(end) = rest.find('`')
    {
        let path = trim(&rest[..end]);
        if !path.is_empty() {
            out.push(path.to_string());
        }
        return;
    }
    let mut path = String::with_capacity(piece.len());
    let mut depth = 0usize;
    for c in piece.chars() {
        match c {
            '(' | '（' => depth += 1,
            ')' | '）' => depth = depth.saturating_sub(1),
            c if depth == 0 => path.push(c),
            _ => {}
        }
    }
    let path = trim(trim(&path).trim_matches('`'));
    if !path.is_empty() {
        out.push(path.to_string());
    }
}

/// Byte offset of `sub` inside `base`; `sub` must be a subslice of `base`.
fn offset_in(base: &str, sub: &str) -> usize {
    (sub.as_ptr() as usize).saturating_sub(base.as_ptr() as usize)
}

/// How a multi-line `_Prompt:` goes on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PromptMode {
    /// Up to and including this line, the first later one ending in `_` (found by looking
    /// ahead when the prompt opened).
    Until(usize),
    /// No line closes it: it ends where the MCP server ends it (a blank line, a bullet, a
    /// `Files:` or `Purpose:` line), with a warning.
    Unclosed,
    /// `_Prompt:_` followed by sub-bullets deeper than this indent (`- _Role: …_`,
    /// `- _Task: …_`): one field each, joined with ` | `.
    Fields(usize),
}

struct PendingPrompt {
    record: usize,
    line: usize,
    text: String,
    mode: PromptMode,
}

/// Metadata keys whose repeated lines are joined.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Joined {
    Requirements,
    Leverage,
    Blocked,
}

/// What the line pass records for each checkbox or heading that may be a task: the [`Task`]
/// itself for [`parse`], so that the usual file needs no second copy; a few borrowed fields
/// for [`summarize`], so that counting allocates nothing per task. Metadata setters are
/// no-ops for the latter.
trait Record<'a>: Sized {
    /// Whether the record keeps metadata: lets the line pass skip reading values that
    /// [`summarize`] would throw away.
    const FULL: bool;
    fn new(id: &'a str, title: &'a str, status: TaskStatus, line: usize, optional: bool) -> Self;
    fn id(&self) -> &str;
    fn status(&self) -> TaskStatus;
    fn set_status(&mut self, status: TaskStatus);
    fn line(&self) -> usize;
    fn set_prompt(&mut self, prompt: Cow<'a, str>);
    fn join(&mut self, key: Joined, value: &'a str);
    fn add_files(&mut self, value: &'a str);
}

impl<'a> Record<'a> for Task {
    const FULL: bool = true;
    #[inline(always)]
    fn new(id: &'a str, title: &'a str, status: TaskStatus, line: usize, optional: bool) -> Task {
        Task {
            id: id.to_string(),
            title: title.to_string(),
            status,
            line,
            optional,
            prompt: None,
            requirements: None,
            leverage: None,
            blocked_reason: None,
            files: Vec::new(),
            criteria: Vec::new(),
        }
    }

    fn id(&self) -> &str {
        &self.id
    }

    fn status(&self) -> TaskStatus {
        self.status
    }

    fn set_status(&mut self, status: TaskStatus) {
        self.status = status;
    }

    fn line(&self) -> usize {
        self.line
    }

    fn set_prompt(&mut self, prompt: Cow<'a, str>) {
        self.prompt = Some(prompt.into_owned());
    }

    /// Repeated `_Requirements:` (etc.) lines accumulate, comma separated.
    #[inline(always)]
    fn join(&mut self, key: Joined, value: &'a str) {
        let field = match key {
            Joined::Requirements => &mut self.requirements,
            Joined::Leverage => &mut self.leverage,
            Joined::Blocked => &mut self.blocked_reason,
        };
        match field {
            Some(existing) => {
                existing.push_str(", ");
                existing.push_str(value);
            }
            None => *field = Some(value.to_string()),
        }
    }

    fn add_files(&mut self, value: &'a str) {
        split_files(value, &mut self.files);
    }
}

/// The part of a task [`summarize`] needs.
struct Counted<'a> {
    id: &'a str,
    line: usize,
    status: TaskStatus,
    optional: bool,
}

impl<'a> Record<'a> for Counted<'a> {
    const FULL: bool = false;
    fn new(id: &'a str, _: &'a str, status: TaskStatus, line: usize, optional: bool) -> Self {
        Counted {
            id,
            line,
            status,
            optional,
        }
    }

    fn id(&self) -> &str {
        self.id
    }

    fn status(&self) -> TaskStatus {
        self.status
    }

    fn set_status(&mut self, status: TaskStatus) {
        self.status = status;
    }

    fn line(&self) -> usize {
        self.line
    }

    fn set_prompt(&mut self, _: Cow<'a, str>) {}

    fn join(&mut self, _: Joined, _: &'a str) {}

    fn add_files(&mut self, _: &'a str) {}
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Checkbox,
    /// `### Task 3: …`
    TaskHeading,
    /// `### 1.1 Login form`
    NumberedHeading,
}

/// What the parser needs to know of a record besides the task itself; one per record, so
/// kept small.
#[derive(Debug, Clone, Copy)]
struct Extra {
    /// Checkboxes: the byte offset of the mark.
    offset: usize,
    section: usize,
    /// Headings: index into `Builder::heads`.
    head: u32,
    kind: Kind,
}

/// States of the unnumbered checkboxes beneath a heading.
#[derive(Debug, Clone, Copy, Default)]
struct Tally {
    total: u32,
    done: u32,
    in_progress: u32,
    blocked: u32,
}

impl Tally {
    fn add(&mut self, status: TaskStatus) {
        self.total += 1;
        match status {
            TaskStatus::Done => self.done += 1,
            TaskStatus::InProgress => self.in_progress += 1,
            TaskStatus::Blocked => self.blocked += 1,
            TaskStatus::Pending => {}
        }
    }

    /// A heading task's state when it has criteria and no `Status:` line: all ticked is
    /// done, some ticked (or one in progress) is in progress, none is pending; every open
    /// one blocked is blocked.
    fn status(self) -> TaskStatus {
        let open = self.total - self.done;
        if open == 0 {
            TaskStatus::Done
        } else if self.blocked == open {
            TaskStatus::Blocked
        } else if self.done > 0 || self.in_progress > 0 {
            TaskStatus::InProgress
        } else {
            TaskStatus::Pending
        }
    }
}

/// A task heading or numbered heading, until it is known whether it is a task.
struct Head<'a> {
    record: usize,
    site: StatusSite,
    /// The first `Status:` value and its line.
    status_value: Option<(&'a str, usize)>,
    /// The heading record whose body this heading is in.
    parent: Option<usize>,
    /// A numbered checkbox sits in the body.
    numbered_inside: bool,
    /// A heading task sits in the body (known once resolved).
    task_inside: bool,
    crits: Tally,
}

/// An unnumbered checkbox owned by a record: its criterion, unless the owner turns out not
/// to be a task.
struct Crit<'a> {
    owner: usize,
    text: &'a str,
    status: TaskStatus,
    line: usize,
    offset: usize,
    section: usize,
}

/// The text under one heading (up to the next heading); section 0 is the whole file.
struct Section<'a> {
    title: &'a str,
    line: usize,
    parent: usize,
}

#[derive(Debug, Clone, Copy)]
struct OpenHeading {
    level: usize,
    section: usize,
    /// The innermost heading record whose body this is.
    owner: Option<usize>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Task,
    /// A heading that titles a group, or a numbered heading that owns nothing.
    Group,
    Checklist,
}

#[derive(Debug, Clone, Copy)]
enum Slot {
    Record(usize),
    Crit(usize),
}

/// What the records turned out to be.
struct Plan {
    /// The tasks, in file order; `None` when they are all the records, in order (the usual
    /// file, which then needs no bookkeeping per task).
    order: Option<Vec<Slot>>,
    /// Per checklist: its section and items, in file order.
    checklists: Vec<(usize, Vec<Slot>)>,
}

impl Plan {
    fn slots(&self, records: usize) -> Slots<'_> {
        match &self.order {
            None => Slots::All(0..records),
            Some(order) => Slots::Listed(order.iter()),
        }
    }
}

enum Slots<'p> {
    All(std::ops::Range<usize>),
    Listed(std::slice::Iter<'p, Slot>),
}

impl Iterator for Slots<'_> {
    type Item = Slot;

    fn next(&mut self) -> Option<Slot> {
        match self {
            Slots::All(range) => range.next().map(Slot::Record),
            Slots::Listed(iter) => iter.next().copied(),
        }
    }
}

struct Builder<'a, R> {
    text: &'a str,
    ends: LineEnds,
    records: Vec<R>,
    /// One per record.
    extras: Vec<Extra>,
    heads: Vec<Head<'a>>,
    crits: Vec<Crit<'a>>,
    warnings: Vec<ParseWarning>,
    sections: Vec<Section<'a>>,
    headings: Vec<OpenHeading>,
    /// Open checkbox records by indent column: the parents of the next checkbox.
    stack: Vec<(usize, usize)>,
    /// The record metadata lines belong to.
    current: Option<usize>,
    prompt: Option<PendingPrompt>,
    rules: u16,
    unnumbered: usize,
}

impl<'a, R: Record<'a>> Builder<'a, R> {
    fn new(text: &'a str, ends: LineEnds) -> Self {
        Builder {
            text,
            ends,
            records: Vec::new(),
            extras: Vec::new(),
            heads: Vec::new(),
            crits: Vec::new(),
            warnings: Vec::new(),
            sections: vec![Section {
                title: "",
                line: 0,
                parent: 0,
            }],
            headings: Vec::new(),
            stack: Vec::new(),
            current: None,
            prompt: None,
            rules: 0,
            unnumbered: 0,
        }
    }

    /// Forgets everything read so far (keeping the buffers' capacity).
    fn reset(&mut self) {
        self.records.clear();
        self.extras.clear();
        self.heads.clear();
        self.crits.clear();
        self.warnings.clear();
        self.sections.truncate(1);
        self.headings.clear();
        self.stack.clear();
        self.current = None;
        self.prompt = None;
        self.unnumbered = 0;
    }

    fn warn(&mut self, line: usize, message: String) {
        self.warnings.push(ParseWarning { line, message });
    }

    fn section(&self) -> usize {
        self.headings.last().map_or(0, |h| h.section)
    }

    fn site(&self, record: usize) -> StatusSite {
        let e = self.extras[record];
        match self.heads.get(e.head as usize) {
            Some(head) => head.site,
            None => StatusSite::Checkbox { offset: e.offset },
        }
    }

    fn owner(&self) -> Option<usize> {
        self.headings.last().and_then(|h| h.owner)
    }

    /// The heading data of a record, when it is a heading.
    fn head_mut(&mut self, record: usize) -> Option<&mut Head<'a>> {
        let head = self.extras[record].head;
        self.heads.get_mut(head as usize)
    }

    /// `next` is the offset just past this line's terminator; `content` has no indent and no
    /// trailing whitespace.
    #[inline(always)]
    fn line(&mut self, no: usize, next: usize, indent: usize, content: &'a str) {
        if self.prompt.is_some() && self.prompt_line(no, indent, content) {
            return;
        }
        if content.is_empty() {
            return;
        }
        match content.as_bytes()[0] {
            b'#' => {
                if let Some((level, title)) = heading(indent, content) {
                    self.heading(no, next, level, title);
                    return;
                }
            }
            b'-' | b'*' => {
                if let Some((mark, offset, optional, after)) = checkbox(content) {
                    let offset = offset_in(self.text, content) + offset;
                    if optional {
                        self.rules |= rule::OPTIONAL;
                    }
                    self.checkbox(no, indent, mark, offset, optional, after);
                    return;
                }
            }
            _ => {}
        }
        self.metadata(no, next, indent, content);
    }

    #[allow(clippy::too_many_arguments)]
    #[allow(clippy::too_many_arguments)]
    fn push_record(
        &mut self,
        kind: Kind,
        id: &'a str,
        title: &'a str,
        status: TaskStatus,
        line: usize,
        optional: bool,
        site: StatusSite,
    ) -> usize {
        let (offset, head) = match site {
            StatusSite::Checkbox { offset } => {
                if id.is_empty() {
                    self.unnumbered += 1;
                }
                (offset, u32::MAX)
            }
            _ => {
                self.heads.push(Head {
                    record: self.records.len(),
                    site,
                    status_value: None,
                    parent: None,
                    numbered_inside: false,
                    task_inside: false,
                    crits: Tally::default(),
                });
                // u32 keeps `Extra` small; 4 billion headings would need a 12 GB file.
                (0, u32::try_from(self.heads.len() - 1).unwrap_or(u32::MAX))
            }
        };
        self.records.push(R::new(id, title, status, line, optional));
        self.extras.push(Extra {
            offset,
            section: self.section(),
            head,
            kind,
        });
        self.records.len() - 1
    }

    fn heading(&mut self, no: usize, next: usize, level: usize, title: &'a str) {
        self.end_prompt();
        self.stack.clear();
        while self.headings.last().is_some_and(|h| h.level >= level) {
            self.headings.pop();
        }
        let enclosing = self.owner();
        let section = self.sections.len();
        self.sections.push(Section {
            title,
            line: no,
            parent: self.section(),
        });
        let found = match heading_task(title) {
            Some((id, title)) => Some((Kind::TaskHeading, id, title)),
            // A level-1 heading titles the document, whatever its number.
            None if level >= 2 => {
                author_id(title).map(|(id, title, _)| (Kind::NumberedHeading, id, title))
            }
            None => None,
        };
        // The heading's record belongs to the heading's own section: open that first.
        self.headings.push(OpenHeading {
            level,
            section,
            owner: enclosing,
        });
        let own = found.map(|(kind, id, title)| {
            let site = StatusSite::HeadingMissing { insert_at: next };
            let idx = self.push_record(kind, id, title, TaskStatus::Pending, no, false, site);
            if let Some(head) = self.head_mut(idx) {
                head.parent = enclosing;
            }
            idx
        });
        if enclosing.is_some() {
            // A heading inside a task's body: the frozen parser ended the task here.
            self.rules |= rule::HEADING;
        }
        let owner = own.or(enclosing);
        if let Some(h) = self.headings.last_mut() {
            h.owner = owner;
        }
        self.current = owner;
    }

    #[inline(always)]
    fn checkbox(
        &mut self,
        no: usize,
        indent: usize,
        mark: char,
        offset: usize,
        optional: bool,
        after: &'a str,
    ) {
        let Some(status) = TaskStatus::from_mark(mark) else {
            self.warn(
                no,
                format!(
                    "unknown checkbox mark `[{mark}]` (expected ` `, `-`, `x`, `X` or `~`); line ignored"
                ),
            );
            return;
        };
        let text = trim(after);
        if text.is_empty() {
            self.warn(no, "checkbox without text; line ignored".to_string());
            return;
        }
        while self.stack.last().is_some_and(|&(i, _)| i >= indent) {
            self.stack.pop();
        }
        let parent = match self.stack.last() {
            Some(&(_, p)) => Some(p),
            None => self.owner(),
        };
        match (author_id(text), parent) {
            (None, Some(p)) => {
                if let Some(head) = self.head_mut(p) {
                    head.crits.add(status);
                }
                if self.extras[p].kind == Kind::NumberedHeading {
                    self.rules |= rule::HEADING;
                }
                self.crits.push(Crit {
                    owner: p,
                    text,
                    status,
                    line: no,
                    offset,
                    section: self.section(),
                });
                self.current = Some(p);
            }
            (id, _) => {
                let (id, title) = match id {
                    Some((id, title, extended)) => {
                        if extended {
                            self.rules |= rule::AUTHOR_ID;
                        }
                        if self.stack.is_empty()
                            && let Some(h) = parent
                            && let Some(head) = self.head_mut(h)
                        {
                            head.numbered_inside = true;
                        }
                        (id, title)
                    }
                    None => ("", text),
                };
                let site = StatusSite::Checkbox { offset };
                let idx = self.push_record(Kind::Checkbox, id, title, status, no, optional, site);
                self.stack.push((indent, idx));
                self.current = Some(idx);
            }
        }
    }

    #[inline(always)]
    fn metadata(&mut self, no: usize, next: usize, indent: usize, content: &'a str) {
        let s = strip_bullet(content);
        if s.starts_with('_') {
            if let Some(value) = s.strip_prefix("_Prompt:") {
                let Some(record) = self.outside_check(no, "_Prompt:") else {
                    return;
                };
                self.open_prompt(record, no, next, indent, content, trim(value));
                return;
            }
            for (key, joined) in [
                ("_Requirements:", Joined::Requirements),
                ("_Leverage:", Joined::Leverage),
                ("_Blocked:", Joined::Blocked),
            ] {
                if let Some(value) = s.strip_prefix(key) {
                    let Some(record) = self.outside_check(no, key) else {
                        return;
                    };
                    if !R::FULL {
                        return;
                    }
                    let value = trim(value);
                    let value = trim(value.strip_suffix('_').unwrap_or(value));
                    if !value.is_empty() {
                        self.records[record].join(joined, value);
                    }
                    return;
                }
            }
            return;
        }
        let Some(record) = self.current else {
            return;
        };
        let key = s.strip_prefix("**").unwrap_or(s);
        if !matches!(key.as_bytes().first(), Some(b'f' | b'F' | b's' | b'S')) {
            return;
        }
        if !R::FULL && matches!(key.as_bytes().first(), Some(b'f' | b'F')) {
            // A `Files:` line, or nothing a summary needs.
            return;
        }
        if let Some(value) = labelled(s, "files").or_else(|| labelled(s, "file")) {
            self.records[record].add_files(value);
        } else if let text = self.text
            && let Some(head) = self.head_mut(record)
            && head.status_value.is_none()
            && let Some(value) = labelled(s, "status")
        {
            head.status_value = Some((value, no));
            let start = offset_in(text, value);
            head.site = StatusSite::HeadingValue {
                start,
                end: start + value.len(),
            };
        }
    }

    /// The record metadata belongs to, or a warning when there is none.
    fn outside_check(&mut self, no: usize, key: &str) -> Option<usize> {
        if self.current.is_none() {
            self.warn(no, format!("`{key}` line outside any task; ignored"));
        }
        self.current
    }

    /// A `_Prompt:` line with this (trimmed) value: closed on its line, or open until a later
    /// line ending in `_`, or a list of fields, or (when nothing closes it) open until the
    /// MCP server's end of a prompt.
    fn open_prompt(
        &mut self,
        record: usize,
        no: usize,
        next: usize,
        indent: usize,
        content: &str,
        value: &'a str,
    ) {
        if (value.is_empty() || value == "_") && self.fields_follow(next, indent) {
            self.rules |= rule::PROMPT;
            self.prompt = Some(PendingPrompt {
                record,
                line: no,
                text: String::new(),
                mode: PromptMode::Fields(indent),
            });
            return;
        }
        if let Some(closed) = value.strip_suffix('_') {
            let closed = trim(closed);
            if !closed.is_empty() {
                self.records[record].set_prompt(Cow::Borrowed(closed));
            }
            return;
        }
        let mode = match self.prompt_close(next, no, indent, content) {
            Some((close, crossed)) => {
                if crossed {
                    self.rules |= rule::PROMPT;
                }
                PromptMode::Until(close)
            }
            None => PromptMode::Unclosed,
        };
        self.prompt = Some(PendingPrompt {
            record,
            line: no,
            text: if R::FULL {
                value.to_string()
            } else {
                String::new()
            },
            mode,
        });
    }

    /// Whether the line at `from` is a bullet (not a checkbox) deeper than `indent`.
    fn fields_follow(&self, from: usize, indent: usize) -> bool {
        let bytes = self.text.as_bytes();
        if from >= bytes.len() {
            return false;
        }
        let (len, _) = self.ends.at(bytes, from);
        let Some(line) = self.text.get(from..from + len) else {
            return false;
        };
        let (ind, rest) = split_indent(line);
        ind > indent && is_bullet(rest) && checkbox(rest).is_none()
    }

    /// Where a `_Prompt:` opened on line `no` (whose text ends at `from`) closes: the first
    /// later line ending in `_`, unless a line that cannot belong to the prompt comes first
    /// (a checkbox, a heading, a fence, a comment, a metadata line, a bullet no deeper than
    /// the prompt's own, text back at the item's indent after a blank line). Also whether the
    /// prompt runs past a line where the MCP server would have ended it.
    fn prompt_close(
        &self,
        from: usize,
        no: usize,
        indent: usize,
        content: &str,
    ) -> Option<(usize, bool)> {
        let content_indent = indent + (content.len() - strip_bullet(content).len());
        let bytes = self.text.as_bytes();
        let (mut pos, mut no) = (from, no);
        let (mut blank, mut crossed) = (false, false);
        while pos < bytes.len() {
            no += 1;
            let (len, term) = self.ends.at(bytes, pos);
            let line = self.text.get(pos..pos + len)?;
            pos += len + term;
            let (ind, rest) = split_indent(line);
            let rest = trim_end(rest);
            if rest.is_empty() {
                blank = true;
                crossed = true;
                continue;
            }
            if (is_bullet(rest) && ind <= indent)
                || (blank && ind < content_indent)
                || checkbox(rest).is_some()
                || heading(ind, rest).is_some()
                || Fence::open(rest, no).is_some()
                || rest.starts_with("<!--")
                || is_metadata_line(rest)
            {
                return None;
            }
            crossed |= ends_prompt(rest);
            if rest.ends_with('_') {
                return Some((no, crossed));
            }
            blank = false;
        }
        None
    }

    /// A line while a prompt is open: whether the prompt took it.
    fn prompt_line(&mut self, no: usize, indent: usize, content: &str) -> bool {
        let Some(p) = self.prompt.as_mut() else {
            return false;
        };
        match p.mode {
            PromptMode::Until(close) => {
                let (piece, closed) = if no >= close {
                    (trim_end(content.strip_suffix('_').unwrap_or(content)), true)
                } else {
                    (content, false)
                };
                if R::FULL {
                    push_piece(&mut p.text, piece, " ");
                }
                if closed {
                    self.close_prompt();
                }
                true
            }
            PromptMode::Unclosed => {
                if content.is_empty() || ends_prompt(content) {
                    self.end_prompt();
                    return false;
                }
                if is_metadata_line(content) {
                    // The frozen parser read `_Requirements: …_` here as the prompt's end.
                    self.rules |= rule::PROMPT;
                    self.end_prompt();
                    return false;
                }
                if R::FULL {
                    push_piece(&mut p.text, content, " ");
                }
                true
            }
            PromptMode::Fields(base) => {
                if content.is_empty()
                    || indent <= base
                    || content.starts_with('#')
                    || checkbox(content).is_some()
                {
                    self.close_prompt();
                    return false;
                }
                if is_bullet(content) {
                    let field = strip_bullet(content);
                    let field = field.strip_prefix('_').unwrap_or(field);
                    let field = trim(field.strip_suffix('_').unwrap_or(field));
                    if R::FULL {
                        push_piece(&mut p.text, field, " | ");
                    }
                } else {
                    if R::FULL {
                        push_piece(&mut p.text, content, " ");
                    }
                }
                true
            }
        }
    }

    /// Ends an open prompt that closed as its author meant.
    fn close_prompt(&mut self) {
        if let Some(p) = self.prompt.take() {
            self.set_prompt_text(p.record, p.text);
        }
    }

    /// Ends an open prompt where something else begins: a prompt that never closed is kept,
    /// with a warning.
    fn end_prompt(&mut self) {
        let Some(p) = self.prompt.take() else {
            return;
        };
        let unclosed = !matches!(p.mode, PromptMode::Fields(_));
        let line = p.line;
        self.set_prompt_text(p.record, p.text);
        if unclosed {
            self.warn(
                line,
                "`_Prompt:` never closes (no trailing `_` before the next item or blank line)"
                    .to_string(),
            );
        }
    }

    fn set_prompt_text(&mut self, record: usize, text: String) {
        let trimmed = text.trim();
        if trimmed.is_empty() {
            return;
        }
        let text = if trimmed.len() == text.len() {
            text
        } else {
            trimmed.to_string()
        };
        self.records[record].set_prompt(Cow::Owned(text));
    }
}

fn push_piece(text: &mut String, piece: &str, sep: &str) {
    if piece.is_empty() {
        return;
    }
    if !text.is_empty() {
        text.push_str(sep);
    }
    text.push_str(piece);
}

impl<'a, R: Record<'a>> Builder<'a, R> {
    /// Decides what each record is, now that the whole file is read.
    fn resolve(&mut self) -> Plan {
        let n = self.records.len();
        if self.heads.is_empty() && (self.unnumbered == 0 || self.sections.len() == 1) {
            // No heading to resolve and no checklist possible: every record is a task.
            return Plan {
                order: None,
                checklists: Vec::new(),
            };
        }
        let mut role = vec![Role::Task; n];
        // Headings, inner ones first: whether a task heading titles a group depends on the
        // heading tasks beneath it.
        for h in (0..self.heads.len()).rev() {
            let head = &self.heads[h];
            let record = head.record;
            let task = match self.extras[record].kind {
                Kind::TaskHeading => {
                    let own_state = head.status_value.is_some() || head.crits.total > 0;
                    !(head.numbered_inside || (head.task_inside && !own_state))
                }
                _ => !head.numbered_inside && (head.crits.total > 0 || head.status_value.is_some()),
            };
            if !task {
                role[record] = Role::Group;
                if self.extras[record].kind == Kind::TaskHeading {
                    self.rules |= rule::HEADING;
                }
                continue;
            }
            if self.extras[record].kind == Kind::NumberedHeading {
                self.rules |= rule::HEADING;
            }
            if let Some(p) = head.parent
                && let Some(parent) = self.head_mut(p)
            {
                parent.task_inside = true;
            }
            let head = &self.heads[h];
            let status = match head.status_value {
                Some((value, line)) => match status_word(value) {
                    Some(status) => status,
                    None => {
                        let message = format!(
                            "unknown status `{value}` for task {}; read as pending",
                            self.records[record].id()
                        );
                        self.warn(line, message);
                        TaskStatus::Pending
                    }
                },
                None if head.crits.total > 0 => {
                    self.rules |= rule::HEADING;
                    head.crits.status()
                }
                None => TaskStatus::Pending,
            };
            self.records[record].set_status(status);
        }

        // Sections holding a numbered task (their ancestors too): unnumbered checkboxes
        // elsewhere are checklists, in a file that has numbered tasks at all.
        let mut numbered = vec![false; self.sections.len()];
        let mut any_numbered = false;
        for ((r, e), &role) in self.records.iter().zip(&self.extras).zip(&role) {
            let counts = match e.kind {
                Kind::Checkbox => !r.id().is_empty(),
                Kind::TaskHeading => true,
                Kind::NumberedHeading => role == Role::Task,
            };
            if counts {
                any_numbered = true;
                let mut s = e.section;
                while !numbered[s] {
                    numbered[s] = true;
                    s = self.sections[s].parent;
                }
            }
        }
        let checklist = |section: usize| any_numbered && !numbered[section];
        for ((r, e), role) in self.records.iter().zip(&self.extras).zip(role.iter_mut()) {
            if e.kind == Kind::Checkbox && r.id().is_empty() && checklist(e.section) {
                *role = Role::Checklist;
            }
        }

        // Records and orphaned criteria, merged in file order.
        let mut order = Vec::with_capacity(n);
        let mut checklists: Vec<(usize, Vec<Slot>)> = Vec::new();
        let mut add_item = |section: usize, slot: Slot| match checklists.last_mut() {
            // A section's lines are contiguous: its items are too.
            Some((s, items)) if *s == section => items.push(slot),
            _ => checklists.push((section, vec![slot])),
        };
        let mut c = 0;
        for i in 0..=n {
            let line = self.records.get(i).map_or(usize::MAX, |r| r.line());
            while let Some(crit) = self.crits.get(c).filter(|crit| crit.line < line) {
                match role[crit.owner] {
                    Role::Task => {}
                    Role::Checklist => add_item(crit.section, Slot::Crit(c)),
                    Role::Group if checklist(crit.section) => add_item(crit.section, Slot::Crit(c)),
                    Role::Group => order.push(Slot::Crit(c)),
                }
                c += 1;
            }
            match role.get(i) {
                Some(Role::Task) => order.push(Slot::Record(i)),
                Some(Role::Checklist) => add_item(self.extras[i].section, Slot::Record(i)),
                _ => {}
            }
        }
        if !checklists.is_empty() {
            self.rules |= rule::CHECKLIST;
        }
        Plan {
            order: Some(order),
            checklists,
        }
    }

    fn slot_status(&self, slot: Slot) -> TaskStatus {
        match slot {
            Slot::Record(i) => self.records[i].status(),
            Slot::Crit(c) => self.crits[c].status,
        }
    }

    /// Warns about every author's id seen before (positional ids never collide).
    fn duplicate_warnings(&mut self, plan: &Plan) {
        let warnings = match &plan.order {
            None => duplicates(self.records.len(), self.records.iter()),
            Some(order) => duplicates(
                order.len(),
                order.iter().filter_map(|&slot| match slot {
                    Slot::Record(i) => self.records.get(i),
                    Slot::Crit(_) => None,
                }),
            ),
        };
        self.warnings.extend(warnings);
        self.warnings.sort_by_key(|w| w.line);
    }
}

/// A warning for every author's id seen before (positional ids never collide).
fn duplicates<'r, 'a: 'r, R: Record<'a> + 'r>(
    len: usize,
    records: impl Iterator<Item = &'r R>,
) -> Vec<ParseWarning> {
    let mut warnings = Vec::new();
    let mut first: HashMap<&str, usize, BuildHasherDefault<IdHasher>> =
        HashMap::with_capacity_and_hasher(len, Default::default());
    for r in records {
        let id = r.id();
        if id.is_empty() {
            continue;
        }
        match first.entry(id) {
            Entry::Occupied(at) => warnings.push(ParseWarning {
                line: r.line(),
                message: format!("duplicate task id `{id}` (first at line {})", at.get()),
            }),
            Entry::Vacant(slot) => {
                slot.insert(r.line());
            }
        }
    }
    warnings
}

impl<'a> Builder<'a, Counted<'a>> {
    fn summary(mut self) -> TaskSummary {
        let plan = self.resolve();
        self.duplicate_warnings(&plan);
        let mut counts = TaskCounts::default();
        let mut optional = TaskCounts::default();
        for slot in plan.slots(self.records.len()) {
            match slot {
                Slot::Record(i) if self.records[i].optional => optional.add(self.records[i].status),
                _ => counts.add(self.slot_status(slot)),
            }
        }
        let checklists = plan
            .checklists
            .iter()
            .map(|(section, items)| ChecklistSummary {
                title: self.sections[*section].title.to_string(),
                line: self.sections[*section].line,
                total: items.len(),
                done: items
                    .iter()
                    .filter(|&&s| self.slot_status(s) == TaskStatus::Done)
                    .count(),
            })
            .collect();
        TaskSummary {
            counts,
            optional,
            checklists,
            warnings: self.warnings,
        }
    }
}

impl<'a> Builder<'a, Task> {
    /// The task list; with the status sites only when `sites` (edits need them).
    fn finish(mut self, sites: bool) -> Parsed {
        let plan = self.resolve();
        self.duplicate_warnings(&plan);
        let checklists = self.checklists(&plan);
        let records = std::mem::take(&mut self.records);
        let (mut tasks, sites, task_of) = match &plan.order {
            // The usual file: the records are the tasks.
            None => {
                let sites = if sites {
                    (0..records.len()).map(|i| self.site(i)).collect()
                } else {
                    Vec::new()
                };
                (records, sites, None)
            }
            Some(order) => {
                let (tasks, sites, task_of) = self.tasks_in(records, order);
                (tasks, sites, Some(task_of))
            }
        };
        for c in &self.crits {
            let task = match &task_of {
                None => Some(c.owner),
                Some(task_of) => task_of.get(c.owner).copied(),
            };
            if let Some(t) = task.and_then(|t| tasks.get_mut(t)) {
                t.criteria.push(Criterion {
                    text: c.text.to_string(),
                    done: c.status == TaskStatus::Done,
                    line: c.line,
                });
            }
        }
        if self.unnumbered > 0 || task_of.is_some() {
            assign_positional_ids(&mut tasks);
        }
        Parsed {
            list: TaskList {
                tasks,
                warnings: self.warnings,
                checklists,
            },
            sites,
            rules: self.rules,
        }
    }

    fn checklists(&mut self, plan: &Plan) -> Vec<Checklist> {
        plan.checklists
            .iter()
            .map(|(section, items)| Checklist {
                title: self.sections[*section].title.to_string(),
                line: self.sections[*section].line,
                items: items
                    .iter()
                    .map(|&s| match s {
                        Slot::Record(i) => {
                            let r = &mut self.records[i];
                            ChecklistItem {
                                text: std::mem::take(&mut r.title),
                                status: r.status,
                                line: r.line,
                            }
                        }
                        Slot::Crit(c) => {
                            let c = &self.crits[c];
                            ChecklistItem {
                                text: c.text.to_string(),
                                status: c.status,
                                line: c.line,
                            }
                        }
                    })
                    .collect(),
            })
            .collect()
    }

    /// The tasks in `order` (whose records come in increasing index), their status sites,
    /// and which task each record became (`usize::MAX`: none).
    fn tasks_in(
        &self,
        records: Vec<Task>,
        order: &[Slot],
    ) -> (Vec<Task>, Vec<StatusSite>, Vec<usize>) {
        let mut task_of = vec![usize::MAX; records.len()];
        let mut records = records.into_iter().enumerate();
        let mut tasks = Vec::with_capacity(order.len());
        let mut sites = Vec::with_capacity(order.len());
        for &slot in order {
            match slot {
                Slot::Record(i) => {
                    if let Some((_, task)) = records.by_ref().find(|&(j, _)| j == i) {
                        task_of[i] = tasks.len();
                        tasks.push(task);
                        sites.push(self.site(i));
                    }
                }
                Slot::Crit(c) => {
                    let c = &self.crits[c];
                    tasks.push(Task::new("", c.text, c.status, c.line, false));
                    sites.push(StatusSite::Checkbox { offset: c.offset });
                }
            }
        }
        (tasks, sites, task_of)
    }
}

/// Numbers unnumbered tasks by their position, unless an author's id already says that
/// number (then `line-N`).
fn assign_positional_ids(tasks: &mut [Task]) {
    if tasks.iter().all(|t| !t.id.is_empty()) {
        return;
    }
    let taken: HashSet<String> = tasks
        .iter()
        .filter(|t| !t.id.is_empty())
        .map(|t| t.id.clone())
        .collect();
    for (pos, task) in tasks.iter_mut().enumerate() {
        if task.id.is_empty() {
            let id = (pos + 1).to_string();
            task.id = if taken.contains(&id) {
                format!("line-{}", task.line)
            } else {
                id
            };
        }
    }
}

/// FxHash-style hasher for task ids: short, trusted strings, where SipHash's DoS resistance
/// buys nothing and cost ~10% of a large parse.
#[derive(Default)]
struct IdHasher(u64);

impl Hasher for IdHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(5) ^ u64::from(b)).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
        }
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

#[cfg(test)]
#[path = "parse_reference.rs"]
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
