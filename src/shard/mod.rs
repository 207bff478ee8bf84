//! Fanning an experiment out over several machines by rounds: `exp run --shard K/N` runs
//! shard K's share of the repetition rounds, `exp merge` joins the shards back into one run.
//!
//! A shard owns whole rounds — every cell of a round, in that round's seeded order — so every
//! comparison stays within one machine and the machine becomes a blocking factor of the
//! design rather than a confounder of a variable. Round `r` (from 0) belongs to shard
//! `r mod N + 1`: the rounds are dealt out like cards, so shards differ by at most one round
//! and each spans the whole experiment. This module owns that rule and the identity of a
//! shard ([`Shard`]) and the node a shard ran on ([`node`]); it does no I/O but reading the
//! node's description. Joining shards is `merge`'s.
//!
//! On request (`--shard-by cells`) a shard owns whole cells instead — every round of cell `c`
//! (from 0) on shard `c mod N + 1` — which suits a sweep of server configurations whose
//! launches should stay on one node; then cells on different nodes differ by their node too,
//! and the report says so loudly.

pub mod node;

use std::fmt;
use std::num::NonZeroU32;

use serde::{Deserialize, Serialize};

/// Shard `index` of `count` (both from 1, as written on the command line: `2/4`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shard {
    /// Which shard, 1 ..= `count`.
    pub index: u32,
    /// How many shards the experiment is split into.
    pub count: u32,
    /// What the experiment is dealt out by.
    #[serde(default)]
    pub by: ShardBy,
}

/// What shards split: whole rounds (the default, every comparison within one node) or, on
/// request, whole cells.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ShardBy {
    /// Round `r` on shard `r mod N + 1`, every cell of it.
    #[default]
    Rounds,
    /// Cell `c` on shard `c mod N + 1`, every round of it: comparisons between cells of
    /// different shards include the nodes' difference.
    Cells,
}

impl ShardBy {
    /// `rounds`, `cells`: as `--shard-by` takes it.
    pub fn name(self) -> &'static str {
        match self {
            ShardBy::Rounds => "rounds",
            ShardBy::Cells => "cells",
        }
    }
}

/// A `--shard` value that is not `K/N` with 1 ≤ K ≤ N.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("--shard {given}: {why}")]
pub struct ShardError {
    given: String,
    why: String,
}

impl ShardError {
    /// What is wrong, without the `--shard K/N:` prefix (for clap, which names the value).
    pub fn reason(&self) -> &str {
        &self.why
    }
}

impl Shard {
    /// Parses `K/N` (1 ≤ K ≤ N), e.g. `1/2`; errors say what is wrong and what to write.
    pub fn parse(text: &str) -> Result<Shard, ShardError> {
        let fail = |why: &str| ShardError {
            given: text.to_string(),
            why: why.to_string(),
        };
        let Some((k, n)) = text.split_once('/') else {
            return Err(fail(
                "expected K/N, the shard's number and the number of shards (e.g. `1/2` and `2/2`)",
            ));
        };
        let count = n.trim().parse::<NonZeroU32>().map_err(|_| {
            fail(&format!(
                "N `{n}`, the number of shards, is not a whole number ≥ 1"
            ))
        })?;
        let index = k.trim().parse::<NonZeroU32>().map_err(|_| {
            fail(&format!(
                "K `{k}` is not a whole number ≥ 1 (shards are numbered from 1: `1/{count}` … `{count}/{count}`)"
            ))
        })?;
        let (index, count) = (index.get(), count.get());
        if index > count {
            return Err(fail(&format!(
                "shard {index} of {count} does not exist (K is 1 ..= {count})"
            )));
        }
        Ok(Shard {
            index,
            count,
            by: ShardBy::Rounds,
        })
    }

    /// Shard `index` of `count` by rounds.
    pub fn of_rounds(index: u32, count: u32) -> Shard {
        Shard {
            index,
            count,
            by: ShardBy::Rounds,
        }
    }

    /// The same shard, dealing out `by`.
    pub fn by(self, by: ShardBy) -> Shard {
        Shard { by, ..self }
    }

    /// True when slot `slot` (a cell's repetition in a round) is this shard's.
    pub fn owns(self, slot: &crate::matrix::Slot) -> bool {
        let unit = match self.by {
            ShardBy::Rounds => slot.round as usize,
            ShardBy::Cells => slot.cell,
        };
        unit % self.count as usize == (self.index - 1) as usize
    }

    /// The rounds among `rounds` (from 0) this shard runs some cell of, in order: its share by
    /// rounds, or every round by cells.
    pub fn rounds(self, rounds: u32) -> Vec<u32> {
        match self.by {
            ShardBy::Rounds => (0..rounds)
                .filter(|r| r % self.count == self.index - 1)
                .collect(),
            ShardBy::Cells => (0..rounds).collect(),
        }
    }

    /// This shard's cells among `cells` (from 0), in order: every one by rounds, its share by
    /// cells.
    pub fn cells(self, cells: usize) -> Vec<usize> {
        match self.by {
            ShardBy::Rounds => (0..cells).collect(),
            ShardBy::Cells => (0..cells)
                .filter(|c| c % self.count as usize == (self.index - 1) as usize)
                .collect(),
        }
    }

    /// Refuses a split that would leave a shard without a round (by rounds) or a cell (by
    /// cells).
    pub fn check_size(self, rounds: u32, cells: usize) -> Result<(), ShardError> {
        let fail = |why: String| ShardError {
            given: self.to_string(),
            why,
        };
        match self.by {
            ShardBy::Rounds if self.count > rounds => Err(fail(format!(
                "the scenario plans {rounds} rounds, so at most {rounds} shards can each run one; use --shard K/{rounds} or fewer shards (or raise [experiment] repetitions)"
            ))),
            ShardBy::Cells if self.count as usize > cells => Err(fail(format!(
                "--shard-by cells: the scenario has {cells} cells, so at most {cells} shards can each run one; use --shard K/{cells} or fewer shards"
            ))),
            _ => Ok(()),
        }
    }

    /// The default run id of a shard started at `started` (RFC 3339): unique per shard, so
    /// shards started in the same second into one `--out` never collide.
    pub fn run_id(self, started: &str) -> String {
        format!("{}-{}", started.replace(':', "-"), self.suffix())
    }

    /// `shard-K-of-N`: how a shard's run id ends (its manifest says what it holds).
    pub fn suffix(self) -> String {
        format!("shard-{}-of-{}", self.index, self.count)
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// Lists rounds compactly for messages: `0, 2, 4` (or `0, 2, … 18` beyond eight).
pub fn rounds_text(rounds: &[u32]) -> String {
    let shown: Vec<String> = rounds.iter().map(u32::to_string).collect();
    if shown.len() <= 8 {
        return shown.join(", ");
    }
    format!(
        "{}, … {} ({} rounds)",
        shown[..3].join(", "),
        shown[shown.len() - 1],
        shown.len()
    )
}

#[cfg(test)]
mod tests;
