//! Quality metrics (retrieval accuracy, perplexity) as [`Comparison`]s, so that they go
//! through the same verdict, Holm adjustment and reports as the speed metrics.
//!
//! Both cells scored the same items, so the comparison is paired by item
//! ([`Design::Items`]): the p-value, change and CI come from the [`ItemTest`], while the
//! descriptions (and Welch, Fieller, the rank tests) stay those of the per-repetition values,
//! for reference. Without usable items the comparison stays unpaired on the repetitions and
//! says why, as [`super::compare_paired`] does without common rounds.

use serde::Serialize;

use super::compare::{Comparison, Design, Direction, Scale, compare_on};
use super::nll::{PairedNll, paired_nll};
use super::proportion::{McNemar, PairCounts, mcnemar};
use super::{Interval, StatsError};

/// What a quality comparison pairs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ItemUnit {
    /// Documents of a fixed corpus (perplexity).
    Documents,
    /// Seeded items answered right or wrong (retrieval accuracy).
    Items,
}

impl ItemUnit {
    /// `document` / `documents`, `item` / `items`.
    pub fn noun(self, n: usize) -> &'static str {
        match (self, n == 1) {
            (ItemUnit::Documents, true) => "document",
            (ItemUnit::Documents, false) => "documents",
            (ItemUnit::Items, true) => "item",
            (ItemUnit::Items, false) => "items",
        }
    }
}

/// The test behind a [`Design::Items`] comparison. Serialized with a `"kind"` of
/// `"mcnemar"` or `"nll"` next to the test's fields.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ItemTest {
    /// Accuracy: exact McNemar on the discordant items, Newcombe's CI of the difference.
    #[serde(rename = "mcnemar")]
    McNemar(McNemar),
    /// Perplexity: the per-document paired t on NLL per token.
    Nll(PairedNll),
}

impl ItemTest {
    /// The two-sided p-value.
    pub fn p_value(&self) -> f64 {
        match self {
            ItemTest::McNemar(m) => m.p,
            ItemTest::Nll(n) => n.p_two_sided,
        }
    }

    /// The change with its CI: the accuracy difference (absolute) or the perplexity ratio − 1.
    pub fn change(&self) -> (f64, Interval) {
        match self {
            ItemTest::McNemar(m) => (m.diff, m.diff_ci),
            ItemTest::Nll(n) => (n.change, n.change_ci),
        }
    }

    /// The change is exact (p = 0 by convention): every document moved by the same amount.
    /// Never for McNemar, whose exact p is positive.
    pub fn is_deterministic(&self) -> bool {
        match self {
            ItemTest::McNemar(_) => false,
            ItemTest::Nll(n) => n.is_deterministic(),
        }
    }
}

/// Retrieval accuracy of two cells that answered the same items: descriptions from the
/// per-repetition accuracies, p-value from the exact McNemar test on `counts`, change
/// (candidate − baseline, absolute) and CI from Newcombe's interval; higher is better.
pub fn compare_accuracy(
    baseline_reps: &[f64],
    candidate_reps: &[f64],
    counts: PairCounts,
    alpha: f64,
) -> Result<Comparison, StatsError> {
    let direction = Direction::HigherIsBetter;
    let mut c = compare_on(
        baseline_reps,
        candidate_reps,
        direction,
        alpha,
        Scale::Absolute,
    )?;
    let pairs = counts.items() as usize;
    match mcnemar(counts, alpha) {
        Some(test) => pair_by_item(&mut c, ItemUnit::Items, pairs, ItemTest::McNemar(test)),
        None => c.design = unpaired("no item scored on both sides"),
    }
    Ok(c)
}

/// Perplexity of two cells that scored the same documents: descriptions from the
/// per-repetition perplexities, p-value, change (`ppl_candidate/ppl_baseline − 1`) and CI from
/// the per-document paired t on `docs` (`(nll_baseline, nll_candidate, tokens)` per
/// document, see [`super::paired_nll`]); lower is better.
pub fn compare_perplexity(
    baseline_reps: &[f64],
    candidate_reps: &[f64],
    docs: &[(f64, f64, u64)],
    alpha: f64,
) -> Result<Comparison, StatsError> {
    let direction = Direction::LowerIsBetter;
    let mut c = compare_on(
        baseline_reps,
        candidate_reps,
        direction,
        alpha,
        Scale::Relative,
    )?;
    match paired_nll(docs, alpha) {
        Some(test) => pair_by_item(&mut c, ItemUnit::Documents, docs.len(), ItemTest::Nll(test)),
        None if docs.len() < 2 => {
            let why = format!(
                "only {} documents scored on both sides (2 needed)",
                docs.len()
            );
            c.design = unpaired(&why);
        }
        None => c.design = unpaired("a document has no scored tokens or a non-finite NLL"),
    }
    Ok(c)
}

fn pair_by_item(c: &mut Comparison, unit: ItemUnit, pairs: usize, test: ItemTest) {
    c.design = Design::Items { unit, pairs };
    c.mde = match &test {
        ItemTest::Nll(t) => nll_mde(t, c.alpha),
        ItemTest::McNemar(m) => super::mcnemar_mde(m.counts, c.alpha, super::power::DEFAULT_POWER),
    };
    c.item_test = Some(test);
    c.worse = c.worse_change();
    c.tests_disagree = c.disagree();
}

/// The smallest perplexity change these documents detect with 80 % power at α (two-sided):
/// `exp((t_{1−α/2} + t_{0.8})·se) − 1` on D − 1 degrees of freedom; `None` without spread.
fn nll_mde(t: &super::PairedNll, alpha: f64) -> Option<f64> {
    if t.se.is_nan() || t.se <= 0.0 {
        return None;
    }
    let k = super::dist::t_quantile(1.0 - alpha / 2.0, t.df)?
        + super::dist::t_quantile(super::power::DEFAULT_POWER, t.df)?;
    Some((k * t.se).exp() - 1.0)
}

fn unpaired(reason: &str) -> Design {
    Design::Unpaired {
        reason: reason.into(),
    }
}

#[cfg(test)]
#[path = "quality_tests.rs"]
mod tests;
