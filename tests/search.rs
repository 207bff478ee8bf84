//! Capacity at the SLO (issue 5): `exp search` brackets and bisects the request rate of a
//! simulated deployment whose saturation point follows from the simulator itself, reports the
//! answer with its bracket and per-probe CIs, and a resumed search ends where an uninterrupted
//! one does.

mod common;

use std::path::Path;

use common::{json, marker_path, records_path, run, text};

const SCENARIO: &str = "tests/fixtures/cli/search_sim.toml";

fn search(out: &Path) -> std::path::PathBuf {
    run([
        "search",
        SCENARIO,
        "--no-progress",
        "--out",
        out.to_str().unwrap(),
    ])
    .expect_code(0)
    .run_dir()
}

/// (load, passed) of every probe in the order the search made them.
fn probes_in_order(dir: &Path) -> Vec<(f64, bool)> {
    let manifest = json(&dir.join("manifest.json"));
    let summary = json(&dir.join("summary.json"));
    let probes = summary["search"][0]["probes"].as_array().unwrap().clone();
    manifest["cells"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let load = c["swept"]["request_rate"].as_f64().unwrap();
            let p = probes.iter().find(|p| p["load"] == load).unwrap();
            (load, p["passed"].as_bool().unwrap())
        })
        .collect()
}

#[test]
fn the_search_brackets_the_capacity_the_simulator_implies() {
    let out = tempfile::tempdir().unwrap();
    let dir = search(out.path());
    let summary = json(&dir.join("summary.json"));
    let s = &summary["search"][0];
    assert_eq!(s["status"], "converged");
    let (capacity, failing) = (
        s["capacity"].as_f64().unwrap(),
        s["first_failing"].as_f64().unwrap(),
    );
    assert!(capacity < failing && failing - capacity <= 0.05 * capacity);
    assert!(s["non_monotone"].as_array().unwrap().is_empty());

    // Every probe after the first pass/fail pair lies inside the bracket so far, and the
    // bracket only narrows.
    let order = probes_in_order(&dir);
    assert_eq!((order[0], order[1]), ((5.0, true), (30.0, false)));
    let (mut pass, mut fail) = (5.0, 30.0);
    for &(load, passed) in &order[2..] {
        assert!(
            pass < load && load < fail,
            "{load} outside [{pass}, {fail}]"
        );
        if passed {
            pass = load;
        } else {
            fail = load;
        }
    }
    assert_eq!((pass, fail), (capacity, failing));

    // The simulator saturates at max_num_seqs / E2E at low load (16 sequences of ≈ 0.98 s):
    // a 99 % TTFT SLO must be lost below that, but not at a fraction of it.
    let cells = summary["cells"].as_array().unwrap();
    let low = cells.iter().find(|c| c["id"] == "request_rate-5").unwrap();
    let e2e = low["metrics"]["e2e.mean"]["mean"].as_f64().unwrap();
    let saturation = 16.0 / e2e;
    assert!((15.0..18.0).contains(&saturation), "{saturation}");
    assert!(
        capacity < saturation && capacity > 0.5 * saturation,
        "capacity {capacity} vs saturation {saturation}"
    );

    let report = text(&dir.join("report.md"));
    let headline = format!(
        "the capacity lies in [{} req/s, {} req/s)",
        s["capacity"], s["first_failing"]
    );
    assert!(report.contains("## Capacity at the SLO\n"), "{report}");
    assert!(report.contains(&headline), "{headline}\n{report}");
    assert!(report.contains("| request_rate | n | SLO attainment | 95 % CI | result |"));
    assert!(report.contains("title \"SLO attainment vs request_rate (default)\""));
}

#[test]
fn a_resumed_search_ends_where_an_uninterrupted_one_does() {
    let out = tempfile::tempdir().unwrap();
    let dir = search(out.path());
    let finished = json(&dir.join("manifest.json"));
    let summary = json(&dir.join("summary.json"));
    // What Ctrl-C during the fourth probe leaves: three probes done, the fourth with one
    // repetition finished, nothing after it.
    let cells = finished["cells"].as_array().unwrap();
    let mut manifest = finished.clone();
    manifest["cells"] = serde_json::Value::Array(cells[..4].to_vec());
    manifest["schedule"] =
        serde_json::Value::Array(finished["schedule"].as_array().unwrap()[..12].to_vec());
    manifest["status"] = "interrupted".into();
    std::fs::write(
        dir.join("manifest.json"),
        serde_json::to_vec_pretty(&manifest).unwrap(),
    )
    .unwrap();
    for (i, cell) in cells.iter().enumerate().skip(3) {
        let id = cell["id"].as_str().unwrap();
        let first = if i == 3 { 1 } else { 0 };
        for round in first..3 {
            std::fs::remove_file(marker_path(&dir, id, round)).unwrap();
            std::fs::remove_file(records_path(&dir, id, round)).unwrap();
        }
    }
    run(["run", "--resume", dir.to_str().unwrap(), "--no-progress"]).expect_code(0);
    let after = json(&dir.join("manifest.json"));
    assert_eq!(after["cells"], finished["cells"]);
    assert_eq!(after["schedule"], finished["schedule"]);
    assert_eq!(json(&dir.join("summary.json"))["search"], summary["search"]);
}

#[test]
fn exp_search_needs_a_search_table() {
    let out = run([
        "search",
        "tests/fixtures/cli/tiny_sim.toml",
        "--no-progress",
    ])
    .expect_code(2);
    assert!(out.stderr.contains("no [search] table"), "{}", out.stderr);
}

/// A search against a server exp launches (`exp serve --sim`, 4 sequences at most): every
/// probe gets its own launch, which serves exactly that probe's repetitions and is torn down;
/// a resume of the finished run launches nothing more. Closed-loop concurrency above 4 makes
/// requests wait for a slot, so the TTFT SLO fails there.
#[test]
fn a_search_launches_the_server_for_each_probe() {
    let out = tempfile::tempdir().unwrap();
    let path = out.path().join("served_search.toml");
    std::fs::write(
        &path,
        format!(
            r#"[experiment]
name = "served_search"
description = "Highest concurrency with 90 % of requests within TTFT 60 ms on a launched server."
seed = 3

[target]
kind = "openai-completions"
base_url = "http://127.0.0.1:{{{{ port }}}}/v1"
model = "llama-3.1-8b"

[vars.fixed]
prompt_tokens = 16
output_tokens = 16
requests = 24

[workload]
arrival = "closed"
warmup = 0

[slo]
ttft = "60ms"

[search]
variable = "concurrency"
low = 2
high = 16
target = "90%"
repetitions = 2

[server]
command = ["{exe}", "serve", "--sim", "--port", "{{{{ port }}}}", "--max-num-seqs", "4", "--noise-cv", "0"]
ready_timeout = "30s"
"#,
            exe = env!("CARGO_BIN_EXE_exp")
        ),
    )
    .unwrap();
    let dir = run([
        "search",
        path.to_str().unwrap(),
        "--no-progress",
        "--out",
        out.path().to_str().unwrap(),
    ])
    .expect_code(0)
    .run_dir();
    let manifest = json(&dir.join("manifest.json"));
    let cells = manifest["cells"].as_array().unwrap();
    let launches = manifest["launches"].as_array().unwrap();
    assert!(cells.len() >= 3, "{cells:?}");
    assert_eq!(launches.len(), cells.len(), "one launch per probe");
    for (i, launch) in launches.iter().enumerate() {
        let reps: Vec<(u64, u64)> = launch["repetitions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| (r[0].as_u64().unwrap(), r[1].as_u64().unwrap()))
            .collect();
        assert_eq!(reps, vec![(0, i as u64), (1, i as u64)], "launch {i}");
        let pid = launch["pid"].as_u64().unwrap() as u32;
        assert!(
            exp::server::process::group_members(pid).is_empty(),
            "launch {i} left processes"
        );
    }
    let s = &json(&dir.join("summary.json"))["search"][0];
    assert_eq!(s["status"], "converged", "{s}");
    // 4 sequences fit at once (capacity 4 on a quiet machine). A fifth request in flight
    // waits a whole request (16 tokens ≈ 0.11 s > 60 ms) for a slot, so 5 must fail however
    // loaded the machine is; a loaded one may fail 4 or 3 as well.
    let capacity = s["capacity"].as_f64().unwrap();
    let failing = s["first_failing"].as_f64().unwrap();
    assert!(capacity >= 2.0 && failing <= 5.0, "{s}");
    run(["run", "--resume", dir.to_str().unwrap(), "--no-progress"]).expect_code(0);
    let after = json(&dir.join("manifest.json"));
    assert_eq!(after["launches"].as_array().unwrap().len(), launches.len());
}
