use std::num::NonZeroU32;

use super::*;
use crate::analysis::RepResult;
use crate::metrics::RepetitionSummary;
use crate::metrics::registry::k;

/// A cell whose `metric` takes `values`, one per round.
fn cell(id: &str, metric: &str, values: &[f64]) -> CellResults {
    let reps = values
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let mut summary = RepetitionSummary::default();
            summary.values.insert(k(metric), *v);
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
        id: id.into(),
        vars: Default::default(),
        swept: Default::default(),
        reps,
    }
}

/// `n` values with mean 100 and sample CV exactly `cv` (alternating around the mean).
fn with_cv(n: usize, cv: f64) -> Vec<f64> {
    let sd = 100.0 * cv;
    // Alternating ±a around the mean: sample variance a²·n/(n − 1) for even n.
    let a = sd / (n as f64 / (n as f64 - 1.0)).sqrt();
    (0..n)
        .map(|i| if i % 2 == 0 { 100.0 + a } else { 100.0 - a })
        .collect()
}

fn adaptive(max: u32, target: Option<f64>) -> Adaptive {
    Adaptive {
        max: NonZeroU32::new(max).unwrap(),
        target_ci: target,
    }
}

fn primary(names: &[&str]) -> Vec<MetricKey> {
    names.iter().map(|s| k(s)).collect()
}

#[test]
fn precise_cells_stop_at_the_first_look() {
    // CV 1 %: half-width at n = 10 is 0.7154 % (statistics.md §3.12), within 2 %.
    let cells = [
        cell("a", "ttft.mean", &with_cv(10, 0.01)),
        cell("b", "ttft.mean", &with_cv(10, 0.01)),
    ];
    let (look, decision) = look(
        &adaptive(30, Some(0.02)),
        &primary(&["ttft.mean"]),
        &cells,
        10,
    );
    let Decision::Stop(stop) = decision else {
        panic!("{decision:?}")
    };
    assert_eq!(stop.reason, StopReason::Precision);
    assert_eq!(stop.rounds, 10);
    assert!(stop.above_target.is_empty());
    let worst = look.worst.unwrap();
    assert!((worst.half_width.unwrap() - 0.007154).abs() < 1e-6);
    assert_eq!(look.added, 0);
    assert_eq!(
        stop_text(&stop, 10),
        "precision reached after the minimum of 10 rounds"
    );
}

#[test]
fn a_noisy_cell_adds_at_most_five_rounds_toward_the_predicted_n() {
    // CV 4 %, target 2 %: 18 runs are needed (statistics.md §3.12), so from 10 add 5 (the
    // batch cap), from 16 add 2, and never more than the cap allows.
    let target = adaptive(30, Some(0.02));
    let p = primary(&["output_throughput"]);
    let noisy = |n| {
        [
            cell("quiet", "output_throughput", &with_cv(n, 0.005)),
            cell("noisy", "output_throughput", &with_cv(n, 0.04)),
        ]
    };
    let (look10, d10) = look(&target, &p, &noisy(10), 10);
    assert_eq!(d10, Decision::Continue(5));
    assert_eq!(look10.added, 5);
    assert_eq!(look10.worst.unwrap().cell, "noisy");
    assert_eq!(look(&target, &p, &noisy(16), 16).1, Decision::Continue(2));
    assert_eq!(
        look(&adaptive(17, Some(0.02)), &p, &noisy(16), 16).1,
        Decision::Continue(1)
    );
    // At n = 18 the half-width is 1.9892 % ≤ 2 %: done.
    assert!(matches!(
        look(&target, &p, &noisy(18), 18).1,
        Decision::Stop(Stop {
            reason: StopReason::Precision,
            rounds: 18,
            ..
        })
    ));
}

#[test]
fn the_cap_stops_the_run_and_names_what_missed_its_target() {
    let cells = [
        cell("a", "ttft.p99", &with_cv(30, 0.2)),
        cell("b", "ttft.p99", &with_cv(30, 0.01)),
    ];
    // Default targets: 5 % for a tail percentile.
    let (_, decision) = look(&adaptive(30, None), &primary(&["ttft.p99"]), &cells, 30);
    let Decision::Stop(stop) = decision else {
        panic!("{decision:?}")
    };
    assert_eq!(stop.reason, StopReason::Cap);
    assert_eq!(stop.above_target.len(), 1);
    let missed = &stop.above_target[0];
    assert_eq!((missed.cell.as_str(), missed.target), ("a", 0.05));
    // t_{0.975,29}·0.2/√30 = 7.468 %.
    assert!((missed.half_width.unwrap() - 0.074681).abs() < 1e-5);
    assert_eq!(
        stop_text(&stop, 10),
        "cap of 30 rounds reached; achieved half-widths above target: ttft.p99 ±7.47 % (target 5.00 %) in a"
    );
}

#[test]
fn unmeasured_metrics_are_skipped_and_constant_ones_are_precise() {
    let cells = [cell("a", "error_rate", &[0.0; 10])];
    let (_, decision) = look(
        &adaptive(30, Some(0.02)),
        &primary(&["error_rate", "itl.p99"]),
        &cells,
        10,
    );
    assert!(matches!(
        decision,
        Decision::Stop(Stop {
            reason: StopReason::Precision,
            ..
        })
    ));
}

#[test]
fn default_targets_follow_statistics_md() {
    let a = adaptive(30, None);
    assert_eq!(a.target_for(k("output_throughput")), 0.02);
    assert_eq!(a.target_for(k("ttft.mean")), 0.02);
    assert_eq!(a.target_for(k("ttft.p99")), 0.05);
    assert_eq!(adaptive(30, Some(0.03)).target_for(k("ttft.p99")), 0.03);
}
