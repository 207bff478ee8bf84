//! Probes and cost end to end (issue 4): `exp serve --fixed` launched as the server, a fake
//! `nvidia-smi` on PATH replaying recorded CSV (two GPUs, an energy counter that grows at
//! 300 W each), a tiny `/metrics` endpoint with vLLM's names, and the host's `/proc`. The
//! per-repetition values must come out of the series with the known numbers, and a GPU
//! probe that cannot run must leave its figures absent, not zero.

mod common;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use common::{json, spawn, text};

/// Serves `body` at every path, forever, on a free port (a thread per test).
fn metrics_server(body: &'static str) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { continue };
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = s.write_all(head.as_bytes());
            let _ = s.write_all(body.as_bytes());
        }
    });
    port
}

const METRICS: &str = "# HELP vllm:kv_cache_usage_perc KV-cache usage. 1 means 100 percent usage.\n# TYPE vllm:kv_cache_usage_perc gauge\nvllm:kv_cache_usage_perc{engine=\"0\",model_name=\"exp-fixed\"} 0.5\n# TYPE vllm:num_requests_running gauge\nvllm:num_requests_running{engine=\"0\",model_name=\"exp-fixed\"} 4.0\n";

/// A fake `nvidia-smi` that answers the full query with two GPUs whose energy counters
/// (mJ) grow at 300 W, and the short query without energy and clocks.
fn fake_nvidia_smi(dir: &Path) -> PathBuf {
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let script = r#"#!/bin/sh
case "$1" in
  --query-gpu=index,memory.used,memory.total,utilization.gpu,power.draw,total_energy_consumption,clocks.sm) ;;
  *) echo "unexpected arguments: $*" >&2; exit 6 ;;
esac
ms=$(( $(date +%s%N) / 1000000 ))
echo "0, 40780, 81559, 90, 300.00, $(( ms * 300 )), 1980"
echo "1, 61169, 81559, 70, 300.00, $(( ms * 300 + 5000000 )), 1755"
"#;
    let path = bin.join("nvidia-smi");
    std::fs::write(&path, script).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    bin
}

fn scenario(dir: &Path, metrics_port: u16, gpu: &str) -> PathBuf {
    let text = format!(
        r#"[experiment]
name = "probed"
description = "Probes and cost on a fixed-timing server."
repetitions = 2

[target]
kind = "openai-completions"
base_url = "http://127.0.0.1:{{{{ port }}}}/v1"
gpus = 2

[vars.fixed]
duration = "1500ms"
concurrency = 4
prompt_tokens = 16
output_tokens = 16

[workload]
arrival = "closed"
warmup = 0
grace = "5s"

[server]
command = ["{exe}", "serve", "--fixed", "ttft=5ms,itl=2ms", "--port", "{{{{ port }}}}"]
ready_timeout = "60s"

[probes]
interval = "100ms"
gpu = {gpu}
metrics_url = "http://127.0.0.1:{metrics_port}/metrics"
net_interface = "lo"
net_line_rate_gbps = 10

[cost]
gpu_hour = 2.5
"#,
        exe = env!("CARGO_BIN_EXE_exp"),
    );
    let path = dir.join("probed.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn run_with_path(scenario: &Path, out: &Path, path_prefix: Option<&Path>) -> common::Outcome {
    let mut cmd = common::exp(["run", scenario.to_str().unwrap(), "--no-progress", "--out"]);
    cmd.arg(out);
    let system_path = std::env::var("PATH").unwrap_or_default();
    let path = match path_prefix {
        Some(p) => format!("{}:{system_path}", p.display()),
        None => system_path,
    };
    cmd.env("PATH", path);
    spawn(cmd).wait().expect_code(0)
}

fn rep_values(dir: &Path) -> Vec<serde_json::Map<String, serde_json::Value>> {
    json(&dir.join("summary.json"))["repetitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["summary"]["values"].as_object().unwrap().clone())
        .collect()
}

#[test]
fn gpu_server_and_host_probes_give_known_figures_and_cost() {
    let tmp = tempfile::tempdir().unwrap();
    let bin = fake_nvidia_smi(tmp.path());
    let path = scenario(tmp.path(), metrics_server(METRICS), "true");
    let out = run_with_path(&path, tmp.path(), Some(&bin));
    let dir = out.run_dir();
    let series = text(&dir.join("records/default/rep-000.probes.jsonl"));
    let lines: Vec<serde_json::Value> = series
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    for (probe, gpu) in [
        ("gpu", Some(0)),
        ("gpu", Some(1)),
        ("metrics", None),
        ("host", None),
    ] {
        let n = lines
            .iter()
            .filter(|l| l["probe"] == probe && l["gpu"].as_u64() == gpu)
            .count();
        assert!(n >= 10, "{probe} {gpu:?}: {n} samples in 1.5 s at 100 ms");
    }
    let reps = rep_values(&dir);
    assert_eq!(reps.len(), 2);
    for v in &reps {
        let get = |k: &str| {
            v.get(k)
                .and_then(|x| x.as_f64())
                .unwrap_or_else(|| panic!("no {k}: {v:?}"))
        };
        let mem = (40780.0 / 81559.0 + 61169.0 / 81559.0) / 2.0;
        assert!((get("gpu_mem_util") - mem).abs() < 1e-9);
        assert!((get("gpu_mem_util_max") - mem).abs() < 1e-9);
        assert!((get("sm_util") - 0.8).abs() < 1e-9);
        assert_eq!(get("power"), 600.0);
        // The counter says 600 J/s for both GPUs (to the millisecond of `date`).
        let watts = get("energy") / get("duration");
        assert!(
            (watts - 600.0).abs() < 30.0,
            "{watts} W from the energy counter"
        );
        let tokens = get("output_throughput") * get("duration");
        assert!((get("energy_per_token") - get("energy") / tokens).abs() < 1e-9);
        assert_eq!(get("kv_cache_usage"), 0.5);
        assert_eq!(get("server_running"), 4.0);
        assert!(get("server_cpu") > 0.0 && get("client_cpu") > 0.0);
        assert!(get("net_util") > 0.0 && get("net_util") < 1.0);
        let per_second = 2.5 * 2.0 / 3600.0;
        let expected = 1000.0 * per_second / get("total_throughput");
        assert!((get("cost_per_1k_tokens") - expected).abs() < 1e-12);
        let expected = 1000.0 * per_second / get("output_throughput");
        assert!((get("cost_per_1k_output_tokens") - expected).abs() < 1e-12);
    }
    let report = text(&dir.join("report.md"));
    for title in [
        "<b>GPU mem util",
        "<b>Power</b> (W",
        "<b>KV cache usage",
        "<b>Cost per 1k tokens",
    ] {
        assert!(report.contains(title), "{title} in\n{report}");
    }
}

#[test]
fn a_gpu_probe_that_cannot_run_is_absent_not_zero() {
    let tmp = tempfile::tempdir().unwrap();
    let empty = tmp.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    // A PATH with `sh` but no nvidia-smi.
    let path = scenario(tmp.path(), metrics_server(METRICS), "\"auto\"");
    let mut cmd = common::exp(["run", path.to_str().unwrap(), "--no-progress", "--out"]);
    cmd.arg(tmp.path()).env("PATH", "/usr/bin:/bin");
    let out = spawn(cmd).wait().expect_code(0);
    let dir = out.run_dir();
    for v in rep_values(&dir) {
        for k in [
            "gpu_mem_util",
            "sm_util",
            "power",
            "energy",
            "energy_per_token",
        ] {
            assert!(!v.contains_key(k), "{k} must be absent: {v:?}");
        }
        assert_eq!(v["kv_cache_usage"], 0.5);
    }
    let report = text(&dir.join("report.md"));
    assert!(
        report.contains("probe absent in some repetitions"),
        "{report}"
    );
    assert!(report.contains("gpu: cannot run nvidia-smi"), "{report}");

    // gpu = true refuses to run without it.
    let strict = scenario(tmp.path(), metrics_server(METRICS), "true");
    let mut cmd = common::exp(["run", strict.to_str().unwrap(), "--no-progress", "--out"]);
    cmd.arg(tmp.path()).env("PATH", "/usr/bin:/bin");
    let out = spawn(cmd).wait().expect_code(2);
    assert!(
        out.stderr
            .contains("[probes] gpu = true, but GPUs cannot be sampled"),
        "{}",
        out.stderr
    );
}
