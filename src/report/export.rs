//! Tables for people who plot elsewhere: the per-repetition values and the per-cell
//! descriptions of a run, as JSON or CSV (`exp report --format json|csv`). Same numbers as
//! `summary.json`, flattened: one row per (cell, round) and one per (cell, metric). Values are
//! in SI base units (seconds, tokens/s, fractions), as stored.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use serde::Serialize;

use crate::analysis::{Analysis, CellResults};
use crate::metrics::MetricKey;

/// One repetition: its cell, round and every metric value.
#[derive(Debug, Clone, Serialize)]
pub struct RepetitionRow<'a> {
    /// Cell id.
    pub cell_id: &'a str,
    /// The cell's swept variables, as text.
    pub vars: Vec<(String, String)>,
    /// Repetition round.
    pub round: u32,
    /// Metric name → value.
    pub values: &'a std::collections::BTreeMap<MetricKey, f64>,
}

/// One metric of one cell across its repetitions.
#[derive(Debug, Clone, Serialize)]
pub struct CellRow<'a> {
    /// Cell id.
    pub cell_id: &'a str,
    /// Metric name.
    pub metric: &'a MetricKey,
    /// Repetitions.
    pub n: usize,
    /// Mean over repetitions.
    pub mean: f64,
    /// Standard deviation (n − 1), when n ≥ 2.
    pub std: Option<f64>,
    /// Lower end of the 95 % CI of the mean.
    pub ci_low: Option<f64>,
    /// Upper end of the 95 % CI of the mean.
    pub ci_high: Option<f64>,
    /// Coefficient of variation.
    pub cv: Option<f64>,
}

/// Both tables of a run.
#[derive(Debug, Clone, Serialize)]
pub struct Export<'a> {
    /// Layout version.
    pub schema_version: u32,
    /// One row per (cell, round).
    pub repetitions: Vec<RepetitionRow<'a>>,
    /// One row per (cell, metric).
    pub cells: Vec<CellRow<'a>>,
}

/// Flattens a run's results into the two tables.
pub fn tables<'a>(cells: &'a [CellResults], analysis: &'a Analysis) -> Export<'a> {
    let repetitions = cells
        .iter()
        .flat_map(|c| {
            let vars: Vec<(String, String)> = c
                .swept
                .iter()
                .map(|(k, v)| (k.clone(), v.to_string()))
                .collect();
            c.reps.iter().map(move |r| RepetitionRow {
                cell_id: &c.id,
                vars: vars.clone(),
                round: r.round,
                values: &r.summary.values,
            })
        })
        .collect();
    let cells = analysis
        .cells
        .iter()
        .flat_map(|c| {
            c.metrics.iter().map(move |(metric, d)| CellRow {
                cell_id: &c.id,
                metric,
                n: d.n,
                mean: d.mean,
                std: d.std,
                ci_low: d.ci_low,
                ci_high: d.ci_high,
                cv: d.cv,
            })
        })
        .collect();
    Export {
        schema_version: crate::store::SCHEMA_VERSION,
        repetitions,
        cells,
    }
}

/// Quotes a CSV field when it needs it (RFC 4180).
fn field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}

fn number(x: Option<f64>) -> String {
    x.map(|v| format!("{v}")).unwrap_or_default()
}

/// The per-repetition table as CSV: `cell_id`, one column per swept variable, `round`, then
/// one column per metric (empty where a repetition has no value).
pub fn repetitions_csv(export: &Export<'_>) -> String {
    let var_names: BTreeSet<&str> = export
        .repetitions
        .iter()
        .flat_map(|r| r.vars.iter().map(|(k, _)| k.as_str()))
        .collect();
    let metrics: BTreeSet<MetricKey> = export
        .repetitions
        .iter()
        .flat_map(|r| r.values.keys().copied())
        .collect();
    let mut out = String::from("cell_id");
    let metric_names = metrics.iter().map(MetricKey::to_string);
    for name in (var_names.iter().chain([&"round"]).map(|s| s.to_string())).chain(metric_names) {
        let _ = write!(out, ",{}", field(&name));
    }
    out.push('\n');
    for r in &export.repetitions {
        out.push_str(&field(r.cell_id));
        for name in &var_names {
            let value = r
                .vars
                .iter()
                .find(|(k, _)| k == name)
                .map_or("", |(_, v)| v.as_str());
            let _ = write!(out, ",{}", field(value));
        }
        let _ = write!(out, ",{}", r.round);
        for m in &metrics {
            let _ = write!(out, ",{}", number(r.values.get(m).copied()));
        }
        out.push('\n');
    }
    out
}

/// The per-cell table as CSV: `cell_id,metric,n,mean,std,ci_low,ci_high,cv`.
pub fn cells_csv(export: &Export<'_>) -> String {
    let mut out = String::from("cell_id,metric,n,mean,std,ci_low,ci_high,cv\n");
    for c in &export.cells {
        let _ = writeln!(
            out,
            "{},{},{},{},{},{},{},{}",
            field(c.cell_id),
            field(&c.metric.to_string()),
            c.n,
            c.mean,
            number(c.std),
            number(c.ci_low),
            number(c.ci_high),
            number(c.cv)
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::{CellAnalysis, RepResult};
    use crate::metrics::RepetitionSummary;
    use crate::metrics::registry::k;
    use crate::scenario::model::Value;

    fn run() -> (Vec<CellResults>, Analysis) {
        let reps = (0..3)
            .map(|round| {
                let mut summary = RepetitionSummary::default();
                summary
                    .values
                    .insert(k("ttft.mean"), 0.125 + f64::from(round) / 4.0);
                if round > 0 {
                    summary.values.insert(k("tpot.mean"), 0.02);
                }
                RepResult {
                    round,
                    order: round as usize,
                    summary,
                    wall_seconds: 1.0,
                    client_cpu_seconds: None,
                }
            })
            .collect();
        let swept = [("label".to_string(), Value::Str("a,\"b\"".into()))]
            .into_iter()
            .collect();
        let cells = vec![CellResults {
            id: "label-a".into(),
            vars: Default::default(),
            swept,
            reps,
        }];
        let d = crate::stats::describe(&[0.1, 0.11, 0.12]).unwrap();
        let analysis = Analysis {
            cells: vec![CellAnalysis {
                id: "label-a".into(),
                label: "label=a".into(),
                n: 3,
                metrics: [(k("ttft.mean"), d)].into_iter().collect(),
            }],
            comparisons: vec![],
            checks: vec![],
            quality: vec![],
            warnings: vec![],
        };
        (cells, analysis)
    }

    #[test]
    fn repetitions_csv_has_a_column_per_variable_and_metric_and_quotes_fields() {
        let (cells, analysis) = run();
        let csv = repetitions_csv(&tables(&cells, &analysis));
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines[0], "cell_id,label,round,tpot.mean,ttft.mean");
        assert_eq!(lines[1], "label-a,\"a,\"\"b\"\"\",0,,0.125");
        assert_eq!(lines[3], "label-a,\"a,\"\"b\"\"\",2,0.02,0.625");
        assert_eq!(lines.len(), 4);
    }

    #[test]
    fn cells_csv_gives_the_description_of_each_metric() {
        let (cells, analysis) = run();
        let csv = cells_csv(&tables(&cells, &analysis));
        let row = csv.lines().nth(1).unwrap();
        let f: Vec<&str> = row.split(',').collect();
        assert_eq!(&f[..3], &["label-a", "ttft.mean", "3"]);
        assert!((f[3].parse::<f64>().unwrap() - 0.11).abs() < 1e-12);
        assert!((f[4].parse::<f64>().unwrap() - 0.01).abs() < 1e-12);
    }

    #[test]
    fn json_export_round_trips_as_json() {
        let (cells, analysis) = run();
        let text = serde_json::to_string(&tables(&cells, &analysis)).unwrap();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["repetitions"].as_array().unwrap().len(), 3);
        assert_eq!(v["cells"][0]["metric"], "ttft.mean");
    }
}
