//! `cargo bench --bench summary`: summarising one long repetition takes memory that does not
//! grow with it (issue 12). Writes a synthetic repetition of `SUMMARY_REQUESTS` requests
//! (default 1,000,000) to a records file, then summarises it the way `exp report` does
//! (`metrics::summarize_repetition` over the file, streamed) in a child process, and prints
//! each phase's time and the child's peak RSS (`VmHWM`). Exits 1 if the peak is over 100 MB.
//!
//! Each request streams 16–64 chunks of one token (uniform, seeded): TTFT 20–200 ms, gaps
//! 2–30 ms, all at nanosecond resolution, so `itl` and `chunk_gap` have ~40 M values at 1 M
//! requests. One request in 50 fails. `SUMMARY_HELD=1` also summarises the records held in
//! memory (`RunDir::records`, as before issue 12) for comparison: only for small counts.

use std::io::{BufWriter, Write};
use std::path::Path;
use std::process::Command;
use std::time::Instant;

use rand::{RngExt, SeedableRng};

use exp::metrics::{self, CellInputs, RepetitionInputs};
use exp::record::{Chunk, FailureReason, Outcome, RequestRecord};
use exp::store::{RepMarker, RepRecords};

/// Largest peak RSS of the summarising process that passes.
const LIMIT_MB: f64 = 100.0;

fn requests() -> u64 {
    std::env::var("SUMMARY_REQUESTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000)
}

/// Peak resident set size of this process in MB (`VmHWM`).
fn peak_rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status (Linux)");
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .expect("VmHWM in /proc/self/status");
    kb / 1e3
}

/// Request `i` of an open loop at 1,000 requests/s.
fn record(i: u64, rng: &mut impl RngExt) -> RequestRecord {
    let ms = 1_000_000;
    let scheduled = i * ms;
    let sent = scheduled + rng.random_range(20_000..200_000);
    let chunks = rng.random_range(16..=64u32);
    let mut at = sent + rng.random_range(20 * ms..200 * ms);
    let chunks: Vec<Chunk> = (0..chunks)
        .map(|_| {
            let c = Chunk {
                at_ns: at,
                tokens: None,
                reasoning: false,
            };
            at += rng.random_range(2 * ms..30 * ms);
            c
        })
        .collect();
    let n = chunks.len() as u32;
    let mut r = RequestRecord {
        index: i,
        turn: 0,
        scheduled_ns: scheduled,
        sent_ns: Some(sent),
        first_sent_ns: None,
        no_done: false,
        text: None,
        counted: None,
        done_ns: chunks.last().map(|c| c.at_ns),
        chunks,
        input_tokens: Some(512),
        output_tokens: Some(n),
        requested_input_tokens: Some(512),
        requested_output_tokens: Some(n),
        finish_reason: Some("length".into()),
        outcome: Outcome::Ok,
    };
    if rng.random_range(0..50) == 0 {
        r.chunks.clear();
        (r.done_ns, r.output_tokens) = (None, None);
        r.outcome = Outcome::Failed {
            reason: FailureReason::Http,
            http_status: Some(503),
            message: "overloaded".into(),
        };
    }
    r
}

fn write(path: &Path, n: u64) {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(12);
    let mut out = BufWriter::with_capacity(1 << 16, std::fs::File::create(path).unwrap());
    for i in 0..n {
        serde_json::to_writer(&mut out, &record(i, &mut rng)).unwrap();
        out.write_all(b"\n").unwrap();
    }
    out.flush().unwrap();
}

fn marker(n: u64) -> RepMarker {
    serde_json::from_value(serde_json::json!({
        "schema_version": 1, "cell_id": "c", "round": 0, "records": n,
        "origin_wall": "2026-01-01T00:00:00Z", "wall_seconds": n as f64 / 1000.0,
    }))
    .unwrap()
}

/// The child: summarises the file (streamed, or held in memory) and prints one line.
fn summarize(path: &Path, held: bool) {
    let started = Instant::now();
    let slo = Default::default();
    let cell = CellInputs {
        slo: &slo,
        batch: false,
        deployment: None,
        cost: None,
    };
    let marker = marker(0);
    let source = RepRecords::at(path);
    let values = match held {
        false => {
            let inputs = RepetitionInputs {
                records: &source,
                marker: &marker,
                probes: None,
                quality: None,
                cell: &cell,
            };
            metrics::summarize_repetition(inputs).unwrap().values
        }
        true => {
            let mut records = Vec::new();
            exp::record::RecordSource::replay(&source, &mut |r| records.push(r.clone())).unwrap();
            metrics::summarize(&records, &slo).values
        }
    };
    let k = |name: &str| values[&exp::metrics::MetricKey::parse(name).expect("a metric")];
    println!(
        "{:.1} s, peak RSS {:.1} MB, {} requests, itl.p99 {:.6} s, ttft.p50 {:.6} s",
        started.elapsed().as_secs_f64(),
        peak_rss_mb(),
        k("requests"),
        k("itl.p99"),
        k("ttft.p50"),
    );
}

fn child(path: &Path, phase: &str) -> String {
    let out = Command::new(std::env::current_exe().unwrap())
        .env("SUMMARY_CHILD", phase)
        .env("SUMMARY_FILE", path)
        .output()
        .expect("re-run this bench as a child");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

fn main() {
    if let Ok(phase) = std::env::var("SUMMARY_CHILD") {
        let path = std::env::var("SUMMARY_FILE").unwrap();
        return summarize(Path::new(&path), phase == "held");
    }
    let n = requests();
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("rep-000.jsonl");
    let started = Instant::now();
    write(&path, n);
    let bytes = std::fs::metadata(&path).unwrap().len();
    println!(
        "wrote {n} requests (16-64 chunks each), {:.0} MB, in {:.1} s",
        bytes as f64 / 1e6,
        started.elapsed().as_secs_f64()
    );
    let streamed = child(&path, "streamed");
    println!("streamed summary: {streamed}");
    if std::env::var("SUMMARY_HELD").is_ok_and(|v| v == "1") {
        println!("held in memory:   {}", child(&path, "held"));
    }
    let peak: f64 = streamed
        .split("peak RSS ")
        .nth(1)
        .and_then(|s| s.split(' ').next()?.parse().ok())
        .expect("the child's peak");
    if peak > LIMIT_MB {
        eprintln!("peak RSS {peak:.1} MB is over {LIMIT_MB} MB");
        std::process::exit(1);
    }
}
