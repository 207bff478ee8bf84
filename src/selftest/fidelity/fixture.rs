//! The fidelity benchmark's fixture: published measurements with their configuration
//! (`cases.toml`, embedded in the binary so the benchmark needs no files), parsed and checked.

use std::collections::BTreeMap;
use std::num::NonZeroU32;

use serde::Deserialize;

use crate::hw::{Dtype, Gpu, ModelConfig};

/// The fixture shipped with exp (`src/selftest/fidelity/cases.toml`).
pub const CASES_TOML: &str = include_str!("cases.toml");

/// Whether a case was used to fit the `calibrated` preset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// Used to fit the preset's figures.
    Fit,
    /// Not used to fit: the benchmark reports how well the preset predicts it.
    HeldOut,
}

impl Role {
    /// `fit` or `held-out`.
    pub fn name(self) -> &'static str {
        match self {
            Role::Fit => "fit",
            Role::HeldOut => "held-out",
        }
    }
}

/// The published figures of a case (only those published).
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Published {
    /// Mean time to first token, ms.
    pub ttft_ms: Option<f64>,
    /// Mean time per output token (or inter-token latency), ms.
    pub tpot_ms: Option<f64>,
    /// Output tokens per second of the whole deployment.
    pub throughput_tok_s: Option<f64>,
}

/// How requests arrive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Load {
    /// A closed loop with this many requests in flight.
    Concurrency(NonZeroU32),
    /// Static batches of this size, each sent when the previous one finished.
    Batch(NonZeroU32),
}

impl Load {
    /// Requests in flight at once.
    pub fn width(self) -> u32 {
        match self {
            Load::Concurrency(n) | Load::Batch(n) => n.get(),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFixture {
    #[serde(default)]
    model: Vec<RawModel>,
    case: Vec<RawCase>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawModel {
    name: String,
    #[allow(dead_code)]
    source: String,
    config: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCase {
    id: String,
    role: Role,
    source: String,
    figure: String,
    engine: String,
    model: String,
    gpu: String,
    tp: u32,
    weights: Option<String>,
    kv: Option<String>,
    concurrency: Option<NonZeroU32>,
    batch: Option<NonZeroU32>,
    prompt: u32,
    output: u32,
    max_num_batched_tokens: Option<u32>,
    requests: Option<u64>,
    #[serde(default = "yes")]
    api_server: bool,
    published: Published,
}

fn yes() -> bool {
    true
}

/// One published measurement with the configuration it was taken with.
#[derive(Debug, Clone)]
pub struct Case {
    /// Short unique name.
    pub id: String,
    /// Fit or held out.
    pub role: Role,
    /// Where it was published (address).
    pub source: String,
    /// Which figure of the source.
    pub figure: String,
    /// The serving engine that was measured.
    pub engine: String,
    /// The model.
    pub model: ModelConfig,
    /// The GPU (each of `tp`).
    pub gpu: Gpu,
    /// Tensor-parallel degree.
    pub tp: u32,
    /// Weight storage format.
    pub weights: Dtype,
    /// KV-cache storage format.
    pub kv: Dtype,
    /// How requests arrive.
    pub load: Load,
    /// Prompt tokens per request.
    pub prompt: u32,
    /// Output tokens per request.
    pub output: u32,
    /// The engine's token budget per step.
    pub max_num_batched_tokens: u32,
    /// Requests the benchmark sent (`None`: 10 per slot of a closed loop, 4 alone).
    pub requests: Option<u64>,
    /// Whether requests went through an API server (HTTP, tokenisation); false for in-process
    /// benchmarks such as TensorRT-LLM's gptSessionBenchmark, which feed token ids directly.
    pub api_server: bool,
    /// The published figures.
    pub published: Published,
}

/// A fixture that cannot be used, with the case and what is wrong.
#[derive(Debug, thiserror::Error)]
#[error("fidelity fixture: {0}")]
pub struct FixtureError(String);

/// Parses and checks a fixture: every case names a known model and GPU, one of `concurrency`
/// and `batch`, at least one published figure, and ids are unique.
pub fn parse(text: &str) -> Result<Vec<Case>, FixtureError> {
    let raw: RawFixture = toml::from_str(text).map_err(|e| FixtureError(e.to_string()))?;
    let mut models = BTreeMap::new();
    for m in raw.model {
        let config = ModelConfig::from_json_str(&m.config, &m.name)
            .map_err(|e| FixtureError(format!("model `{}`: {e}", m.name)))?;
        models.insert(m.name, config);
    }
    let mut seen = std::collections::BTreeSet::new();
    let mut cases = Vec::with_capacity(raw.case.len());
    for c in raw.case {
        if !seen.insert(c.id.clone()) {
            return Err(FixtureError(format!("case id `{}` appears twice", c.id)));
        }
        cases.push(case(c, &models)?);
    }
    Ok(cases)
}

fn case(c: RawCase, models: &BTreeMap<String, ModelConfig>) -> Result<Case, FixtureError> {
    let bad = |what: String| FixtureError(format!("case `{}`: {what}", c.id));
    let model = match models.get(&c.model) {
        Some(m) => m.clone(),
        None => ModelConfig::load(&c.model).map_err(|e| bad(e.to_string()))?,
    };
    let gpu = Gpu::by_name(&c.gpu).ok_or_else(|| bad(format!("unknown GPU `{}`", c.gpu)))?;
    let dtype = |v: &Option<String>, default: Dtype| match v {
        Some(s) => s.parse::<Dtype>().map_err(&bad),
        None => Ok(default),
    };
    let weights = dtype(&c.weights, model.dtype)?;
    let kv = dtype(&c.kv, model.default_kv_dtype())?;
    let load = match (c.concurrency, c.batch) {
        (Some(n), None) => Load::Concurrency(n),
        (None, Some(n)) => Load::Batch(n),
        _ => return Err(bad("needs exactly one of `concurrency` and `batch`".into())),
    };
    let p = c.published;
    if p.ttft_ms.is_none() && p.tpot_ms.is_none() && p.throughput_tok_s.is_none() {
        return Err(bad("publishes no figure".into()));
    }
    if c.prompt == 0 || c.output == 0 || c.tp == 0 {
        return Err(bad("prompt, output and tp must be ≥ 1".into()));
    }
    Ok(Case {
        max_num_batched_tokens: c.max_num_batched_tokens.unwrap_or(8192),
        requests: c.requests,
        api_server: c.api_server,
        id: c.id,
        role: c.role,
        source: c.source,
        figure: c.figure,
        engine: c.engine,
        model,
        gpu,
        tp: c.tp,
        weights,
        kv,
        load,
        prompt: c.prompt,
        output: c.output,
        published: p,
    })
}
