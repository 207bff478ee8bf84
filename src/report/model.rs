//! The report's view model: every number pre-formatted with its unit, so templates only lay
//! things out. Its fields are the template contract documented in README.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::analysis::{Analysis, CellResults};
use crate::metrics::registry::{DEFINED, REPORTED};
use crate::metrics::{Better, Metric, MetricKey, Stat, Unit};
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
    /// The answer first: every cell's primary metrics and the findings in sentences.
    pub headline: super::headline::Headline,
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
    /// A merged run's shards, their nodes and each node's effect (`exp merge`); `None`
    /// otherwise.
    pub nodes: Option<super::nodes::NodesView>,
    /// Warnings.
    pub warnings: Vec<String>,
    /// Per-repetition key values.
    pub repetitions: Vec<RepetitionView>,
    /// Metric definitions for the footnote.
    pub definitions: Vec<NameValue>,
    /// Perplexity and retrieval accuracy per cell (`[quality]`).
    pub quality: Option<super::quality::QualityView>,
    /// The numbers behind the charts (sweeps only): what the Mermaid charts and the SVGs are
    /// drawn from. Not part of the template contract.
    #[serde(skip)]
    pub plot: Option<super::plot::SweepPlot>,
}

/// Builds the view model of a run.
pub fn build(
    manifest: &Manifest,
    scenario: &Scenario,
    cells: &[CellResults],
    analysis: &Analysis,
    simulated: Option<String>,
) -> ReportModel {
    let tables = tables(scenario, analysis, simulated.is_some());
    let swept: Vec<&crate::scenario::model::Vars> = cells.iter().map(|c| &c.swept).collect();
    let plot = super::plot::build(scenario, &swept, &analysis.cells, &tables);
    let charts = plot.as_ref().map_or(Vec::new(), super::chart::charts);
    let search = super::search::build(scenario, cells);
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
        headline: super::headline::build(super::headline::Inputs {
            scenario,
            cells,
            analysis,
            status: status_finding(manifest),
            baseline: manifest.baseline.as_ref().map(|b| {
                format!(
                    "Against the baseline `{}`: **{}** ([compare.md](compare.md))",
                    b.run_dir, b.verdict
                )
            }),
            capacity: (search.iter())
                .map(|s| match s.cell.as_str() {
                    "default" => format!("Capacity at the SLO: {}", s.headline),
                    cell => format!("Capacity at the SLO for {cell}: {}", s.headline),
                })
                .collect(),
        }),
        checks: analysis.checks.iter().map(check_view).collect(),
        tables,
        quality: super::quality::build(&analysis.quality, 1.0 - scenario.analysis.alpha),
        charts,
        search,
        comparisons: analysis.comparisons.iter().map(comparison_view).collect(),
        comparison_note: format!(
            "Adjacent levels of each swept variable with every other variable fixed{}. Sample = one value per repetition. The cells of a round share its workload draws (arrivals, lengths, prompts), so cells are compared round by round where enough rounds pair. {} Holm over all {} comparisons; g = Hedges' g (unpaired, to rank effects); MDE = the smallest change these repetitions detect with 80 % power at α (a `no change` only rules out changes above it); verdicts as defined in README (Statistics, \"Verdicts\") with τ = the noise threshold, α = {}.",
            if scenario.analysis.baseline.is_some() {
                ", and every cell against the declared baseline"
            } else {
                ""
            },
            units::design_method(
                analysis.comparisons.iter().map(|c| &c.comparison.design),
                "95"
            ),
            analysis.comparisons.len(),
            scenario.analysis.alpha
        ),
        warnings: analysis.warnings.clone(),
        repetitions: repetitions(cells),
        definitions: definitions(),
        plot,
        nodes: None,
    }
}

/// What a run that is not complete means for its numbers.
fn status_finding(manifest: &Manifest) -> Option<String> {
    use crate::store::RunStatus;
    match manifest.status {
        RunStatus::Complete => None,
        RunStatus::Partial => Some(
            "⚠ **This run is partial**: some repetitions failed and are left out of every number (see Warnings); `exp run --resume` retries them".into(),
        ),
        RunStatus::Interrupted => Some(
            "⚠ **This run was interrupted**: the numbers cover only the repetitions that finished; `exp run --resume` finishes it".into(),
        ),
        RunStatus::Running => Some(
            "⚠ **This run has not finished**: the numbers cover only the repetitions that finished so far".into(),
        ),
        RunStatus::Failed => Some(
            "❌ **This run stopped on an error**: the numbers cover only the repetitions that finished before it".into(),
        ),
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
        .redact_vars(&scenario.vars.fixed)
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
        metric: c.metric.to_string(),
        condition: c.condition.clone(),
        bound: c
            .judged
            .map_or("—".into(), |v| units::metric_value(c.metric, v)),
        result: match (&c.passed, &c.reason) {
            (true, _) => "pass".into(),
            (false, Some(r)) => format!("**FAIL** ({r})"),
            (false, None) => "**FAIL**".into(),
        },
    }
}

pub(super) fn title(key: MetricKey) -> String {
    // Acronyms in capitals, everything else as the name reads, first letter capitalised:
    // `TTFT mean`, `SLO attainment`, `MFU`, `Output throughput`.
    const ACRONYMS: [&str; 15] = [
        "ttft", "tpot", "itl", "e2e", "tps", "ttfo", "ntpot", "slo", "mfu", "mbu", "kv", "gpu",
        "cpu", "sm", "ppl",
    ];
    let words: Vec<String> = (key.metric().name().split('_'))
        .map(|w| match ACRONYMS.contains(&w) {
            true => w.to_uppercase(),
            false => w.to_string(),
        })
        .collect();
    let mut base = words.join(" ");
    if let Some(first) = base.get(..1) {
        base = first.to_uppercase() + &base[1..];
    }
    match key.stat() {
        Some(stat) => format!("{base} {}", stat.name()),
        None => base,
    }
}

/// Metrics that describe the load rather than judge the server: no better direction.
fn descriptive(metric: Metric) -> bool {
    matches!(
        metric,
        Metric::Concurrency
            | Metric::AchievedRate
            | Metric::ScheduledRate
            | Metric::TokensPerChunk
            | Metric::Duration
            | Metric::Requests
            | Metric::Completed
    )
}

/// A 95 % interval for a positive metric that stays positive: the Student-t interval when
/// its lower end is above 0, else the same interval taken on the log scale (delta method:
/// `mean · exp(±half / mean)`), marked so.
fn positive_ci(metric: MetricKey, d: &crate::stats::Description) -> String {
    let (Some(l), Some(h)) = (d.ci_low, d.ci_high) else {
        return "—".into();
    };
    let v = |x: f64| units::metric_value(metric, x);
    let positive = d.min > 0.0 && metric.unit() != Unit::Fraction;
    match (l < 0.0 && positive && d.mean > 0.0, d.half_width) {
        (true, Some(half)) => {
            let k = (half / d.mean).exp();
            format!("[{}, {}] (log scale)", v(d.mean / k), v(d.mean * k))
        }
        _ => format!("[{}, {}]", v(l), v(h)),
    }
}

/// The unit a table's title names.
fn unit_label(unit: Unit) -> &'static str {
    match unit {
        Unit::Seconds => "time",
        Unit::TokensPerSecond => "tokens/s",
        Unit::RequestsPerSecond => "requests/s",
        Unit::SamplesPerSecond => "samples/s",
        Unit::Fraction => "%",
        Unit::Watts => "W",
        Unit::Joules => "J",
        Unit::JoulesPerToken => "J/token",
        Unit::Cores => "CPU cores",
        Unit::PricePer1kTokens => "price per 1k tokens",
        Unit::Count => "count",
    }
}

fn tables(scenario: &Scenario, analysis: &Analysis, simulated: bool) -> Vec<MetricTable> {
    let mut shown: Vec<MetricKey> = scenario.analysis.primary.clone();
    for key in REPORTED {
        if !shown.contains(&key) {
            shown.push(key);
        }
    }
    let measured = |m: &MetricKey| analysis.cells.iter().any(|c| c.metrics.contains_key(m));
    let client_util = measured(&Metric::ClientCpuUtil.key());
    shown
        .into_iter()
        .filter(measured)
        // Without `[slo]` every request is good: goodput and attainment say nothing.
        .filter(|m| {
            !scenario.slo.is_empty()
                || !matches!(m.metric(), Metric::Goodput | Metric::SloAttainment)
        })
        // The simulated engine sends on time by construction: its queue delay is 0.
        .filter(|m| !(simulated && m.metric() == Metric::QueueDelay))
        // The client's CPU once: as a share of its cores, not also in cores from the probe.
        .filter(|m| !(client_util && m.metric() == Metric::ClientCpu))
        .map(|metric| {
            let rows = analysis
                .cells
                .iter()
                .map(|c| match c.metrics.get(&metric) {
                    Some(d) => MetricRow {
                        cell: c.label.clone(),
                        n: d.n,
                        mean_std: units::mean_std(metric, d),
                        ci: positive_ci(metric, d),
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
                title: title(metric),
                unit: unit_label(metric.unit()).into(),
                better: match (descriptive(metric.metric()), metric.better()) {
                    (true, _) => "describes the load",
                    (false, Better::Higher) => "↑ better",
                    (false, Better::Lower) => "↓ better",
                }
                .into(),
                name: metric.to_string(),
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
    verdict.push_str(&format!(" (τ {})", units::threshold(c.metric, c.tau)));
    if let (Verdict::Inconclusive, Some(mde)) = (c.verdict, cmp.mde) {
        verdict.push_str(&format!(", MDE {}", units::threshold(*m, mde)));
    }
    ComparisonView {
        change: c.change.clone(),
        at: c.at.clone(),
        metric: m.to_string(),
        base: units::mean_std(*m, &cmp.baseline),
        cand: units::mean_std(*m, &cmp.candidate),
        delta: units::change(cmp, *m),
        p: cmp.p_value().map_or("—".into(), units::p_value),
        p_holm: units::p_value(c.p_holm),
        g: cmp
            .hedges
            .as_ref()
            .map_or("—".into(), |h| units::signed(h.g)),
        mde: cmp.mde.map_or("—".into(), |x| units::threshold(*m, x)),
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
            let f = |key: MetricKey| {
                v.get(&key)
                    .map_or("—".into(), |x| units::metric_value(key, *x))
            };
            out.push(RepetitionView {
                cell: label.clone(),
                round: rep.round,
                requests: rep.summary.sent,
                ok: rep.summary.completed,
                output_throughput: f(Metric::OutputThroughput.key()),
                ttft_mean: f(Metric::Ttft.at(Stat::Mean)),
                ttft_p99: f(Metric::Ttft.at(Stat::P99)),
                tpot_mean: f(Metric::Tpot.at(Stat::Mean)),
                e2e_mean: f(Metric::E2e.at(Stat::Mean)),
                queue_delay_p99: f(Metric::QueueDelay.at(Stat::P99)),
            });
        }
    }
    out
}

fn definitions() -> Vec<NameValue> {
    let metrics = DEFINED.iter().map(|(m, text)| (m.name(), *text));
    let terms = [
        (
            "window",
            "first scheduled send → last measured request done",
        ),
        ("percentiles", "type 7 (linear interpolation, as NumPy)"),
        (
            "per repetition",
            "each metric is one number per repetition; statistics use those numbers",
        ),
    ];
    (metrics.chain(terms))
        .map(|(n, t)| NameValue::new(n, t))
        .collect()
}
