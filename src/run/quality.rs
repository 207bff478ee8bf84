//! The quality pass of a repetition (`[quality] when = "after-repetition"`): on the same
//! server, right after the load, score the corpus's segments and answer the round's
//! retrieval items. Requests go a few at a time, outside the measurement; their outcomes
//! become the repetition's quality file. Whether the server can score prompts is asked with a
//! short prompt of its own before its first document and remembered until the next server
//! launch, so a server that cannot (llama.cpp) is asked once and reported as such, never
//! turned into a number, and a document too long for the context fails alone.
//!
//! Under load (`when = "under-load"`) the same items and records are sent by
//! [`super::under_load`] instead, in the middle of the measured arrivals.

use std::collections::HashMap;
use std::sync::Arc;

use futures_util::StreamExt;

use crate::backend::Client;
use crate::backend::client::quality::{ScoreError, ScorePrompt};
use crate::quality::perplexity::{Segment, SegmentPrompt};
use crate::quality::{self, Item};
use crate::record::{QualityKind, QualityRecord};
use crate::scenario::model::QualityConfig;
use crate::workload::tokenizer::ModelTokenizer;

/// Requests in flight during a quality pass.
const IN_FLIGHT: usize = 4;

/// Longest part of a retrieval reply kept in its record.
const REPLY_CHARS: usize = 80;

/// What a run knows across repetitions: each target's answer to "can you score prompts?",
/// and the retrieval items of the round being run (the same in every cell of the round).
#[derive(Debug, Default)]
pub(super) struct Support {
    /// Base URL → why the server cannot score prompts (`None`: it can).
    scoring: HashMap<String, Option<String>>,
    /// The items of the last (seed, settings) asked for.
    items: Option<(ItemsKey, Arc<Vec<Item>>)>,
}

impl Support {
    /// Forgets what servers answered (a new launch, perhaps at the same URL, answers anew).
    pub(super) fn forget_servers(&mut self) {
        self.scoring.clear();
    }

    /// What the server at `url` answered about scoring prompts, when asked already:
    /// `Some(None)` it can, `Some(Some(reason))` it cannot.
    pub(super) fn scoring(&self, url: &str) -> Option<Option<String>> {
        self.scoring.get(url).cloned()
    }

    /// Remembers the answer of the server at `url` (`None`: it can score prompts).
    pub(super) fn remember_scoring(&mut self, url: &str, cannot: Option<String>) {
        self.scoring.insert(url.to_string(), cannot);
    }

    /// The round's retrieval items for `config` (built once per round, then shared).
    pub(super) async fn items(
        &mut self,
        config: &QualityConfig,
        seed: u64,
        tokenizer: Option<Arc<ModelTokenizer>>,
    ) -> Result<Option<Arc<Vec<Item>>>, String> {
        let Some(r) = &config.retrieval else {
            return Ok(None);
        };
        let key = ItemsKey {
            seed,
            task: r.task,
            context_tokens: r.context_tokens,
            trials: r.trials,
            depths: r.depths.clone(),
            tokenizer: tokenizer.as_ref().map(|t| t.path().to_path_buf()),
        };
        Ok(Some(match &self.items {
            Some((k, items)) if *k == key => Arc::clone(items),
            _ => {
                let items = Arc::new(build_items(&key, tokenizer).await?);
                self.items = Some((key, Arc::clone(&items)));
                items
            }
        }))
    }
}

/// The text of the question "can you score prompts?", asked once per server before its
/// first document: short, so that only the server's ability decides the answer.
const PROBE: &str = "The quick brown fox jumps over the lazy dog, then runs back across the field.";

/// What a round's retrieval items depend on.
#[derive(Debug, Clone, PartialEq)]
struct ItemsKey {
    seed: u64,
    task: crate::quality::Task,
    context_tokens: u32,
    trials: u32,
    depths: Vec<f64>,
    tokenizer: Option<std::path::PathBuf>,
}

/// The inputs of one pass.
pub(super) struct Pass<'a> {
    pub client: &'a Client,
    pub config: &'a QualityConfig,
    /// The corpus's segments, when perplexity is measured.
    pub segments: Option<Arc<Vec<Segment>>>,
    /// `[target] tokenizer`, to size retrieval prompts.
    pub tokenizer: Option<Arc<ModelTokenizer>>,
    /// The round's seed for retrieval items (the same in every cell of the round).
    pub seed: u64,
}

/// Runs the pass; every item's outcome is in the returned records. An error is one that
/// stops the run (retrieval items that cannot be built).
pub(super) async fn run(
    pass: Pass<'_>,
    support: &mut Support,
) -> Result<Vec<QualityRecord>, String> {
    let mut out = Vec::new();
    if let Some(segments) = &pass.segments {
        perplexity(pass.client, segments, support, &mut out).await;
    }
    let items = support
        .items(pass.config, pass.seed, pass.tokenizer)
        .await?;
    if let (Some(items), Some(r)) = (items, &pass.config.retrieval) {
        retrieval(pass.client, &items, r.max_tokens, &mut out).await;
    }
    Ok(out)
}

/// The round's items, built off the async threads (a long context is tokenized a few times
/// per item).
async fn build_items(
    key: &ItemsKey,
    tokenizer: Option<Arc<ModelTokenizer>>,
) -> Result<Vec<Item>, String> {
    let key = key.clone();
    tokio::task::spawn_blocking(move || {
        quality::items(
            key.task,
            key.context_tokens,
            key.trials,
            &key.depths,
            key.seed,
            tokenizer.as_deref(),
        )
        .map_err(|e| format!("cannot build the retrieval items: {e}"))
    })
    .await
    .map_err(|e| format!("building the retrieval items failed: {e}"))?
}

async fn retrieval(client: &Client, items: &[Item], max_tokens: u32, out: &mut Vec<QualityRecord>) {
    let answered = futures_util::stream::iter(items)
        .map(|item| async move { (item, client.answer(&item.prompt, max_tokens).await) })
        .buffered(IN_FLIGHT)
        .collect::<Vec<_>>()
        .await;
    out.extend(
        answered
            .into_iter()
            .map(|(item, r)| answered_record(item, r)),
    );
}

/// The record of a retrieval item's answer, untagged (under load, the caller tags it with
/// its arrival).
pub(super) fn answered_record(
    item: &Item,
    result: Result<crate::backend::client::quality::Answer, crate::backend::BackendError>,
) -> QualityRecord {
    match result {
        Ok(answer) => QualityRecord::Retrieval {
            item: item.index,
            depth: item.depth,
            context_tokens: item.context_tokens,
            prompt_tokens: answer.prompt_tokens,
            answer: item.answer.clone(),
            reply: answer.text.chars().take(REPLY_CHARS).collect(),
            correct: quality::score(item, &answer.text),
            under_load: None,
        },
        Err(e) => QualityRecord::Failed {
            what: QualityKind::Retrieval,
            index: item.index,
            reason: e.to_string(),
            under_load: None,
        },
    }
}

/// Asks the server whether it can score prompts, with a short prompt of its own (so that a
/// document the server refuses, too long for its context, is that document's failure only):
/// `Ok(None)` it can, `Ok(Some(reason))` it cannot, `Err(reason)` the question failed.
pub(super) async fn ask_scoring(client: &Client) -> Result<Option<String>, String> {
    match client.score_prompt(ScorePrompt::Text(PROBE), 0).await {
        Ok(_) => Ok(None),
        Err(ScoreError::Unsupported(reason)) => Ok(Some(reason)),
        Err(ScoreError::Failed(reason)) => Err(reason),
    }
}

async fn perplexity(
    client: &Client,
    segments: &[Segment],
    support: &mut Support,
    out: &mut Vec<QualityRecord>,
) {
    let url = client.config().base_url.clone();
    let cannot = match support.scoring.get(&url) {
        Some(known) => known.clone(),
        None => match ask_scoring(client).await {
            Ok(cannot) => support.scoring.entry(url).or_insert(cannot).clone(),
            Err(reason) => {
                // Not known either way: this repetition has no perplexity; the next asks again.
                out.push(QualityRecord::Failed {
                    what: QualityKind::Perplexity,
                    index: 0,
                    reason: format!("asking whether the server can score prompts: {reason}"),
                    under_load: None,
                });
                return;
            }
        },
    };
    if let Some(reason) = cannot {
        out.push(QualityRecord::Unsupported {
            what: QualityKind::Perplexity,
            reason,
        });
        return;
    }
    let scored = futures_util::stream::iter(segments)
        .map(|s| async move { (s, score(client, s).await) })
        .buffered(IN_FLIGHT)
        .collect::<Vec<_>>()
        .await;
    out.extend(scored.into_iter().map(|(s, r)| record(s, r)));
}

pub(super) async fn score(
    client: &Client,
    segment: &Segment,
) -> Result<crate::backend::client::quality::Scored, ScoreError> {
    let prompt = match &segment.prompt {
        SegmentPrompt::Text(t) => ScorePrompt::Text(t),
        SegmentPrompt::Tokens(ids) => ScorePrompt::Tokens(ids),
    };
    client.score_prompt(prompt, segment.skip).await
}

/// The record of a segment's score, untagged (under load, the caller tags it with its
/// arrival).
pub(super) fn record(
    segment: &Segment,
    result: Result<crate::backend::client::quality::Scored, ScoreError>,
) -> QualityRecord {
    match result {
        Ok(s) => QualityRecord::Perplexity {
            document: segment.document,
            window: segment.window,
            tokens: s.tokens,
            nll: s.nll,
            digest: Some(segment.digest.clone()),
            under_load: None,
        },
        // The server can score prompts (asked first): a refusal is this segment's failure.
        Err(ScoreError::Unsupported(reason) | ScoreError::Failed(reason)) => {
            let long = ["context", "max_model_len", "too long", "maximum"]
                .iter()
                .any(|w| reason.contains(w));
            let hint = match (&segment.prompt, long) {
                (SegmentPrompt::Text(_), true) => {
                    " (hint: a document longer than the server's context is scored in windows with [quality] perplexity.window_tokens and [target] tokenizer)"
                }
                _ => "",
            };
            QualityRecord::Failed {
                what: QualityKind::Perplexity,
                index: segment.document,
                reason: format!("document {}: {reason}{hint}", segment.document),
                under_load: None,
            }
        }
    }
}
