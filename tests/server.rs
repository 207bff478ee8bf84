//! Servers in the matrix (issue 4), end to end through the `exp` binary: launches per round
//! and configuration, a bad flag failing its cell while the others complete, a crash
//! mid-repetition (that repetition fails, the server is relaunched, the run goes on), slow
//! and never-ready servers, a server that ignores SIGTERM, and Ctrl-C, with no process of any
//! launch left alive afterwards.
//!
//! The server is this test binary itself, re-executed as `--exact fake_server`: the
//! `fake_server` "test" below serves exp's fixed-timing OpenAI endpoint when `EXP_FAKE_SERVER`
//! is set, with misbehaviours chosen by environment variables (rendered from the scenario).

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{exp, json, run, spawn, text, wait_until};
use exp::server::process::group_members;

/// The fake server. A no-op unless re-executed with `EXP_FAKE_SERVER=1`.
#[test]
fn fake_server() {
    if std::env::var_os("EXP_FAKE_SERVER").is_none() {
        return;
    }
    let var = |k: &str| std::env::var(k).unwrap_or_default();
    if var("FAKE_FLAG").starts_with("--bogus") {
        eprintln!("error: unrecognized arguments: {}", var("FAKE_FLAG"));
        std::process::exit(2);
    }
    if var("FAKE_IGNORE_TERM") == "1" {
        // SAFETY: setting a signal disposition to SIG_IGN has no memory effects.
        unsafe { libc::signal(libc::SIGTERM, libc::SIG_IGN) };
    }
    if var("FAKE_CHILD") == "1" {
        // A worker in the same process group, as engines have.
        // A worker that is never waited for here: exp must stop the whole group.
        let worker = std::process::Command::new("sleep").arg("300").spawn();
        std::mem::forget(worker.unwrap());
    }
    let delay: u64 = var("FAKE_DELAY_MS").parse().unwrap_or(0);
    std::thread::sleep(Duration::from_millis(delay));
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let timing = std::env::var("FAKE_TIMING").unwrap_or_else(|_| "ttft=2ms,itl=1ms".into());
        let timing: exp::serve::FixedTiming = timing.parse().unwrap();
        let addr = format!("127.0.0.1:{}", var("FAKE_PORT")).parse().unwrap();
        let handle = exp::serve::spawn_fixed(addr, timing).await.unwrap();
        println!("fake server listening on {addr}");
        let crash_after: usize = var("FAKE_CRASH_AFTER").parse().unwrap_or(usize::MAX);
        let once = PathBuf::from(var("FAKE_CRASH_ONCE"));
        loop {
            tokio::time::sleep(Duration::from_millis(2)).await;
            if handle.truth().len() >= crash_after && std::fs::File::create_new(&once).is_ok() {
                eprintln!("fake server: crashing on purpose");
                std::process::exit(3);
            }
        }
    });
}

/// A scenario whose `[server]` runs the fake; `extra_env` and `extra` are added to
/// `[server] env` and after the `[server]` table.
fn scenario(dir: &Path, sweep: &str, extra_env: &str, extra: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let text = format!(
        r#"[experiment]
name = "served"
description = "exp launches a fake server per configuration."
repetitions = 2
seed = 3

[target]
kind = "openai-completions"
base_url = "http://127.0.0.1:{{{{ port }}}}/v1"
model = "exp-fixed"

[vars.fixed]
requests = 20
concurrency = 4
prompt_tokens = 16
output_tokens = 8

[vars.sweep]
{sweep}

[workload]
arrival = "closed"
warmup = 1

[server]
command = ["{exe}", "--exact", "fake_server", "--nocapture", "--test-threads", "1"]
env = {{ EXP_FAKE_SERVER = "1", FAKE_PORT = "{{{{ port }}}}", FAKE_SEQS = "{{{{ max_num_seqs }}}}"{extra_env} }}
ready_timeout = "60s"
stop_grace = "10s"
warmup_requests = 2
version_command = ["sh", "-c", "echo fake-engine 0.1"]
{extra}
"#,
        exe = exe.display()
    );
    let path = dir.join("served.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn run_scenario(path: &Path, out: &Path) -> common::Outcome {
    run([
        "run",
        path.to_str().unwrap(),
        "--no-progress",
        "--out",
        out.to_str().unwrap(),
    ])
}

fn launches(dir: &Path) -> Vec<serde_json::Value> {
    json(&dir.join("manifest.json"))["launches"]
        .as_array()
        .unwrap()
        .clone()
}

/// No process of any launch is alive.
fn assert_no_process_left(launches: &[serde_json::Value]) {
    for l in launches {
        if let Some(pid) = l["pid"].as_u64() {
            assert!(
                group_members(pid as u32).is_empty(),
                "launch {l} left processes"
            );
        }
    }
}

#[test]
fn each_round_launches_every_configuration_and_tears_it_down() {
    let tmp = tempfile::tempdir().unwrap();
    let path = scenario(
        tmp.path(),
        "max_num_seqs = [2, 4]",
        ", FAKE_CHILD = \"1\", FAKE_DELAY_MS = \"300\"",
        "",
    );
    let plan = run(["plan", path.to_str().unwrap()]).expect_code(0);
    assert!(
        plan.stdout.contains(
            "2 configuration(s), restart per-cell, order randomized-blocks: 4 launch(es)"
        ),
        "{}",
        plan.stdout
    );
    assert!(
        plan.stdout.contains("--exact fake_server"),
        "the exact command is shown"
    );

    let out = run_scenario(&path, tmp.path()).expect_code(0);
    let dir = out.run_dir();
    let launches = launches(&dir);
    assert_eq!(launches.len(), 4, "launches = rounds × configurations");
    for l in &launches {
        assert!(l["failure"].is_null(), "{l}");
        assert!(
            l["ready_seconds"].as_f64().unwrap() >= 0.3,
            "slow readiness is waited for: {l}"
        );
        assert_eq!(l["exit"], "signal: 15 (SIGTERM)");
        assert_eq!(l["engine_version"], "fake-engine 0.1");
        assert_eq!(l["warmup_failed"], 0);
        assert_eq!(l["repetitions"].as_array().unwrap().len(), 1);
        let log = text(&dir.join(l["log"].as_str().unwrap()));
        assert!(log.contains("fake server listening on 127.0.0.1:"), "{log}");
        let port = l["port"].as_u64().unwrap().to_string();
        assert_eq!(l["env"]["FAKE_PORT"].as_str(), Some(port.as_str()));
    }
    assert_no_process_left(&launches);
    let n = common::summary_n(&dir);
    assert_eq!(n.values().copied().collect::<Vec<_>>(), [2, 2]);
    let report = text(&dir.join("report.md"));
    assert!(
        report.contains("; 4 server launches, engine fake-engine 0.1 |"),
        "{report}"
    );
    for cell in ["max_num_seqs-2", "max_num_seqs-4"] {
        let recs = common::records(&dir, cell, 0);
        assert_eq!(recs.len(), 20);
        assert!(
            recs.iter().all(|r| r["outcome"]["status"] == "ok"),
            "{recs:?}"
        );
    }
}

#[test]
fn a_bad_flag_fails_its_cell_with_the_log_tail_and_the_other_cell_completes() {
    let tmp = tempfile::tempdir().unwrap();
    let path = scenario(
        tmp.path(),
        "max_num_seqs = [2]\nflag = [\"fine\", \"bogus-flag\"]",
        ", FAKE_FLAG = \"--{{ flag }}\"",
        "",
    );
    let out = run_scenario(&path, tmp.path()).expect_code(3);
    assert!(
        out.stderr
            .contains("exited (exit status: 2) before it was ready"),
        "{}",
        out.stderr
    );
    let tail_line = out
        .stderr
        .lines()
        .find(|l| l.contains("unrecognized arguments: --bogus-flag"));
    assert!(
        tail_line.is_some_and(|l| l.starts_with("  | ")),
        "the log's tail: {}",
        out.stderr
    );
    let dir = out.run_dir();
    let n = common::summary_n(&dir);
    assert_eq!(n["flag-fine_max_num_seqs-2"], 2, "{n:?}");
    assert_eq!(n["flag-bogus-flag_max_num_seqs-2"], 0, "{n:?}");
    let bad = "flag-bogus-flag_max_num_seqs-2";
    let marker = json(&common::marker_path(&dir, bad, 1));
    let reason = marker["failure"].as_str().unwrap();
    assert!(
        reason.contains("exit status: 2") && reason.contains("servers/launch-"),
        "{reason}"
    );
    let report = text(&dir.join("report.md"));
    assert!(
        report.contains(&format!("cell {bad} repetition 0 FAILED")),
        "{report}"
    );
    assert!(report.contains("2 of 4 server launches failed"), "{report}");
    // The run ended with failed repetitions left out: `partial`, exit code 3.
    assert_eq!(json(&dir.join("manifest.json"))["status"], "partial");
    assert!(report.contains(" · partial · "), "{report}");
    assert_no_process_left(&launches(&dir));

    // --resume retries the failed repetitions (and only them), on new launches.
    let good = common::snapshot(&common::marker_path(&dir, "flag-fine_max_num_seqs-2", 0));
    run(["run", "--resume", dir.to_str().unwrap(), "--no-progress"]).expect_code(3);
    let after = launches(&dir);
    assert_eq!(
        after.len(),
        6,
        "two more launches, for the broken cell's two rounds"
    );
    assert!(
        after[4..]
            .iter()
            .all(|l| l["failure"].is_string() && l["index"].as_u64() >= Some(4))
    );
    assert_eq!(
        common::snapshot(&common::marker_path(&dir, "flag-fine_max_num_seqs-2", 0)),
        good
    );
    assert_eq!(json(&dir.join("manifest.json"))["status"], "partial");
}

#[test]
fn a_crash_mid_repetition_fails_it_and_the_relaunched_server_serves_the_rest() {
    let tmp = tempfile::tempdir().unwrap();
    let once = tmp.path().join("crashed");
    // Slow tokens (≈ 50 ms a request, ≈ 80 ms of the repetition left after the 13th reply)
    // so that the crash, polled every 2 ms, lands inside the repetition even on a loaded
    // machine. (The requests it cuts then fail at once; exp must still see the death as
    // "during the repetition" before its reaper has reported the exit: Server::exit_after_run.)
    let env = format!(
        ", FAKE_CRASH_AFTER = \"13\", FAKE_CRASH_ONCE = \"{}\", FAKE_TIMING = \"ttft=2ms,itl=6ms\"",
        once.display()
    );
    let path = scenario(tmp.path(), "max_num_seqs = [2]", &env, "");
    let text_ = std::fs::read_to_string(&path)
        .unwrap()
        .replace("seed = 3", "seed = 3\norder = \"grouped\"\nrepetitions = 3")
        .replace("repetitions = 2\n", "");
    std::fs::write(&path, text_).unwrap();
    let out = run_scenario(&path, tmp.path()).expect_code(3);
    let dir = out.run_dir();
    let launches = launches(&dir);
    assert_eq!(
        launches.len(),
        2,
        "one planned launch, one relaunch: {launches:?}"
    );
    let died = launches[0]["failure"].as_str().unwrap();
    assert!(
        died.contains("exit status: 3") && died.contains("during the repetition"),
        "{died}"
    );
    assert_eq!(launches[0]["repetitions"].as_array().unwrap().len(), 1);
    assert_eq!(launches[1]["repetitions"].as_array().unwrap().len(), 2);
    assert!(launches[1]["failure"].is_null());
    let cell = "max_num_seqs-2";
    assert_eq!(common::summary_n(&dir)[cell], 2);
    let failed_round = launches[0]["repetitions"][0][0].as_u64().unwrap() as u32;
    let kept = common::records(&dir, cell, failed_round);
    assert!(
        kept.len() >= 5,
        "what was measured before the crash is kept: {}",
        kept.len()
    );
    let report = text(&dir.join("report.md"));
    assert!(
        report.contains("FAILED and is left out of the statistics"),
        "{report}"
    );
    assert!(
        report.contains("drift over time"),
        "grouped order is warned about"
    );
    assert_no_process_left(&launches);
}

#[test]
fn never_ready_servers_time_out_and_sigterm_ignorers_are_killed() {
    let tmp = tempfile::tempdir().unwrap();
    let path = scenario(
        tmp.path(),
        "max_num_seqs = [2]\nslow = [0, 30000]",
        ", FAKE_DELAY_MS = \"{{ slow }}\", FAKE_IGNORE_TERM = \"1\", FAKE_CHILD = \"1\"",
        "",
    );
    let t = std::fs::read_to_string(&path)
        .unwrap()
        .replace("ready_timeout = \"60s\"", "ready_timeout = \"2s\"")
        .replace("stop_grace = \"10s\"", "stop_grace = \"500ms\"");
    std::fs::write(&path, t).unwrap();
    let out = run_scenario(&path, tmp.path()).expect_code(3);
    assert!(
        out.stderr.contains("was not ready within 2s"),
        "{}",
        out.stderr
    );
    let dir = out.run_dir();
    let launches = launches(&dir);
    assert_eq!(launches.len(), 4);
    for l in &launches {
        assert_eq!(
            l["killed"], true,
            "SIGTERM is ignored, so SIGKILL follows: {l}"
        );
        assert_eq!(l["exit"], "signal: 9 (SIGKILL)");
    }
    assert_no_process_left(&launches);
    assert_eq!(common::summary_n(&dir)["max_num_seqs-2_slow-0"], 2);
    let report = text(&dir.join("report.md"));
    assert!(
        report.contains("ignored SIGTERM for the grace period and was killed"),
        "{report}"
    );
}

#[test]
fn ctrl_c_stops_the_server_too() {
    let tmp = tempfile::tempdir().unwrap();
    let path = scenario(tmp.path(), "max_num_seqs = [2]", ", FAKE_CHILD = \"1\"", "");
    let t = std::fs::read_to_string(&path)
        .unwrap()
        .replace("requests = 20", "duration = \"120s\"");
    std::fs::write(&path, t).unwrap();
    let mut cmd = exp(["run", path.to_str().unwrap(), "--no-progress", "--out"]);
    cmd.arg(tmp.path());
    let running = spawn(cmd);
    let scenario_dir = tmp.path().join("served");
    let dir = common::wait_for_run_dir(&scenario_dir);
    wait_until("a ready server", || {
        std::fs::read_to_string(dir.join("manifest.json"))
            .ok()
            .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
            .is_some_and(|m| m["launches"][0]["ready_seconds"].is_number())
    });
    let pid = launches(&dir)[0]["pid"].as_u64().unwrap() as u32;
    assert_eq!(group_members(pid).len(), 2, "the server and its child run");
    std::thread::sleep(Duration::from_millis(300));
    running.signal(libc::SIGINT);
    let out = running.wait();
    assert_eq!(out.code(), 130, "{}", out.stderr);
    assert!(
        group_members(pid).is_empty(),
        "Ctrl-C stopped the whole server group"
    );
    assert_eq!(launches(&dir)[0]["exit"], "signal: 15 (SIGTERM)");
}

/// Issue 14: shards of a scenario with launched servers launch only their rounds'
/// configurations; a cell whose server never starts fails in each shard, and the merged run
/// is `partial` with those repetitions listed, every launch and its log kept per shard.
#[test]
fn shards_launch_their_rounds_and_merge_failed_repetitions_as_partial() {
    let tmp = tempfile::tempdir().unwrap();
    let path = scenario(
        tmp.path(),
        "max_num_seqs = [2]\nflag = [\"fine\", \"bogus-flag\"]",
        ", FAKE_FLAG = \"--{{ flag }}\"",
        "",
    );
    let out = tmp.path().join("runs");
    let shards: Vec<PathBuf> = ["1/2", "2/2"]
        .iter()
        .map(|k| {
            let o = run([
                "run",
                path.to_str().unwrap(),
                "--shard",
                k,
                "--no-progress",
                "--out",
                out.to_str().unwrap(),
            ])
            .expect_code(3);
            let dir = o.run_dir();
            let l = launches(&dir);
            assert_eq!(l.len(), 2, "one round: both configurations, once each");
            assert_no_process_left(&l);
            dir
        })
        .collect();
    let merged = tmp.path().join("merged");
    let o = run([
        "merge",
        shards[0].to_str().unwrap(),
        shards[1].to_str().unwrap(),
        "--out",
        merged.to_str().unwrap(),
    ])
    .expect_code(3);
    assert!(
        o.stderr.contains("partial: some repetitions failed"),
        "{}",
        o.stderr
    );
    let manifest = json(&merged.join("manifest.json"));
    assert_eq!(manifest["status"], "partial");
    let all = launches(&merged);
    assert_eq!(all.len(), 4);
    for (i, l) in all.iter().enumerate() {
        assert_eq!(l["index"], i);
        let log = l["log"].as_str().unwrap();
        assert!(
            log.starts_with(&format!("servers/shard-{}/", i / 2 + 1)),
            "{log}"
        );
        assert!(merged.join(log).is_file(), "{log}");
    }
    let n = common::summary_n(&merged);
    assert_eq!(n["flag-fine_max_num_seqs-2"], 2, "{n:?}");
    assert_eq!(n["flag-bogus-flag_max_num_seqs-2"], 0, "{n:?}");
    let report = text(&merged.join("report.md"));
    for round in [0, 1] {
        assert!(
            report.contains(&format!(
                "cell flag-bogus-flag_max_num_seqs-2 repetition {round} FAILED"
            )),
            "{report}"
        );
    }
}
