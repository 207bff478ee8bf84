//! `--target` against a real HTTP server (issue 2, "Done means"): `exp serve --fixed` runs as
//! a separate process with known timing, `exp run --target` measures it; then the same run
//! against a closed port records connect failures and still reports.

mod common;

use std::path::Path;

use common::{free_port, json, planned_slots, records, run, text};

/// A port that was free a moment ago.
/// `exp run http_small.toml --target <url>` into `out`.
fn run_against(url: &str, out: &Path, extra: &[&str]) -> common::Outcome {
    let mut args = vec![
        "run",
        "tests/fixtures/cli/http_small.toml",
        "--target",
        url,
        "--out",
        out.to_str().unwrap(),
        "--no-progress",
    ];
    args.extend_from_slice(extra);
    run(args)
}

fn ms(ns: &serde_json::Value) -> f64 {
    ns.as_u64().expect("nanoseconds") as f64 / 1e6
}

#[test]
fn a_live_server_is_measured_with_its_known_timing() {
    let port = free_port();
    let server = common::fixed_server("ttft=20ms,itl=2ms", port);
    let url = format!("http://127.0.0.1:{port}/v1");
    let out_dir = tempfile::tempdir().unwrap();
    let out = run_against(&url, out_dir.path(), &[]);
    server.signal(libc::SIGKILL);
    let _ = server.wait();
    let out = out.expect_code(0);
    let dir = out.run_dir();

    let manifest = json(&dir.join("manifest.json"));
    assert_eq!(manifest["target_override"], url.as_str());
    let mut ttfts = Vec::new();
    for (cell, round) in planned_slots(&dir) {
        let recs = records(&dir, &cell, round);
        assert_eq!(recs.len(), 6);
        for r in recs {
            assert_eq!(r["outcome"]["status"], "ok", "{r}");
            // Token counts come from the server's usage report.
            assert_eq!(r["output_tokens"], 8, "{r}");
            assert!(r["input_tokens"].as_u64().is_some_and(|n| n > 0), "{r}");
            assert_eq!(r["chunks"].as_array().unwrap().len(), 8, "{r}");
            ttfts.push(ms(&r["chunks"][0]["t"]) - ms(&r["sent_ns"]));
        }
    }
    // The server cannot answer before its 20 ms: no TTFT may be shorter (a request sent
    // before the clock origin once read 17 ms). Above 20 ms is scheduling on a busy machine.
    ttfts.sort_by(f64::total_cmp);
    assert!(ttfts[0] >= 20.0, "TTFT below the server's 20 ms: {ttfts:?}");
    let median = ttfts[ttfts.len() / 2];
    assert!(median < 35.0, "median TTFT {median} ms: {ttfts:?}");
    let summary = json(&dir.join("summary.json"));
    let cell = &summary["cells"][0]["metrics"];
    assert_eq!(cell["error_rate"]["mean"], 0.0);
    assert!(text(&dir.join("report.md")).contains(&format!("openai-completions at {url}")));
}

/// Issue 12: a run against nothing used to send every request, record 100 % connection
/// errors and end `complete`; now the check before the first repetition stops it.
#[test]
fn a_closed_port_with_a_model_name_stops_the_run_naming_the_url() {
    let url = format!("http://127.0.0.1:{}/v1", free_port());
    let out_dir = tempfile::tempdir().unwrap();
    // A model name, so exp does not need to ask the (absent) server for one to start.
    let out = run_against(&url, out_dir.path(), &["--set", "target.model=fixture"]);
    let out = out.expect_code(2);
    let error = out.stderr.lines().last().unwrap();
    assert!(
        error.starts_with(&format!(
            "error: cell default: cannot reach the target at {url}: request failed: error sending request for url ({url}/models)"
        )),
        "{error}"
    );
    let dir = out.run_dir();
    assert_eq!(common::count_markers(&dir), 0, "no repetition ran");
    assert_eq!(json(&dir.join("manifest.json"))["status"], "failed");
}

#[test]
fn a_closed_port_without_a_model_name_fails_once_with_the_cause() {
    let url = format!("http://127.0.0.1:{}/v1", free_port());
    let out_dir = tempfile::tempdir().unwrap();
    let out = run_against(&url, out_dir.path(), &[]).expect_code(2);
    let error = out.stderr.lines().last().unwrap();
    assert!(
        error.starts_with(&format!(
            "error: cell default: request failed: error sending request for url ({url}/models)"
        )),
        "{error}"
    );
    assert_eq!(error.matches("Connection refused").count(), 1, "{error}");
}

/// Issue 12: a missing `api_key_env` variable used to leave a run directory with status
/// `running` behind; now the run is refused before the directory exists.
#[test]
fn a_missing_api_key_variable_is_refused_before_the_run_directory_exists() {
    let url = format!("http://127.0.0.1:{}/v1", free_port());
    let out_dir = tempfile::tempdir().unwrap();
    let var = "EXP_TEST_KEY_THAT_IS_NEVER_SET";
    let out = run_against(
        &url,
        out_dir.path(),
        &["--set", &format!("target.api_key_env=\"{var}\"")],
    )
    .expect_code(2);
    let want = format!(
        "error: tests/fixtures/cli/http_small.toml: cell default: [target] api_key_env = \"{var}\", but the environment variable {var} is not set (export it, then run again)"
    );
    assert_eq!(
        out.stderr.lines().last(),
        Some(want.as_str()),
        "{}",
        out.stderr
    );
    assert!(
        std::fs::read_dir(out_dir.path()).unwrap().next().is_none(),
        "no run directory"
    );
}
