//! Which requests calibrate: those that ran alone. Pure.
//!
//! A request *ran alone* when, within its repetition, no other recorded request was in flight
//! at any moment between its send and its last token: its interval `[sent, done]` overlaps no
//! other request's (intervals that only touch, as in a closed loop of one, do not overlap).
//! Such a request saw no queueing and no batching, so its TTFT is its own prefill and its
//! TPOT its own decode steps — exactly what [`super::predict`] models. The criterion needs no
//! model and no threshold, works for any arrival process and load level, and picks every
//! request of a `concurrency = 1` cell; at high load it simply finds few. Failed requests are
//! never used but still count as in flight from their send to their last chunk (or send).

use std::time::Duration;

use crate::metrics::request;
use crate::record::{RecordSource, RequestRecord};

/// Fewest output tokens for a request's TPOT to be used (a shorter one averages too few steps).
pub const MIN_TPOT_TOKENS: u32 = 8;

/// One request that ran alone, reduced to what the fit needs.
#[derive(Debug, Clone, PartialEq)]
pub struct Observation {
    /// Index of the cell (into the plan's cells and the fit's deployments).
    pub cell: usize,
    /// Repetition round.
    pub round: u32,
    /// Request index in the repetition.
    pub index: u64,
    /// Prompt tokens (the server's count when it gave one, else the requested length).
    pub prompt_tokens: u32,
    /// Generated tokens.
    pub output_tokens: u32,
    /// First content chunk − sent.
    pub ttft: Duration,
    /// (last − first chunk) / (output − 1), when the output has ≥ [`MIN_TPOT_TOKENS`] tokens.
    pub tpot: Option<Duration>,
}

/// What [`observe`] saw in one repetition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counts {
    /// Successful requests.
    pub successful: usize,
    /// Successful requests that ran alone with a known prompt length (the observations).
    pub alone: usize,
}

impl std::ops::AddAssign for Counts {
    fn add_assign(&mut self, o: Counts) {
        self.successful += o.successful;
        self.alone += o.alone;
    }
}

/// `[sent, end]` of a record that was sent; the end is the last chunk (or the send itself).
fn interval(r: &RequestRecord) -> Option<(u64, u64)> {
    let sent = r.sent_ns?;
    let last = r
        .done_ns
        .or(r.chunks.last().map(|c| c.at_ns))
        .unwrap_or(sent);
    Some((sent, last.max(sent)))
}

/// For each record, whether its interval overlaps no other record's. O(n log n).
pub fn ran_alone(records: &[RequestRecord]) -> Vec<bool> {
    let spans = records
        .iter()
        .enumerate()
        .filter_map(|(i, r)| interval(r).map(|(s, e)| (s, e, i)))
        .collect();
    alone_among(spans, records.len())
}

/// [`ran_alone`] from the `(sent, end, position)` spans of `n` records.
fn alone_among(mut spans: Vec<(u64, u64, usize)>, n: usize) -> Vec<bool> {
    spans.sort_unstable();
    let mut alone = vec![false; n];
    let mut latest_end_before = 0u64;
    for (k, &(start, end, i)) in spans.iter().enumerate() {
        let earlier_overlaps = k > 0 && latest_end_before > start;
        let later_overlaps = spans.get(k + 1).is_some_and(|next| next.0 < end);
        alone[i] = !(earlier_overlaps || later_overlaps);
        latest_end_before = latest_end_before.max(end);
    }
    alone
}

/// The observations of one repetition of cell `cell`: successful requests that ran alone.
pub fn observe(records: &[RequestRecord], cell: usize, round: u32) -> (Vec<Observation>, Counts) {
    match observe_from(records, cell, round) {
        Ok(out) => out,
        Err(never) => match never {},
    }
}

/// [`observe`] over records read twice (from their file): once for the requests' intervals
/// (24 bytes per sent request and a flag per record, not the records), once for the
/// observations.
pub fn observe_from<S: RecordSource + ?Sized>(
    records: &S,
    cell: usize,
    round: u32,
) -> Result<(Vec<Observation>, Counts), S::Error> {
    let (mut spans, mut n) = (Vec::new(), 0);
    records.replay(&mut |r| {
        spans.extend(interval(r).map(|(s, e)| (s, e, n)));
        n += 1;
    })?;
    let alone = alone_among(spans, n);
    let mut counts = Counts::default();
    let (mut out, mut position) = (Vec::new(), 0);
    records.replay(&mut |r| {
        let alone = alone[position];
        position += 1;
        if let Some(o) = observation(r, alone, cell, round, &mut counts) {
            out.push(o);
        }
    })?;
    Ok((out, counts))
}

/// The observation of one record, if it succeeded and ran alone with a known prompt.
fn observation(
    r: &RequestRecord,
    alone: bool,
    cell: usize,
    round: u32,
    counts: &mut Counts,
) -> Option<Observation> {
    if !r.outcome.is_ok() {
        return None;
    }
    counts.successful += 1;
    let prompt = r
        .input_tokens
        .or(r.requested_input_tokens)
        .filter(|&p| p > 0);
    let m = request::derive(r);
    let (Some(prompt), Some(ttft), true) = (prompt, m.ttft, alone) else {
        return None;
    };
    counts.alone += 1;
    let tpot = m
        .tpot
        .filter(|_| m.output_tokens >= MIN_TPOT_TOKENS)
        .map(Duration::from_secs_f64);
    Some(Observation {
        cell,
        round,
        index: r.index,
        prompt_tokens: prompt,
        output_tokens: m.output_tokens,
        ttft: Duration::from_secs_f64(ttft),
        tpot,
    })
}
