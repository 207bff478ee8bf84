//! [`Efficiency`]: the fractions of peak a real engine reaches, and its fixed overheads.
//!
//! Two presets: `ideal` gives hard lower bounds (everything at peak, no overheads); `calibrated`
//! holds figures fitted on the fit cases of the fidelity benchmark (`exp selftest fidelity`,
//! published serving measurements with their configuration), one set per GPU family (with a
//! GEMM fraction for 16-bit and one for FP8 weights), with one
//! overhead model for all: a fixed cost per step plus one per layer, and all-reduces at 0.8 of
//! the link (the ~83% of NVLink an NCCL user measured, hardware.md §1.6), and one API-server
//! cost per request in front of the engine (fitted on the same cases with the step-time
//! figures held). `exp calibrate` fits and writes these fields as TOML.

use serde::{Deserialize, Serialize};

use super::catalog_gpus;
use super::dtype::Dtype;
use super::error::HwError;
use super::gpu::Gpu;

/// Achievable fractions of peak and fixed per-step costs.
///
/// The step-time model ([`crate::hw::Deployment::step_time`]) splits a step into matrix work
/// (the weight GEMMs of every token in the step) and attention. Matrix work reaches
/// `matmul · T/(T + matmul_half_tokens)` of peak for `T` tokens in the step, so short prefill
/// chunks and small decode batches run at a lower fraction than long prompts, and it can never
/// be faster than reading the weights at `memory` of peak bandwidth. Attention is bound by its
/// KV-cache reads (at `memory`) or its FLOPs (at `attention`), whichever is slower.
///
/// TOML profiles written before these names used `prefill_compute` (now `matmul`) and
/// `decode_compute` (now `attention`); both old keys are still read.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Efficiency {
    /// Fraction of peak FLOP/s that matrix multiplications reach on long token runs (0, 1].
    #[serde(alias = "prefill_compute")]
    pub matmul: f64,
    /// Tokens in a step at which matrix work reaches half of `matmul` (≥ 0; 0 = `matmul` at
    /// any size).
    #[serde(default)]
    pub matmul_half_tokens: f64,
    /// Fraction of peak FLOP/s reached by attention FLOPs (scores and values) (0, 1].
    #[serde(alias = "decode_compute")]
    pub attention: f64,
    /// Fraction of peak memory bandwidth reached by weight and KV-cache reads (0, 1].
    pub memory: f64,
    /// Fraction of interconnect bandwidth an all-reduce reaches (0, 1].
    pub comm: f64,
    /// Fixed cost of every engine step (scheduling, sampling, launch), seconds.
    pub step_overhead_s: f64,
    /// Fixed cost per transformer layer per step (kernel launches, norms, activations),
    /// seconds.
    pub per_layer_overhead_s: f64,
    /// Cost per sequence in the step (input preparation, sampling, detokenising and streaming
    /// its token), seconds; 0 in profiles written before it existed.
    #[serde(default)]
    pub per_sequence_overhead_s: f64,
    /// Cost of the API server in front of the engine per request (HTTP parsing, request
    /// set-up, handing it to the engine), seconds. The server handles one request at a time,
    /// so under a burst requests wait for each other; 0 in profiles written before it existed.
    #[serde(default)]
    pub per_request_overhead_s: f64,
    /// The API server's cost per prompt token (tokenisation), seconds, in the same queue as
    /// `per_request_overhead_s`; 0 in profiles written before it existed.
    #[serde(default)]
    pub per_prompt_token_overhead_s: f64,
}

impl Efficiency {
    /// Fraction of peak that matrix work of `tokens` tokens in one step reaches:
    /// `matmul · T/(T + matmul_half_tokens)`.
    pub fn matmul_at(&self, tokens: f64) -> f64 {
        if self.matmul_half_tokens <= 0.0 {
            return self.matmul;
        }
        self.matmul * tokens / (tokens + self.matmul_half_tokens)
    }

    /// Seconds the API server spends on one request of `prompt_tokens` tokens before the
    /// engine sees it: `per_request_overhead_s + per_prompt_token_overhead_s · prompt`.
    pub fn admission_seconds(&self, prompt_tokens: u32) -> f64 {
        self.per_request_overhead_s + self.per_prompt_token_overhead_s * f64::from(prompt_tokens)
    }
}

/// The `calibrated` preset's figures for one GPU family (fitted on the fidelity benchmark's
/// fit cases, `exp selftest fidelity`; see [`Efficiency::calibrated`]).
struct FamilyFit {
    /// GEMM fraction of the BF16/FP16 peak with 16-bit (or INT4 weight-only) weights.
    matmul: f64,
    /// GEMM fraction of the FP8 peak with FP8 weights on GPUs that have an FP8 rate. Fitted
    /// apart from `matmul`: one fraction for both left the fit's BF16 prefills 15–24 % slow and
    /// its FP8 ones 7 % fast, as FP8 GEMMs reach a smaller share of their doubled peak.
    matmul_fp8: f64,
    matmul_half_tokens: f64,
    attention: f64,
    memory: f64,
}

/// Every family shares the overheads and the all-reduce efficiency: one source, the same fit.
/// The API server's cost (1.6 ms per request + 0.1 µs per prompt token, single-threaded) is
/// the fit's; it is CPU work, so it does not depend on the GPU.
const STEP_OVERHEAD_S: f64 = 550e-6;
const PER_LAYER_OVERHEAD_S: f64 = 56e-6;
const PER_SEQUENCE_OVERHEAD_S: f64 = 15e-6;
const PER_REQUEST_OVERHEAD_S: f64 = 1.6e-3;
const PER_PROMPT_TOKEN_OVERHEAD_S: f64 = 0.1e-6;
const COMM: f64 = 0.8;

const HOPPER: FamilyFit = FamilyFit {
    matmul: 0.62,
    matmul_fp8: 0.55,
    matmul_half_tokens: 139.0,
    attention: 0.7,
    memory: 0.88,
};

/// Ampere's GEMMs reach a larger share of their (lower) peak: the fit's A100 prefills.
const AMPERE: FamilyFit = FamilyFit {
    matmul: 0.72,
    ..HOPPER
};

/// GPU families the `calibrated` preset tells apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Family {
    Hopper,
    Blackwell,
    Ampere,
    Ada,
    Other,
}

/// The family of a catalog GPU.
pub(crate) fn family(gpu: &Gpu) -> Family {
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

fn family_fit(f: &Family) -> &'static FamilyFit {
    match f {
        Family::Ampere => &AMPERE,
        Family::Hopper | Family::Blackwell | Family::Ada | Family::Other => &HOPPER,
    }
}

impl Efficiency {
    /// Everything at peak, no overheads: roofline floors.
    pub fn ideal() -> Efficiency {
        Efficiency {
            matmul: 1.0,
            matmul_half_tokens: 0.0,
            attention: 1.0,
            memory: 1.0,
            comm: 1.0,
            step_overhead_s: 0.0,
            per_layer_overhead_s: 0.0,
            per_sequence_overhead_s: 0.0,
            per_request_overhead_s: 0.0,
            per_prompt_token_overhead_s: 0.0,
        }
    }

    /// The figures fitted on the fidelity benchmark's fit cases for the GPU's family and the
    /// weights' format (FP8 weights on a GPU with an FP8 rate get the FP8 GEMM fraction, of
    /// the FP8 peak); see [`Efficiency::calibration_basis`].
    pub fn calibrated(gpu: &Gpu, weights: Dtype) -> Efficiency {
        let f = family_fit(&family(gpu));
        let fp8_rate = weights == Dtype::Fp8 && gpu.fp8_dense_tflops.is_some();
        Efficiency {
            matmul: if fp8_rate { f.matmul_fp8 } else { f.matmul },
            matmul_half_tokens: f.matmul_half_tokens,
            attention: f.attention,
            memory: f.memory,
            comm: COMM,
            step_overhead_s: STEP_OVERHEAD_S,
            per_layer_overhead_s: PER_LAYER_OVERHEAD_S,
            per_sequence_overhead_s: PER_SEQUENCE_OVERHEAD_S,
            per_request_overhead_s: PER_REQUEST_OVERHEAD_S,
            per_prompt_token_overhead_s: PER_PROMPT_TOKEN_OVERHEAD_S,
        }
    }

    /// Where [`Efficiency::calibrated`]'s figures come from for this GPU.
    pub fn calibration_basis(gpu: &Gpu) -> &'static str {
        match family(gpu) {
            Family::Hopper => "fitted on published H100/H200 serving measurements (Hopper family)",
            Family::Blackwell => {
                "uncalibrated: the Hopper figures (a fit on one InferenceX B200 case predicted \
                 the other two 40–100 % off)"
            }
            Family::Ampere => "fitted on published A100 measurements (Ampere family)",
            Family::Ada => "fitted on published L40S/L20 measurements (Ada family)",
            Family::Other => "uncalibrated: the Hopper figures used as a middle guess",
        }
    }

    /// Checks fractions are in (0, 1] and overheads and the half-efficiency size are finite
    /// and ≥ 0.
    pub fn validate(&self) -> Result<(), HwError> {
        let fractions = [
            ("matmul", self.matmul),
            ("attention", self.attention),
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
            ("matmul_half_tokens", self.matmul_half_tokens),
            ("step_overhead_s", self.step_overhead_s),
            ("per_layer_overhead_s", self.per_layer_overhead_s),
            ("per_sequence_overhead_s", self.per_sequence_overhead_s),
            ("per_request_overhead_s", self.per_request_overhead_s),
            (
                "per_prompt_token_overhead_s",
                self.per_prompt_token_overhead_s,
            ),
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
