//! Formatting of values in their units for reports and terminal output: seconds as µs/ms/s,
//! rates with their unit, fractions as percentages, always with a sensible number of
//! significant digits.

use crate::metrics::{MetricKey, Unit};

/// `0.0123` → `12.3 ms`; `2.5` → `2.50 s`; `0.0000421` → `42.1 µs`.
pub fn seconds(s: f64) -> String {
    let a = s.abs();
    if a >= 1.0 {
        format!("{} s", sig(s, 3))
    } else if a >= 1e-3 {
        format!("{} ms", sig(s * 1e3, 3))
    } else if a == 0.0 {
        "0 ms".to_string()
    } else {
        format!("{} µs", sig(s * 1e6, 3))
    }
}

/// A number with at least `digits` significant digits, never in exponent notation, and no
/// more decimals than needed for that (e.g. `sig(2413.37, 3)` = `2413`, `sig(0.01234, 3)` =
/// `0.0123`).
pub fn sig(x: f64, digits: i32) -> String {
    if x == 0.0 || !x.is_finite() {
        return format!("{x}");
    }
    let magnitude = x.abs().log10().floor() as i32;
    let mut decimals = (digits - 1 - magnitude).max(0) as usize;
    // 9.996 at 3 digits rounds up to 10.00: one decimal fewer keeps 3 digits (10.0).
    let rounded: f64 = format!("{x:.decimals$}").parse().unwrap_or(x);
    if decimals > 0 && rounded.abs() >= 10f64.powi(magnitude + 1) {
        decimals -= 1;
    }
    format!("{x:.decimals$}")
}

/// A value of a metric in its unit: `ttft.p99` 0.25 → `250 ms`; `error_rate` 0.012 →
/// `1.20 %`; `output_throughput` 2413.4 → `2413 tok/s`.
pub fn metric_value(key: MetricKey, v: f64) -> String {
    match key.unit() {
        Unit::Seconds => seconds(v),
        Unit::TokensPerSecond => format!("{} tok/s", sig(v, 4)),
        Unit::RequestsPerSecond => format!("{} req/s", sig(v, 3)),
        Unit::SamplesPerSecond => format!("{} samples/s", sig(v, 3)),
        Unit::Fraction => percent(v),
        Unit::Watts => format!("{} W", sig(v, 3)),
        Unit::Joules => format!("{} J", sig(v, 3)),
        Unit::JoulesPerToken => format!("{} J/tok", sig(v, 3)),
        Unit::Cores => format!("{} cores", sig(v, 2)),
        Unit::PricePer1kTokens => format!("{} /1k tok", sig(v, 3)),
        Unit::Count => sig(v, 3),
    }
}

/// `mean ± std` of a metric across repetitions, each in the metric's unit (`—` for the
/// std of a single repetition).
pub fn mean_std(key: MetricKey, d: &crate::stats::Description) -> String {
    let std = d.std.map_or("—".into(), |s| metric_value(key, s));
    format!("{} ± {std}", metric_value(key, d.mean))
}

/// A relative change with its CI — the paired `exp(d̄ ± t·s_d/√n) − 1`, or Fieller's —
/// `+8.30 % [−0.50 %, +17.3 %]`, or `—` when no ratio exists (a baseline mean of zero).
pub fn relative_change(c: &crate::stats::Comparison) -> String {
    let Some((change, ci)) = c.change() else {
        return "—".into();
    };
    match ci {
        crate::stats::Interval::Bounded { low, high } => format!(
            "{} [{}, {}]",
            signed_percent(change),
            signed_percent(low),
            signed_percent(high)
        ),
        crate::stats::Interval::Unbounded => {
            format!("{} [unbounded: baseline too noisy]", signed_percent(change))
        }
    }
}

/// The change of a comparison on its scale: the relative change with its CI
/// ([`relative_change`]), or the difference with its CI (paired, or Welch's) in the metric's
/// unit, fractions in percentage points: `+2.40 pp [+1.72 pp, +3.08 pp]`.
pub fn change(c: &crate::stats::Comparison, key: MetricKey) -> String {
    use crate::stats::{Interval, Scale};
    if c.scale == Scale::Relative {
        return relative_change(c);
    }
    match c.change() {
        None => "—".into(),
        Some((d, Interval::Bounded { low, high })) if low == high => signed_change(key, d),
        Some((d, Interval::Bounded { low, high })) => format!(
            "{} [{}, {}]",
            signed_change(key, d),
            signed_change(key, low),
            signed_change(key, high)
        ),
        Some((d, Interval::Unbounded)) => signed_change(key, d),
    }
}

/// Which analysis a set of comparisons used, for the method line of a report:
/// `paired by round over 10 pairs`, `paired by round over 8–10 pairs`, `paired by document
/// over 50 documents`, `paired by item over 500 items`, and
/// `; 2 unpaired (Welch, Fieller): <reason>` for those that could not pair.
pub fn design_text<'a>(designs: impl IntoIterator<Item = &'a crate::stats::Design>) -> String {
    use crate::stats::{Design, ItemUnit};
    let (mut rounds, mut documents, mut items) = (Vec::new(), Vec::new(), Vec::new());
    let mut unpaired = Vec::new();
    for d in designs {
        match d {
            Design::Paired { pairs: n } => rounds.push(*n),
            Design::Items {
                unit: ItemUnit::Documents,
                pairs: n,
            } => documents.push(*n),
            Design::Items {
                unit: ItemUnit::Items,
                pairs: n,
            } => items.push(*n),
            Design::Unpaired { reason } => unpaired.push(reason.as_str()),
        }
    }
    let mut parts: Vec<String> = [
        (&rounds, "round", "pair"),
        (&documents, "document", "document"),
        (&items, "item", "item"),
    ]
    .into_iter()
    .filter_map(|(n, by, noun)| paired_over(n, by, noun))
    .collect();
    if !unpaired.is_empty() {
        let mut reasons = unpaired.clone();
        reasons.sort_unstable();
        reasons.dedup();
        parts.push(format!(
            "{} unpaired (Welch's t, Fieller's CI): {}",
            count(unpaired.len()),
            reasons.join("; ")
        ));
    }
    parts.join("; ")
}

/// `3 comparisons paired by round over 8–10 pairs`; `None` for no comparisons.
fn paired_over(pairs: &[usize], by: &str, noun: &str) -> Option<String> {
    let (low, high) = (pairs.iter().min()?, pairs.iter().max()?);
    let range = match low == high {
        true => low.to_string(),
        false => format!("{low}–{high}"),
    };
    let s = if *high == 1 { "" } else { "s" };
    Some(format!(
        "{} paired by {by} over {range} {noun}{s}",
        count(pairs.len())
    ))
}

/// The method sentence of a report's comparisons: which analysis was used ([`design_text`])
/// and how Δ, its CI and p are computed under each design that occurs, at `confidence` %.
pub fn design_method<'a>(
    designs: impl IntoIterator<Item = &'a crate::stats::Design> + Clone,
    confidence: &str,
) -> String {
    use crate::stats::{Design, ItemUnit};
    let any = |f: fn(&Design) -> bool| designs.clone().into_iter().any(f);
    let mut out = format!("Design: {}.", design_text(designs.clone()));
    if any(|d| matches!(d, Design::Paired { .. })) {
        out.push_str(&format!(
            " Paired by round: Δ = exp(m) − 1 with its {confidence} % t-interval, m = the mean over the rounds present on both sides of ln(candidate / baseline) (proportions: the mean per-round difference, in pp); p = paired t-test on those per-round values."
        ));
    }
    if any(|d| {
        matches!(
            d,
            Design::Items {
                unit: ItemUnit::Documents,
                ..
            }
        )
    }) {
        out.push_str(&format!(
            " Paired by document (perplexity): Δ = exp(m) − 1 = candidate / baseline perplexity − 1 with its {confidence} % t-interval, m = the token-weighted mean over the documents of the per-token NLL difference, with a standard error that treats each document as a cluster; p = t-test on documents − 1 degrees of freedom."
        ));
    }
    if any(|d| {
        matches!(
            d,
            Design::Items {
                unit: ItemUnit::Items,
                ..
            }
        )
    }) {
        out.push_str(&format!(
            " Paired by item (accuracy): Δ = candidate − baseline share of items answered correctly, in pp, with Newcombe's {confidence} % interval for paired proportions (1998, method 10); p = exact McNemar test on the items the two sides answered differently."
        ));
    }
    if any(|d| matches!(d, Design::Unpaired { .. })) {
        out.push_str(&format!(
            " Unpaired: Δ = candidate / baseline − 1 with its Fieller {confidence} % CI; p = Welch's t-test."
        ));
    }
    out
}

/// `1 comparison`, `6 comparisons`.
fn count(n: usize) -> String {
    format!("{n} comparison{}", if n == 1 { "" } else { "s" })
}

/// A practical-significance threshold on the metric's scale: `5 %` of the baseline, or
/// `1 pp` for a proportion.
pub fn threshold(key: MetricKey, tau: f64) -> String {
    match key.scale() {
        crate::stats::Scale::Relative => percent(tau),
        crate::stats::Scale::Absolute => magnitude(key, tau),
    }
}

/// A signed difference in the metric's unit (fractions in percentage points).
pub fn signed_change(key: MetricKey, x: f64) -> String {
    let sign = if x < 0.0 { "−" } else { "+" };
    format!("{sign}{}", magnitude(key, x.abs()))
}

/// A size in the metric's unit; fractions in percentage points (`0.024` → `2.40 pp`).
fn magnitude(key: MetricKey, x: f64) -> String {
    match key.unit() {
        Unit::Fraction => format!("{} pp", sig(x * 100.0, 3)),
        _ => metric_value(key, x),
    }
}

/// `0.0123` → `1.23 %`.
pub fn percent(fraction: f64) -> String {
    format!("{} %", sig(fraction * 100.0, 3))
}

/// Signed percentage: `0.083` → `+8.30 %`, `-0.015` → `−1.50 %`.
pub fn signed_percent(fraction: f64) -> String {
    let text = percent(fraction.abs());
    if fraction < 0.0 {
        format!("−{text}")
    } else {
        format!("+{text}")
    }
}

/// `+2.05`, `−0.31`: a signed number with two decimals and the typographic minus.
pub fn signed(x: f64) -> String {
    format!("{x:+.2}").replace('-', "−")
}

/// A p-value with two significant digits, in scientific notation below 1e−3 (`8.7e−4`).
pub fn p_value(p: f64) -> String {
    if p < 1e-3 {
        let e = p.log10().floor() as i32;
        let m = p / 10f64.powi(e);
        // One minus sign throughout: the typographic one, as in every Δ.
        format!("{m:.1}e{e}").replace('-', "−")
    } else {
        sig(p, 2)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::registry::k;

    #[test]
    fn values_are_shown_in_readable_units() {
        assert_eq!(seconds(0.0123), "12.3 ms");
        assert_eq!(seconds(2.5), "2.50 s");
        assert_eq!(seconds(0.0000421), "42.1 µs");
        assert_eq!(metric_value(k("ttft.p99"), 0.25), "250 ms");
        assert_eq!(metric_value(k("error_rate"), 0.012), "1.20 %");
        assert_eq!(metric_value(k("output_throughput"), 2413.37), "2413 tok/s");
        assert_eq!(signed_percent(-0.015), "−1.50 %");
        assert_eq!(p_value(0.061), "0.061");
        assert_eq!(p_value(1.3e-6), "1.3e−6");
        assert_eq!(sig(0.01234, 3), "0.0123");
        assert_eq!(sig(9.99999, 3), "10.0");
    }

    #[test]
    fn design_text_counts_each_kind_of_pairing() {
        use crate::stats::{Design, ItemUnit};
        let designs = [
            Design::Paired { pairs: 10 },
            Design::Paired { pairs: 8 },
            Design::Items {
                unit: ItemUnit::Documents,
                pairs: 50,
            },
            Design::Items {
                unit: ItemUnit::Items,
                pairs: 500,
            },
            Design::Unpaired {
                reason: "no common seed".into(),
            },
        ];
        assert_eq!(
            design_text(&designs),
            "2 comparisons paired by round over 8–10 pairs; 1 comparison paired by document over 50 documents; 1 comparison paired by item over 500 items; 1 comparison unpaired (Welch's t, Fieller's CI): no common seed"
        );
        let method = design_method(&designs[2..3], "95");
        assert!(
            method.contains("Paired by document (perplexity)"),
            "{method}"
        );
        assert!(
            !method.contains("Unpaired") && !method.contains("by round:"),
            "{method}"
        );
    }
}
