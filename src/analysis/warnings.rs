//! Warnings (statistics.md §2.7, metrics.md): what could make a reader misread the numbers —
//! few repetitions, noisy cells, drift, outlier and slow first repetitions, failures, a
//! client that fell behind its schedule, outputs that missed their length, too few samples
//! for a tail percentile, comparisons too weak to resolve τ.

use super::diagnostics;
use super::{CellAnalysis, CellResults, ComparisonRow, rep_values};
use crate::metrics::{Metric, MetricKey, Stat};
use crate::scenario::model::Scenario;
use crate::stats;
use crate::units;

/// Client lateness worth a warning: p99 of `queue_delay` above 1 ms (exp holds it well under
/// that on an idle 2-core machine at 200 requests/s; README, "Performance").
const LATE_P99_S: f64 = 0.001;

/// Achieved send rate below this share of the scheduled rate is worth a warning.
const RATE_SHORTFALL: f64 = 0.99;

/// Client CPU use (share of the cores it may use) at which it counts as CPU-bound.
const CPU_BOUND_SHARE: f64 = 0.8;

/// Run-queue wait (seconds per wall-clock second) at which a late client is said to have been
/// starved by other processes.
const STARVED_WAIT: f64 = 0.05;

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
    let mut clients: Vec<ClientNote> = Vec::new();
    // Adaptive runs add rounds: the most any cell got is what was planned last.
    let most = cells.iter().map(|c| c.reps.len()).max().unwrap_or(0);
    let first = scenario
        .search
        .as_ref()
        .map_or(scenario.experiment.repetitions, |s| s.repetitions);
    let planned = (first.get() as usize).max(most);
    for (cell, desc) in cells.iter().zip(described) {
        let label = &desc.label;
        if cell.reps.len() < planned {
            out.push(format!(
                "cell {label}: only {} of {planned} repetitions finished (resume with `exp run --resume`)",
                cell.reps.len()
            ));
        }
        failures(cell, label, &mut out);
        retries(cell, label, &mut out);
        missing_done(cell, label, &mut out);
        clients.extend(client(cell, label));
        outputs(cell, label, &mut out);
        noise(scenario, cell, desc, &mut per_cell);
        diagnostics::repetitions(scenario, cell, desc, &mut per_cell);
    }
    out.extend(merge_client_notes(clients));
    out.extend(group_by_message(per_cell, described.len()));
    out.extend(diagnostics::underpowered(scenario, comparisons));
    for c in comparisons.iter().filter(|c| c.comparison.tests_disagree) {
        out.push(format!(
            "{} {} at {}: {} disagree (difference driven by shape or outliers)",
            c.metric,
            c.change,
            c.at,
            c.comparison.tests_name()
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

/// Requests that were sent a second time because their first connection closed before any
/// response: their TTFT and E2E count from the retry, and the time lost shows in
/// `queue_delay` (docs/faults.md).
fn retries(cell: &CellResults, label: &str, out: &mut Vec<String>) {
    let retried: u64 = cell.reps.iter().map(|r| r.summary.retried).sum();
    if retried == 0 {
        return;
    }
    let sent: u64 = cell.reps.iter().map(|r| r.summary.sent).sum();
    out.push(format!(
        "cell {label}: {retried} of {sent} requests were retried once on a fresh connection (the server closed the connection after taking the request, before any response: usually a keep-alive connection closed just as it was reused); their TTFT and E2E count from the retry and the time lost is in queue_delay"
    ));
}

/// Streams that ended after their finish reason without `data: [DONE]`: kept as measured,
/// but a server that cuts its streams short (or a proxy that drops the end) deserves a word.
fn missing_done(cell: &CellResults, label: &str, out: &mut Vec<String>) {
    let missing: u64 = cell.reps.iter().map(|r| r.summary.no_done).sum();
    if missing == 0 {
        return;
    }
    let ok: u64 = cell.reps.iter().map(|r| r.summary.completed).sum();
    out.push(format!(
        "cell {label}: {missing} of {ok} successful streams ended after their finish reason without `data: [DONE]`: counted as ok; check the server (or a proxy in between) if that is not expected"
    ));
}

/// The client's own verdict for a cell, from its worst repetition: CPU-bound when it used
/// [`CPU_BOUND_SHARE`] of the cores it could use; behind schedule when `queue_delay.p99`
/// exceeded [`LATE_P99_S`] or it sent below [`RATE_SHORTFALL`] of the scheduled rate. One
/// warning per cell, saying which and, for lateness without CPU saturation, the likely cause.
fn client(cell: &CellResults, label: &str) -> Option<ClientNote> {
    let symptoms = lateness(cell);
    let busy = busiest(cell);
    let note = |head: &str, detail: String, tail: String| ClientNote {
        label: label.to_string(),
        head: head.to_string(),
        detail,
        tail,
    };
    match busy {
        Some((share, cores)) if share >= CPU_BOUND_SHARE => {
            let per_request = worst(cell, Metric::ClientCpuPerRequest.key(), f64::max)
                .map(|c| format!(", {} CPU per request", units::seconds(c)))
                .unwrap_or_default();
            let lag = if symptoms.is_empty() {
                String::new()
            } else {
                format!(" ({})", symptoms.join(", "))
            };
            Some(note(
                "the client was CPU-bound",
                format!(
                    "it used {} of its {cores} core(s){per_request}{lag}",
                    units::percent(share)
                ),
                "latencies and throughputs may be the client's limits, not the server's (give exp more cores, or split the load)".into(),
            ))
        }
        _ if !symptoms.is_empty() => {
            let cpu = busy
                .map(|(share, cores)| {
                    let share = units::percent(share);
                    format!(" while using only {share} of its {cores} core(s)")
                })
                .unwrap_or_default();
            let cause = match worst(cell, Metric::ClientCpuWait.key(), f64::max) {
                Some(w) if w >= STARVED_WAIT => format!(
                    "its threads waited for a CPU {} of the time: other processes held the cores (a busy machine), so measure on a quieter one or give exp a core of its own",
                    units::percent(w)
                ),
                _ => {
                    "other processes competing for the CPU, or `max_concurrency` holding sends back"
                        .to_owned()
                }
            };
            Some(note(
                "the client fell behind its schedule",
                format!("{}{cpu}", symptoms.join(", ")),
                format!(
                    "{cause}; latencies from `scheduled` (ttft_sched, e2e_sched) include that wait"
                ),
            ))
        }
        _ => None,
    }
}

/// One cell's client warning, in parts, so that cells saying the same merge into one line.
struct ClientNote {
    label: String,
    /// `the client was CPU-bound`.
    head: String,
    /// This cell's numbers.
    detail: String,
    /// What it means, the same for every cell of the kind.
    tail: String,
}

/// One warning per kind of client trouble: a cell alone reads as before; several cells with
/// the same trouble share one line, each with its numbers.
fn merge_client_notes(notes: Vec<ClientNote>) -> Vec<String> {
    let mut groups: Vec<Vec<ClientNote>> = Vec::new();
    for n in notes {
        match (groups.iter_mut()).find(|g| g[0].head == n.head && g[0].tail == n.tail) {
            Some(g) => g.push(n),
            None => groups.push(vec![n]),
        }
    }
    groups
        .into_iter()
        .map(|g| match g.as_slice() {
            [n] if n.head.contains("CPU-bound") => {
                format!("cell {}: {}: {}; {}", n.label, n.head, n.detail, n.tail)
            }
            [n] => format!("cell {}: {} ({}): {}", n.label, n.head, n.detail, n.tail),
            _ => {
                let labels: Vec<&str> = g.iter().map(|n| n.label.as_str()).collect();
                let details: Vec<String> = (g.iter())
                    .map(|n| format!("{}: {}", n.label, n.detail))
                    .collect();
                format!(
                    "cells {}: {} ({}): {}",
                    labels.join(", "),
                    g[0].head,
                    details.join("; "),
                    g[0].tail
                )
            }
        })
        .collect()
}

/// The worst value of `metric` over a cell's repetitions (`pick` says which is worse).
fn worst(cell: &CellResults, metric: MetricKey, pick: fn(f64, f64) -> f64) -> Option<f64> {
    rep_values(cell, metric).into_iter().reduce(pick)
}

/// How the client fell behind its schedule, if it did: lateness and rate shortfall.
fn lateness(cell: &CellResults) -> Vec<String> {
    let mut symptoms = Vec::new();
    if let Some(l) =
        worst(cell, Metric::QueueDelay.at(Stat::P99), f64::max).filter(|l| *l > LATE_P99_S)
    {
        symptoms.push(format!("queue_delay p99 up to {}", units::seconds(l)));
    }
    let short = cell
        .reps
        .iter()
        .filter_map(|r| {
            let v = &r.summary.values;
            Some(v.get(&Metric::AchievedRate.key())? / v.get(&Metric::ScheduledRate.key())?)
        })
        .reduce(f64::min)
        .filter(|ratio| *ratio < RATE_SHORTFALL);
    if let Some(r) = short {
        let r = units::percent(r);
        symptoms.push(format!("achieved rate down to {r} of the scheduled rate"));
    }
    symptoms
}

/// The repetition where the client used the largest share of its cores: (share, cores).
fn busiest(cell: &CellResults) -> Option<(f64, f64)> {
    cell.reps
        .iter()
        .filter_map(|r| {
            let v = &r.summary.values;
            let cores = v
                .get(&Metric::ClientCores.key())
                .copied()
                .unwrap_or(1.0)
                .max(1.0);
            Some((v.get(&Metric::ClientCpuUtil.key())? / cores, cores))
        })
        .reduce(|a, b| if b.0 > a.0 { b } else { a })
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
            "cell {label}: {estimated} responses carried no usage and could not be counted (no `[target] tokenizer`, and the server's /tokenize did not answer), so their output length is the number of chunks: if the server writes several tokens per chunk, output tokens, throughputs and TPOT are wrong by that factor (ask the server for usage: exp requests `stream_options.include_usage`; or set `[target] tokenizer`)"
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
    for &metric in &scenario.analysis.primary {
        let Some(d) = desc.metrics.get(&metric) else {
            continue;
        };
        let tail = metric.is_tail();
        let limit = if tail { 2.0 * cv_warn } else { cv_warn };
        if let Some(cv) = d.cv.filter(|cv| *cv > limit) {
            noisy.push(format!(
                "{metric} {} (> {})",
                units::percent(cv),
                units::percent(limit)
            ));
        }
        if metric.stat() == Some(Stat::P99) && !stats::tail_is_reliable(requests as usize, 0.99) {
            thin_tails.push(metric.to_string());
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
fn in_run_order(cell: &CellResults, metric: MetricKey) -> Vec<f64> {
    diagnostics::in_run_order(cell, metric)
        .into_iter()
        .map(|(_, v)| v)
        .collect()
}

/// A drift warning when Mann–Kendall finds a trend of at least τ/2 over the run, unless the
/// scheduled arrival rate drifts the same way: then the workload's realisation, not the
/// system, moved (open-loop throughput follows the offered rate).
fn drift(scenario: &Scenario, cell: &CellResults, metric: MetricKey) -> Option<String> {
    let values = in_run_order(cell, metric);
    let tau = scenario.analysis.threshold(metric);
    let mk = stats::mann_kendall(&values)?;
    let d = mk.relative_drift?;
    if mk.p >= 0.05 || d.abs() < tau / 2.0 {
        return None;
    }
    let offered = stats::mann_kendall(&in_run_order(cell, Metric::ScheduledRate.key()));
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

#[cfg(test)]
mod client_tests {
    use super::*;
    use crate::analysis::RepResult;
    use crate::metrics::RepetitionSummary;
    use crate::metrics::registry::k;

    /// A cell of three repetitions; `values` are added to the last one only (the worst).
    fn cell(values: &[(&str, f64)]) -> CellResults {
        let reps = (0..3)
            .map(|round| {
                let mut summary = RepetitionSummary::default();
                let v = &mut summary.values;
                v.insert(k("queue_delay.p99"), 0.0002);
                v.insert(k("client_cpu_util"), 0.3);
                v.insert(k("client_cores"), 2.0);
                v.insert(k("client_cpu_per_request"), 0.0003);
                if round == 2 {
                    for (k, x) in values {
                        v.insert((*k).into(), *x);
                    }
                }
                RepResult {
                    round,
                    order: round as usize,
                    summary,
                    wall_seconds: 1.0,
                    client_cpu_seconds: Some(0.3),
                }
            })
            .collect();
        CellResults {
            id: "c".into(),
            vars: Default::default(),
            swept: Default::default(),
            reps,
        }
    }

    fn warn(values: &[(&str, f64)]) -> Vec<String> {
        merge_client_notes(client(&cell(values), "c").into_iter().collect())
    }

    #[test]
    fn cells_with_the_same_client_trouble_share_one_warning() {
        let late = [("queue_delay.p99", 0.004)];
        let notes: Vec<ClientNote> = ["a", "b"]
            .iter()
            .filter_map(|l| client(&cell(&late), l))
            .collect();
        let w = merge_client_notes(notes);
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(
            w[0].starts_with(
                "cells a, b: the client fell behind its schedule (a: queue_delay p99 up to 4.00 ms while using only 15.0 % of its 2 core(s); b: queue_delay p99 up to 4.00 ms while using only 15.0 % of its 2 core(s)): other processes"
            ),
            "{}",
            w[0]
        );
    }

    #[test]
    fn a_client_on_time_with_cpu_to_spare_says_nothing() {
        assert_eq!(warn(&[]), Vec::<String>::new());
    }

    #[test]
    fn streams_without_done_are_counted_and_warned_about() {
        let mut c = cell(&[]);
        let mut out = Vec::new();
        missing_done(&c, "c", &mut out);
        assert!(out.is_empty());
        for (r, missing) in c.reps.iter_mut().zip([0, 2, 1]) {
            r.summary.completed = 10;
            r.summary.no_done = missing;
        }
        missing_done(&c, "c", &mut out);
        assert_eq!(
            out,
            [
                "cell c: 3 of 30 successful streams ended after their finish reason without `data: [DONE]`: counted as ok; check the server (or a proxy in between) if that is not expected"
            ]
        );
    }

    #[test]
    fn saturated_cores_make_a_cpu_bound_warning_with_the_lag_it_caused() {
        // 1.7 cores of 2 = 85 %: CPU-bound, and late in the same repetition.
        let w = warn(&[("client_cpu_util", 1.7), ("queue_delay.p99", 0.004)]);
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(w[0].contains("CPU-bound"), "{}", w[0]);
        assert!(w[0].contains("85.0 % of its 2 core(s)"), "{}", w[0]);
        assert!(w[0].contains("queue_delay p99 up to 4.00 ms"), "{}", w[0]);
        // One busy core of two is not saturation.
        assert!(warn(&[("client_cpu_util", 1.0)]).is_empty());
    }

    #[test]
    fn lateness_without_cpu_saturation_points_elsewhere() {
        let w = warn(&[("queue_delay.p99", 0.0025)]);
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(w[0].contains("fell behind its schedule"), "{}", w[0]);
        assert!(w[0].contains("up to 2.50 ms"), "{}", w[0]);
        assert!(w[0].contains("only 15.0 % of its 2 core(s)"), "{}", w[0]);
        assert!(w[0].contains("or `max_concurrency`"), "{}", w[0]);
        // With the run-queue wait known, the cause is named.
        let w = warn(&[("queue_delay.p99", 0.0025), ("client_cpu_wait", 0.4)]);
        assert!(
            w[0].contains("waited for a CPU 40.0 % of the time"),
            "{}",
            w[0]
        );
        // Just under the threshold: nothing.
        assert!(warn(&[("queue_delay.p99", 0.0009)]).is_empty());
    }

    #[test]
    fn a_rate_shortfall_counts_as_falling_behind() {
        let w = warn(&[("achieved_rate", 180.0), ("scheduled_rate", 200.0)]);
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(w[0].contains("achieved rate down to 90.0 %"), "{}", w[0]);
        assert!(warn(&[("achieved_rate", 199.0), ("scheduled_rate", 200.0)]).is_empty());
    }
}
