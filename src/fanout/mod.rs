//! Fanning one cell's load out over several client machines: `exp run --client K/N` sends
//! client K's share of every repetition, `exp merge --clients` joins the shares back into the
//! planned repetitions.
//!
//! Every client builds the repetition's whole planned schedule from the same seeds and keeps
//! only its share ([`Share`]): request `i` is client `(i mod N) + 1`'s (in batch mode whole
//! batches are dealt out, batch `b` to client `(b mod N) + 1`). Nothing is drawn per client,
//! so the union of the shares is the planned schedule, request by request. A closed loop of
//! `C` places becomes `C` places over the clients ([`slots`]). This module owns those rules
//! and the identity of a client ([`Client`]); it does no I/O. The shared start instant and
//! the per-repetition barrier are `run::gate`'s; the join is `merge::clients`'.

use std::fmt;
use std::num::NonZeroU32;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

/// Client `index` of `count` (both from 1, as written on the command line: `2/4`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Client {
    /// Which client, 1 ..= `count`.
    pub index: u32,
    /// How many clients send the load together.
    pub count: u32,
}

/// A `--client` or `--start-at` value that cannot be used, with what to write instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{flag} {given}: {why}")]
pub struct ClientError {
    flag: &'static str,
    given: String,
    why: String,
}

impl ClientError {
    /// What is wrong, without the flag and value (for clap, which names them).
    pub fn reason(&self) -> &str {
        &self.why
    }
}

impl Client {
    /// Parses `K/N` (1 ≤ K ≤ N), e.g. `1/2`.
    pub fn parse(text: &str) -> Result<Client, ClientError> {
        let fail = |why: String| ClientError {
            flag: "--client",
            given: text.to_string(),
            why,
        };
        let Some((k, n)) = text.split_once('/') else {
            return Err(fail(
                "expected K/N, this client's number and the number of clients (e.g. `1/2` and `2/2`)".into(),
            ));
        };
        let count = (n.trim().parse::<NonZeroU32>()).map_err(|_| {
            fail(format!(
                "N `{n}`, the number of clients, is not a whole number ≥ 1"
            ))
        })?;
        let index = k.trim().parse::<NonZeroU32>().map_err(|_| {
            fail(format!(
                "K `{k}` is not a whole number ≥ 1 (clients are numbered from 1: `1/{count}` … `{count}/{count}`)"
            ))
        })?;
        let (index, count) = (index.get(), count.get());
        if index > count {
            return Err(fail(format!(
                "client {index} of {count} does not exist (K is 1 ..= {count})"
            )));
        }
        Ok(Client { index, count })
    }

    /// `client-K-of-N`: how a client's run id ends.
    pub fn suffix(self) -> String {
        format!("client-{}-of-{}", self.index, self.count)
    }

    /// The default run id of a client whose load starts at `start_at`: the same prefix on
    /// every client (the instant is shared), so their directories sit side by side.
    pub fn run_id(self, start_at: SystemTime) -> String {
        format!("{}-{}", stamp(start_at), self.suffix())
    }
}

impl fmt::Display for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// `2025-06-01T12-00-00.250Z`: an instant as a folder-name prefix (no `:`).
pub fn stamp(at: SystemTime) -> String {
    humantime::format_rfc3339_millis(at)
        .to_string()
        .replace(':', "-")
}

/// Parses `--start-at`: an RFC 3339 instant in UTC, e.g. `2025-06-01T12:00:00.250Z`.
pub fn parse_start_at(text: &str) -> Result<SystemTime, ClientError> {
    humantime::parse_rfc3339_weak(text.trim_end_matches('Z'))
        .or_else(|_| humantime::parse_rfc3339(text))
        .map_err(|e| ClientError {
            flag: "--start-at",
            given: text.to_string(),
            why: format!(
                "{e}; write a UTC instant like 2025-06-01T12:00:00.250Z (e.g. `date -u -d '+60 seconds' +%Y-%m-%dT%H:%M:%S.%3NZ`), the same on every client"
            ),
        })
}

/// Which requests of a repetition one client sends: the whole schedule cut into blocks of
/// `block` consecutive requests (1, or the batch size in batch mode), block `b` going to
/// client `(b mod N) + 1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Share {
    /// The client.
    pub client: Client,
    /// Requests dealt out together (≥ 1).
    pub block: u64,
}

impl Share {
    /// True when request `i` (of the planned schedule) is this client's.
    pub fn owns(self, i: u64) -> bool {
        (i / self.block) % u64::from(self.client.count) == u64::from(self.client.index - 1)
    }

    /// The index (in the planned schedule) of this client's `p`-th request (from 0):
    /// increasing in `p`, and every index it owns is reached.
    pub fn nth(self, p: u64) -> Option<u64> {
        let (b, w) = (p / self.block, p % self.block);
        let count = u64::from(self.client.count);
        let block = b
            .checked_mul(count)?
            .checked_add(u64::from(self.client.index - 1))?;
        block.checked_mul(self.block)?.checked_add(w)
    }

    /// How many of the first `limit` requests of the schedule are this client's.
    pub fn count(self, limit: u64) -> u64 {
        let (n, k) = (
            u64::from(self.client.count),
            u64::from(self.client.index - 1),
        );
        let (full, rest) = (limit / self.block, limit % self.block);
        let blocks = full / n + u64::from(full % n > k);
        blocks * self.block + if full % n == k { rest } else { 0 }
    }

    /// This client's requests among the first `limit` of the schedule, in order.
    pub fn indices(self, limit: u64) -> impl Iterator<Item = u64> {
        (0..)
            .map_while(move |p| self.nth(p))
            .take_while(move |&i| i < limit)
    }
}

/// Places of a closed loop of `concurrency` held by `client`: ⌈C/N⌉ for the first `C mod N`
/// clients, ⌊C/N⌋ for the others, so the clients' places add up to `C`. `None` when the
/// client would hold none; callers refuse every split with C < N, since the clients without
/// a place would send nothing while their share of the requests went unsent.
pub fn slots(concurrency: u32, client: Client) -> Option<NonZeroU32> {
    let (base, extra) = (concurrency / client.count, concurrency % client.count);
    NonZeroU32::new(base + u32::from(client.index <= extra))
}

/// [`slots`], or why a closed loop of `concurrency` cannot be split over the clients (fewer
/// places than clients), with what to do.
pub fn closed_share(concurrency: u32, client: Client) -> Result<NonZeroU32, String> {
    (concurrency >= client.count)
        .then(|| slots(concurrency, client))
        .flatten()
        .ok_or_else(|| {
            format!(
                "a closed loop of concurrency = {concurrency} cannot be split over {} clients (each needs at least one place); use at most {concurrency} clients or raise concurrency",
                client.count
            )
        })
}

/// A client's start, as its completion marker records it: who it was, where, and how far its
/// origin was from the shared instant on its own wall clock.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClientMark {
    /// The client.
    pub index: u32,
    /// How many clients.
    pub count: u32,
    /// The machine it ran on (hostname).
    pub node: String,
    /// The shared instant the repetition was to start at (RFC 3339, UTC).
    pub start_at: String,
    /// Its origin minus the shared instant, on its wall clock (ms; positive when late).
    pub skew_ms: f64,
}

/// `origin − instant` in milliseconds, negative when the origin came first.
pub fn skew_ms(origin: SystemTime, instant: SystemTime) -> f64 {
    match origin.duration_since(instant) {
        Ok(late) => late.as_secs_f64() * 1e3,
        Err(early) => -early.duration().as_secs_f64() * 1e3,
    }
}

/// How a fanned-out client runs (`exp run --client K/N --start-at …`): fixed when its run
/// starts, kept in the plan.
#[derive(Debug, Clone, PartialEq)]
pub struct ClientPlan {
    /// The client.
    pub client: Client,
    /// The shared instant of the first repetition.
    pub start_at: SystemTime,
    /// Latest acceptable origin after a shared instant.
    pub max_skew: Duration,
    /// The folder of the per-repetition barrier, shared by every client.
    pub barrier: std::path::PathBuf,
    /// This machine's name.
    pub node: String,
}

/// The default `--max-skew`: a client whose origin is later than this after the shared
/// instant fails its repetition (its load was not the planned load).
pub const MAX_SKEW: Duration = Duration::from_millis(50);

#[cfg(test)]
mod tests;
