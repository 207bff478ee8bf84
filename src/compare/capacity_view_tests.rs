//! The capacity rows as the Markdown shows them, on the probe sets of `capacity_tests`.

use super::capacity_tests::{ABOVE, BASE, CAND, marginal, pair};
use super::capacity_view::{self, CapacityView};

fn view(base: &[(f64, [f64; 3])], cand: &[(f64, [f64; 3])]) -> CapacityView {
    capacity_view::views(&pair(base, cand, None)).remove(0)
}

#[test]
fn a_regression_row_shows_both_brackets_and_the_interval() {
    let v = view(&BASE, &CAND);
    assert_eq!(v.criterion, "mean attainment ≥ 99.0 % with ttft ≤ 200 ms");
    assert_eq!(v.base, "13.21 req/s [13.21, 13.6)");
    assert_eq!(v.cand, "10.08 req/s [10.08, 10.47)");
    assert_eq!(v.delta, "−23.7 % [−25.9 %, −20.7 %]");
    assert_eq!(v.verdict, "**regression** (τ 5.00 %)");
    assert!(v.changed);
    assert_eq!(
        v.sides,
        [
            "baseline (converged): 13.21 req/s [13.21, 13.6); confident bracket [13.21, 13.6)",
            "candidate (converged): 10.08 req/s [10.08, 10.47); confident bracket [10.08, 10.47)",
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
fn an_inconclusive_row_says_what_would_resolve_it() {
    let (base, cand) = marginal();
    let v = view(&base, &cand);
    assert_eq!(v.delta, "−23.7 % [−53.6 %, +0 %]");
    assert_eq!(
        v.verdict,
        "inconclusive (τ 5.00 %; add `search.repetitions` so the probes' CIs clear the target, or narrow `search.tolerance` to 2.50 % or less)"
    );
    let marginal_pass = v.probes.iter().find(|p| p.load == "13.21 req/s").unwrap();
    assert_eq!(marginal_pass.result, "pass");
    let marginal_fail = v.probes.iter().find(|p| p.load == "13.6 req/s").unwrap();
    assert_eq!(marginal_fail.result, "fail");
}

#[test]
fn an_above_range_capacity_reads_as_a_lower_bound() {
    let v = view(&ABOVE, &CAND);
    assert_eq!(v.base, "≥ 480 req/s (above the searched range)");
    assert_eq!(v.delta, "≤ −97.9 % [−100 %, −97.8 %]");
    let both = view(&ABOVE, &ABOVE);
    assert_eq!(both.delta, "— [−100 %, +∞)");
    assert!(
        both.verdict
            .ends_with("raise `search.high`: an above-range capacity is only a lower bound)")
    );
}
