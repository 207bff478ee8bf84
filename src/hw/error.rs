//! Errors of the analytical model: unknown names, unreadable or invalid files, and deployments
//! whose weights do not fit. Every message says what was wrong and how to fix it.

use std::path::PathBuf;

/// Everything that can go wrong while loading a model or GPU description or building a
/// [`Deployment`](super::Deployment).
#[derive(Debug, thiserror::Error)]
pub enum HwError {
    /// A model name that is neither in the catalog nor an existing file.
    #[error(
        "unknown model `{name}`: it is not in the built-in catalog and no file exists at that path{suggestion}\n  built-in models: {catalog}\n  hint: pass the path of a Hugging Face config.json (or of the directory holding it) instead"
    )]
    UnknownModel {
        /// What the user typed.
        name: String,
        /// ", did you mean `…`?" or empty.
        suggestion: String,
        /// Comma-separated catalog names.
        catalog: String,
    },
    /// A GPU name that is neither in the catalog nor an existing file.
    #[error(
        "unknown GPU `{name}`: it is not in the built-in catalog and no file exists at that path{suggestion}\n  built-in GPUs: {catalog}\n  hint: pass the path of a TOML file with the keys name, bf16_dense_tflops, fp8_dense_tflops (optional), memory_bytes, bandwidth_bytes_per_s, interconnect_bytes_per_s, source (optional)"
    )]
    UnknownGpu {
        /// What the user typed.
        name: String,
        /// ", did you mean `…`?" or empty.
        suggestion: String,
        /// Comma-separated catalog names.
        catalog: String,
    },
    /// A file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A config.json that is not valid JSON of the expected shape.
    #[error("{origin}: not a valid Hugging Face config.json: {source}")]
    ConfigJson {
        /// File path or catalog name.
        origin: String,
        /// The JSON error (with line and column).
        source: serde_json::Error,
    },
    /// A config.json that parsed but lacks a key or holds an impossible value.
    #[error("{origin}: {problem}")]
    InvalidConfig {
        /// File path or catalog name.
        origin: String,
        /// What is wrong, naming the key.
        problem: String,
    },
    /// A GPU TOML file that does not parse (unknown keys are errors).
    #[error("{origin}: not a valid GPU description: {source}")]
    GpuToml {
        /// File path.
        origin: String,
        /// The TOML error (with line, column and expected keys).
        source: toml::de::Error,
    },
    /// A GPU description with an impossible value.
    #[error("{origin}: {problem}")]
    InvalidGpu {
        /// File path or GPU name.
        origin: String,
        /// What is wrong, naming the key.
        problem: String,
    },
    /// A deployment that cannot exist (tensor parallelism, efficiencies, utilisation).
    #[error("invalid deployment: {0}")]
    InvalidDeployment(String),
    /// The weights alone exceed the memory budget of one GPU.
    #[error(
        "{model} does not fit on {gpu} at tp={tp}: weights need {weights_gb:.2} GB per GPU but only {budget_gb:.2} GB is available ({memory_gb:.2} GB × gpu_memory_utilization {utilization})\n  hint: raise tp, use a smaller weight dtype (fp8, int4), or pick a GPU with more memory"
    )]
    WeightsDoNotFit {
        /// Model name.
        model: String,
        /// GPU name.
        gpu: String,
        /// Tensor-parallel degree.
        tp: u32,
        /// Weight bytes per GPU, in GB (1e9).
        weights_gb: f64,
        /// Memory budget per GPU, in GB.
        budget_gb: f64,
        /// GPU memory, in GB.
        memory_gb: f64,
        /// The utilisation factor used.
        utilization: f64,
    },
}

/// ", did you mean `x`?" for the closest candidate, or an empty string when none is close.
pub(crate) fn did_you_mean<'a>(typed: &str, candidates: impl Iterator<Item = &'a str>) -> String {
    let typed = typed.to_ascii_lowercase();
    candidates
        .map(|c| (strsim::jaro_winkler(&typed, &c.to_ascii_lowercase()), c))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| format!(", did you mean `{c}`?"))
        .unwrap_or_default()
}
