//! Warnings (statistics.md §2.7, metrics.md): what could make a reader misread the numbers —
//! few repetitions, noisy cells, drift, failures, a client that fell behind its schedule,
//! outputs that missed their length, too few samples for a tail percentile.

use super::{CellAnalysis, CellResults, ComparisonRow, rep_values};
use crate::metrics::names;
use crate::scenario::model::Scenario;
use crate::stats;
use crate::units;

/// Client lateness that is worth a warning: p99 of `queue_delay` above 5 ms.
const LATE_P99_S: f64 = 0.005;

pub(super) fn collect(
    scenario: &Scenario,
    cells: &[CellResults],
    described: &[CellAnalysis],
    comparisons: &[ComparisonRow],
) -> Vec<String> {
    let mut out: Vec<String> = scenario.warnings.clone();
    if scenario.experiment.order == crate::scenario::model::RunOrder::Grouped {
        out.push(
            "order = \"grouped\": all repetitions of a server configuration ran on one launch, one configuration after another, so drift over time (thermal, other tenants, the instance's own state) is confounded with the server's variables; differences between configurations may be drift. Use randomized blocks where launches are affordable".into(),
        );
    }
    let mut per_cell: Vec<(String, String)> = Vec::new();
    let planned = scenario.experiment.repetitions.get() as usize;
    for (cell, desc) in cells.iter().zip(described) {
        let label = &desc.label;
        if cell.reps.len() < planned {
            out.push(format!(
                "cell {label}: only {} of {planned} repetitions finished (resume with `exp run --resume`)",
                cell.reps.len()
            ));
        }
        failures(cell, label, &mut out);
        client(cell, label, &mut out);
        outputs(cell, label, &mut out);
        noise(scenario, cell, desc, &mut per_cell);
    }
    out.extend(group_by_message(per_cell, described.len()));
    for c in comparisons.iter().filter(|c| c.comparison.tests_disagree) {
        out.push(format!(
            "{} {} at {}: Welch and Brunner–Munzel disagree (difference driven by shape or outliers)",
            c.metric, c.change, c.at
        ));
    }
    out
}

fn failures(cell: &CellResults, label: &str, out: &mut Vec<String>) {
    let sent: u64 = cell.reps.iter().map(|r| r.summary.sent).sum();
    let ok: u64 = cell.reps.iter().map(|r| r.summary.completed).sum();
    if sent == ok {
        return;
    }
    let mut by_reason = std::collections::BTreeMap::<&str, u64>::new();
    for rep in &cell.reps {
        for (reason, n) in &rep.summary.failures {
            *by_reason.entry(reason).or_default() += n;
        }
    }
    let reasons: Vec<String> = by_reason.iter().map(|(r, n)| format!("{r}: {n}")).collect();
    let example = cell
        .reps
        .iter()
        .flat_map(|r| r.summary.failure_examples.first())
        .next();
    out.push(format!(
        "cell {label}: {} of {sent} requests failed ({}){}",
        sent - ok,
        reasons.join(", "),
        example
            .map(|e| format!("; e.g. \"{e}\""))
            .unwrap_or_default()
    ));
}

fn client(cell: &CellResults, label: &str, out: &mut Vec<String>) {
    let late = rep_values(cell, "queue_delay.p99");
    if let Some(worst) = late.iter().copied().reduce(f64::max)
        && worst > LATE_P99_S
    {
        out.push(format!(
            "cell {label}: the client fell behind its schedule (queue_delay p99 up to {}); latencies from `scheduled` (ttft_sched, e2e_sched) include that wait",
            units::seconds(worst)
        ));
    }
    for rep in &cell.reps {
        let v = &rep.summary.values;
        if let (Some(a), Some(s)) = (v.get("achieved_rate"), v.get("scheduled_rate"))
            && *a < 0.99 * s
        {
            out.push(format!(
                "cell {label} round {}: achieved rate {} is below 99 % of the scheduled {}",
                rep.round,
                units::metric_value("achieved_rate", *a),
                units::metric_value("scheduled_rate", *s)
            ));
            break;
        }
        if let Some(cpu) = rep.client_cpu_seconds
            && rep.wall_seconds > 0.0
            && cpu / rep.wall_seconds > 0.8
        {
            out.push(format!(
                "cell {label} round {}: the client used {:.0} % of a core; it may be the bottleneck",
                rep.round,
                100.0 * cpu / rep.wall_seconds
            ));
            break;
        }
    }
}

fn outputs(cell: &CellResults, label: &str, out: &mut Vec<String>) {
    let sum = |f: fn(&crate::metrics::RepetitionSummary) -> u64| -> u64 {
        cell.reps.iter().map(|r| f(&r.summary)).sum()
    };
    let (short, estimated, mismatch) = (
        sum(|s| s.short_outputs),
        sum(|s| s.estimated_lengths),
        sum(|s| s.token_mismatches),
    );
    if short > 0 {
        out.push(format!(
            "cell {label}: {short} responses were shorter than requested (the server may ignore `ignore_eos`); throughput counts actual tokens"
        ));
    }
    if estimated > 0 {
        out.push(format!(
            "cell {label}: {estimated} responses carried no usage; their output length was counted from chunks (approximate)"
        ));
    }
    if mismatch > 0 {
        out.push(format!(
            "cell {label}: {mismatch} responses' per-chunk token counts disagree with the server's usage"
        ));
    }
}

/// Joins identical messages about several cells into one line.
fn group_by_message(items: Vec<(String, String)>, cells: usize) -> Vec<String> {
    let mut grouped: Vec<(String, Vec<String>)> = Vec::new();
    for (cell, message) in items {
        match grouped.iter_mut().find(|(m, _)| *m == message) {
            Some((_, labels)) => labels.push(cell),
            None => grouped.push((message, vec![cell])),
        }
    }
    grouped
        .into_iter()
        .map(|(message, labels)| match labels.len() {
            1 => format!("cell {}: {message}", labels[0]),
            n if n == cells && n > 1 => format!("all {n} cells: {message}"),
            _ => format!("cells {}: {message}", labels.join(", ")),
        })
        .collect()
}

/// Noise, tail sufficiency and drift of the primary metrics (statistics.md §2.7).
fn noise(
    scenario: &Scenario,
    cell: &CellResults,
    desc: &CellAnalysis,
    out: &mut Vec<(String, String)>,
) {
    let label = desc.label.clone();
    let cv_warn = scenario.analysis.cv_warn;
    let requests = cell
        .reps
        .iter()
        .map(|r| r.summary.completed)
        .min()
        .unwrap_or(0);
    let (mut thin_tails, mut noisy) = (Vec::new(), Vec::new());
    for metric in &scenario.analysis.primary {
        let Some(d) = desc.metrics.get(metric) else {
            continue;
        };
        let tail = names::info(metric).is_some_and(|i| i.tail);
        let limit = if tail { 2.0 * cv_warn } else { cv_warn };
        if let Some(cv) = d.cv.filter(|cv| *cv > limit) {
            noisy.push(format!(
                "{metric} {} (> {})",
                units::percent(cv),
                units::percent(limit)
            ));
        }
        if metric.ends_with(".p99") && !stats::tail_is_reliable(requests as usize, 0.99) {
            thin_tails.push(metric.as_str());
        }
        if let Some(text) = drift(scenario, cell, metric) {
            out.push((label.clone(), text));
        }
    }
    if !noisy.is_empty() {
        out.push((
            label.clone(),
            format!("high run-to-run CV: {}", noisy.join(", ")),
        ));
    }
    if !thin_tails.is_empty() {
        out.push((
            label,
            format!(
                "{} from {requests} requests per repetition {} unreliable (p99 needs ≥ 1000)",
                thin_tails.join(", "),
                if thin_tails.len() == 1 { "is" } else { "are" }
            ),
        ));
    }
}

/// Values of a metric in execution order.
fn in_run_order(cell: &CellResults, metric: &str) -> Vec<f64> {
    let mut ordered: Vec<(usize, f64)> = cell
        .reps
        .iter()
        .filter_map(|r| Some((r.order, *r.summary.values.get(metric)?)))
        .collect();
    ordered.sort_by_key(|(o, _)| *o);
    ordered.into_iter().map(|(_, v)| v).collect()
}

/// A drift warning when Mann–Kendall finds a trend of at least τ/2 over the run, unless the
/// scheduled arrival rate drifts the same way: then the workload's realisation, not the
/// system, moved (open-loop throughput follows the offered rate).
fn drift(scenario: &Scenario, cell: &CellResults, metric: &str) -> Option<String> {
    let values = in_run_order(cell, metric);
    let tau = scenario
        .analysis
        .thresholds
        .get(metric)
        .copied()
        .unwrap_or_else(|| names::default_threshold(metric));
    let mk = stats::mann_kendall(&values)?;
    let d = mk.relative_drift?;
    if mk.p >= 0.05 || d.abs() < tau / 2.0 {
        return None;
    }
    let offered = stats::mann_kendall(&in_run_order(cell, "scheduled_rate"));
    if offered.is_some_and(|o| o.p < 0.05 && o.s.signum() == mk.s.signum()) {
        return None;
    }
    Some(format!(
        "{metric} drifts {} over {} repetitions (Mann–Kendall p = {})",
        units::signed_percent(d),
        values.len(),
        units::p_value(mk.p)
    ))
}
