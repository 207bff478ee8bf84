//! `[experiment] repetitions`: a fixed number (`repetitions = 10`) or adaptive
//! (`repetitions = { min = 10, max = 30, target_ci = "2%" }`, statistics.md §2.8).

use std::num::NonZeroU32;

use super::analysis::fraction_in;
use super::doc::{Kind, Node};
use super::model::Adaptive;
use super::read::{Ctx, Range};

const KEY: &str = "experiment.repetitions";
const MOST: i64 = 100_000;

/// Validates `repetitions`: the rounds to run first and, for the table form, the adaptive
/// settings. `None` after recording an error.
pub(crate) fn repetitions(
    ctx: &mut Ctx,
    node: Option<&Node>,
) -> Option<(NonZeroU32, Option<Adaptive>)> {
    let hint = "repetitions per cell; 10 or more for trustworthy confidence intervals";
    let Some(node) = node else {
        return Some((NonZeroU32::new(10)?, None));
    };
    if !matches!(node.kind, Kind::Table(_)) {
        let n = ctx.int(KEY, node, 1, MOST, Some(hint))?;
        if n < 10 {
            ctx.warnings.push(format!(
                "{KEY} = {n}: fewer than 10 repetitions give wide confidence intervals and weak significance tests"
            ));
        }
        return Some((NonZeroU32::new(n as u32)?, None));
    }
    let t = ctx.table(KEY, node, &["min", "max", "target_ci"])?;
    let min_hint = Some("rounds before the first look; at least 2 (10 recommended)");
    let min = match t.get("min") {
        Some(n) => ctx.int(&format!("{KEY}.min"), n, 2, MOST, min_hint),
        None => Some(10),
    };
    let max_hint = Some("the cap on rounds; statistics.md suggests 30");
    let max = match t.get("max") {
        Some(n) => ctx.int(&format!("{KEY}.max"), n, 2, MOST, max_hint),
        None => Some(30),
    };
    let target = t.get("target_ci").map(|n| {
        let range = Range::above(0.0).below(1.0);
        let hint =
            "the largest acceptable 95 % CI half-width relative to the mean, e.g. \"2%\" or 0.02";
        fraction_in(ctx, &format!("{KEY}.target_ci"), n, range, hint)
    });
    let (min, max) = (min?, max?);
    if max < min {
        let origin = &t.get("max").unwrap_or(node).origin;
        let message = format!("max = {max} is below min = {min}");
        let hint = "max caps the rounds an adaptive run may add; make it at least min";
        ctx.error(origin, &format!("{KEY}.max"), message, Some(hint.into()));
        return None;
    }
    if min < 10 {
        ctx.warnings.push(format!(
            "{KEY}.min = {min}: fewer than 10 repetitions before the first look make the stopping rule follow the noise of the variance estimate"
        ));
    }
    let adaptive = Adaptive {
        max: NonZeroU32::new(max as u32)?,
        target_ci: match target {
            Some(t) => Some(t?),
            None => None,
        },
    };
    Some((NonZeroU32::new(min as u32)?, Some(adaptive)))
}
