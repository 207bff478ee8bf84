//! Theory for a cell: the hardware model's [`Deployment`] for a cell's target (model × GPU ×
//! TP, with the simulator's efficiency preset), and the MFU/MBU of a measured repetition.

use std::path::Path;
use std::time::Duration;

use crate::hw::{Deployment, Efficiency, Gpu, HwError, ModelConfig};
use crate::metrics::RepetitionSummary;
use crate::record::RequestRecord;
use crate::scenario::model::{CellConfig, SimConfig};

/// The deployment a cell runs on, when `[target]` names a model and a GPU.
pub fn deployment(cell: &CellConfig) -> Result<Option<Deployment>, HwError> {
    let Some(hw) = &cell.target.hardware else {
        return Ok(None);
    };
    let model = ModelConfig::load(&hw.model_config)?;
    let gpu = Gpu::load(&hw.gpu)?;
    let efficiency = match &cell.target.sim {
        Some(sim) => efficiency(sim, &gpu)?,
        None => Efficiency::calibrated(&gpu),
    };
    let (weights, kv) = (model.dtype, model.default_kv_dtype());
    Deployment::new(model, gpu, cell.engine.tp.get(), weights, kv, efficiency).map(Some)
}

/// The efficiency factors of a simulator preset: `ideal`, `calibrated`, or a TOML profile
/// written by `exp calibrate` (the `[efficiency]` table; its optional `[profile]` metadata is
/// checked for unknown keys, see [`crate::calibrate::Profile`]).
pub fn efficiency(sim: &SimConfig, gpu: &Gpu) -> Result<Efficiency, HwError> {
    match sim.preset.as_str() {
        "ideal" => Ok(Efficiency::ideal()),
        "calibrated" => Ok(Efficiency::calibrated(gpu)),
        path => {
            let text = std::fs::read_to_string(Path::new(path)).map_err(|e| {
                HwError::InvalidDeployment(format!(
                    "sim_preset `{path}`: not `ideal` or `calibrated`, and not a readable profile: {e}"
                ))
            })?;
            let profile = crate::calibrate::Profile::parse(&text).map_err(|e| {
                HwError::InvalidDeployment(format!("sim_preset `{path}`: not a profile: {e}"))
            })?;
            Ok(profile.efficiency)
        }
    }
}

/// (prompt, output) tokens of one request, if it succeeded: what [`add_utilization`] needs
/// from each record, so a repetition's records can be streamed instead of held.
pub fn ok_length(r: &RequestRecord) -> Option<(u32, u32)> {
    r.outcome.is_ok().then(|| {
        let prompt = r.input_tokens.or(r.requested_input_tokens).unwrap_or(0);
        (prompt, crate::metrics::request::output_tokens(r).0)
    })
}

/// Adds `mfu` and `mbu` to a repetition's summary when the cell names its hardware, from the
/// (prompt, output) lengths of its successful requests ([`ok_length`]). The mean decode batch
/// is estimated by Little's law (`concurrency`), at least 1.
pub fn add_utilization(
    cell: &CellConfig,
    requests: &[(u32, u32)],
    summary: &mut RepetitionSummary,
) {
    let Ok(Some(deployment)) = deployment(cell) else {
        return;
    };
    let Some(&window) = summary.values.get("duration") else {
        return;
    };
    let batch = summary
        .values
        .get("concurrency")
        .copied()
        .unwrap_or(1.0)
        .max(1.0);
    if let Ok(u) = deployment.utilization(requests, Duration::from_secs_f64(window), batch) {
        summary.values.insert("mfu".into(), u.mfu);
        summary.values.insert("mbu".into(), u.mbu);
    }
}
