//! `cargo bench --bench soak`: memory stays flat over a long run (issue 6). Runs an hour's
//! worth of requests at a high rate through the whole pipeline (`run::execute`, records
//! streamed to a run directory, then `app::finish_run`), samples the resident set size from
//! `/proc/self/statm` every 5 ms, and prints the peak RSS in the first and the last tenth of
//! the run. Exits 1 if it grew by 20 MB or more.
//!
//! Settings (environment):
//! * `SOAK_SECONDS` (default 3600): the requests' span in seconds, split into repetitions of
//!   `SOAK_REP_SECONDS` (default 60). Shorten it for CI, e.g. `SOAK_SECONDS=300`.
//! * `SOAK_RATE` (default 150): requests per second (Poisson; the simulated H100 serves about
//!   170 of these 128-in, 32-out requests per second).
//! * `SOAK_TARGET` = `sim` (default; the simulated engine in virtual time, so an hour takes
//!   about a minute) or `http` (exp's fixed-timing server over loopback in real time, so
//!   `SOAK_SECONDS` is wall time: the HTTP driver, client and record writer).

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use exp::plan::Plan;
use exp::serve::{self, FixedTiming};
use exp::store::RunDir;

/// Largest growth of the peak RSS between the first and last tenth that passes.
const LIMIT_MB: f64 = 20.0;

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Resident set size of this process in MB, from `/proc/self/statm` (pages × page size).
fn rss_mb() -> f64 {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("/proc/self/statm (Linux)");
    let pages: f64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .expect("statm has a resident field");
    // SAFETY: sysconf has no side effects.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as f64;
    pages * page / 1e6
}

fn scenario(target: &str, seconds: u64, rep_seconds: u64, rate: u64, url: &str) -> String {
    let reps = seconds.div_ceil(rep_seconds).max(2);
    let target = match target {
        "http" => {
            format!("kind = \"openai-completions\"\nbase_url = \"{url}\"\nmodel = \"exp-fixed\"")
        }
        _ => "kind = \"sim\"\nmodel_config = \"llama-3.1-8b\"\ngpu = \"h100-sxm\"".to_string(),
    };
    format!(
        r#"
[experiment]
name = "soak"
description = "Memory over a long run."
repetitions = {reps}
order = "sequential"
[target]
{target}
[vars.fixed]
request_rate = {rate}
duration = "{rep_seconds}s"
prompt_tokens = 128
output_tokens = 32
[workload]
arrival = "poisson"
warmup = 0
grace = "10s"
"#
    )
}

/// RSS samples (seconds since start, MB) taken until `stop` is set.
fn sampler(stop: Arc<AtomicBool>) -> std::thread::JoinHandle<Vec<(f64, f64)>> {
    std::thread::spawn(move || {
        let start = Instant::now();
        let mut out = Vec::new();
        while !stop.load(Ordering::Relaxed) {
            out.push((start.elapsed().as_secs_f64(), rss_mb()));
            std::thread::sleep(Duration::from_millis(5));
        }
        out
    })
}

fn peak(samples: &[(f64, f64)], from: f64, to: f64) -> f64 {
    samples
        .iter()
        .filter(|(t, _)| *t >= from && *t <= to)
        .map(|(_, m)| *m)
        .fold(f64::NAN, f64::max)
}

fn main() {
    let seconds = env_u64("SOAK_SECONDS", 3600);
    let rep_seconds = env_u64("SOAK_REP_SECONDS", 60).min(seconds).max(1);
    let rate = env_u64("SOAK_RATE", 150);
    let target = std::env::var("SOAK_TARGET").unwrap_or_else(|_| "sim".into());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let server = (target == "http").then(|| {
        let mut timing = FixedTiming::new(Duration::from_millis(20), Duration::from_millis(2));
        timing.keep_truth = false;
        rt.block_on(serve::spawn_fixed("127.0.0.1:0".parse().unwrap(), timing))
            .expect("fixed server")
    });
    let url = server.as_ref().map(|s| s.base_url()).unwrap_or_default();
    let text = scenario(&target, seconds, rep_seconds, rate, &url);
    let scenario =
        exp::scenario::parse(&text, Path::new("soak.toml"), &[]).unwrap_or_else(|e| panic!("{e}"));
    let plan = Plan::build(scenario).unwrap_or_else(|e| panic!("{e}"));
    let out = tempfile::tempdir().expect("temp dir");
    let manifest = exp::app::new_manifest(&plan, Path::new("soak.toml"), &Default::default());
    let dir = RunDir::create(out.path(), &manifest, &plan.scenario.text).expect("run dir");

    let stop = Arc::new(AtomicBool::new(false));
    let samples = sampler(stop.clone());
    let start = Instant::now();
    rt.block_on(exp::run::execute(&plan, &dir, false))
        .expect("run");
    let run_s = start.elapsed().as_secs_f64();
    exp::app::finish_run(&dir, &manifest, &plan, None, true).expect("report");
    let total_s = start.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    let samples = samples.join().expect("sampler");

    let requests: u64 = exp::app::load_results(&dir, &manifest, &plan)
        .expect("results")
        .iter()
        .flat_map(|c| c.reps.iter())
        .map(|r| r.summary.sent)
        .sum();
    let disk: u64 = walkdir::WalkDir::new(dir.root())
        .into_iter()
        .filter_map(Result::ok)
        .filter_map(|e| e.metadata().ok())
        .map(|m| m.len())
        .sum();
    let first = peak(&samples, 0.0, run_s / 10.0);
    let last = peak(&samples, run_s * 0.9, run_s);
    let growth = last - first;
    println!(
        "soak ({target}): {requests} requests over {seconds} s of schedule at {rate}/s, {} repetitions",
        plan.schedule.len()
    );
    println!(
        "  run {run_s:.1} s wall, report {:.1} s, {:.0} MB of records",
        total_s - run_s,
        disk as f64 / 1e6
    );
    println!("  peak RSS, first tenth of the run  {first:.1} MB");
    println!("  peak RSS, last tenth of the run   {last:.1} MB");
    println!("  growth                            {growth:+.1} MB (limit {LIMIT_MB} MB)");
    println!(
        "  peak RSS while reporting          {:.1} MB",
        peak(&samples, run_s, total_s + 1.0)
    );
    if let Some(server) = server {
        rt.block_on(server.shutdown()).expect("server stops");
    }
    if growth.is_nan() || growth >= LIMIT_MB {
        eprintln!("FAIL: resident memory grew by {growth:.1} MB over the run");
        std::process::exit(1);
    }
}
