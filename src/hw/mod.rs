//! The analytical model of a model × GPU deployment: parameters, FLOPs, bytes and roofline times.
//!
//! What this module owns (pure arithmetic; the only I/O is reading a `config.json` or a GPU TOML
//! file whose path the user gave):
//! - [`ModelConfig`]: a Hugging Face `config.json` (dense, GQA, QKV bias, tied embeddings, MoE in
//!   the Mixtral / Qwen-MoE / DeepSeek layouts, DeepSeek MLA), plus a built-in catalog by name.
//! - [`Gpu`]: peak dense FLOP/s, memory, bandwidth and interconnect, plus a built-in catalog and
//!   user TOML files.
//! - [`Efficiency`]: the `ideal` (hard floors) and `calibrated` (BLIS-derived) presets.
//! - [`Deployment`]: model × GPU × tensor parallelism × dtypes. Its [`Deployment::step_time`] is
//!   the step-time model the simulated engine calls on every engine step.
//! - [`estimate`]: the `exp estimate` computation and its text table, including the seed
//!   documents' simplified method.
//!
//! Formulas follow `hardware.md` §1 (parameter count §1.2, FLOPs §1.3, bytes §1.4, roofline
//! §1.5, TP communication §1.6, MFU/MBU §1.7). Conventions used throughout:
//! - FLOPs count a multiply-add as 2; attention is causal (a prefill of `s` tokens attends to
//!   `s(s+1)/2` positions); the LM head runs once per sequence per step.
//! - Decode at context `c` means the sequence already holds `c` tokens of KV cache; the step
//!   reads those `c` tokens and writes one more.
//! - Times are `max(compute, memory) + TP communication + fixed overheads` (perfect overlap of
//!   compute and memory traffic, as LLM-Viewer and llm-analysis assume).

mod catalog_gpus;
mod catalog_models;
mod config_json;
mod deployment;
mod dtype;
mod efficiency;
mod error;
pub mod estimate;
mod gpu;
mod model;
mod roofline;
mod utilization;

#[cfg(test)]
mod tests;

pub use deployment::{Bound, Deployment, PrefillWork, StepTime, StepWork};
pub use dtype::Dtype;
pub use efficiency::Efficiency;
#[cfg(test)]
pub(crate) use efficiency::{Family, family};
pub use error::HwError;
pub use gpu::Gpu;
pub use model::{Mla, ModelConfig, Moe};
pub use roofline::AllReduce;
pub use utilization::{Utilization, WorkTotals};
