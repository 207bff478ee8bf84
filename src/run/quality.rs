//! The quality pass of a repetition (`[quality] when = "after-repetition"`): on the same
//! server, right after the load, score the corpus's segments and answer the round's
//! retrieval items. Requests go a few at a time, outside the measurement; their outcomes
//! become the repetition's quality file. Whether the server can score prompts is found on
//! the first segment and remembered per target, so a server that cannot (llama.cpp) is asked
//! once and reported as such, never turned into a number.

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
    if let Some(r) = &pass.config.retrieval {
        let key = ItemsKey {
            seed: pass.seed,
            task: r.task,
            context_tokens: r.context_tokens,
            trials: r.trials,
            depths: r.depths.clone(),
            tokenizer: pass.tokenizer.as_ref().map(|t| t.path().to_path_buf()),
        };
        let items = match &support.items {
            Some((k, items)) if *k == key => Arc::clone(items),
            _ => {
                let items = Arc::new(build_items(&key, pass.tokenizer.clone()).await?);
                support.items = Some((key, Arc::clone(&items)));
                items
            }
        };
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
    out.extend(answered.into_iter().map(|(item, result)| match result {
        Ok(answer) => QualityRecord::Retrieval {
            item: item.index,
            depth: item.depth,
            context_tokens: item.context_tokens,
            prompt_tokens: answer.prompt_tokens,
            answer: item.answer.clone(),
            reply: answer.text.chars().take(REPLY_CHARS).collect(),
            correct: quality::score(item, &answer.text),
        },
        Err(e) => QualityRecord::Failed {
            what: QualityKind::Retrieval,
            index: item.index,
            reason: e.to_string(),
        },
    }));
}

async fn perplexity(
    client: &Client,
    segments: &[Segment],
    support: &mut Support,
    out: &mut Vec<QualityRecord>,
) {
    let url = client.config().base_url.clone();
    if let Some(Some(reason)) = support.scoring.get(&url) {
        out.push(QualityRecord::Unsupported {
            what: QualityKind::Perplexity,
            reason: reason.clone(),
        });
        return;
    }
    let Some((first, rest)) = segments.split_first() else {
        return;
    };
    // The first segment asks the question; its answer decides for the whole run.
    match score(client, first).await {
        Err(ScoreError::Unsupported(reason)) if !support.scoring.contains_key(&url) => {
            support.scoring.insert(url, Some(reason.clone()));
            out.push(QualityRecord::Unsupported {
                what: QualityKind::Perplexity,
                reason,
            });
            return;
        }
        result => {
            if result.is_ok() {
                support.scoring.insert(url, None);
            }
            out.push(record(first, result));
        }
    }
    let scored = futures_util::stream::iter(rest)
        .map(|s| async move { (s, score(client, s).await) })
        .buffered(IN_FLIGHT)
        .collect::<Vec<_>>()
        .await;
    out.extend(scored.into_iter().map(|(s, r)| record(s, r)));
}

async fn score(
    client: &Client,
    segment: &Segment,
) -> Result<crate::backend::client::quality::Scored, ScoreError> {
    let prompt = match &segment.prompt {
        SegmentPrompt::Text(t) => ScorePrompt::Text(t),
        SegmentPrompt::Tokens(ids) => ScorePrompt::Tokens(ids),
    };
    client.score_prompt(prompt, segment.skip).await
}

fn record(
    segment: &Segment,
    result: Result<crate::backend::client::quality::Scored, ScoreError>,
) -> QualityRecord {
    match result {
        Ok(s) => QualityRecord::Perplexity {
            document: segment.document,
            window: segment.window,
            tokens: s.tokens,
            nll: s.nll,
        },
        // Past the first segment, a refusal is this segment's failure (too long, …).
        Err(ScoreError::Unsupported(reason) | ScoreError::Failed(reason)) => {
            QualityRecord::Failed {
                what: QualityKind::Perplexity,
                index: segment.document,
                reason,
            }
        }
    }
}
