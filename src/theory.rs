//! Theory for a cell: the hardware model's [`Deployment`] for a cell's target (model × GPU ×
//! TP, with the simulator's efficiency preset), against which `metrics` reports a measured
//! repetition's MFU/MBU.

use std::path::Path;

use crate::hw::{Deployment, Efficiency, Gpu, HwError, ModelConfig};
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
