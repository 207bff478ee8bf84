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
use crate::record::{QualityKind, QualityRecord};
use crate::scenario::model::QualityConfig;
use crate::workload::tokenizer::ModelTokenizer;

/// Requests in flight during a quality pass.
const IN_FLIGHT: usize = 4;

/// What a run knows across repetitions: each target's answer to "can you score prompts?".
#[derive(Debug, Default)]
pub(super) struct Support {
    /// Base URL → why the server cannot score prompts (`None`: it can).
    scoring: HashMap<String, Option<String>>,
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

/// Runs the pass; every item's outcome is in the returned records.
pub(super) async fn run(pass: Pass<'_>, support: &mut Support) -> Vec<QualityRecord> {
    let mut out = Vec::new();
    if let Some(segments) = &pass.segments {
        perplexity(pass.client, segments, support, &mut out).await;
    }
    out
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
