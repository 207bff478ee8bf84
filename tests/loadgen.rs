//! Issue 7: the load generator reports its own cost, and its records and the fixed server's
//! truth log share the host's monotonic clock.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use exp::clock::Anchor;
use exp::metrics::Metric;
use exp::plan::Plan;
use exp::serve::{self, FixedTiming, TruthLine};
use exp::store::RunDir;

/// An open-loop run through the whole pipeline against an in-process fixed server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_reports_the_clients_cost_and_lines_up_with_the_servers_log() {
    let mut timing = FixedTiming::new(Duration::from_millis(20), Duration::from_millis(2));
    timing.echo_header = Some(exp::backend::REQUEST_HEADER.to_owned());
    let srv = serve::spawn_fixed("127.0.0.1:0".parse().unwrap(), timing)
        .await
        .unwrap();
    let text = format!(
        r#"
[experiment]
name = "loadgen"
description = "client self-report"
repetitions = 1
[target]
kind = "openai-completions"
base_url = "{}"
model = "exp-fixed"
[vars.fixed]
prompt_tokens = 8
output_tokens = 10
requests = 40
request_rate = 50
[workload]
arrival = "poisson"
warmup = 2
"#,
        srv.base_url()
    );
    let out = tempfile::tempdir().unwrap();
    let scenario = exp::scenario::parse(&text, Path::new("loadgen.toml"), &[]).unwrap();
    let plan = Plan::build(scenario).unwrap();
    let manifest = exp::app::new_manifest(&plan, Path::new("loadgen.toml"), &Default::default());
    let dir = RunDir::create(out.path(), &manifest, &plan.scenario.text).unwrap();
    exp::run::execute(&plan, &dir, false).await.unwrap();
    let anchor = Anchor::now().unwrap();
    let truth = srv.finish().await.unwrap();

    let cell = &manifest.cells[0].id;
    let marker = dir.marker(cell, 0).unwrap();
    let cpu = marker
        .client_cpu_seconds
        .expect("HTTP runs measure the client");
    let d = &marker.details;
    let window = d.client_window_seconds.unwrap();
    assert!(cpu > 0.0 && window > 0.5, "cpu {cpu}, window {window}");
    assert!(d.client_cores.unwrap() >= 1);
    assert!(d.client_cpu_wait_seconds.unwrap() >= 0.0);

    // Records and the server's log on one clock: every first chunk arrives after the server
    // wrote it, and within milliseconds. Each request names itself in `x-exp-request`.
    let origin = d.origin_monotonic_ns.unwrap();
    let records = dir.records(cell, 0).unwrap();
    let served: Vec<TruthLine> = truth
        .iter()
        .map(|t| TruthLine::new(t, &anchor))
        .filter(|t| t.received_ns >= origin)
        .collect();
    assert_eq!(served.len(), records.len());
    let mut total = 0.0;
    for r in &records {
        let id = r.index.to_string();
        let t = served
            .iter()
            .find(|t| t.request_id.as_deref() == Some(id.as_str()))
            .expect("the server logged every request with its index");
        let seen = origin + r.chunks[0].at_ns;
        let written = t.first_token_ns.unwrap();
        assert!(seen >= written, "seen before written");
        total += (seen - written) as f64 / 1e6;
    }
    let mean_ms = total / records.len() as f64;
    assert!(mean_ms < 5.0, "mean first-token lag {mean_ms} ms");

    // The client's own cost reaches the summary and the report.
    exp::app::finish_run(&dir, &manifest, &plan, None, true).unwrap();
    let cells = exp::app::load_results(&dir, &manifest, &plan).unwrap();
    let v = &cells[0].reps[0].summary.values;
    let per_request = v[&Metric::ClientCpuPerRequest.key()];
    assert!((per_request - cpu / 40.0).abs() < 1e-12, "{per_request}");
    assert!((v[&Metric::ClientCpuUtil.key()] - cpu / window).abs() < 1e-12);
    let report = std::fs::read_to_string(dir.root().join("report.md")).unwrap();
    assert!(report.contains("Client CPU per request"), "{report}");
    assert!(report.contains("Client CPU util"), "{report}");
    assert!(report.contains("Queue delay"), "{report}");
}

/// `exp serve --fixed … --truth-log FILE`: instants another process can compare with its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fixed_servers_truth_log_is_on_the_hosts_monotonic_clock() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("truth.jsonl");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_exp"))
        .args(["serve", "--fixed", "ttft=30ms,itl=5ms", "--port"])
        .arg(port.to_string())
        .arg("--truth-log")
        .arg(&log)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let url = format!("http://127.0.0.1:{port}/v1/completions");
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    let before = exp::clock::monotonic_ns().unwrap();
    let mut sent = 0;
    while sent < 3 {
        let body =
            serde_json::json!({"model": "m", "prompt": "a b c", "max_tokens": 4, "stream": true});
        match http.post(&url).json(&body).send().await {
            Ok(resp) => {
                resp.bytes().await.unwrap();
                sent += 1;
            }
            Err(_) => {
                assert!(Instant::now() < deadline, "server did not start");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
    let after = exp::clock::monotonic_ns().unwrap();
    // SAFETY: signals our own child.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) };
    assert!(child.wait().unwrap().success());
    let lines: Vec<TruthLine> = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3);
    for t in &lines {
        assert!(t.completed && t.tokens == 4);
        // Received and written while this process was sending, by this process's clock.
        assert!(before <= t.received_ns && t.last_token_ns.unwrap() <= after);
        let ttft = t.first_token_ns.unwrap() - t.received_ns;
        // At least the 30 ms asked for; the upper bound only catches a wrong clock (seconds
        // or another epoch), as a loaded 2-core machine can delay a timer by 100s of ms.
        assert!(
            (30_000_000..2_000_000_000).contains(&ttft),
            "ttft {ttft} ns"
        );
        // Tokens are due at received + 30 ms + k · 5 ms and never written early; a late
        // first write (a busy machine) lets the next ones catch up, so only the last token's
        // bound is certain: 30 + 3 · 5 ms after the request arrived.
        let last = t.last_token_ns.unwrap() - t.received_ns;
        assert!(
            last >= 45_000_000,
            "the 4th token after {last} ns, before it was due"
        );
    }
}
