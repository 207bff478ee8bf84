//! A run's records next to the server's truth log: when the server handed each first and last
//! token to its HTTP layer, on the same monotonic clock as the client's records.

use std::collections::HashMap;
use std::path::Path;

use exp::metrics::RepetitionSummary;
use exp::record::RequestRecord;
use exp::serve::TruthLine;
use exp::store::RunDir;

/// Repetition 0 of the only cell of a run.
pub struct Rep {
    pub records: Vec<RequestRecord>,
    pub summary: RepetitionSummary,
    /// The records' origin on the raw monotonic clock.
    pub origin_ns: u64,
}

impl Rep {
    pub fn read(run_dir: &Path) -> Rep {
        let (dir, manifest) = RunDir::open(run_dir).expect("run directory");
        let cell = &manifest.cells[0].id;
        let records = dir.records(cell, 0).expect("records");
        let marker = dir.marker(cell, 0).expect("marker");
        let mut summary = exp::metrics::summarize(&records, &Default::default());
        exp::metrics::client::add(&marker, summary.sent, &mut summary.values);
        let origin_ns =
            (marker.details.origin_monotonic_ns).expect("HTTP runs record their origin");
        Rep {
            records,
            summary,
            origin_ns,
        }
    }

    pub fn value(&self, name: &str) -> f64 {
        let key = exp::metrics::MetricKey::parse(name).expect("a summary metric");
        self.summary.values.get(&key).copied().unwrap_or(f64::NAN)
    }

    /// The largest number of requests in flight at once, from send to last token.
    pub fn peak_in_flight(&self) -> usize {
        peak(
            self.records
                .iter()
                .filter_map(|r| Some((r.sent_ns?, r.done_ns?))),
        )
    }
}

/// The most intervals `[start, end)` open at one instant.
pub fn peak(intervals: impl Iterator<Item = (u64, u64)>) -> usize {
    let mut events: Vec<(u64, i32)> = intervals.flat_map(|(a, b)| [(a, 1), (b, -1)]).collect();
    events.sort_unstable();
    let (mut open, mut most) = (0i64, 0i64);
    for (_, d) in events {
        open += i64::from(d);
        most = most.max(open);
    }
    most as usize
}

pub fn read_truth(path: &Path) -> Vec<TruthLine> {
    let text = std::fs::read_to_string(path).expect("truth log");
    text.lines()
        .map(|l| serde_json::from_str(l).expect("truth line"))
        .collect()
}

/// Client-minus-server differences in seconds, one per matched request.
#[derive(Default)]
pub struct Errors {
    pub ttft: Vec<f64>,
    pub tpot: Vec<f64>,
    pub e2e: Vec<f64>,
    /// Requests the server's log has no entry for.
    pub unmatched: usize,
}

/// Pairs each measured request with the server's entry that echoed its index
/// (`x-exp-request`; warm-up requests reuse indices but were received before the origin) and
/// takes the differences of their first and last token instants.
pub fn errors(rep: &Rep, truth: &[TruthLine]) -> Errors {
    let served: HashMap<u64, &TruthLine> = truth
        .iter()
        .filter(|t| t.received_ns >= rep.origin_ns && t.completed)
        .filter_map(|t| Some((t.request_id.as_deref()?.parse().ok()?, t)))
        .collect();
    let mut out = Errors::default();
    for r in rep.records.iter().filter(|r| r.outcome.is_ok()) {
        let abs = |ns: u64| rep.origin_ns + ns;
        let found = served.get(&r.index).and_then(|t| {
            Some((
                t.first_token_ns?,
                t.last_token_ns?,
                r.done_ns?,
                r.chunks.first()?,
            ))
        });
        let Some((first, last, done, chunk)) = found else {
            out.unmatched += 1;
            continue;
        };
        let diff = |client: u64, server: u64| (client as f64 - server as f64) / 1e9;
        let ttft = diff(abs(chunk.at_ns), first);
        let e2e = diff(abs(done), last);
        out.ttft.push(ttft);
        out.e2e.push(e2e);
        if r.chunks.len() > 1 {
            out.tpot.push((e2e - ttft) / (r.chunks.len() - 1) as f64);
        }
    }
    out
}

/// Mean and type-7 p99 of `values` (seconds), as `(mean, p99)`.
pub fn mean_p99(values: &[f64]) -> (f64, f64) {
    let mean = values.iter().sum::<f64>() / values.len().max(1) as f64;
    let p99 = exp::stats::quantile_of(values, 0.99).unwrap_or(f64::NAN);
    (mean, p99)
}
