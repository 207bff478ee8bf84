//! A misbehaving server is measured, not believed (issue 6), at the level of a whole run:
//! a fault-injecting local server fails a fixed, known share of requests (a 503 burst with
//! `Retry-After`, a 500, a 429 with `Retry-After`, a reset mid-stream, a 200 that is HTML);
//! every repetition still completes, each failure is recorded with its reason, nothing is
//! retried, the summary and the report show the failure rate, and goodput counts failures
//! as failures. Client-level known answers for each fault are in `src/backend/*_tests.rs`.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use exp::plan::Plan;
use exp::record::Outcome;
use exp::store::RunDir;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Requests per repetition; the server's plan repeats with this period.
const PER_REP: u64 = 12;

/// What the server does with the `n`-th request it receives within a repetition.
fn fault(n: u64) -> Option<&'static str> {
    match n % PER_REP {
        3..=5 => Some("503"),
        7 => Some("500"),
        8 => Some("429"),
        10 => Some("reset"),
        11 => Some("html"),
        _ => None,
    }
}

const GOOD: &[u8] =
    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n\
data: {\"choices\":[{\"index\":0,\"text\":\" a\"}]}\n\n\
data: {\"choices\":[{\"index\":0,\"text\":\" b\"}]}\n\n\
data: {\"choices\":[{\"index\":0,\"text\":\" c\",\"finish_reason\":\"length\"}]}\n\n\
data: {\"choices\":[],\"usage\":{\"prompt_tokens\":4,\"completion_tokens\":3}}\n\n\
data: [DONE]\n\n";

fn reply(kind: &str) -> &'static [u8] {
    match kind {
        "503" => b"HTTP/1.1 503 Service Unavailable\r\nretry-after: 1\r\ncontent-length: 10\r\nconnection: close\r\n\r\noverloaded",
        "500" => b"HTTP/1.1 500 Internal Server Error\r\ncontent-length: 4\r\nconnection: close\r\n\r\ndead",
        "429" => b"HTTP/1.1 429 Too Many Requests\r\nretry-after: 2\r\ncontent-length: 4\r\nconnection: close\r\n\r\nbusy",
        "html" => b"HTTP/1.1 200 OK\r\ncontent-type: text/html\r\ncontent-length: 13\r\nconnection: close\r\n\r\n<html></html>",
        _ => b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n\
data: {\"choices\":[{\"index\":0,\"text\":\" a\"}]}\n\n",
    }
}

/// What a client asked for.
#[derive(PartialEq)]
enum Asked {
    /// Nothing readable.
    Nothing,
    /// `GET …/models`: the list of models, which the run checks before its first repetition.
    Models,
    /// A completion.
    Completion,
}

const MODELS: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 37\r\nconnection: close\r\n\r\n{\"object\":\"list\",\"data\":[{\"id\":\"m\"}]}";

/// Reads one request (headers and a `content-length` body).
async fn read_request(sock: &mut TcpStream) -> Asked {
    let mut buf = Vec::new();
    let mut tmp = [0u8; 4096];
    loop {
        let Ok(n) = sock.read(&mut tmp).await else {
            return Asked::Nothing;
        };
        if n == 0 {
            return Asked::Nothing;
        }
        buf.extend_from_slice(&tmp[..n]);
        let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
            continue;
        };
        let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
        let len = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .map_or(0, |v| v.trim().parse::<usize>().unwrap_or(0));
        if buf.len() >= end + 4 + len {
            return match head.starts_with("get ")
                && head.lines().next().is_some_and(|l| l.contains("/models"))
            {
                true => Asked::Models,
                false => Asked::Completion,
            };
        }
    }
}

/// The fault-injecting server: its base URL and the count of requests it received.
async fn faulty_server() -> (String, Arc<AtomicU64>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let received = Arc::new(AtomicU64::new(0));
    let counter = received.clone();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let counter = counter.clone();
            tokio::spawn(async move {
                match read_request(&mut sock).await {
                    Asked::Nothing => return,
                    Asked::Models => {
                        let _ = sock.write_all(MODELS).await;
                        return;
                    }
                    Asked::Completion => {}
                }
                let n = counter.fetch_add(1, Ordering::SeqCst);
                match fault(n) {
                    None => {
                        let _ = sock.write_all(GOOD).await;
                    }
                    Some("reset") => {
                        let _ = sock.write_all(reply("reset")).await;
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        sock.set_zero_linger().unwrap();
                    }
                    Some(kind) => {
                        let _ = sock.write_all(reply(kind)).await;
                    }
                }
            });
        }
    });
    (format!("http://{addr}/v1"), received)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_are_recorded_counted_in_the_report_and_never_retried() {
    let (url, received) = faulty_server().await;
    let text = format!(
        r#"
[experiment]
name = "faults"
description = "a server that fails 7 of every 12 requests"
repetitions = 2
[target]
kind = "openai-completions"
base_url = "{url}"
model = "m"
timeout = "10s"
idle_timeout = "5s"
[vars.fixed]
requests = {PER_REP}
concurrency = 1
[workload]
arrival = "closed"
warmup = 0
"#
    );
    let out = tempfile::tempdir().unwrap();
    let scenario = exp::scenario::parse(&text, Path::new("faults.toml"), &[])
        .unwrap_or_else(|e| panic!("{e}"));
    let plan = Plan::build(scenario).unwrap();
    let manifest = exp::app::new_manifest(&plan, Path::new("faults.toml"), &Default::default());
    let dir = RunDir::create(out.path(), &manifest, &plan.scenario.text).unwrap();
    let end = exp::run::execute(&plan, &dir, false).await.unwrap();
    assert_eq!(end, exp::run::RunEnd::Complete);
    exp::app::finish_run(&dir, &manifest, &plan, None, true).unwrap();

    // No retries: the server saw exactly the requests the plan sends.
    assert_eq!(received.load(Ordering::SeqCst), 2 * PER_REP);
    assert_eq!(
        dir.completed().unwrap().len(),
        2,
        "both repetitions complete"
    );
    for round in 0..2 {
        let records = dir.records("default", round).unwrap();
        assert_eq!(records.len() as u64, PER_REP);
        let mut reasons: Vec<String> = records
            .iter()
            .filter_map(|r| match &r.outcome {
                Outcome::Failed {
                    reason,
                    http_status,
                    message,
                } => Some(format!("{} {http_status:?} {message}", reason.as_str())),
                Outcome::Ok => None,
            })
            .collect();
        reasons.sort();
        assert_eq!(reasons.len(), 7, "{reasons:#?}");
        let want_prefixes = [
            "http Some(429) 429 Too Many Requests (retry-after: 2): busy",
            "http Some(500) 500 Internal Server Error: dead",
            "http Some(503) 503 Service Unavailable (retry-after: 1): overloaded",
            "http Some(503) 503 Service Unavailable (retry-after: 1): overloaded",
            "http Some(503) 503 Service Unavailable (retry-after: 1): overloaded",
            "incomplete None stream broke before [DONE] or a finish reason",
            "protocol None expected text/event-stream, got a reply that is not an event stream (text/html): <html></html>",
        ];
        for (got, want) in reasons.iter().zip(want_prefixes) {
            assert!(got.starts_with(want), "{got}\n  wanted: {want}");
        }
    }

    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.root().join("summary.json")).unwrap()).unwrap();
    let reps = summary["repetitions"].as_array().unwrap();
    assert_eq!(reps.len(), 2);
    for rep in reps {
        let s = &rep["summary"];
        let v = &s["values"];
        assert_eq!(s["sent"], PER_REP);
        assert_eq!(s["completed"], 5);
        assert_eq!(s["failures"]["http"], 5);
        assert_eq!(s["failures"]["incomplete"], 1);
        assert_eq!(s["failures"]["protocol"], 1);
        assert_eq!(v["error_rate"].as_f64().unwrap(), 7.0 / 12.0);
        // Goodput counts only the 5 requests that succeeded, over the whole window.
        let goodput = v["goodput"].as_f64().unwrap();
        let duration = v["duration"].as_f64().unwrap();
        assert!(
            (goodput * duration - 5.0).abs() < 1e-9,
            "{goodput} × {duration}"
        );
        assert_eq!(v["slo_attainment"].as_f64().unwrap(), 5.0 / 12.0);
    }
    let report = std::fs::read_to_string(dir.root().join("report.md")).unwrap();
    assert!(
        report.contains("14 of 24 requests failed (http: 10, incomplete: 2, protocol: 2)"),
        "{report}"
    );
    assert!(
        report.contains("58.3 %"),
        "error rate in the table:\n{report}"
    );
}
