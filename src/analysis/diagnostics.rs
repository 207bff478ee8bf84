//! Diagnostics of the repetitions themselves (statistics.md §2.7): outlier repetitions (Tukey
//! fences and the modified z-score; reported, never dropped), a slow first repetition
//! (hyperfine's `SlowInitialRun`: increase warm-up), and comparisons too weak to resolve their
//! noise threshold (MDE > τ, with the repetitions per side that would).

use super::{CellAnalysis, CellResults, ComparisonRow};
use crate::metrics::{Better, MetricKey};
use crate::scenario::model::Scenario;
use crate::stats::{self, MODIFIED_Z_THRESHOLD, OutlierClass, Verdict, power};
use crate::units;

/// Fewest repetitions for which outlier and first-run diagnostics mean anything.
const MIN_REPS: usize = 5;

/// `(round, value)` of a metric over a cell's repetitions, in execution order.
pub(super) fn in_run_order(cell: &CellResults, metric: MetricKey) -> Vec<(u32, f64)> {
    let mut ordered: Vec<(usize, u32, f64)> = cell
        .reps
        .iter()
        .filter_map(|r| Some((r.order, r.round, *r.summary.values.get(&metric)?)))
        .collect();
    ordered.sort_by_key(|(o, _, _)| *o);
    ordered.into_iter().map(|(_, r, v)| (r, v)).collect()
}

/// The modified z-score of the cell's first repetition (in execution order), signed so that
/// positive means worse, when it exceeds the threshold.
fn slow_first(values: &[f64], better: Better) -> Option<f64> {
    if values.len() < MIN_REPS {
        return None;
    }
    let score = stats::modified_z(values)?.scores[0];
    let worse = match better {
        Better::Lower => score,
        Better::Higher => -score,
    };
    (worse > MODIFIED_Z_THRESHOLD).then_some(worse)
}

/// Outlier repetitions of one metric: Tukey-severe or |modified z| > 3.5, as
/// `(round, value, description)`; `skip_first` leaves out the first repetition (already
/// reported as a slow first repetition).
fn outliers(series: &[(u32, f64)], skip_first: bool) -> Vec<(u32, f64, &'static str)> {
    let values: Vec<f64> = series.iter().map(|(_, v)| *v).collect();
    if values.len() < MIN_REPS {
        return Vec::new();
    }
    let (Some(fences), Some(mz)) = (stats::tukey_fences(&values), stats::modified_z(&values))
    else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (i, &(round, v)) in series.iter().enumerate() {
        if skip_first && i == 0 {
            continue;
        }
        let high = v > mz.median;
        let what = match (
            fences.classify(v),
            mz.scores[i].abs() > MODIFIED_Z_THRESHOLD,
        ) {
            (OutlierClass::HighSevere | OutlierClass::LowSevere, _) if high => "severe high",
            (OutlierClass::HighSevere | OutlierClass::LowSevere, _) => "severe low",
            (_, true) if high => "high, modified z > 3.5",
            (_, true) => "low, modified z > 3.5",
            _ => continue,
        };
        out.push((round, v, what));
    }
    out
}

/// Per-cell messages about outlier repetitions and a slow first repetition, as
/// `(cell label, message)` pairs for grouping.
pub(super) fn repetitions(
    scenario: &Scenario,
    cell: &CellResults,
    desc: &CellAnalysis,
    out: &mut Vec<(String, String)>,
) {
    let (mut slow, mut found) = (Vec::new(), Vec::new());
    for &metric in &scenario.analysis.primary {
        let series = in_run_order(cell, metric);
        let values: Vec<f64> = series.iter().map(|(_, v)| *v).collect();
        let first = slow_first(&values, metric.better());
        if let Some(z) = first {
            slow.push(format!("{metric} M = {z:.1}"));
        }
        for (round, v, what) in outliers(&series, first.is_some()) {
            found.push(format!(
                "{metric} round {round} ({}, {what})",
                units::metric_value(metric, v)
            ));
        }
    }
    if !slow.is_empty() {
        out.push((
            desc.label.clone(),
            format!(
                "the first repetition is slower than the rest ({}): increase warm-up",
                slow.join(", ")
            ),
        ));
    }
    if !found.is_empty() {
        out.push((
            desc.label.clone(),
            format!(
                "outlier repetitions, kept in every statistic: {}",
                found.join("; ")
            ),
        ));
    }
}

/// One line per primary metric whose comparisons cannot resolve τ (MDE at 80 % power > τ),
/// with the repetitions per side that would (exact noncentral t at the pooled CV).
pub(super) fn underpowered(scenario: &Scenario, comparisons: &[ComparisonRow]) -> Vec<String> {
    let alpha = scenario.analysis.alpha;
    let mut out = Vec::new();
    for metric in &scenario.analysis.primary {
        let rows: Vec<&ComparisonRow> = comparisons
            .iter()
            .filter(|c| &c.metric == metric && c.verdict != Verdict::Invalid)
            .collect();
        let weak: Vec<(&ComparisonRow, f64)> = rows
            .iter()
            .filter_map(|c| Some((*c, c.comparison.mde?)))
            .filter(|(c, mde)| *mde > c.tau)
            .collect();
        let Some(worst) = weak.iter().map(|(_, m)| *m).reduce(f64::max) else {
            continue;
        };
        let tau = weak[0].0.tau;
        // Per unit: item-paired comparisons need items (or documents), the others
        // repetitions; a unit any of whose comparisons is out of reach is out of reach.
        let mut by_unit: Vec<(Option<stats::ItemUnit>, Option<usize>)> = Vec::new();
        for (c, _) in &weak {
            let unit = match c.comparison.design {
                stats::Design::Items { unit, .. } => Some(unit),
                _ => None,
            };
            let n = runs_needed(c, alpha);
            match by_unit.iter_mut().find(|(u, _)| *u == unit) {
                Some((_, most)) => *most = most.zip(n).map(|(a, b)| a.max(b)),
                None => by_unit.push((unit, n)),
            }
        }
        let needed = (by_unit.iter())
            .map(|(unit, n)| match (n, unit) {
                (Some(n), None) => format!("needs ≈ {n} repetitions per side to resolve τ"),
                (Some(n), Some(unit)) => format!(
                    "needs ≈ {n} {} scored on both sides to resolve τ (more rounds or more per round)",
                    unit.noun(*n)
                ),
                (None, None) => "τ is out of reach of any practical number of repetitions".into(),
                (None, Some(unit)) => format!(
                    "τ is out of reach of any practical number of {}",
                    unit.noun(2)
                ),
            })
            .collect::<Vec<_>>()
            .join("; ");
        out.push(format!(
            "{metric}: {} of {} comparisons are underpowered (MDE up to {} > τ {}): {needed}",
            weak.len(),
            rows.len(),
            units::threshold(*metric, worst),
            units::threshold(*metric, tau)
        ));
    }
    out
}

/// Repetitions per side for 80 % power to detect τ: paired, at the sd of the per-round log
/// ratios; unpaired, at the comparison's pooled CV.
/// Quality comparisons paired by item ask for items instead: McNemar's for accuracy (Connor),
/// and for perplexity the documents a paired z at the documents' spread of NLL differences
/// needs to detect τ.
fn runs_needed(c: &ComparisonRow, alpha: f64) -> Option<usize> {
    match &c.comparison.item_test {
        Some(stats::ItemTest::McNemar(m)) => {
            let n = stats::mcnemar_items_for(m.counts, c.tau, alpha, power::DEFAULT_POWER)?;
            return usize::try_from(n).ok();
        }
        Some(stats::ItemTest::Nll(t)) => {
            // se = sd/√D, so sd = se·√D; D = ((z_a + z_b)·sd / ln(1 + τ))².
            let sd = t.se * (t.documents as f64).sqrt();
            let two_groups =
                power::runs_for_effect_normal(c.tau.ln_1p(), sd, alpha, power::DEFAULT_POWER)?;
            let d = (two_groups / 2.0).ceil();
            return (d.is_finite() && d >= 1.0).then_some(d as usize);
        }
        None => {}
    }
    if let Some(p) = &c.comparison.paired {
        let delta = c.tau.ln_1p();
        return stats::paired_runs_for_effect(delta, p.sd, alpha, power::DEFAULT_POWER);
    }
    let (a, b) = (&c.comparison.baseline, &c.comparison.candidate);
    let (sa, sb) = (a.std?, b.std?);
    if a.mean <= 0.0 {
        return None;
    }
    let cv = ((sa * sa + sb * sb) / 2.0).sqrt() / a.mean;
    power::runs_for_effect(c.tau, cv, alpha, power::DEFAULT_POWER)
}

#[cfg(test)]
mod tests {
    use super::*;

    const STEADY: [f64; 10] = [
        100.0, 101.0, 99.0, 100.5, 99.5, 100.2, 99.8, 100.1, 99.9, 100.3,
    ];

    #[test]
    fn a_slow_first_repetition_is_flagged_in_the_worse_direction_only() {
        let mut v = STEADY;
        v[0] = 130.0;
        // Latency: higher is worse, so 130 first is a slow start.
        assert!(slow_first(&v, Better::Lower).is_some_and(|z| z > 3.5));
        // Throughput: higher is better, so a high first value is not a slow start.
        assert_eq!(slow_first(&v, Better::Higher), None);
        v[0] = 70.0;
        assert!(slow_first(&v, Better::Higher).is_some());
        assert_eq!(slow_first(&STEADY, Better::Lower), None);
        assert_eq!(slow_first(&v[..4], Better::Higher), None);
    }

    #[test]
    fn severe_and_modified_z_outliers_are_listed_with_their_rounds() {
        // statistics.md §3.10, dataset C (E2 baseline with 201.7 → 251.7): a severe high
        // outlier with M = 9.48.
        let c = [
            182.4, 175.9, 190.3, 178.8, 185.1, 251.7, 179.5, 183.2, 188.6, 176.4,
        ];
        let series: Vec<(u32, f64)> = c.iter().enumerate().map(|(i, v)| (i as u32, *v)).collect();
        assert_eq!(outliers(&series, false), vec![(5, 251.7, "severe high")]);
        // The §3.10 baseline with 201.7: a mild Tukey outlier with M = 2.6 is not reported.
        let mut mild = series.clone();
        mild[5].1 = 201.7;
        assert!(outliers(&mild, false).is_empty());
        // A slow first repetition is reported once, not again as an outlier.
        let mut first = series;
        first.swap(0, 5);
        assert_eq!(outliers(&first, true), vec![]);
        assert_eq!(outliers(&first, false).len(), 1);
    }
}
