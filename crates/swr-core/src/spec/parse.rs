//! The tasks.md parser. One forward pass over the lines (plus a cheap pre-pass to find
//! `## Tasks` sections), no regex, no panics: anything odd becomes a [`ParseWarning`].
//!
//! It also records where each task's status is written ([`StatusSite`]) so that
//! [`super::set_task_status`] can change exactly that text and nothing else.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};

use super::{Criterion, ParseWarning, Task, TaskList, TaskStatus};

/// Where a task's status is written, as byte offsets into the parsed text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StatusSite {
    /// The checkbox mark character (always one ASCII byte for a recognised mark).
    Checkbox { offset: usize },
    /// The value of a `**Status**: …` line under a `### TASK-n:` heading.
    HeadingValue { start: usize, end: usize },
    /// A `### TASK-n:` heading with no status line: a status line may be inserted here
    /// (just after the heading line and its terminator).
    HeadingMissing { insert_at: usize },
}

pub(crate) struct Parsed {
    pub list: TaskList,
    /// One per task, same order as `list.tasks`.
    pub sites: Vec<StatusSite>,
}

/// Parses tasks.md text. Never fails: odd input yields warnings with 1-based line numbers.
///
/// Rules (see the crate README for where they differ from the MCP server and the Python tool):
/// `-`/`*` checkbox items at any indent; `[ ]` pending, `[-]` in progress, `[x]`/`[X]` done,
/// `[~]` blocked; ids `1`, `1.2`, `1.`, `1\.`; an unnumbered checkbox nested under a task is an
/// acceptance criterion; an unnumbered top-level checkbox is a task with a positional id;
/// `### TASK-1: Title` headings with a `**Status**: …` line; only `## Tasks` sections count when
/// one exists; fenced code blocks are skipped.
pub fn parse(text: &str) -> TaskList {
    parse_with_sites(text).list
}

pub(crate) fn parse_with_sites(text: &str) -> Parsed {
    let bytes = text.as_bytes();
    let body_start = if text.starts_with('\u{feff}') { 3 } else { 0 };
    // SIMD scans (memchr) over the whole text cost far less than one per-line pass.
    let has_cr = memchr::memchr(b'\r', bytes).is_some();

    let mut b = Builder::new(text);
    // Every task line holds a `[`: reserving up front avoids re-copying a large Vec<Task>
    // (and glibc's costly frees of the old buffers) on big files.
    let estimate = memchr::memchr_iter(b'[', bytes).count().min(text.len() / 8);
    b.tasks.reserve(estimate);
    b.sites.reserve(estimate);
    b.explicit_id.reserve(estimate);

    let mut fence: Option<Fence> = None;
    let mut scope = Scope::Whole;
    let mut pos = body_start;
    let mut no = 0;
    while pos < bytes.len() {
        no += 1;
        let rest = &bytes[pos..];
        let (len, term) = if has_cr {
            match memchr::memchr2(b'\n', b'\r', rest) {
                Some(i) if rest[i] == b'\r' && rest.get(i + 1) == Some(&b'\n') => (i, 2),
                Some(i) => (i, 1),
                None => (rest.len(), 0),
            }
        } else {
            match memchr::memchr(b'\n', rest) {
                Some(i) => (i, 1),
                None => (rest.len(), 0),
            }
        };
        // Terminators are ASCII, so these are char boundaries.
        let Some(line) = text.get(pos..pos + len) else {
            break;
        };
        pos += len + term;

        let (indent, rest) = split_indent(line);
        let Some(&first) = rest.as_bytes().first() else {
            // Blank: only an open prompt cares (fences ignore it; it is never a heading).
            if fence.is_none() && scope != Scope::Out {
                b.line(no, pos, indent, rest);
            }
            continue;
        };
        if let Some(f) = fence {
            if first == f.ch && f.closes(rest) {
                fence = None;
            }
            continue;
        }
        if matches!(first, b'`' | b'~')
            && let Some(f) = Fence::open(rest, no)
        {
            b.end_prompt();
            fence = Some(f);
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
                scope = Scope::Out;
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
    b.finish()
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

/// A GFM task-list item: `-` or `*`, whitespace, `[c]`, then whitespace or end of line.
/// Returns the mark, its byte offset in `rest`, and the text after `]`.
fn checkbox(rest: &str) -> Option<(char, usize, &str)> {
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
    if !(after.is_empty() || after.starts_with([' ', '\t'])) {
        return None;
    }
    let offset = rest.len() - after_bullet.len() + 1;
    Some((mark, offset, after))
}

/// Splits a leading task id off a checkbox text, as the MCP server's
/// `^(\d+(?:\.\d+)*)\s*\\?\.?\s+(.+)` does (also accepting an id with no title).
fn split_id(text: &str) -> Option<(&str, &str)> {
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
    }
    let k = skip_ws(j);
    let separated = k == b.len() || k > j || (!punct && ws_before);
    if !separated {
        return None;
    }
    Some((&text[..id_end], trim_end(&text[k..])))
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

/// A `**Status**:` value of the Python heading format.
pub(super) fn status_word(value: &str) -> Option<TaskStatus> {
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

/// Whether a line ends a multi-line `_Prompt:` (the MCP server stops at a bullet, a
/// `Files:` or a `Purpose:` line; a heading ends it too).
fn ends_prompt(content: &str) -> bool {
    let b = content.as_bytes();
    (b.len() >= 2 && matches!(b[0], b'-' | b'*' | b'+') && matches!(b[1], b' ' | b'\t'))
        || content.starts_with('#')
        || strip_prefix_ci(content, "file")
            .is_some_and(|r| r.starts_with(':') || r.starts_with("s:"))
        || strip_prefix_ci(content, "purpose:").is_some()
}

/// File paths from a `Files:` value: separated by commas outside parentheses and backticks;
/// a path in backticks is the text between them, whatever note follows it; notes in `( )` or
/// full-width `（ ）` (as in `` `pom.xml`（添加 `jjwt`）``, seen in real files) are dropped.
pub(super) fn split_files(value: &str, out: &mut Vec<String>) {
    let mut depth = 0usize;
    let mut in_code = false;
    let mut start = 0;
    for (i, c) in value.char_indices() {
        match c {
            '`' => in_code = !in_code,
            '(' | '（' if !in_code => depth += 1,
            ')' | '）' if !in_code => depth = depth.saturating_sub(1),
            ',' if !in_code && depth == 0 => {
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

struct PendingPrompt {
    task: usize,
    line: usize,
    text: String,
}

struct Builder<'a> {
    text: &'a str,
    tasks: Vec<Task>,
    sites: Vec<StatusSite>,
    explicit_id: Vec<bool>,
    warnings: Vec<ParseWarning>,
    /// Open checkbox tasks by indent column: the parents of the next checkbox.
    stack: Vec<(usize, usize)>,
    /// The `### TASK-n:` heading whose body we are in.
    heading_task: Option<usize>,
    heading_status_seen: bool,
    /// The task metadata lines belong to.
    current: Option<usize>,
    prompt: Option<PendingPrompt>,
}

impl<'a> Builder<'a> {
    fn new(text: &'a str) -> Self {
        Builder {
            text,
            tasks: Vec::new(),
            sites: Vec::new(),
            explicit_id: Vec::new(),
            warnings: Vec::new(),
            stack: Vec::new(),
            heading_task: None,
            heading_status_seen: false,
            current: None,
            prompt: None,
        }
    }

    /// Forgets everything read so far (keeping the buffers' capacity).
    fn reset(&mut self) {
        self.tasks.clear();
        self.sites.clear();
        self.explicit_id.clear();
        self.warnings.clear();
        self.stack.clear();
        self.heading_task = None;
        self.heading_status_seen = false;
        self.current = None;
        self.prompt = None;
    }

    fn warn(&mut self, line: usize, message: String) {
        self.warnings.push(ParseWarning { line, message });
    }

    /// `next` is the offset just past this line's terminator; `content` has no indent and no
    /// trailing whitespace.
    fn line(&mut self, no: usize, next: usize, indent: usize, content: &str) {
        if self.prompt.is_some() {
            if content.is_empty() || ends_prompt(content) {
                self.end_prompt();
            } else {
                self.continue_prompt(content);
                return;
            }
        }
        if content.is_empty() {
            return;
        }
        match content.as_bytes()[0] {
            b'#' => {
                if let Some((_, title)) = heading(indent, content) {
                    self.heading(no, next, title);
                    return;
                }
            }
            b'-' | b'*' => {
                if let Some((mark, offset, after)) = checkbox(content) {
                    let offset = offset_in(self.text, content) + offset;
                    self.checkbox(no, indent, mark, offset, after);
                    return;
                }
            }
            _ => {}
        }
        self.metadata(no, content);
    }

    fn heading(&mut self, no: usize, next: usize, title: &str) {
        self.end_prompt();
        self.stack.clear();
        self.current = None;
        self.heading_task = None;
        if let Some((id, title)) = heading_task(title) {
            let idx = self.push_task(
                Some(id),
                title,
                TaskStatus::Pending,
                no,
                StatusSite::HeadingMissing { insert_at: next },
            );
            self.heading_task = Some(idx);
            self.heading_status_seen = false;
            self.current = Some(idx);
        }
    }

    fn checkbox(&mut self, no: usize, indent: usize, mark: char, offset: usize, after: &str) {
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
        let parent = self.stack.last().map(|&(_, t)| t).or(self.heading_task);
        match (split_id(text), parent) {
            (None, Some(p)) => {
                self.tasks[p].criteria.push(Criterion {
                    text: text.to_string(),
                    done: status == TaskStatus::Done,
                    line: no,
                });
                self.current = Some(p);
            }
            (id, _) => {
                let (id, title) = match id {
                    Some((id, title)) => (Some(id), title),
                    None => (None, text),
                };
                let idx = self.push_task(id, title, status, no, StatusSite::Checkbox { offset });
                self.stack.push((indent, idx));
                self.current = Some(idx);
            }
        }
    }

    fn push_task(
        &mut self,
        id: Option<&str>,
        title: &str,
        status: TaskStatus,
        line: usize,
        site: StatusSite,
    ) -> usize {
        self.tasks.push(Task {
            id: id.unwrap_or_default().to_string(),
            title: title.to_string(),
            status,
            line,
            prompt: None,
            requirements: None,
            leverage: None,
            blocked_reason: None,
            files: Vec::new(),
            criteria: Vec::new(),
        });
        self.explicit_id.push(id.is_some());
        self.sites.push(site);
        self.tasks.len() - 1
    }

    fn metadata(&mut self, no: usize, content: &str) {
        let s = strip_bullet(content);
        if s.starts_with('_') {
            if let Some(value) = s.strip_prefix("_Prompt:") {
                let Some(task) = self.outside_check(no, "_Prompt:") else {
                    return;
                };
                let value = trim(value);
                if let Some(closed) = value.strip_suffix('_') {
                    set_nonempty(&mut self.tasks[task].prompt, trim(closed));
                } else {
                    self.prompt = Some(PendingPrompt {
                        task,
                        line: no,
                        text: value.to_string(),
                    });
                }
                return;
            }
            for key in ["_Requirements:", "_Leverage:", "_Blocked:"] {
                if let Some(value) = s.strip_prefix(key) {
                    let Some(task) = self.outside_check(no, key) else {
                        return;
                    };
                    let value = trim(value);
                    let value = trim(value.strip_suffix('_').unwrap_or(value));
                    let t = &mut self.tasks[task];
                    let field = match key {
                        "_Requirements:" => &mut t.requirements,
                        "_Leverage:" => &mut t.leverage,
                        _ => &mut t.blocked_reason,
                    };
                    append_joined(field, value);
                    return;
                }
            }
            return;
        }
        let Some(task) = self.current else {
            return;
        };
        let key = s.strip_prefix("**").unwrap_or(s);
        if !matches!(key.as_bytes().first(), Some(b'f' | b'F' | b's' | b'S')) {
            return;
        }
        if let Some(value) = labelled(s, "files").or_else(|| labelled(s, "file")) {
            split_files(value, &mut self.tasks[task].files);
        } else if self.heading_task == Some(task)
            && !self.heading_status_seen
            && let Some(value) = labelled(s, "status")
        {
            self.heading_status_seen = true;
            match status_word(value) {
                Some(status) => self.tasks[task].status = status,
                None => self.warn(
                    no,
                    format!(
                        "unknown status `{value}` for task {}; read as pending",
                        self.tasks[task].id
                    ),
                ),
            }
            let start = offset_in(self.text, value);
            self.sites[task] = StatusSite::HeadingValue {
                start,
                end: start + value.len(),
            };
        }
    }

    /// The task metadata belongs to, or a warning when there is none.
    fn outside_check(&mut self, no: usize, key: &str) -> Option<usize> {
        if self.current.is_none() {
            self.warn(no, format!("`{key}` line outside any task; ignored"));
        }
        self.current
    }

    fn continue_prompt(&mut self, content: &str) {
        let Some(p) = self.prompt.as_mut() else {
            return;
        };
        let (piece, closed) = match content.strip_suffix('_') {
            Some(piece) => (trim_end(piece), true),
            None => (content, false),
        };
        if !p.text.is_empty() && !piece.is_empty() {
            p.text.push(' ');
        }
        p.text.push_str(piece);
        if closed && let Some(p) = self.prompt.take() {
            set_nonempty(&mut self.tasks[p.task].prompt, p.text.trim());
        }
    }

    /// Ends a multi-line `_Prompt:` that did not close with `_`: keeps the text, warns.
    fn end_prompt(&mut self) {
        if let Some(p) = self.prompt.take() {
            set_nonempty(&mut self.tasks[p.task].prompt, p.text.trim());
            self.warn(
                p.line,
                "`_Prompt:` never closes (no trailing `_` before the next item or blank line)"
                    .to_string(),
            );
        }
    }

    fn finish(mut self) -> Parsed {
        self.end_prompt();
        if self.explicit_id.iter().any(|e| !e) {
            let taken: HashSet<String> = self
                .tasks
                .iter()
                .zip(&self.explicit_id)
                .filter(|(_, e)| **e)
                .map(|(t, _)| t.id.clone())
                .collect();
            for (pos, (task, explicit)) in self.tasks.iter_mut().zip(&self.explicit_id).enumerate()
            {
                if !explicit {
                    let id = (pos + 1).to_string();
                    task.id = if taken.contains(&id) {
                        format!("line-{}", task.line)
                    } else {
                        id
                    };
                }
            }
        }
        {
            let mut first: HashMap<&str, usize, BuildHasherDefault<IdHasher>> =
                HashMap::with_capacity_and_hasher(self.tasks.len(), Default::default());
            for t in &self.tasks {
                if let Some(&line) = first.get(t.id.as_str()) {
                    self.warnings.push(ParseWarning {
                        line: t.line,
                        message: format!("duplicate task id `{}` (first at line {line})", t.id),
                    });
                } else {
                    first.insert(&t.id, t.line);
                }
            }
        }
        self.warnings.sort_by_key(|w| w.line);
        Parsed {
            list: TaskList {
                tasks: self.tasks,
                warnings: self.warnings,
            },
            sites: self.sites,
        }
    }
}

fn set_nonempty(field: &mut Option<String>, value: &str) {
    if !value.is_empty() {
        *field = Some(value.to_string());
    }
}

/// Repeated `_Requirements:` (etc.) lines accumulate, comma separated.
fn append_joined(field: &mut Option<String>, value: &str) {
    if value.is_empty() {
        return;
    }
    match field {
        Some(existing) => {
            existing.push_str(", ");
            existing.push_str(value);
        }
        None => *field = Some(value.to_string()),
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

/// Differential tests: the live parser against the frozen pre-rewrite parser.
#[cfg(test)]
mod same_as_reference {
    use proptest::prelude::*;

    fn assert_same(text: &str) {
        let new = super::parse_with_sites(text);
        let old = super::reference::parse_with_sites(text);
        assert_eq!(new.list, old.list, "text: {text:?}");
        assert_eq!(new.sites, old.sites, "text: {text:?}");
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

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2048))]

        #[test]
        fn same_on_markdownish_mixes(
            lines in proptest::collection::vec(line(), 0..40),
            eol in prop_oneof![Just("\n"), Just("\r\n"), Just("\r"), Just("\n\r")],
            bom in any::<bool>(),
        ) {
            let mut text = if bom { "\u{feff}".to_string() } else { String::new() };
            text.push_str(&lines.join(eol));
            assert_same(&text);
        }

        #[test]
        fn same_on_arbitrary_text(text in "\\PC*") {
            assert_same(&text);
        }
    }
}
