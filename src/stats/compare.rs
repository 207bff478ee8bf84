//! Baseline vs candidate on run-level values (statistics.md §2.4): every raw number behind a
//! verdict — descriptions, Welch, the relative change with Fieller's CI (also as "D, positive =
//! worse"), Hedges' g, Mann–Whitney, Brunner–Munzel and the observed MDE. [`super::verdict()`]
//! turns a [`Comparison`] plus the Holm-adjusted p into a label.
//!
//! Two designs: independent samples ([`compare_on`], Welch and Fieller) and, where round r of
//! both sides saw the same workload, pairs by round ([`compare_paired`], a one-sample t on the
//! per-round log ratios or differences, [`super::paired()`]). A paired comparison keeps the
//! unpaired numbers for reference, but its p-value, change, CI and MDE are the paired ones.
//! Quality metrics pair by item instead ([`super::compare_accuracy`],
//! [`super::compare_perplexity`]): the same items or documents were scored on both sides, and
//! the p-value, change and CI come from the [`ItemTest`] on them.

use serde::Serialize;

use super::describe::{Description, describe_with};
use super::dist::in_open_unit;
use super::effect::{HedgesG, RelativeChange, hedges_g, relative_change};
use super::paired::{Paired, paired, paired_mde};
use super::power::{DEFAULT_POWER, observed_mde};
use super::quality::{ItemTest, ItemUnit};
use super::rank::{BrunnerMunzel, MannWhitney, brunner_munzel, mann_whitney};
use super::signed_rank::{SignedRank, signed_rank};
use super::verdict::MIN_RUNS;
use super::welch::{WelchResult, welch};
use super::{Group, Interval, StatsError};

/// Which way a metric improves. (The metrics module has its own enum; the caller maps it.)
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Larger is better (throughput, goodput).
    HigherIsBetter,
    /// Smaller is better (latencies, error rates).
    LowerIsBetter,
}

/// On which scale a change is measured and judged against τ (statistics.md §2.6, §3.14).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Scale {
    /// `Δ = b̄/ā − 1` with Fieller's CI; τ is a fraction of the baseline. For positive
    /// quantities (latencies, throughputs).
    Relative,
    /// `b̄ − ā` with Welch's CI, in the metric's own unit; τ in that unit. For metrics that
    /// can be 0 (an error rate, an SLO attainment of 100 %), whose ratio to a baseline of 0
    /// does not exist.
    Absolute,
}

/// The change re-expressed so that positive means worse (statistics.md §2.6), on the
/// comparison's [`Scale`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WorseChange {
    /// `D`: the change (`Δ`, or `b̄ − ā`) for lower-is-better metrics, its negative for
    /// higher-is-better ones.
    pub d: f64,
    /// CI of `D` at confidence `1 − α` (Fieller's, or Welch's for [`Scale::Absolute`]).
    pub ci: Interval,
}

/// Which analysis a comparison's p-value, change, CI and MDE come from (statistics.md §2.4).
/// Serialized as `{"kind": "paired", "pairs": 10}`, `{"kind": "items", "unit": "documents",
/// "pairs": 50}` or `{"kind": "unpaired", "reason": ".."}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Design {
    /// Rounds present on both sides, compared pair by pair (item 6).
    Paired {
        /// Rounds present on both sides.
        pairs: usize,
    },
    /// Quality metrics: the same items (or documents) scored on both sides, compared item by
    /// item ([`Comparison::item_test`]); the repetitions are described but not tested.
    Items {
        /// What was paired.
        unit: ItemUnit,
        /// Items (or documents) scored on both sides.
        pairs: usize,
    },
    /// Two independent samples: Welch and Fieller (items 1–5).
    Unpaired {
        /// Why the runs were not paired.
        reason: String,
    },
}

impl Design {
    /// Short name for tables: `paired (10)`, `paired by document (50)` or `unpaired`.
    pub fn label(&self) -> String {
        match self {
            Design::Paired { pairs } => format!("paired ({pairs})"),
            Design::Items { unit, pairs } => format!("paired by {} ({pairs})", unit.noun(1)),
            Design::Unpaired { .. } => "unpaired".into(),
        }
    }
}

/// All raw numbers of one baseline-vs-candidate comparison of one metric.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Comparison {
    /// Which way the metric improves.
    pub direction: Direction,
    /// Significance level; CIs here have confidence `1 − α`.
    pub alpha: f64,
    /// The scale `worse` (and so the verdict) is on.
    pub scale: Scale,
    /// Baseline description (CI at `1 − α`).
    pub baseline: Description,
    /// Candidate description (CI at `1 − α`).
    pub candidate: Description,
    /// Paired by round, or independent samples (and why).
    pub design: Design,
    /// The paired t on per-round differences; `None` for [`Design::Unpaired`], or with fewer
    /// than 2 pairs (or, relative, a value ≤ 0 without a log ratio).
    pub paired: Option<Paired>,
    /// Wilcoxon's signed-rank test on the same differences (paired design only).
    pub signed_rank: Option<SignedRank>,
    /// The item-paired test of a quality metric ([`Design::Items`] only): exact McNemar with
    /// Newcombe's CI, or the per-document perplexity t.
    pub item_test: Option<ItemTest>,
    /// Welch's test; `None` when a group has fewer than 2 runs.
    pub welch: Option<WelchResult>,
    /// `Δ = b̄/ā − 1` with Fieller and log-ratio CIs; `None` without a ratio (fewer than 2 runs,
    /// or baseline mean ≤ 0: use `welch`'s absolute difference instead).
    pub relative: Option<RelativeChange>,
    /// `D` (positive = worse) and its CI on `scale`: present exactly when `relative` is
    /// ([`Scale::Relative`]) or when `welch` is ([`Scale::Absolute`]).
    pub worse: Option<WorseChange>,
    /// Hedges' g (candidate − baseline); `None` with fewer than 2 runs or no spread at all.
    pub hedges: Option<HedgesG>,
    /// Mann–Whitney U with A₁₂ = P(cand > base) + ½P(=).
    pub mann_whitney: Option<MannWhitney>,
    /// Brunner–Munzel; `None` with fewer than 2 runs in a group.
    pub brunner_munzel: Option<BrunnerMunzel>,
    /// Observed MDE at 80 % power on the comparison's scale: relative (statistics.md §3.12),
    /// or for [`Design::Items`] the perplexity change the documents detect or the accuracy
    /// difference (absolute) the items detect (Connor's McNemar power); `None` without a
    /// ratio and on [`Scale::Absolute`] otherwise.
    pub mde: Option<f64>,
    /// The primary test and its rank test (Welch and Brunner–Munzel, or exact MWU under
    /// complete separation; paired: the paired t and Wilcoxon's signed rank) reach different
    /// significance decisions at `α`: the difference is shape- or outlier-driven.
    pub tests_disagree: bool,
}

impl Comparison {
    /// The primary two-sided p-value (the paired t's, the item test's, or Welch's) to adjust
    /// with [`super::holm()`] across the family; `None` when a group has fewer than 2 runs
    /// (paired: fewer than 2 pairs).
    pub fn p_value(&self) -> Option<f64> {
        match self.design {
            Design::Paired { .. } => self.paired.as_ref().map(|p| p.p_two_sided),
            Design::Items { .. } => self.item_test.as_ref().map(ItemTest::p_value),
            Design::Unpaired { .. } => self.welch.as_ref().map(WelchResult::p_value),
        }
    }

    /// The robustness p-value: Wilcoxon's signed rank (paired), Brunner–Munzel's, or the
    /// Mann–Whitney p under complete separation; `None` for [`Design::Items`] (McNemar is
    /// exact, and the per-document t has no rank counterpart here).
    pub fn robust_p_value(&self) -> Option<f64> {
        match self.design {
            Design::Paired { .. } => return self.signed_rank.as_ref().map(|w| w.p),
            Design::Items { .. } => return None,
            Design::Unpaired { .. } => {}
        }
        let bm = self.brunner_munzel.as_ref()?;
        bm.p_value()
            .or_else(|| self.mann_whitney.as_ref().map(|m| m.p))
    }

    /// Both groups are constant with different means: the difference is deterministic
    /// (p = 0 by convention), which reports should flag.
    pub fn is_deterministic(&self) -> bool {
        match self.design {
            Design::Paired { .. } => self.paired.as_ref().is_some_and(Paired::is_deterministic),
            Design::Items { .. } => self
                .item_test
                .as_ref()
                .is_some_and(ItemTest::is_deterministic),
            Design::Unpaired { .. } => {
                matches!(self.welch, Some(WelchResult::ZeroVariance { diff }) if diff != 0.0)
            }
        }
    }

    /// The change on [`Comparison::scale`] with its CI at `1 − α` (not sign-flipped): the
    /// paired `exp(d̄) − 1` or `d̄`, the item test's (accuracy difference with Newcombe's CI,
    /// perplexity ratio − 1), Fieller's relative change, or Welch's difference of means.
    pub fn change(&self) -> Option<(f64, Interval)> {
        match self.design {
            Design::Paired { .. } => return self.paired.as_ref().map(|p| (p.change, p.change_ci)),
            Design::Items { .. } => return self.item_test.as_ref().map(ItemTest::change),
            Design::Unpaired { .. } => {}
        }
        match self.scale {
            Scale::Relative => self.relative.as_ref().map(|r| (r.change, r.fieller)),
            Scale::Absolute => self.welch.as_ref().map(|w| match w {
                WelchResult::Test(t) => (t.diff, t.diff_ci),
                WelchResult::ZeroVariance { diff } => (*diff, Interval::bounded(*diff, *diff)),
            }),
        }
    }

    /// `D` (positive = worse) from [`Comparison::change`].
    pub(super) fn worse_change(&self) -> Option<WorseChange> {
        self.change().map(|(d, ci)| match self.direction {
            Direction::LowerIsBetter => WorseChange { d, ci },
            Direction::HigherIsBetter => WorseChange {
                d: -d,
                ci: ci.negated(),
            },
        })
    }

    /// The primary test and its rank check, as named in a disagreement warning.
    pub fn tests_name(&self) -> &'static str {
        match self.design {
            Design::Paired { .. } => "the paired t-test and Wilcoxon's signed rank",
            Design::Items { .. } => match self.item_test {
                Some(ItemTest::Nll(_)) => "the per-document paired t",
                _ => "exact McNemar",
            },
            Design::Unpaired { .. } => "Welch and Brunner–Munzel",
        }
    }

    pub(super) fn disagree(&self) -> bool {
        match (self.p_value(), self.robust_p_value()) {
            (Some(p), Some(r)) => (p < self.alpha) != (r < self.alpha),
            _ => false,
        }
    }
}

/// The reason an unpaired comparison states when its caller gave none.
pub const INDEPENDENT: &str = "independent samples";

/// [`compare_on`] on the relative scale: the comparison of positive quantities.
pub fn compare(
    baseline: &[f64],
    candidate: &[f64],
    direction: Direction,
    alpha: f64,
) -> Result<Comparison, StatsError> {
    compare_on(baseline, candidate, direction, alpha, Scale::Relative)
}

/// Every raw number behind a verdict on baseline vs candidate run-level values, with the
/// change judged on `scale`.
pub fn compare_on(
    baseline: &[f64],
    candidate: &[f64],
    direction: Direction,
    alpha: f64,
    scale: Scale,
) -> Result<Comparison, StatsError> {
    if !in_open_unit(alpha) {
        return Err(StatsError::Alpha(alpha));
    }
    let baseline_desc = describe_group(baseline, Group::Baseline, 1.0 - alpha)?;
    let candidate_desc = describe_group(candidate, Group::Candidate, 1.0 - alpha)?;
    let relative = relative_change(baseline, candidate, alpha);
    let mde = match scale {
        Scale::Relative => observed_mde(baseline, candidate, alpha, DEFAULT_POWER),
        Scale::Absolute => None,
    };
    let mut comparison = Comparison {
        direction,
        alpha,
        scale,
        baseline: baseline_desc,
        candidate: candidate_desc,
        design: Design::Unpaired {
            reason: INDEPENDENT.into(),
        },
        paired: None,
        signed_rank: None,
        item_test: None,
        welch: welch(baseline, candidate, alpha),
        relative,
        worse: None,
        hedges: hedges_g(baseline, candidate),
        mann_whitney: mann_whitney(baseline, candidate),
        brunner_munzel: brunner_munzel(baseline, candidate),
        mde,
        tests_disagree: false,
    };
    comparison.worse = comparison.worse_change();
    comparison.tests_disagree = comparison.disagree();
    Ok(comparison)
}

/// [`compare_on`] paired by round: `baseline` and `candidate` are `(round, value)` lists, and
/// the rounds present on both sides form the pairs (statistics.md §2.4 item 6); with fewer
/// than [`MIN_RUNS`] of them (or a value ≤ 0 on the relative scale) it stays unpaired and
/// says why in [`Comparison::design`]. Descriptions,
/// Welch, Fieller, Hedges' g and the rank tests stay those of all values of each side, for
/// reference; the p-value, change, CI, verdict inputs and MDE are the paired t's, and the
/// robustness check is Wilcoxon's signed rank on the same differences.
pub fn compare_paired(
    baseline: &[(u32, f64)],
    candidate: &[(u32, f64)],
    direction: Direction,
    alpha: f64,
    scale: Scale,
) -> Result<Comparison, StatsError> {
    let values = |side: &[(u32, f64)]| side.iter().map(|(_, v)| *v).collect::<Vec<_>>();
    let mut comparison = compare_on(
        &values(baseline),
        &values(candidate),
        direction,
        alpha,
        scale,
    )?;
    let (a, b): (Vec<f64>, Vec<f64>) = baseline
        .iter()
        .filter_map(|(round, a)| {
            let b = candidate.iter().find(|(r, _)| r == round)?;
            Some((*a, b.1))
        })
        .unzip();
    if a.len() < MIN_RUNS {
        comparison.design = Design::Unpaired {
            reason: format!(
                "only {} rounds present on both sides ({MIN_RUNS} needed to pair)",
                a.len()
            ),
        };
        return Ok(comparison);
    }
    let test = paired(&a, &b, alpha, scale);
    if test.is_none() {
        comparison.design = Design::Unpaired {
            reason: "a value ≤ 0 has no log ratio".into(),
        };
        return Ok(comparison);
    }
    comparison.design = Design::Paired { pairs: a.len() };
    comparison.mde = test
        .as_ref()
        .and_then(|t| paired_mde(t, alpha, DEFAULT_POWER));
    comparison.signed_rank = super::paired::differences(&a, &b, scale)
        .filter(|d| d.len() >= 2)
        .and_then(|d| signed_rank(&d));
    comparison.paired = test;
    comparison.worse = comparison.worse_change();
    comparison.tests_disagree = comparison.disagree();
    Ok(comparison)
}

fn describe_group(
    values: &[f64],
    group: Group,
    confidence: f64,
) -> Result<Description, StatsError> {
    if let Some((index, &value)) = values.iter().enumerate().find(|(_, v)| !v.is_finite()) {
        return Err(StatsError::NonFinite {
            group,
            index,
            value,
        });
    }
    describe_with(values, confidence).ok_or(StatsError::Empty { group })
}
