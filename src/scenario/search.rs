//! `[search]`: capacity at the SLO. Validates the searched variable against the arrival
//! process (it must be the load the arrival reads, and not swept), the bounds, the target
//! attainment and the tolerance, and requires `[slo]`. An undeclared search variable is added
//! to `[vars.fixed]` at `low`, so `exp plan` and the matrix still resolve.

use std::num::NonZeroU32;

use super::analysis::fraction_in;
use super::arrival::ArrivalKind;
use super::doc::{Node, Origin, Table};
use super::model::{Value, VarSpec};
use super::read::{Ctx, Range};

/// `[search]`: capacity at the SLO. Probes of `variable` between `low` and `high` (widened
/// when the answer lies outside), each run `repetitions` times, find the highest load whose
/// mean SLO attainment (share of requests within every `[slo]` bound) is ≥ `target`.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchSpec {
    /// The load variable the arrival process reads (`request_rate`, `concurrency`,
    /// `batch_size`); never swept.
    pub variable: String,
    /// First probe (> 0).
    pub low: f64,
    /// Second probe (> `low`).
    pub high: f64,
    /// Required mean SLO attainment, a fraction in (0, 1].
    pub target: f64,
    /// Stop bisecting when the bracket is narrower than this fraction of its lower end.
    pub tolerance: f64,
    /// Repetitions of every probe (≥ 2, for a confidence interval).
    pub repetitions: NonZeroU32,
    /// The variable is a count: probes are whole numbers.
    pub integer: bool,
}

const KEYS: &[&str] = &[
    "variable",
    "low",
    "high",
    "target",
    "tolerance",
    "repetitions",
];

/// The load variables a search can move.
const LOAD_VARS: &[&str] = &["request_rate", "concurrency", "batch_size"];

/// What the search needs to know about the rest of the scenario.
pub(crate) struct Context {
    /// The arrival process, when `[workload]` was valid.
    pub arrival: Option<ArrivalKind>,
    /// `[slo]` has at least one bound.
    pub has_slo: bool,
}

/// Validates `[search]`; `None` after recording an error, `Some(None)` without the table.
pub(crate) fn search(
    ctx: &mut Ctx,
    node: Option<&Node>,
    scenario: Context,
    vars: &mut VarSpec,
    names: &mut Vec<String>,
) -> Option<Option<SearchSpec>> {
    let Some(node) = node else {
        return Some(None);
    };
    let t = ctx.table("search", node, KEYS)?;
    let required = scenario
        .arrival
        .and_then(ArrivalKind::required_var)
        .filter(|r| LOAD_VARS.contains(r));
    let variable = variable(ctx, t, required);
    let integer = variable.as_deref().is_some_and(|v| v != "request_rate");
    let (low, high) = bounds(ctx, t, &node.origin, integer);
    let (target, tolerance, repetitions) = settings(ctx, t);
    // Declared even when another key is wrong, so the arrival does not also report it missing.
    let name = variable.as_deref().or(required);
    if name.is_none() && t.get("variable").is_none() && scenario.arrival.is_some() {
        let hint = "search request_rate (poisson, gamma, constant), concurrency (closed) or batch_size (batch)";
        let message =
            "the arrival process reads no load variable to search (a trace replays its own times)";
        ctx.error(&node.origin, "search", message, Some(hint.into()));
    }
    let declared = name.map(|v| {
        let at = t.get("variable").unwrap_or(node);
        declare(ctx, at, v, low.unwrap_or(1.0), integer, vars, names)
    });
    if !scenario.has_slo {
        let hint = "add [slo] with per-request bounds, e.g. `ttft = \"500ms\"`: the search finds the highest load that meets them";
        let message = "needs [slo]: SLO attainment is what the search measures";
        ctx.error(&node.origin, "search", message, Some(hint.into()));
        return None;
    }
    declared??;
    Some(Some(SearchSpec {
        variable: variable?,
        low: low?,
        high: high?,
        target: target?,
        tolerance: tolerance?,
        repetitions: NonZeroU32::new(repetitions? as u32)?,
        integer,
    }))
}

/// `variable`: one of the load variables, and the one the arrival reads (`required`); by
/// default that one.
fn variable(ctx: &mut Ctx, t: &Table, required: Option<&str>) -> Option<String> {
    let Some(n) = t.get("variable") else {
        return required.map(str::to_string);
    };
    let hint = "the load the arrival process reads: `request_rate` (poisson, gamma, constant), `concurrency` (closed) or `batch_size` (batch)";
    match (ctx.choice("search.variable", n, LOAD_VARS), required) {
        (Some(v), Some(r)) if v != r => {
            let message = format!("the arrival process reads `{r}`, not `{v}`");
            ctx.error(&n.origin, "search.variable", message, Some(hint.into()));
            None
        }
        (v, _) => v.map(str::to_string),
    }
}

/// `target` (default 99 %), `tolerance` (default 5 %) and `repetitions` (default 5).
fn settings(ctx: &mut Ctx, t: &Table) -> (Option<f64>, Option<f64>, Option<i64>) {
    let target = t.get("target").map_or(Some(0.99), |n| {
        let hint = "the share of requests that must meet every [slo] bound, e.g. \"99%\"";
        let range = Range::above(0.0).up_to(1.0);
        fraction_in(ctx, "search.target", n, range, hint)
    });
    let tolerance = t.get("tolerance").map_or(Some(0.05), |n| {
        let hint = "stop when the bracket is narrower than this share of the load, e.g. 0.05";
        let range = Range::above(0.0).below(1.0);
        fraction_in(ctx, "search.tolerance", n, range, hint)
    });
    let repetitions = t.get("repetitions").map_or(Some(5), |n| {
        let hint = Some("repetitions of every probe; at least 2 for a confidence interval");
        ctx.int("search.repetitions", n, 2, 1000, hint)
    });
    (target, tolerance, repetitions)
}

/// `low` and `high`: positive, `high > low`, whole numbers for counts.
fn bounds(ctx: &mut Ctx, t: &Table, origin: &Origin, integer: bool) -> (Option<f64>, Option<f64>) {
    let read = |name: &str, ctx: &mut Ctx| -> Option<f64> {
        let key = format!("search.{name}");
        let hint = "the load of the first probes; the search widens the range when needed";
        let n = ctx.require("search", (t, origin), name, hint)?;
        if integer {
            ctx.int(&key, n, 1, 1_000_000, Some(hint)).map(|i| i as f64)
        } else {
            ctx.number(&key, n, Range::above(0.0).up_to(1e6), Some(hint))
        }
    };
    let (low, high) = (read("low", ctx), read("high", ctx));
    if let (Some(l), Some(h), Some(n)) = (low, high, t.get("high"))
        && h <= l
    {
        let message = format!("must be above low = {l}, got {h}");
        ctx.error(&n.origin, "search.high", message, None);
        return (low, None);
    }
    (low, high)
}

/// The searched variable must not be swept; when undeclared it is fixed at `low`.
fn declare(
    ctx: &mut Ctx,
    at: &Node,
    variable: &str,
    low: f64,
    integer: bool,
    vars: &mut VarSpec,
    names: &mut Vec<String>,
) -> Option<()> {
    let swept = vars.sweep.iter().any(|(n, _)| n == variable)
        || vars
            .linked
            .iter()
            .any(|g| g.vars.iter().any(|(n, _)| n == variable));
    if swept {
        let hint = format!("remove `{variable}` from the sweep: the search chooses its values");
        let message = format!("`{variable}` is swept, but [search] moves it");
        ctx.error(&at.origin, "search.variable", message, Some(hint));
        return None;
    }
    if !names.iter().any(|n| n == variable) {
        let value = if integer {
            Value::Int(low as i64)
        } else {
            Value::Float(low)
        };
        vars.fixed.insert(variable.to_string(), value);
        names.push(variable.to_string());
    }
    Some(())
}
