//! The parser as it was before the byte-level rewrite, frozen as a test oracle: the
//! rewrite must give the same tasks, warnings and status sites for every input.
//! Do not optimise or fix this file; change the live parser and its tests instead.
#![allow(dead_code)]

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};

use super::StatusSite;
// The status vocabulary and the `Files:` value splitter are shared with the live parser rather
// than frozen: they read one value each, and the differential tests are about the line parsing.
use super::{split_files, status_word};
use crate::spec::{Criterion, ParseWarning, Task, TaskList, TaskStatus};

pub(super) struct Parsed {
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
fn parse(text: &str) -> TaskList {
    parse_with_sites(text).list
}

pub(super) fn parse_with_sites(text: &str) -> Parsed {
    let body_start = if text.starts_with('\u{feff}') { 3 } else { 0 };
    let has_cr = text.as_bytes().contains(&b'\r');
    let sections = tasks_sections(text, body_start, has_cr);

    let mut b = Builder::new(text);
    // Every task line holds a `[`: reserving up front avoids re-copying a large Vec<Task>
    // (and glibc's costly frees of the old buffers) on big files.
    let estimate = text.bytes().filter(|&c| c == b'[').count();
    b.tasks.reserve(estimate.min(text.len() / 8));
    b.sites.reserve(estimate.min(text.len() / 8));
    let mut fence: Option<Fence> = None;
    let mut section_idx = 0;
    for (idx, line) in Lines::new(text, body_start, has_cr).enumerate() {
        let no = idx + 1;
        let (indent, rest) = split_indent(line.text);
        if let Some(f) = fence {
            if f.closes(rest) {
                fence = None;
            }
            continue;
        }
        if let Some(f) = Fence::open(rest, no) {
            b.end_prompt();
            fence = Some(f);
            continue;
        }
        let in_scope = match &sections {
            None => true,
            Some(s) => {
                while section_idx < s.len() && s[section_idx].1 <= no {
                    section_idx += 1;
                }
                section_idx < s.len() && s[section_idx].0 <= no
            }
        };
        if in_scope {
            b.line(no, line.next, indent, rest.trim_end());
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

/// One line without its terminator, and the byte offset just past its terminator.
struct Line<'a> {
    text: &'a str,
    next: usize,
}

/// Splits on `\n`, `\r\n` and lone `\r`, like a text editor would.
struct Lines<'a> {
    text: &'a str,
    pos: usize,
    has_cr: bool,
}

impl<'a> Lines<'a> {
    fn new(text: &'a str, pos: usize, has_cr: bool) -> Self {
        Lines { text, pos, has_cr }
    }
}

impl<'a> Iterator for Lines<'a> {
    type Item = Line<'a>;

    fn next(&mut self) -> Option<Line<'a>> {
        let rest = self.text.get(self.pos..).filter(|r| !r.is_empty())?;
        let (len, term) = if self.has_cr {
            let bytes = rest.as_bytes();
            match bytes.iter().position(|&c| c == b'\n' || c == b'\r') {
                Some(i) if bytes[i] == b'\r' && bytes.get(i + 1) == Some(&b'\n') => (i, 2),
                Some(i) => (i, 1),
                None => (rest.len(), 0),
            }
        } else {
            // Fast path (memchr inside `find`) for the common LF-only file.
            match rest.find('\n') {
                Some(i) => (i, 1),
                None => (rest.len(), 0),
            }
        };
        let start = self.pos;
        self.pos += len + term;
        // Terminators are ASCII, so these are char boundaries.
        let text = self.text.get(start..start + len)?;
        Some(Line {
            text,
            next: self.pos,
        })
    }
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
        if len < 3 || (ch == b'`' && rest[len..].contains('`')) {
            return None;
        }
        Some(Fence { ch, len, line })
    }

    fn closes(&self, rest: &str) -> bool {
        let bytes = rest.as_bytes();
        let len = bytes.iter().take_while(|&&c| c == self.ch).count();
        len >= self.len && rest[len..].trim().is_empty()
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
    let mut text = after.trim();
    let unclosed = text.trim_end_matches('#');
    if unclosed.is_empty() || unclosed.ends_with([' ', '\t']) {
        text = unclosed.trim_end();
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

/// Line ranges `[start, end)` (1-based) of the `## Tasks` sections, or `None` when the file
/// has none (then the whole file counts).
fn tasks_sections(text: &str, body_start: usize, has_cr: bool) -> Option<Vec<(usize, usize)>> {
    if !text.contains("##") {
        return None;
    }
    let mut out = Vec::new();
    let mut open: Option<usize> = None;
    let mut fence: Option<Fence> = None;
    for (idx, line) in Lines::new(text, body_start, has_cr).enumerate() {
        let no = idx + 1;
        let (indent, rest) = split_indent(line.text);
        if let Some(f) = fence {
            if f.closes(rest) {
                fence = None;
            }
            continue;
        }
        if let Some(f) = Fence::open(rest, no) {
            fence = Some(f);
            continue;
        }
        if let Some((level, title)) = heading(indent, rest)
            && level <= 2
        {
            if let Some(start) = open.take() {
                out.push((start, no));
            }
            if level == 2 && is_tasks_title(title) {
                open = Some(no);
            }
        }
    }
    if let Some(start) = open {
        out.push((start, usize::MAX));
    }
    (!out.is_empty()).then_some(out)
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
    let after_bullet = rest[1..].trim_start_matches([' ', '\t']);
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
    Some((&text[..id_end], text[k..].trim_end()))
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
    Some(rest.trim())
}

/// Removes one list bullet (`- `, `* `, `+ `) from a line's content.
fn strip_bullet(content: &str) -> &str {
    let b = content.as_bytes();
    if b.len() >= 2 && matches!(b[0], b'-' | b'*' | b'+') && matches!(b[1], b' ' | b'\t') {
        content[2..].trim_start()
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
        let text = after.trim();
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
            // Fields added after the freeze, which this parser never sets.
            optional: false,
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
                let value = value.trim();
                if let Some(closed) = value.strip_suffix('_') {
                    set_nonempty(&mut self.tasks[task].prompt, closed.trim());
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
                    let value = value.trim();
                    let value = value.strip_suffix('_').unwrap_or(value).trim();
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
            Some(piece) => (piece.trim_end(), true),
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
                checklists: Vec::new(),
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
