//! The benchmark's parts, each returning its rows of the table.

use std::path::Path;
use std::time::Instant;

use super::procs::{self, Cores, Server};
use super::table::{Row, ms};
use super::truth::{self, Rep};
use super::{Sizes, plain};

fn scenario(name: &str, base_url: &str, fixed: &str, workload: &str) -> String {
    format!(
        r#"
[experiment]
name = "{name}"
description = "cargo bench --bench loadgen"
seed = 7
repetitions = 1
[target]
kind = "openai-completions"
base_url = "{base_url}"
model = "exp-fixed"
timeout = "300s"
[vars.fixed]
prompt_tokens = 16
{fixed}
[workload]
{workload}
"#
    )
}

/// (a) and (b): an open-loop Poisson run against TTFT 100 ms, 10 ms/token, 128 tokens,
/// compared with the server's truth log.
pub fn accuracy(
    label: &str,
    name: &str,
    rate: f64,
    requests: u64,
    cores: Cores,
    dir: &Path,
) -> Vec<Row> {
    let spec = "ttft=100ms,itl=10ms,echo=x-exp-request";
    let server = Server::start(spec, cores.server, dir, true);
    let fixed = format!("output_tokens = 128\nrequests = {requests}\nrequest_rate = {rate}");
    let workload = "arrival = \"poisson\"\nwarmup = 8";
    let text = scenario(name, &server.base_url(), &fixed, workload);
    let (usage, run_dir) = procs::exp_run(&text, cores.client, dir, name);
    let log = server.truth_log.clone().expect("asked for");
    let server_usage = server.stop();
    let rep = Rep::read(&run_dir);
    let errors = truth::errors(&rep, &truth::read_truth(&log));
    let part = format!("{label}: {rate} req/s Poisson, {requests} req");
    let mut rows = if rate < 10.0 {
        light_rows(&part, &errors)
    } else {
        loaded_rows(&part, &rep, &errors)
    };
    let (tpot_mean, tpot_p99) = truth::mean_p99(&errors.tpot);
    let tpot = format!("{} / {}", ms(tpot_mean), ms(tpot_p99));
    rows.push(Row::info(&part, "mean / p99 TPOT error", tpot));
    let matched = format!(
        "{} of {} requests matched to the server's log",
        errors.ttft.len(),
        rep.records.len()
    );
    rows.push(Row::info(&part, "matching", matched));
    rows.push(Row::info(
        &part,
        "client CPU",
        format!(
            "{} per request, {:.1} % of a core, waited for a CPU {:.1} % of the time; server {:.1} s CPU in all; client peak RSS {:.0} MB",
            ms(rep.value("client_cpu_per_request")),
            100.0 * rep.value("client_cpu_util"),
            100.0 * rep.value("client_cpu_wait"),
            server_usage.cpu_seconds,
            usage.peak_rss_mb
        ),
    ));
    rows
}

/// (a)'s targets: mean errors under 0.5 ms.
fn light_rows(part: &str, errors: &truth::Errors) -> Vec<Row> {
    let (ttft_mean, ttft_p99) = truth::mean_p99(&errors.ttft);
    let (e2e_mean, e2e_p99) = truth::mean_p99(&errors.e2e);
    let p99 = format!("{} / {}", ms(ttft_p99), ms(e2e_p99));
    vec![
        Row::judged(
            part,
            "mean TTFT error",
            ms(ttft_mean),
            "< 0.5 ms",
            ttft_mean.abs() < 5e-4,
        ),
        Row::judged(
            part,
            "mean E2E error",
            ms(e2e_mean),
            "< 0.5 ms",
            e2e_mean.abs() < 5e-4,
        ),
        Row::info(part, "p99 TTFT / E2E error", p99),
    ]
}

/// (b)'s targets: the rate kept, TTFT errors and lateness under 1 ms.
fn loaded_rows(part: &str, rep: &Rep, errors: &truth::Errors) -> Vec<Row> {
    let (ttft_mean, ttft_p99) = truth::mean_p99(&errors.ttft);
    let (e2e_mean, e2e_p99) = truth::mean_p99(&errors.e2e);
    let (achieved, scheduled) = (rep.value("achieved_rate"), rep.value("scheduled_rate"));
    let ratio = achieved / scheduled;
    let rate = format!(
        "{:.2} % ({achieved:.1} of {scheduled:.1} req/s)",
        100.0 * ratio
    );
    let q99 = rep.value("queue_delay.p99");
    let q50 = rep.value("queue_delay.p50");
    let e2e = format!("{} / {}", ms(e2e_mean), ms(e2e_p99));
    vec![
        Row::judged(
            part,
            "achieved / scheduled rate",
            rate,
            "≥ 99.5 %",
            ratio >= 0.995,
        ),
        Row::judged(
            part,
            "mean TTFT error",
            ms(ttft_mean),
            "< 1 ms",
            ttft_mean.abs() < 1e-3,
        ),
        Row::judged(
            part,
            "p99 TTFT error",
            ms(ttft_p99),
            "< 1 ms",
            ttft_p99.abs() < 1e-3,
        ),
        Row::judged(part, "p99 queue_delay", ms(q99), "< 1 ms", q99 < 1e-3),
        Row::info(part, "p50 queue_delay", ms(q50)),
        Row::info(part, "mean / p99 E2E error", e2e),
    ]
}

/// (c): closed loop, 256 in flight, 256-token instant streams.
pub fn capacity(sizes: &Sizes, cores: Cores, dir: &Path) -> Vec<Row> {
    let server = Server::start("ttft=0ms,itl=0ms", cores.server, dir, false);
    let fixed = format!(
        "output_tokens = 256\nrequests = {}\nconcurrency = 256",
        sizes.capacity
    );
    let text = scenario(
        "capacity",
        &server.base_url(),
        &fixed,
        "arrival = \"closed\"\nwarmup = 256",
    );
    let server_cpu = procs::cpu_of(server.pid());
    let (usage, run_dir) = procs::exp_run(&text, cores.client, dir, "capacity");
    let server_cpu = procs::cpu_of(server.pid()) - server_cpu;
    server.stop();
    let rep = Rep::read(&run_dir);
    let part = format!(
        "(c) capacity: instant server, 256 tokens, 256 in flight, {} req",
        sizes.capacity
    );
    let rps = rep.value("request_throughput");
    let tps = rep.value("output_throughput");
    let cpu = rep.value("client_cpu_per_request");
    let total = sizes.capacity + 256;
    vec![
        Row::judged(
            &part,
            "requests/s",
            format!("{rps:.0}"),
            "≥ 2,000",
            rps >= 2000.0,
        ),
        Row::judged(
            &part,
            "streamed tokens/s",
            format!("{:.0}k", tps / 1e3),
            "≥ 500k",
            tps >= 5e5,
        ),
        Row::judged(
            &part,
            "client CPU per request",
            ms(cpu),
            "≤ 0.5 ms",
            cpu <= 5e-4,
        ),
        Row::judged(
            &part,
            "client peak RSS (whole `exp run`)",
            format!("{:.0} MB", usage.peak_rss_mb),
            "≤ 100 MB",
            usage.peak_rss_mb <= 100.0,
        ),
        cpu_use(&part, &rep, &usage, server_cpu, total),
    ]
}

/// Where (c)'s CPU went: client and server shares, the whole process, the CPU-bound rate.
fn cpu_use(part: &str, rep: &Rep, usage: &procs::Usage, server_cpu: f64, total: u64) -> Row {
    let cpu = rep.value("client_cpu_per_request");
    let window = rep.value("duration");
    Row::info(
        part,
        "CPU use",
        format!(
            "client {:.0} % of its core (waited for a CPU {:.0} % of the time), server {:.0} % of its core over the run; whole `exp run` process {} CPU per request (start-up, warm-up, report included); client CPU-bound rate 1/CPU = {:.0} req/s",
            100.0 * rep.value("client_cpu_util"),
            100.0 * rep.value("client_cpu_wait"),
            100.0 * server_cpu / usage.wall_seconds.max(window),
            ms(usage.cpu_seconds / total as f64),
            1.0 / cpu
        ),
    )
}

/// (d): the reference server alone, driven by a plain load generator.
pub fn reference_server(sizes: &Sizes, cores: Cores, dir: &Path) -> Vec<Row> {
    let server = Server::start("ttft=0ms,itl=0ms", cores.server, dir, false);
    let before = procs::cpu_of(server.pid());
    let load = plain::drive(server.addr, sizes.wrk_seconds, cores.client, dir);
    let cpu = procs::cpu_of(server.pid()) - before;
    server.stop();
    let part = format!(
        "(d) `exp serve --fixed` alone, {} (64 connections)",
        load.tool
    );
    let rps = load.requests as f64 / load.seconds;
    let per = cpu / load.requests.max(1) as f64;
    vec![
        Row::judged(
            &part,
            "requests/s (256-token streams)",
            format!("{rps:.0}"),
            "≥ 5,000",
            rps >= 5000.0,
        ),
        Row::info(
            &part,
            "server CPU",
            format!(
                "{} per request, {:.0} % of its core; on a core of its own: 1/CPU = {:.0} req/s",
                ms(per),
                100.0 * cpu / load.seconds,
                1.0 / per
            ),
        ),
    ]
}

/// (e): N streams open at once, from one closed-loop client.
pub fn concurrency(sizes: &Sizes, cores: Cores, dir: &Path) -> Vec<Row> {
    let n = sizes.streams;
    let server = Server::start("ttft=5s,itl=100ms", cores.server, dir, true);
    let fixed = format!("output_tokens = 8\nrequests = {n}\nconcurrency = {n}");
    let text = scenario(
        "streams",
        &server.base_url(),
        &fixed,
        "arrival = \"closed\"\nwarmup = 0",
    );
    let started = Instant::now();
    let (usage, run_dir) = procs::exp_run(&text, cores.client, dir, "streams");
    let wall = started.elapsed().as_secs_f64();
    let log = server.truth_log.clone().expect("asked for");
    server.stop();
    let rep = Rep::read(&run_dir);
    let truth = truth::read_truth(&log);
    let open = truth::peak(
        truth
            .iter()
            .filter_map(|t| Some((t.received_ns, t.last_token_ns?))),
    );
    let failed = rep.records.iter().filter(|r| !r.outcome.is_ok()).count();
    let limit = exp::fdlimit::raise().expect("limits");
    let part = format!("(e) {n} concurrent streams (TTFT 5 s, 8 tokens)");
    vec![
        Row::judged(
            &part,
            "streams open at once (server's log)",
            format!("{open} ({failed} failed)"),
            &format!("{n}"),
            open >= n as usize && failed == 0,
        ),
        Row::info(
            &part,
            "client",
            format!(
                "peak in flight {}; open-file limit {} (hard {}); {:.1} s, peak RSS {:.0} MB, CPU {:.1} s",
                rep.peak_in_flight(),
                limit.soft,
                limit.hard,
                wall,
                usage.peak_rss_mb,
                usage.cpu_seconds
            ),
        ),
    ]
}

/// (f): the simulated engine's speed, as `cargo bench --bench sim` measures it.
pub fn simulator(requests: u64) -> Vec<Row> {
    use exp::hw::{Deployment, Efficiency, Gpu, ModelConfig};
    use exp::scenario::model::{ArrivalConfig, LengthDist, PromptSource, WorkloadConfig};
    use exp::workload::{Datasets, WorkloadSeeds};
    let cfg = WorkloadConfig {
        prompts: PromptSource::Synthetic,
        prompt_tokens: 512,
        prompt_dist: LengthDist::Fixed,
        output_tokens: 128,
        output_dist: LengthDist::Fixed,
        arrival: ArrivalConfig::Poisson { rate: 2_000.0 },
        max_concurrency: None,
        requests: Some(requests),
        duration: None,
        warmup: 0,
        grace: std::time::Duration::from_secs(30),
    };
    let seeds = WorkloadSeeds {
        arrivals: 1,
        prompts: 2,
        lengths: 3,
        warmup: 4,
    };
    let work = Datasets::new().build(&cfg, &seeds).expect("workload");
    let model = ModelConfig::load("llama-3.1-8b").expect("catalog model");
    let gpu = Gpu::load("h100-sxm").expect("catalog gpu");
    let (w, kv) = (model.dtype, model.default_kv_dtype());
    let eff = Efficiency::calibrated(&gpu, w);
    let deployment = Deployment::new(model, gpu, 1, w, kv, eff).expect("deployment");
    let params =
        exp::sim::EngineParams::new(256, 8192, deployment.kv_capacity_tokens(0.9).expect("fits"));
    let start = Instant::now();
    exp::sim::run_repetition(&work, &params, &deployment, 7).expect("simulation");
    let rate = requests as f64 / start.elapsed().as_secs_f64();
    let part = format!("(f) simulated engine ({requests} req, 512 in, 128 out)");
    vec![Row::judged(
        &part,
        "simulated requests per wall-clock second",
        format!("{rate:.0}"),
        "≥ 20,000",
        rate >= 20_000.0,
    )]
}
