//! The numbers behind a sweep's charts, computed once from the same analysis as the tables:
//! the x axis (the load variable, or else the swept variable with the most levels), one
//! series per combination of the other swept variables, and per series and level the mean
//! over repetitions with the 95 % CI of that mean. The Mermaid charts (`chart.rs`) and the
//! SVGs (`svg/`) are both drawn from this model, so they cannot disagree with the tables.

use crate::analysis::{CellAnalysis, cell_label};
use crate::metrics::{Metric, MetricKey};
use crate::scenario::model::{Scenario, Value, Vars};

use super::model::MetricTable;

/// One level of the x axis.
#[derive(Debug, Clone, PartialEq)]
pub struct Level {
    /// The level as text (`4`, or `1 · 8` for a linked group).
    pub label: String,
    /// The level as a number, when the axis is one numeric variable.
    pub value: Option<f64>,
}

/// One metric of one cell: the mean over its repetitions and the CI of that mean.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    /// Mean over repetitions, in SI units as stored.
    pub mean: f64,
    /// 95 % Student-t CI of the mean (low, high); `None` with fewer than 2 repetitions.
    pub ci: Option<(f64, f64)>,
    /// Repetitions.
    pub n: usize,
}

/// One series (line): its name and its point at every x level (`None` where the cell is
/// excluded or did not measure the metric).
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesPoints {
    /// The other swept variables (`prompt_tokens=100`), or `default` when there are none.
    pub name: String,
    /// One entry per x level.
    pub points: Vec<Option<Point>>,
}

/// One metric over the sweep.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricPlot {
    /// Metric (`ttft.p99`).
    pub metric: MetricKey,
    /// Readable title (`TTFT p99`), as in the tables.
    pub title: String,
    /// Whether it is a primary metric (others are kept for the frontier's throughput axis).
    pub primary: bool,
    /// Every series, in the order of the cells.
    pub series: Vec<SeriesPoints>,
    /// The `[slo]` bound of this metric's per-request quantity (seconds), drawn on its
    /// charts: `ttft ≤ 500 ms` on the TTFT mean and p99 charts.
    pub slo: Option<f64>,
}

/// Everything a sweep's charts show.
#[derive(Debug, Clone, PartialEq)]
pub struct SweepPlot {
    /// The x variable(s), joined by ` · `.
    pub x_title: String,
    /// The x levels in the order the scenario lists them.
    pub levels: Vec<Level>,
    /// Whether the x axis is a load variable (`[analysis] load`).
    pub load: bool,
    /// Whether the series have names (other variables are swept too).
    pub named: bool,
    /// The primary metrics, then `output_throughput` when it is not primary.
    pub metrics: Vec<MetricPlot>,
}

impl SweepPlot {
    /// The numeric x levels, when every level is a number.
    pub fn numeric_levels(&self) -> Option<Vec<f64>> {
        self.levels.iter().map(|l| l.value).collect()
    }

    /// The plot of `metric`, if plotted.
    pub fn metric(&self, metric: MetricKey) -> Option<&MetricPlot> {
        self.metrics.iter().find(|m| m.metric == metric)
    }
}

/// Whether numeric x levels read better on a log axis: all positive and spanning at least a
/// factor of 8 (`1, 2, 4, 8, 16` does; `10, 20, 30` does not).
pub fn log_axis(values: &[f64]) -> bool {
    let positive = !values.is_empty() && values.iter().all(|v| *v > 0.0 && v.is_finite());
    let (lo, hi) = values.iter().fold((f64::INFINITY, 0.0f64), |(lo, hi), v| {
        (lo.min(*v), hi.max(*v))
    });
    positive && hi / lo >= 8.0
}

/// The x axis: one swept variable, or a linked group moving together.
struct Axis {
    vars: Vec<String>,
    levels: Vec<Vec<Value>>,
    load: bool,
}

/// One line: the other swept variables, and the cell index at each x level.
struct Series {
    key: Vars,
    cells: Vec<Option<usize>>,
}

fn x_axis(scenario: &Scenario) -> Option<Axis> {
    let load = &scenario.analysis.load;
    let mut axes: Vec<Axis> = Vec::new();
    for (name, values) in &scenario.vars.sweep {
        axes.push(Axis {
            vars: vec![name.clone()],
            levels: values.iter().map(|v| vec![v.clone()]).collect(),
            load: load.contains(name),
        });
    }
    for group in &scenario.vars.linked {
        let len = group.vars.first().map_or(0, |(_, v)| v.len());
        axes.push(Axis {
            vars: group.vars.iter().map(|(n, _)| n.clone()).collect(),
            levels: (0..len)
                .map(|i| group.vars.iter().map(|(_, v)| v[i].clone()).collect())
                .collect(),
            load: group.vars.iter().any(|(n, _)| load.contains(n)),
        });
    }
    axes.retain(|a| a.levels.len() >= 2);
    let best_load = axes.iter().position(|a| a.load);
    let index = best_load.or_else(|| {
        (0..axes.len()).reduce(|best, i| {
            if axes[i].levels.len() > axes[best].levels.len() {
                i
            } else {
                best
            }
        })
    })?;
    Some(axes.swap_remove(index))
}

fn series(axis: &Axis, swept: &[&Vars]) -> Vec<Series> {
    let mut out: Vec<Series> = Vec::new();
    for (i, vars) in swept.iter().enumerate() {
        let Some(level) = axis.levels.iter().position(|lvl| {
            axis.vars
                .iter()
                .zip(lvl)
                .all(|(name, value)| vars.get(name) == Some(value))
        }) else {
            continue;
        };
        let key: Vars = vars
            .iter()
            .filter(|(k, _)| !axis.vars.contains(k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let pos = match out.iter().position(|s| s.key == key) {
            Some(p) => p,
            None => {
                out.push(Series {
                    key,
                    cells: vec![None; axis.levels.len()],
                });
                out.len() - 1
            }
        };
        out[pos].cells[level] = Some(i);
    }
    out
}

/// The x levels as text (` · ` between the values of a linked group) and, for one numeric
/// variable, as numbers.
fn levels(axis: &Axis) -> Vec<Level> {
    let single = axis.vars.len() == 1;
    axis.levels
        .iter()
        .map(|lvl| Level {
            label: lvl
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(" · "),
            value: lvl.first().and_then(Value::as_f64).filter(|_| single),
        })
        .collect()
}

/// The plot of a sweep; `None` unless a variable is swept over at least 2 levels.
/// `swept[i]` and `cells[i]` describe the same cell; `tables` give the metric titles (a
/// metric without a table was not measured and is left out).
pub(super) fn build(
    scenario: &Scenario,
    swept: &[&Vars],
    cells: &[CellAnalysis],
    tables: &[MetricTable],
) -> Option<SweepPlot> {
    let axis = x_axis(scenario)?;
    let all_series = series(&axis, swept);
    let mut keys: Vec<(MetricKey, bool)> = (scenario.analysis.primary.iter())
        .map(|m| (*m, true))
        .collect();
    let throughput = Metric::OutputThroughput.key();
    if !keys.iter().any(|(m, _)| *m == throughput) {
        keys.push((throughput, false));
    }
    let metrics = keys
        .into_iter()
        .filter_map(|(metric, primary)| {
            let table = tables.iter().find(|t| t.name == metric.to_string())?;
            let point = |i: Option<usize>| {
                let d = cells.get(i?)?.metrics.get(&metric)?;
                Some(Point {
                    mean: d.mean,
                    ci: d.ci_low.zip(d.ci_high),
                    n: d.n,
                })
            };
            Some(MetricPlot {
                metric,
                title: table.title.clone(),
                primary,
                slo: (scenario.slo.get(&metric.metric())).map(|d| d.as_secs_f64()),
                series: all_series
                    .iter()
                    .map(|s| SeriesPoints {
                        name: cell_label(&s.key),
                        points: s.cells.iter().map(|&i| point(i)).collect(),
                    })
                    .collect(),
            })
        })
        .collect();
    Some(SweepPlot {
        x_title: axis.vars.join(" · "),
        levels: levels(&axis),
        load: axis.load,
        named: all_series.iter().any(|s| !s.key.is_empty()),
        metrics,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_log_axis_needs_positive_levels_spanning_a_factor_of_eight() {
        assert!(log_axis(&[1.0, 2.0, 4.0, 8.0, 16.0]));
        assert!(log_axis(&[0.5, 4.0]));
        assert!(!log_axis(&[10.0, 20.0, 30.0, 40.0]));
        assert!(!log_axis(&[1.0, 7.99]));
        assert!(!log_axis(&[0.0, 1.0, 100.0]));
        assert!(!log_axis(&[-1.0, 16.0]));
        assert!(!log_axis(&[]));
    }
}
