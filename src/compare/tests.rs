//! The comparison as a specification, on hand-built cell results with known answers
//! (statistics.md §3 examples 1 and 2: the §2.10 report rows).

use super::*;
use crate::analysis::RepResult;
use crate::metrics::RepetitionSummary;
use crate::metrics::registry::k;
use crate::scenario::model::{Analysis, Value, Vars};
use crate::store::{Manifest, SCHEMA_VERSION};

const E1_BASE: [f64; 10] = [
    2451.3, 2438.9, 2460.2, 2447.5, 2455.0, 2442.1, 2449.8, 2458.6, 2444.7, 2452.4,
];
const E1_CAND: [f64; 10] = [
    2410.6, 2428.3, 2401.9, 2419.7, 2395.2, 2424.8, 2407.4, 2415.0, 2431.6, 2399.3,
];
const E2_BASE: [f64; 10] = [
    182.4, 175.9, 190.3, 178.8, 185.1, 201.7, 179.5, 183.2, 188.6, 176.4,
];
const E2_CAND: [f64; 8] = [195.8, 180.3, 188.9, 223.5, 179.1, 205.7, 192.4, 230.2];

fn vars(pairs: &[(&str, i64)]) -> Vars {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), Value::Int(*v)))
        .collect()
}

/// A cell whose repetition `i` has `metric = values[i]` for each given metric.
fn cell(all: &[(&str, i64)], swept: &[&str], metrics: &[(&str, &[f64])]) -> CellResults {
    let n = metrics.iter().map(|(_, v)| v.len()).max().unwrap_or(0);
    let reps = (0..n)
        .map(|i| {
            let mut summary = RepetitionSummary::default();
            for (name, values) in metrics {
                if let Some(v) = values.get(i) {
                    summary.values.insert(k(name), *v);
                }
            }
            RepResult {
                round: i as u32,
                order: i,
                summary,
                wall_seconds: 1.0,
                client_cpu_seconds: None,
            }
        })
        .collect();
    let all = vars(all);
    let swept_vars = all
        .iter()
        .filter(|(k, _)| swept.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    CellResults {
        id: "c".into(),
        vars: all,
        swept: swept_vars,
        reps,
    }
}

fn settings(primary: &[&str], thresholds: &[(&str, f64)]) -> Analysis {
    Analysis {
        alpha: 0.05,
        primary: primary.iter().map(|s| k(s)).collect(),
        thresholds: thresholds.iter().map(|(m, v)| (k(m), *v)).collect(),
        capacity_threshold: None,
        load: vec!["request_rate".into()],
        baseline: None,
        cv_warn: 0.05,
    }
}

fn ms(values: &[f64]) -> Vec<f64> {
    values.iter().map(|v| v / 1000.0).collect()
}

fn example_2_10(tau_throughput: f64) -> CompareResult {
    let (e2b, e2c) = (ms(&E2_BASE), ms(&E2_CAND));
    let base = cell(
        &[],
        &[],
        &[("output_throughput", &E1_BASE), ("ttft.p99", &e2b)],
    );
    let cand = cell(
        &[],
        &[],
        &[("output_throughput", &E1_CAND), ("ttft.p99", &e2c)],
    );
    let s = settings(
        &["output_throughput", "ttft.p99"],
        &[("output_throughput", tau_throughput)],
    );
    compare(&[base], &[cand], &s)
}

#[test]
fn the_verdict_table_of_statistics_md_2_10() {
    let r = example_2_10(0.01);
    assert_eq!(r.family, 2);
    let got: Vec<(&str, String, Verdict)> = r
        .rows
        .iter()
        .map(|x| (x.cell.as_str(), x.metric.to_string(), x.verdict))
        .collect();
    assert_eq!(
        got,
        [
            (
                "default",
                "output_throughput".to_string(),
                Verdict::Regression
            ),
            ("default", "ttft.p99".to_string(), Verdict::Inconclusive),
        ]
    );
    // Holm over 2: 2 × 1.274e-6, and 0.061289 stays (monotone).
    let p: Vec<f64> = r.rows.iter().map(|x| x.p_holm.unwrap()).collect();
    assert!((p[0] / 2.548218e-6 - 1.0).abs() < 1e-4, "{p:?}");
    assert!((p[1] - 0.061289).abs() < 1e-6, "{p:?}");
    assert_eq!(r.outcome(), Outcome::Regression);
    assert!(r.fails(FailOn::Regression) && r.fails(FailOn::AnyChange));
    assert!(r.invalid_reason().is_none());
    assert!(
        r.warnings.iter().any(|w| w.contains("underpowered")),
        "{:?}",
        r.warnings
    );
}

#[test]
fn a_wider_threshold_turns_the_same_data_into_within_noise() {
    let r = example_2_10(0.02);
    assert_eq!(r.rows[0].verdict, Verdict::WithinNoise);
    assert_eq!(r.outcome(), Outcome::NoChange);
    assert!(!r.fails(FailOn::Regression) && !r.fails(FailOn::AnyChange));
}

#[test]
fn an_a_a_pair_gives_no_regression() {
    let mut shuffled = E1_BASE;
    shuffled.reverse();
    let base = cell(&[], &[], &[("output_throughput", &E1_BASE)]);
    let cand = cell(&[], &[], &[("output_throughput", &shuffled)]);
    let r = compare(&[base], &[cand], &settings(&["output_throughput"], &[]));
    assert_eq!(r.rows[0].verdict, Verdict::NoChange);
    assert_eq!(r.outcome(), Outcome::NoChange);
    assert!(!r.fails(FailOn::AnyChange));
}

#[test]
fn a_ten_percent_faster_candidate_is_an_improvement_that_fails_only_any_change() {
    let base: Vec<f64> = ms(&E2_BASE).iter().map(|v| v / 10.0).collect();
    let cand: Vec<f64> = base.iter().rev().map(|v| v * 0.9).collect();
    let r = compare(
        &[cell(&[], &[], &[("ttft.mean", &base)])],
        &[cell(&[], &[], &[("ttft.mean", &cand)])],
        &settings(&["ttft.mean"], &[]),
    );
    assert_eq!(r.rows[0].verdict, Verdict::Improvement);
    assert_eq!(r.outcome(), Outcome::Improvement);
    assert!(!r.fails(FailOn::Regression));
    assert!(r.fails(FailOn::AnyChange));
}

#[test]
fn cells_match_by_the_variables_swept_in_either_run() {
    let v = [1.0, 2.0, 3.0, 4.0, 5.0];
    let base: Vec<CellResults> = [1, 2, 4]
        .iter()
        .map(|&r| {
            cell(
                &[("request_rate", r), ("tp", 4), ("max_num_seqs", 128)],
                &["request_rate"],
                &[("ttft.mean", &v)],
            )
        })
        .collect();
    // The candidate also sweeps tp (the baseline had it fixed at 4) and changes max_num_seqs.
    let mut cand = Vec::new();
    for r in [2, 4, 8] {
        for tp in [4, 8] {
            cand.push(cell(
                &[("request_rate", r), ("tp", tp), ("max_num_seqs", 256)],
                &["request_rate", "tp"],
                &[("ttft.mean", &v)],
            ));
        }
    }
    let m = match_cells(&base, &cand);
    let labels: Vec<&str> = m.matched.iter().map(|c| c.label.as_str()).collect();
    assert_eq!(labels, ["request_rate=2 · tp=4", "request_rate=4 · tp=4"]);
    assert_eq!(m.only_baseline, ["request_rate=1 · tp=4"]);
    assert_eq!(m.only_candidate.len(), 4);
    assert_eq!(
        m.fixed_differences,
        [VarDifference {
            name: "max_num_seqs".into(),
            baseline: Some("128".into()),
            candidate: Some("256".into()),
        }]
    );
}

#[test]
fn no_matched_cell_or_only_invalid_verdicts_make_the_comparison_invalid() {
    let v = [1.0, 2.0, 3.0, 4.0, 5.0];
    let s = settings(&["ttft.mean"], &[]);
    let a = cell(
        &[("request_rate", 1)],
        &["request_rate"],
        &[("ttft.mean", &v)],
    );
    let b = cell(
        &[("request_rate", 2)],
        &["request_rate"],
        &[("ttft.mean", &v)],
    );
    let r = compare(std::slice::from_ref(&a), &[b], &s);
    assert_eq!(r.outcome(), Outcome::Invalid);
    assert_eq!(
        r.invalid_reason().as_deref(),
        Some("no cell is present in both runs")
    );

    let short = cell(
        &[("request_rate", 1)],
        &["request_rate"],
        &[("ttft.mean", &v[..3])],
    );
    let r = compare(&[a], &[short], &s);
    assert_eq!(r.rows[0].verdict, Verdict::Invalid);
    assert_eq!(r.family, 0);
    assert_eq!(
        r.invalid_reason().as_deref(),
        Some("every verdict is invalid (e.g. only 3 candidate runs (at least 5 needed for tests))")
    );
}

#[test]
fn too_many_failed_requests_invalidate_a_cell_and_leave_the_holm_family() {
    let v = [1.0, 1.1, 0.9, 1.05, 0.95];
    let errors = [0.0, 0.05, 0.02, 0.0, 0.03];
    let base = cell(&[], &[], &[("ttft.mean", &v), ("error_rate", &[0.0; 5])]);
    let cand = cell(&[], &[], &[("ttft.mean", &v), ("error_rate", &errors)]);
    let r = compare(&[base], &[cand], &settings(&["ttft.mean"], &[]));
    assert_eq!(r.rows[0].verdict, Verdict::Invalid);
    assert_eq!(
        r.rows[0].invalid.as_deref(),
        Some("2.00 % of candidate requests failed (limit 1.00 %)")
    );
    assert_eq!(r.family, 0);
    assert!(r.warnings[0].starts_with("cell default: 2.00 % of candidate"));
}

fn manifest(sha: &str, executor: &str, host: &str, git: &str) -> Manifest {
    Manifest {
        schema_version: SCHEMA_VERSION,
        exp_version: "0.1.0".into(),
        git_revision: Some(git.into()),
        host: Some(host.into()),
        run_id: format!("run-{git}"),
        scenario_name: "demo".into(),
        scenario_file: "demo.toml".into(),
        scenario_sha256: sha.into(),
        overrides: vec![],
        target_override: None,
        seed: 1,
        repetitions: 10,
        order: crate::scenario::model::RunOrder::RandomizedBlocks,
        executor: executor.into(),
        cells: vec![],
        schedule: vec![],
        started: "2026-11-21T00:00:00Z".into(),
        ended: None,
        status: crate::store::RunStatus::Complete,
        warnings: vec![],
        launches: vec![],
        adaptive: None,
        sequential: None,
        session: None,
        baseline: None,
        node: None,
        shard: None,
        merged: Vec::new(),
        client: None,
        merged_clients: Vec::new(),
    }
}

#[test]
fn a_different_scenario_or_target_is_flagged_as_invalidating() {
    let b = manifest("aaaa", "sim", "h1", "abc");
    let c = manifest("bbbb", "http", "h2", "def");
    let env = environment(&b, &c, &[]);
    let sev: Vec<Severity> = env.differences.iter().map(|d| d.severity).collect();
    assert_eq!(
        sev,
        [
            Severity::Invalidates,
            Severity::Invalidates,
            Severity::Warning
        ]
    );
    assert!(env.differences[0].message.contains("workload may differ"));
    let marked: Vec<&str> = env
        .rows
        .iter()
        .filter(|r| r.differs)
        .map(|r| r.name.as_str())
        .collect();
    assert_eq!(marked, ["Target", "Scenario", "Host"]);

    let same = environment(&b, &b, &[]);
    assert_eq!(same.differences.len(), 1, "{:?}", same.differences);
    assert!(same.differences[0].message.contains("A/A comparison"));
}

#[test]
fn the_markdown_leads_with_the_verdict_and_only_the_changed_rows() {
    let r = example_2_10(0.01);
    let m = manifest("aaaa", "sim", "h1", "abc");
    let env = environment(&m, &m, &r.matching.fixed_differences);
    let text = report::render(&report::build(&r, &env, &m, &m)).unwrap();
    let top = text.split("<details>").next().unwrap();
    assert!(
        top.contains(
            "**❌ regression (2 comparisons in 1 matched cell: 1 regression, 1 inconclusive)**"
        ),
        "{text}"
    );
    assert!(
        top.contains("| default | output_throughput | 2450 tok/s ± 6.916 tok/s | 2413 tok/s ± 12.61 tok/s | −1.50 % [−1.89 %, −1.10 %] | 2.5e−6 | **regression** (τ 1.00 %) |"),
        "{top}"
    );
    assert!(
        !top.contains("| default | ttft.p99"),
        "unchanged rows stay in the fold"
    );
    assert!(
        text.contains("inconclusive (τ 5.00 %, MDE 12.2 %)"),
        "{text}"
    );
    assert!(
        !text.contains("&lt;") && !text.contains("&#"),
        "no HTML escaping"
    );
}
