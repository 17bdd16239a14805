//! The line pass's state: open headings and checkboxes, the task metadata belongs to, an
//! open `_Prompt:`. It records every checkbox and heading that may be a task, and what is not
//! known yet about them, for [`super::resolve`] to settle once the whole file is read.

use std::borrow::Cow;

use super::lines::{
    Fence, author_id, checkbox, ends_prompt, heading, heading_task, is_bullet, is_metadata_line,
    labelled, offset_in, split_indent, strip_bullet, trim, trim_end,
};
use super::record::{Joined, Record};
use super::{LineEnds, StatusSite, rule};
use crate::spec::{ParseWarning, TaskStatus};

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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Checkbox,
    /// `### Task 3: …`
    TaskHeading,
    /// `### 1.1 Login form`
    NumberedHeading,
}

/// What the parser needs to know of a record besides the task itself; one per record, so
/// kept small.
#[derive(Debug, Clone, Copy)]
pub(super) struct Extra {
    /// Checkboxes: the byte offset of the mark.
    pub(super) offset: usize,
    pub(super) section: usize,
    /// Headings: index into `Builder::heads`.
    pub(super) head: u32,
    pub(super) kind: Kind,
}

/// States of the unnumbered checkboxes beneath a heading.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Tally {
    pub(super) total: u32,
    pub(super) done: u32,
    pub(super) in_progress: u32,
    pub(super) blocked: u32,
}

impl Tally {
    pub(super) fn add(&mut self, status: TaskStatus) {
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
    pub(super) fn status(self) -> TaskStatus {
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
pub(super) struct Head<'a> {
    pub(super) record: usize,
    pub(super) site: StatusSite,
    /// The first `Status:` value and its line.
    pub(super) status_value: Option<(&'a str, usize)>,
    /// The heading record whose body this heading is in.
    pub(super) parent: Option<usize>,
    /// A numbered checkbox sits in the body.
    pub(super) numbered_inside: bool,
    /// A heading task sits in the body (known once resolved).
    pub(super) task_inside: bool,
    pub(super) crits: Tally,
}

/// An unnumbered checkbox owned by a record: its criterion, unless the owner turns out not
/// to be a task.
pub(super) struct Crit<'a> {
    pub(super) owner: usize,
    pub(super) text: &'a str,
    pub(super) status: TaskStatus,
    pub(super) line: usize,
    pub(super) offset: usize,
    pub(super) section: usize,
}

/// The text under one heading (up to the next heading); section 0 is the whole file.
pub(super) struct Section<'a> {
    pub(super) title: &'a str,
    pub(super) line: usize,
    pub(super) parent: usize,
}

#[derive(Debug, Clone, Copy)]
struct OpenHeading {
    level: usize,
    section: usize,
    /// The innermost heading record whose body this is.
    owner: Option<usize>,
}

pub(super) struct Builder<'a, R> {
    pub(super) text: &'a str,
    pub(super) ends: LineEnds,
    pub(super) records: Vec<R>,
    /// One per record.
    pub(super) extras: Vec<Extra>,
    pub(super) heads: Vec<Head<'a>>,
    pub(super) crits: Vec<Crit<'a>>,
    pub(super) warnings: Vec<ParseWarning>,
    pub(super) sections: Vec<Section<'a>>,
    headings: Vec<OpenHeading>,
    /// Open checkbox records by indent column: the parents of the next checkbox.
    stack: Vec<(usize, usize)>,
    /// The record metadata lines belong to.
    current: Option<usize>,
    prompt: Option<PendingPrompt>,
    pub(super) rules: u16,
    pub(super) unnumbered: usize,
}

impl<'a, R: Record<'a>> Builder<'a, R> {
    pub(super) fn new(text: &'a str, ends: LineEnds) -> Self {
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
    pub(super) fn reset(&mut self) {
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

    pub(super) fn warn(&mut self, line: usize, message: String) {
        self.warnings.push(ParseWarning { line, message });
    }

    fn section(&self) -> usize {
        self.headings.last().map_or(0, |h| h.section)
    }

    pub(super) fn site(&self, record: usize) -> StatusSite {
        let e = self.extras[record];
        match self.heads.get(e.head as usize) {
            Some(head) => head.site,
            None => StatusSite::Checkbox { offset: e.offset },
        }
    }

    fn owner(&self) -> Option<usize> {
        self.headings.last().and_then(|h| h.owner)
    }

    /// Whether a numbered checkbox with this id, in the body of heading `h`, makes that
    /// heading a group title: always when the heading has no state of its own yet; else only
    /// for its own id or a sub-id (`### Task 1.2:` with a Status line, then `- [x] 1.3` is a
    /// heading task followed by the next task, not a group title).
    fn titles(&self, h: usize, id: &str) -> bool {
        let Some(head) = self.heads.get(self.extras[h].head as usize) else {
            return false;
        };
        if head.status_value.is_none() && head.crits.total == 0 {
            return true;
        }
        let own = self.records[h].id();
        id.strip_prefix(own)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('.'))
    }

    /// The heading data of a record, when it is a heading.
    pub(super) fn head_mut(&mut self, record: usize) -> Option<&mut Head<'a>> {
        let head = self.extras[record].head;
        self.heads.get_mut(head as usize)
    }

    /// `next` is the offset just past this line's terminator; `content` has no indent and no
    /// trailing whitespace.
    #[inline(always)]
    pub(super) fn line(&mut self, no: usize, next: usize, indent: usize, content: &'a str) {
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
            // GFM renders `1. [ ] …` as a task list item, but neither the MCP server nor the
            // agent's instructions read it: say so rather than drop it quietly.
            b'0'..=b'9' if ordered_checkbox(content) => {
                self.rules |= rule::ORDERED;
                self.warn(
                    no,
                    "ordered-list checkbox (`1. [ ] …`) is not read as a task; write it as `- [ ] …`"
                        .to_string(),
                );
                return;
            }
            _ => {}
        }
        self.metadata(no, next, indent, content);
    }

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
                            && self.titles(h, id)
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
                let (piece, sep) = if is_bullet(content) {
                    let field = strip_bullet(content);
                    let field = field.strip_prefix('_').unwrap_or(field);
                    (trim(field.strip_suffix('_').unwrap_or(field)), " | ")
                } else {
                    (content, " ")
                };
                if R::FULL {
                    push_piece(&mut p.text, piece, sep);
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
    pub(super) fn end_prompt(&mut self) {
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

/// `1. [ ] Title`, `2) [x] Title`: a checkbox in an ordered list item.
fn ordered_checkbox(content: &str) -> bool {
    let digits = content.bytes().take_while(u8::is_ascii_digit).count();
    let Some(rest) = content[digits..].strip_prefix(['.', ')']) else {
        return false;
    };
    if !(1..=9).contains(&digits) || !rest.starts_with([' ', '\t']) {
        return false;
    }
    checkbox(&format!("- {}", rest.trim_start_matches([' ', '\t']))).is_some()
}
