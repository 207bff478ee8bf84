//! The verdict of statistics.md §2.6 (normative labels). With `D` = relative change, positive =
//! worse, `[L, U]` its Fieller CI at `1 − α`, `τ` the noise threshold and `p` the Holm-adjusted
//! Welch p-value:
//!
//! | Condition | Verdict |
//! |---|---|
//! | n < 5 in a group (item-paired: < 5 items), no ratio, bad parameter | `invalid` |
//! | p < α and L > +τ | `regression` |
//! | p < α and U < −τ | `improvement` |
//! | p < α and \|D\| ≤ τ | `within noise` |
//! | p < α, \|D\| > τ, CI straddles ±τ | `possible regression` / `possible improvement` |
//! | p ≥ α and −τ < L, U < +τ | `no change` |
//! | p ≥ α otherwise | `inconclusive` |
//!
//! An unbounded CI (Fieller's g ≥ 1) straddles every threshold.

use std::fmt;

use serde::Serialize;

use super::compare::{Comparison, Design};
use super::dist::in_open_unit;
use super::quality::ItemUnit;
use super::{Group, Interval};

/// Fewest runs per group for any test-based verdict (statistics.md §2.7).
pub const MIN_RUNS: usize = 5;

/// The verdict of one metric's comparison. `Display` gives the normative label
/// (`within noise`); serde gives snake case (`within_noise`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Significant and the whole CI is beyond +τ in the worse direction.
    Regression,
    /// Significant and the whole CI is beyond −τ in the better direction.
    Improvement,
    /// Significant but `|D| ≤ τ`.
    WithinNoise,
    /// Significant, `D > τ`, but the CI reaches below +τ.
    PossibleRegression,
    /// Significant, `D < −τ`, but the CI reaches above −τ.
    PossibleImprovement,
    /// Not significant and the CI lies strictly inside ±τ.
    NoChange,
    /// Not significant and the CI reaches beyond ±τ.
    Inconclusive,
    /// The data cannot support a verdict (see [`InvalidReason`]).
    Invalid,
}

impl Verdict {
    /// The normative label, e.g. `"possible regression"`.
    pub fn label(self) -> &'static str {
        match self {
            Verdict::Regression => "regression",
            Verdict::Improvement => "improvement",
            Verdict::WithinNoise => "within noise",
            Verdict::PossibleRegression => "possible regression",
            Verdict::PossibleImprovement => "possible improvement",
            Verdict::NoChange => "no change",
            Verdict::Inconclusive => "inconclusive",
            Verdict::Invalid => "invalid",
        }
    }

    /// The CI gate of statistics.md §2.6; `invalid` maps to `invalid_gate` (fail or neutral,
    /// configurable).
    pub fn gate(self, invalid_gate: Gate) -> Gate {
        match self {
            Verdict::Regression => Gate::Fail,
            Verdict::Improvement | Verdict::WithinNoise | Verdict::NoChange => Gate::Pass,
            Verdict::PossibleRegression | Verdict::PossibleImprovement | Verdict::Inconclusive => {
                Gate::Warn
            }
            Verdict::Invalid => invalid_gate,
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// What a verdict means for a pass/fail check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Gate {
    /// Passes.
    Pass,
    /// Passes with a warning (suggest more runs).
    Warn,
    /// Fails.
    Fail,
    /// Counts neither way.
    Neutral,
}

/// Why a comparison got `invalid`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum InvalidReason {
    /// A group has fewer than [`MIN_RUNS`] runs.
    TooFewRuns {
        /// The short group.
        group: Group,
        /// Its number of runs.
        n: usize,
    },
    /// An item-paired comparison ([`Design::Items`]) has fewer than [`MIN_RUNS`] items or
    /// documents: its tests run on items, so the repetitions do not count.
    TooFewItems {
        /// What was paired.
        unit: ItemUnit,
        /// Items (or documents) scored on both sides.
        n: usize,
    },
    /// No relative change exists (baseline mean ≤ 0); compare absolute differences instead.
    NoRatio,
    /// A verdict parameter is out of range (τ must be finite and ≥ 0, α in (0, 1),
    /// the adjusted p in [0, 1]).
    BadParameter {
        /// `"tau"`, `"alpha"` or `"p_adjusted"`.
        name: &'static str,
        /// The rejected value.
        value: f64,
    },
}

impl fmt::Display for InvalidReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InvalidReason::TooFewRuns { group, n } => {
                write!(
                    f,
                    "only {n} {group} runs (at least {MIN_RUNS} needed for tests)"
                )
            }
            InvalidReason::TooFewItems { unit, n } => write!(
                f,
                "only {n} {} scored on both sides (at least {MIN_RUNS} needed for tests)",
                unit.noun(*n)
            ),
            InvalidReason::NoRatio => {
                f.write_str("baseline mean is not positive: no relative change")
            }
            InvalidReason::BadParameter { name, value } => {
                write!(f, "{name} = {value} is out of range")
            }
        }
    }
}

/// Why `verdict` would return `invalid` for these arguments, or `None` when it would not.
pub fn invalid_reason(
    comparison: &Comparison,
    p_adjusted: f64,
    tau: f64,
    alpha: f64,
) -> Option<InvalidReason> {
    let bad = |name, value| Some(InvalidReason::BadParameter { name, value });
    if !(tau >= 0.0 && tau.is_finite()) {
        return bad("tau", tau);
    }
    if !in_open_unit(alpha) {
        return bad("alpha", alpha);
    }
    if !(0.0..=1.0).contains(&p_adjusted) {
        return bad("p_adjusted", p_adjusted);
    }
    if let Design::Items { unit, pairs } = comparison.design {
        if pairs < MIN_RUNS {
            return Some(InvalidReason::TooFewItems { unit, n: pairs });
        }
    } else {
        for (group, n) in [
            (Group::Baseline, comparison.baseline.n),
            (Group::Candidate, comparison.candidate.n),
        ] {
            if n < MIN_RUNS {
                return Some(InvalidReason::TooFewRuns { group, n });
            }
        }
    }
    comparison.worse.is_none().then_some(InvalidReason::NoRatio)
}

/// The verdict for `comparison` given its Holm-adjusted Welch p-value (adjust across the family
/// first, e.g. `holm(&[c1.p_value()?, c2.p_value()?])`), the noise threshold `tau` (a fraction,
/// e.g. 0.03) and `alpha`. Callers force `invalid` for other reasons (error rate over a limit,
/// an overloaded cell) themselves.
pub fn verdict(comparison: &Comparison, p_adjusted: f64, tau: f64, alpha: f64) -> Verdict {
    if invalid_reason(comparison, p_adjusted, tau, alpha).is_some() {
        return Verdict::Invalid;
    }
    let Some(worse) = comparison.worse.as_ref() else {
        return Verdict::Invalid;
    };
    let d = worse.d;
    // Infinite ends only exist inside this function, to compare against ±τ.
    let (low, high) = match worse.ci {
        Interval::Bounded { low, high } => (low, high),
        Interval::Unbounded => (f64::NEG_INFINITY, f64::INFINITY),
    };
    if p_adjusted < alpha {
        if low > tau {
            Verdict::Regression
        } else if high < -tau {
            Verdict::Improvement
        } else if d.abs() <= tau {
            Verdict::WithinNoise
        } else if d > tau {
            Verdict::PossibleRegression
        } else {
            Verdict::PossibleImprovement
        }
    } else if -tau < low && high < tau {
        Verdict::NoChange
    } else {
        Verdict::Inconclusive
    }
}

#[cfg(test)]
#[path = "verdict_tests.rs"]
mod tests;
