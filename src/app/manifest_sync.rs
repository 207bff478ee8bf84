//! Keeping `manifest.json` in step with the plan while a run grows: adaptive rounds, extra
//! looks and search probes extend the plan, and the manifest must record every change before
//! the repetitions it describes run, so `exp run --resume` rebuilds the same plan.

use crate::plan::Plan;
use crate::store::{Manifest, RunDir};

/// Plans `rounds` rounds and records them: `repetitions` and `schedule` in the manifest always
/// hold the rounds planned so far (adaptive rounds, extra looks).
pub(super) fn plan_rounds(plan: &mut Plan, manifest: &mut Manifest, rounds: u32) {
    plan.set_rounds(rounds);
    manifest.repetitions = rounds;
    manifest.schedule = plan.schedule.clone();
}

/// Writes the manifest, keeping the server launches that the run recorded in the manifest on
/// disk as they happened (the in-memory copy does not see them).
pub(super) fn save(dir: &RunDir, manifest: &mut Manifest) -> anyhow::Result<()> {
    manifest.launches = dir.read_manifest()?.launches;
    dir.write_manifest(manifest)?;
    Ok(())
}
