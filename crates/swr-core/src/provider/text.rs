//! Plain-text output (custom providers with `"output": "text"`): every line is agent text.
//! Nothing is classified here; failures come from `classify_tail` over the last lines.

use super::{AgentSignal, LineParser};

pub(super) struct TextParser;

impl LineParser for TextParser {
    fn parse_line(&mut self, line: &str) -> Vec<AgentSignal> {
        let t = line.trim_end();
        if t.trim().is_empty() {
            Vec::new()
        } else {
            vec![AgentSignal::Text(t.to_string())]
        }
    }
}
