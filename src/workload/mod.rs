//! What one repetition sends, and when: [`build`] turns a cell's [`WorkloadConfig`] and the
//! repetition's seeds into a [`RepetitionWork`] — the arrival process and deterministic sources
//! of measured and warm-up requests.
//!
//! The seeds come from the experiment seed and the repetition, never from the cell, and every
//! per-request quantity is drawn on request `i`'s own stream, so all cells of a repetition see
//! the same requests at the same offsets as far as their settings allow (common random numbers:
//! a cell with a higher rate gets the same arrival variates, scaled).
//!
//! Prompt lengths are in words unless the target has a tokenizer ([`Datasets::build_with`]):
//! then synthetic prompts are exactly their drawn number of its tokens and dataset prompts are
//! counted with it.

pub mod arrivals;
pub mod cache;
pub mod conversation;
pub mod dataset;
pub mod error;
mod jsonl;
mod lengths;
mod sharegpt;
mod stream;
mod synthetic;
pub mod tokenizer;
pub mod trace;
pub mod words;
pub mod work;

use std::path::Path;
use std::sync::Arc;

pub use cache::{DatasetFormat, Datasets};
pub use error::WorkloadError;
pub use tokenizer::{ModelTokenizer, TokenizerError};

use crate::scenario::model::{PromptSource, WorkloadConfig};
use conversation::ConversationSource;
use lengths::{LengthDraw, LengthPlan};
use stream::Purpose;
use synthetic::{PrefixGroups, SyntheticSource};
use trace::{Trace, TracePrompts};
use work::{RepetitionWork, RequestSource};

/// The random seeds of one repetition's workload (derived by the caller from the experiment seed
/// and the repetition index, independent of the cell).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WorkloadSeeds {
    /// Open-loop arrival gaps.
    pub arrivals: u64,
    /// Prompt text, dataset order and shared prefixes.
    pub prompts: u64,
    /// Prompt and output lengths.
    pub lengths: u64,
    /// Everything about warm-up requests (shared prefixes excepted: warm-up warms the same ones).
    pub warmup: u64,
}

/// Builds one repetition's work with prompt lengths in words, loading datasets and traces
/// through the process-wide [`Datasets`] cache. Dataset and trace paths are used as given:
/// the scenario loader has already resolved them against the scenario file's folder.
pub fn build(cfg: &WorkloadConfig, seeds: &WorkloadSeeds) -> Result<RepetitionWork, WorkloadError> {
    Datasets::global().build(cfg, seeds)
}

/// Seeds of one request source.
#[derive(Clone, Copy)]
struct SourceSeeds<'t> {
    text: u64,
    lengths: u64,
    prefix: u64,
    tokenizer: Option<&'t Path>,
}

impl Datasets {
    /// [`build`] with this cache.
    pub fn build(
        &self,
        cfg: &WorkloadConfig,
        seeds: &WorkloadSeeds,
    ) -> Result<RepetitionWork, WorkloadError> {
        self.build_with(cfg, seeds, None)
    }

    /// [`build`] with this cache, prompt lengths in the tokens of the `tokenizer.json` at
    /// `tokenizer` (already resolved) when given. Request 0 of each source is built here, so a
    /// tokenizer that cannot write or count these prompts fails the build, not a request.
    pub fn build_with(
        &self,
        cfg: &WorkloadConfig,
        seeds: &WorkloadSeeds,
        tokenizer: Option<&Path>,
    ) -> Result<RepetitionWork, WorkloadError> {
        check_settings(cfg)?;
        if let (PromptSource::Conversations { .. }, Some(_)) = (&cfg.prompts, cfg.arrival.trace()) {
            return Err(WorkloadError::Invalid(
                "conversations cannot be replayed with a trace's arrivals".into(),
            ));
        }
        let trace = match cfg.arrival.trace() {
            Some(path) => Some(self.trace(path)?),
            None => None,
        };
        let (arrivals, requests) = arrivals::build(cfg, seeds.arrivals, trace.as_deref())?;
        let measured = SourceSeeds {
            text: seeds.prompts,
            lengths: seeds.lengths,
            prefix: seeds.prompts,
            tokenizer,
        };
        let warm = SourceSeeds {
            text: seeds.warmup,
            lengths: seeds.warmup,
            prefix: seeds.prompts,
            tokenizer,
        };
        Ok(RepetitionWork {
            warmup: cfg.warmup,
            source: self.source(cfg, measured, trace.as_ref())?,
            warmup_source: self.source(cfg, warm, trace.as_ref())?,
            requests,
            duration: cfg.duration,
            grace: cfg.grace,
            arrivals,
            share: None,
        })
    }

    /// Checks what [`build`](Datasets::build) would refuse without building a repetition:
    /// the settings, and that every dataset and trace file reads and parses (loading them into
    /// this cache, so the run that follows does not read them again). Run before anything is
    /// written, so a bad line stops `exp run` before its run directory exists.
    pub fn check(&self, cfg: &WorkloadConfig) -> Result<(), WorkloadError> {
        check_settings(cfg)?;
        if let Some(path) = cfg.arrival.trace() {
            self.trace(path)?;
        }
        match &cfg.prompts {
            PromptSource::Jsonl(path) => {
                self.dataset(DatasetFormat::Jsonl, path)?;
            }
            PromptSource::ShareGpt(path) => {
                self.dataset(DatasetFormat::ShareGpt, path)?;
            }
            PromptSource::Conversations { path, .. } => {
                self.conversations(path)?;
            }
            PromptSource::Synthetic | PromptSource::SharedPrefix { .. } => {}
        }
        Ok(())
    }

    fn source(
        &self,
        cfg: &WorkloadConfig,
        seeds: SourceSeeds,
        trace: Option<&Arc<Trace>>,
    ) -> Result<Arc<dyn RequestSource>, WorkloadError> {
        let output = LengthDraw::new(
            cfg.output_tokens,
            cfg.output_dist,
            seeds.lengths,
            Purpose::OutputLength,
        );
        let plan = LengthPlan::new(
            LengthDraw::new(
                cfg.prompt_tokens,
                cfg.prompt_dist,
                seeds.lengths,
                Purpose::InputLength,
            ),
            output,
            trace.cloned(),
        );
        let tokenizer = match seeds.tokenizer {
            Some(path) => Some(self.tokenizer(path)?),
            None => None,
        };
        let inner: Arc<dyn RequestSource> = match &cfg.prompts {
            PromptSource::Synthetic => synthetic(plan, seeds.text, None, tokenizer.clone())?,
            PromptSource::SharedPrefix {
                groups,
                prefix_tokens,
            } => {
                let prefix = PrefixGroups {
                    groups: *groups,
                    tokens: *prefix_tokens,
                    seed: seeds.prefix,
                };
                synthetic(plan, seeds.text, Some(prefix), tokenizer.clone())?
            }
            PromptSource::Jsonl(path) => {
                self.dataset_source(DatasetFormat::Jsonl, path, seeds, plan)?
            }
            PromptSource::ShareGpt(path) => {
                self.dataset_source(DatasetFormat::ShareGpt, path, seeds, plan)?
            }
            PromptSource::Conversations { path, think_time } => {
                let data = self.conversations(path)?;
                Arc::new(ConversationSource::new(
                    data,
                    seeds.text,
                    output,
                    *think_time,
                ))
            }
        };
        Ok(match trace {
            Some(trace) if trace.has_prompts() => {
                let src = TracePrompts {
                    inner,
                    trace: Arc::clone(trace),
                    tokenizer,
                };
                src.check()?;
                Arc::new(src)
            }
            _ => inner,
        })
    }

    fn dataset_source(
        &self,
        format: DatasetFormat,
        path: &Path,
        seeds: SourceSeeds,
        plan: LengthPlan,
    ) -> Result<Arc<dyn RequestSource>, WorkloadError> {
        let data = self.dataset(format, path)?;
        let counts = match seeds.tokenizer {
            Some(tok) => Some(self.token_counts(format, path, tok)?),
            None => None,
        };
        let src = dataset::DatasetSource::new(data, seeds.text, plan, counts);
        src.check()?;
        Ok(Arc::new(src))
    }
}

/// A synthetic source, checked against its tokenizer.
fn synthetic(
    plan: LengthPlan,
    seed: u64,
    prefix: Option<PrefixGroups>,
    tokenizer: Option<Arc<ModelTokenizer>>,
) -> Result<Arc<dyn RequestSource>, WorkloadError> {
    let src = SyntheticSource::new(plan, seed, prefix, tokenizer);
    src.check()?;
    Ok(Arc::new(src))
}

/// Settings a repetition cannot honour, whatever its seeds.
fn check_settings(cfg: &WorkloadConfig) -> Result<(), WorkloadError> {
    lengths::check(cfg.prompt_dist, "prompt length")?;
    lengths::check(cfg.output_dist, "output length")?;
    if let PromptSource::SharedPrefix { prefix_tokens, .. } = cfg.prompts
        && prefix_tokens >= cfg.prompt_tokens
    {
        return Err(WorkloadError::Invalid(format!(
            "`prefix_tokens` ({prefix_tokens}) must be less than `prompt_tokens` ({}): \
             the prefix is part of the prompt",
            cfg.prompt_tokens
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_tokenizer;
