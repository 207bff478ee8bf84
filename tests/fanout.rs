//! Issue 14, load fan-out: one cell's load sent by N `exp run --client K/N` processes from a
//! shared instant and joined by `exp merge --clients` is the load one client sends — the
//! same requests at the same offsets, the same latencies within timer error — against
//! `exp serve --fixed` with known timing. A late client fails its repetition, and a
//! repetition a client did not finish is failed in the merge.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use common::{exp, fixed_server, free_port, json, records, run, spawn};

/// 30 requests at 60/s, two repetitions, two warm-up requests (`--target` makes it HTTP).
const SCENARIO: &str = "tests/fixtures/cli/fanout_http.toml";

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn instant_in(ahead: Duration) -> String {
    humantime::format_rfc3339_millis(SystemTime::now() + ahead).to_string()
}

/// `exp run SCENARIO --target URL --client K/2 --start-at AT --out OUT`, spawned.
fn client(scenario: &Path, url: &str, k: u32, at: &str, out: &Path) -> common::Running {
    spawn(exp([
        "run",
        s(scenario),
        "--target",
        url,
        "--client",
        &format!("{k}/2"),
        "--start-at",
        at,
        "--out",
        s(out),
        "--no-progress",
    ]))
}

fn merge(clients: &[&Path], out: &Path) -> common::Outcome {
    let mut args = vec!["merge".to_string(), "--clients".into()];
    args.extend(clients.iter().map(|p| p.display().to_string()));
    args.extend(["--out".into(), out.display().to_string()]);
    run(args)
}

/// The one cell's id.
fn cell(dir: &Path) -> String {
    json(&dir.join("manifest.json"))["cells"][0]["id"]
        .as_str()
        .unwrap()
        .to_string()
}

/// A number of a record (0 when left out, as records leave out zeros).
fn ns(v: &serde_json::Value) -> u64 {
    v.as_u64().unwrap_or(0)
}

/// TTFTs (ms) of a repetition's records, sorted.
fn ttfts(recs: &[serde_json::Value]) -> Vec<f64> {
    let mut t: Vec<f64> = recs
        .iter()
        .map(|r| (ns(&r["chunks"][0]["t"]) - ns(&r["sent_ns"])) as f64 / 1e6)
        .collect();
    t.sort_by(f64::total_cmp);
    t
}

fn setup() -> (tempfile::TempDir, PathBuf, common::Running, String) {
    let tmp = tempfile::tempdir().unwrap();
    let scenario = common::root().join(SCENARIO);
    let port = free_port();
    let server = fixed_server("ttft=20ms,itl=2ms", port);
    (tmp, scenario, server, format!("http://127.0.0.1:{port}/v1"))
}

#[test]
fn two_clients_merged_send_the_one_client_load() {
    let (tmp, scenario, server, url) = setup();
    let whole = run([
        "run",
        s(&scenario),
        "--target",
        &url,
        "--out",
        s(&tmp.path().join("whole")),
        "--no-progress",
    ])
    .expect_code(0)
    .run_dir();
    let out = tmp.path().join("clients");
    let at = instant_in(Duration::from_secs(4));
    let runs: Vec<_> = (1..=2)
        .map(|k| client(&scenario, &url, k, &at, &out))
        .collect();
    let dirs: Vec<PathBuf> = runs
        .into_iter()
        .map(|r| r.wait().expect_code(0).run_dir())
        .collect();
    let merged = tmp.path().join("merged");
    merge(&[&dirs[1], &dirs[0]], &merged).expect_code(0);
    server.signal(libc::SIGKILL);
    let id = cell(&whole);
    for round in 0..2 {
        let (one, two) = (records(&whole, &id, round), records(&merged, &id, round));
        let index = |v: &[serde_json::Value]| v.iter().map(|r| ns(&r["i"])).collect::<Vec<_>>();
        assert_eq!(
            index(&two),
            (0..30).collect::<Vec<_>>(),
            "every planned request once"
        );
        // Both clients started on time, so the shared timeline is each client's own: every
        // request keeps its planned offset.
        let at =
            |v: &[serde_json::Value]| v.iter().map(|r| ns(&r["scheduled_ns"])).collect::<Vec<_>>();
        assert_eq!(at(&two), at(&one));
        let (a, b) = (ttfts(&one), ttfts(&two));
        assert!(b[0] >= 20.0, "TTFT below the server's 20 ms: {b:?}");
        let median = |v: &[f64]| v[v.len() / 2];
        assert!(
            (median(&a) - median(&b)).abs() < 15.0,
            "median TTFT one client {a:?} vs two {b:?}"
        );
        let marker = json(&merged.join(format!("records/{id}/rep-{round:03}.done.json")));
        assert_eq!(marker["records"], 30);
        let clients = marker["details"]["clients"].as_array().unwrap();
        assert_eq!(clients.len(), 2, "{marker}");
        assert!(
            clients
                .iter()
                .all(|c| c["skew_ms"].as_f64().unwrap() <= 50.0)
        );
    }
    let (a, b) = (
        json(&whole.join("summary.json")),
        json(&merged.join("summary.json")),
    );
    assert_eq!(a["cells"][0]["n"], b["cells"][0]["n"]);
    let manifest = json(&merged.join("manifest.json"));
    assert_eq!(manifest["status"], "complete");
    assert_eq!(manifest["merged_clients"].as_array().unwrap().len(), 2);
    // An ordinary run directory: `exp report` and `exp compare` read it unchanged.
    run(["report", s(&merged)]).expect_code(0);
    run(["compare", s(&whole), s(&merged)]);
    let report = common::text(&merged.join("report.md"));
    assert!(
        report.contains("one load sent by 2 clients and merged"),
        "{report}"
    );
    assert!(
        !report.contains("after the shared instant"),
        "on time: {report}"
    );
    let share = common::text(&dirs[0].join("report.md"));
    assert!(
        share.contains("this run is client 1/2 of a fanned-out load"),
        "{share}"
    );
}

#[test]
fn a_late_client_fails_its_repetition_and_the_merge_fails_it_too() {
    let (tmp, scenario, server, url) = setup();
    let out = tmp.path().join("clients");
    let at_time = SystemTime::now() + Duration::from_secs(3);
    let at = humantime::format_rfc3339_millis(at_time).to_string();
    let first = client(&scenario, &url, 1, &at, &out);
    // Client 2 starts after the instant: its first repetition is late; the barrier aligns
    // the second.
    while SystemTime::now() < at_time + Duration::from_millis(500) {
        std::thread::sleep(Duration::from_millis(50));
    }
    let second = client(&scenario, &url, 2, &at, &out);
    let late = second.wait().expect_code(3);
    let one = first.wait().expect_code(0).run_dir();
    let two = late.run_dir();
    let id = cell(&one);
    let marker = json(&two.join(format!("records/{id}/rep-000.done.json")));
    let why = marker["failure"].as_str().expect("failed");
    assert!(why.starts_with("client 2/2 started "), "{why}");
    assert!(why.contains("after the shared instant"), "{why}");
    assert_eq!(marker["records"], 0, "a late client sends nothing");
    assert!(json(&two.join(format!("records/{id}/rep-001.done.json")))["failure"].is_null());

    let merged = tmp.path().join("merged");
    merge(&[&one, &two], &merged).expect_code(3);
    let failed = json(&merged.join(format!("records/{id}/rep-000.done.json")));
    assert!(
        failed["failure"]
            .as_str()
            .unwrap()
            .starts_with("client 2/2 started "),
        "{failed}"
    );
    assert_eq!(records(&merged, &id, 1).len(), 30);
    assert_eq!(json(&merged.join("manifest.json"))["status"], "partial");
    let report = common::text(&merged.join("report.md"));
    assert!(
        report.contains("after the shared instant (warned above 10 ms)"),
        "{report}"
    );

    // A client that died before finishing repetition 1 leaves no marker: the merge fails it.
    std::fs::remove_file(two.join(format!("records/{id}/rep-001.done.json"))).unwrap();
    let again = tmp.path().join("merged-again");
    merge(&[&one, &two], &again).expect_code(3);
    let failed = json(&again.join(format!("records/{id}/rep-001.done.json")));
    assert!(
        failed["failure"]
            .as_str()
            .unwrap()
            .starts_with("client 2/2 did not finish it"),
        "{failed}"
    );
    // A client not given at all is named, not merged.
    let err = merge(&[&one], &tmp.path().join("alone")).expect_code(2);
    assert!(
        err.stderr.contains("error: cannot merge these clients:\n")
            && err.stderr.contains("client 2/2 is missing"),
        "{}",
        err.stderr
    );
    server.signal(libc::SIGKILL);
}

/// A stand-in for `srun --ntasks=N … CMD ARGS`: runs CMD N times at once, task i with
/// `SLURM_PROCID=i`, and fails when one of them did.
const SRUN: &str = r#"#!/bin/sh
n=1
while [ $# -gt 0 ]; do
  case "$1" in --ntasks=*) n=${1#--ntasks=}; shift;; --*) shift;; *) break;; esac
done
i=0; pids=""
while [ $i -lt $n ]; do SLURM_PROCID=$i "$@" & pids="$pids $!"; i=$((i + 1)); done
status=0
for p in $pids; do wait $p || status=$?; done
exit $status
"#;

#[test]
fn the_slurm_job_runs_every_client_from_one_instant_then_merges() {
    let (tmp, scenario, server, url) = setup();
    let dir = tmp.path().join("slurm");
    let written = run([
        "slurm",
        s(&scenario),
        "--clients",
        "2",
        "--start-delay",
        "4s",
        "--target",
        &url,
        "--out",
        s(&tmp.path().join("reports")),
        "--dir",
        s(&dir),
    ])
    .expect_code(0);
    let merged = written
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("merged run directory: "))
        .map(|l| PathBuf::from(l.trim()))
        .expect("the merged run directory is named");
    let bin = tmp.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::write(bin.join("srun"), SRUN).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(bin.join("srun"), std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    let mut job = std::process::Command::new("bash");
    job.arg(dir.join("clients.sbatch")).env("PATH", path);
    job.current_dir(common::root());
    let done = spawn(job).wait();
    server.signal(libc::SIGKILL);
    assert_eq!(done.code(), 0, "{done:?}");
    let summary = json(&merged.join("summary.json"));
    assert_eq!(json(&merged.join("manifest.json"))["status"], "complete");
    let id = cell(&merged);
    for round in 0..2 {
        assert_eq!(
            records(&merged, &id, round).len(),
            30,
            "the planned requests"
        );
    }
    assert!(summary["cells"][0]["n"].as_u64().is_some());
}

/// The command of a pod of `job` as the kubelet would run it, as pod `index`.
fn pod_command(
    job: &k8s_openapi::api::batch::v1::Job,
    index: Option<u32>,
) -> std::process::Command {
    let pod = job.spec.as_ref().unwrap().template.spec.as_ref().unwrap();
    let words = pod.containers[0].command.as_ref().unwrap();
    let mut cmd = std::process::Command::new(&words[0]);
    cmd.args(&words[1..]).current_dir(common::root());
    cmd.env("EXP_NODE", format!("node-{}", index.unwrap_or(9)));
    if let Some(i) = index {
        cmd.env("JOB_COMPLETION_INDEX", i.to_string());
    }
    cmd
}

#[test]
fn kubernetes_client_pods_agree_on_one_instant_and_merge() {
    use k8s_openapi::api::batch::v1::Job;
    let (tmp, scenario, server, url) = setup();
    let dir = tmp.path().join("k8s");
    let runs = tmp.path().join("runs");
    let written = run([
        "k8s",
        s(&scenario),
        "--clients",
        "2",
        "--start-delay",
        "4s",
        "--target",
        &url,
        "--image",
        "registry.example/exp:1",
        "--runs-path",
        s(&runs),
        "--scenario-path",
        s(scenario.parent().unwrap()),
        "--exp",
        env!("CARGO_BIN_EXE_exp"),
        "--dir",
        s(&dir),
    ])
    .expect_code(0);
    let read = |name: &str| std::fs::read_to_string(dir.join(name)).unwrap();
    let clients: Job = serde_json::from_str(&read("clients-job.json")).unwrap();
    let merge: Job = serde_json::from_str(&read("merge-job.json")).unwrap();
    let spec = clients.spec.as_ref().unwrap();
    assert_eq!(spec.completion_mode.as_deref(), Some("Indexed"));
    assert_eq!((spec.completions, spec.parallelism), (Some(2), Some(2)));
    assert_eq!(spec.backoff_limit_per_index, Some(0));
    // Both pods at once, as the Job runs them; the first to start fixes the instant.
    let pods: Vec<_> = [1, 0].map(|i| spawn(pod_command(&clients, Some(i)))).into();
    for pod in pods {
        let o = pod.wait();
        assert_eq!(o.code(), 0, "{o:?}");
    }
    let o = spawn(pod_command(&merge, None)).wait();
    server.signal(libc::SIGKILL);
    assert_eq!(o.code(), 0, "{o:?}");
    let merged = o.run_dir();
    assert!(
        written
            .stdout
            .contains(&format!("merged run directory: {}", merged.display()))
    );
    let id = cell(&merged);
    for round in 0..2 {
        assert_eq!(records(&merged, &id, round).len(), 30);
    }
    let nodes: Vec<String> = json(&merged.join("manifest.json"))["merged_clients"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["node"]["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(nodes, ["node-0", "node-1"]);
}

#[test]
fn what_a_client_cannot_do_is_refused_with_the_alternative() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let at = "2030-01-01T00:00:00Z";
    let refused = |args: &[&str]| {
        let mut all = vec!["run", SCENARIO, "--out", s(&out), "--no-progress"];
        all.extend(args);
        run(all).expect_code(2).stderr
    };
    let e = refused(&["--client", "3/2", "--start-at", at]);
    assert!(
        e.contains("client 3 of 2 does not exist (K is 1 ..= 2)"),
        "{e}"
    );
    let e = refused(&["--client", "1/2"]);
    assert!(e.contains("--start-at"), "{e}");
    let e = refused(&["--client", "1/2", "--start-at", "noon"]);
    assert!(
        e.contains("write a UTC instant like 2025-06-01T12:00:00.250Z"),
        "{e}"
    );
    let e = refused(&["--client", "1/2", "--start-at", at]);
    assert!(
        e.contains("fanout_http.toml: --client 1/2: cell default: the simulated engine runs in this process, so there is no load to split over machines; give an HTTP target (`--target URL`)"),
        "{e}"
    );
    let e = refused(&[
        "--client",
        "1/3",
        "--start-at",
        at,
        "--target",
        "http://127.0.0.1:9/v1",
        "--set",
        "workload.arrival=\"closed\"",
        "--set",
        "vars.fixed.concurrency=2",
    ]);
    assert!(
        e.contains("a closed loop of concurrency = 2 cannot be split over 3 clients"),
        "{e}"
    );
    let quality = run([
        "run",
        "tests/fixtures/scenarios/ok/quality_under_load.toml",
        "--out",
        s(&out),
        "--no-progress",
        "--client",
        "1/2",
        "--start-at",
        at,
    ])
    .expect_code(2)
    .stderr;
    assert!(
        quality.contains("quality_under_load.toml: --client 1/2: cell default: [quality] when = \"under-load\" would mix only this client's share of the items into its share of the load, and the merge keeps one client's quality file; score quality after each repetition (`when = \"after-repetition\"`) or run without --client"),
        "{quality}"
    );
    assert!(!out.exists(), "nothing is written for a refused run");
}
