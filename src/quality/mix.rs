//! Quality items under load (`[quality] when = "under-load"`), pure: which arrivals of a
//! repetition are quality items instead of measured requests, and which item each one is.
//!
//! Each arrival index is a quality arrival with probability `share`, decided by a hash of the
//! round's seed and the index alone, so every cell of a round mixes its items in at the same
//! positions (common random numbers), whatever its arrival process or speed. The items — the
//! corpus's segments and the round's retrieval items — are interleaved in a seeded order; the
//! k-th quality arrival is the k-th item. Once every item is placed, later arrivals are all
//! measured requests; items whose arrival is never reached (the load ended first) are not
//! scored. Arrivals are decided as far as they are asked about, so a tiny share costs no more
//! than the arrivals the load releases.

use crate::seed::{SplitMix64, mix64};

/// One quality item: a perplexity segment or a retrieval item, by its position in its list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pick {
    /// The segment at this position of the corpus's segments.
    Segment(usize),
    /// The retrieval item at this position of the round's items.
    Item(usize),
}

/// Where the items go in a repetition's arrivals.
#[derive(Debug, Clone, PartialEq)]
pub struct Mix {
    seed: u64,
    share: f64,
    /// Quality arrivals found so far, ascending; the k-th holds `order[k]`.
    positions: Vec<u64>,
    /// The items in the order they are mixed in.
    order: Vec<Pick>,
    /// Arrivals `0..scanned` are decided.
    scanned: u64,
}

/// Whether arrival `index` is a quality arrival: a uniform draw from `(seed, index)` below
/// `share`.
pub fn takes(seed: u64, share: f64, index: u64) -> bool {
    let bits = mix64(seed ^ mix64(index)) >> 11;
    (bits as f64) * (1.0 / (1u64 << 53) as f64) < share
}

impl Mix {
    /// The mix of `segments` segments and `items` retrieval items into arrivals at `share`.
    pub fn new(seed: u64, share: f64, segments: usize, items: usize) -> Mix {
        let mut order: Vec<Pick> = (0..segments)
            .map(Pick::Segment)
            .chain((0..items).map(Pick::Item))
            .collect();
        SplitMix64::new(mix64(seed ^ 0x6d69_785f_6f72_6465)).shuffle(&mut order);
        Mix {
            seed,
            share,
            positions: Vec::new(),
            order,
            scanned: 0,
        }
    }

    /// The item arrival `index` is, or `None` for a measured request. Decides the arrivals
    /// up to `index` on first ask; the answer never depends on the order of the questions.
    pub fn at(&mut self, index: u64) -> Option<Pick> {
        while self.scanned <= index && self.positions.len() < self.order.len() {
            if takes(self.seed, self.share, self.scanned) {
                self.positions.push(self.scanned);
            }
            self.scanned += 1;
        }
        let k = self.positions.binary_search(&index).ok()?;
        Some(self.order[k])
    }

    /// The quality arrivals decided so far with their items, in arrival order.
    pub fn placed(&self) -> impl Iterator<Item = (u64, Pick)> + '_ {
        (self.positions.iter().copied()).zip(self.order.iter().copied())
    }

    /// Items placed so far (at most every item).
    pub fn len(&self) -> usize {
        self.positions.len()
    }

    /// True when no item is placed yet.
    pub fn is_empty(&self) -> bool {
        self.positions.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_share_is_respected_within_binomial_bounds() {
        // 20 000 arrivals at 5 %: mean 1000, sd √(20000·0.05·0.95) ≈ 30.8; ±5 sd.
        for seed in [1u64, 7, 42, 1 << 40] {
            let n = (0..20_000).filter(|&i| takes(seed, 0.05, i)).count() as f64;
            assert!((n - 1000.0).abs() < 5.0 * 30.8, "seed {seed}: {n}");
        }
        let n = (0..10_000).filter(|&i| takes(3, 0.5, i)).count() as f64;
        assert!((n - 5000.0).abs() < 5.0 * 50.0, "{n}");
    }

    /// Every item placed: asks about arrivals far enough.
    fn placed_all(seed: u64, share: f64, segments: usize, items: usize) -> Mix {
        let mut mix = Mix::new(seed, share, segments, items);
        mix.at(u64::from(u32::MAX));
        mix
    }

    #[test]
    fn the_mix_is_a_function_of_the_seed_alone() {
        let a = placed_all(11, 0.1, 12, 40);
        assert_eq!(a, placed_all(11, 0.1, 12, 40));
        assert_eq!(a.len(), 52);
        // Asked in another order, the same answers.
        let mut b = Mix::new(11, 0.1, 12, 40);
        let backwards: Vec<Option<Pick>> = (0..600).rev().map(|i| b.at(i)).collect();
        let mut c = Mix::new(11, 0.1, 12, 40);
        let forwards: Vec<Option<Pick>> = (0..600).map(|i| c.at(i)).collect();
        assert!(backwards.into_iter().rev().eq(forwards));
        // A load that ends early reaches a prefix of the same positions.
        let mut cut = Mix::new(11, 0.1, 12, 40);
        cut.at(99);
        assert!(cut.len() < 52);
        assert!(cut.placed().eq(a.placed().take(cut.len())));
        // Another seed, other positions.
        assert_ne!(a.positions, placed_all(12, 0.1, 12, 40).positions);
        // A tiny share decides only the arrivals asked about.
        let mut tiny = Mix::new(1, 1e-12, 12, 40);
        assert_eq!(tiny.at(1000), None);
        assert_eq!(tiny.scanned, 1001);
    }

    #[test]
    fn every_item_is_placed_once_interleaved() {
        let mut mix = placed_all(5, 0.2, 10, 10);
        let mut segments: Vec<usize> = (mix.placed())
            .filter_map(|(_, p)| match p {
                Pick::Segment(s) => Some(s),
                Pick::Item(_) => None,
            })
            .collect();
        segments.sort_unstable();
        assert_eq!(segments, (0..10).collect::<Vec<_>>());
        // Interleaved: the first ten are not all of one kind.
        let first: Vec<Pick> = mix.placed().take(10).map(|(_, p)| p).collect();
        assert!(first.iter().any(|p| matches!(p, Pick::Segment(_))));
        assert!(first.iter().any(|p| matches!(p, Pick::Item(_))));
        // Positions ascend, and `at` finds each one; other arrivals are measured.
        let placed: Vec<(u64, Pick)> = mix.placed().collect();
        assert!(placed.windows(2).all(|w| w[0].0 < w[1].0));
        for (i, p) in placed {
            assert_eq!(mix.at(i), Some(p));
        }
        let last = mix.placed().last().unwrap().0;
        let measured = (0..=last).filter(|&i| mix.at(i).is_none()).count();
        assert_eq!(measured as u64, last + 1 - 20);
    }
}
