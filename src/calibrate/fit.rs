//! The calibration fit: efficiency factors and the step overhead from requests that ran alone.
//! Pure.
//!
//! Two stages, each well posed on its own data:
//! 1. **Decode** (TPOT): at batch 1 a decode step is memory-bound, `bytes(c)/(BW·η_mem) + o`,
//!    where the bytes are the weights plus the KV cache at context `c`. TPOT over prompt
//!    lengths is a line in the bytes read: its slope gives `η_mem`, its intercept the fixed
//!    per-step overhead `o`. Fitted jointly, `(1/η_mem, o)`, on relative residuals.
//! 2. **Prefill** (TTFT): with `η_mem` and `o` fixed, TTFT is the prefill steps,
//!    `FLOPs(p)/(peak·η_prefill) + o` once prefill is compute-bound; `η_prefill` is fitted
//!    alone (1-D), again on relative residuals.
//!
//! Kept from the starting efficiency (not identifiable at low load): `attention` (batch-1
//! decode never reaches the compute roof) and `comm` (only tensor-parallel all-reduces use it,
//! and their time is not separable from the overhead). `per_layer_overhead_s` cannot be told
//! apart from `step_overhead_s` for one model (the engine adds `o_step + L·o_layer` per step),
//! so the whole fixed cost is written as `step_overhead_s` and the per-layer one as 0; the
//! per-sequence cost is folded in the same way (one sequence per step at low load), and
//! `matmul_half_tokens` is kept from the start (it trades off against `matmul` on few prompts).

use std::collections::BTreeMap;

use super::lsq::{self, Problem};
use super::predict;
use super::select::Observation;
use super::{CalibrateError, Calibration, CellModel, CellRow, Fitted, Residuals};
use crate::hw::{Deployment, Efficiency};

/// Fewest requests that ran alone for a fit.
pub const MIN_REQUESTS: usize = 10;
/// Relative standard error above which a fitted value is warned about.
const WARN_RELATIVE_SE: f64 = 0.10;
/// Largest step overhead considered, microseconds.
const MAX_OVERHEAD_US: f64 = 1e6;
/// Smallest efficiency considered (1/η ≤ 1000).
const MAX_INVERSE_EFFICIENCY: f64 = 1e3;

/// Longest over shortest prompt needed: per-token and fixed costs are told apart by the spread.
const MIN_PROMPT_SPREAD: u32 = 2;

/// Shortest and longest prompt (0, 0 for none).
fn prompt_range<'a>(obs: impl Iterator<Item = &'a Observation>) -> (u32, u32) {
    obs.fold(None, |acc: Option<(u32, u32)>, o| {
        let p = o.prompt_tokens;
        Some(acc.map_or((p, p), |(lo, hi)| (lo.min(p), hi.max(p))))
    })
    .unwrap_or((0, 0))
}

fn spread_enough((shortest, longest): (u32, u32)) -> bool {
    u64::from(longest) >= u64::from(MIN_PROMPT_SPREAD) * u64::from(shortest.max(1))
}

/// Refuses data that cannot pin the parameters, saying what the scenario needs (also called
/// by [`calibrate`]; callers may check before loading the hardware).
pub fn check_data(obs: &[Observation]) -> Result<(), CalibrateError> {
    if obs.len() < MIN_REQUESTS {
        return Err(CalibrateError::TooFewAlone {
            alone: obs.len(),
            needed: MIN_REQUESTS,
        });
    }
    let (shortest, longest) = prompt_range(obs.iter());
    if !spread_enough((shortest, longest)) {
        return Err(CalibrateError::PromptsTooAlike { shortest, longest });
    }
    let with_tpot: Vec<&Observation> = obs.iter().filter(|o| o.tpot.is_some()).collect();
    let (shortest, longest) = prompt_range(with_tpot.iter().copied());
    if with_tpot.len() < MIN_REQUESTS || !spread_enough((shortest, longest)) {
        return Err(CalibrateError::TooFewTpot {
            with_tpot: with_tpot.len(),
            shortest,
            longest,
            needed: MIN_REQUESTS,
        });
    }
    Ok(())
}

/// Deployments of every cell with efficiency `eff` (`None` where the cell is unused).
fn with_efficiency(cells: &[CellModel], eff: Efficiency) -> Vec<Option<Deployment>> {
    cells
        .iter()
        .map(|c| c.deployment.with_efficiency(eff).ok())
        .collect()
}

fn relative(pred: f64, measured: f64) -> f64 {
    (pred - measured) / measured
}

/// TPOT residuals at efficiency `eff`.
fn tpot_residuals(cells: &[CellModel], obs: &[&Observation], eff: Efficiency) -> Vec<f64> {
    let deps = with_efficiency(cells, eff);
    obs.iter()
        .map(|o| {
            let measured = o.tpot.expect("filtered on tpot").as_secs_f64();
            let pred = deps[o.cell]
                .as_ref()
                .and_then(|d| predict::tpot(d, o.prompt_tokens, o.output_tokens));
            pred.map_or(1e3, |p| relative(p.seconds, measured))
        })
        .collect()
}

/// TTFT residuals at efficiency `eff`.
fn ttft_residuals(cells: &[CellModel], obs: &[Observation], eff: Efficiency) -> Vec<f64> {
    let deps = with_efficiency(cells, eff);
    obs.iter()
        .map(|o| {
            let measured = o.ttft.as_secs_f64();
            deps[o.cell].as_ref().map_or(1e3, |d| {
                let pred = predict::ttft(d, o.prompt_tokens, cells[o.cell].chunk_budget);
                relative(pred.seconds, measured)
            })
        })
        .collect()
}

/// The efficiency the fit starts from and keeps the unfitted factors of; the fixed cost is
/// folded into `step_overhead_s`.
fn start_efficiency(cells: &[CellModel], obs: &[Observation]) -> Efficiency {
    let d = &cells[obs[0].cell].deployment;
    let mut eff = *d.efficiency();
    // At low load every step holds one sequence: its cost is part of the fixed one too.
    eff.step_overhead_s +=
        d.model().num_layers as f64 * eff.per_layer_overhead_s + eff.per_sequence_overhead_s;
    eff.per_layer_overhead_s = 0.0;
    eff.per_sequence_overhead_s = 0.0;
    eff
}

/// Stage 1: `(1/η_mem, overhead in µs)` from TPOT; returns the efficiency and the fit.
fn fit_decode(
    cells: &[CellModel],
    tpot_obs: &[&Observation],
    start: Efficiency,
) -> (Efficiency, lsq::Fit) {
    let eff = |x: &[f64]| Efficiency {
        memory: 1.0 / x[0],
        step_overhead_s: x[1] * 1e-6,
        ..start
    };
    let residuals = |x: &[f64]| tpot_residuals(cells, tpot_obs, eff(x));
    let problem = Problem {
        residuals: &residuals,
        lower: vec![1.0, 0.0],
        upper: vec![MAX_INVERSE_EFFICIENCY, MAX_OVERHEAD_US],
        scale: vec![1.0, 100.0],
    };
    let fit = lsq::least_squares(&problem, &[1.0 / start.memory, start.step_overhead_s * 1e6]);
    (eff(&fit.params), fit)
}

/// Stage 2: `1/η_prefill` from TTFT, the rest fixed; returns the efficiency and the fit.
fn fit_prefill(
    cells: &[CellModel],
    obs: &[Observation],
    after_decode: Efficiency,
    start: Efficiency,
) -> (Efficiency, lsq::Fit) {
    let eff = |x: &[f64]| Efficiency {
        matmul: 1.0 / x[0],
        ..after_decode
    };
    let residuals = |x: &[f64]| ttft_residuals(cells, obs, eff(x));
    let problem = Problem {
        residuals: &residuals,
        lower: vec![1.0],
        upper: vec![MAX_INVERSE_EFFICIENCY],
        scale: vec![1.0],
    };
    let fit = lsq::least_squares(&problem, &[1.0 / start.matmul]);
    (eff(&fit.params), fit)
}

/// The fitted parameters with standard errors (for η = 1/u, `se(η) = se(u)/u²`).
fn fitted(eff: Efficiency, decode: &lsq::Fit, prefill: &lsq::Fit) -> Vec<Fitted> {
    let inverse = |value: f64, se: Option<f64>| se.map(|s| s / (value * value));
    vec![
        Fitted {
            name: "matmul",
            value: eff.matmul,
            std_error: inverse(prefill.params[0], prefill.std_errors[0]),
            at_bound: prefill.at_bound[0],
            source: "TTFT over prompt length (prefill FLOPs)",
        },
        Fitted {
            name: "memory",
            value: eff.memory,
            std_error: inverse(decode.params[0], decode.std_errors[0]),
            at_bound: decode.at_bound[0],
            source: "TPOT over context: slope in bytes read per decode step",
        },
        Fitted {
            name: "step_overhead_s",
            value: eff.step_overhead_s,
            std_error: decode.std_errors[1].map(|s| s * 1e-6),
            at_bound: decode.at_bound[1],
            source: "TPOT over context: intercept",
        },
    ]
}

/// Fits the profile's efficiency factors to the observations (requests that ran alone).
/// `cells[o.cell]` is the deployment (with the starting efficiency) observation `o` ran on.
pub fn calibrate(cells: &[CellModel], obs: &[Observation]) -> Result<Calibration, CalibrateError> {
    check_data(obs)?;
    let start = start_efficiency(cells, obs);
    let tpot_obs: Vec<&Observation> = obs.iter().filter(|o| o.tpot.is_some()).collect();
    let (after_decode, decode) = fit_decode(cells, &tpot_obs, start);
    let (efficiency, prefill) = fit_prefill(cells, obs, after_decode, start);
    let bounds = bound_counts(cells, obs, efficiency);
    if bounds.matmul == 0 {
        return Err(prefill_not_compute_bound(cells, obs, efficiency));
    }
    let fitted = fitted(efficiency, &decode, &prefill);
    let mut warnings = Vec::new();
    warn_about(&fitted, &mut warnings);
    if bounds.attention > 0 {
        warnings.push(format!(
            "{} of {} TPOT requests had compute-bound decode steps in the model; \
             only `memory` and the overhead were fitted from TPOT, so they absorbed that compute time",
            bounds.attention,
            tpot_obs.len()
        ));
    }
    Ok(Calibration {
        efficiency,
        start,
        fitted,
        ttft: Residuals::of(&ttft_residuals(cells, obs, efficiency)),
        tpot: Residuals::of(&tpot_residuals(cells, &tpot_obs, efficiency)),
        matmul_compute_bound: bounds.matmul,
        by_cell: by_cell(cells, obs, efficiency),
        warnings,
    })
}

fn warn_about(fitted: &[Fitted], warnings: &mut Vec<String>) {
    for f in fitted {
        if f.at_bound {
            warnings.push(format!(
                "`{}` ended on its bound ({}): the roofline model cannot match these \
                 latencies; check the model, GPU and dtype",
                f.name, f.value
            ));
        }
        match f.std_error {
            Some(se) if f.value > 0.0 && se / f.value > WARN_RELATIVE_SE => {
                warnings.push(format!(
                    "`{}` is poorly pinned (standard error {:.0} % of its value): widen the \
                     spread of prompt lengths or run more requests",
                    f.name,
                    100.0 * se / f.value
                ));
            }
            None => warnings.push(format!("`{}` has no standard error", f.name)),
            _ => {}
        }
    }
}

struct BoundCounts {
    matmul: usize,
    attention: usize,
}

fn bound_counts(cells: &[CellModel], obs: &[Observation], eff: Efficiency) -> BoundCounts {
    let deps = with_efficiency(cells, eff);
    let mut counts = BoundCounts {
        matmul: 0,
        attention: 0,
    };
    for o in obs {
        let Some(d) = deps[o.cell].as_ref() else {
            continue;
        };
        let budget = cells[o.cell].chunk_budget;
        counts.matmul += usize::from(predict::ttft(d, o.prompt_tokens, budget).compute_bound);
        let decode = o
            .tpot
            .and_then(|_| predict::tpot(d, o.prompt_tokens, o.output_tokens));
        counts.attention += usize::from(decode.is_some_and(|p| p.compute_bound));
    }
    counts
}

/// The refusal when no prompt was long enough for prefill to be compute-bound, with the
/// shortest prompt that would be (at the starting prefill efficiency).
fn prefill_not_compute_bound(
    cells: &[CellModel],
    obs: &[Observation],
    fitted: Efficiency,
) -> CalibrateError {
    let longest = obs.iter().map(|o| o.prompt_tokens).max().unwrap_or(0);
    let d = &cells[obs[0].cell].deployment;
    let probe = d.with_efficiency(fitted).unwrap_or_else(|_| d.clone());
    let mut needed = 16u32;
    while needed < (1 << 24) && !predict::ttft(&probe, needed, u32::MAX).compute_bound {
        needed *= 2;
    }
    CalibrateError::PrefillNotComputeBound { longest, needed }
}

/// Measured and predicted means per cell.
fn by_cell(cells: &[CellModel], obs: &[Observation], eff: Efficiency) -> Vec<CellRow> {
    let deps = with_efficiency(cells, eff);
    let mut rows: BTreeMap<usize, CellRow> = BTreeMap::new();
    for o in obs {
        let Some(d) = deps[o.cell].as_ref() else {
            continue;
        };
        let row = rows.entry(o.cell).or_insert_with(|| CellRow {
            cell: o.cell,
            prompt_min: o.prompt_tokens,
            prompt_max: o.prompt_tokens,
            ..CellRow::default()
        });
        row.prompt_min = row.prompt_min.min(o.prompt_tokens);
        row.prompt_max = row.prompt_max.max(o.prompt_tokens);
        row.requests += 1;
        row.ttft_measured_s += o.ttft.as_secs_f64();
        let budget = cells[o.cell].chunk_budget;
        row.ttft_predicted_s += predict::ttft(d, o.prompt_tokens, budget).seconds;
        if let (Some(t), Some(p)) = (o.tpot, predict::tpot(d, o.prompt_tokens, o.output_tokens)) {
            row.tpot_requests += 1;
            row.tpot_measured_s += t.as_secs_f64();
            row.tpot_predicted_s += p.seconds;
        }
    }
    rows.into_values()
        .map(|mut r| {
            let (n, m) = (r.requests as f64, r.tpot_requests.max(1) as f64);
            r.ttft_measured_s /= n;
            r.ttft_predicted_s /= n;
            r.tpot_measured_s /= m;
            r.tpot_predicted_s /= m;
            r
        })
        .collect()
}
