use crate::metrics::registry::k;
use std::path::Path;

use super::*;
use crate::scenario::model::Value;
use crate::stats::Verdict;

fn scenario(extra: &str) -> Scenario {
    let text = format!(
        r#"
[experiment]
name = "t"
description = "test"
[target]
kind = "sim"
model_config = "llama-3.1-8b"
gpu = "h100-sxm"
[vars.fixed]
requests = 10
[vars.sweep]
request_rate = [5, 10]
flavour = ["a", "b", "c"]
{extra}
"#
    );
    crate::scenario::parse(&text, Path::new("t.toml"), &[]).unwrap_or_else(|e| panic!("{e}"))
}

/// Ten repetitions whose TTFT mean is `base` × (1 + small deterministic jitter) and whose
/// throughput is 1000 / that.
fn cell(rate: i64, flavour: &str, base: f64) -> CellResults {
    let swept: Vars = [
        ("flavour".to_string(), Value::Str(flavour.into())),
        ("request_rate".to_string(), Value::Int(rate)),
    ]
    .into_iter()
    .collect();
    let mut vars = swept.clone();
    vars.insert("requests".into(), Value::Int(10));
    let jitter = [
        0.01, -0.012, 0.004, -0.003, 0.008, -0.009, 0.0, 0.006, -0.005, 0.002,
    ];
    let reps = jitter
        .iter()
        .enumerate()
        .map(|(i, j)| {
            let mut summary = RepetitionSummary::default();
            let ttft = base * (1.0 + j);
            summary.values.insert(k("ttft.mean"), ttft);
            summary.values.insert(k("output_throughput"), 1000.0 / ttft);
            summary.values.insert(k("error_rate"), 0.0);
            RepResult {
                round: i as u32,
                order: i,
                summary,
                wall_seconds: 1.0,
                client_cpu_seconds: None,
            }
        })
        .collect();
    CellResults {
        id: cell_label(&swept),
        vars,
        swept,
        reps,
    }
}

fn cells(slow_c: f64) -> Vec<CellResults> {
    let mut out = Vec::new();
    for rate in [5, 10] {
        out.push(cell(rate, "a", 0.100));
        // `b` differs from `a` only by a label the server ignores: same distribution,
        // different jitter order.
        let mut b = cell(rate, "b", 0.100);
        for r in &mut b.reps {
            r.summary.values.insert(
                k("ttft.mean"),
                0.100 * (1.0 + 0.003 * ((r.round % 3) as f64 - 1.0)),
            );
        }
        out.push(b);
        out.push(cell(rate, "c", 0.100 * slow_c));
    }
    out
}

#[test]
fn adjacent_levels_are_compared_at_each_load_level_and_never_across_loads() {
    let s = scenario("[analysis]\nprimary = [\"ttft.mean\"]\nload = [\"request_rate\"]");
    let a = analyze(&s, &cells(1.10));
    let pairs: Vec<(String, String)> = a
        .comparisons
        .iter()
        .map(|c| (c.change.clone(), c.at.clone()))
        .collect();
    assert_eq!(
        pairs,
        vec![
            ("flavour=a → b".to_string(), "request_rate=5".to_string()),
            ("flavour=b → c".to_string(), "request_rate=5".to_string()),
            ("flavour=a → b".to_string(), "request_rate=10".to_string()),
            ("flavour=b → c".to_string(), "request_rate=10".to_string()),
        ]
    );
}

#[test]
fn an_ignored_variable_is_no_change_and_a_ten_percent_slower_server_is_a_regression() {
    let s = scenario(
        "[analysis]\nprimary = [\"ttft.mean\", \"output_throughput\"]\nload = [\"request_rate\"]",
    );
    let a = analyze(&s, &cells(1.10));
    for c in &a.comparisons {
        if c.change == "flavour=a → b" {
            assert!(
                matches!(c.verdict, Verdict::NoChange | Verdict::WithinNoise),
                "{} {}: {:?}",
                c.metric,
                c.at,
                c.verdict
            );
        } else {
            assert_eq!(c.verdict, Verdict::Regression, "{} {}", c.metric, c.at);
        }
    }
    // Holm over the whole family: 4 pairs × 2 metrics.
    assert_eq!(a.comparisons.len(), 8);
    assert!(
        a.comparisons
            .iter()
            .all(|c| c.p_holm >= c.comparison.p_value().unwrap())
    );
}

#[test]
fn every_cell_is_compared_with_the_declared_baseline_at_its_own_load_level() {
    let s = scenario(
        "[analysis]\nprimary = [\"ttft.mean\"]\nload = [\"request_rate\"]\nbaseline = { flavour = \"a\", request_rate = 5 }",
    );
    let a = analyze(&s, &cells(1.10));
    let base: Vec<&ComparisonRow> = a
        .comparisons
        .iter()
        .filter(|c| c.kind == ComparisonKind::Baseline)
        .collect();
    // The baseline names request_rate too, so only the rate-5 cells have a baseline.
    let changes: Vec<&str> = base.iter().map(|c| c.change.as_str()).collect();
    assert_eq!(changes, vec!["flavour=a → b", "flavour=a → c"]);
}

#[test]
fn checks_are_judged_on_the_unfavourable_confidence_bound() {
    // Mean TTFT is 100 ms, but the upper 95 % bound is above 100.4 ms: `< 100.4ms` fails
    // although the mean passes; `< 110ms` passes.
    let s = scenario("[checks]\n\"ttft.mean\" = \"< 100.4ms\"\n\"output_throughput\" = \"> 9000\"");
    let a = analyze(&s, &[cell(5, "a", 0.100)]);
    let by_metric = |m: &str| a.checks.iter().find(|c| c.metric == m).unwrap();
    let ttft = by_metric("ttft.mean");
    assert!(!ttft.passed);
    assert!(ttft.judged.unwrap() > 0.1004);
    assert!(by_metric("output_throughput").passed);
    assert!(a.checks_failed());

    let s = scenario("[checks]\n\"ttft.mean\" = \"< 110ms\"");
    assert!(!analyze(&s, &[cell(5, "a", 0.100)]).checks_failed());
}

#[test]
fn a_check_on_an_unmeasured_metric_fails_with_its_reason() {
    let s = scenario("[checks]\n\"tpot.mean\" = \"< 50ms\"");
    let a = analyze(&s, &[cell(5, "a", 0.100)]);
    assert_eq!(
        a.checks[0].reason.as_deref(),
        Some("not measured in this cell")
    );
    assert!(!a.checks[0].passed);
}

#[test]
fn failures_and_missing_repetitions_are_warned_about() {
    let s = scenario("");
    let mut c = cell(5, "a", 0.100);
    c.reps.truncate(7);
    c.reps[0].summary.sent = 10;
    c.reps[0].summary.completed = 8;
    c.reps[0].summary.failures.insert("http".into(), 2);
    c.reps[0]
        .summary
        .failure_examples
        .push("HTTP 503: busy".into());
    let a = analyze(&s, &[c]);
    let text = a.warnings.join("\n");
    assert!(text.contains("only 7 of 10 repetitions finished"), "{text}");
    assert!(
        text.contains("2 of 10 requests failed (http: 2); e.g. \"HTTP 503: busy\""),
        "{text}"
    );
}

#[test]
fn retried_requests_are_counted_and_warned_about() {
    let s = scenario("");
    let mut c = cell(5, "a", 0.100);
    c.reps[0].summary.sent = 10;
    c.reps[0].summary.completed = 10;
    c.reps[0].summary.retried = 2;
    c.reps[3].summary.sent = 10;
    c.reps[3].summary.completed = 10;
    c.reps[3].summary.retried = 1;
    let text = analyze(&s, &[c.clone()]).warnings.join("\n");
    assert!(
        text.contains("3 of 20 requests were retried once on a fresh connection"),
        "{text}"
    );
    for rep in &mut c.reps {
        rep.summary.retried = 0;
    }
    let text = analyze(&s, &[c]).warnings.join("\n");
    assert!(!text.contains("retried"), "{text}");
}

#[test]
fn a_slow_first_repetition_and_an_outlier_are_warned_about_and_kept() {
    let s = scenario("[analysis]\nprimary = [\"ttft.mean\"]");
    let mut c = cell(5, "a", 0.100);
    let set = |c: &mut CellResults, round: usize, v: f64| {
        c.reps[round].summary.values.insert(k("ttft.mean"), v);
    };
    set(&mut c, 0, 0.130);
    set(&mut c, 6, 0.140);
    let a = analyze(&s, &[c]);
    let text = a.warnings.join("\n");
    assert!(
        text.contains("cell flavour=a · request_rate=5: the first repetition is slower than the rest (ttft.mean M = "),
        "{text}"
    );
    assert!(text.contains("): increase warm-up"), "{text}");
    // The first repetition is not reported a second time as an outlier.
    assert!(
        text.contains(
            "outlier repetitions, kept in every statistic: ttft.mean round 6 (140 ms, severe high)"
        ),
        "{text}"
    );
    assert!(!text.contains("round 0"), "{text}");
    // Never dropped: all ten repetitions are in the description.
    let d = &a.cells[0].metrics[&k("ttft.mean")];
    assert_eq!(d.n, 10);
    assert!(d.max >= 0.140);
}

#[test]
fn underpowered_comparisons_say_how_many_repetitions_would_resolve_tau() {
    let s = scenario("[analysis]\nprimary = [\"ttft.mean\"]\nload = [\"request_rate\"]");
    // Jitter five times larger: run-to-run CV 3.65 %, so the MDE exceeds τ = 3 %.
    let noisy = |flavour: &str| {
        let mut c = cell(5, flavour, 0.100);
        for r in &mut c.reps {
            let v = r.summary.values[&k("ttft.mean")];
            r.summary
                .values
                .insert(k("ttft.mean"), 0.100 + 5.0 * (v - 0.100));
        }
        c
    };
    // Cell b's rounds in reverse order: the same values, but no longer the same luck per
    // round, so pairing by round cannot remove the noise.
    let mut b = noisy("b");
    let values: Vec<f64> = b
        .reps
        .iter()
        .map(|r| r.summary.values[&k("ttft.mean")])
        .collect();
    for (r, v) in b.reps.iter_mut().zip(values.iter().rev()) {
        r.summary.values.insert(k("ttft.mean"), *v);
    }
    let a = analyze(&s, &[noisy("a"), b]);
    let row = &a.comparisons[0];
    assert_eq!(
        row.comparison.design,
        crate::stats::Design::Paired { pairs: 10 }
    );
    let mde = row.comparison.mde.unwrap();
    assert!(mde > 0.03, "{mde}");
    let line = a
        .warnings
        .iter()
        .find(|w| w.contains("underpowered"))
        .unwrap();
    // The per-round log ratios have sd s_d; 80 % power for ln(1.03) takes n pairs.
    let sd = row.comparison.paired.as_ref().unwrap().sd;
    let n = crate::stats::paired_runs_for_effect(0.03_f64.ln_1p(), sd, 0.05, 0.8).unwrap();
    assert!(n > 10, "{n}");
    assert_eq!(
        line,
        &format!(
            "ttft.mean: 1 of 1 comparisons are underpowered (MDE up to {} > τ 3.00 %): needs ≈ {n} repetitions per side to resolve τ",
            crate::units::percent(mde)
        )
    );
}

/// Issue 15: two cells whose rounds share the workload's luck. Every value of cell b is
/// cell a's of the same round + 0.5 %, while the rounds spread by ±6 %: unpaired, Welch sees
/// nothing (p > 0.5); paired by round the comparison resolves the change as
/// `within noise` (the log ratios agree to rounding, so p ≈ 0).
#[test]
fn cells_of_one_round_are_compared_pair_by_pair() {
    let s = scenario("[analysis]\nprimary = [\"ttft.mean\"]\nload = [\"request_rate\"]");
    let noisy = |flavour: &str, scale: f64| {
        let mut c = cell(5, flavour, 0.100);
        for r in &mut c.reps {
            let v = r.summary.values[&k("ttft.mean")];
            let v = (0.100 + 5.0 * (v - 0.100)) * scale;
            r.summary.values.insert(k("ttft.mean"), v);
        }
        c
    };
    let a = analyze(&s, &[noisy("a", 1.0), noisy("b", 1.005)]);
    let row = &a.comparisons[0];
    let c = &row.comparison;
    assert_eq!(c.design, crate::stats::Design::Paired { pairs: 10 });
    assert!(c.p_value().unwrap() < 1e-6);
    assert!((c.change().unwrap().0 - 0.005).abs() < 1e-9);
    assert_eq!(row.verdict, Verdict::WithinNoise);
    let welch = c.welch.as_ref().unwrap().p_value();
    assert!(welch > 0.5, "unpaired Welch p {welch}");
}

/// A proportion that is 0 in the baseline has no ratio to it: it is compared in percentage
/// points (Welch's CI of the difference) against a τ of one point, instead of being
/// `invalid`. Flavour `c` fails 2–3 % of its requests where `a` and `b` fail none.
#[test]
fn an_error_rate_from_zero_is_judged_in_percentage_points() {
    let s = scenario("[analysis]\nprimary = [\"error_rate\"]\nload = [\"request_rate\"]");
    let mut cs = cells(1.0);
    for c in cs.iter_mut().filter(|c| c.id.contains("flavour=c")) {
        for r in &mut c.reps {
            let rate = [0.02, 0.03][r.round as usize % 2];
            r.summary.values.insert(k("error_rate"), rate);
        }
    }
    let a = analyze(&s, &cs);
    let verdicts: Vec<(String, Verdict)> = (a.comparisons.iter())
        .filter(|c| c.at == "request_rate=5")
        .map(|c| (c.change.clone(), c.verdict))
        .collect();
    assert_eq!(
        verdicts,
        [
            ("flavour=a → b".to_string(), Verdict::NoChange),
            ("flavour=b → c".to_string(), Verdict::Regression),
        ]
    );
    let row = (a.comparisons.iter())
        .find(|c| c.change == "flavour=b → c")
        .unwrap();
    assert_eq!(row.tau, 0.01);
    // b̄ − ā = 0.025 exactly (five rounds of 2 %, five of 3 %).
    let w = row.comparison.worse.as_ref().unwrap();
    assert!((w.d - 0.025).abs() < 1e-12, "{w:?}");
    // Welch: se = √(2.7778e-5 / 10) = 0.0016667, ν = 9, t_{0.975,9} = 2.262157.
    let delta = crate::units::change(&row.comparison, row.metric);
    assert_eq!(delta, "+2.50 pp [+2.12 pp, +2.88 pp]");
    assert_eq!(crate::units::threshold(row.metric, row.tau), "1.00 pp");
}
