//! The capacity-at-the-SLO block of the report (`[search]` runs): the answer with its bracket,
//! the attainment of every probe with its CI, and a chart of attainment against load.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

use super::chart::{ChartView, PALETTE};
use crate::analysis::CellResults;
use crate::metrics::Metric;
use crate::scenario::model::Scenario;
use crate::search::{self, Outcome, Status};
use crate::units;

/// One searched cell.
#[derive(Debug, Clone, Serialize)]
pub struct SearchView {
    /// Whose capacity (`default`, or the other swept variables).
    pub cell: String,
    /// The load variable.
    pub variable: String,
    /// `converged`, `below_range`, `above_range` or `unfinished`.
    pub status: String,
    /// The answer in one line, with its bracket.
    pub headline: String,
    /// What passing means: `mean SLO attainment ≥ 99 % (ttft ≤ 200 ms)`.
    pub criterion: String,
    /// Probes by load.
    pub probes: Vec<SearchProbeRow>,
    /// Attainment (and the target) against load.
    pub chart: ChartView,
    /// Probes that passed above a failing load, when attainment was not monotone.
    pub note: Option<String>,
    /// The numbers behind the chart (the attainment SVG is drawn from them).
    #[serde(skip)]
    pub outcome: Outcome,
}

/// One probe.
#[derive(Debug, Clone, Serialize)]
pub struct SearchProbeRow {
    /// Load with its unit.
    pub load: String,
    /// Repetitions.
    pub n: usize,
    /// Mean SLO attainment.
    pub attainment: String,
    /// 95 % CI of the mean attainment.
    pub ci: String,
    /// `pass` or `fail`.
    pub result: String,
}

/// The capacity blocks of a run: one per searched cell, none without `[search]`.
pub fn build(scenario: &Scenario, cells: &[CellResults]) -> Vec<SearchView> {
    scenario.search.as_ref().map_or(Vec::new(), |spec| {
        views(&search::summarize(spec, cells), &scenario.slo)
    })
}

/// The views of every search of a run.
pub fn views(outcomes: &[Outcome], slo: &BTreeMap<Metric, Duration>) -> Vec<SearchView> {
    let bounds: Vec<String> = slo
        .iter()
        .map(|(m, d)| format!("{m} ≤ {}", units::seconds(d.as_secs_f64())))
        .collect();
    outcomes
        .iter()
        .map(|o| SearchView {
            cell: o.cell.clone(),
            variable: o.variable.clone(),
            status: o.status.as_str().into(),
            headline: headline(o),
            criterion: format!(
                "mean SLO attainment ≥ {} over the repetitions of a probe (a request attains when it succeeds with {})",
                units::percent(o.target),
                bounds.join(" and ")
            ),
            probes: o.probes.iter().map(|p| row(o, p)).collect(),
            chart: chart(o),
            note: (!o.non_monotone.is_empty()).then(|| {
                let loads: Vec<String> = o
                    .non_monotone
                    .iter()
                    .map(|x| search::load_text(&o.variable, *x))
                    .collect();
                format!(
                    "attainment did not fall monotonically: {} passed above a failing load; the capacity is the highest pass below the first failure",
                    loads.join(", ")
                )
            }),
            outcome: o.clone(),
        })
        .collect()
}

fn headline(o: &Outcome) -> String {
    let load = |x: f64| search::load_text(&o.variable, x);
    let target = units::percent(o.target);
    match (o.status, o.capacity, o.first_failing) {
        (Status::Converged, Some(c), Some(f)) => format!(
            "**{}**: the highest {} probed that meets the target; {} missed it, so the capacity lies in [{}, {}) (bracket {} wide, tolerance {})",
            load(c),
            o.variable,
            load(f),
            load(c),
            load(f),
            units::percent((f - c) / c),
            units::percent(o.tolerance)
        ),
        (Status::AboveRange, Some(c), _) => format!(
            "**at least {}**: the highest load the search may try still meets {target}; raise `search.high`",
            load(c)
        ),
        (Status::BelowRange, _, Some(f)) => format!(
            "**below {}**: even the lowest load the search may try misses {target}; lower `search.low`",
            load(f)
        ),
        (_, c, f) => format!(
            "**unfinished** (interrupted; continue with `exp run --resume`): meets the target at {}, misses it at {}",
            c.map_or("—".into(), load),
            f.map_or("—".into(), load)
        ),
    }
}

fn row(o: &Outcome, p: &search::ProbeSummary) -> SearchProbeRow {
    SearchProbeRow {
        load: search::load_text(&o.variable, p.load),
        n: p.n,
        attainment: percent4(p.mean),
        ci: p.ci.map_or("—".into(), |(l, h)| {
            format!("[{}, {}]", percent4(l), percent4(h))
        }),
        result: if p.passed { "pass" } else { "**fail**" }.into(),
    }
}

/// Attainment with four significant digits: 98.99 % must not read as 99.0 %.
fn percent4(x: f64) -> String {
    format!("{} %", units::sig(100.0 * x, 4))
}

fn chart(o: &Outcome) -> ChartView {
    let pct = |x: f64| search::load_number(100.0 * x);
    let categories: Vec<String> = o
        .probes
        .iter()
        .map(|p| format!("\"{}\"", search::load_number(p.load)))
        .collect();
    let attained: Vec<String> = o.probes.iter().map(|p| pct(p.mean)).collect();
    let target: Vec<String> = o.probes.iter().map(|_| pct(o.target)).collect();
    ChartView {
        metric: Metric::SloAttainment.name().into(),
        title: format!("SLO attainment vs {} ({})", o.variable, o.cell),
        x_title: o.variable.clone(),
        categories: format!("[{}]", categories.join(", ")),
        y_title: "SLO attainment (%)".into(),
        y_range: "0 --> 100".into(),
        palette: format!("{}, {}", PALETTE[0].0, PALETTE[3].0),
        lines: vec![
            format!("[{}]", attained.join(", ")),
            format!("[{}]", target.join(", ")),
        ],
        legend: format!(
            "{} mean attainment · {} target {}",
            PALETTE[0].1,
            PALETTE[3].1,
            units::percent(o.target)
        ),
        svg: None,
        frontier_svg: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(status: Status, capacity: Option<f64>, failing: Option<f64>) -> Outcome {
        Outcome {
            cell: "default".into(),
            variable: "request_rate".into(),
            target: 0.99,
            tolerance: 0.05,
            status,
            capacity,
            first_failing: failing,
            non_monotone: vec![],
            probes: vec![search::ProbeSummary {
                load: 5.0,
                n: 3,
                mean: 0.9899999999999999,
                ci: Some((0.96515, 1.0)),
                passed: true,
            }],
        }
    }

    #[test]
    fn headlines_give_the_answer_with_its_bracket_or_say_where_it_lies() {
        let slo: BTreeMap<Metric, Duration> = [(Metric::Ttft, Duration::from_millis(200))].into();
        let v = &views(&[outcome(Status::Converged, Some(13.21), Some(13.6))], &slo)[0];
        assert_eq!(
            v.headline,
            "**13.21 req/s**: the highest request_rate probed that meets the target; 13.6 req/s missed it, so the capacity lies in [13.21 req/s, 13.6 req/s) (bracket 2.95 % wide, tolerance 5.00 %)"
        );
        assert!(v.criterion.ends_with("succeeds with ttft ≤ 200 ms)"));
        // 98.99…% must not print as 99.0 %.
        assert_eq!(v.probes[0].attainment, "99.00 %");
        assert_eq!(v.probes[0].ci, "[96.52 %, 100.0 %]");
        assert_eq!(v.chart.categories, "[\"5\"]");
        assert_eq!(v.chart.lines, vec!["[99]", "[99]"]);
        let above = headline(&outcome(Status::AboveRange, Some(320.0), None));
        assert!(above.starts_with("**at least 320 req/s**"), "{above}");
        let below = headline(&outcome(Status::BelowRange, None, Some(0.3125)));
        assert!(below.starts_with("**below 0.3125 req/s**"), "{below}");
        let open = headline(&outcome(Status::Unfinished, Some(5.0), None));
        assert!(
            open.contains("meets the target at 5 req/s, misses it at —"),
            "{open}"
        );
    }
}
