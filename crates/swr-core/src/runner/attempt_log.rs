//! One log file per attempt, never overwritten: sequential names from `log_file_template`,
//! a header (command, prompt, start) before the agent's output and a footer (outcome,
//! duration) after it. The supervisor appends the output itself.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use jiff::Timestamp;

use crate::supervise::CommandSpec;

/// Hands out log file names in one spec's log directory.
#[derive(Debug)]
pub struct LogNamer {
    dir: PathBuf,
    template: String,
    spec: String,
    next_index: u64,
}

impl LogNamer {
    /// Numbering continues after the files already there, so a new run never reuses a name.
    pub fn new(dir: &Path, template: &str, spec: &str) -> std::io::Result<LogNamer> {
        std::fs::create_dir_all(dir)?;
        let existing = std::fs::read_dir(dir)?.count() as u64;
        Ok(LogNamer {
            dir: dir.to_path_buf(),
            template: template.to_string(),
            spec: spec.to_string(),
            next_index: existing + 1,
        })
    }

    /// Creates the next log file (never an existing one) and returns it open for appending.
    /// A template without `{index}` that names an existing file gets `.2`, `.3`, … appended,
    /// in order, so the names of one spec's attempts never skip a number.
    pub fn create(&mut self, iteration: u32, attempt: u32) -> std::io::Result<(PathBuf, File)> {
        let open = |path: &Path| OpenOptions::new().append(true).create_new(true).open(path);
        if self.template.contains("{index}") {
            loop {
                let path = self
                    .dir
                    .join(self.render(self.next_index, iteration, attempt));
                self.next_index += 1;
                match open(&path) {
                    Ok(f) => return Ok((path, f)),
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                    Err(e) => return Err(e),
                }
            }
        }
        let name = self.render(self.next_index, iteration, attempt);
        for n in 1u64.. {
            let path = match n {
                1 => self.dir.join(&name),
                n => self.dir.join(format!("{name}.{n}")),
            };
            match open(&path) {
                Ok(f) => return Ok((path, f)),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(e),
            }
        }
        Err(std::io::Error::other("no free log file name"))
    }

    fn render(&self, index: u64, iteration: u32, attempt: u32) -> String {
        let ts = Timestamp::now().strftime("%Y%m%dT%H%M%S%.3fZ").to_string();
        self.template
            .replace("{index}", &index.to_string())
            .replace("{attempt}", &attempt.to_string())
            .replace("{iteration}", &iteration.to_string())
            .replace("{spec_name}", &self.spec)
            .replace("{timestamp}", &ts)
    }
}

/// Which attempt a log belongs to.
#[derive(Debug, Clone, Copy)]
pub struct AttemptIds<'a> {
    pub runner_id: &'a str,
    pub spec: &'a str,
    pub iteration: u32,
    pub attempt: u32,
}

/// The header: who ran what, with the prompt quoted line by line.
pub fn write_header(
    f: &mut File,
    ids: AttemptIds<'_>,
    cmd: &CommandSpec,
    prompt: &str,
    started: Timestamp,
) -> std::io::Result<()> {
    let argv: Vec<String> = std::iter::once(cmd.program.as_str())
        .chain(cmd.args.iter().map(String::as_str))
        .map(|a| {
            if a == prompt {
                "<prompt>".to_string()
            } else {
                quote(a)
            }
        })
        .collect();
    let AttemptIds {
        runner_id,
        spec,
        iteration,
        attempt,
    } = ids;
    let mut h = String::new();
    h.push_str(&format!(
        "# swr attempt log: runner {runner_id}, spec {spec}, iteration {iteration}, attempt {attempt}\n"
    ));
    h.push_str(&format!("# started: {started:.3}\n"));
    h.push_str(&format!("# cwd: {}\n", cmd.cwd.display()));
    h.push_str(&format!("# command: {}\n", argv.join(" ")));
    h.push_str("# prompt:\n");
    for line in prompt.lines() {
        h.push_str("# | ");
        h.push_str(line);
        h.push('\n');
    }
    h.push_str("# ---- agent output ----\n");
    f.write_all(h.as_bytes())?;
    f.flush()
}

/// The footer, appended after the supervisor finished writing the output.
pub fn write_footer(path: &Path, summary: &str, ended: Timestamp) -> std::io::Result<()> {
    let mut f = OpenOptions::new().append(true).open(path)?;
    f.write_all(format!("\n# ---- end ----\n# ended: {ended:.3}\n# {summary}\n").as_bytes())?;
    f.flush()
}

fn quote(a: &str) -> String {
    if !a.is_empty()
        && a.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,@%+".contains(c))
    {
        a.to_string()
    } else {
        format!("'{}'", a.replace('\'', "'\\''"))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn names_are_sequential_and_never_reused() {
        let dir = tempfile::tempdir().unwrap();
        let mut n = LogNamer::new(dir.path(), "task_{index}.log", "s").unwrap();
        let (a, _) = n.create(1, 1).unwrap();
        let (b, _) = n.create(1, 2).unwrap();
        assert_eq!(a.file_name().unwrap(), "task_1.log");
        assert_eq!(b.file_name().unwrap(), "task_2.log");
        // A second run in the same directory continues the numbering.
        let mut n2 = LogNamer::new(dir.path(), "task_{index}.log", "s").unwrap();
        let (c, _) = n2.create(1, 1).unwrap();
        assert_eq!(c.file_name().unwrap(), "task_3.log");
        // A stray file with the next name is skipped, not overwritten.
        std::fs::write(dir.path().join("task_5.log"), "keep").unwrap();
        let mut n3 = LogNamer::new(dir.path(), "task_{index}.log", "s").unwrap();
        let (d, _) = n3.create(1, 1).unwrap();
        assert_eq!(d.file_name().unwrap(), "task_6.log");
        assert_eq!(
            std::fs::read_to_string(dir.path().join("task_5.log")).unwrap(),
            "keep"
        );
    }

    #[test]
    fn template_without_index_still_never_overwrites() {
        let dir = tempfile::tempdir().unwrap();
        let mut n = LogNamer::new(dir.path(), "{spec_name}.log", "auth").unwrap();
        let (a, _) = n.create(1, 1).unwrap();
        let (b, _) = n.create(2, 1).unwrap();
        let (c, _) = n.create(2, 2).unwrap();
        assert_eq!(a.file_name().unwrap(), "auth.log");
        assert_eq!(b.file_name().unwrap(), "auth.log.2");
        assert_eq!(c.file_name().unwrap(), "auth.log.3");
        let mut again = LogNamer::new(dir.path(), "{spec_name}.log", "auth").unwrap();
        let (d, _) = again.create(1, 1).unwrap();
        assert_eq!(d.file_name().unwrap(), "auth.log.4");
    }

    #[test]
    fn header_hides_the_prompt_argument_and_quotes_it_below() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("l.log");
        let mut f = File::create(&path).unwrap();
        let cmd = CommandSpec {
            program: "claude".into(),
            args: vec!["-p".into(), "--".into(), "do it\nnow".into()],
            env: vec![],
            env_remove: vec![],
            cwd: dir.path().to_path_buf(),
            stdin: crate::supervise::StdinInput::Null,
        };
        let ids = AttemptIds {
            runner_id: "r-1",
            spec: "s",
            iteration: 1,
            attempt: 2,
        };
        write_header(&mut f, ids, &cmd, "do it\nnow", Timestamp::UNIX_EPOCH).unwrap();
        write_footer(&path, "outcome: crash", Timestamp::UNIX_EPOCH).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.contains("# command: claude -p -- <prompt>\n"),
            "{text}"
        );
        assert!(text.contains("# | do it\n# | now\n"), "{text}");
        assert!(text.contains("iteration 1, attempt 2"));
        assert!(text.ends_with("# outcome: crash\n"));
    }
}
