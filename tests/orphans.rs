//! `kill -9` of `exp run` never leaves its `[server]` behind: the launched process gets a
//! parent-death signal from the kernel, and `exp run --resume` stops whatever of a launch's
//! process group outlived exp (here, a server a shell wrapper started, which the signal does
//! not reach). The server is `exp serve --fixed`, launched by the built `exp`.

mod common;

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{exp, json, spawn, wait_until};
use exp::server::process::group_members;

/// A scenario whose `[server]` is `exp serve --fixed`, run directly or behind `sh -c "… &
/// wait"` (`wrapped`); its repetitions last minutes, so exp is always killed mid-run.
fn scenario(dir: &Path, wrapped: bool) -> PathBuf {
    let exe = env!("CARGO_BIN_EXE_exp");
    let args = [
        "serve",
        "--fixed",
        "ttft=5ms,itl=1ms",
        "--port",
        "{{ port }}",
    ];
    let command = if wrapped {
        format!(r#"["sh", "-c", "{exe} {} & wait"]"#, args.join(" "))
    } else {
        let quoted: Vec<String> = args.iter().map(|a| format!("\"{a}\"")).collect();
        format!(r#"["{exe}", {}]"#, quoted.join(", "))
    };
    let text = format!(
        r#"[experiment]
name = "orphans"
description = "exp launches exp serve --fixed and is killed."
repetitions = 2
seed = 5

[target]
kind = "openai-completions"
base_url = "http://127.0.0.1:{{{{ port }}}}/v1"
model = "exp-fixed"

[vars.fixed]
duration = "300s"
concurrency = 2
prompt_tokens = 16
output_tokens = 8

[workload]
arrival = "closed"
warmup = 0

[server]
command = {command}
ready_timeout = "60s"
stop_grace = "5s"
"#
    );
    let path = dir.join("orphans.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// Starts `exp run` on `scenario` and waits until its server answers; returns the run, its
/// directory, and the server's process group and port.
fn start(scenario: &Path, out: &Path) -> (common::Running, PathBuf, u32, u16) {
    let mut cmd = exp(["run", scenario.to_str().unwrap(), "--no-progress", "--out"]);
    cmd.arg(out);
    let running = spawn(cmd);
    let scenario_dir = out.join("orphans");
    let dir = common::wait_for_run_dir(&scenario_dir);
    wait_until("a ready server", || {
        launch(&dir)["ready_seconds"].is_number()
    });
    let l = launch(&dir);
    let pid = l["pid"].as_u64().unwrap() as u32;
    let port = l["port"].as_u64().unwrap() as u16;
    assert!(l["pid_start_ticks"].is_u64(), "{l}");
    wait_until("the server to answer", || answers(port));
    (running, dir, pid, port)
}

/// The first launch's record (null until the manifest has one).
fn launch(dir: &Path) -> serde_json::Value {
    std::fs::read_to_string(dir.join("manifest.json"))
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .map_or(serde_json::Value::Null, |m| m["launches"][0].clone())
}

fn answers(port: u16) -> bool {
    TcpStream::connect(("127.0.0.1", port)).is_ok()
}

/// Polls until the group has no live process; false after `limit`.
fn gone_within(pgid: u32, limit: Duration) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if group_members(pgid).is_empty() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

#[test]
fn kill_9_of_exp_takes_its_launched_server_with_it() {
    let tmp = tempfile::tempdir().unwrap();
    let (running, _dir, pid, port) = start(&scenario(tmp.path(), false), tmp.path());
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        !group_members(pid).is_empty(),
        "the server runs while exp does"
    );
    let killed_at = Instant::now();
    running.signal(libc::SIGKILL);
    assert_eq!(running.wait().status.code(), None, "ended by SIGKILL");
    assert!(
        gone_within(pid, Duration::from_secs(5)),
        "the server outlived exp: {:?}",
        group_members(pid)
    );
    println!("server gone {:?} after kill -9", killed_at.elapsed());
    assert!(!answers(port), "nothing answers on the server's port");
}

#[test]
fn resume_stops_what_of_a_launch_outlived_a_killed_exp() {
    let tmp = tempfile::tempdir().unwrap();
    let (running, dir, pid, port) = start(&scenario(tmp.path(), true), tmp.path());
    running.signal(libc::SIGKILL);
    running.wait();
    // The shell got the parent-death signal; the server it started in the background did not.
    std::thread::sleep(Duration::from_millis(500));
    assert!(answers(port), "the wrapped server outlived exp");
    assert!(!group_members(pid).is_empty());

    let mut cmd = exp(["run", "--resume", dir.to_str().unwrap(), "--no-progress"]);
    cmd.current_dir(common::root());
    let resumed = spawn(cmd);
    wait_until("the leftover server to be stopped", || {
        group_members(pid).is_empty()
    });
    // (Its port is not checked: the resumed run's own server may be given it again.)
    wait_until("the note in the manifest", || {
        launch(&dir)["stopped"].is_string()
    });
    let note = launch(&dir)["failure"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        note.contains("found it still running and stopped it"),
        "{note}"
    );
    // The resumed run goes on with a server of its own; stop it with Ctrl-C.
    wait_until("the resumed run's server", || {
        json(&dir.join("manifest.json"))["launches"][1]["ready_seconds"].is_number()
    });
    resumed.signal(libc::SIGINT);
    let out = resumed.wait();
    assert_eq!(out.code(), 130, "{}", out.stderr);
    assert!(
        out.stderr.contains("left running by an earlier exp"),
        "{}",
        out.stderr
    );
}
