//! Run order of (cell, repetition) pairs. Randomized blocks: every round runs each cell
//! once, in a fresh seeded permutation, so slow drift of the machine (thermal, caches,
//! other tenants) spreads over all cells instead of biasing the ones that run last.

use crate::scenario::RunOrder;
use crate::seed::{SplitMix64, derive};

use super::Cell;

/// One (round, cell) pair of the schedule. Saved (in `manifest.json`) as the two-element
/// array `[round, cell]`, the form run directories have always used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(from = "(u32, usize)", into = "(u32, usize)")]
pub struct Slot {
    /// Repetition round, from 0; round `r` is every cell's repetition `r`.
    pub round: u32,
    /// Index into the `cells` slice given to [`schedule`].
    pub cell: usize,
}

impl From<(u32, usize)> for Slot {
    fn from((round, cell): (u32, usize)) -> Self {
        Slot { round, cell }
    }
}

impl From<Slot> for (u32, usize) {
    fn from(s: Slot) -> Self {
        (s.round, s.cell)
    }
}

/// The run order: `repetitions` rounds, each visiting every cell once.
///
/// `RandomizedBlocks` shuffles each round with its own seed,
/// `seed::derive(seed, None, round, "schedule")`, and a SplitMix64 Fisher–Yates shuffle, so
/// the order is reproducible from the experiment seed forever. `Sequential` runs cells in
/// matrix order in every round.
pub fn schedule(cells: &[Cell], repetitions: u32, seed: u64, order: RunOrder) -> Vec<Slot> {
    let mut out = Vec::with_capacity(cells.len() * repetitions as usize);
    for round in 0..repetitions {
        let mut perm: Vec<usize> = (0..cells.len()).collect();
        if order == RunOrder::RandomizedBlocks {
            SplitMix64::new(derive(seed, None, round, "schedule")).shuffle(&mut perm);
        }
        out.extend(perm.into_iter().map(|cell| Slot { round, cell }));
    }
    out
}
