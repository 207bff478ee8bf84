//! A broken run never looks fine (issue 12): a target that is not there stops the run before
//! its first repetition, naming the URL; a server that goes away mid-run fails the
//! repetitions it missed, the run ends `partial` with exit code 3, and `--resume` redoes them
//! once the server is back.

mod common;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{exp, free_port, run, run_scenario, spawn, wait_until};

/// A one-cell closed-loop scenario against `base_url` asking for `model`.
fn scenario(dir: &Path, base_url: &str, model: &str, repetitions: u32) -> PathBuf {
    let path = dir.join("health.toml");
    let text = format!(
        r#"
[experiment]
name = "health"
description = "A target that may not be there."
repetitions = {repetitions}

[target]
kind = "openai-completions"
base_url = "{base_url}"
model = "{model}"

[vars.fixed]
concurrency = 1
requests = 15
prompt_tokens = 16
output_tokens = 8

[workload]
arrival = "closed"
warmup = 0
"#
    );
    std::fs::write(&path, text).unwrap();
    path
}

fn status(run_dir: &Path) -> String {
    common::json(&run_dir.join("manifest.json"))["status"]
        .as_str()
        .unwrap()
        .to_string()
}

/// `exp serve --fixed` with 20 ms to the first token and 2 ms per token, on `port`.
fn fixed_server(port: u16) -> common::Running {
    common::fixed_server("ttft=20ms,itl=2ms", port)
}

#[test]
fn nothing_listening_stops_the_run_within_seconds_naming_the_url() {
    let tmp = tempfile::tempdir().unwrap();
    let url = format!("http://127.0.0.1:{}/v1", free_port());
    let path = scenario(tmp.path(), &url, "m", 3);
    let started = Instant::now();
    let out = run_scenario(&path, &tmp.path().join("out")).expect_code(2);
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
    let last = out.stderr.lines().last().unwrap();
    assert!(
        last.starts_with(&format!(
            "error: cell default: cannot reach the target at {url}: "
        )),
        "{}",
        out.stderr
    );
    assert!(
        last.contains("(is the server running at that address?)"),
        "{last}"
    );
    let dir = out.run_dir();
    assert_eq!(status(&dir), "failed");
    assert_eq!(common::count_markers(&dir), 0, "no repetition ran");
}

#[test]
fn a_server_that_is_not_an_llm_server_stops_the_run() {
    // Every request gets 501, as from a plain web server.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(20) {
            let Ok(mut s) = stream else { continue };
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            let _ = s.write_all(
                b"HTTP/1.1 501 Not Implemented\r\nContent-Length: 15\r\nConnection: close\r\n\r\nnot implemented",
            );
        }
    });
    let tmp = tempfile::tempdir().unwrap();
    let url = format!("http://127.0.0.1:{port}/v1");
    let path = scenario(tmp.path(), &url, "m", 3);
    let out = run_scenario(&path, &tmp.path().join("out")).expect_code(2);
    let want = format!(
        "the target at {url} does not answer like an openai-completions server: GET {url}/models gave HTTP 501 (not implemented)"
    );
    assert!(out.stderr.contains(&want), "{}", out.stderr);
    assert_eq!(status(&out.run_dir()), "failed");
}

#[test]
fn a_model_the_server_does_not_list_is_a_warning() {
    let port = free_port();
    let server = fixed_server(port);
    let tmp = tempfile::tempdir().unwrap();
    let url = format!("http://127.0.0.1:{port}/v1");
    let path = scenario(tmp.path(), &url, "not-served", 1);
    let out = run_scenario(&path, &tmp.path().join("out"));
    server.signal(libc::SIGKILL);
    let out = out.expect_code(0);
    let want =
        format!("warning: cell default: {url}/models does not list model `not-served` (it lists: ");
    assert!(out.stderr.contains(&want), "{}", out.stderr);
}

#[test]
fn a_server_that_dies_mid_run_fails_what_it_missed_and_resume_redoes_it() {
    let port = free_port();
    let server = fixed_server(port);
    let tmp = tempfile::tempdir().unwrap();
    let url = format!("http://127.0.0.1:{port}/v1");
    let path = scenario(tmp.path(), &url, "exp-fixed", 6);
    let out_dir = tmp.path().join("out");
    let running = spawn(exp([
        "run",
        path.to_str().unwrap(),
        "--out",
        out_dir.to_str().unwrap(),
        "--no-progress",
    ]));
    let dir = common::wait_for_run_dir(&out_dir.join("health"));
    wait_until("two finished repetitions", || {
        common::count_markers(&dir) >= 2
    });
    server.signal(libc::SIGKILL);
    let _ = server.wait();
    let out = running.wait().expect_code(3);
    assert!(
        out.stderr.contains("partial: some repetitions failed"),
        "{}",
        out.stderr
    );
    assert_eq!(status(&dir), "partial");
    let failed = failed_rounds(&dir);
    // The kill came after 2 repetitions: at least the 3 that started after it found no server.
    assert!(failed.len() >= 3 && failed.len() <= 4, "{failed:?}");
    let ok = 6 - failed.len() as u64;
    assert_eq!(
        common::summary_n(&dir)["default"],
        ok,
        "failed ones are left out"
    );
    let report = std::fs::read_to_string(dir.join("report.md")).unwrap();
    // One line per reason: "repetition 3 FAILED and is left out …" or, for several rounds
    // that failed alike, "repetitions 3–5 FAILED and are left out …".
    assert!(
        report.contains("FAILED and is left out of the statistics")
            || report.contains("FAILED and are left out of the statistics"),
        "{report}"
    );

    // The server is back: --resume redoes exactly the failed repetitions.
    let server = fixed_server(port);
    let resumed = run(["run", "--resume", dir.to_str().unwrap(), "--no-progress"]);
    server.signal(libc::SIGKILL);
    resumed.expect_code(0);
    assert_eq!(status(&dir), "complete");
    assert!(failed_rounds(&dir).is_empty());
    assert_eq!(common::summary_n(&dir)["default"], 6);
}

/// Rounds whose marker records a failure.
fn failed_rounds(dir: &Path) -> Vec<u32> {
    (0..6)
        .filter(|&round| {
            let path = common::marker_path(dir, "default", round);
            path.exists() && !common::json(&path)["failure"].is_null()
        })
        .collect()
}
