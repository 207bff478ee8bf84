//! `exp selftest fidelity` (issue 13): how close the simulated engine comes to published serving
//! measurements. Every case of the fixture ([`fixture::CASES_TOML`]) is replayed in the
//! simulator with the configuration it was measured with — model, GPU, tensor parallelism,
//! formats, concurrency or batch, prompt and output lengths — and its mean TTFT, mean TPOT and
//! output throughput are set against the published figures. The summary gives the median and
//! worst absolute error per metric, over the fit cases, the held-out cases and all of them.
//!
//! The replay is deterministic: no step-time noise, fixed seeds.

pub mod fixture;

use std::fmt::Write as _;
use std::num::NonZeroU32;
use std::time::Duration;

use crate::hw::{Deployment, Efficiency, HwError};
use crate::record::RequestRecord;
use crate::scenario::model::{ArrivalConfig, LengthDist, PromptSource, WorkloadConfig};
use crate::sim::{self, EngineParams};
use crate::workload::WorkloadSeeds;

pub use fixture::{CASES_TOML, Case, FixtureError, Load, Published, Role};

/// The goal: median absolute error per metric at most this.
pub const GOAL_MEDIAN: f64 = 0.10;
/// The goal: worst absolute error per metric at most this.
pub const GOAL_WORST: f64 = 0.20;

/// Share of GPU memory for weights and KV cache, as vLLM's default.
const GPU_MEMORY_UTILIZATION: f64 = 0.9;
/// Relative half-width of the uniform output lengths of closed loops with more than one request
/// in flight, so that requests do not run in lockstep (the benchmarks' random datasets vary).
const CLOSED_LOOP_SPREAD: f64 = 0.1;
/// Requests a closed loop sends per slot when the case does not say: serving benchmarks send
/// a fixed number of prompts from a cold start (all slots start together) and average over all
/// of them, so the start-up burst is part of their mean TTFT.
const DEFAULT_REQUESTS_PER_SLOT: u64 = 10;

/// Which efficiency to replay with.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Preset {
    /// [`Efficiency::calibrated`] for each case's GPU.
    Calibrated,
    /// [`Efficiency::ideal`]: roofline floors.
    Ideal,
    /// The same efficiency for every case (a fit in progress, or a user's profile).
    Fixed(Efficiency),
}

/// The three metrics compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Metric {
    /// Mean time to first token.
    Ttft,
    /// Mean time per output token.
    Tpot,
    /// Output tokens per second.
    Throughput,
}

impl Metric {
    /// Every metric, in report order.
    pub const ALL: [Metric; 3] = [Metric::Ttft, Metric::Tpot, Metric::Throughput];

    /// Column name.
    pub fn name(self) -> &'static str {
        match self {
            Metric::Ttft => "TTFT",
            Metric::Tpot => "TPOT",
            Metric::Throughput => "throughput",
        }
    }

    fn published(self, p: &Published) -> Option<f64> {
        match self {
            Metric::Ttft => p.ttft_ms,
            Metric::Tpot => p.tpot_ms,
            Metric::Throughput => p.throughput_tok_s,
        }
    }

    fn unit(self) -> &'static str {
        match self {
            Metric::Ttft | Metric::Tpot => "ms",
            Metric::Throughput => "tok/s",
        }
    }
}

/// What the simulator predicts for a case.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Predicted {
    /// Mean TTFT over the measured requests, ms.
    pub ttft_ms: f64,
    /// Mean TPOT over the measured requests, ms.
    pub tpot_ms: f64,
    /// Output tokens per second over the measured window.
    pub throughput_tok_s: f64,
}

impl Predicted {
    fn get(&self, m: Metric) -> f64 {
        match m {
            Metric::Ttft => self.ttft_ms,
            Metric::Tpot => self.tpot_ms,
            Metric::Throughput => self.throughput_tok_s,
        }
    }
}

/// One compared figure.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// The case's id.
    pub case: String,
    /// Fit or held out.
    pub role: Role,
    /// Which metric.
    pub metric: Metric,
    /// The published figure.
    pub published: f64,
    /// The simulator's.
    pub predicted: f64,
}

impl Row {
    /// Signed relative error, `predicted / published − 1`.
    pub fn error(&self) -> f64 {
        self.predicted / self.published - 1.0
    }
}

/// Median and worst absolute error of some rows.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Summary {
    /// Figures compared.
    pub count: usize,
    /// Median of |error| (type 7, linear interpolation).
    pub median: f64,
    /// Largest |error|.
    pub worst: f64,
}

impl Summary {
    /// `None` for no rows.
    pub fn of<'a>(rows: impl Iterator<Item = &'a Row>) -> Option<Summary> {
        Summary::of_errors(rows.map(Row::error))
    }

    /// Of signed relative errors; `None` for none.
    pub fn of_errors(errors: impl Iterator<Item = f64>) -> Option<Summary> {
        let mut errs: Vec<f64> = errors.map(f64::abs).collect();
        if errs.is_empty() {
            return None;
        }
        errs.sort_by(f64::total_cmp);
        Some(Summary {
            count: errs.len(),
            median: crate::stats::quantile(&errs, 0.5)?,
            worst: errs[errs.len() - 1],
        })
    }

    /// Within the goal.
    pub fn meets_goal(&self) -> bool {
        self.median <= GOAL_MEDIAN && self.worst <= GOAL_WORST
    }
}

/// The benchmark's result.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The cases replayed.
    pub cases: Vec<Case>,
    /// Every compared figure, in case order.
    pub rows: Vec<Row>,
}

impl Outcome {
    /// The summary of one metric over the rows of `role` (`None` = all rows).
    pub fn summary(&self, metric: Metric, role: Option<Role>) -> Option<Summary> {
        Summary::of(
            self.rows
                .iter()
                .filter(|r| r.metric == metric && role.is_none_or(|x| r.role == x)),
        )
    }

    /// Every metric within the goal over all cases.
    pub fn meets_goal(&self) -> bool {
        Metric::ALL
            .iter()
            .all(|&m| self.summary(m, None).is_none_or(|s| s.meets_goal()))
    }
}

/// A case the simulator could not replay.
#[derive(Debug, thiserror::Error)]
pub enum FidelityError {
    /// The fixture is unusable.
    #[error(transparent)]
    Fixture(#[from] FixtureError),
    /// The deployment is impossible (tp, memory).
    #[error("case `{case}`: {source}")]
    Hw {
        /// The case.
        case: String,
        /// Why.
        source: Box<HwError>,
    },
    /// The simulation failed.
    #[error("case `{case}`: {message}")]
    Sim {
        /// The case.
        case: String,
        /// Why.
        message: String,
    },
}

/// Replays every case of `cases` with `preset`.
pub fn run(cases: Vec<Case>, preset: Preset) -> Result<Outcome, FidelityError> {
    let mut rows = Vec::new();
    for case in &cases {
        let predicted = replay(case, preset)?;
        for metric in Metric::ALL {
            if let Some(published) = metric.published(&case.published) {
                rows.push(Row {
                    case: case.id.clone(),
                    role: case.role,
                    metric,
                    published,
                    predicted: predicted.get(metric),
                });
            }
        }
    }
    Ok(Outcome { cases, rows })
}

/// The case's deployment with `preset`; with no API-server cost when the case was measured
/// without one.
pub fn deployment(case: &Case, preset: Preset) -> Result<Deployment, FidelityError> {
    let mut efficiency = match preset {
        Preset::Calibrated => Efficiency::calibrated(&case.gpu, case.weights),
        Preset::Ideal => Efficiency::ideal(),
        Preset::Fixed(e) => e,
    };
    if !case.api_server {
        efficiency.per_request_overhead_s = 0.0;
        efficiency.per_prompt_token_overhead_s = 0.0;
    }
    Deployment::new(
        case.model.clone(),
        case.gpu.clone(),
        case.tp,
        case.weights,
        case.kv,
        efficiency,
    )
    .map_err(|source| FidelityError::Hw {
        case: case.id.clone(),
        source: Box::new(source),
    })
}

/// Simulates one case: its load, lengths and engine settings, no noise.
pub fn replay(case: &Case, preset: Preset) -> Result<Predicted, FidelityError> {
    let d = deployment(case, preset)?;
    let hw = |source| FidelityError::Hw {
        case: case.id.clone(),
        source: Box::new(source),
    };
    let reserve = d.runtime_reserve_bytes(case.max_num_batched_tokens);
    let kv = d
        .kv_capacity_tokens_with_reserve(GPU_MEMORY_UTILIZATION, reserve)
        .map_err(hw)?;
    let width = case.load.width();
    let mut params = EngineParams::new(width.max(256), case.max_num_batched_tokens, kv);
    params.noise_cv = 0.0;
    let sim_err = |message: String| FidelityError::Sim {
        case: case.id.clone(),
        message,
    };
    let work =
        crate::workload::build(&workload(case), &SEEDS).map_err(|e| sim_err(e.to_string()))?;
    let run = sim::run_repetition(&work, &params, &d, 1).map_err(|e| sim_err(e.to_string()))?;
    measure(&run.records).ok_or_else(|| sim_err("no request completed".into()))
}

const SEEDS: WorkloadSeeds = WorkloadSeeds {
    arrivals: 1,
    prompts: 2,
    lengths: 3,
    warmup: 4,
};

fn workload(case: &Case) -> WorkloadConfig {
    let width = case.load.width();
    let (arrival, requests, spread) = match case.load {
        Load::Concurrency(n) if n.get() == 1 => (
            ArrivalConfig::Closed { concurrency: n },
            case.requests.unwrap_or(4),
            0.0,
        ),
        Load::Concurrency(n) => (
            ArrivalConfig::Closed { concurrency: n },
            case.requests
                .unwrap_or(u64::from(width) * DEFAULT_REQUESTS_PER_SLOT),
            CLOSED_LOOP_SPREAD,
        ),
        Load::Batch(n) => (ArrivalConfig::Batch { size: n }, u64::from(width), 0.0),
    };
    let output_dist = if spread > 0.0 && case.output > 1 {
        LengthDist::Uniform { spread }
    } else {
        LengthDist::Fixed
    };
    WorkloadConfig {
        prompts: PromptSource::Synthetic,
        prompt_tokens: case.prompt,
        prompt_dist: LengthDist::Fixed,
        output_tokens: case.output,
        output_dist,
        arrival,
        max_concurrency: NonZeroU32::new(width),
        requests: Some(requests),
        duration: None,
        warmup: 0,
        grace: Duration::from_secs(3600),
    }
}

/// Mean TTFT and TPOT of the records, and output tokens per second from the first send to the
/// last token.
fn measure(records: &[RequestRecord]) -> Option<Predicted> {
    let (mut ttft, mut tpot, mut n_ttft, mut n_tpot, mut tokens) = (0.0, 0.0, 0u32, 0u32, 0u64);
    let (mut start, mut end) = (u64::MAX, 0u64);
    for r in records {
        let (Some(sent), Some(first), Some(last)) = (r.sent_ns, r.chunks.first(), r.chunks.last())
        else {
            continue;
        };
        let n: u64 = r
            .chunks
            .iter()
            .map(|c| u64::from(c.tokens.unwrap_or(1)))
            .sum();
        ttft += (first.at_ns - sent) as f64 / 1e6;
        n_ttft += 1;
        if n > 1 {
            tpot += (last.at_ns - first.at_ns) as f64 / 1e6 / (n - 1) as f64;
            n_tpot += 1;
        }
        tokens += n;
        start = start.min(sent);
        end = end.max(last.at_ns);
    }
    if n_ttft == 0 || end <= start {
        return None;
    }
    Some(Predicted {
        ttft_ms: ttft / f64::from(n_ttft),
        tpot_ms: if n_tpot > 0 {
            tpot / f64::from(n_tpot)
        } else {
            0.0
        },
        throughput_tok_s: tokens as f64 / ((end - start) as f64 / 1e9),
    })
}

/// The report: one line per compared figure, then the summaries and the verdict.
pub fn render(o: &Outcome, preset_name: &str) -> String {
    let mut out = format!(
        "fidelity of the simulated engine (preset `{preset_name}`) against {} published measurements ({} cases, {} GPU types)\n\n",
        o.rows.len(),
        o.cases.len(),
        gpu_types(o)
    );
    let _ = writeln!(
        out,
        "{:<38} {:<8} {:<10} {:>10} {:>10} {:>8}",
        "case", "role", "metric", "published", "exp", "error"
    );
    for r in &o.rows {
        let _ = writeln!(
            out,
            "{:<38} {:<8} {:<10} {:>10} {:>10} {:>+7.1}%",
            r.case,
            r.role.name(),
            format!("{} {}", r.metric.name(), r.metric.unit()),
            sig(r.published),
            sig(r.predicted),
            r.error() * 100.0
        );
    }
    out.push_str("\n|error| per metric       median    worst   (n)\n");
    for metric in Metric::ALL {
        for (label, role) in [
            ("fit", Some(Role::Fit)),
            ("held-out", Some(Role::HeldOut)),
            ("all", None),
        ] {
            if let Some(s) = o.summary(metric, role) {
                let _ = writeln!(
                    out,
                    "{:<10} {:<9} {:>9.1}% {:>7.1}%   ({})",
                    metric.name(),
                    label,
                    s.median * 100.0,
                    s.worst * 100.0,
                    s.count
                );
            }
        }
    }
    let verdict = if o.meets_goal() { "met" } else { "NOT met" };
    let _ = writeln!(
        out,
        "\ngoal (median ≤ {:.0} %, worst ≤ {:.0} % per metric over all cases): {verdict}",
        GOAL_MEDIAN * 100.0,
        GOAL_WORST * 100.0
    );
    out.push_str(
        "sources: every case's address and figure are in src/selftest/fidelity/cases.toml\n",
    );
    out
}

fn gpu_types(o: &Outcome) -> usize {
    let names: std::collections::BTreeSet<&str> =
        o.cases.iter().map(|c| c.gpu.name.as_str()).collect();
    names.len()
}

fn sig(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

#[cfg(test)]
mod tests;
