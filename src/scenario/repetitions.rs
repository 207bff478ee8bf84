//! `[experiment] repetitions`: a fixed number (`repetitions = 10`) or adaptive
//! (`repetitions = { min = 10, max = 30, target_ci = "2%" }`, statistics.md §2.8).

use std::num::NonZeroU32;

use super::analysis::fraction_in;
use super::doc::{Kind, Node};
use super::read::{Ctx, Range};

/// Adaptive repetitions: after `min` rounds, whole rounds are added until every primary
/// metric's relative 95 % CI half-width is within its target in every cell, or `max` rounds
/// have run. Never decided on a p-value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Adaptive {
    /// Most rounds (≥ the minimum, `Experiment::repetitions`).
    pub max: NonZeroU32,
    /// `target_ci` as a fraction (0.02 = 2 %) for every primary metric; `None` uses the
    /// defaults of statistics.md §2.8: 2 % for throughput and means, 5 % for tails.
    pub target_ci: Option<f64>,
}

impl Adaptive {
    /// The largest acceptable relative CI half-width of `metric`.
    pub fn target_for(&self, metric: crate::metrics::MetricKey) -> f64 {
        self.target_ci
            .unwrap_or_else(|| if metric.is_tail() { 0.05 } else { 0.02 })
    }
}

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

#[cfg(test)]
mod tests {
    use std::path::Path;

    fn experiment(repetitions: &str, extra: &str) -> crate::scenario::Scenario {
        let text = format!(
            "[experiment]\nname = \"a\"\ndescription = \"d\"\nrepetitions = {repetitions}\n[target]\nkind = \"sim\"\nmodel_config = \"llama-3.1-8b\"\ngpu = \"h100-sxm\"\n[vars.fixed]\nrequest_rate = 10\n{extra}"
        );
        crate::scenario::parse(&text, Path::new("a.toml"), &[]).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn the_table_form_is_adaptive_with_defaults() {
        let s = experiment("{ min = 12, max = 40, target_ci = 0.03 }", "");
        let a = s.experiment.adaptive.unwrap();
        assert_eq!(s.experiment.repetitions.get(), 12);
        assert_eq!((a.max.get(), a.target_ci), (40, Some(0.03)));
        let s = experiment("{}", "");
        let a = s.experiment.adaptive.unwrap();
        assert_eq!(s.experiment.repetitions.get(), 10);
        assert_eq!((a.max.get(), a.target_ci), (30, None));
        assert!(experiment("10", "").experiment.adaptive.is_none());
    }

    #[test]
    fn a_small_minimum_and_a_search_are_warned_about() {
        let s = experiment("{ min = 3, max = 5 }", "");
        assert!(s.warnings[0].starts_with("experiment.repetitions.min = 3:"));
        let s = experiment(
            "{ min = 10, max = 20 }",
            "[slo]\nttft = \"1s\"\n[search]\nlow = 1\nhigh = 9\n",
        );
        assert!(
            s.warnings
                .iter()
                .any(|w| w.contains("adaptive repetitions do not apply to [search]")),
            "{:?}",
            s.warnings
        );
        let spec = s.search.unwrap();
        assert_eq!(spec.variable, "request_rate");
        assert_eq!(
            (spec.target, spec.tolerance, spec.repetitions.get()),
            (0.99, 0.05, 5)
        );
    }
}
