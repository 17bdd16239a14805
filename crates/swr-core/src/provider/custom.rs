//! Custom providers declared in config, and the built-in simulated agent (`swr sim-agent`).

use super::{
    AttemptRequest, CustomProviderConfig, PromptMode, ProviderDef, ProviderError, ProviderKind,
};
use crate::supervise::{CommandSpec, StdinInput};

pub(super) fn def(name: &str, c: &CustomProviderConfig) -> Result<ProviderDef, ProviderError> {
    if c.command.is_empty() || c.command[0].is_empty() {
        return Err(ProviderError::EmptyCommand {
            provider: name.to_string(),
            key: format!("providers.{name}.command"),
        });
    }
    Ok(ProviderDef {
        name: name.to_string(),
        kind: ProviderKind::Custom,
        command: c.command.clone(),
        prompt: c.prompt,
        output: c.output,
        model_flag: c.model_flag.clone(),
        resume_flag: c.resume_flag.clone(),
        env: c.env.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
    })
}

/// Fixed args, `[model_flag M]`, `[resume_flag ID]`, then the prompt as the last argument or on
/// stdin. A requested model or resume is dropped when the provider declares no flag for it:
/// swr cannot guess another CLI's syntax.
pub(super) fn command(spec: &mut CommandSpec, def: &ProviderDef, req: &AttemptRequest) {
    if let (Some(flag), Some(m)) = (&def.model_flag, req.model) {
        spec.args.extend([flag.clone(), m.to_string()]);
    }
    if let (Some(flag), Some(id)) = (&def.resume_flag, req.resume_session) {
        spec.args.extend([flag.clone(), id.to_string()]);
    }
    spec.env.extend(def.env.iter().cloned());
    match def.prompt {
        PromptMode::Arg => spec.args.push(req.prompt.to_string()),
        PromptMode::Stdin => spec.stdin = StdinInput::Text(req.prompt.to_string()),
    }
}

/// `swr sim-agent [--model M] [--resume ID] -- <prompt>`: claude-like flags so the simulated
/// agent exercises the same paths, a large prompt on stdin included.
pub(super) fn sim_command(spec: &mut CommandSpec, req: &AttemptRequest) {
    if let Some(m) = req.model {
        spec.args.extend(["--model".to_string(), m.to_string()]);
    }
    if let Some(id) = req.resume_session {
        spec.args.extend(["--resume".to_string(), id.to_string()]);
    }
    if super::prompt_on_stdin(req) {
        spec.stdin = StdinInput::Text(req.prompt.to_string());
    } else {
        spec.args.extend(["--".to_string(), req.prompt.to_string()]);
    }
}
