//! [`Efficiency`]: the fractions of peak a real engine reaches, and its fixed overheads.
//!
//! Two presets (hardware.md §0.1): `ideal` gives hard lower bounds; `calibrated` uses the BLIS
//! simulator's public calibration (H100 0.45/0.30, A100 0.38/0.18, L40S 0.32/0.08 for
//! prefill/decode compute; ≈126 µs per step and ≈32 µs per layer), with memory and
//! communication at 0.8 (the ~83% of NVLink an NCCL user measured, §1.6, and the common 80% MBU
//! figure, §2). `exp calibrate` fits and writes these fields as TOML.

use serde::{Deserialize, Serialize};

use super::catalog_gpus;
use super::error::HwError;
use super::gpu::Gpu;

/// Achievable fractions of peak and fixed per-step costs.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Efficiency {
    /// Fraction of peak FLOP/s reached by prefill tokens (0, 1].
    pub prefill_compute: f64,
    /// Fraction of peak FLOP/s reached by decode tokens (0, 1].
    pub decode_compute: f64,
    /// Fraction of peak memory bandwidth reached (0, 1].
    pub memory: f64,
    /// Fraction of interconnect bandwidth an all-reduce reaches (0, 1].
    pub comm: f64,
    /// Fixed cost of every engine step (scheduling, sampling, launch), seconds.
    pub step_overhead_s: f64,
    /// Fixed cost per transformer layer per step (kernel launches), seconds.
    pub per_layer_overhead_s: f64,
}

/// BLIS step overhead β7 (hardware.md §3.6).
const BLIS_STEP_OVERHEAD_S: f64 = 126e-6;
/// BLIS per-layer overhead β5 (hardware.md §3.6).
const BLIS_PER_LAYER_OVERHEAD_S: f64 = 32e-6;

enum Family {
    Hopper,
    Blackwell,
    Ampere,
    Ada,
    Other,
}

fn family(gpu: &Gpu) -> Family {
    let k = catalog_gpus::key(&gpu.name);
    let has = |parts: &[&str]| parts.iter().any(|p| k.contains(p));
    if has(&["h100", "h200", "h800", "h20"]) {
        Family::Hopper
    } else if has(&["b100", "b200", "b300"]) {
        Family::Blackwell
    } else if has(&["a100", "a800", "a10", "a30", "a40"]) {
        Family::Ampere
    } else if has(&["l40", "l20", "l4", "4090", "4080", "ada"]) {
        Family::Ada
    } else {
        Family::Other
    }
}

impl Efficiency {
    /// Everything at peak, no overheads: roofline floors.
    pub fn ideal() -> Efficiency {
        Efficiency {
            prefill_compute: 1.0,
            decode_compute: 1.0,
            memory: 1.0,
            comm: 1.0,
            step_overhead_s: 0.0,
            per_layer_overhead_s: 0.0,
        }
    }

    /// BLIS-calibrated values for the GPU's family; see [`Efficiency::calibration_basis`].
    pub fn calibrated(gpu: &Gpu) -> Efficiency {
        let (prefill_compute, decode_compute) = match family(gpu) {
            Family::Hopper | Family::Blackwell => (0.45, 0.30),
            Family::Ampere | Family::Other => (0.38, 0.18),
            Family::Ada => (0.32, 0.08),
        };
        Efficiency {
            prefill_compute,
            decode_compute,
            memory: 0.8,
            comm: 0.8,
            step_overhead_s: BLIS_STEP_OVERHEAD_S,
            per_layer_overhead_s: BLIS_PER_LAYER_OVERHEAD_S,
        }
    }

    /// Where [`Efficiency::calibrated`]'s compute fractions come from for this GPU.
    pub fn calibration_basis(gpu: &Gpu) -> &'static str {
        match family(gpu) {
            Family::Hopper => "BLIS H100 calibration (Hopper family)",
            Family::Blackwell => "uncalibrated: BLIS H100 values reused for Blackwell",
            Family::Ampere => "BLIS A100 calibration (Ampere family)",
            Family::Ada => "BLIS L40S calibration (Ada family)",
            Family::Other => "uncalibrated: BLIS A100 values used as a middle guess",
        }
    }

    /// Checks fractions are in (0, 1] and overheads are finite and ≥ 0.
    pub fn validate(&self) -> Result<(), HwError> {
        let fractions = [
            ("prefill_compute", self.prefill_compute),
            ("decode_compute", self.decode_compute),
            ("memory", self.memory),
            ("comm", self.comm),
        ];
        for (key, v) in fractions {
            if !(v > 0.0 && v <= 1.0) {
                return Err(HwError::InvalidDeployment(format!(
                    "efficiency `{key}` = {v} must be in (0, 1]"
                )));
            }
        }
        for (key, v) in [
            ("step_overhead_s", self.step_overhead_s),
            ("per_layer_overhead_s", self.per_layer_overhead_s),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                return Err(HwError::InvalidDeployment(format!(
                    "efficiency `{key}` = {v} must be a finite number ≥ 0"
                )));
            }
        }
        Ok(())
    }
}
