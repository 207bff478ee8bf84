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
        Ok(Shard { index, count })
    }

    /// True when round `round` (from 0) is this shard's.
    pub fn owns(self, round: u32) -> bool {
        round % self.count == self.index - 1
    }

    /// This shard's rounds among `rounds` (from 0), in order.
    pub fn rounds(self, rounds: u32) -> Vec<u32> {
        (0..rounds).filter(|&r| self.owns(r)).collect()
    }

    /// The shard that owns `round` among `count` shards.
    pub fn owner(round: u32, count: u32) -> Shard {
        Shard {
            index: round % count + 1,
            count,
        }
    }

    /// Refuses a split that would leave a shard without a round.
    pub fn check_rounds(self, rounds: u32) -> Result<(), ShardError> {
        if self.count > rounds {
            return Err(ShardError {
                given: self.to_string(),
                why: format!(
                    "the scenario plans {rounds} rounds, so at most {rounds} shards can each run one; use --shard K/{rounds} or fewer shards (or raise [experiment] repetitions)"
                ),
            });
        }
        Ok(())
    }

    /// The default run id of a shard started at `started` (RFC 3339): unique per shard, so
    /// shards started in the same second into one `--out` never collide.
    pub fn run_id(self, started: &str) -> String {
        format!("{}-{}", started.replace(':', "-"), self.suffix())
    }

    /// `shard-K-of-N`: how a shard's run id ends.
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
