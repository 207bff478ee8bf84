//! `[quality]`: what is scored beside the load — the perplexity of the user's corpus from the
//! server's prompt log-probs, and long-context retrieval accuracy on seeded items — and when.
//! Validated into a [`QualitySpec`], rendered per cell (`context_tokens` may be swept).

use std::path::PathBuf;

use super::doc::Node;
use super::error::{Locs, ScenarioError};
use super::model::{
    PerplexityConfig, QualityConfig, QualityWhen, RetrievalConfig, RetrievalTask, Vars,
};
use super::read::{Ctx, Range};
use super::wellknown;

const KEYS: &[&str] = &["perplexity", "retrieval", "when", "share"];

/// The share of arrivals that are quality items under load when `share` is not given.
pub(crate) const DEFAULT_SHARE: f64 = 0.05;
const PERPLEXITY_KEYS: &[&str] = &["corpus", "documents", "window_tokens"];
const RETRIEVAL_KEYS: &[&str] = &["task", "context_tokens", "trials", "depths", "max_tokens"];

use crate::quality::DEFAULT_DEPTHS;

/// `[quality]`, before the cell's variables fill `context_tokens` in.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct QualitySpec {
    pub perplexity: Option<PerplexityConfig>,
    pub retrieval: Option<RetrievalSpec>,
    pub when: QualityWhen,
}

/// `[quality] retrieval` with `context_tokens` unresolved when the variable gives it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RetrievalSpec {
    pub task: RetrievalTask,
    pub context_tokens: Option<u32>,
    pub trials: u32,
    pub depths: Vec<f64>,
    pub max_tokens: u32,
}

/// Validates `[quality]`; `names` are the scenario's variables (`context_tokens` may be one).
pub(crate) fn validate(ctx: &mut Ctx, node: &Node, names: &[String]) -> Option<QualitySpec> {
    let t = ctx.table("quality", node, KEYS)?;
    let when = when(ctx, t.get("when"), t.get("share"));
    let perplexity = t.get("perplexity").map(|n| perplexity(ctx, n));
    let retrieval = t
        .get("retrieval")
        .map(|n| retrieval(ctx, n, names.iter().any(|v| v == "context_tokens")));
    if t.get("perplexity").is_none() && t.get("retrieval").is_none() {
        let hint = "add `perplexity = { corpus = \"wiki.jsonl\" }` and/or `retrieval = { task = \"passkey\", context_tokens = 4096, trials = 50 }`";
        ctx.error(
            &node.origin,
            "quality",
            "[quality] measures nothing",
            Some(hint.into()),
        );
        return None;
    }
    Some(QualitySpec {
        perplexity: perplexity.flatten(),
        retrieval: retrieval.flatten(),
        when: when?,
    })
}

/// `when` and `share`: after each repetition (the default), or under load at `share` of the
/// arrivals.
fn when(ctx: &mut Ctx, when: Option<&Node>, share: Option<&Node>) -> Option<QualityWhen> {
    let under_load = match when {
        None => false,
        Some(n) => {
            ctx.choice("quality.when", n, &["after-repetition", "under-load"])? == "under-load"
        }
    };
    match (under_load, share) {
        (false, None) => Some(QualityWhen::AfterRepetition),
        (false, Some(n)) => {
            let hint = "drop `share`, or set when = \"under-load\" to mix quality items into the measured load at that share of arrivals";
            ctx.error(
                &n.origin,
                "quality.share",
                "only applies to when = \"under-load\"",
                Some(hint.into()),
            );
            None
        }
        (true, None) => Some(QualityWhen::UnderLoad {
            share: DEFAULT_SHARE,
        }),
        (true, Some(n)) => {
            let hint = Some(
                "the fraction of arrivals that are quality items instead of measured requests, e.g. 0.05; at most 0.5, so that the load stays mostly measured",
            );
            let range = Range::above(0.0).up_to(0.5);
            let share = ctx.number("quality.share", n, range, hint)?;
            Some(QualityWhen::UnderLoad { share })
        }
    }
}

fn perplexity(ctx: &mut Ctx, node: &Node) -> Option<PerplexityConfig> {
    let t = ctx.table("quality.perplexity", node, PERPLEXITY_KEYS)?;
    let Some(corpus_node) = t.get("corpus") else {
        let hint = "the text to score, yours: a .jsonl file with one {\"text\": …} per line, or a .txt file whose documents are separated by blank lines";
        ctx.error(
            &node.origin,
            "quality.perplexity.corpus",
            "missing required key `corpus`",
            Some(hint.into()),
        );
        return None;
    };
    let corpus: Option<PathBuf> = ctx.path_value("quality.perplexity.corpus", corpus_node, true);
    if let Some(path) = &corpus {
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
        if !matches!(ext, "jsonl" | "txt") {
            let hint = "a .jsonl file with one {\"text\": …} per line, or a .txt file whose documents are separated by blank lines";
            let message = format!("unknown corpus format `.{ext}`");
            ctx.error(
                &corpus_node.origin,
                "quality.perplexity.corpus",
                message,
                Some(hint.into()),
            );
        }
    }
    let documents = t.get("documents").map(|n| {
        let hint = Some("how many documents of the corpus to score, from its start");
        ctx.int("quality.perplexity.documents", n, 2, 1_000_000, hint)
    });
    let window = t.get("window_tokens").map(|n| {
        let hint = Some("the longest prompt scored at once, in tokens; longer documents are scored in overlapping windows (needs [target] tokenizer)");
        ctx.int("quality.perplexity.window_tokens", n, 16, 10_000_000, hint)
    });
    Some(PerplexityConfig {
        corpus: corpus?,
        documents: match documents {
            Some(d) => Some(d? as u32),
            None => None,
        },
        window_tokens: match window {
            Some(w) => Some(w? as u32),
            None => None,
        },
    })
}

fn retrieval(ctx: &mut Ctx, node: &Node, swept: bool) -> Option<RetrievalSpec> {
    let t = ctx.table("quality.retrieval", node, RETRIEVAL_KEYS)?;
    let task = match t.get("task") {
        None => Some(RetrievalTask::Passkey),
        Some(n) => ctx
            .choice("quality.retrieval.task", n, &["passkey", "niah"])
            .map(|c| match c {
                "passkey" => RetrievalTask::Passkey,
                _ => RetrievalTask::Niah,
            }),
    };
    let context_tokens = match (t.get("context_tokens"), swept) {
        (Some(n), false) => {
            let hint = Some("the length of each item's prompt in tokens, e.g. 8192");
            ctx.int("quality.retrieval.context_tokens", n, 64, 10_000_000, hint)
                .map(|v| Some(v as u32))
        }
        (Some(n), true) => {
            let hint = "give the length in one place: [vars] context_tokens, or quality.retrieval.context_tokens";
            ctx.error(
                &n.origin,
                "quality.retrieval.context_tokens",
                "also set by the variable `context_tokens`",
                Some(hint.into()),
            );
            None
        }
        (None, true) => Some(None),
        (None, false) => {
            let hint =
                "e.g. `context_tokens = 8192`, or sweep it: [vars] context_tokens = [4096, 16384]";
            ctx.error(
                &node.origin,
                "quality.retrieval.context_tokens",
                "missing required key `context_tokens`",
                Some(hint.into()),
            );
            None
        }
    };
    let trials = t.get("trials").map_or(Some(50), |n| {
        let hint = Some("items scored after each repetition, e.g. 50");
        ctx.int("quality.retrieval.trials", n, 1, 100_000, hint)
    });
    let max_tokens = t.get("max_tokens").map_or(Some(16), |n| {
        let hint = Some("tokens generated for each answer; the key is the first number in them");
        ctx.int("quality.retrieval.max_tokens", n, 1, 4096, hint)
    });
    let depths = match t.get("depths") {
        None => Some(DEFAULT_DEPTHS.to_vec()),
        Some(n) => depths(ctx, n),
    };
    Some(RetrievalSpec {
        task: task?,
        context_tokens: context_tokens?,
        trials: trials? as u32,
        depths: depths?,
        max_tokens: max_tokens? as u32,
    })
}

fn depths(ctx: &mut Ctx, node: &Node) -> Option<Vec<f64>> {
    let key = "quality.retrieval.depths";
    let items = ctx.array(key, node)?;
    let hint =
        Some("where the key sits in the filler, from 0 (start) to 1 (end), e.g. [0, 0.5, 1]");
    if items.is_empty() {
        ctx.error(&node.origin, key, "must not be empty", hint.map(Into::into));
        return None;
    }
    let range = Range::at_least(0.0).up_to(1.0);
    let values: Vec<Option<f64>> = items
        .iter()
        .map(|n| ctx.number(key, n, range, hint))
        .collect();
    values.into_iter().collect()
}

impl QualitySpec {
    /// The quality settings of a cell: `context_tokens` from the variable when swept or set
    /// in `[vars]`.
    pub(crate) fn render(&self, vars: &Vars, locs: &Locs) -> Result<QualityConfig, ScenarioError> {
        let retrieval = match &self.retrieval {
            None => None,
            Some(r) => {
                let from_var = wellknown::count_at(vars, locs, "context_tokens", None)?;
                let context_tokens = match (r.context_tokens, from_var) {
                    (Some(c), _) => c,
                    (None, Some(c)) => c as u32,
                    (None, None) => {
                        return Err(locs.error(
                            "quality.retrieval.context_tokens",
                            "no value for this cell",
                            Some(
                                "set [vars] context_tokens or quality.retrieval.context_tokens"
                                    .into(),
                            ),
                        ));
                    }
                };
                Some(RetrievalConfig {
                    task: r.task,
                    context_tokens,
                    trials: r.trials,
                    depths: r.depths.clone(),
                    max_tokens: r.max_tokens,
                })
            }
        };
        Ok(QualityConfig {
            perplexity: self.perplexity.clone(),
            retrieval,
            when: self.when,
        })
    }
}
