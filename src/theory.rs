//! Theory for a cell: the hardware model's [`Deployment`] for a cell's target (model × GPU ×
//! TP, with the simulator's efficiency preset), against which `metrics` reports a measured
//! repetition's MFU/MBU.

use std::path::Path;

use crate::hw::{Deployment, Dtype, Efficiency, Gpu, HwError, ModelConfig};
use crate::scenario::model::{CellConfig, SimConfig};

/// The deployment a cell runs on, when `[target]` names a model and a GPU.
pub fn deployment(cell: &CellConfig) -> Result<Option<Deployment>, HwError> {
    let Some(hw) = &cell.target.hardware else {
        return Ok(None);
    };
    let model = ModelConfig::load(&hw.model_config)?;
    let gpu = Gpu::load(&hw.gpu)?;
    let efficiency = match &cell.target.sim {
        Some(sim) => efficiency(sim, &gpu, model.dtype)?,
        None => Efficiency::calibrated(&gpu, model.dtype),
    };
    let (weights, kv) = (model.dtype, model.default_kv_dtype());
    Deployment::new(model, gpu, cell.engine.tp.get(), weights, kv, efficiency).map(Some)
}

/// The efficiency factors of a simulator preset: `ideal`, `calibrated`, or a TOML profile
/// written by `exp calibrate` (the `[efficiency]` table; its optional `[profile]` metadata is
/// checked for unknown keys, see [`crate::calibrate::Profile`]).
///
/// The `calibrated` preset depends on the weights' format (`weights`): FP8 GEMMs get their own
/// fraction of the FP8 peak.
pub fn efficiency(sim: &SimConfig, gpu: &Gpu, weights: Dtype) -> Result<Efficiency, HwError> {
    match sim.preset.as_str() {
        "ideal" => Ok(Efficiency::ideal()),
        "calibrated" => Ok(Efficiency::calibrated(gpu, weights)),
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

/// The step-time noise a preset draws: none for `ideal`, whose times are floors (noise with
/// mean 1 would put half the steps below them), else the configured `noise_cv`.
pub fn noise_cv(sim: &SimConfig) -> f64 {
    if sim.preset == "ideal" {
        0.0
    } else {
        sim.noise_cv
    }
}

/// KV-cache tokens of a simulated engine: what `gpu_memory_utilization` leaves after the
/// weights and the runtime reserve for a step of `max_num_batched_tokens`
/// ([`Deployment::runtime_reserve_bytes`]).
pub fn kv_capacity_tokens(
    deployment: &Deployment,
    gpu_memory_utilization: f64,
    max_num_batched_tokens: u32,
) -> Result<u64, HwError> {
    let reserve = deployment.runtime_reserve_bytes(max_num_batched_tokens);
    deployment.kv_capacity_tokens_with_reserve(gpu_memory_utilization, reserve)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sim(preset: &str) -> SimConfig {
        SimConfig {
            preset: preset.into(),
            noise_cv: 0.1,
            gpu_memory_utilization: 0.9,
            block_size: 16,
        }
    }

    #[test]
    fn ideal_draws_no_noise_so_its_floors_stay_floors() {
        // Issue 13: with noise the `ideal` preset's minimum TTFT fell 5.6 % below its floor.
        assert_eq!(noise_cv(&sim("ideal")), 0.0);
        assert_eq!(noise_cv(&sim("calibrated")), 0.1);
    }
}
