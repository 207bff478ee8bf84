//! `[checks]`: cell-level assertions judged on the 95 % confidence bound of the cell's mean
//! that is least favourable to passing (the upper bound for `<`, the lower for `>`), so a noisy
//! cell cannot pass by luck.

use serde::Serialize;

use super::CellAnalysis;
use crate::scenario::model::{CheckOp, Scenario};

/// The outcome of one check on one cell.
#[derive(Debug, Clone, Serialize)]
pub struct CheckOutcome {
    /// Cell label.
    pub cell: String,
    /// Metric.
    pub metric: crate::metrics::MetricKey,
    /// The condition as written (`< 800ms`).
    pub condition: String,
    /// The value the check was judged on (CI bound), if the metric was measured.
    pub judged: Option<f64>,
    /// Whether it passed.
    pub passed: bool,
    /// Why it failed when not on the numbers (metric not measured, too few repetitions).
    pub reason: Option<String>,
}

pub(super) fn judge(scenario: &Scenario, cells: &[CellAnalysis]) -> Vec<CheckOutcome> {
    let mut out = Vec::new();
    for cell in cells {
        for check in &scenario.checks {
            let desc = cell.metrics.get(&check.metric);
            let upper = matches!(check.op, CheckOp::Lt | CheckOp::Le);
            let judged = desc.and_then(|d| if upper { d.ci_high } else { d.ci_low });
            let passed = judged.is_some_and(|x| match check.op {
                CheckOp::Lt => x < check.threshold,
                CheckOp::Le => x <= check.threshold,
                CheckOp::Gt => x > check.threshold,
                CheckOp::Ge => x >= check.threshold,
            });
            let reason = match (desc, judged) {
                (None, _) => Some("not measured in this cell".to_string()),
                (Some(_), None) => {
                    Some("needs at least 2 repetitions for a confidence bound".to_string())
                }
                _ => None,
            };
            out.push(CheckOutcome {
                cell: cell.label.clone(),
                metric: check.metric,
                condition: check.text.clone(),
                judged,
                passed,
                reason,
            });
        }
    }
    out
}
