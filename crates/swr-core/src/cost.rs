//! Tokens and dollars: what one attempt used ([`Usage`], from its CLI's own result event), sums
//! over attempts ([`Totals`]), and the estimate from the config's `prices` table for CLIs that
//! report tokens but no cost (codex, gemini). swr never invents a price: without a `prices`
//! entry an attempt that reported no cost has none, and an estimate is always marked as one.
//!
//! Pure: no I/O. The store sums recorded attempts; the runner's machine decides budgets from
//! these values.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::provider::{ResultInfo, TokenUsage};

/// USD per million tokens of one model (or of every model of a provider).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Price {
    pub input: f64,
    /// Input served from the prompt cache; `input` when not given.
    #[serde(default)]
    pub cached_input: Option<f64>,
    pub output: f64,
}

/// The `prices` config table: model name (or provider name) to its price.
pub type Prices = BTreeMap<String, Price>;

/// What one attempt used.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct Usage {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tokens: Option<TokenUsage>,
    /// USD as the CLI reported it, or estimated from `prices` when `estimated`.
    pub cost_usd: Option<f64>,
    #[serde(rename = "cost_estimated")]
    pub estimated: bool,
    /// The model(s) the attempt ran on, as far as anyone said: `a, b` for several.
    pub model: Option<String>,
}

impl Usage {
    /// From the agent's result event. `provider` and `requested` (the `--model` swr passed)
    /// are where a price is looked up when the CLI names no model.
    pub fn from_result(
        r: &ResultInfo,
        provider: &str,
        requested: Option<&str>,
        prices: &Prices,
    ) -> Usage {
        let model = if r.models.is_empty() {
            r.model.clone().or_else(|| requested.map(str::to_string))
        } else {
            Some(
                r.models
                    .iter()
                    .map(|m| m.model.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            )
        };
        let (cost_usd, estimated) = match r.cost_usd {
            Some(c) => (Some(c), false),
            None => {
                let parts: Vec<(Option<&str>, TokenUsage)> = if r.models.is_empty() {
                    r.usage
                        .map(|u| vec![(r.model.as_deref(), u)])
                        .unwrap_or_default()
                } else {
                    r.models
                        .iter()
                        .map(|m| (Some(m.model.as_str()), m.usage))
                        .collect()
                };
                let e = estimate(&parts, provider, requested, prices);
                (e, e.is_some())
            }
        };
        Usage {
            tokens: r.usage,
            cost_usd,
            estimated,
            model,
        }
    }

    /// Input plus output tokens, 0 when unknown.
    pub fn total_tokens(&self) -> u64 {
        self.tokens.map(|t| t.total()).unwrap_or(0)
    }
}

/// The cost of `parts` (a model, when known, and its tokens) from `prices`, looked up by the
/// model's name, then the requested model, then the provider's name. `None` unless every part
/// has a price: a partial sum would read as the whole.
pub fn estimate(
    parts: &[(Option<&str>, TokenUsage)],
    provider: &str,
    requested: Option<&str>,
    prices: &Prices,
) -> Option<f64> {
    if parts.is_empty() {
        return None;
    }
    let mut total = 0.0;
    for (model, u) in parts {
        let price = [*model, requested, Some(provider)]
            .into_iter()
            .flatten()
            .find_map(|k| prices.get(k))?;
        let input = u.input.unwrap_or(0);
        let cached = u.cached_input.unwrap_or(0).min(input);
        let per_m = |n: u64, usd: f64| n as f64 * usd / 1_000_000.0;
        total += per_m(input - cached, price.input)
            + per_m(cached, price.cached_input.unwrap_or(price.input))
            + per_m(u.output.unwrap_or(0), price.output);
    }
    Some(total)
}

/// Sums over attempts: of a run, a spec, a task, a day.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
pub struct Totals {
    /// Attempts counted.
    pub attempts: u64,
    /// Of those, attempts with a cost (reported or estimated).
    pub priced: u64,
    /// Of those, attempts that reported tokens.
    pub metered: u64,
    pub input_tokens: u64,
    pub cached_tokens: u64,
    pub output_tokens: u64,
    /// Reported and estimated USD together.
    pub cost_usd: f64,
    /// The part of `cost_usd` that is an estimate from `prices`.
    pub estimated_usd: f64,
}

impl Totals {
    pub fn add(&mut self, u: &Usage) {
        self.attempts += 1;
        if let Some(c) = u.cost_usd {
            self.priced += 1;
            self.cost_usd += c;
            if u.estimated {
                self.estimated_usd += c;
            }
        }
        if let Some(t) = u
            .tokens
            .filter(|t| t.input.is_some() || t.cached_input.is_some() || t.output.is_some())
        {
            self.metered += 1;
            self.input_tokens = self.input_tokens.saturating_add(t.input.unwrap_or(0));
            self.cached_tokens = self
                .cached_tokens
                .saturating_add(t.cached_input.unwrap_or(0));
            self.output_tokens = self.output_tokens.saturating_add(t.output.unwrap_or(0));
        }
    }

    pub fn merged(mut self, o: &Totals) -> Totals {
        self.attempts += o.attempts;
        self.priced += o.priced;
        self.metered += o.metered;
        self.input_tokens = self.input_tokens.saturating_add(o.input_tokens);
        self.cached_tokens = self.cached_tokens.saturating_add(o.cached_tokens);
        self.output_tokens = self.output_tokens.saturating_add(o.output_tokens);
        self.cost_usd += o.cost_usd;
        self.estimated_usd += o.estimated_usd;
        self
    }

    /// Input plus output.
    pub fn tokens(&self) -> u64 {
        self.input_tokens.saturating_add(self.output_tokens)
    }

    /// The mean cost of the attempts that have one.
    pub fn mean_cost(&self) -> Option<f64> {
        (self.priced > 0).then(|| self.cost_usd / self.priced as f64)
    }

    /// The mean input plus output of the attempts that reported tokens.
    pub fn mean_tokens(&self) -> Option<f64> {
        (self.metered > 0).then(|| self.tokens() as f64 / self.metered as f64)
    }

    /// "$1.23 (est. $0.40) · 120k tokens in (100k cached), 3.4k out", or `None` when nothing
    /// was reported at all.
    pub fn describe(&self) -> Option<String> {
        if self.priced == 0 && self.metered == 0 {
            return None;
        }
        let mut parts = Vec::new();
        if self.priced > 0 {
            let mut c = usd(self.cost_usd);
            if self.estimated_usd > 0.0 {
                if (self.estimated_usd - self.cost_usd).abs() < 1e-12 {
                    c.push_str(" (estimated)");
                } else {
                    c.push_str(&format!(
                        " (of which {} estimated)",
                        usd(self.estimated_usd)
                    ));
                }
            }
            parts.push(c);
        }
        if self.metered > 0 {
            parts.push(format!(
                "{} tokens in ({} cached), {} out",
                tokens(self.input_tokens),
                tokens(self.cached_tokens),
                tokens(self.output_tokens)
            ));
        }
        Some(parts.join(" · "))
    }
}

/// Dollars for people: cents when there are some, four decimals below a cent.
pub fn usd(x: f64) -> String {
    if x != 0.0 && x.abs() < 0.01 {
        format!("${x:.4}")
    } else {
        format!("${x:.2}")
    }
}

/// Token counts for people: `950`, `31.2k`, `1.25M`.
pub fn tokens(n: u64) -> String {
    match n {
        n if n < 1_000 => n.to_string(),
        n if n < 1_000_000 => format!("{:.1}k", n as f64 / 1e3),
        n => format!("{:.2}M", n as f64 / 1e6),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::provider::ModelUsage;

    fn t(input: u64, cached: u64, output: u64) -> TokenUsage {
        TokenUsage {
            input: Some(input),
            cached_input: Some(cached),
            output: Some(output),
        }
    }

    fn prices() -> Prices {
        [
            (
                "gpt-5-codex".to_string(),
                Price {
                    input: 1.25,
                    cached_input: Some(0.125),
                    output: 10.0,
                },
            ),
            (
                "gemini".to_string(),
                Price {
                    input: 2.0,
                    cached_input: None,
                    output: 12.0,
                },
            ),
        ]
        .into_iter()
        .collect()
    }

    #[test]
    fn a_reported_cost_is_never_replaced_by_an_estimate() {
        let r = ResultInfo {
            cost_usd: Some(0.5),
            usage: Some(t(1_000_000, 0, 0)),
            model: Some("gemini".into()),
            ..ResultInfo::default()
        };
        let u = Usage::from_result(&r, "claude", None, &prices());
        assert_eq!(u.cost_usd, Some(0.5));
        assert!(!u.estimated);
    }

    #[test]
    fn an_estimate_prices_uncached_cached_and_output_tokens_and_says_so() {
        let r = ResultInfo {
            usage: Some(t(1_000_000, 800_000, 100_000)),
            ..ResultInfo::default()
        };
        // codex names no model: the requested one is looked up.
        let u = Usage::from_result(&r, "codex", Some("gpt-5-codex"), &prices());
        let want = 0.2 * 1.25 + 0.8 * 0.125 + 0.1 * 10.0;
        assert!((u.cost_usd.unwrap() - want).abs() < 1e-9);
        assert!(u.estimated);
        assert_eq!(u.model.as_deref(), Some("gpt-5-codex"));
        // No price for it: no cost, never a guess.
        let u = Usage::from_result(&r, "codex", Some("o9"), &prices());
        assert_eq!(u.cost_usd, None);
        assert!(!u.estimated);
    }

    #[test]
    fn per_model_totals_are_priced_one_by_one_with_the_provider_as_fallback() {
        let r = ResultInfo {
            usage: Some(t(2_000_000, 0, 0)),
            models: vec![
                ModelUsage {
                    model: "gemini-3.1-pro".into(),
                    usage: t(1_000_000, 0, 0),
                    cost_usd: None,
                },
                ModelUsage {
                    model: "gpt-5-codex".into(),
                    usage: t(1_000_000, 0, 0),
                    cost_usd: None,
                },
            ],
            ..ResultInfo::default()
        };
        let u = Usage::from_result(&r, "gemini", None, &prices());
        assert!((u.cost_usd.unwrap() - (2.0 + 1.25)).abs() < 1e-9);
        assert_eq!(u.model.as_deref(), Some("gemini-3.1-pro, gpt-5-codex"));
        // One model without any price: no estimate at all.
        let u = Usage::from_result(&r, "custom", None, &prices());
        assert_eq!(u.cost_usd, None);
    }

    #[test]
    fn totals_add_up_and_give_means_of_what_was_reported() {
        let mut s = Totals::default();
        s.add(&Usage {
            tokens: Some(t(100, 50, 10)),
            cost_usd: Some(1.0),
            estimated: false,
            model: None,
        });
        s.add(&Usage {
            tokens: Some(t(300, 0, 30)),
            cost_usd: Some(2.0),
            estimated: true,
            model: None,
        });
        s.add(&Usage::default());
        assert_eq!(s.attempts, 3);
        assert_eq!(s.priced, 2);
        assert_eq!(s.mean_cost(), Some(1.5));
        assert_eq!(s.mean_tokens(), Some(220.0));
        assert_eq!(s.tokens(), 440);
        assert_eq!(
            s.describe().unwrap(),
            "$3.00 (of which $2.00 estimated) · 400 tokens in (50 cached), 40 out"
        );
        assert_eq!(Totals::default().describe(), None);
        assert_eq!(Totals::default().mean_cost(), None);
    }

    #[test]
    fn numbers_for_people() {
        assert_eq!(usd(0.0), "$0.00");
        assert_eq!(usd(0.0042), "$0.0042");
        assert_eq!(usd(12.345), "$12.35");
        assert_eq!(tokens(950), "950");
        assert_eq!(tokens(31_200), "31.2k");
        assert_eq!(tokens(1_250_000), "1.25M");
    }
}
