//! `[vars]`: fixed values, sweeps (lists and numeric ranges), linked groups, exclusions and
//! labels, validated into a [`VarSpec`]. Every value of every sweep is checked against the
//! well-known variable rules, and errors name the element (`vars.sweep.request_rate[1]`).

use std::collections::BTreeMap;

use super::doc::{Kind, Node, Origin, Table};
use super::error::{did_you_mean, join_key};
use super::model::{LinkedGroup, Value, VarSpec};
use super::read::{Ctx, Range};
use super::wellknown;

/// Most values one range may produce.
const MAX_RANGE_VALUES: usize = 10_000;

const DUPLICATE_HINT: &str = "a variable takes its values from exactly one of [vars.fixed], [vars.sweep] or [vars.linked.<group>]";

/// Validates `[vars]`. Returns the spec (variables whose values fail are left out) and the
/// names of all declared variables (for checking references elsewhere).
pub(crate) fn validate(ctx: &mut Ctx, node: Option<&Node>) -> (VarSpec, Vec<String>) {
    let mut spec = VarSpec::default();
    let Some(node) = node else {
        return (spec, vec![]);
    };
    let known = ["fixed", "sweep", "linked", "exclude", "labels"];
    let Some(t) = ctx.table("vars", node, &known) else {
        return (spec, vec![]);
    };
    let mut seen: BTreeMap<String, String> = BTreeMap::new();
    if let Some(fixed) = t.get("fixed").and_then(|n| ctx.table("vars.fixed", n, &[])) {
        for e in &fixed.entries {
            let key = join_key("vars.fixed", &e.key);
            if declare(ctx, &mut seen, &key, &e.key, &e.key_origin, "[vars.fixed]")
                && let Some(v) = single(ctx, &key, &e.key, &e.value)
            {
                spec.fixed.insert(e.key.clone(), v);
            }
        }
    }
    if let Some(sweep) = t.get("sweep").and_then(|n| ctx.table("vars.sweep", n, &[])) {
        for e in &sweep.entries {
            let key = join_key("vars.sweep", &e.key);
            if declare(ctx, &mut seen, &key, &e.key, &e.key_origin, "[vars.sweep]")
                && let Some(levels) = levels(ctx, &key, &e.key, &e.value)
            {
                spec.sweep.push((e.key.clone(), levels));
            }
        }
    }
    if let Some(linked) = t
        .get("linked")
        .and_then(|n| ctx.table("vars.linked", n, &[]))
    {
        for g in &linked.entries {
            if let Some(group) = linked_group(ctx, &mut seen, g.key.as_str(), &g.value) {
                spec.linked.push(group);
            }
        }
    }
    let exclude = t
        .get("exclude")
        .and_then(|n| ctx.strings("vars.exclude", n))
        .unwrap_or_default();
    let labels = t
        .get("labels")
        .and_then(|n| ctx.strings("vars.labels", n))
        .unwrap_or_default();
    check_references(ctx, &seen, &exclude, &labels);
    spec.exclude = exclude.into_iter().map(|s| s.0).collect();
    spec.labels = labels.into_iter().map(|s| s.0).collect();
    (spec, seen.into_keys().collect())
}

/// Records a variable name; reports bad names and duplicates. True when it is new and valid.
fn declare(
    ctx: &mut Ctx,
    seen: &mut BTreeMap<String, String>,
    key: &str,
    name: &str,
    origin: &Origin,
    section: &str,
) -> bool {
    if !is_identifier(name) {
        let hint = "use letters, digits and `_`, starting with a letter or `_`".to_string();
        ctx.error(
            origin,
            key,
            format!("{name:?} is not a valid variable name"),
            Some(hint),
        );
        return false;
    }
    if let Some(first) = seen.get(name) {
        let message = format!("duplicate variable: `{name}` is already defined in {first}");
        ctx.error(origin, key, message, Some(DUPLICATE_HINT.into()));
        return false;
    }
    seen.insert(name.to_string(), section.to_string());
    true
}

/// A name usable in templates and expressions.
pub(crate) fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    let reserved = [
        "true", "false", "none", "and", "or", "not", "in", "is", "if", "else", "loop",
    ];
    first_ok && chars.all(|c| c.is_ascii_alphanumeric() || c == '_') && !reserved.contains(&name)
}

/// One scalar value, converted and checked against the well-known rules for `name`.
fn value(ctx: &mut Ctx, key: &str, name: &str, node: &Node) -> Option<Value> {
    let v = match &node.kind {
        Kind::Str(s) => Value::Str(s.clone()),
        Kind::Int(i) => Value::Int(*i),
        Kind::Bool(b) => Value::Bool(*b),
        Kind::Float(x) if x.is_finite() => Value::Float(*x),
        Kind::Float(x) => {
            ctx.error(
                &node.origin,
                key,
                format!("must be a finite number, got {x}"),
                Some("nan and inf are TOML floats, but no setting takes them".into()),
            );
            return None;
        }
        _ => {
            let message = format!(
                "expected a string, number or boolean, got {}",
                node.describe()
            );
            let hint = matches!(node.kind, Kind::BigInt(_))
                .then(|| "integers must lie between -2^63 and 2^63 - 1".to_string());
            ctx.error(&node.origin, key, message, hint);
            return None;
        }
    };
    match wellknown::check(name, &v) {
        Ok(()) => Some(v),
        Err(p) => {
            ctx.error(&node.origin, key, p.message, p.hint);
            None
        }
    }
}

fn single(ctx: &mut Ctx, key: &str, name: &str, node: &Node) -> Option<Value> {
    if matches!(node.kind, Kind::Array(_) | Kind::Table(_)) {
        let message = format!("expected a single value, got {}", node.type_name());
        let hint = "to try several values, move it to [vars.sweep]".to_string();
        ctx.error(&node.origin, key, message, Some(hint));
        return None;
    }
    value(ctx, key, name, node)
}

/// The levels of a swept variable: a non-empty list of distinct values, or a range.
fn levels(ctx: &mut Ctx, key: &str, name: &str, node: &Node) -> Option<Vec<Value>> {
    let out = match &node.kind {
        Kind::Array(items) => {
            let mut out = Vec::with_capacity(items.len());
            let mut ok = true;
            for (i, item) in items.iter().enumerate() {
                match value(ctx, &format!("{key}[{i}]"), name, item) {
                    Some(v) if out.iter().any(|o| same(o, &v)) => {
                        let message = format!("duplicate value {v} in the sweep");
                        let hint = "each value is one cell; to measure a cell more often raise \
                                    `experiment.repetitions`";
                        ctx.error(
                            &item.origin,
                            &format!("{key}[{i}]"),
                            message,
                            Some(hint.into()),
                        );
                        ok = false;
                    }
                    Some(v) => out.push(v),
                    None => ok = false,
                }
            }
            ok.then_some(out)?
        }
        Kind::Table(t) => range(ctx, key, name, t, &node.origin)?,
        _ => {
            let message = format!(
                "expected a list of values or a range, got {}",
                node.describe()
            );
            let hint = "write `[1, 2, 4]` or `{ from = 1, to = 64, factor = 2 }`; for a single value use [vars.fixed]";
            ctx.error(&node.origin, key, message, Some(hint.into()));
            return None;
        }
    };
    if out.is_empty() {
        let hint = "give at least one value, or remove the variable";
        ctx.error(
            &node.origin,
            key,
            "empty sweep: no values to run",
            Some(hint.into()),
        );
        return None;
    }
    Some(out)
}

/// Whether two values are the same level (numbers compare by value: `10` and `10.0` are).
pub(crate) fn same(a: &Value, b: &Value) -> bool {
    match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) => x == y,
        _ => a == b,
    }
}

/// A checked range table: bounds, the step or factor, and whether the values are integers.
struct RangeSpec {
    from: f64,
    to: f64,
    by: f64,
    geometric: bool,
    ints: bool,
}

/// `{ from, to, step }` (arithmetic, inclusive of `to` when hit) or `{ from, to, factor }`.
fn range(ctx: &mut Ctx, key: &str, name: &str, t: &Table, origin: &Origin) -> Option<Vec<Value>> {
    let r = range_spec(ctx, key, t, origin)?;
    let steps = if r.geometric {
        (r.to / r.from).ln() / r.by.ln()
    } else {
        (r.to - r.from) / r.by
    };
    let n = (steps + 1e-9).floor() + 1.0;
    if n > MAX_RANGE_VALUES as f64 {
        let message = format!("the range has {n} values, more than {MAX_RANGE_VALUES}");
        ctx.error(
            origin,
            key,
            message,
            Some("use a larger step or factor".into()),
        );
        return None;
    }
    let values: Vec<Value> = (0..n as usize)
        .map(|i| {
            if r.geometric {
                r.from * r.by.powi(i as i32)
            } else {
                r.from + i as f64 * r.by
            }
        })
        .map(|x| {
            if r.ints {
                Value::Int(x.round() as i64)
            } else {
                Value::Float(round12(x))
            }
        })
        .collect();
    for v in &values {
        if let Err(p) = wellknown::check(name, v) {
            ctx.error(
                origin,
                key,
                format!("range value {v}: {}", p.message),
                p.hint,
            );
            return None;
        }
    }
    Some(values)
}

fn range_spec(ctx: &mut Ctx, key: &str, t: &Table, origin: &Origin) -> Option<RangeSpec> {
    let node = Node::new(origin.clone(), Kind::Table(t.clone()));
    ctx.table(key, &node, &["from", "to", "step", "factor"])?;
    let hint = "e.g. `{ from = 1, to = 64, step = 8 }` or `{ from = 1, to = 64, factor = 2 }`";
    let any = Range::at_least(f64::MIN);
    let from = ctx.require(key, (t, origin), "from", hint);
    let from_v = from.and_then(|n| ctx.number(&join_key(key, "from"), n, any, None));
    let to = ctx.require(key, (t, origin), "to", hint);
    let to_v = to.and_then(|n| ctx.number(&join_key(key, "to"), n, any, None));
    let (Some(from), Some(from_v), Some(to_v)) = (from, from_v, to_v) else {
        return None;
    };
    if to_v < from_v {
        let message = format!("`to` ({to_v}) is below `from` ({from_v})");
        ctx.error(
            origin,
            key,
            message,
            Some("ranges count upwards; swap them".into()),
        );
        return None;
    }
    let (by, geometric) = match (t.get("step"), t.get("factor")) {
        (Some(s), None) => (s, false),
        (None, Some(f)) => (f, true),
        _ => {
            ctx.error(
                origin,
                key,
                "a range needs exactly one of `step` and `factor`",
                Some(hint.into()),
            );
            return None;
        }
    };
    let by_key = join_key(key, if geometric { "factor" } else { "step" });
    let by_v = ctx.number(
        &by_key,
        by,
        Range::above(if geometric { 1.0 } else { 0.0 }),
        None,
    )?;
    if geometric && from_v <= 0.0 {
        ctx.error(
            &from.origin,
            &join_key(key, "from"),
            "a geometric range needs `from` > 0",
            None,
        );
        return None;
    }
    let ints = matches!(from.kind, Kind::Int(_)) && matches!(by.kind, Kind::Int(_));
    Some(RangeSpec {
        from: from_v,
        to: to_v,
        by: by_v,
        geometric,
        ints,
    })
}

/// Rounds to 12 significant digits, so `0.1 + 2 × 0.1` is `0.3` and ids stay readable.
fn round12(x: f64) -> f64 {
    format!("{x:.11e}").parse().unwrap_or(x)
}

fn linked_group(
    ctx: &mut Ctx,
    seen: &mut BTreeMap<String, String>,
    name: &str,
    node: &Node,
) -> Option<LinkedGroup> {
    let gkey = join_key("vars.linked", name);
    let t = ctx.table(&gkey, node, &[])?;
    if t.entries.is_empty() {
        let hint = "list the variables that move together, e.g. `prompt_tokens = [128, 2048]`";
        ctx.error(&node.origin, &gkey, "empty linked group", Some(hint.into()));
        return None;
    }
    let mut group = LinkedGroup {
        name: name.to_string(),
        vars: vec![],
    };
    let mut ok = true;
    for e in &t.entries {
        let key = join_key(&gkey, &e.key);
        let section = format!("[vars.linked.{name}]");
        ok &= declare(ctx, seen, &key, &e.key, &e.key_origin, &section);
        match levels(ctx, &key, &e.key, &e.value) {
            Some(l) => {
                if let Some((first, first_levels)) = group.vars.first()
                    && first_levels.len() != l.len()
                {
                    let message = format!(
                        "has {} values but `{first}` has {}",
                        l.len(),
                        first_levels.len()
                    );
                    let hint =
                        "linked variables move together, so their lists need the same length";
                    ctx.error(&e.value.origin, &key, message, Some(hint.into()));
                    ok = false;
                }
                group.vars.push((e.key.clone(), l));
            }
            None => ok = false,
        }
    }
    ok.then_some(group)
}

/// `labels` must name variables; exclusions must compile and use only variables.
fn check_references(
    ctx: &mut Ctx,
    seen: &BTreeMap<String, String>,
    exclude: &[(String, Origin)],
    labels: &[(String, Origin)],
) {
    let names: Vec<&str> = seen.keys().map(String::as_str).collect();
    for (i, (label, origin)) in labels.iter().enumerate() {
        if !seen.contains_key(label) {
            let message = format!(
                "`{label}` is not a variable{}",
                did_you_mean(label, names.iter().copied())
            );
            ctx.error(origin, &format!("vars.labels[{i}]"), message, None);
        }
    }
    for (i, (expr, origin)) in exclude.iter().enumerate() {
        let key = format!("vars.exclude[{i}]");
        match super::template::expression_variables(expr) {
            Err(e) => ctx.error(origin, &key, format!("invalid expression: {e}"), None),
            Ok(used) => {
                for name in used.iter().filter(|n| !seen.contains_key(*n)) {
                    let close = did_you_mean(name, names.iter().copied());
                    ctx.error(
                        origin,
                        &key,
                        format!("undefined variable `{name}` in {expr:?}{close}"),
                        None,
                    );
                }
            }
        }
    }
}
