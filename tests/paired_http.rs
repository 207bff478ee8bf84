//! The paired A/A over HTTP (issue 15): two runs of one scenario and seed against the same
//! fixed-timing server see the same Poisson workload round by round, so their per-round
//! throughputs agree to a fraction of a percent. Compared unpaired (Welch), that agreement
//! was lost in the round-to-round spread of the arrivals: "inconclusive (MDE 26.5 %)".
//! Paired by round, throughput settles as `no change`.

mod common;

use common::{fixed_server, free_port, run};

#[test]
fn an_http_a_a_pair_settles_throughput_as_no_change() {
    let port = free_port();
    let server = fixed_server("ttft=5ms,itl=1ms", port);
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("aa.toml");
    std::fs::write(
        &path,
        format!(
            r#"[experiment]
name = "aa"
description = "The same server twice."
repetitions = 8
seed = 21

[target]
kind = "openai-completions"
base_url = "http://127.0.0.1:{port}/v1"
model = "exp-fixed"

[vars.fixed]
requests = 40
request_rate = 40
prompt_tokens = 16
output_tokens = 16

[workload]
arrival = "poisson"
warmup = 1
"#
        ),
    )
    .unwrap();
    let path_s = path.to_str().unwrap();
    let out = |name: &str| tmp.path().join(name).to_str().unwrap().to_string();
    let (a_out, b_out) = (out("a"), out("b"));
    let a = run(["run", path_s, "--out", &a_out, "--no-progress"]).expect_code(0);
    let a_dir = a.run_dir();
    let b = run([
        "run",
        path_s,
        "--out",
        &b_out,
        "--no-progress",
        "--baseline",
        a_dir.to_str().unwrap(),
    ]);
    server.signal(libc::SIGKILL);
    let b_dir = b.expect_code(0).run_dir();
    let md = common::text(&b_dir.join("compare.md"));
    let row = md
        .lines()
        .find(|l| l.contains("| output_throughput |"))
        .unwrap_or_else(|| panic!("no output_throughput row in\n{md}"));
    assert!(row.contains("8 / 8 (8 pairs)"), "{row}");
    assert!(row.ends_with("| no change (τ 2.00 %) |"), "{row}");
    assert!(md.contains("paired by round over 8 pairs"), "{md}");
}
