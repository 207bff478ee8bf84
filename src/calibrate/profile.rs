//! The profile file `exp calibrate` writes and `[target] sim_preset = "path"` reads: an
//! `[efficiency]` table (the [`Efficiency`] fields) and an optional `[profile]` table saying
//! where the numbers came from. Unknown keys are errors in both, so a typo is never ignored.
//!
//! ```toml
//! [profile]
//! model = "llama-3.1-8b"
//! gpu = "h100-sxm"
//! tp = [1]
//! source_run = "reports/calibrate_low_load/2026-01-01T00-00-00Z"
//! ttft_rel_rms = 0.004
//! tpot_rel_rms = 0.001
//! fitted = ["matmul", "memory", "step_overhead_s"]
//!
//! [efficiency]
//! matmul = 0.55
//! attention = 0.3
//! memory = 0.7
//! comm = 0.8
//! step_overhead_s = 0.0002
//! per_layer_overhead_s = 0.0
//! ```

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::hw::Efficiency;

/// A profile file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    /// Where the numbers came from (absent in hand-written profiles).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<ProfileMeta>,
    /// The factors the simulator uses.
    pub efficiency: Efficiency,
}

/// `[profile]`: provenance and quality of a calibrated profile. Every key is optional.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProfileMeta {
    /// Model (catalog name or config.json path) the factors were fitted for.
    pub model: String,
    /// GPU (catalog name or GPU TOML path).
    pub gpu: String,
    /// Tensor-parallel degrees of the cells used.
    pub tp: Vec<u32>,
    /// The run directory calibrated from.
    pub source_run: String,
    /// Its run id.
    pub run_id: String,
    /// What executed the run (`openai-completions at http://…`, or the simulator).
    pub executor: String,
    /// When the profile was written (RFC 3339, UTC).
    pub created: String,
    /// exp version that wrote it.
    pub exp_version: String,
    /// How the factors were fitted, in one line.
    pub method: String,
    /// Requests whose TTFT was used.
    pub ttft_requests: usize,
    /// Requests whose TPOT was used.
    pub tpot_requests: usize,
    /// RMS of (predicted − measured)/measured TTFT at the fit.
    pub ttft_rel_rms: f64,
    /// Mean of the same (positive: the profile predicts too slow).
    pub ttft_rel_mean: f64,
    /// RMS of (predicted − measured)/measured TPOT at the fit.
    pub tpot_rel_rms: f64,
    /// Mean of the same.
    pub tpot_rel_mean: f64,
    /// `[efficiency]` keys fitted from the run.
    pub fitted: Vec<String>,
    /// `[efficiency]` keys kept from the starting preset, each with why.
    pub kept: Vec<String>,
    /// Standard errors of the fitted keys (same units).
    pub std_errors: BTreeMap<String, f64>,
    /// Cells whose requests were used.
    pub cells: Vec<ProfileCell>,
}

/// One cell used by the fit.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProfileCell {
    /// Cell id (directory under `records/`).
    pub id: String,
    /// Requests of the cell that ran alone and were used.
    pub requests: usize,
    /// Shortest prompt among them, tokens.
    pub prompt_tokens_min: u32,
    /// Longest prompt among them, tokens.
    pub prompt_tokens_max: u32,
}

impl Profile {
    /// Parses a profile and checks its factors.
    pub fn parse(text: &str) -> Result<Profile, String> {
        let profile: Profile = toml::from_str(text).map_err(|e| e.to_string())?;
        profile.efficiency.validate().map_err(|e| e.to_string())?;
        Ok(profile)
    }

    /// The file's text: a comment saying how to use it, then the TOML.
    pub fn render(&self) -> String {
        let body = toml::to_string(self).expect("a profile serialises to TOML");
        format!(
            "# Simulator profile written by `exp calibrate`: use it with\n\
             #   [target]\n#   sim_preset = \"path/to/this.toml\"\n\
             # [efficiency] is what the simulator reads; [profile] says where it came from.\n\n\
             {body}"
        )
    }
}
