//! Numeric formats of weights and KV cache, and their size in bytes per element.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A storage format for weights or KV-cache elements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Dtype {
    /// 32-bit float (4 bytes).
    Fp32,
    /// bfloat16 (2 bytes).
    Bf16,
    /// IEEE half (2 bytes).
    Fp16,
    /// 8-bit float, e4m3 or e5m2 (1 byte; block scales are ignored).
    Fp8,
    /// 4-bit integer weights (AWQ/GPTQ-style) with one fp16 scale per group of 128:
    /// 0.5 + 2/128 bytes per element. Computation runs in bf16.
    Int4,
}

impl Dtype {
    /// Every format, in a stable order (for help texts).
    pub const ALL: [Dtype; 5] = [
        Dtype::Fp32,
        Dtype::Bf16,
        Dtype::Fp16,
        Dtype::Fp8,
        Dtype::Int4,
    ];

    /// Bytes per element, including group scales for `Int4`.
    pub fn bytes(self) -> f64 {
        match self {
            Dtype::Fp32 => 4.0,
            Dtype::Bf16 | Dtype::Fp16 => 2.0,
            Dtype::Fp8 => 1.0,
            Dtype::Int4 => 0.5 + 2.0 / 128.0,
        }
    }

    /// The short name used in files and tables (`bf16`, `fp8`, …).
    pub fn name(self) -> &'static str {
        match self {
            Dtype::Fp32 => "fp32",
            Dtype::Bf16 => "bf16",
            Dtype::Fp16 => "fp16",
            Dtype::Fp8 => "fp8",
            Dtype::Int4 => "int4",
        }
    }
}

impl fmt::Display for Dtype {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Dtype {
    type Err = String;

    /// Accepts the short names and the spellings of `torch_dtype` (`bfloat16`, `float16`, …).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "fp32" | "float32" | "float" => Ok(Dtype::Fp32),
            "bf16" | "bfloat16" => Ok(Dtype::Bf16),
            "fp16" | "float16" | "half" => Ok(Dtype::Fp16),
            "fp8" | "float8" | "fp8_e4m3" | "fp8_e5m2" | "e4m3" | "e5m2" => Ok(Dtype::Fp8),
            "int4" | "w4a16" | "awq" | "gptq" => Ok(Dtype::Int4),
            other => Err(format!(
                "unknown dtype `{other}` (expected one of: fp32, bf16, fp16, fp8, int4)"
            )),
        }
    }
}
