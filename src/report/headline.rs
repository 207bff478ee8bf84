//! The top of the report: the answer a reviewer reads first (issue 15). One table of every
//! cell's primary metrics (what the terminal prints), then findings in sentences: for a load
//! sweep, where throughput saturates and where the SLO stops being met; for treatments, the
//! comparisons whose verdict is a change; failed checks; the warnings that matter most; and,
//! for a run made with `--baseline`, that comparison's verdict.

use serde::Serialize;

use crate::analysis::{Analysis, CellAnalysis, CellResults};
use crate::metrics::{Metric, MetricKey, Unit};
use crate::scenario::model::{CheckOp, Scenario, Value};
use crate::stats::Verdict;
use crate::units;

/// Load steps whose throughput grew by less than this share of the load's growth saturate.
const SATURATION_EFFICIENCY: f64 = 0.5;

/// SLO attainment that counts as met when no `[checks]` entry or `[search]` says otherwise.
const DEFAULT_ATTAINMENT: f64 = 0.99;

/// Comparisons listed by name before the rest are counted.
const MAX_LISTED: usize = 8;

/// The answer first.
#[derive(Debug, Clone, Serialize)]
pub struct Headline {
    /// Column titles: the primary metrics, then `errors`.
    pub columns: Vec<String>,
    /// One row per cell, in matrix order.
    pub rows: Vec<HeadlineRow>,
    /// Sentences, most important first (Markdown).
    pub findings: Vec<String>,
}

/// One cell of the headline table.
#[derive(Debug, Clone, Serialize)]
pub struct HeadlineRow {
    /// Cell label.
    pub cell: String,
    /// Repetitions.
    pub n: usize,
    /// Means of the columns' metrics, formatted (`—` when not measured).
    pub values: Vec<String>,
}

/// What the headline is built from.
pub struct Inputs<'a> {
    /// The scenario (primary metrics, load variables, `[slo]`, `[checks]`).
    pub scenario: &'a Scenario,
    /// Each cell's repetitions (their swept variables), in matrix order.
    pub cells: &'a [CellResults],
    /// The analysis.
    pub analysis: &'a Analysis,
    /// The run's status when it is not `complete`, with what that means.
    pub status: Option<String>,
    /// The `--baseline` comparison's verdict line, when the run made one.
    pub baseline: Option<String>,
    /// `[search]` runs: the capacity at the SLO, one sentence per searched cell.
    pub capacity: Vec<String>,
}

/// Builds the top of the report.
pub fn build(inputs: Inputs) -> Headline {
    let Inputs {
        scenario,
        cells,
        analysis,
        ..
    } = inputs;
    let mut columns: Vec<MetricKey> = scenario.analysis.primary.clone();
    columns.retain(|m| analysis.cells.iter().any(|c| c.metrics.contains_key(m)));
    let errors = Metric::ErrorRate.key();
    let mut rows: Vec<(Option<f64>, HeadlineRow)> = (cells.iter().zip(&analysis.cells))
        .map(|(cell, c)| {
            // A search's probes run in search order; the table reads by load.
            let load = (scenario.search.as_ref())
                .and_then(|s| cell.swept.get(&s.variable))
                .and_then(number);
            let row = HeadlineRow {
                cell: c.label.clone(),
                n: c.n,
                values: (columns.iter().chain([&errors]))
                    .map(|&m| mean(c, m).map_or("—".into(), |v| units::metric_value(m, v)))
                    .collect(),
            };
            (load, row)
        })
        .collect();
    rows.sort_by(|a, b| match (a.0, b.0) {
        (Some(x), Some(y)) => x.total_cmp(&y),
        _ => std::cmp::Ordering::Equal,
    });
    let rows = rows.into_iter().map(|(_, r)| r).collect();
    let mut findings = Vec::new();
    findings.extend(inputs.status);
    findings.extend(inputs.baseline);
    findings.extend(failed_checks(analysis));
    findings.extend(inputs.capacity);
    // A search's probes are not a designed load sweep: its answer is the capacity above.
    if scenario.search.is_none() {
        findings.extend(load_findings(scenario, cells, analysis));
    }
    match joined_findings(analysis) {
        Some(lines) => findings.extend(lines),
        None => findings.extend(treatment_findings(analysis)),
    }
    if let Some(first) = analysis.warnings.first() {
        let n = analysis.warnings.len();
        findings.push(match n {
            1 => format!("⚠ {first}"),
            _ => format!("⚠ {n} warnings under Warnings; the first: {first}"),
        });
    }
    Headline {
        columns: (columns.iter())
            .map(|m| super::model::title(*m))
            .chain(["Errors".to_string()])
            .collect(),
        rows,
        findings,
    }
}

fn mean(c: &CellAnalysis, m: MetricKey) -> Option<f64> {
    c.metrics.get(&m).map(|d| d.mean)
}

fn failed_checks(analysis: &Analysis) -> Vec<String> {
    (analysis.checks.iter())
        .filter(|c| !c.passed)
        .map(|c| {
            let on = c.judged.map_or(String::new(), |v| {
                format!(" (judged on {})", units::metric_value(c.metric, v))
            });
            let why = c
                .reason
                .as_deref()
                .map_or(String::new(), |r| format!(": {r}"));
            format!(
                "❌ check failed: {} `{} {}`{on}{why}",
                c.cell, c.metric, c.condition
            )
        })
        .collect()
}

/// A numeric level of a swept variable.
fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Int(i) => Some(*i as f64),
        Value::Float(f) => Some(*f),
        _ => None,
    }
}

/// One level of a load sweep: its value, as a number and as written, and its cell.
struct Level<'a> {
    value: f64,
    text: String,
    cell: &'a CellAnalysis,
}

/// For each load variable swept with two or more numeric levels: where throughput saturates
/// and where the SLO stops being met, per combination of the other swept variables.
fn load_findings(scenario: &Scenario, cells: &[CellResults], analysis: &Analysis) -> Vec<String> {
    let mut out = Vec::new();
    for load in &scenario.analysis.load {
        if !scenario.vars.sweep.iter().any(|(n, _)| n == load) {
            continue;
        }
        // Cells grouped by the other swept variables, each group sorted by load.
        let mut groups: Vec<(String, Vec<Level>)> = Vec::new();
        for (cell, desc) in cells.iter().zip(&analysis.cells) {
            let Some((value, text)) = cell
                .swept
                .get(load)
                .and_then(|v| Some((number(v)?, v.to_string())))
            else {
                continue;
            };
            let level = Level {
                value,
                text,
                cell: desc,
            };
            let mut others = cell.swept.clone();
            others.remove(load);
            let at = crate::analysis::cell_label(&others);
            match groups.iter_mut().find(|(a, _)| *a == at) {
                Some((_, g)) => g.push(level),
                None => groups.push((at, vec![level])),
            }
        }
        for (at, mut group) in groups {
            if group.len() < 2 {
                continue;
            }
            group.sort_by(|a, b| a.value.total_cmp(&b.value));
            let at = match at.as_str() {
                "default" => String::new(),
                a => format!(" at {a}"),
            };
            out.extend(slo_limit(scenario, load, &at, &group));
            out.extend(saturation(scenario, load, &at, &group));
        }
    }
    out
}

fn saturation(scenario: &Scenario, load: &str, at: &str, group: &[Level]) -> Option<String> {
    let metric = [Metric::OutputThroughput, Metric::RequestThroughput]
        .map(Metric::key)
        .into_iter()
        .find(|m| group.iter().all(|l| mean(l.cell, *m).is_some()))?;
    let name = super::model::title(metric);
    let value = |v: f64| units::metric_value(metric, v);
    let (first, last) = (group.first()?, group.last()?);
    for w in group.windows(2) {
        let (a, b) = (&w[0], &w[1]);
        let (l0, l1) = (a.value, b.value);
        let (t0, t1) = (mean(a.cell, metric)?, mean(b.cell, metric)?);
        if l0 <= 0.0 || t0 <= 0.0 {
            continue;
        }
        let (load_ratio, gain) = (l1 / l0, t1 / t0);
        if gain - 1.0 < SATURATION_EFFICIENCY * (load_ratio - 1.0) {
            let latency = latency_jump(scenario, a.cell, b.cell);
            return Some(format!(
                "**{name} saturates between {load} = {} and {}**{at}: ×{} the load gave ×{} the throughput ({} → {}){latency}",
                a.text,
                b.text,
                units::sig(load_ratio, 3),
                units::sig(gain, 3),
                value(t0),
                value(t1),
            ));
        }
    }
    let (t0, t1) = (mean(first.cell, metric)?, mean(last.cell, metric)?);
    Some(format!(
        "{name} keeps up with the load{at} from {load} = {} to {} ({} → {}): no saturation in this range",
        first.text,
        last.text,
        value(t0),
        value(t1),
    ))
}

/// `; TTFT mean 68.5 ms → 4.71 s` for the primary latency metrics across a step.
fn latency_jump(scenario: &Scenario, c0: &CellAnalysis, c1: &CellAnalysis) -> String {
    let parts: Vec<String> = (scenario.analysis.primary.iter())
        .filter(|m| m.unit() == Unit::Seconds)
        .take(2)
        .filter_map(|&m| {
            Some(format!(
                "{} {} → {}",
                super::model::title(m),
                units::metric_value(m, mean(c0, m)?),
                units::metric_value(m, mean(c1, m)?)
            ))
        })
        .collect();
    match parts.is_empty() {
        true => String::new(),
        false => format!("; {}", parts.join(", ")),
    }
}

/// The attainment that counts as meeting the SLO: a `[checks]` bound on `slo_attainment`,
/// else `[search]`'s target, else [`DEFAULT_ATTAINMENT`].
fn attainment_target(scenario: &Scenario) -> f64 {
    let attainment = Metric::SloAttainment.key();
    (scenario.checks.iter())
        .find(|c| c.metric == attainment && matches!(c.op, CheckOp::Ge | CheckOp::Gt))
        .map(|c| c.threshold)
        .or(scenario.search.as_ref().map(|s| s.target))
        .unwrap_or(DEFAULT_ATTAINMENT)
}

fn slo_limit(scenario: &Scenario, load: &str, at: &str, group: &[Level]) -> Option<String> {
    if scenario.slo.is_empty() {
        return None;
    }
    let key = Metric::SloAttainment.key();
    let target = attainment_target(scenario);
    let slo: Vec<String> = (scenario.slo.iter())
        .map(|(m, d)| format!("{} ≤ {}", m.name(), units::seconds(d.as_secs_f64())))
        .collect();
    let slo = slo.join(", ");
    let pct = units::percent;
    let first_miss = group
        .iter()
        .position(|l| mean(l.cell, key).is_some_and(|a| a < target))?;
    let (miss_load, miss) = (&group[first_miss].text, mean(group[first_miss].cell, key)?);
    Some(match first_miss {
        0 => format!(
            "**The SLO ({slo}) is not met at any load**{at}: attainment {} at {load} = {} (target {})",
            pct(miss),
            miss_load,
            pct(target)
        ),
        i => {
            let (ok_load, ok) = (&group[i - 1].text, mean(group[i - 1].cell, key)?);
            format!(
                "**The SLO ({slo}) holds up to {load} = {} and fails from {}**{at}: attainment {} → {} (target {})",
                ok_load,
                miss_load,
                pct(ok),
                pct(miss),
                pct(target)
            )
        }
    })
}

/// With quality measured: one line per pair of cells compared, joining speed and quality —
/// "`kv_cache_dtype=auto → fp8`: TPOT mean −12 % [−14, −10] improvement · PPL +0.3 % [..]
/// within noise · Retrieval accuracy −1 pt [..] no change". Speed shows the metrics that
/// changed, or the first one compared when none did. `None` without quality comparisons.
fn joined_findings(analysis: &Analysis) -> Option<Vec<String>> {
    use crate::analysis::quality::QUALITY_METRICS;
    let rows = &analysis.comparisons;
    if !rows.iter().any(|r| QUALITY_METRICS.contains(&r.metric)) {
        return None;
    }
    let mut pairs: Vec<(&str, &str)> = Vec::new();
    for r in rows {
        let pair = (r.baseline_cell.as_str(), r.candidate_cell.as_str());
        if !pairs.contains(&pair) {
            pairs.push(pair);
        }
    }
    let changed = |v: Verdict| {
        matches!(
            v,
            Verdict::Regression
                | Verdict::Improvement
                | Verdict::PossibleRegression
                | Verdict::PossibleImprovement
        )
    };
    let mut out: Vec<String> = Vec::new();
    for (base, cand) in pairs.iter().take(MAX_LISTED) {
        type Row<'r> = &'r crate::analysis::ComparisonRow;
        let of_pair: Vec<Row> = (rows.iter())
            .filter(|r| r.baseline_cell == *base && r.candidate_cell == *cand)
            .collect();
        let (quality, speed): (Vec<Row>, Vec<Row>) =
            (of_pair.iter().copied()).partition(|r| QUALITY_METRICS.contains(&r.metric));
        let mut shown: Vec<Row> = (speed.iter().copied())
            .filter(|r| changed(r.verdict))
            .collect();
        if shown.is_empty() {
            shown.extend(speed.first().copied());
        }
        let part = |r: &Row| {
            format!(
                "{} {} {}",
                super::model::title(r.metric),
                units::change(&r.comparison, r.metric),
                r.verdict
            )
        };
        let parts: Vec<String> = (shown.iter().chain(&quality)).map(part).collect();
        let Some(first) = of_pair.first() else {
            continue;
        };
        let verdicts = || of_pair.iter().map(|r| r.verdict);
        let mark =
            if verdicts().any(|v| matches!(v, Verdict::Regression | Verdict::PossibleRegression)) {
                "❌"
            } else if verdicts().any(changed) {
                "✅"
            } else {
                "➖"
            };
        let at = match first.at.as_str() {
            "—" | "" => String::new(),
            a => format!(" at {a}"),
        };
        out.push(format!(
            "{mark} {}{at}: {}",
            first.change,
            parts.join(" · ")
        ));
    }
    if pairs.len() > MAX_LISTED {
        out.push(format!(
            "… and {} more pairs of cells (see Comparisons)",
            pairs.len() - MAX_LISTED
        ));
    }
    Some(out)
}

/// The comparisons between treatments whose verdict is a change, or a line saying none is.
fn treatment_findings(analysis: &Analysis) -> Vec<String> {
    let rows = &analysis.comparisons;
    if rows.is_empty() {
        return vec![];
    }
    let changed: Vec<_> = (rows.iter())
        .filter(|r| {
            matches!(
                r.verdict,
                Verdict::Regression
                    | Verdict::Improvement
                    | Verdict::PossibleRegression
                    | Verdict::PossibleImprovement
            )
        })
        .collect();
    if changed.is_empty() {
        let count = |v: Verdict| rows.iter().filter(|r| r.verdict == v).count();
        let (invalid, unsure) = (count(Verdict::Invalid), count(Verdict::Inconclusive));
        let mut parts = Vec::new();
        if invalid > 0 {
            parts.push(format!(
                "{invalid} invalid (the data cannot support a verdict)"
            ));
        }
        if unsure > 0 {
            parts.push(format!(
                "{unsure} inconclusive (too noisy to rule a change in or out)"
            ));
        }
        let settled = rows.len() - invalid - unsure;
        return vec![match parts.is_empty() {
            true => format!(
                "No comparison between treatments found a change beyond its threshold ({} comparisons; see Comparisons)",
                rows.len()
            ),
            false => format!(
                "No comparison between treatments found a change, but of {} comparisons {}{}; see Comparisons",
                rows.len(),
                parts.join(" and "),
                match settled {
                    0 => String::new(),
                    n => format!(", {n} settled as no change or within noise"),
                }
            ),
        }];
    }
    let mut out: Vec<String> = (changed.iter().take(MAX_LISTED))
        .map(|r| {
            let at = match r.at.as_str() {
                "—" | "" => String::new(),
                a => format!(" at {a}"),
            };
            let mark = match r.verdict {
                Verdict::Regression | Verdict::PossibleRegression => "❌",
                _ => "✅",
            };
            format!(
                "{mark} {}{at}: {} {} — {}",
                r.change,
                r.metric,
                units::change(&r.comparison, r.metric),
                r.verdict
            )
        })
        .collect();
    if changed.len() > MAX_LISTED {
        out.push(format!(
            "… and {} more changes (see Comparisons)",
            changed.len() - MAX_LISTED
        ));
    }
    out
}
