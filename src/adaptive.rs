//! Adaptive repetitions (statistics.md §2.8): after each batch of whole rounds, look at the
//! relative 95 % CI half-width `t_{0.975,n−1}·s/(√n·|ȳ|)` of every primary metric in every
//! cell; stop when all are within target ("precision reached") or when the cap is reached;
//! otherwise add `clamp(n_pred − n, 1, 5)` rounds, where `n_pred` is the smallest n whose
//! half-width at the observed CV would meet the target. The decision never looks at a
//! comparison or a p-value, so it cannot inflate false positives.
//!
//! Pure: the finished repetitions in, a decision out. `app` runs the rounds and records
//! every look in the manifest, so a resumed run reaches the same decision.

use crate::analysis::{CellResults, rep_values};
use crate::metrics::MetricKey;
use crate::scenario::model::Adaptive;
use crate::stats::{self, power};
use crate::store::{HalfWidth, Look, Stop, StopReason};

/// Most rounds added after one look (statistics.md §2.8, `batch_max`).
pub const BATCH_MAX: u32 = 5;

/// What to do after a look.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// Run this many more whole rounds, then look again.
    Continue(u32),
    /// Stop adding rounds.
    Stop(Stop),
}

/// The half-width of every primary metric measured in every cell, after `rounds` rounds.
pub fn half_widths(
    adaptive: &Adaptive,
    primary: &[MetricKey],
    cells: &[CellResults],
) -> Vec<Width> {
    let mut out = Vec::new();
    for cell in cells {
        for &metric in primary {
            let values = rep_values(cell, metric);
            let Some(d) = stats::describe(&values) else {
                continue;
            };
            // A metric constant across repetitions is as precise as it gets, even at mean 0.
            let relative = match (d.relative_half_width, d.std) {
                (Some(h), _) => Some(h),
                (None, Some(0.0)) => Some(0.0),
                _ => None,
            };
            out.push(Width {
                half: HalfWidth {
                    cell: cell.id.clone(),
                    metric: metric.to_string(),
                    half_width: relative,
                    target: adaptive.target_for(metric),
                },
                cv: d.cv,
                n: d.n,
            });
        }
    }
    out
}

/// One (cell, metric) at a look: its half-width, and what predicts the rounds it needs.
#[derive(Debug, Clone, PartialEq)]
pub struct Width {
    /// The half-width and its target.
    pub half: HalfWidth,
    /// Run-to-run CV, when defined.
    pub cv: Option<f64>,
    /// Repetitions it was computed from.
    pub n: usize,
}

impl Width {
    /// Within target.
    pub fn met(&self) -> bool {
        self.half.half_width.is_some_and(|h| h <= self.half.target)
    }

    /// How far above target, as a ratio (infinite when undefined).
    fn excess(&self) -> f64 {
        self.half
            .half_width
            .map_or(f64::INFINITY, |h| h / self.half.target)
    }

    /// Rounds this (cell, metric) needs at its observed CV (§3.12); `None` when unknown.
    fn predicted_rounds(&self) -> Option<u32> {
        let n = power::runs_for_half_width(self.cv?, self.half.target, 0.95)?;
        u32::try_from(n).ok()
    }
}

/// Looks at the precision after `rounds` complete rounds (`min ≤ rounds ≤ max`) and decides.
pub fn look(
    adaptive: &Adaptive,
    primary: &[MetricKey],
    cells: &[CellResults],
    rounds: u32,
) -> (Look, Decision) {
    let mut widths = half_widths(adaptive, primary, cells);
    widths.sort_by(|a, b| b.excess().total_cmp(&a.excess()));
    let worst = widths.first().map(|w| w.half.clone());
    let missed: Vec<&Width> = widths.iter().filter(|w| !w.met()).collect();
    let max = adaptive.max.get();
    let decision = if missed.is_empty() {
        Decision::Stop(Stop {
            reason: StopReason::Precision,
            rounds,
            above_target: Vec::new(),
        })
    } else if rounds >= max {
        Decision::Stop(Stop {
            reason: StopReason::Cap,
            rounds,
            above_target: missed.iter().map(|w| w.half.clone()).collect(),
        })
    } else {
        let needed = missed
            .iter()
            .map(|w| w.predicted_rounds().unwrap_or(max))
            .max()
            .unwrap_or(max);
        let add = needed.saturating_sub(rounds).clamp(1, BATCH_MAX);
        Decision::Continue(add.min(max - rounds))
    };
    let added = match &decision {
        Decision::Continue(k) => *k,
        Decision::Stop(_) => 0,
    };
    let look = Look {
        rounds,
        worst,
        added,
    };
    (look, decision)
}

/// The sentence a report gives for why the run stopped.
pub fn stop_text(stop: &Stop, min: u32) -> String {
    match stop.reason {
        StopReason::Precision if stop.rounds == min => format!(
            "precision reached after the minimum of {} rounds",
            stop.rounds
        ),
        StopReason::Precision => format!("precision reached after {} rounds", stop.rounds),
        StopReason::Cap => {
            let shown: Vec<String> = stop.above_target.iter().take(3).map(width_text).collect();
            let more = stop.above_target.len().saturating_sub(shown.len());
            let more = if more > 0 {
                format!(" and {more} more")
            } else {
                String::new()
            };
            format!(
                "cap of {} rounds reached; achieved half-widths above target: {}{more}",
                stop.rounds,
                shown.join(", ")
            )
        }
    }
}

/// `ttft.p99 ±3.1 % (target 2 %) in request_rate-10`.
pub fn width_text(w: &HalfWidth) -> String {
    let h = w.half_width.map_or("undefined".into(), |h| {
        format!("±{}", crate::units::percent(h))
    });
    format!(
        "{} {h} (target {}) in {}",
        w.metric,
        crate::units::percent(w.target),
        w.cell
    )
}

#[cfg(test)]
mod tests;
