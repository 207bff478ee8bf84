//! The capacity of one `[search]` run as a curve crossing, with a seeded bootstrap interval.
//!
//! **Curve.** The probes' mean SLO attainments, sorted by load, are made non-increasing in load
//! by isotonic regression ([`isotonic_decreasing`], pool-adjacent-violators weighted by the
//! repetitions) and joined by straight lines in load (not log load: bisection spaces the
//! probes near the capacity arithmetically, a few per cent apart, where the two differ by
//! under w²/8 of the load for a gap w; between distant probes the queueing collapse is concave
//! in load, which a line follows better than a log curve, convex in load). The capacity is the
//! load where that curve falls below the target ([`crossing`]): at or above the highest probe
//! when it never does ([`Crossing::AboveRange`]), below the lowest when it starts below
//! ([`Crossing::BelowRange`]). Unlike the bisection's "highest passing load", it uses every
//! probe's mean, and it moves continuously with them.
//!
//! **Uncertainty.** [`estimate`] redraws the repetitions with replacement ([`DRAWS`] times,
//! probes and loads fixed, seeded by [`seed`]) and recomputes the curve and its crossing. When
//! every probe ran the same rounds ([`Pairing::ByRound`]) a draw picks rounds, the same for
//! every probe: a repetition's workload is the same at every load (common random numbers,
//! [`crate::seed`]), so an unlucky round lowers every probe's attainment at once, and redrawing
//! probes independently would understate how far the crossing moves (on the simulated
//! 16-sequence search with 10 rounds, independent redraws give an interval half as wide).
//! Otherwise each probe's repetitions are redrawn on their own ([`Pairing::Independent`]).
//! The redrawn values are spread about each probe's mean by [`calibration`] =
//! √(n / (n − 1))·t₀.₉₇₅(n − 1) / z₀.₉₇₅, so that the interval of one probe's mean is
//! Student's t interval (the one the probe table shows): the plain percentile bootstrap of a
//! mean of n rounds is narrower by that factor (63 % narrower at n = 3, 37 % at 5, 18 % at
//! 10), and the crossing, locally a weighted sum of the means, inherits it.
//!
//! **Interval.** A draw that never crosses bounds the capacity on one side only ([`Bounds`]:
//! [highest probe, ∞) or [0, lowest probe)). The 95 % interval takes order-statistic
//! percentiles (not BCa: its acceleration needs a jackknife per run, and the percentile
//! interval is what the probe count supports) of the draws' lower and upper bounds
//! ([`percentile_interval`]), so an end is unbounded (or 0) exactly when more than 2.5 % of the
//! draws leave it so. [`change_interval`] pairs the two runs' independent draws into draws of
//! Δ = candidate / baseline − 1 the same way.

use serde::Serialize;

use crate::search::Probe;
use crate::seed::{self, SplitMix64};
use crate::stats;

/// Bootstrap draws per run: the 2.5 % tails hold 50 draws each, and a comparison of two
/// 10-probe searches with 10 repetitions takes about a millisecond.
pub const DRAWS: usize = 2000;

/// Experiment-independent root of the bootstrap seeds (`"capacity"` in ASCII): the same probes
/// always give the same interval.
pub const SEED: u64 = 0x6361_7061_6369_7479;

/// Share of the draws left out below and above the 95 % interval.
const TAIL: f64 = 0.025;

/// Slack for attainments that equal the target in decimals but not in binary (as
/// [`crate::search::Probe::passed`]).
const EPS: f64 = 1e-9;

/// The seed of one run's bootstrap: `side` is `baseline` or `candidate`, `cell` the searched
/// cell's label.
pub fn seed(cell: &str, side: &str) -> u64 {
    seed::derive(SEED, Some(cell), 0, &format!("capacity-bootstrap/{side}"))
}

/// How the repetitions of a run's probes are redrawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Pairing {
    /// Every probe's `attainment[i]` comes from the same round `i`: redraw rounds jointly.
    ByRound,
    /// Redraw each probe's repetitions on their own.
    Independent,
}

/// The factor by which a probe's repetitions are spread about their mean before they are
/// redrawn: √(n / (n − 1))·t₀.₉₇₅(n − 1) / z₀.₉₇₅, so that the 95 % percentile interval of
/// the redrawn mean is close to Student's t interval (1.22 at n = 10, 2.69 at n = 3); 0 for
/// n < 2, where one repetition shows no spread.
pub fn calibration(n: usize) -> f64 {
    if n < 2 {
        return 0.0;
    }
    let df = (n - 1) as f64;
    let t = stats::t_quantile(1.0 - TAIL, df).unwrap_or(f64::NAN);
    let z = stats::z_quantile(1.0 - TAIL);
    (n as f64 / df).sqrt() * t / z
}

/// Where a monotone attainment curve falls below the target.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(tag = "kind", content = "load", rename_all = "snake_case")]
pub enum Crossing {
    /// Below the target already at the lowest probe: the capacity is below it.
    BelowRange,
    /// Crosses at this load.
    At(f64),
    /// Never below the target: the capacity is at least the highest probe.
    AboveRange,
}

/// What one curve says of the capacity: `low ≤ capacity ≤ high`, `high` = +∞ when unbounded.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bounds {
    /// Lower bound (0 when below range).
    pub low: f64,
    /// Upper bound (+∞ when above range).
    pub high: f64,
}

/// A 95 % bootstrap interval, `high: None` when unbounded.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct BootInterval {
    /// Lower end.
    pub low: f64,
    /// Upper end; `None`: unbounded.
    pub high: Option<f64>,
}

/// One run's capacity: the crossing of its curve and the bootstrap interval.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CapacityEstimate {
    /// Where the curve of the probes' means crosses the target.
    pub crossing: Crossing,
    /// Lowest probed load.
    pub lowest: f64,
    /// Highest probed load.
    pub highest: f64,
    /// 95 % percentile interval of the capacity.
    pub interval: BootInterval,
    /// Bootstrap draws.
    pub draws: usize,
    /// How the repetitions were redrawn.
    pub pairing: Pairing,
    /// Draws whose curve never fell below the target.
    pub above_range_draws: usize,
    /// Draws whose curve started below the target.
    pub below_range_draws: usize,
}

impl CapacityEstimate {
    /// The capacity as bounds ([`Crossing::At`]: a point).
    pub fn bounds(&self) -> Bounds {
        bounds(self.crossing, self.lowest, self.highest)
    }
}

fn bounds(c: Crossing, lowest: f64, highest: f64) -> Bounds {
    match c {
        Crossing::BelowRange => Bounds {
            low: 0.0,
            high: lowest,
        },
        Crossing::At(x) => Bounds { low: x, high: x },
        Crossing::AboveRange => Bounds {
            low: highest,
            high: f64::INFINITY,
        },
    }
}

/// The weighted least-squares non-increasing fit of `values` (pool-adjacent-violators): each
/// run of values that rises is pooled into its weighted mean until none rises.
pub fn isotonic_decreasing(values: &[f64], weights: &[f64]) -> Vec<f64> {
    // Blocks of (weighted mean, total weight, number of values).
    let mut blocks: Vec<(f64, f64, usize)> = Vec::with_capacity(values.len());
    for (&v, &w) in values.iter().zip(weights) {
        blocks.push((v, w, 1));
        while let [.., (m1, w1, n1), (m2, w2, n2)] = blocks[..] {
            if m2 <= m1 {
                break;
            }
            let w = w1 + w2;
            blocks.truncate(blocks.len() - 2);
            blocks.push(((m1 * w1 + m2 * w2) / w, w, n1 + n2));
        }
    }
    blocks
        .iter()
        .flat_map(|&(m, _, n)| std::iter::repeat_n(m, n))
        .collect()
}

/// Where the non-increasing `fitted` curve over ascending `loads` falls below `target`,
/// interpolating linearly between the last load at or above it and the next.
pub fn crossing(loads: &[f64], fitted: &[f64], target: f64) -> Crossing {
    let meets = |f: f64| f >= target - EPS;
    let Some(last) = fitted.iter().rposition(|f| meets(*f)) else {
        return Crossing::BelowRange;
    };
    if last + 1 == fitted.len() {
        return Crossing::AboveRange;
    }
    let (f0, f1) = (fitted[last], fitted[last + 1]);
    let (x0, x1) = (loads[last], loads[last + 1]);
    let t = ((f0 - target) / (f0 - f1)).clamp(0.0, 1.0);
    Crossing::At(x0 + t * (x1 - x0))
}

/// The probes of one run, sorted by load, ready to be redrawn.
struct Curve {
    loads: Vec<f64>,
    weights: Vec<f64>,
    means: Vec<f64>,
    /// Each probe's repetitions, spread about their mean by [`calibration`].
    scaled: Vec<Vec<f64>>,
    pairing: Pairing,
}

impl Curve {
    fn new(probes: &[Probe], pairing: Pairing) -> Self {
        let mut sorted: Vec<&Probe> = probes.iter().filter(|p| !p.attainment.is_empty()).collect();
        sorted.sort_by(|a, b| a.load.total_cmp(&b.load));
        let mean = |a: &[f64]| a.iter().sum::<f64>() / a.len() as f64;
        let means: Vec<f64> = sorted.iter().map(|p| mean(&p.attainment)).collect();
        let scaled = sorted
            .iter()
            .zip(&means)
            .map(|(p, &m)| {
                let k = calibration(p.attainment.len());
                p.attainment.iter().map(|a| m + k * (a - m)).collect()
            })
            .collect();
        Curve {
            loads: sorted.iter().map(|p| p.load).collect(),
            weights: sorted.iter().map(|p| p.attainment.len() as f64).collect(),
            means,
            scaled,
            pairing,
        }
    }

    fn crossing_of(&self, means: &[f64], target: f64) -> Crossing {
        crossing(
            &self.loads,
            &isotonic_decreasing(means, &self.weights),
            target,
        )
    }

    /// One bootstrap draw of the curve's means; `rounds` is scratch space.
    fn redraw(&self, rng: &mut SplitMix64, rounds: &mut Vec<usize>, out: &mut Vec<f64>) {
        fn pick(rng: &mut SplitMix64, n: usize, rounds: &mut Vec<usize>) {
            rounds.clear();
            rounds.extend((0..n).map(|_| rng.below(n as u64) as usize));
        }
        out.clear();
        if self.pairing == Pairing::ByRound {
            pick(rng, self.scaled[0].len(), rounds);
        }
        for reps in &self.scaled {
            if self.pairing == Pairing::Independent {
                pick(rng, reps.len(), rounds);
            }
            let sum: f64 = rounds.iter().map(|&i| reps[i]).sum();
            out.push(sum / reps.len() as f64);
        }
    }
}

/// Whether `rounds` (each probe's rounds, in the order of its attainments) allow redrawing
/// by round: every probe ran the same rounds, in the same order.
pub fn pairing(rounds: &[Vec<u32>]) -> Pairing {
    if !rounds.is_empty() && rounds.windows(2).all(|w| w[0] == w[1]) {
        Pairing::ByRound
    } else {
        Pairing::Independent
    }
}

/// The capacity of a run's probes against `target`, with `draws` bootstrap draws from `seed`;
/// also every draw's bounds, for [`change_interval`]. `None` without a probe. With
/// [`Pairing::ByRound`] the caller guarantees that every probe's `attainment[i]` is round `i`'s
/// (see [`pairing`]); probes of different lengths are redrawn independently all the same.
pub fn estimate(
    probes: &[Probe],
    pairing: Pairing,
    target: f64,
    seed: u64,
    draws: usize,
) -> Option<(CapacityEstimate, Vec<Bounds>)> {
    let n = probes.first().map(|p| p.attainment.len());
    let same_length = probes.iter().all(|p| Some(p.attainment.len()) == n);
    let pairing = if same_length {
        pairing
    } else {
        Pairing::Independent
    };
    let curve = Curve::new(probes, pairing);
    let (&lowest, &highest) = curve.loads.first().zip(curve.loads.last())?;
    let mut rng = SplitMix64::new(seed);
    let (mut means, mut rounds) = (Vec::new(), Vec::new());
    let (mut above, mut below) = (0, 0);
    let all: Vec<Bounds> = (0..draws)
        .map(|_| {
            curve.redraw(&mut rng, &mut rounds, &mut means);
            let c = curve.crossing_of(&means, target);
            above += usize::from(c == Crossing::AboveRange);
            below += usize::from(c == Crossing::BelowRange);
            bounds(c, lowest, highest)
        })
        .collect();
    let estimate = CapacityEstimate {
        crossing: curve.crossing_of(&curve.means, target),
        lowest,
        highest,
        interval: percentile_interval(&all)?,
        draws,
        pairing,
        above_range_draws: above,
        below_range_draws: below,
    };
    Some((estimate, all))
}

/// The 95 % order-statistic percentile interval of draws that may be one-sided: the lower end
/// is the (⌊0.025 B⌋ + 1)-th smallest lower bound, the upper end the (⌊0.025 B⌋ + 1)-th
/// largest upper bound (unbounded when that is +∞). `None` without draws.
pub fn percentile_interval(draws: &[Bounds]) -> Option<BootInterval> {
    if draws.is_empty() {
        return None;
    }
    let k = (TAIL * draws.len() as f64).floor() as usize;
    let sorted = |f: fn(&Bounds) -> f64| {
        let mut v: Vec<f64> = draws.iter().map(f).collect();
        v.sort_by(f64::total_cmp);
        v
    };
    let low = sorted(|b| b.low)[k];
    let high = sorted(|b| b.high)[draws.len() - 1 - k];
    Some(BootInterval {
        low,
        high: high.is_finite().then_some(high),
    })
}

/// Δ = candidate / baseline − 1 as bounds, from the two capacities' bounds (a division by 0
/// is +∞).
pub fn change_bounds(base: Bounds, cand: Bounds) -> Bounds {
    let ratio = |c: f64, b: f64| if b > 0.0 { c / b } else { f64::INFINITY };
    let low = if base.high.is_finite() {
        ratio(cand.low, base.high)
    } else {
        0.0
    };
    Bounds {
        low: low - 1.0,
        high: ratio(cand.high, base.low) - 1.0,
    }
}

/// The 95 % interval of Δ from the two runs' independent draws, paired in order.
pub fn change_interval(base: &[Bounds], cand: &[Bounds]) -> Option<BootInterval> {
    let draws: Vec<Bounds> = base
        .iter()
        .zip(cand)
        .map(|(b, c)| change_bounds(*b, *c))
        .collect();
    percentile_interval(&draws)
}
