//! Whether a baseline and a candidate run can be compared round by round (statistics.md §2.4
//! item 6). Round r of a run draws its workload (arrival gaps, lengths, prompts) from seeds
//! derived from the experiment seed and r alone, so round r of two runs saw the same requests
//! at the same offsets exactly when both runs have the same seed and the matched cell resolves
//! to the same workload settings in both. Then the run values are matched pairs; otherwise the
//! comparison falls back to two independent samples and says why.

use crate::scenario::model::CellConfig;

use super::MatchedCell;

/// What pairing needs to know of one run.
#[derive(Debug, Clone, Copy)]
pub struct RunWorkload<'a> {
    /// The experiment seed (`manifest.json`).
    pub seed: u64,
    /// Every cell's resolved configuration, in the order of the run's cells.
    pub configs: &'a [CellConfig],
}

/// The workloads of both runs, when known.
#[derive(Debug, Clone, Copy, Default)]
pub struct Workloads<'a> {
    /// The baseline run's.
    pub baseline: Option<RunWorkload<'a>>,
    /// The candidate run's.
    pub candidate: Option<RunWorkload<'a>>,
}

impl Workloads<'_> {
    /// Why the rounds of matched cell `m` cannot be paired; `None` when they can.
    pub fn unpaired_reason(&self, m: &MatchedCell) -> Option<String> {
        let (Some(base), Some(cand)) = (self.baseline, self.candidate) else {
            return Some("the runs' workloads are unknown".into());
        };
        if base.seed != cand.seed {
            return Some(format!(
                "the runs have different seeds ({} and {}), so their rounds drew different workloads",
                base.seed, cand.seed
            ));
        }
        let (Some(a), Some(b)) = (base.configs.get(m.baseline), cand.configs.get(m.candidate))
        else {
            return Some("the cell's workload is unknown".into());
        };
        (a.workload != b.workload)
            .then(|| "the cell's workload settings differ between the runs".into())
    }

    /// Why matched cell `m`'s quality items cannot be paired between the runs; `None` when
    /// they can. Perplexity pairs documents when both runs scored the same corpus the same
    /// way (same `[quality] perplexity` and tokenizer), whatever the seed; retrieval pairs
    /// (round, item) when the rounds pair and both drew the items with the same settings.
    pub fn quality_unpaired_reason(&self, m: &MatchedCell, perplexity: bool) -> Option<String> {
        let (Some(base), Some(cand)) = (self.baseline, self.candidate) else {
            return Some("the runs' [quality] settings are unknown".into());
        };
        let (Some(a), Some(b)) = (base.configs.get(m.baseline), cand.configs.get(m.candidate))
        else {
            return Some("the cell's [quality] settings are unknown".into());
        };
        if a.target.tokenizer != b.target.tokenizer {
            return Some("the runs name different [target] tokenizers".into());
        }
        let (qa, qb) = (a.quality.as_ref(), b.quality.as_ref());
        if perplexity {
            let (pa, pb) = (
                qa.and_then(|q| q.perplexity.as_ref()),
                qb.and_then(|q| q.perplexity.as_ref()),
            );
            return (pa != pb).then(|| {
                "the runs' [quality] perplexity settings differ (corpus, documents or window), so their documents are not the same".into()
            });
        }
        if let Some(reason) = self.unpaired_reason(m) {
            return Some(reason);
        }
        let items = |q: Option<&crate::scenario::model::QualityConfig>| {
            q.and_then(|q| q.retrieval.as_ref())
                .map(|r| (r.task, r.context_tokens, r.trials, r.depths.clone()))
        };
        (items(qa) != items(qb)).then(|| {
            "the runs' [quality] retrieval settings differ, so their items are not the same".into()
        })
    }
}
