//! Per-repetition summaries (metrics.md, "Per repetition"): one number per metric name, the
//! sample unit of every statistic across repetitions. Pure.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::column::{Column, IN_MEMORY_VALUES, Search};
use super::registry::{Kind, Metric, MetricKey};
use super::request::{RequestMetrics, chunk_gaps, derive, itl_values, prompt_tokens};
use crate::record::{Outcome, RecordSource, RequestRecord};

/// The summary of one repetition: metric name → value (SI units), plus counts the report
/// needs for warnings.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct RepetitionSummary {
    /// `ttft.p99`, `output_throughput`, … → value. Metrics undefined in this repetition
    /// (e.g. `tpot` when every request produced one token) are absent, never NaN.
    pub values: BTreeMap<MetricKey, f64>,
    /// Requests sent.
    pub sent: u64,
    /// Requests that finished ok.
    pub completed: u64,
    /// Failed requests by reason (`http`, `timeout`, …).
    pub failures: BTreeMap<String, u64>,
    /// First few distinct failure messages, for the report.
    pub failure_examples: Vec<String>,
    /// Ok requests whose generated length was below the requested `max_tokens`.
    pub short_outputs: u64,
    /// Ok requests whose output length came from counting chunks (no usage from the server).
    pub estimated_lengths: u64,
    /// Ok requests where per-chunk token counts disagree with the server's usage.
    pub token_mismatches: u64,
    /// Successful requests with enough samples for each percentile (for tail warnings).
    pub latency_samples: u64,
    /// Ok requests with both the server's prompt count (`usage.prompt_tokens`) and the
    /// client's (`requested_input_tokens`).
    #[serde(default)]
    pub prompt_counts_compared: u64,
    /// Of those, requests where the server counted more than [`PROMPT_TOKEN_TOLERANCE`] tokens
    /// more than the client (a chat template, or a different tokenizer).
    #[serde(default)]
    pub prompt_tokens_over: u64,
    /// Of those, requests where the server counted more than [`PROMPT_TOKEN_TOLERANCE`] tokens
    /// fewer than the client (a truncated prompt, or a different tokenizer).
    #[serde(default)]
    pub prompt_tokens_under: u64,
    /// Requests sent twice: the first attempt's connection closed before any response (a
    /// keep-alive connection the server closed as it was reused) and the retry went out on a
    /// fresh connection (`first_sent_ns` in the record).
    #[serde(default)]
    pub retried: u64,
    /// Ok requests whose stream ended after its finish reason without `data: [DONE]`.
    #[serde(default)]
    pub no_done: u64,
    /// The repetition's quality items (`[quality]`), for comparisons paired by item.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quality: Option<super::quality::QualityItems>,
}

/// Tokens by which the server's prompt count may differ from the client's before a request
/// counts as a mismatch: a BOS and other special tokens the client does not add.
pub const PROMPT_TOKEN_TOLERANCE: u32 = 4;

/// Summarises one repetition's records against the scenario's per-request SLOs.
pub fn summarize(records: &[RequestRecord], slo: &BTreeMap<Metric, Duration>) -> RepetitionSummary {
    let mut summarizer = Summarizer::new(slo);
    for rec in records {
        summarizer.push(rec);
    }
    match summarizer.finish(records) {
        Ok(summary) => summary,
        Err(never) => match never {},
    }
}

/// [`summarize`] one record at a time, so a repetition's records can be streamed from disk:
/// it keeps counts, sums and each metric's [`Column`] of per-request values, never the
/// records, and the columns spill past [`IN_MEMORY_VALUES`] so memory does not grow with the
/// repetition. Percentiles stay exact (type 7 over all of the repetition's values); a spilled
/// summary reads the records again in [`Summarizer::finish`] (at most 3 more passes).
#[derive(Debug)]
pub struct Summarizer<'a> {
    slo: &'a BTreeMap<Metric, Duration>,
    s: RepetitionSummary,
    /// By `Metric as usize`.
    columns: Vec<Column>,
    budget: usize,
    spilled: bool,
    out_tokens: u64,
    in_tokens: u64,
    good: u64,
    e2e_sum: f64,
    chunks: u64,
    sends: Instants,
    scheduled: Instants,
    window_start: u64,
    window_end: u64,
    /// Multi-turn workloads: a record with turn > 0 was seen, and the conversations begun.
    multi_turn: bool,
    conversations: u64,
}

/// How many instants, and the first and last: all a rate needs.
#[derive(Debug, Clone, Copy)]
struct Instants {
    n: u64,
    first: u64,
    last: u64,
}

impl Default for Instants {
    fn default() -> Self {
        Instants {
            n: 0,
            first: u64::MAX,
            last: 0,
        }
    }
}

impl Instants {
    fn push(&mut self, t: u64) {
        self.n += 1;
        self.first = self.first.min(t);
        self.last = self.last.max(t);
    }

    /// (n − 1) / (last − first), or `None` with fewer than two distinct instants.
    fn rate(self) -> Option<f64> {
        if self.n < 2 {
            return None;
        }
        let span = (self.last - self.first) as f64 / 1e9;
        (span > 0.0).then(|| (self.n - 1) as f64 / span)
    }
}

impl<'a> Summarizer<'a> {
    /// An empty summary against `slo`.
    pub fn new(slo: &'a BTreeMap<Metric, Duration>) -> Self {
        Self::with_budget(slo, IN_MEMORY_VALUES)
    }

    /// An empty summary whose columns hold at most `budget` values in memory.
    pub fn with_budget(slo: &'a BTreeMap<Metric, Duration>, budget: usize) -> Self {
        Summarizer {
            slo,
            s: RepetitionSummary::default(),
            columns: vec![Column::default(); Metric::ALL.len()],
            budget,
            spilled: false,
            out_tokens: 0,
            in_tokens: 0,
            good: 0,
            e2e_sum: 0.0,
            chunks: 0,
            sends: Instants::default(),
            scheduled: Instants::default(),
            window_start: u64::MAX,
            window_end: 0,
            multi_turn: false,
            conversations: 0,
        }
    }

    /// The measured window so far, in ns from the origin: the first scheduled send to the
    /// last response; `None` before a request was sent.
    pub fn window_ns(&self) -> Option<(u64, u64)> {
        (self.s.sent > 0).then_some((self.window_start, self.window_end))
    }

    /// Adds one record.
    pub fn push(&mut self, rec: &RequestRecord) {
        let s = &mut self.s;
        self.scheduled.push(rec.scheduled_ns);
        self.window_start = self.window_start.min(rec.scheduled_ns);
        let Some(sent) = rec.sent_ns else { return };
        s.sent += 1;
        s.retried += u64::from(rec.first_sent_ns.is_some());
        self.multi_turn |= rec.turn > 0;
        self.conversations += u64::from(rec.turn == 0);
        self.sends.push(sent);
        let m = derive(rec);
        let columns = &mut self.columns;
        for_each_value(rec, &m, |metric, x| columns[metric as usize].push(x));
        self.spill_if_full();
        self.window_end = self.window_end.max(rec.done_ns.unwrap_or(sent));
        if let Outcome::Failed {
            reason, message, ..
        } = &rec.outcome
        {
            let s = &mut self.s;
            *s.failures.entry(reason.as_str().to_string()).or_default() += 1;
            if s.failure_examples.len() < 5 && !s.failure_examples.contains(message) {
                s.failure_examples.push(message.clone());
            }
            return;
        }
        let s = &mut self.s;
        s.completed += 1;
        s.no_done += u64::from(rec.no_done);
        self.chunks += rec.chunks.len() as u64;
        self.out_tokens += u64::from(m.output_tokens);
        self.in_tokens += u64::from(prompt_tokens(rec).unwrap_or(0));
        self.e2e_sum += m.e2e.unwrap_or(0.0);
        if meets_slo(&m, rec, self.slo) {
            self.good += 1;
        }
        s.estimated_lengths += u64::from(m.output_tokens_estimated);
        // A length counted from chunks says nothing about a shortfall: a server that writes
        // several tokens per chunk would be blamed for ignoring `ignore_eos`.
        if !m.output_tokens_estimated
            && rec
                .requested_output_tokens
                .is_some_and(|want| m.output_tokens < want)
        {
            s.short_outputs += 1;
        }
        if token_mismatch(rec) {
            s.token_mismatches += 1;
        }
        compare_prompt_counts(rec, s);
    }

    fn spill_if_full(&mut self) {
        if self.spilled || self.columns.iter().map(Column::held).sum::<usize>() <= self.budget {
            return;
        }
        self.columns.iter_mut().for_each(Column::spill);
        self.spilled = true;
    }

    /// The summary of every record pushed. `records` must be those records: a summary whose
    /// columns spilled reads them again for its percentiles.
    pub fn finish<S: RecordSource + ?Sized>(
        self,
        records: &S,
    ) -> Result<RepetitionSummary, S::Error> {
        let mut s = self.s;
        s.latency_samples = s.completed;
        let mut searches = Vec::new();
        for (metric, column) in Metric::ALL.into_iter().zip(self.columns) {
            searches.extend(column.finish(metric, &mut s.values));
        }
        search(records, searches, &mut s.values)?;
        let duration = self.window_end.saturating_sub(self.window_start) as f64 / 1e9;
        let (out_tokens, in_tokens, good) = (self.out_tokens, self.in_tokens, self.good);
        let v = &mut s.values;
        v.insert(Metric::Requests.key(), s.sent as f64);
        v.insert(Metric::Completed.key(), s.completed as f64);
        v.insert(Metric::Failed.key(), (s.sent - s.completed) as f64);
        // Multi-turn workloads: `requests` counts turns; this counts the conversations begun.
        if self.multi_turn {
            v.insert(Metric::Conversations.key(), self.conversations as f64);
        }
        if s.sent > 0 {
            v.insert(
                Metric::ErrorRate.key(),
                (s.sent - s.completed) as f64 / s.sent as f64,
            );
            v.insert(Metric::SloAttainment.key(), good as f64 / s.sent as f64);
        }
        if duration > 0.0 {
            v.insert(Metric::Duration.key(), duration);
            v.insert(
                Metric::RequestThroughput.key(),
                s.completed as f64 / duration,
            );
            v.insert(Metric::OutputThroughput.key(), out_tokens as f64 / duration);
            v.insert(
                Metric::TotalThroughput.key(),
                (out_tokens + in_tokens) as f64 / duration,
            );
            v.insert(Metric::Goodput.key(), good as f64 / duration);
            v.insert(Metric::Concurrency.key(), self.e2e_sum / duration);
        }
        if let Some(rate) = self.sends.rate() {
            v.insert(Metric::AchievedRate.key(), rate);
        }
        if let Some(rate) = self.scheduled.rate() {
            v.insert(Metric::ScheduledRate.key(), rate);
        }
        if self.chunks > 0 {
            v.insert(
                Metric::TokensPerChunk.key(),
                out_tokens as f64 / self.chunks as f64,
            );
        }
        if s.completed > 0 {
            v.insert(
                Metric::OutputLengthShortfall.key(),
                s.short_outputs as f64 / s.completed as f64,
            );
        }
        Ok(s)
    }
}

/// Runs the passes over `records` that spilled columns need, then inserts their statistics.
fn search<S: RecordSource + ?Sized>(
    records: &S,
    mut searches: Vec<Search>,
    out: &mut BTreeMap<MetricKey, f64>,
) -> Result<(), S::Error> {
    loop {
        let (pending, done): (Vec<_>, Vec<_>) = searches.into_iter().partition(Search::needs_pass);
        done.into_iter().for_each(|search| search.finish(out));
        searches = pending;
        if searches.is_empty() {
            return Ok(());
        }
        let mut by_metric = vec![None; Metric::ALL.len()];
        for (i, search) in searches.iter().enumerate() {
            by_metric[search.metric() as usize] = Some(i);
        }
        records.replay(&mut |rec| {
            if rec.sent_ns.is_none() {
                return;
            }
            for_each_value(rec, &derive(rec), |metric, x| {
                if let Some(i) = by_metric[metric as usize] {
                    searches[i].see(x);
                }
            });
        })?;
        searches.iter_mut().for_each(Search::end_pass);
    }
}

/// Every per-request value one sent record adds to the columns: `queue_delay` for every sent
/// request (failed ones too), and for an ok one each per-request metric it defines, one `itl`
/// per token and one `chunk_gap` per gap.
fn for_each_value(rec: &RequestRecord, m: &RequestMetrics, mut f: impl FnMut(Metric, f64)) {
    if let Some(q) = m.queue_delay {
        f(Metric::QueueDelay, q);
    }
    if !rec.outcome.is_ok() {
        return;
    }
    let per_request = Metric::ALL.into_iter().filter(|m| {
        let own = matches!(m, Metric::QueueDelay | Metric::Itl | Metric::ChunkGap);
        m.spec().kind == Kind::Distribution && !own
    });
    for metric in per_request {
        if let Some(x) = metric.request_value(m) {
            f(metric, x);
        }
    }
    itl_values(rec).for_each(|x| f(Metric::Itl, x));
    chunk_gaps(&rec.chunks).for_each(|x| f(Metric::ChunkGap, x));
}

fn meets_slo(m: &RequestMetrics, rec: &RequestRecord, slo: &BTreeMap<Metric, Duration>) -> bool {
    slo.iter().all(|(metric, limit)| {
        let limit = limit.as_secs_f64();
        let value = match metric {
            // A one-token answer has no decode time to bound.
            Metric::Tpot => m.tpot.or(Some(0.0)),
            // A request meets an ITL bound when its worst gap does.
            Metric::Itl => Some(itl_values(rec).fold(0.0, f64::max)),
            other => other.request_value(m),
        };
        value.is_some_and(|v| v <= limit)
    })
}

/// Counts an ok request's prompt against the server's count of it.
fn compare_prompt_counts(rec: &RequestRecord, s: &mut RepetitionSummary) {
    let (Some(server), Some(client)) = (rec.input_tokens, rec.requested_input_tokens) else {
        return;
    };
    s.prompt_counts_compared += 1;
    if server > client.saturating_add(PROMPT_TOKEN_TOLERANCE) {
        s.prompt_tokens_over += 1;
    } else if client > server.saturating_add(PROMPT_TOKEN_TOLERANCE) {
        s.prompt_tokens_under += 1;
    }
}

fn token_mismatch(rec: &RequestRecord) -> bool {
    let (Some(usage), true) = (
        rec.output_tokens,
        rec.chunks.iter().all(|c| c.tokens.is_some()),
    ) else {
        return false;
    };
    if rec.chunks.is_empty() {
        return false;
    }
    let counted: u32 = rec.chunks.iter().filter_map(|c| c.tokens).sum();
    counted != usage
}

#[cfg(test)]
#[path = "repetition_tests.rs"]
mod tests;
