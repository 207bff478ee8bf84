//! The capacity rows as the Markdown shows them, on the probe sets of `capacity_tests`.

use super::capacity_tests::{ABOVE, BASE, CAND, marginal, pair};
use super::capacity_view::{self, CapacityView};

fn view(base: &[(f64, [f64; 3])], cand: &[(f64, [f64; 3])]) -> CapacityView {
    capacity_view::views(&pair(base, cand, None)).remove(0)
}

#[test]
fn a_regression_row_shows_the_crossings_their_intervals_and_the_brackets() {
    let v = view(&BASE, &CAND);
    assert_eq!(v.criterion, "mean attainment ≥ 99.0 % with ttft ≤ 200 ms");
    // No spread in the repetitions: every interval is its point.
    assert_eq!(v.base, "13.22 req/s [13.22, 13.22]");
    assert_eq!(v.cand, "10.09 req/s [10.09, 10.09]");
    assert_eq!(v.delta, "−23.7 % [−23.7 %, −23.7 %]");
    assert_eq!(v.verdict, "**regression** (τ 5.00 %)");
    assert!(v.changed);
    assert_eq!(
        v.sides,
        [
            "baseline (converged): bisection bracket [13.21, 13.6); curve crossing 13.22 req/s [13.22, 13.22]; 2000 bootstrap draws of whole rounds",
            "candidate (converged): bisection bracket [10.08, 10.47); curve crossing 10.09 req/s [10.09, 10.09]; 2000 bootstrap draws of whole rounds",
        ]
    );
    assert_eq!(v.probes.len(), 16);
    let first = &v.probes[0];
    assert_eq!(
        (first.run.as_str(), first.load.as_str(), first.n),
        ("baseline", "5 req/s", 3)
    );
    assert_eq!(
        (
            first.attainment.as_str(),
            first.ci.as_str(),
            first.result.as_str()
        ),
        ("100.0 %", "[100.0 %, 100.0 %]", "confident pass")
    );
}

#[test]
fn marginal_probes_spread_the_intervals() {
    let (base, cand) = marginal();
    let v = view(&base, &cand);
    assert_eq!(v.base, "13.21 req/s [11.92, 14.43]");
    assert_eq!(v.cand, "10.08 req/s [8.792, 10.48]");
    assert_eq!(v.delta, "−23.7 % [−36.2 %, −13.3 %]");
    let marginal_pass = v.probes.iter().find(|p| p.load == "13.21 req/s").unwrap();
    assert_eq!(marginal_pass.result, "pass");
    let marginal_fail = v.probes.iter().find(|p| p.load == "13.6 req/s").unwrap();
    assert_eq!(marginal_fail.result, "fail");
}

#[test]
fn an_inconclusive_row_says_what_would_resolve_it() {
    let (base, _) = marginal();
    let v = view(&base, &base);
    assert_eq!(v.delta, "+0 % [−14.5 %, +17.0 %]");
    assert_eq!(
        v.verdict,
        "inconclusive (τ 5.00 %; add `search.repetitions` to both searches: the interval narrows about as 1 / √repetitions)"
    );
}

#[test]
fn an_above_range_capacity_reads_as_a_lower_bound() {
    let v = view(&ABOVE, &CAND);
    assert_eq!(v.base, "≥ 480 req/s (above the probed range) [480, ∞)");
    // Δ ≤ 10.09 / 480 − 1, and down to −100 % (the baseline is unbounded above).
    assert_eq!(v.delta, "≤ −97.9 % [−100 %, −97.9 %]");
    assert!(v.sides[0].starts_with("baseline (above_range): bisection bracket ≥ 480; "));
    let both = view(&ABOVE, &ABOVE);
    assert_eq!(both.delta, "— [−100 %, +∞)");
    assert!(
        both.verdict
            .ends_with("raise `search.high`: an above-range capacity is only a lower bound)")
    );
}
