//! Readers of one line or one value: indentation, headings, fences, checkboxes, the author's
//! id, `Key:` labels, status words and `Files:` lists. Pure functions over `&str`, with no
//! state: the builder decides what a line means where it stands.

use crate::spec::TaskStatus;

/// Whether a byte is ASCII and not whitespace in `char::is_whitespace`'s sense (which,
/// unlike `u8::is_ascii_whitespace`, includes the vertical tab).
pub(super) fn is_solid_ascii(b: u8) -> bool {
    b < 0x80 && !matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// `str::trim_end`, without decoding a char when the last byte settles it.
pub(super) fn trim_end(s: &str) -> &str {
    match s.as_bytes().last() {
        Some(&b) if !is_solid_ascii(b) => s.trim_end(),
        _ => s,
    }
}

/// `str::trim_start`, without decoding a char when the first byte settles it.
pub(super) fn trim_start(s: &str) -> &str {
    match s.as_bytes().first() {
        Some(&b) if !is_solid_ascii(b) => s.trim_start(),
        _ => s,
    }
}

/// `str::trim`, without decoding chars when the end bytes settle it.
pub(super) fn trim(s: &str) -> &str {
    trim_end(trim_start(s))
}

/// Width of the leading whitespace in columns (a tab advances to the next multiple of 4, as
/// CommonMark does) and the rest of the line.
pub(super) fn split_indent(line: &str) -> (usize, &str) {
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
pub(super) struct Fence {
    pub(super) ch: u8,
    pub(super) len: usize,
    pub(super) line: usize,
}

impl Fence {
    /// A line opening a fenced code block: 3+ backticks or tildes (at any indent, since
    /// fences inside list items are indented).
    pub(super) fn open(rest: &str, line: usize) -> Option<Fence> {
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

    pub(super) fn closes(&self, rest: &str) -> bool {
        let bytes = rest.as_bytes();
        let len = bytes.iter().take_while(|&&c| c == self.ch).count();
        len >= self.len && trim(&rest[len..]).is_empty()
    }
}

/// An ATX heading (`#` to `######`, at most 3 columns of indent): its level and its text
/// without the optional closing `#`s.
pub(super) fn heading(indent: usize, rest: &str) -> Option<(usize, &str)> {
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
pub(super) fn is_tasks_title(title: &str) -> bool {
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
pub(super) fn heading_task(title: &str) -> Option<(&str, &str)> {
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
pub(super) fn checkbox(rest: &str) -> Option<(char, usize, bool, &str)> {
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
pub(super) fn split_id(text: &str) -> Option<(&str, &str, bool)> {
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
pub(super) fn letter_id(text: &str) -> Option<(&str, &str)> {
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
pub(super) fn author_id(text: &str) -> Option<(&str, &str, bool)> {
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

/// An id with nothing before it: `1.2`, `Task 1.2:`, `A1:`.
pub(super) fn bare_id(s: &str) -> Option<(&str, &str)> {
    match s.as_bytes().first()? {
        b'0'..=b'9' => split_id(s).map(|(id, title, _)| (id, title)),
        b'T' | b't' => heading_task(s).or_else(|| letter_id(s)),
        _ => letter_id(s),
    }
}

pub(super) fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &s[prefix.len()..])
}

/// `Key:` with optional bold in either place (`**Key**:`, `**Key:**`): the value after it.
pub(super) fn labelled<'a>(s: &'a str, key: &str) -> Option<&'a str> {
    let s = s.strip_prefix("**").unwrap_or(s);
    let rest = strip_prefix_ci(s, key)?;
    let rest = rest.strip_prefix("**").unwrap_or(rest);
    let rest = rest.strip_prefix(':')?;
    let rest = rest.strip_prefix("**").unwrap_or(rest);
    Some(trim(rest))
}

/// A `**Status**:` value of a task heading: a checkbox (`[x]`, `[-] In progress`) or words.
pub(in crate::spec) fn status_word(value: &str) -> Option<TaskStatus> {
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
pub(in crate::spec) fn status_box(value: &str) -> Option<TaskStatus> {
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
pub(super) fn status_symbol(value: &str) -> Option<TaskStatus> {
    match value.trim_start().chars().next()? {
        '✅' | '✔' | '☑' | '✓' => Some(TaskStatus::Done),
        '🚧' | '🔄' => Some(TaskStatus::InProgress),
        _ => None,
    }
}

/// Removes one list bullet (`- `, `* `, `+ `) from a line's content.
pub(super) fn strip_bullet(content: &str) -> &str {
    let b = content.as_bytes();
    if b.len() >= 2 && matches!(b[0], b'-' | b'*' | b'+') && matches!(b[1], b' ' | b'\t') {
        trim_start(&content[2..])
    } else {
        content
    }
}

pub(super) fn is_bullet(content: &str) -> bool {
    let b = content.as_bytes();
    b.len() >= 2 && matches!(b[0], b'-' | b'*' | b'+') && matches!(b[1], b' ' | b'\t')
}

/// Whether a line ends a multi-line `_Prompt:` that never closes (the MCP server stops at a
/// bullet, a `Files:` or a `Purpose:` line; a heading ends it too).
pub(super) fn ends_prompt(content: &str) -> bool {
    is_bullet(content) || content.starts_with('#') || is_file_or_purpose(content)
}

pub(super) fn is_file_or_purpose(s: &str) -> bool {
    strip_prefix_ci(s, "file").is_some_and(|r| r.starts_with(':') || r.starts_with("s:"))
        || strip_prefix_ci(s, "purpose:").is_some()
}

/// A metadata line (after an optional bullet): never part of another item's prompt.
pub(super) fn is_metadata_line(content: &str) -> bool {
    let s = strip_bullet(content);
    is_file_or_purpose(s)
        || ["_Prompt:", "_Requirements:", "_Leverage:", "_Blocked:"]
            .iter()
            .any(|k| s.starts_with(k))
}

/// File paths from a `Files:` value: separated by commas outside parentheses and backticks;
/// a path in backticks is the text between them, whatever note follows it; notes in `( )` or
/// full-width `（ ）` (as in `` `pom.xml`（添加 `jjwt`）``, seen in real files) are dropped.
pub(in crate::spec) fn split_files(value: &str, out: &mut Vec<String>) {
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

pub(super) fn push_file(piece: &str, out: &mut Vec<String>) {
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
pub(super) fn offset_in(base: &str, sub: &str) -> usize {
    (sub.as_ptr() as usize).saturating_sub(base.as_ptr() as usize)
}
