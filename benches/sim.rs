//! `cargo bench --bench sim`: how fast the simulated engine runs, in simulated requests per
//! wall-clock second (target ≥ 20,000 on one core: 512-token prompts, 128-token outputs, full
//! per-request records in memory), and, measured separately, how fast those records are
//! written to a run directory.

use std::sync::Arc;
use std::time::{Duration, Instant};

use exp::hw::{Deployment, Efficiency, Gpu, ModelConfig};
use exp::scenario::model::{ArrivalConfig, LengthDist, PromptSource, WorkloadConfig};
use exp::sim::{self, EngineParams};
use exp::workload::{Datasets, WorkloadSeeds};

fn main() {
    let requests = 200_000u64;
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
        grace: Duration::from_secs(30),
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
    let deployment = Arc::new(Deployment::new(model, gpu, 1, w, kv, eff).expect("deployment"));
    let params = EngineParams::new(256, 8192, deployment.kv_capacity_tokens(0.9).expect("fits"));

    let start = Instant::now();
    let run = sim::run_repetition(&work, &params, deployment.as_ref(), 7).expect("simulation");
    let wall = start.elapsed().as_secs_f64();
    let chunks: usize = run.records.iter().map(|r| r.chunks.len()).sum();
    println!(
        "simulated engine: {requests} requests (512 in, 128 out, Poisson 2000/s, past capacity)"
    );
    println!("  wall time           {wall:.2} s");
    println!(
        "  simulated requests  {:.0} per wall-clock second (target ≥ 20000)",
        requests as f64 / wall
    );
    println!(
        "  simulated tokens    {:.0} per wall-clock second",
        chunks as f64 / wall
    );
    println!(
        "  engine steps        {} ({:.0} per second)",
        run.stats.steps,
        run.stats.steps as f64 / wall
    );

    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("rep.jsonl");
    let start = Instant::now();
    let mut out = std::io::BufWriter::new(std::fs::File::create(&path).expect("file"));
    for rec in &run.records {
        serde_json::to_writer(&mut out, rec).expect("write");
        std::io::Write::write_all(&mut out, b"\n").expect("write");
    }
    std::io::Write::flush(&mut out).expect("flush");
    let wall = start.elapsed().as_secs_f64();
    let bytes = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    println!(
        "writing records: {requests} records, {:.1} MB in {wall:.2} s ({:.0} records/s)",
        bytes as f64 / 1e6,
        requests as f64 / wall
    );
}
