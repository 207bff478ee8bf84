//! Statistics over run-level values: pure functions, no I/O.
//!
//! The unit of analysis is the repetition (run): every test and confidence interval here takes
//! one number per run (e.g. one run's mean TTFT), never per-request values, which are correlated
//! inside a run (reference: statistics.md §2.1).
//!
//! What lives here:
//! - [`quantile()`]: Hyndman–Fan type 7 (linear interpolation, NumPy's default), plus the
//!   order-statistic CI of a quantile and the tail-sufficiency rule.
//! - [`describe()`]: n, mean, sd, median, Student-t CI of the mean, CV.
//! - [`welch()`], [`relative_change()`] (Fieller and log-ratio CIs), [`hedges_g()`],
//!   [`mann_whitney()`], [`brunner_munzel()`]: the two-sample toolbox.
//! - [`paired()`] and [`signed_rank()`]: the same comparison paired by round, where both sides
//!   of round r saw the same workload (one-sample t on per-round log ratios).
//! - [`holm()`] and [`benjamini_hochberg()`]: multiplicity adjustment.
//! - [`power`]: MDE, power, and the number of runs needed.
//! - [`mann_kendall()`] (with Sen's slope), [`tukey_fences()`] and [`modified_z()`]: diagnostics.
//! - [`sequential`]: Pocock's nominal level for a few planned looks (PR-mode extra batches).
//! - [`compare()`] / [`compare_paired()`] and [`verdict()`]: the baseline-vs-candidate decision
//!   of statistics.md §2.6.
//! - Quality metrics, whose unit is the item rather than the run (both cells scored the same
//!   items): [`wilson()`], the exact [`mcnemar()`] test with Newcombe's paired interval,
//!   [`paired_nll()`] for perplexity by document, and [`compare_accuracy()`] /
//!   [`compare_perplexity()`], which wrap them in a [`Comparison`] for the same verdict.
//!
//! Values that are undefined for a given input (an sd from one value, a ratio over a zero mean)
//! are `Option`s or enum variants, never NaN or infinity, so callers cannot print `NaN`.

mod compare;
mod describe;
mod dist;
mod effect;
mod multiple;
mod nll;
mod outlier;
mod paired;
pub mod power;
mod proportion;
mod quality;
mod quantile;
mod rank;
pub mod sequential;
mod signed_rank;
mod trend;
mod verdict;
mod welch;

#[cfg(test)]
mod compare_tests;
#[cfg(test)]
mod fixtures;
#[cfg(test)]
mod properties;

pub use compare::{
    Comparison, Design, Direction, INDEPENDENT, Scale, WorseChange, compare, compare_on,
    compare_paired,
};
pub use describe::{DEFAULT_CONFIDENCE, Description, describe, describe_with};
pub use effect::{HedgesG, LogRatio, RelativeChange, hedges_g, relative_change};
pub use multiple::{benjamini_hochberg, holm};
pub use nll::{PairedNll, paired_nll};
pub use outlier::{
    MODIFIED_Z_THRESHOLD, ModifiedZ, OutlierClass, RobustScale, TukeyFences, modified_z,
    tukey_fences,
};
pub use paired::{Paired, paired, paired_mde, paired_power, paired_runs_for_effect};
pub use proportion::{McNemar, PairCounts, mcnemar, mcnemar_items_for, mcnemar_mde, wilson};
pub use quality::{ItemTest, ItemUnit, compare_accuracy, compare_perplexity};
pub use quantile::{
    QuantileRanks, quantile, quantile_by, quantile_ci_ranks, quantile_of, quantile_ranks,
    quantiles_of, tail_is_reliable,
};
pub use rank::{
    BrunnerMunzel, BrunnerMunzelResult, MannWhitney, MwuMethod, brunner_munzel, mann_whitney,
};
pub use signed_rank::{SignedRank, SignedRankMethod, signed_rank};
pub use trend::{MannKendall, mann_kendall};
pub use verdict::{Gate, InvalidReason, MIN_RUNS, Verdict, invalid_reason, verdict};
pub use welch::{Welch, WelchResult, welch};

/// Student-t and normal quantiles, for modules that build their own intervals.
pub(crate) use dist::{t_quantile, z_quantile};

use serde::Serialize;

/// A confidence interval that may be unbounded (e.g. Fieller's when the baseline mean is not
/// distinguishable from zero). Serialized as `{"kind": "bounded", "low": .., "high": ..}` or
/// `{"kind": "unbounded"}`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Interval {
    /// A finite interval with `low <= high`.
    Bounded {
        /// Lower bound.
        low: f64,
        /// Upper bound.
        high: f64,
    },
    /// No finite interval exists at this confidence level.
    Unbounded,
}

impl Interval {
    /// Builds a bounded interval, ordering the two ends.
    pub fn bounded(a: f64, b: f64) -> Self {
        Interval::Bounded {
            low: a.min(b),
            high: a.max(b),
        }
    }

    /// `true` when the interval is bounded and `x` lies strictly outside it.
    pub fn excludes(&self, x: f64) -> bool {
        match *self {
            Interval::Bounded { low, high } => x < low || x > high,
            Interval::Unbounded => false,
        }
    }

    /// The interval mirrored around zero: `[l, h]` becomes `[-h, -l]`.
    pub fn negated(&self) -> Self {
        match *self {
            Interval::Bounded { low, high } => Interval::Bounded {
                low: -high,
                high: -low,
            },
            Interval::Unbounded => Interval::Unbounded,
        }
    }
}

/// Which sample of a two-sample comparison a message refers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Group {
    /// The reference sample (`a` in statistics.md).
    Baseline,
    /// The sample under test (`b` in statistics.md).
    Candidate,
}

impl std::fmt::Display for Group {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Group::Baseline => "baseline",
            Group::Candidate => "candidate",
        })
    }
}

/// Inputs that the statistics refuse up front.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum StatsError {
    /// A group has no values at all.
    #[error("the {group} sample is empty")]
    Empty {
        /// The empty group.
        group: Group,
    },
    /// A value is NaN or infinite (failed requests must not become NaN latencies).
    #[error("the {group} sample has a non-finite value {value} at index {index}")]
    NonFinite {
        /// The group holding the value.
        group: Group,
        /// Position of the value in the input slice.
        index: usize,
        /// The offending value.
        value: f64,
    },
    /// The significance level is not strictly between 0 and 1.
    #[error("significance level alpha = {0} must be strictly between 0 and 1")]
    Alpha(f64),
}
