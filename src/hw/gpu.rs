//! [`Gpu`]: the few figures of an accelerator the roofline needs, from the built-in catalog or a
//! user TOML file with the same keys.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::catalog_gpus::{self, GPUS, GpuSpec};
use super::dtype::Dtype;
use super::error::{HwError, did_you_mean};

/// One accelerator. In a TOML file the keys are exactly these field names; `fp8_dense_tflops`
/// and `source` may be omitted and any other key is an error.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Gpu {
    /// Display name.
    pub name: String,
    /// Dense BF16/FP16 tensor throughput, TFLOP/s (1e12 FLOP/s; never the 2:4-sparse figure).
    pub bf16_dense_tflops: f64,
    /// Dense FP8 tensor throughput, TFLOP/s, when the GPU has FP8 tensor cores.
    #[serde(default)]
    pub fp8_dense_tflops: Option<f64>,
    /// Device memory, bytes (catalog GPUs: what `nvidia-smi` reports as `memory.total`).
    pub memory_bytes: u64,
    /// Peak memory bandwidth, bytes/s.
    pub bandwidth_bytes_per_s: f64,
    /// GPU-to-GPU bandwidth per direction, bytes/s (NVLink, else PCIe).
    pub interconnect_bytes_per_s: f64,
    /// Where the figures come from ("approximate: …" when not from a vendor datasheet).
    #[serde(default)]
    pub source: String,
}

impl Gpu {
    /// Every catalog GPU, in catalog order.
    pub fn catalog() -> Vec<Gpu> {
        GPUS.iter().map(Gpu::from_spec).collect()
    }

    /// A catalog GPU by name or alias (case-insensitive; `-`, `_` and spaces ignored; the
    /// `nvidia-smi` names such as `NVIDIA H100 80GB HBM3` are accepted).
    pub fn by_name(name: &str) -> Option<Gpu> {
        catalog_gpus::find(name).map(Gpu::from_spec)
    }

    /// A catalog GPU by name, else a TOML file at that path.
    pub fn load(name_or_path: &str) -> Result<Gpu, HwError> {
        if let Some(gpu) = Gpu::by_name(name_or_path) {
            return Ok(gpu);
        }
        let path = Path::new(name_or_path);
        if !path.is_file() {
            let names: Vec<&str> = GPUS.iter().map(|g| g.name).collect();
            return Err(HwError::UnknownGpu {
                name: name_or_path.to_string(),
                suggestion: did_you_mean(name_or_path, names.iter().copied()),
                catalog: names.join(", "),
            });
        }
        let text = std::fs::read_to_string(path).map_err(|source| HwError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Gpu::from_toml_str(&text, &path.display().to_string())
    }

    /// Parses and validates a GPU TOML text; `origin` names it in errors. A missing `source`
    /// becomes "user file `origin`".
    pub fn from_toml_str(text: &str, origin: &str) -> Result<Gpu, HwError> {
        let mut gpu: Gpu = toml::from_str(text).map_err(|source| HwError::GpuToml {
            origin: origin.to_string(),
            source,
        })?;
        if gpu.source.is_empty() {
            gpu.source = format!("user file {origin}");
        }
        gpu.validate(origin)?;
        Ok(gpu)
    }

    /// Checks every figure is positive and finite.
    pub fn validate(&self, origin: &str) -> Result<(), HwError> {
        let bad = |key: &str, value: f64| HwError::InvalidGpu {
            origin: origin.to_string(),
            problem: format!("`{key}` = {value} must be a positive finite number"),
        };
        let positive = |v: f64| v.is_finite() && v > 0.0;
        let checks = [
            ("bf16_dense_tflops", self.bf16_dense_tflops),
            ("bandwidth_bytes_per_s", self.bandwidth_bytes_per_s),
            ("interconnect_bytes_per_s", self.interconnect_bytes_per_s),
            ("memory_bytes", self.memory_bytes as f64),
            ("fp8_dense_tflops", self.fp8_dense_tflops.unwrap_or(1.0)),
        ];
        match checks.iter().find(|(_, v)| !positive(*v)) {
            Some((key, value)) => Err(bad(key, *value)),
            None => Ok(()),
        }
    }

    /// Peak dense FLOP/s for matmuls whose weights are stored as `weights`: the FP8 rate for
    /// FP8 weights on GPUs that have it, else the BF16 rate (INT4 weight-only kernels and FP32
    /// checkpoints are counted at the BF16 rate).
    pub fn peak_flops(&self, weights: Dtype) -> f64 {
        let tflops = match (weights, self.fp8_dense_tflops) {
            (Dtype::Fp8, Some(fp8)) => fp8,
            _ => self.bf16_dense_tflops,
        };
        tflops * 1e12
    }

    /// Ridge point of the BF16 roofline, FLOP per byte (peak / bandwidth).
    pub fn ridge_point(&self) -> f64 {
        self.bf16_dense_tflops * 1e12 / self.bandwidth_bytes_per_s
    }

    fn from_spec(spec: &GpuSpec) -> Gpu {
        Gpu {
            name: spec.name.to_string(),
            bf16_dense_tflops: spec.bf16_tflops,
            fp8_dense_tflops: spec.fp8_tflops,
            memory_bytes: (spec.memory_mib * (1u64 << 20) as f64) as u64,
            bandwidth_bytes_per_s: spec.bandwidth_gb_s * 1e9,
            interconnect_bytes_per_s: spec.link_gb_s_per_dir * 1e9,
            source: spec.source.to_string(),
        }
    }
}
