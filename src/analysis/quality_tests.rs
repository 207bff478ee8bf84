//! Quality across repetitions: pooled Wilson intervals, and comparisons paired by item that
//! join the run's Holm family with the quality thresholds.

use std::collections::BTreeMap;
use std::path::Path;

use super::quality::describe;
use super::*;
use crate::metrics::Metric;
use crate::metrics::quality::{AnswerScore, QualityItems, SegmentScore};
use crate::scenario::model::Value;
use crate::stats::{Interval, Verdict};

fn scenario() -> Scenario {
    scenario_with("")
}

fn scenario_with(extra: &str) -> Scenario {
    let text = r#"
[experiment]
name = "t"
description = "test"
[target]
kind = "sim"
model_config = "llama-3.1-8b"
gpu = "h100-sxm"
[vars.fixed]
request_rate = 5
[vars.sweep]
flavour = ["a", "b"]
"#;
    let text = format!("{text}{extra}");
    crate::scenario::parse(&text, Path::new("t.toml"), &[]).unwrap_or_else(|e| panic!("{e}"))
}

/// A repeatable uniform number per (round, item), as the referee draws from the prompt.
fn u(round: u32, item: u32) -> f64 {
    let x = (u64::from(round) * 1_000_003 + u64::from(item) * 7_919 + 17) * 2_654_435_761;
    (x % 100_003) as f64 / 100_003.0
}

/// Ten repetitions of 50 items each, answered correctly iff u < `p`; 20 documents of
/// 100–290 tokens at `nll_per_token` × a per-document difficulty.
fn cell(flavour: &str, p: f64, nll_per_token: f64) -> CellResults {
    let swept: Vars = [("flavour".to_string(), Value::Str(flavour.into()))]
        .into_iter()
        .collect();
    let reps = (0..10u32)
        .map(|round| {
            let answers: Vec<AnswerScore> = (0..50u32)
                .map(|item| AnswerScore {
                    item,
                    depth: [0.0, 0.5, 1.0][item as usize % 3],
                    context_tokens: 1024,
                    correct: u(round, item) < p,
                })
                .collect();
            let segments: Vec<SegmentScore> = (0..20u32)
                .map(|d| {
                    let tokens = 100 + 10 * u64::from(d);
                    let difficulty = 1.0 + 0.3 * (f64::from(d) / 19.0 - 0.5);
                    SegmentScore {
                        document: d,
                        window: 0,
                        tokens,
                        nll: nll_per_token * difficulty * tokens as f64,
                        digest: Some(format!("doc-{d}")),
                    }
                })
                .collect();
            let items = QualityItems {
                segments,
                answers,
                gaps: vec![],
                under_load: None,
            };
            let mut values = BTreeMap::new();
            let (nll, tokens) = items.totals();
            values.insert(Metric::Ppl.key(), (nll / tokens as f64).exp());
            let correct = items.answers.iter().filter(|a| a.correct).count();
            values.insert(Metric::RetrievalAccuracy.key(), correct as f64 / 50.0);
            let summary = RepetitionSummary {
                values,
                quality: Some(items),
                ..Default::default()
            };
            RepResult {
                round,
                order: round as usize,
                summary,
                wall_seconds: 1.0,
                client_cpu_seconds: None,
            }
        })
        .collect();
    CellResults {
        id: cell_label(&swept),
        vars: swept.clone(),
        swept,
        reps,
    }
}

fn verdict(a: &CellResults, b: &CellResults, metric: Metric) -> Verdict {
    let analysis = analyze(&scenario(), &[a.clone(), b.clone()]);
    let row = (analysis.comparisons.iter())
        .find(|r| r.metric == metric.key())
        .unwrap_or_else(|| panic!("no {metric} comparison in {:?}", analysis.comparisons));
    row.verdict
}

#[test]
fn accuracy_pools_every_repetition_with_a_wilson_interval() {
    let a = cell("a", 0.8, 2.0);
    let q = describe(std::slice::from_ref(&a), 0.95);
    let pooled = q[0].accuracy.as_ref().unwrap();
    let correct = (0..10)
        .flat_map(|r| (0..50).map(move |i| u(r, i) < 0.8))
        .filter(|c| *c)
        .count();
    assert_eq!((pooled.correct, pooled.trials), (correct as u64, 500));
    assert_eq!(
        pooled.interval,
        crate::stats::wilson(correct as u64, 500, 0.95)
    );
    let Some(Interval::Bounded { low, high }) = pooled.interval else {
        panic!("no interval")
    };
    assert!(low < 0.8 && 0.8 < high, "[{low}, {high}]");
    assert_eq!(q[0].by_depth.len(), 3);
    assert_eq!(
        q[0].by_depth.iter().map(|d| d.pooled.trials).sum::<u64>(),
        500
    );
    // PPL pooled over repetitions equals each repetition's (they scored the same text alike).
    assert!((q[0].ppl.unwrap() - a.reps[0].summary.values[&Metric::Ppl.key()]).abs() < 1e-9);
}

#[test]
fn lower_accuracy_on_the_same_items_is_a_regression_and_equal_accuracy_is_no_change() {
    let a = cell("a", 0.8, 2.0);
    assert_eq!(
        verdict(&a, &cell("b", 0.6, 2.0), Metric::RetrievalAccuracy),
        Verdict::Regression
    );
    assert_eq!(
        verdict(&a, &cell("b", 0.8, 2.0), Metric::RetrievalAccuracy),
        Verdict::NoChange
    );
}

#[test]
fn perplexity_compares_the_same_documents() {
    let a = cell("a", 0.8, 2.0);
    // +2 % NLL per token is exp(0.04) − 1 ≈ +4.1 % PPL: beyond τ = 1 %.
    assert_eq!(
        verdict(&a, &cell("b", 0.8, 2.04), Metric::Ppl),
        Verdict::Regression
    );
    // The same log-likelihoods: identical documents, no change.
    assert_eq!(
        verdict(&a, &cell("b", 0.8, 2.0), Metric::Ppl),
        Verdict::NoChange
    );
}

/// A document scored in windows is one unit of the paired test, not one per window: four
/// documents of five windows pair as four, and a document missing a window on one side drops.
#[test]
fn windows_of_a_document_pair_as_one_document() {
    let windowed = |flavour: &str, worse: f64, drop: Option<(u32, u32)>| {
        let mut c = cell(flavour, 0.8, 2.0);
        for rep in &mut c.reps {
            let q = rep.summary.quality.as_mut().unwrap();
            q.segments = (0..4u32)
                .flat_map(|d| (0..5u32).map(move |w| (d, w)))
                .filter(|dw| Some(*dw) != drop)
                .map(|(d, w)| SegmentScore {
                    document: d,
                    window: w,
                    tokens: 100,
                    nll: 100.0 * (2.0 + 0.01 * f64::from(d * 5 + w)) * worse,
                    digest: None,
                })
                .collect();
        }
        c
    };
    let a = windowed("a", 1.0, None);
    let b = windowed("b", 1.02, None);
    let c = super::quality::compare(&a, &b, Metric::Ppl.key(), 0.05)
        .unwrap()
        .unwrap();
    assert_eq!(c.design.label(), "paired by document (4)");
    let Some(crate::stats::ItemTest::Nll(t)) = &c.item_test else {
        panic!("no paired NLL test")
    };
    assert_eq!(t.tokens, 4 * 5 * 100);
    let short = windowed("b", 1.02, Some((2, 3)));
    let c = super::quality::compare(&a, &short, Metric::Ppl.key(), 0.05)
        .unwrap()
        .unwrap();
    assert_eq!(c.design.label(), "paired by document (3)");
}

/// The referee's answers to `runs` seeded rounds of 50 passkey items: for each round, whether
/// a server at accuracy `p` answers each item right (decided by the prompt, as
/// `exp serve --fixed …,accuracy=P` decides), and the same for an independent second server
/// (`salt` makes its draws independent of the first's).
fn referee_rounds(runs: u64, p: f64, salt: &str) -> Vec<Vec<(bool, bool)>> {
    (0..runs)
        .map(|seed| {
            let task = crate::quality::Task::Passkey;
            let items = crate::quality::items(task, 120, 50, &[0.0, 0.5, 1.0], seed, None).unwrap();
            items
                .iter()
                .map(|it| {
                    let a = crate::serve::answers_correctly(&it.prompt, p);
                    let b = crate::serve::answers_correctly(&format!("{}{salt}", it.prompt), p);
                    (a, b)
                })
                .collect()
        })
        .collect()
}

/// Issue 17: over many seeded runs, the Wilson interval of the referee's accuracy covers the
/// P it was set to at about its nominal rate (95 %).
#[test]
fn the_accuracy_interval_covers_the_referees_p_at_its_nominal_rate() {
    let (runs, p) = (400, 0.8);
    let covered = referee_rounds(runs, p, "")
        .iter()
        .filter(|round| {
            let correct = round.iter().filter(|(a, _)| *a).count() as u64;
            match crate::stats::wilson(correct, round.len() as u64, 0.95) {
                Some(Interval::Bounded { low, high }) => low <= p && p <= high,
                _ => false,
            }
        })
        .count();
    // Binomial(400, 0.95): mean 380, sd 4.4; Wilson's actual coverage at n = 50 is 93–96 %.
    eprintln!("{covered} of {runs} Wilson intervals cover p = {p}");
    assert!(
        (360..=395).contains(&covered),
        "{covered} of {runs} intervals cover {p}"
    );
}

/// Issue 17: two servers at the same accuracy, answering independently, are flagged by exact
/// McNemar at most at its level α (it is conservative), and never as a regression beyond τ.
#[test]
fn equal_accuracy_is_not_flagged_beyond_alpha() {
    let (runs, alpha) = (400, 0.05);
    let rounds = referee_rounds(runs, 0.8, "#independent");
    let mut flagged = 0;
    for round in &rounds {
        let counts = crate::stats::PairCounts::from_pairs(round.iter().copied());
        let test = crate::stats::mcnemar(counts, alpha).unwrap();
        flagged += usize::from(test.p < alpha);
    }
    eprintln!("{flagged} of {runs} flagged at α = {alpha}");
    // At most α = 5 % of 400 (20) in expectation; 32 is 2.8 sd above that.
    assert!(flagged <= 32, "{flagged} of {runs} flagged at α = {alpha}");
    // The same server twice gives the same answers (the item decides): nothing discordant.
    let same = &referee_rounds(3, 0.8, "");
    assert!(same.iter().flatten().all(|(a, b)| a == b));
}

/// 500 paired items cannot resolve τ = 2 points when the cells answer independently (they
/// disagree on about a third of the items): the MDE (Connor's McNemar power at the observed
/// discordance) says so, in points, and the warning asks for items, not repetitions.
#[test]
fn an_underpowered_accuracy_comparison_asks_for_items() {
    let s = scenario_with("[analysis]\nprimary = [\"retrieval_accuracy\"]\n");
    let a = cell("a", 0.8, 2.0);
    let mut b = cell("b", 0.8, 2.0);
    for rep in &mut b.reps {
        let items = rep.summary.quality.as_mut().unwrap();
        for answer in &mut items.answers {
            answer.correct = u(rep.round + 100, answer.item) < 0.8;
        }
        let correct = items.answers.iter().filter(|a| a.correct).count();
        (rep.summary.values).insert(Metric::RetrievalAccuracy.key(), correct as f64 / 50.0);
    }
    let analysis = analyze(&s, &[a, b]);
    let row = (analysis.comparisons.iter())
        .find(|r| r.metric == Metric::RetrievalAccuracy.key())
        .unwrap();
    let Some(crate::stats::ItemTest::McNemar(m)) = &row.comparison.item_test else {
        panic!("not paired by item: {:?}", row.comparison.design);
    };
    let mde = row.comparison.mde.unwrap();
    let want = crate::stats::mcnemar_mde(m.counts, 0.05, 0.8).unwrap();
    assert_eq!(mde, want);
    assert!(mde > 0.02, "{mde}");
    let n = crate::stats::mcnemar_items_for(m.counts, 0.02, 0.05, 0.8).unwrap();
    assert!(n > 500, "{n}");
    let line = (analysis.warnings.iter())
        .find(|w| w.contains("underpowered"))
        .unwrap_or_else(|| panic!("no underpowered warning in {:?}", analysis.warnings));
    assert_eq!(
        line,
        &format!(
            "retrieval_accuracy: 1 of 1 comparisons are underpowered (MDE up to {} > τ 2.00 pp): needs ≈ {n} items scored on both sides to resolve τ (more rounds or more per round)",
            crate::units::threshold(Metric::RetrievalAccuracy.key(), mde)
        )
    );
}

/// Under load: the quality arrivals and the items' median latency per cell, and a warning
/// when a repetition ended before every item was reached.
#[test]
fn under_load_the_mix_is_summed_and_unreached_items_are_noted() {
    let mut a = cell("a", 0.8, 2.0);
    for (k, rep) in a.reps.iter_mut().enumerate() {
        let q = rep.summary.quality.as_mut().unwrap();
        q.under_load = Some(crate::metrics::quality::LoadMix {
            share: 0.1,
            arrivals: 1000,
            // Two repetitions reach 60 of the 70 items, one of them cut at the end.
            quality_arrivals: if k < 2 { 60 + k as u64 } else { 70 },
            items: 70,
            unfinished: if k == 1 { 1 } else { 0 },
            latencies: vec![0.01 * (k + 1) as f64],
        });
    }
    let q = describe(std::slice::from_ref(&a), 0.95);
    let load = q[0].under_load.as_ref().unwrap();
    assert_eq!((load.arrivals, load.quality_arrivals), (10_000, 681));
    assert_eq!((load.reached, load.short_reps, load.reps), (680, 2, 10));
    // The median of 0.01, 0.02, …, 0.10 (type 7).
    assert!((load.latency_p50.unwrap() - 0.055).abs() < 1e-12);
    let note = q[0]
        .notes
        .iter()
        .find(|n| n.contains("under load"))
        .unwrap();
    assert_eq!(
        note,
        "under load, 2 of 10 repetitions ended before all 70 items were reached (68.0 per repetition on average): items not reached were not scored (hint: more requests, or a larger [quality] share, reach them all)"
    );
    // Without a mix, no summary and no note.
    let b = cell("b", 0.8, 2.0);
    assert!(describe(&[b], 0.95)[0].under_load.is_none());
}

/// Two runs that scored different text under one corpus name (the file changed between them):
/// their perplexities are of different text, so `exp compare` judges the comparison invalid
/// and says why, instead of pairing document d with another document d.
#[test]
fn a_changed_corpus_is_not_compared() {
    let a = cell("a", 0.8, 2.0);
    let same = cell("a", 0.8, 2.1);
    assert_eq!(super::quality::changed_text(&a, &same), None);
    let mut edited = same.clone();
    for rep in &mut edited.reps {
        let q = rep.summary.quality.as_mut().unwrap();
        for s in q.segments.iter_mut().filter(|s| s.document % 10 == 3) {
            s.digest = Some("other".into());
        }
    }
    let why = super::quality::changed_text(&a, &edited).unwrap();
    assert_eq!(
        why,
        "2 of 20 documents differ in text between the runs (e.g. document 3, by SHA-256): the corpus changed, so their perplexities are not of the same text; compare runs that scored the same corpus"
    );
    let settings = scenario().analysis.clone();
    let result = crate::compare::compare(&[a], &[edited], &settings);
    let row = (result.rows.iter())
        .find(|r| r.metric == Metric::Ppl.key())
        .unwrap();
    assert_eq!(row.verdict, Verdict::Invalid);
    assert_eq!(row.invalid.as_deref(), Some(why.as_str()));
    // Retrieval is not affected by the corpus.
    let retrieval = (result.rows.iter())
        .find(|r| r.metric == Metric::RetrievalAccuracy.key())
        .unwrap();
    assert!(retrieval.invalid.is_none(), "{:?}", retrieval.invalid);
}
