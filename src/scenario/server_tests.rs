//! `[server]`, `[probes]` and `[cost]` as a specification: what one cell's launch, probes and
//! price mean once its variables and the port are known.

use std::path::Path;
use std::time::Duration;

use super::model::{LogPattern, PortChoice, Readiness, RestartPolicy, Value};
use super::*;

const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/scenarios/ok/server.toml"
);

fn cell(s: &Scenario, tp: i64, seqs: i64) -> Vars {
    let cells = crate::plan::Plan::build(s.clone()).unwrap().cells;
    let c = cells
        .iter()
        .find(|c| c.vars["tp"] == Value::Int(tp) && c.vars["max_num_seqs"] == Value::Int(seqs))
        .unwrap();
    c.vars.clone()
}

#[test]
fn the_command_is_rendered_per_cell_with_a_placeholder_port_until_launch() {
    let s = load(Path::new(FIXTURE)).unwrap();
    let vars = cell(&s, 2, 64);
    let planned = s.resolve(&vars).unwrap();
    let server = planned.server.as_ref().unwrap();
    let argv = server.command.as_ref().unwrap();
    assert_eq!(
        argv[..3],
        ["vllm", "serve", "meta-llama/Llama-3.1-8B-Instruct"]
    );
    assert_eq!(
        argv[3..],
        [
            "--tensor-parallel-size",
            "2",
            "--max-num-seqs",
            "64",
            "--port",
            "<port>"
        ]
    );
    assert_eq!(server.port, Some(PortChoice::Auto));
    assert_eq!(server.bound_port, None);
    assert_eq!(server.env[1], ("CUDA_VISIBLE_DEVICES".into(), "0,1".into()));
    assert_eq!(server.restart, RestartPolicy::PerCell);
    assert_eq!(server.warmup_requests, 4);
    assert_eq!(server.ready_timeout, Duration::from_secs(900));

    let launched = s.resolve_at_port(&vars, 41234).unwrap();
    let server = launched.server.unwrap();
    assert_eq!(server.command.unwrap().last().unwrap(), "41234");
    assert_eq!(server.bound_port, Some(41234));
    assert_eq!(
        server.ready,
        Readiness::Url("http://127.0.0.1:41234/health".into())
    );
    assert_eq!(
        server.reset_url.as_deref(),
        Some("http://127.0.0.1:41234/reset_prefix_cache")
    );
    assert_eq!(
        launched.target.base_url.as_deref(),
        Some("http://127.0.0.1:41234/v1")
    );
    let probes = launched.probes.unwrap();
    assert_eq!(
        probes.metrics_url.as_deref(),
        Some("http://127.0.0.1:41234/metrics")
    );
    assert_eq!(probes.net_line_rate, Some(100e9));
    let cost = launched.cost.unwrap();
    assert_eq!((cost.gpu_hour, cost.gpus.get()), (2.5, 2));
}

#[test]
fn cells_that_differ_only_in_load_share_a_server_configuration() {
    let text = std::fs::read_to_string(FIXTURE).unwrap();
    let text = text
        .replace(
            "max_num_seqs = [64, 256]",
            "concurrency = [4, 8]\nmax_num_seqs = [64]",
        )
        .replace("concurrency = 8\n", "");
    let s = parse(&text, Path::new(FIXTURE), &[]).unwrap();
    let cells = crate::plan::Plan::build(s.clone()).unwrap().cells;
    let ids: Vec<_> = cells
        .iter()
        .map(|c| s.resolve(&c.vars).unwrap().server.unwrap())
        .map(|srv| (srv.command, srv.env))
        .collect();
    assert_eq!(ids.len(), 4);
    assert_eq!(ids[0], ids[1], "concurrency does not change the command");
    assert_ne!(ids[0], ids[2], "tp does");
}

#[test]
fn shell_commands_run_under_sh_and_logs_can_signal_readiness() {
    let text = r#"
[experiment]
name = "x"
description = "x"
[target]
kind = "openai-chat"
base_url = "http://127.0.0.1:{{ port }}/v1"
[vars.fixed]
request_rate = 1
[server]
shell = true
command = "exec llama-server --port {{ port }} 2>&1"
port = 8080
ready_log = { regex = "listening on .*:8080" }
"#;
    let s = parse(text, Path::new("x.toml"), &[]).unwrap();
    let c = s
        .resolve(&crate::plan::Plan::build(s.clone()).unwrap().cells[0].vars)
        .unwrap();
    let server = c.server.unwrap();
    assert_eq!(
        server.command.unwrap(),
        ["sh", "-c", "exec llama-server --port 8080 2>&1"]
    );
    assert_eq!(server.bound_port, Some(8080));
    assert_eq!(
        server.ready,
        Readiness::Log(LogPattern::Regex("listening on .*:8080".into()))
    );
}

#[test]
fn an_external_server_is_waited_for_but_never_launched() {
    let text = r#"
[experiment]
name = "x"
description = "x"
[target]
kind = "openai-completions"
base_url = "http://gpu-box:8000/v1"
[vars.fixed]
request_rate = 1
[server]
restart = "never"
reset_url = "http://gpu-box:8000/flush_cache"
"#;
    let mut s = parse(text, Path::new("x.toml"), &[]).unwrap();
    assert!(!s.launches_server());
    let c = s
        .resolve(&crate::plan::Plan::build(s.clone()).unwrap().cells[0].vars)
        .unwrap();
    let server = c.server.unwrap();
    assert!(!server.launched());
    assert_eq!(
        server.ready,
        Readiness::Url("http://gpu-box:8000/health".into())
    );
    // --target is fine against an external server, refused against a launched one.
    s.set_target_url("http://other:9000/v1").unwrap();
    let mut launched = load(Path::new(FIXTURE)).unwrap();
    let e = launched.set_target_url("http://other:9000/v1").unwrap_err();
    assert!(e.message.contains("launches its own"), "{e}");
}

#[test]
fn cost_takes_the_gpu_count_from_the_target_also_for_sim() {
    let text = r#"
[experiment]
name = "x"
description = "x"
[target]
kind = "sim"
model_config = "llama-3.1-8b"
gpu = "h100-sxm"
gpus = 8
[vars.fixed]
request_rate = 1
tp = 4
[cost]
gpu_hour = 3
"#;
    let s = parse(text, Path::new("x.toml"), &[]).unwrap();
    let c = s
        .resolve(&crate::plan::Plan::build(s.clone()).unwrap().cells[0].vars)
        .unwrap();
    assert_eq!(c.cost.unwrap().gpus.get(), 8);
    assert!(c.server.is_none() && c.probes.is_none());
}
