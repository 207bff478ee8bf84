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
}
