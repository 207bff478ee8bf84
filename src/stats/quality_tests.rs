//! Quality metrics through [`super::compare_accuracy`], [`super::compare_perplexity`] and the
//! verdict, like a speed metric.

use super::*;
use crate::stats::fixtures::close;
use crate::stats::{InvalidReason, Verdict, holm, invalid_reason, verdict};

/// Five repetitions around `mean`.
fn reps(mean: f64) -> [f64; 5] {
    [mean, mean - 0.01, mean + 0.01, mean, mean]
}

/// 500 items: baseline right on 400 (0.8), candidate on 300 (0.6), 280 of them both.
const WORSE: PairCounts = PairCounts {
    both: 280,
    only_baseline: 120,
    only_candidate: 20,
    neither: 80,
};

/// Python (the script in `proportion_tests.rs`): `newcombe(280, 20, 120, 80)` =
/// −0.2 [−0.2426363, −0.1564932], `mcnemar_p(120, 20)` = 1.418834e-18.
#[test]
fn accuracy_from_0_8_to_0_6_is_a_regression() {
    let c = compare_accuracy(&reps(0.8), &reps(0.6), WORSE, 0.05).unwrap();
    assert_eq!(
        c.design,
        Design::Items {
            unit: ItemUnit::Items,
            pairs: 500
        }
    );
    assert_eq!(c.design.label(), "paired by item (500)");
    assert_eq!(
        (c.scale, c.direction),
        (Scale::Absolute, Direction::HigherIsBetter)
    );
    let p = c.p_value().unwrap();
    assert!((p / 1.418834e-18 - 1.0).abs() < 1e-6, "{p}");
    let (change, ci) = c.change().unwrap();
    close(change, -0.2);
    let Interval::Bounded { low, high } = ci else {
        panic!("unbounded")
    };
    close(low, -0.2426363);
    close(high, -0.1564932);
    // Higher is better: a drop is D > 0.
    let worse = c.worse.as_ref().unwrap();
    close(worse.d, 0.2);
    assert_eq!(c.robust_p_value(), None);
    assert!(!c.tests_disagree && !c.is_deterministic());
    assert_eq!(c.tests_name(), "exact McNemar");
    // Connor (1987) at the observed discordance 140/500 (script in proportion_tests.rs).
    close(c.mde.unwrap(), 0.06614141);
    let adjusted = holm(&[p]);
    assert_eq!(verdict(&c, adjusted[0], 0.02, 0.05), Verdict::Regression);
}

#[test]
fn identical_answers_are_no_change() {
    let same = PairCounts {
        both: 400,
        only_baseline: 0,
        only_candidate: 0,
        neither: 100,
    };
    let c = compare_accuracy(&reps(0.8), &reps(0.8), same, 0.05).unwrap();
    assert_eq!(c.p_value(), Some(1.0));
    assert_eq!(verdict(&c, 1.0, 0.02, 0.05), Verdict::NoChange);
}

/// 50 documents of 100–160 tokens, the candidate ln 1.05 + 0.002·cos(d) nats per token
/// worse on document d: perplexity +5.0018 % with a CI about ±0.04 pp wide (Python, the
/// formula in `nll.rs`: Δ = 0.0488075, se = 0.000206).
fn five_percent_worse() -> Vec<(f64, f64, u64)> {
    (0..50u32)
        .map(|d| {
            let n = 100 + 10 * u64::from(d % 7);
            let x = f64::from(d);
            let base = n as f64 * (2.0 + 0.1 * x.sin());
            let cand = base + n as f64 * (1.05_f64.ln() + 0.002 * x.cos());
            (base, cand, n)
        })
        .collect()
}

#[test]
fn perplexity_five_percent_up_is_a_regression() {
    let docs = five_percent_worse();
    let c = compare_perplexity(&[7.39], &[7.76], &docs, 0.05).unwrap();
    assert_eq!(c.design.label(), "paired by document (50)");
    assert_eq!(
        (c.scale, c.direction),
        (Scale::Relative, Direction::LowerIsBetter)
    );
    let (change, _) = c.change().unwrap();
    assert!((change - 0.0500182).abs() < 1e-6, "{change}");
    close(c.worse.as_ref().unwrap().d, change);
    assert_eq!(c.tests_name(), "the per-document paired t");
    // MDE at 80 % power: exp((t_.975,49 + t_.80,49)·se) − 1, quantiles from tables.
    let Some(super::ItemTest::Nll(t)) = &c.item_test else {
        panic!("no paired NLL test")
    };
    let want = ((2.009_575 + 0.848_9) * t.se).exp() - 1.0;
    let mde = c.mde.unwrap();
    assert!((mde / want - 1.0).abs() < 1e-3, "{mde} vs {want}");
    // One repetition per side is enough: the test runs on documents.
    assert_eq!(invalid_reason(&c, c.p_value().unwrap(), 0.01, 0.05), None);
    assert_eq!(
        verdict(&c, c.p_value().unwrap(), 0.01, 0.05),
        Verdict::Regression
    );
    // A τ beyond the change: significant but within noise.
    assert_eq!(
        verdict(&c, c.p_value().unwrap(), 0.06, 0.05),
        Verdict::WithinNoise
    );
}

#[test]
fn a_uniform_shift_of_every_document_is_deterministic() {
    let docs: Vec<_> = (1..=6u64)
        .map(|n| (n as f64 * 100.0, n as f64 * 110.0, n * 50))
        .collect();
    let c = compare_perplexity(&[1.0], &[1.2], &docs, 0.05).unwrap();
    assert!(c.is_deterministic());
    assert_eq!(c.p_value(), Some(0.0));
}

#[test]
fn too_few_items_are_invalid_whatever_the_repetitions() {
    let few = PairCounts {
        both: 1,
        only_baseline: 2,
        only_candidate: 0,
        neither: 1,
    };
    let c = compare_accuracy(&reps(0.5), &reps(0.3), few, 0.05).unwrap();
    let why = invalid_reason(&c, 0.5, 0.02, 0.05).unwrap();
    assert_eq!(
        why,
        InvalidReason::TooFewItems {
            unit: ItemUnit::Items,
            n: 4
        }
    );
    assert_eq!(
        why.to_string(),
        "only 4 items scored on both sides (at least 5 needed for tests)"
    );
    assert_eq!(verdict(&c, 0.5, 0.02, 0.05), Verdict::Invalid);
}

#[test]
fn without_items_the_repetitions_are_compared_unpaired() {
    let c = compare_accuracy(&reps(0.8), &reps(0.6), PairCounts::default(), 0.05).unwrap();
    let Design::Unpaired { reason } = &c.design else {
        panic!("paired without items")
    };
    assert_eq!(reason, "no item scored on both sides");
    assert!(c.item_test.is_none() && c.worse.is_some());
    let c = compare_perplexity(&reps(7.0), &reps(7.5), &[(1.0, 2.0, 3)], 0.05).unwrap();
    assert!(matches!(&c.design, Design::Unpaired { reason } if reason.contains("only 1 ")));
    let bad = [(1.0, 2.0, 3), (1.0, 2.0, 0)];
    let c = compare_perplexity(&reps(7.0), &reps(7.5), &bad, 0.05).unwrap();
    assert!(matches!(&c.design, Design::Unpaired { reason } if reason.contains("no scored")));
    assert_eq!(
        compare_accuracy(&[], &[0.5], WORSE, 0.05),
        Err(StatsError::Empty {
            group: crate::stats::Group::Baseline
        })
    );
}

#[test]
fn item_designs_serialize_with_their_test() {
    let c = compare_perplexity(&[7.39], &[7.76], &five_percent_worse(), 0.05).unwrap();
    let json = serde_json::to_value(&c).unwrap();
    assert_eq!(json["design"]["kind"], "items");
    assert_eq!(json["design"]["unit"], "documents");
    assert_eq!(json["design"]["pairs"], 50);
    assert_eq!(json["item_test"]["kind"], "nll");
    assert_eq!(json["item_test"]["documents"], 50);
    let c = compare_accuracy(&reps(0.8), &reps(0.6), WORSE, 0.05).unwrap();
    let json = serde_json::to_value(&c).unwrap();
    assert_eq!(json["item_test"]["kind"], "mcnemar");
    assert_eq!(json["item_test"]["counts"]["only_baseline"], 120);
}
