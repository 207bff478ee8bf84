//! The paired design of the self-test (issue 15): rounds that share a workload. Each simulated
//! round draws one large workload effect that both sides share (how many requests arrived, how
//! long the prompts were) and a small independent noise per side, as round r of two runs with
//! one seed does. The paired t on the per-round log ratios must flag about α of the A/A
//! comparisons and detect a true shift about as often as its analytical power says; Welch on
//! the same values is shown for contrast (the shared effect swamps it).

use super::{Noise, Rate, Settings};
use crate::seed::derive;
use crate::stats::{self, Scale};

/// What the paired experiment found.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PairedOutcome {
    /// A/A comparisons flagged by the paired t.
    pub false_positive: Rate,
    /// Shifted comparisons flagged by the paired t.
    pub detection: Rate,
    /// Exact noncentral-t power of the paired t for the shift.
    pub analytical_power: f64,
    /// Shifted comparisons flagged by Welch on the same values (the unpaired analysis).
    pub welch_detection: Rate,
}

/// `n` rounds of `(baseline, candidate)`: a shared lognormal workload effect with CV
/// `workload_cv` times an independent lognormal noise with CV `paired_noise_cv` per side.
fn rounds(s: &Settings, shift: f64, shared: &mut Noise, own: &mut Noise) -> (Vec<f64>, Vec<f64>) {
    (0..s.n)
        .map(|_| {
            let w = 100.0 * shared.runs(1.0, 1)[0];
            let a = w * own.runs(1.0, 1)[0];
            let b = w * (1.0 + shift) * own.runs(1.0, 1)[0];
            (a, b)
        })
        .unzip()
}

/// Shares of `trials` paired comparisons that the paired t and Welch flag at α.
fn significant(s: &Settings, shift: f64, stream: &str) -> (Rate, Rate) {
    let mut shared = Noise::new(
        derive(s.seed, None, 0, &format!("{stream}-shared")),
        s.workload_cv,
    );
    let mut own = Noise::new(derive(s.seed, None, 0, stream), s.paired_noise_cv);
    let (mut paired, mut welch) = (0, 0);
    for _ in 0..s.trials {
        let (a, b) = rounds(s, shift, &mut shared, &mut own);
        let p = stats::paired(&a, &b, s.alpha, Scale::Relative).map(|t| t.p_two_sided);
        paired += usize::from(p.is_some_and(|p| p < s.alpha));
        let w = stats::welch(&a, &b, s.alpha).map(|w| w.p_value());
        welch += usize::from(w.is_some_and(|p| p < s.alpha));
    }
    (Rate::new(paired, s.trials), Rate::new(welch, s.trials))
}

/// Runs the paired A/A and shifted experiments; `None` when the settings are out of range.
pub(super) fn run(s: &Settings) -> Option<PairedOutcome> {
    // d_r = ln(1 + shift) + (ln e_b − ln e_a): the sd of a difference of two lognormal noises.
    let sigma = (1.0 + s.paired_noise_cv * s.paired_noise_cv).ln().sqrt();
    let delta = s.paired_shift.ln_1p();
    let analytical_power = stats::paired_power(delta, sigma * 2f64.sqrt(), s.n, s.alpha)?;
    let (false_positive, _) = significant(s, 0.0, "selftest-paired-aa");
    let (detection, welch_detection) = significant(s, s.paired_shift, "selftest-paired-shift");
    Some(PairedOutcome {
        false_positive,
        detection,
        analytical_power,
        welch_detection,
    })
}
