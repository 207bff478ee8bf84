//! `exp selftest stats`: proof that the statistics are calibrated (issue 5, statistics.md
//! §3.12). Thousands of simulated A/A comparisons of identical configurations — n runs per
//! side with lognormal run-to-run noise — must make Welch's test (unadjusted, as fed to Holm)
//! flag about α of them: a tool that flags too often cries wolf, one that never flags is
//! useless, and both fail. The same experiment with a true shift must detect it about as
//! often as the analytical power says.
//!
//! The same two proofs for the paired design ([`paired`]): rounds sharing a large workload
//! effect, compared by the paired t on per-round log ratios (issue 15).
//!
//! Pure arithmetic over a seeded SplitMix64 stream: the same settings always give the same
//! figures, on every platform.

pub mod fidelity;
mod paired;
pub mod steps;

pub use paired::PairedOutcome;

use std::fmt::Write as _;

use crate::seed::{SplitMix64, derive};
use crate::stats::{self, power};
use crate::units;

/// Acceptable A/A false-positive rate at α = 0.05 (issue 5).
pub const FALSE_POSITIVE_RANGE: (f64, f64) = (0.035, 0.065);

/// Largest acceptable gap between the simulated detection rate and the analytical power.
pub const POWER_TOLERANCE: f64 = 0.05;

/// `z_{0.975}`, for the 95 % Wilson intervals of the rates.
const Z_975: f64 = 1.959_963_984_540_054;

/// What to simulate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Settings {
    /// Comparisons of each kind (A/A and shifted); at least 1000.
    pub trials: usize,
    /// Runs per side.
    pub n: usize,
    /// Run-to-run coefficient of variation of the lognormal noise.
    pub cv: f64,
    /// True relative shift of the candidate in the detection experiment.
    pub shift: f64,
    /// Significance level.
    pub alpha: f64,
    /// Seed of the noise.
    pub seed: u64,
    /// Paired design: CV of the per-round workload effect both sides share.
    pub workload_cv: f64,
    /// Paired design: CV of each side's own noise in a round.
    pub paired_noise_cv: f64,
    /// Paired design: true relative shift of the candidate in the detection experiment.
    pub paired_shift: f64,
}

impl Default for Settings {
    /// 2000 comparisons, n = 10, CV 3 %, shift 5 %, α = 0.05, seed 1; paired: a shared
    /// workload effect of CV 20 %, own noise CV 1 % per side, shift 1 %.
    fn default() -> Self {
        Settings {
            trials: 2000,
            n: 10,
            cv: 0.03,
            shift: 0.05,
            alpha: 0.05,
            seed: 1,
            workload_cv: 0.20,
            paired_noise_cv: 0.01,
            paired_shift: 0.01,
        }
    }
}

/// A rate of significant results with its 95 % Wilson score interval.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    /// Comparisons with Welch p < α.
    pub hits: usize,
    /// Comparisons made.
    pub trials: usize,
    /// `hits / trials`.
    pub rate: f64,
    /// Wilson 95 % interval of the rate.
    pub ci: (f64, f64),
}

impl Rate {
    fn new(hits: usize, trials: usize) -> Self {
        let (k, n) = (hits as f64, trials as f64);
        let p = k / n;
        let z2 = Z_975 * Z_975;
        let centre = (p + z2 / (2.0 * n)) / (1.0 + z2 / n);
        let half = Z_975 * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt() / (1.0 + z2 / n);
        // At 0 (or all) hits the bound is exactly 0 (or 1); rounding would leave a 1e-19.
        let low = if hits == 0 { 0.0 } else { centre - half };
        let high = if hits == trials { 1.0 } else { centre + half };
        Rate {
            hits,
            trials,
            rate: p,
            ci: (low, high),
        }
    }
}

/// The result of a self-test.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// What was simulated.
    pub settings: Settings,
    /// A/A comparisons flagged significant.
    pub false_positive: Rate,
    /// Shifted comparisons flagged significant.
    pub detection: Rate,
    /// Exact noncentral-t power for the shift at the settings' n, CV and α.
    pub analytical_power: f64,
    /// A/A comparisons flagged at any of the PR-mode looks (`--extra-looks 2`: the candidate
    /// grows by 5 runs per look, the baseline stays), each look at Pocock's nominal α.
    pub sequential: Rate,
    /// The same looks, each at the unadjusted α: what looking again without Pocock costs.
    pub sequential_unadjusted: Rate,
    /// The paired design: rounds sharing a workload, compared by the paired t.
    pub paired: PairedOutcome,
}

impl Outcome {
    /// The false-positive rate lies in [`FALSE_POSITIVE_RANGE`].
    pub fn false_positive_ok(&self) -> bool {
        let (low, high) = FALSE_POSITIVE_RANGE;
        (low..=high).contains(&self.false_positive.rate)
    }

    /// The detection rate is within [`POWER_TOLERANCE`] of the analytical power.
    pub fn detection_ok(&self) -> bool {
        (self.detection.rate - self.analytical_power).abs() <= POWER_TOLERANCE
    }

    /// The false-positive rate over all sequential looks lies in [`FALSE_POSITIVE_RANGE`].
    pub fn sequential_ok(&self) -> bool {
        let (low, high) = FALSE_POSITIVE_RANGE;
        (low..=high).contains(&self.sequential.rate)
    }

    /// The paired t's A/A false-positive rate lies in [`FALSE_POSITIVE_RANGE`].
    pub fn paired_false_positive_ok(&self) -> bool {
        let (low, high) = FALSE_POSITIVE_RANGE;
        (low..=high).contains(&self.paired.false_positive.rate)
    }

    /// The paired t's detection rate is within [`POWER_TOLERANCE`] of its analytical power.
    pub fn paired_detection_ok(&self) -> bool {
        (self.paired.detection.rate - self.paired.analytical_power).abs() <= POWER_TOLERANCE
    }

    /// Every criterion holds.
    pub fn passed(&self) -> bool {
        self.false_positive_ok()
            && self.detection_ok()
            && self.sequential_ok()
            && self.paired_false_positive_ok()
            && self.paired_detection_ok()
    }
}

/// Settings the self-test refuses.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SelftestError {
    /// Fewer than 1000 comparisons cannot pin a 5 % rate to ±1.5 points.
    #[error("at least 1000 comparisons are needed, got {0}")]
    TooFewTrials(usize),
    /// n, CV, shift or α out of range.
    #[error("invalid settings: {0}")]
    Invalid(&'static str),
}

/// Lognormal noise with mean 1 and coefficient of variation `cv`.
struct Noise {
    rng: SplitMix64,
    sigma: f64,
    mu: f64,
}

impl Noise {
    fn new(seed: u64, cv: f64) -> Self {
        let sigma = (1.0 + cv * cv).ln().sqrt();
        Noise {
            rng: SplitMix64::new(seed),
            sigma,
            mu: -0.5 * sigma * sigma,
        }
    }

    /// A uniform in the open interval (0, 1).
    fn uniform(&mut self) -> f64 {
        ((self.rng.next_u64() >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }

    /// A standard normal (Box–Muller, one of the pair).
    fn normal(&mut self) -> f64 {
        let (u, v) = (self.uniform(), self.uniform());
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    }

    /// `n` run values around `mean`.
    fn runs(&mut self, mean: f64, n: usize) -> Vec<f64> {
        (0..n)
            .map(|_| mean * (self.mu + self.sigma * self.normal()).exp())
            .collect()
    }
}

/// Share of `trials` comparisons of n runs around 100 vs n runs around `100·(1 + shift)`
/// that Welch's test flags at α.
fn significant(s: &Settings, shift: f64, stream: &str) -> Rate {
    let mut noise = Noise::new(derive(s.seed, None, 0, stream), s.cv);
    let hits = (0..s.trials)
        .filter(|_| {
            let a = noise.runs(100.0, s.n);
            let b = noise.runs(100.0 * (1.0 + shift), s.n);
            stats::welch(&a, &b, s.alpha).is_some_and(|w| w.p_value() < s.alpha)
        })
        .count();
    Rate::new(hits, s.trials)
}

/// Looks of the sequential experiment, as `exp run --baseline --extra-looks 2` takes them.
const LOOKS: usize = 3;

/// Share of A/A comparisons that Welch's test flags at `level` at any of [`LOOKS`] looks: n
/// baseline runs against a candidate of n runs that grows by
/// [`EXTRA_ROUNDS`](stats::sequential::EXTRA_ROUNDS) runs before each further look.
fn significant_at_any_look(s: &Settings, level: f64, stream: &str) -> Rate {
    let mut noise = Noise::new(derive(s.seed, None, 0, stream), s.cv);
    let add = stats::sequential::EXTRA_ROUNDS as usize;
    let hits = (0..s.trials)
        .filter(|_| {
            let a = noise.runs(100.0, s.n);
            let b = noise.runs(100.0, s.n + add * (LOOKS - 1));
            (0..LOOKS).any(|look| {
                let seen = &b[..s.n + add * look];
                stats::welch(&a, seen, level).is_some_and(|w| w.p_value() < level)
            })
        })
        .count();
    Rate::new(hits, s.trials)
}

/// The candidate's runs at each look of the sequential experiment.
fn look_sizes(s: &Settings) -> Vec<u32> {
    let add = stats::sequential::EXTRA_ROUNDS;
    (0..LOOKS as u32).map(|k| s.n as u32 + k * add).collect()
}

/// Pocock's nominal level for the sequential experiment's design.
fn nominal_alpha(s: &Settings) -> Option<f64> {
    let info = stats::sequential::fixed_baseline(s.n as u32, &look_sizes(s));
    stats::sequential::pocock_alpha(&info, s.alpha)
}

/// Runs the A/A, the shifted and the sequential experiments.
pub fn run(settings: &Settings) -> Result<Outcome, SelftestError> {
    if settings.trials < 1000 {
        return Err(SelftestError::TooFewTrials(settings.trials));
    }
    if settings.n < 2 {
        return Err(SelftestError::Invalid("n must be at least 2"));
    }
    let analytical_power = power::power(settings.shift, settings.cv, settings.n, settings.alpha)
        .ok_or(SelftestError::Invalid(
            "cv, shift and alpha must be in range",
        ))?;
    let nominal =
        nominal_alpha(settings).ok_or(SelftestError::Invalid("alpha must be in (0, 1)"))?;
    let paired = paired::run(settings).ok_or(SelftestError::Invalid(
        "the paired noise CV, shift and alpha must be in range",
    ))?;
    Ok(Outcome {
        settings: *settings,
        false_positive: significant(settings, 0.0, "selftest-aa"),
        detection: significant(settings, settings.shift, "selftest-shift"),
        analytical_power,
        sequential: significant_at_any_look(settings, nominal, "selftest-looks"),
        sequential_unadjusted: significant_at_any_look(settings, settings.alpha, "selftest-looks"),
        paired,
    })
}

fn rate_text(r: &Rate) -> String {
    format!(
        "{} ({} of {}; 95 % CI [{}, {}])",
        units::percent(r.rate),
        r.hits,
        r.trials,
        units::percent(r.ci.0),
        units::percent(r.ci.1)
    )
}

/// The text `exp selftest stats` prints.
pub fn render(o: &Outcome) -> String {
    let s = &o.settings;
    let verdict = |ok: bool| if ok { "ok" } else { "FAILED" };
    let (low, high) = FALSE_POSITIVE_RANGE;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "exp selftest stats: {} A/A and {} shifted comparisons, n = {} repetitions per side, lognormal run-to-run noise CV {}, Welch's t-test (unadjusted) at α = {}, seed {}",
        s.trials,
        s.trials,
        s.n,
        units::percent(s.cv),
        s.alpha,
        s.seed
    );
    let _ = writeln!(
        out,
        "false positives (A/A):     {}  must be in [{}, {}]  {}",
        rate_text(&o.false_positive),
        units::percent(low),
        units::percent(high),
        verdict(o.false_positive_ok())
    );
    let _ = writeln!(
        out,
        "detection ({} shift):  {}  analytical power {} ± {} points  {}",
        units::signed_percent(s.shift),
        rate_text(&o.detection),
        units::percent(o.analytical_power),
        POWER_TOLERANCE * 100.0,
        verdict(o.detection_ok())
    );
    let _ = writeln!(
        out,
        "false positives over {LOOKS} looks (candidate n = {} vs baseline {}), each at Pocock's α′ = {}:  {}  must be in [{}, {}]  {}",
        look_sizes(s)
            .iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(", "),
        s.n,
        units::sig(nominal_alpha(s).unwrap_or(s.alpha), 3),
        rate_text(&o.sequential),
        units::percent(low),
        units::percent(high),
        verdict(o.sequential_ok())
    );
    let _ = writeln!(
        out,
        "  (the same looks each at α = {}: {}; looking again without an adjusted level inflates false positives)",
        s.alpha,
        rate_text(&o.sequential_unadjusted)
    );
    render_paired(o, &mut out);
    out
}

/// The paired design's lines.
fn render_paired(o: &Outcome, out: &mut String) {
    let (s, p) = (&o.settings, &o.paired);
    let verdict = |ok: bool| if ok { "ok" } else { "FAILED" };
    let (low, high) = FALSE_POSITIVE_RANGE;
    let _ = writeln!(
        out,
        "paired by round: {} A/A and {} shifted comparisons of n = {} rounds sharing a lognormal workload effect (CV {}) with own noise CV {} per side, paired t on per-round log ratios (unadjusted) at α = {}",
        s.trials,
        s.trials,
        s.n,
        units::percent(s.workload_cv),
        units::percent(s.paired_noise_cv),
        s.alpha
    );
    let _ = writeln!(
        out,
        "false positives (A/A, paired):     {}  must be in [{}, {}]  {}",
        rate_text(&p.false_positive),
        units::percent(low),
        units::percent(high),
        verdict(o.paired_false_positive_ok())
    );
    let _ = writeln!(
        out,
        "detection ({} shift, paired):  {}  analytical power {} ± {} points  {}",
        units::signed_percent(s.paired_shift),
        rate_text(&p.detection),
        units::percent(p.analytical_power),
        POWER_TOLERANCE * 100.0,
        verdict(o.paired_detection_ok())
    );
    let _ = writeln!(
        out,
        "  (Welch on the same values, unpaired: {}; the shared workload effect swamps the shift)",
        rate_text(&p.welch_detection)
    );
}

#[cfg(test)]
mod tests;
