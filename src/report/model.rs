//! The report's view model: every number pre-formatted with its unit, so templates only lay
//! things out. Its fields are the template contract documented in README.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::analysis::{Analysis, CellResults};
use crate::metrics::names::{self, Better, Unit};
use crate::scenario::model::Scenario;
use crate::stats::Verdict;
use crate::store::Manifest;
use crate::units;

pub use super::view::*;

/// Everything a report template can use.
#[derive(Debug, Clone, Serialize)]
pub struct ReportModel {
    /// Layout version of this model.
    pub schema_version: u32,
    /// `exp report: <name>`.
    pub title: String,
    /// The scenario's description.
    pub description: String,
    /// One line summarising verdicts and checks, if there are any.
    pub verdict_line: Option<String>,
    /// Scenario file and hash.
    pub scenario: ScenarioView,
    /// Run identity and environment.
    pub run: RunView,
    /// Design of the experiment.
    pub design: DesignView,
    /// For simulated runs: which model, GPU and preset produced the numbers.
    pub simulated: Option<String>,
    /// The fixed variables.
    pub fixed: Vec<NameValue>,
    /// Check outcomes.
    pub checks: Vec<CheckView>,
    /// One table per shown metric.
    pub tables: Vec<MetricTable>,
    /// Mermaid charts of the primary metrics over the swept variable (sweeps only).
    pub charts: Vec<super::ChartView>,
    /// Capacity at the SLO, one per searched cell (`[search]` runs only).
    pub search: Vec<super::search::SearchView>,
    /// Comparisons with verdicts.
    pub comparisons: Vec<ComparisonView>,
    /// How comparisons were made (tests, corrections, thresholds).
    pub comparison_note: String,
    /// Warnings.
    pub warnings: Vec<String>,
    /// Per-repetition key values.
    pub repetitions: Vec<RepetitionView>,
    /// Metric definitions for the footnote.
    pub definitions: Vec<NameValue>,
    /// The numbers behind the charts (sweeps only): what the Mermaid charts and the SVGs are
    /// drawn from. Not part of the template contract.
    #[serde(skip)]
    pub plot: Option<super::plot::SweepPlot>,
}

/// Metrics shown in tables after the primary ones, when measured.
const SHOWN: &[&str] = &[
    "request_throughput",
    "output_throughput",
    "goodput",
    "slo_attainment",
    "error_rate",
    "ttft.mean",
    "ttft.p99",
    "tpot.mean",
    "itl.p99",
    "e2e.mean",
    "e2e.p99",
    "queue_delay.p99",
    "client_cpu_per_request",
    "client_cpu_util",
    "client_cpu_wait",
    "concurrency",
    "mfu",
    "mbu",
    "gpu_mem_util",
    "sm_util",
    "power",
    "energy_per_token",
    "kv_cache_usage",
    "server_cpu",
    "client_cpu",
    "net_util",
    "cost_per_1k_tokens",
    "cost_per_1k_output_tokens",
];

/// Builds the view model of a run.
pub fn build(
    manifest: &Manifest,
    scenario: &Scenario,
    cells: &[CellResults],
    analysis: &Analysis,
    simulated: Option<String>,
) -> ReportModel {
    let tables = tables(scenario, analysis);
    let swept: Vec<&crate::scenario::model::Vars> = cells.iter().map(|c| &c.swept).collect();
    let plot = super::plot::build(scenario, &swept, &analysis.cells, &tables);
    let charts = plot.as_ref().map_or(Vec::new(), super::chart::charts);
    ReportModel {
        schema_version: crate::store::SCHEMA_VERSION,
        title: format!("exp report: {}", manifest.scenario_name),
        description: scenario.experiment.description.trim().to_string(),
        verdict_line: verdict_line(analysis),
        scenario: ScenarioView {
            file: manifest.scenario_file.clone(),
            sha256_short: manifest.scenario_sha256.chars().take(12).collect(),
        },
        run: RunView {
            id: manifest.run_id.clone(),
            status: manifest.status.to_string(),
            started: manifest.started.clone(),
            ended: manifest.ended.clone(),
            executor: executor_text(manifest),
            exp_version: manifest.exp_version.clone(),
            git_revision: manifest.git_revision.clone(),
            host: manifest.host.clone(),
            overrides: manifest.overrides.clone(),
        },
        design: DesignView {
            cells: cells.len(),
            repetitions: manifest.repetitions,
            order: format!("{:?}", manifest.order)
                .to_lowercase()
                .replace("randomizedblocks", "randomized blocks"),
            seed: manifest.seed,
            adaptive: manifest.adaptive.as_ref().map(adaptive_text),
        },
        simulated,
        fixed: fixed_vars(scenario),
        checks: analysis.checks.iter().map(check_view).collect(),
        tables,
        charts,
        search: super::search::build(scenario, cells),
        comparisons: analysis.comparisons.iter().map(comparison_view).collect(),
        comparison_note: format!(
            "Adjacent levels of each swept variable with every other variable fixed{}. Sample = one value per repetition. Δ = candidate / baseline − 1 with its Fieller 95 % CI; p = Welch's t-test; Holm over all {} comparisons; g = Hedges' g; MDE = the smallest change these repetitions detect with 80 % power at α (a `no change` only rules out changes above it); verdicts follow statistics.md §2.6 with τ = the noise threshold, α = {}.",
            if scenario.analysis.baseline.is_some() {
                ", and every cell against the declared baseline"
            } else {
                ""
            },
            analysis.comparisons.len(),
            scenario.analysis.alpha
        ),
        warnings: analysis.warnings.clone(),
        repetitions: repetitions(cells),
        definitions: definitions(),
        plot,
    }
}

/// What executed the requests, with the server launches when exp launched a server:
/// `openai-completions at …; 12 server launches (1 failed), engine 0.9.2`.
fn executor_text(manifest: &Manifest) -> String {
    let launches = &manifest.launches;
    if launches.is_empty() {
        return manifest.executor.clone();
    }
    let failed = launches.iter().filter(|l| l.failure.is_some()).count();
    let mut versions: Vec<&str> = launches
        .iter()
        .filter_map(|l| l.engine_version.as_deref())
        .collect();
    versions.sort_unstable();
    versions.dedup();
    let mut text = format!("{}; {} server launches", manifest.executor, launches.len());
    if failed > 0 {
        text.push_str(&format!(" ({failed} failed)"));
    }
    if !versions.is_empty() {
        text.push_str(&format!(", engine {}", versions.join(" / ")));
    }
    text
}

/// The fixed variables, without a searched one (its fixed value only stands in for the
/// loads the search chooses).
fn fixed_vars(scenario: &Scenario) -> Vec<NameValue> {
    scenario
        .vars
        .fixed
        .iter()
        .filter(|(k, _)| scenario.search.as_ref().is_none_or(|s| &s.variable != *k))
        .map(|(k, v)| NameValue::new(k, v.to_string()))
        .collect()
}

/// The adaptive rule and its outcome, for the design block.
fn adaptive_text(record: &crate::store::AdaptiveRecord) -> String {
    let target = record.target_ci.map_or("±2 % (tails ±5 %)".into(), |t| {
        format!("±{}", units::percent(t))
    });
    let outcome = match &record.stop {
        Some(stop) => crate::adaptive::stop_text(stop, record.min),
        None => "still adding rounds (interrupted)".into(),
    };
    format!(
        "adaptive, {} to {} rounds until every primary metric's 95 % CI is within {target} of its mean: {outcome}",
        record.min, record.max
    )
}

fn verdict_line(analysis: &Analysis) -> Option<String> {
    let mut parts = Vec::new();
    let failed = analysis.checks.iter().filter(|c| !c.passed).count();
    if !analysis.checks.is_empty() {
        parts.push(if failed == 0 {
            format!("all {} checks passed", analysis.checks.len())
        } else {
            format!("{failed} of {} checks FAILED", analysis.checks.len())
        });
    }
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for c in &analysis.comparisons {
        *counts.entry(c.verdict.to_string()).or_default() += 1;
    }
    if !counts.is_empty() {
        let text: Vec<String> = counts.iter().map(|(v, n)| format!("{n} {v}")).collect();
        parts.push(format!("comparisons: {}", text.join(", ")));
    }
    (!parts.is_empty()).then(|| parts.join(" · "))
}

fn check_view(c: &crate::analysis::CheckOutcome) -> CheckView {
    CheckView {
        cell: c.cell.clone(),
        metric: c.metric.clone(),
        condition: c.condition.clone(),
        bound: c
            .judged
            .map_or("—".into(), |v| units::metric_value(&c.metric, v)),
        result: match (&c.passed, &c.reason) {
            (true, _) => "pass".into(),
            (false, Some(r)) => format!("**FAIL** ({r})"),
            (false, None) => "**FAIL**".into(),
        },
    }
}

fn title(name: &str) -> String {
    let (base, stat) = name.split_once('.').unwrap_or((name, ""));
    let base = match base {
        "ttft" | "tpot" | "itl" | "e2e" | "tps" => base.to_uppercase(),
        other => other.replace('_', " "),
    };
    if stat.is_empty() {
        base
    } else {
        format!("{base} {stat}")
    }
}

fn tables(scenario: &Scenario, analysis: &Analysis) -> Vec<MetricTable> {
    let mut names_shown: Vec<String> = scenario.analysis.primary.clone();
    for n in SHOWN {
        if !names_shown.iter().any(|s| s == n) {
            names_shown.push(n.to_string());
        }
    }
    names_shown
        .into_iter()
        .filter(|m| analysis.cells.iter().any(|c| c.metrics.contains_key(m)))
        .map(|metric| {
            let info = names::info(&metric);
            let rows = analysis
                .cells
                .iter()
                .map(|c| match c.metrics.get(&metric) {
                    Some(d) => MetricRow {
                        cell: c.label.clone(),
                        n: d.n,
                        mean_std: units::mean_std(&metric, d),
                        ci: match (d.ci_low, d.ci_high) {
                            (Some(l), Some(h)) => format!(
                                "[{}, {}]",
                                units::metric_value(&metric, l),
                                units::metric_value(&metric, h)
                            ),
                            _ => "—".into(),
                        },
                        cv: d.cv.map_or("—".into(), units::percent),
                    },
                    None => MetricRow {
                        cell: c.label.clone(),
                        n: 0,
                        mean_std: "—".into(),
                        ci: "—".into(),
                        cv: "—".into(),
                    },
                })
                .collect();
            MetricTable {
                title: title(&metric),
                unit: match info.map(|i| i.unit) {
                    Some(Unit::Seconds) => "time",
                    Some(Unit::TokensPerSecond) => "tokens/s",
                    Some(Unit::RequestsPerSecond) => "requests/s",
                    Some(Unit::Fraction) => "%",
                    Some(Unit::Watts) => "W",
                    Some(Unit::Joules) => "J",
                    Some(Unit::JoulesPerToken) => "J/token",
                    Some(Unit::Cores) => "CPU cores",
                    Some(Unit::PricePer1kTokens) => "price per 1k tokens",
                    _ => "count",
                }
                .into(),
                better: match info.map(|i| i.better) {
                    Some(Better::Higher) => "↑ better",
                    _ => "↓ better",
                }
                .into(),
                name: metric,
                rows,
            }
        })
        .collect()
}

fn comparison_view(c: &crate::analysis::ComparisonRow) -> ComparisonView {
    let m = &c.metric;
    let cmp = &c.comparison;
    let label = c.verdict.to_string();
    let mut verdict = match c.verdict {
        Verdict::Regression | Verdict::Improvement => format!("**{label}**"),
        _ => label.clone(),
    };
    verdict.push_str(&format!(" (τ {})", units::percent(c.tau)));
    if let (Verdict::Inconclusive, Some(mde)) = (c.verdict, cmp.mde) {
        verdict.push_str(&format!(", MDE {}", units::percent(mde)));
    }
    ComparisonView {
        change: c.change.clone(),
        at: c.at.clone(),
        metric: m.clone(),
        base: units::mean_std(m, &cmp.baseline),
        cand: units::mean_std(m, &cmp.candidate),
        delta: units::relative_change(cmp),
        p: cmp.p_value().map_or("—".into(), units::p_value),
        p_holm: units::p_value(c.p_holm),
        g: cmp
            .hedges
            .as_ref()
            .map_or("—".into(), |h| format!("{:+.2}", h.g)),
        mde: cmp.mde.map_or("—".into(), units::percent),
        verdict,
        label,
    }
}

fn repetitions(cells: &[CellResults]) -> Vec<RepetitionView> {
    let mut out = Vec::new();
    for cell in cells {
        let label = crate::analysis::cell_label(&cell.swept);
        for rep in &cell.reps {
            let v = &rep.summary.values;
            let f = |name: &str| {
                v.get(name)
                    .map_or("—".into(), |x| units::metric_value(name, *x))
            };
            out.push(RepetitionView {
                cell: label.clone(),
                round: rep.round,
                requests: rep.summary.sent,
                ok: rep.summary.completed,
                output_throughput: f("output_throughput"),
                ttft_mean: f("ttft.mean"),
                ttft_p99: f("ttft.p99"),
                tpot_mean: f("tpot.mean"),
                e2e_mean: f("e2e.mean"),
                queue_delay_p99: f("queue_delay.p99"),
            });
        }
    }
    out
}

fn definitions() -> Vec<NameValue> {
    [
        ("ttft", "first content chunk − sent"),
        (
            "ttft_sched",
            "first content chunk − scheduled send (includes client queueing)",
        ),
        ("tpot", "(e2e − ttft) / (output tokens − 1)"),
        ("itl", "gap between consecutive content chunks"),
        ("e2e", "last content chunk − sent"),
        ("queue_delay", "sent − scheduled (client lateness)"),
        (
            "output_throughput",
            "Σ output tokens (server usage) / window",
        ),
        ("goodput", "requests ok and within every SLO / window"),
        (
            "window",
            "first scheduled send → last measured request done",
        ),
        ("percentiles", "type 7 (linear interpolation, as NumPy)"),
        (
            "per repetition",
            "each metric is one number per repetition; statistics use those numbers",
        ),
    ]
    .into_iter()
    .map(|(n, t)| NameValue::new(n, t))
    .collect()
}
