//! `ppl` and `retrieval_accuracy` of one repetition from its quality items, and the items
//! themselves, kept for comparisons paired by document and by item. A measurement with any
//! failed item, or one the server cannot do, has no value: it is never computed from part of
//! its items.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::registry::{Metric, MetricKey};
use crate::record::{QualityKind, QualityRecord};

/// One scored segment of the corpus.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SegmentScore {
    /// The document.
    pub document: u32,
    /// The window within it.
    pub window: u32,
    /// Tokens scored.
    pub tokens: u64,
    /// Σ −ln p over them.
    pub nll: f64,
    /// The document text's digest, when recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
}

/// One answered retrieval item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnswerScore {
    /// The item within the round.
    pub item: u32,
    /// Where its key sat (0 = start of the filler, 1 = end).
    pub depth: f64,
    /// The prompt length asked for.
    pub context_tokens: u32,
    /// Exact match.
    pub correct: bool,
}

/// A measurement with no value in this repetition, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QualityGap {
    /// Which measurement.
    pub what: QualityKind,
    /// The server cannot do it (`true`), or items failed (`false`).
    pub unsupported: bool,
    /// Items that failed.
    pub failed: u64,
    /// The reason (the first failure's).
    pub reason: String,
}

/// Under load: how the items were mixed into the repetition's arrivals, and how long they
/// took (never part of the speed metrics).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct LoadMix {
    /// The fraction of arrivals asked for.
    pub share: f64,
    /// Arrivals released in the measured window (measured requests and quality items).
    pub arrivals: u64,
    /// Of them, quality items.
    pub quality_arrivals: u64,
    /// Items there were to mix in.
    pub items: u64,
    /// Quality arrivals still running at the end of the grace period (not scored).
    #[serde(default)]
    pub unfinished: u64,
    /// Seconds from send to answer of each item that was scored, in arrival order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub latencies: Vec<f64>,
}

/// What a repetition's quality pass scored.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct QualityItems {
    /// Scored segments, in corpus order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub segments: Vec<SegmentScore>,
    /// Answered retrieval items, in item order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub answers: Vec<AnswerScore>,
    /// Measurements without a value, and why.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gaps: Vec<QualityGap>,
    /// Under load: the mix (`None` for a pass after the repetition).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub under_load: Option<LoadMix>,
}

impl QualityItems {
    /// Why `what` has no value in this repetition, if it has none.
    pub fn gap(&self, what: QualityKind) -> Option<&QualityGap> {
        self.gaps.iter().find(|g| g.what == what)
    }

    /// Σ nll and Σ tokens over the segments.
    pub fn totals(&self) -> (f64, u64) {
        let nll = self.segments.iter().map(|s| s.nll).sum();
        let tokens = self.segments.iter().map(|s| s.tokens).sum();
        (nll, tokens)
    }
}

/// Collects the items and adds `ppl` = exp(Σ nll / Σ tokens) and `retrieval_accuracy` =
/// correct / answered to `values`, each only when every one of its items was scored.
pub fn add(records: &[QualityRecord], values: &mut BTreeMap<MetricKey, f64>) -> QualityItems {
    let mut items = QualityItems::default();
    let mut gaps: BTreeMap<QualityKind, QualityGap> = BTreeMap::new();
    for rec in records {
        if let (Some(mix), Some(a)) = (&mut items.under_load, rec.arrival())
            && !matches!(rec, QualityRecord::Failed { .. })
        {
            mix.latencies.push(a.latency_ns as f64 / 1e9);
        }
        match rec {
            QualityRecord::Mix {
                share,
                arrivals,
                quality_arrivals,
                items: total,
                unfinished,
            } => {
                items.under_load = Some(LoadMix {
                    share: *share,
                    arrivals: *arrivals,
                    quality_arrivals: *quality_arrivals,
                    items: *total,
                    unfinished: *unfinished,
                    latencies: vec![],
                });
            }
            QualityRecord::Perplexity {
                document,
                window,
                tokens,
                nll,
                digest,
                ..
            } => items.segments.push(SegmentScore {
                document: *document,
                window: *window,
                tokens: *tokens,
                nll: *nll,
                digest: digest.clone(),
            }),
            QualityRecord::Retrieval {
                item,
                depth,
                context_tokens,
                correct,
                ..
            } => items.answers.push(AnswerScore {
                item: *item,
                depth: *depth,
                context_tokens: *context_tokens,
                correct: *correct,
            }),
            QualityRecord::Unsupported { what, reason } => {
                gaps.insert(
                    *what,
                    QualityGap {
                        what: *what,
                        unsupported: true,
                        failed: 0,
                        reason: reason.clone(),
                    },
                );
            }
            QualityRecord::Failed { what, reason, .. } => {
                let gap = gaps.entry(*what).or_insert_with(|| QualityGap {
                    what: *what,
                    unsupported: false,
                    failed: 0,
                    reason: reason.clone(),
                });
                gap.failed += 1;
            }
        }
    }
    items.gaps = gaps.into_values().collect();
    let (nll, tokens) = items.totals();
    if items.gap(QualityKind::Perplexity).is_none() && tokens > 0 {
        values.insert(Metric::Ppl.key(), (nll / tokens as f64).exp());
    }
    if items.gap(QualityKind::Retrieval).is_none() && !items.answers.is_empty() {
        let correct = items.answers.iter().filter(|a| a.correct).count();
        let accuracy = correct as f64 / items.answers.len() as f64;
        values.insert(Metric::RetrievalAccuracy.key(), accuracy);
    }
    items
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(document: u32, tokens: u64, nll: f64) -> QualityRecord {
        QualityRecord::Perplexity {
            document,
            window: 0,
            tokens,
            nll,
            digest: None,
            under_load: None,
        }
    }

    fn answer(item: u32, correct: bool) -> QualityRecord {
        QualityRecord::Retrieval {
            item,
            depth: 0.5,
            context_tokens: 1024,
            prompt_tokens: Some(1030),
            answer: "12345".into(),
            reply: " 12345".into(),
            correct,
            under_load: None,
        }
    }

    #[test]
    fn ppl_is_exp_of_the_token_weighted_mean_nll() {
        // 10 tokens at nll 2 and 30 at nll 1: mean 50/40 = 1.25 per token.
        let mut values = BTreeMap::new();
        let items = add(&[seg(0, 10, 20.0), seg(1, 30, 30.0)], &mut values);
        assert_eq!(values[&Metric::Ppl.key()], 1.25f64.exp());
        assert_eq!(items.totals(), (50.0, 40));
        assert!(!values.contains_key(&Metric::RetrievalAccuracy.key()));
    }

    #[test]
    fn accuracy_is_the_share_answered_exactly() {
        let mut values = BTreeMap::new();
        let recs: Vec<_> = (0..8).map(|i| answer(i, i < 6)).collect();
        add(&recs, &mut values);
        assert_eq!(values[&Metric::RetrievalAccuracy.key()], 0.75);
    }

    #[test]
    fn under_load_the_mix_and_the_latencies_of_scored_items_are_kept() {
        let at = |arrival: u64, ms: u64| crate::record::LoadArrival {
            arrival,
            scheduled_ns: arrival * 1_000_000,
            sent_ns: arrival * 1_000_000 + 10,
            latency_ns: ms * 1_000_000,
        };
        let mix = QualityRecord::Mix {
            share: 0.1,
            arrivals: 100,
            quality_arrivals: 3,
            items: 5,
            unfinished: 0,
        };
        let line = serde_json::to_string(&seg(2, 10, 10.0).under_load(at(7, 30))).unwrap();
        assert!(line.contains(r#""under_load":{"arrival":7,"#), "{line}");
        let back: QualityRecord = serde_json::from_str(&line).unwrap();
        let mut values = BTreeMap::new();
        let items = add(
            &[mix, back, answer(0, true).under_load(at(12, 50))],
            &mut values,
        );
        let load = items.under_load.unwrap();
        assert_eq!(
            (load.arrivals, load.quality_arrivals, load.items),
            (100, 3, 5)
        );
        assert_eq!(load.latencies, vec![0.03, 0.05]);
        // Scored like any pass: e^1 and 1/1.
        assert_eq!(values[&Metric::Ppl.key()], 1f64.exp());
        assert_eq!(values[&Metric::RetrievalAccuracy.key()], 1.0);
        // A pass after the repetition has no mix.
        assert!(add(&[seg(0, 1, 1.0)], &mut values).under_load.is_none());
    }

    #[test]
    fn a_failed_item_or_an_unsupported_server_leaves_no_value() {
        let mut values = BTreeMap::new();
        let failed = QualityRecord::Failed {
            what: QualityKind::Retrieval,
            index: 3,
            reason: "server answered 500".into(),
            under_load: None,
        };
        let unsupported = QualityRecord::Unsupported {
            what: QualityKind::Perplexity,
            reason: "this server cannot score prompts".into(),
        };
        let items = add(
            &[
                answer(0, true),
                failed.clone(),
                failed,
                unsupported,
                answer(1, true),
            ],
            &mut values,
        );
        assert!(values.is_empty(), "{values:?}");
        let gap = items.gap(QualityKind::Retrieval).unwrap();
        assert_eq!((gap.failed, gap.unsupported), (2, false));
        assert_eq!(gap.reason, "server answered 500");
        assert!(items.gap(QualityKind::Perplexity).unwrap().unsupported);
    }
}
