//! `exp run --baseline <dir> --extra-looks N` (statistics.md §2.8, PR mode): compare with the
//! baseline; while some verdict is `inconclusive` or `possible …` and looks remain, add
//! [`EXTRA_ROUNDS`] whole rounds to the candidate run and compare again. Every look — the
//! first included — is judged at one nominal α′ (Pocock's design), computed for the 1 + N
//! planned looks of a fixed baseline against a candidate growing by 5 runs per look, so that
//! looking again does not inflate the false-positive rate above `[analysis] alpha`. Stopping
//! early when every verdict is conclusive is allowed by the design. Each look is written to
//! the manifest before the next batch starts.

use std::path::Path;

use super::compare::{self, Compared, LookLevel};
use super::{Status, close_run, rounds};
use crate::cli;
use crate::plan::Plan;
use crate::run::RunEnd;
use crate::stats::sequential::{self, EXTRA_ROUNDS};
use crate::stats::{Design, Verdict};
use crate::store::{Manifest, RunDir, RunStatus, SequentialLook, SequentialRecord};

/// Comparisons whose verdict is still open: (open, of which another look could settle). A
/// comparison paired by round over every baseline round cannot be settled by one: the rounds
/// a look adds to the candidate have no baseline partner. Nor can one paired by item: its
/// test runs on the items both sides scored, which candidate rounds alone do not add to.
fn open(c: &Compared) -> (usize, usize) {
    let open: Vec<_> = (c.result.rows.iter())
        .filter(|r| {
            matches!(
                r.verdict,
                Verdict::Inconclusive | Verdict::PossibleRegression | Verdict::PossibleImprovement
            )
        })
        .collect();
    let settleable = open
        .iter()
        .filter(|r| {
            !r.comparison.as_ref().is_some_and(|c| match c.design {
                Design::Paired { pairs } => pairs >= c.baseline.n,
                Design::Items { .. } => true,
                Design::Unpaired { .. } => false,
            })
        })
        .count();
    (open.len(), settleable)
}

/// The plan of a run's looks, fixed before the first: `planned` looks, each at Pocock's
/// nominal level for `baseline` runs per cell against `first`, `first + 5`, … candidate runs.
fn plan_looks(
    planned: u32,
    alpha: f64,
    baseline: u32,
    first: u32,
) -> anyhow::Result<SequentialRecord> {
    let candidate: Vec<u32> = (0..planned).map(|k| first + k * EXTRA_ROUNDS).collect();
    let information = sequential::fixed_baseline(baseline, &candidate);
    let nominal = sequential::pocock_alpha(&information, alpha)
        .ok_or_else(|| anyhow::anyhow!("[analysis] alpha = {alpha} must lie in (0, 1)"))?;
    Ok(SequentialRecord {
        planned,
        alpha,
        nominal_alpha: nominal,
        looks: Vec::new(),
    })
}

/// Repetitions per cell of the baseline run.
fn baseline_runs(baseline: &Path) -> anyhow::Result<u32> {
    let (_, manifest) = RunDir::open(baseline)?;
    Ok(manifest.repetitions)
}

/// The line the comparison states about its looks.
fn note(record: &SequentialRecord, look: usize) -> String {
    format!(
        "Group-sequential comparison: look {look} of at most {} (up to {EXTRA_ROUNDS} candidate rounds added per look while a verdict is inconclusive or possible); every look is judged at Pocock's nominal α = {:.4}, computed for this design (a fixed baseline against a growing candidate), so that all looks together keep α = {} (approximately: the level assumes equal run-to-run variance on both sides and a normal statistic).",
        record.planned, record.nominal_alpha, record.alpha
    )
}

/// Compares with `baseline`, adding rounds and looking again up to `extra` times; writes the
/// last comparison as `compare.md` and returns its status.
#[allow(clippy::too_many_arguments)]
pub(super) async fn after_run(
    plan: &mut Plan,
    dir: &RunDir,
    manifest: &mut Manifest,
    baseline: &Path,
    fail: Option<cli::FailOn>,
    extra: u32,
    show_progress: bool,
) -> anyhow::Result<Status> {
    // A resumed run keeps the looks planned when it started (`extra` is then ignored).
    if manifest.sequential.is_none() {
        if extra == 0 {
            let c = compare::look(dir, baseline, None)?;
            return compare::conclude(dir, manifest, plan, baseline, &c, fail);
        }
        let alpha = plan.scenario.analysis.alpha;
        let looks = plan_looks(1 + extra, alpha, baseline_runs(baseline)?, plan.rounds())?;
        manifest.sequential = Some(looks);
    }
    loop {
        let rec = manifest.sequential.as_mut().expect("planned above");
        let planned = rec.planned;
        let number = rec.looks.len() + 1;
        let level = LookLevel {
            alpha: rec.nominal_alpha,
            note: note(rec, number),
        };
        let c = compare::look(dir, baseline, Some(&level))?;
        let (all_open, open) = open(&c);
        let last = number as u32 >= planned || open == 0;
        if open < all_open && open == 0 && (number as u32) < planned {
            eprintln!(
                "look {number} of {planned} at the baseline: {all_open} comparison(s) still open, but paired by round over every baseline round; rounds added to the candidate would have no baseline partner, so no more are added"
            );
        }
        let rounds = plan.rounds();
        rec.looks.push(SequentialLook {
            rounds,
            open: all_open,
            outcome: serde_json::to_value(c.result.outcome())?
                .as_str()
                .unwrap_or_default()
                .to_string(),
            added: if last { 0 } else { EXTRA_ROUNDS },
        });
        if last {
            dir.write_manifest(manifest)?;
            return compare::conclude(dir, manifest, plan, baseline, &c, fail);
        }
        eprintln!(
            "look {number} of {planned} at the baseline: {open} comparison(s) inconclusive or possible at nominal α = {:.4}; adding {EXTRA_ROUNDS} rounds",
            level.alpha
        );
        super::manifest_sync::plan_rounds(plan, manifest, rounds + EXTRA_ROUNDS);
        manifest.status = RunStatus::Running;
        super::manifest_sync::save(dir, manifest)?;
        let end = rounds::execute(plan, dir, manifest, show_progress).await?;
        close_run(dir, manifest, plan, end)?;
        if end == RunEnd::Interrupted {
            eprintln!(
                "interrupted: continue with `exp run --resume {} --baseline {}`",
                dir.root().display(),
                baseline.display()
            );
            return Ok(Status::Interrupted);
        }
    }
}
