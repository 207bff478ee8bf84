//! Running a plan's rounds: the schedule as planned, and for adaptive repetitions the loop of
//! statistics.md §2.8 — run, look at the precision, add whole rounds or stop — with every
//! look and the stop reason written to the manifest before the next round starts, so
//! `exp run --resume` continues the same decision.

use crate::adaptive::{self, Decision};
use crate::plan::Plan;
use crate::run::{self, RunEnd};
use crate::store::{Manifest, RunDir};

/// Executes `plan` into `dir`; for an adaptive run, keeps adding rounds (extending `plan`
/// and `manifest`) until it stops.
pub(super) async fn execute(
    plan: &mut Plan,
    dir: &RunDir,
    manifest: &mut Manifest,
    show_progress: bool,
) -> anyhow::Result<RunEnd> {
    loop {
        let end = run::execute(plan, dir, show_progress).await?;
        let Some(settings) = plan.scenario.experiment.adaptive else {
            return Ok(end);
        };
        let stopped = manifest.adaptive.as_ref().is_none_or(|r| r.stop.is_some());
        if end == RunEnd::Interrupted || stopped {
            return Ok(end);
        }
        let rounds = plan.rounds();
        let cells = super::load_results(dir, manifest, plan)?;
        let primary = &plan.scenario.analysis.primary;
        let (look, decision) = adaptive::look(&settings, primary, &cells, rounds);
        let widest = look
            .worst
            .as_ref()
            .map_or("no primary metric measured".into(), adaptive::width_text);
        let record = manifest.adaptive.as_mut().expect("checked above");
        record.looks.push(look);
        match decision {
            Decision::Stop(stop) => {
                eprintln!(
                    "adaptive repetitions: {}",
                    adaptive::stop_text(&stop, record.min)
                );
                record.stop = Some(stop);
            }
            Decision::Continue(add) => {
                eprintln!(
                    "adaptive repetitions: after {rounds} rounds the widest CI is {widest}; adding {add} round(s)"
                );
                super::manifest_sync::plan_rounds(plan, manifest, rounds + add);
            }
        }
        super::manifest_sync::save(dir, manifest)?;
    }
}
