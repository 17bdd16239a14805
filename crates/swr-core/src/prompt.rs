//! The agent prompt: `prompt_template` with the Python tool's `{variables}` (str.format style,
//! `{{` and `}}` for literal braces). Templates are checked when config loads, so an unknown
//! variable is a config error naming the variable, never a crash in the middle of a run.

/// Every variable a template may use.
pub const VARIABLES: &[&str] = &[
    "spec_name",
    "progress_summary",
    "tasks_total",
    "tasks_done",
    "tasks_remaining",
    "tasks_in_progress",
    "timestamp",
    "tasks_path",
    "next_task_id",
    "next_task_title",
    "next_task_prompt",
    "verify_failure",
];

pub const DEFAULT_TEMPLATE: &str = "\
You are working through the spec '{spec_name}' in this repository, one task at a time.

## Progress
{progress_summary}

## Your task now
Task {next_task_id}: {next_task_title}
{next_task_prompt}

## How to work
1. Read {tasks_path} and the spec's requirements.md and design.md next to it.
2. Mark the task in progress in tasks.md (`- [ ]` -> `- [-]`) before you start.
3. Implement it completely: production code and tests, following the conventions of the code
   around it. Run the tests and make them pass.
4. Mark the task done (`- [-]` -> `- [x]`) only when it is really complete, and commit the work
   together with the tasks.md update (message: 'feat({spec_name}): task {next_task_id} ...').
5. If the task cannot be done, mark it blocked (`- [~]`) with a `_Blocked: reason_` line under it,
   commit, and stop.
Then continue with the next unfinished task if you have room; otherwise stop. Do not ask
questions: nobody is watching this session.
{verify_failure}";

/// The prompt of an attempt that continues the agent's own session after a failure: the
/// session already holds the instructions and the work so far, so it only needs to know that
/// it was interrupted and where the spec stands now (tasks.md may have moved on).
pub const DEFAULT_RESUME_TEMPLATE: &str = "\
Your previous session on the spec '{spec_name}' was interrupted. Continue where you left off.

## Where the spec stands now
{progress_summary}

## Your task now
Task {next_task_id}: {next_task_title}

Check {tasks_path} and `git status` first: work you did before the interruption may already be
there. Finish the task, mark it done in tasks.md and commit, as before.
{verify_failure}";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error(
        "unknown variable {{{name}}} at byte {offset}; allowed: {}; write {{{{ and }}}} for literal braces",
        allowed()
    )]
    UnknownVariable { name: String, offset: usize },
    #[error("unclosed '{{' at byte {offset}; write {{{{ for a literal brace")]
    Unclosed { offset: usize },
    #[error("single '}}' at byte {offset}; write }}}} for a literal brace")]
    StrayClose { offset: usize },
}

fn allowed() -> String {
    VARIABLES
        .iter()
        .map(|v| format!("{{{v}}}"))
        .collect::<Vec<_>>()
        .join(", ")
}

enum Piece<'a> {
    Text(&'a str),
    Var(&'a str),
}

fn pieces(template: &str) -> Result<Vec<Piece<'_>>, TemplateError> {
    let mut out = Vec::new();
    let bytes = template.as_bytes();
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'{' if bytes.get(i + 1) == Some(&b'{') => {
                out.push(Piece::Text(&template[start..=i]));
                i += 2;
                start = i;
            }
            b'}' if bytes.get(i + 1) == Some(&b'}') => {
                out.push(Piece::Text(&template[start..=i]));
                i += 2;
                start = i;
            }
            b'{' => {
                out.push(Piece::Text(&template[start..i]));
                let close = template[i + 1..]
                    .find('}')
                    .ok_or(TemplateError::Unclosed { offset: i })?;
                let name = &template[i + 1..i + 1 + close];
                if !VARIABLES.contains(&name) {
                    return Err(TemplateError::UnknownVariable {
                        name: name.to_string(),
                        offset: i,
                    });
                }
                out.push(Piece::Var(name));
                i += close + 2;
                start = i;
            }
            b'}' => return Err(TemplateError::StrayClose { offset: i }),
            _ => i += 1,
        }
    }
    out.push(Piece::Text(&template[start..]));
    Ok(out)
}

pub fn validate_template(template: &str) -> Result<(), TemplateError> {
    pieces(template).map(|_| ())
}

/// The values of the variables for one iteration.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PromptVars {
    pub spec_name: String,
    pub progress_summary: String,
    pub tasks_total: usize,
    pub tasks_done: usize,
    pub tasks_remaining: usize,
    pub tasks_in_progress: usize,
    /// RFC 3339.
    pub timestamp: String,
    pub tasks_path: String,
    pub next_task_id: String,
    pub next_task_title: String,
    pub next_task_prompt: String,
    /// Empty, or a section saying which check rejected the last ticks and its output.
    pub verify_failure: String,
}

impl PromptVars {
    fn get(&self, name: &str) -> String {
        match name {
            "spec_name" => self.spec_name.clone(),
            "progress_summary" => self.progress_summary.clone(),
            "tasks_total" => self.tasks_total.to_string(),
            "tasks_done" => self.tasks_done.to_string(),
            "tasks_remaining" => self.tasks_remaining.to_string(),
            "tasks_in_progress" => self.tasks_in_progress.to_string(),
            "timestamp" => self.timestamp.clone(),
            "tasks_path" => self.tasks_path.clone(),
            "next_task_id" => self.next_task_id.clone(),
            "next_task_title" => self.next_task_title.clone(),
            "next_task_prompt" => self.next_task_prompt.clone(),
            "verify_failure" => self.verify_failure.clone(),
            _ => String::new(),
        }
    }
}

/// Renders a template validated at config load.
pub fn render(template: &str, vars: &PromptVars) -> Result<String, TemplateError> {
    let mut out = String::with_capacity(template.len() + vars.progress_summary.len());
    for piece in pieces(template)? {
        match piece {
            Piece::Text(t) => out.push_str(t),
            Piece::Var(v) => out.push_str(&vars.get(v)),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars() -> PromptVars {
        PromptVars {
            spec_name: "auth".into(),
            progress_summary: "1/3 done".into(),
            tasks_total: 3,
            tasks_done: 1,
            tasks_remaining: 2,
            tasks_in_progress: 1,
            timestamp: "2026-11-28T13:00:00Z".into(),
            tasks_path: ".spec-workflow/specs/auth/tasks.md".into(),
            next_task_id: "2.1".into(),
            next_task_title: "Add login".into(),
            next_task_prompt: "Role: dev".into(),
            verify_failure: "## The last check failed".into(),
        }
    }

    #[test]
    fn renders_every_variable_and_escaped_braces() {
        let t = "{spec_name}|{progress_summary}|{tasks_total}|{tasks_done}|{tasks_remaining}|\
                 {tasks_in_progress}|{timestamp}|{tasks_path}|{next_task_id}|{next_task_title}|\
                 {next_task_prompt}|{verify_failure}|{{literal}}";
        assert_eq!(
            render(t, &vars()).expect("renders"),
            "auth|1/3 done|3|1|2|1|2026-11-28T13:00:00Z|.spec-workflow/specs/auth/tasks.md|2.1|\
             Add login|Role: dev|## The last check failed|{literal}"
        );
    }

    #[test]
    fn unknown_variable_names_it_and_the_allowed_ones() {
        let err = validate_template("Work on {spec}").expect_err("unknown");
        assert_eq!(
            err,
            TemplateError::UnknownVariable {
                name: "spec".into(),
                offset: 8
            }
        );
        let msg = err.to_string();
        assert!(
            msg.contains("{spec}") && msg.contains("{spec_name}"),
            "{msg}"
        );
    }

    #[test]
    fn unbalanced_braces_are_errors() {
        assert_eq!(
            validate_template("a {spec_name"),
            Err(TemplateError::Unclosed { offset: 2 })
        );
        assert_eq!(
            validate_template("a } b"),
            Err(TemplateError::StrayClose { offset: 2 })
        );
    }

    #[test]
    fn default_template_is_valid_and_mentions_the_task() {
        let out = render(DEFAULT_TEMPLATE, &vars()).expect("renders");
        assert!(out.contains("Task 2.1: Add login"));
        assert!(out.contains("feat(auth): task 2.1"));
    }

    #[test]
    fn both_default_templates_report_a_failed_check_and_say_nothing_without_one() {
        for t in [DEFAULT_TEMPLATE, DEFAULT_RESUME_TEMPLATE] {
            let out = render(t, &vars()).expect("renders");
            assert!(out.contains("## The last check failed"), "{out}");
            let quiet = render(
                t,
                &PromptVars {
                    verify_failure: String::new(),
                    ..vars()
                },
            )
            .expect("renders");
            assert!(!quiet.contains("check failed"));
            assert!(quiet.ends_with(".\n"), "no blank tail: {quiet:?}");
        }
    }

    #[test]
    fn python_tool_template_is_valid() {
        let cfg: serde_json::Value = serde_json::from_str(include_str!(
            "../tests/fixtures/config/python-tool-config.json"
        ))
        .expect("fixture parses");
        let t = cfg["prompt_template"].as_str().expect("template");
        validate_template(t).expect("the Python tool's template is accepted");
    }
}
