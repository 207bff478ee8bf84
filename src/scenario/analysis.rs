//! `[slo]`, `[checks]`, `[analysis]` and `[report]`: metric names are parsed into the
//! registry's typed keys (`metrics::registry`), thresholds are converted to each metric's base unit (seconds, fractions,
//! plain rates).

use std::collections::BTreeMap;
use std::time::Duration;

use crate::metrics::{Metric, MetricKey, Unit};

use super::doc::{Kind, Node};
use super::duration;
use super::error::{did_you_mean, join_key};
use super::model::{Analysis, CAPACITY_THRESHOLD, Check, CheckOp, ReportSpec, Value, Vars};
use super::read::{Ctx, Range};

/// Validates `[slo]`: per-request metric → positive duration.
pub(crate) fn slo(ctx: &mut Ctx, node: Option<&Node>) -> BTreeMap<Metric, Duration> {
    let mut out = BTreeMap::new();
    let Some(t) = node.and_then(|n| ctx.table("slo", n, &[])) else {
        return out;
    };
    for e in &t.entries {
        let key = join_key("slo", &e.key);
        let metric = Metric::parse(&e.key).filter(|m| m.spec().slo);
        let Some(metric) = metric else {
            let slo_names: Vec<&str> = Metric::slo_metrics().map(Metric::name).collect();
            let close = did_you_mean(&e.key, slo_names.iter().copied());
            let hint = format!(
                "SLOs bound per-request latencies: {}",
                super::error::list(&slo_names)
            );
            ctx.error(
                &e.key_origin,
                &key,
                format!("unknown SLO metric{close}"),
                Some(hint),
            );
            continue;
        };
        if let Some(d) = ctx.duration(&key, &e.value, Duration::from_secs(86400)) {
            out.insert(metric, d);
        }
    }
    out
}

/// A summary metric name, reported with a suggestion when unknown.
fn metric(ctx: &mut Ctx, key: &str, name: &str, origin: &super::doc::Origin) -> Option<MetricKey> {
    let key_of = MetricKey::parse(name);
    if key_of.is_none() {
        let all = MetricKey::all_names();
        let close = did_you_mean(name, all.iter().map(String::as_str));
        let hint = "summary metrics are names like `ttft.p99`, `tpot.mean`, `output_throughput`, `error_rate`";
        ctx.error(
            origin,
            key,
            format!("unknown metric `{name}`{close}"),
            Some(hint.into()),
        );
    }
    key_of
}

/// Validates `[checks]`: `"ttft.p99" = "< 800ms"`.
pub(crate) fn checks(ctx: &mut Ctx, node: Option<&Node>) -> Vec<Check> {
    let mut out = vec![];
    let Some(t) = node.and_then(|n| ctx.table("checks", n, &[])) else {
        return out;
    };
    for e in &t.entries {
        let key = join_key("checks", &e.key);
        let metric_key = metric(ctx, &key, &e.key, &e.key_origin);
        let Some(text) = ctx.string(&key, &e.value) else {
            continue;
        };
        let Some(metric_key) = metric_key else {
            continue;
        };
        match parse_check(text, metric_key.unit()) {
            Ok((op, threshold)) => out.push(Check {
                metric: metric_key,
                op,
                threshold,
                text: text.to_string(),
            }),
            Err((message, hint)) => ctx.error(&e.value.origin, &key, message, Some(hint)),
        }
    }
    out
}

/// Parses `"< 800ms"`, `">= 95%"`, `"<= 0.01"` for a metric of `unit`.
pub(crate) fn parse_check(text: &str, unit: Unit) -> Result<(CheckOp, f64), (String, String)> {
    let syntax =
        "write a comparison and a threshold, e.g. \"< 800ms\", \"<= 0.01\", \">= 95%\", \"> 1000\""
            .to_string();
    let t = text.trim();
    let (op, rest) = [
        ("<=", CheckOp::Le),
        (">=", CheckOp::Ge),
        ("<", CheckOp::Lt),
        (">", CheckOp::Gt),
    ]
    .into_iter()
    .find_map(|(s, op)| t.strip_prefix(s).map(|r| (op, r.trim())))
    .ok_or_else(|| {
        (
            format!("{text:?} does not start with <, <=, > or >="),
            syntax.clone(),
        )
    })?;
    if rest.is_empty() {
        return Err((format!("{text:?} has no threshold"), syntax));
    }
    let unit_name = match unit {
        Unit::Seconds => "seconds",
        Unit::TokensPerSecond => "tokens per second",
        Unit::RequestsPerSecond => "requests per second",
        Unit::SamplesPerSecond => "samples per second",
        Unit::Fraction => "a fraction",
        Unit::Count => "a count",
        Unit::Watts => "watts",
        Unit::Joules => "joules",
        Unit::JoulesPerToken => "joules per token",
        Unit::Cores => "CPU cores",
        Unit::PricePer1kTokens => "a price per 1000 tokens",
    };
    let threshold = if let Some(pct) = rest.strip_suffix('%') {
        if unit != Unit::Fraction {
            return Err((
                format!("a percentage is only for fractions, but this metric is in {unit_name}"),
                syntax,
            ));
        }
        number(pct.trim(), text, &syntax)? / 100.0
    } else if let Ok(x) = rest.parse::<f64>() {
        if unit == Unit::Seconds {
            return Err((
                format!("{rest:?} has no unit"),
                format!("this metric is a time; {}", duration::SYNTAX),
            ));
        }
        number(&x.to_string(), text, &syntax)?
    } else {
        let d = duration::parse(rest).map_err(|m| (m, syntax.clone()))?;
        if unit != Unit::Seconds {
            let hint = format!("write a plain number in {unit_name}, e.g. \"> 1000\"");
            return Err((
                format!("{rest:?} is a duration, but this metric is in {unit_name}"),
                hint,
            ));
        }
        d.as_secs_f64()
    };
    Ok((op, threshold))
}

fn number(s: &str, text: &str, syntax: &str) -> Result<f64, (String, String)> {
    match s.parse::<f64>() {
        Ok(x) if x.is_finite() => Ok(x),
        _ => Err((format!("{text:?} has no valid number"), syntax.to_string())),
    }
}

const ANALYSIS_KEYS: &[&str] = &[
    "alpha",
    "primary",
    "thresholds",
    "load",
    "baseline",
    "cv_warn",
];

/// Validates `[analysis]`; `names` are the scenario's variables.
pub(crate) fn analysis(ctx: &mut Ctx, node: Option<&Node>, names: &[String]) -> Option<Analysis> {
    let mut a = Analysis {
        alpha: 0.05,
        primary: crate::metrics::registry::DEFAULT_PRIMARY.to_vec(),
        thresholds: BTreeMap::new(),
        capacity_threshold: None,
        load: vec!["request_rate".into(), "concurrency".into()],
        baseline: None,
        cv_warn: 0.05,
    };
    let Some(node) = node else { return Some(a) };
    let t = ctx.table("analysis", node, ANALYSIS_KEYS)?;
    let alpha = Range::above(0.0).below(0.5);
    let alpha = t.get("alpha").map(|n| {
        ctx.number(
            "analysis.alpha",
            n,
            alpha,
            Some("the significance level, e.g. 0.05"),
        )
    });
    let cv = Range::above(0.0).below(1.0);
    let cv_warn = t
        .get("cv_warn")
        .map(|n| ctx.number("analysis.cv_warn", n, cv, Some("a fraction, e.g. 0.05")));
    let primary = t.get("primary").map(|n| primary(ctx, n));
    let thresholds = t.get("thresholds").map(|n| thresholds(ctx, n));
    let load = t.get("load").map(|n| load(ctx, n, names));
    let baseline = t.get("baseline").map(|n| baseline(ctx, n, names));
    a.alpha = alpha.unwrap_or(Some(a.alpha))?;
    a.cv_warn = cv_warn.unwrap_or(Some(a.cv_warn))?;
    a.primary = primary.unwrap_or(Some(a.primary))?;
    if let Some(t) = thresholds {
        (a.thresholds, a.capacity_threshold) = t?;
    }
    a.load = load.unwrap_or(Some(a.load))?;
    a.baseline = baseline.map_or(Some(None), |b| b.map(Some))?;
    Some(a)
}

fn primary(ctx: &mut Ctx, node: &Node) -> Option<Vec<MetricKey>> {
    let items = ctx.strings("analysis.primary", node)?;
    if items.is_empty() {
        let hint =
            "leave `primary` out for the defaults, or list summary metrics such as \"ttft.p99\"";
        ctx.error(
            &node.origin,
            "analysis.primary",
            "needs at least one metric",
            Some(hint.into()),
        );
        return None;
    }
    let keys: Vec<Option<MetricKey>> = (items.iter().enumerate())
        .map(|(i, (m, origin))| metric(ctx, &format!("analysis.primary[{i}]"), m, origin))
        .collect();
    keys.into_iter().collect()
}

/// `[analysis] thresholds`: τ per summary metric, and τ of the capacity at the SLO.
type Thresholds = (BTreeMap<MetricKey, f64>, Option<f64>);

fn thresholds(ctx: &mut Ctx, node: &Node) -> Option<Thresholds> {
    let t = ctx.table("analysis.thresholds", node, &[])?;
    let (mut out, mut capacity) = (BTreeMap::new(), None);
    let mut ok = true;
    for e in &t.entries {
        let key = join_key("analysis.thresholds", &e.key);
        let known = threshold_key(ctx, &key, &e.key, &e.key_origin);
        match (fraction(ctx, &key, &e.value), known) {
            (Some(x), Some(ThresholdKey::Metric(m))) => drop(out.insert(m, x)),
            (Some(x), Some(ThresholdKey::Capacity)) => capacity = Some(x),
            _ => ok = false,
        }
    }
    ok.then_some((out, capacity))
}

/// What a `thresholds` key names.
enum ThresholdKey {
    Metric(MetricKey),
    Capacity,
}

/// A `thresholds` key: a summary metric or [`CAPACITY_THRESHOLD`]; reports an unknown one
/// with a suggestion from both.
fn threshold_key(
    ctx: &mut Ctx,
    key: &str,
    name: &str,
    origin: &super::doc::Origin,
) -> Option<ThresholdKey> {
    if name == CAPACITY_THRESHOLD {
        return Some(ThresholdKey::Capacity);
    }
    if let Some(m) = MetricKey::parse(name) {
        return Some(ThresholdKey::Metric(m));
    }
    let all = MetricKey::all_names();
    let choices = all.iter().map(String::as_str).chain([CAPACITY_THRESHOLD]);
    let close = did_you_mean(name, choices);
    let hint = "thresholds are keyed by summary metrics such as `ttft.p99` or `output_throughput`; `capacity` sets τ of the capacity at the SLO of [search] runs";
    ctx.error(
        origin,
        key,
        format!("unknown metric `{name}`{close}"),
        Some(hint.into()),
    );
    None
}

fn load(ctx: &mut Ctx, node: &Node, names: &[String]) -> Option<Vec<String>> {
    let items = ctx.strings("analysis.load", node)?;
    let mut ok = true;
    for (i, (name, origin)) in items.iter().enumerate() {
        ok &= known_var(ctx, &format!("analysis.load[{i}]"), name, origin, names);
    }
    ok.then(|| items.into_iter().map(|(s, _)| s).collect())
}

fn baseline(ctx: &mut Ctx, node: &Node, names: &[String]) -> Option<Vars> {
    let t = ctx.table("analysis.baseline", node, &[])?;
    let mut vars = Vars::new();
    let mut ok = true;
    for e in &t.entries {
        let key = join_key("analysis.baseline", &e.key);
        ok &= known_var(ctx, &key, &e.key, &e.key_origin, names);
        match scalar(&e.value) {
            Some(v) => drop(vars.insert(e.key.clone(), v)),
            None => {
                let message = format!(
                    "expected a string, number or boolean, got {}",
                    e.value.describe()
                );
                ctx.error(&e.value.origin, &key, message, None);
                ok = false;
            }
        }
    }
    if t.entries.is_empty() {
        let hint = "name the baseline cell by its variables, e.g. `baseline = { tp = 4 }`";
        ctx.error(
            &node.origin,
            "analysis.baseline",
            "is empty",
            Some(hint.into()),
        );
        ok = false;
    }
    ok.then_some(vars)
}

fn known_var(
    ctx: &mut Ctx,
    key: &str,
    name: &str,
    origin: &super::doc::Origin,
    names: &[String],
) -> bool {
    if names.iter().any(|n| n == name) {
        return true;
    }
    let close = did_you_mean(name, names.iter().map(String::as_str));
    ctx.error(
        origin,
        key,
        format!("`{name}` is not a variable of this scenario{close}"),
        None,
    );
    false
}

fn scalar(node: &Node) -> Option<Value> {
    Some(match &node.kind {
        Kind::Str(s) => Value::Str(s.clone()),
        Kind::Int(i) => Value::Int(*i),
        Kind::Float(x) if x.is_finite() => Value::Float(*x),
        Kind::Bool(b) => Value::Bool(*b),
        _ => return None,
    })
}

/// A fraction written as `0.05` or `"5%"`, in (0, 1).
fn fraction(ctx: &mut Ctx, key: &str, node: &Node) -> Option<f64> {
    let range = Range::above(0.0).below(1.0);
    fraction_in(
        ctx,
        key,
        node,
        range,
        "a relative change, e.g. 0.05 or \"5%\"",
    )
}

/// A fraction written as a number (`0.05`) or a percentage string (`"5%"`), inside `range`.
pub(crate) fn fraction_in(
    ctx: &mut Ctx,
    key: &str,
    node: &Node,
    range: Range,
    hint: &str,
) -> Option<f64> {
    let hint = Some(hint);
    let Kind::Str(s) = &node.kind else {
        return ctx.number(key, node, range, hint);
    };
    let pct = s
        .trim()
        .strip_suffix('%')
        .and_then(|p| p.trim().parse::<f64>().ok())
        .map(|p| p / 100.0);
    let problem = match pct {
        None => Some(format!("{s:?} is not a fraction or percentage")),
        Some(x) => range.check(x),
    };
    if let Some(message) = problem {
        ctx.error(&node.origin, key, message, hint.map(Into::into));
        return None;
    }
    pct
}

/// Validates `[report]`.
pub(crate) fn report(ctx: &mut Ctx, node: Option<&Node>) -> Option<ReportSpec> {
    let Some(node) = node else {
        return Some(ReportSpec::default());
    };
    let t = ctx.table("report", node, &["template"])?;
    let template = match t.get("template") {
        None => None,
        Some(n) => Some(ctx.path_value("report.template", n, true)?),
    };
    Some(ReportSpec { template })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_convert_to_base_units() {
        assert_eq!(
            parse_check("< 800ms", Unit::Seconds),
            Ok((CheckOp::Lt, 0.8))
        );
        assert_eq!(
            parse_check(">= 95%", Unit::Fraction),
            Ok((CheckOp::Ge, 0.95))
        );
        assert_eq!(
            parse_check("<= 0.01", Unit::Fraction),
            Ok((CheckOp::Le, 0.01))
        );
        assert_eq!(
            parse_check("> 1000", Unit::TokensPerSecond),
            Ok((CheckOp::Gt, 1000.0))
        );
    }

    #[test]
    fn checks_refuse_mismatched_units() {
        assert!(
            parse_check("> 800ms", Unit::TokensPerSecond)
                .unwrap_err()
                .0
                .contains("is a duration")
        );
        assert!(
            parse_check("< 0.8", Unit::Seconds)
                .unwrap_err()
                .0
                .contains("has no unit")
        );
        assert!(
            parse_check("> 5%", Unit::Seconds)
                .unwrap_err()
                .0
                .contains("percentage")
        );
        assert!(
            parse_check("800ms", Unit::Seconds)
                .unwrap_err()
                .0
                .contains("does not start")
        );
    }
}
