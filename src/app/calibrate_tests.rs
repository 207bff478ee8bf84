//! Round trips through the real pipeline: simulate with a profile of known factors, run the
//! scenario into a run directory exactly as `exp run` does, calibrate from that directory, and
//! get the factors back.

use std::path::Path;

use super::*;
use crate::cli::TargetArgs;

/// The known profile: prefill at 55 % of peak, memory at 70 %, 200 µs per step, and the
/// H100 preset's GEMM half-efficiency size and API-server cost (which calibration keeps from
/// its start).
const KNOWN: &str = "\
[efficiency]
matmul = 0.55
matmul_half_tokens = 138.0
attention = 0.7
memory = 0.7
comm = 0.8
step_overhead_s = 0.0002
per_layer_overhead_s = 0.0
per_request_overhead_s = 0.0016
per_prompt_token_overhead_s = 1e-7
";

/// Writes the known profile and runs `body` (a scenario with `{profile}` in it) through
/// scenario → plan → run directory → `run::execute`; returns the run directory.
fn simulate(tmp: &Path, body: &str) -> PathBuf {
    let profile = tmp.join("known.toml");
    std::fs::write(&profile, KNOWN).unwrap();
    let text = body.replace("{profile}", &profile.display().to_string());
    let path = tmp.join("scenario.toml");
    std::fs::write(&path, &text).unwrap();
    let scenario = crate::scenario::parse(&text, &path, &[]).unwrap();
    let plan = Plan::build(scenario).unwrap();
    let manifest = super::super::finish::new_manifest(&plan, &path, &TargetArgs::default());
    let dir = RunDir::create(&tmp.join("reports"), &manifest, &plan.scenario.text).unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(crate::run::execute(&plan, &dir, false))
        .unwrap();
    dir.root().to_path_buf()
}

fn scenario(arrival: &str, load: &str, requests: u32) -> String {
    format!(
        r#"
[experiment]
name = "calibration_round_trip"
description = "Known factors in, the same factors out."
seed = 11
repetitions = 2

[target]
kind = "sim"
model_config = "llama-3.1-8b"
gpu = "h100-sxm"
sim_preset = "{{profile}}"
noise_cv = 0.005

[vars.fixed]
output_tokens = 256
requests = {requests}
{load}

[vars.sweep]
prompt_tokens = [1024, 4096, 16384]

[workload]
arrival = "{arrival}"
warmup = 1
"#
    )
}

fn fitted(c: &Calibration, name: &str) -> f64 {
    c.fitted.iter().find(|f| f.name == name).unwrap().value
}

fn assert_recovers(c: &Calibration) {
    for (name, want) in [
        ("matmul", 0.55),
        ("memory", 0.7),
        ("step_overhead_s", 200e-6),
    ] {
        let got = fitted(c, name);
        assert!(
            ((got - want) / want).abs() < 0.05,
            "{name}: got {got}, want {want} ± 5 %\n{c:#?}"
        );
    }
}

#[test]
fn closed_loop_of_one_recovers_known_factors_within_5_percent() {
    let tmp = tempfile::tempdir().unwrap();
    let run_dir = simulate(tmp.path(), &scenario("closed", "concurrency = 1", 30));
    let result = calibrate_run(&run_dir, &Hardware::default()).unwrap();
    let c = &result.calibration;
    // Every request of a closed loop of one ran alone: 3 cells × 2 repetitions × 30.
    assert_eq!(result.counts.successful, 180);
    assert_eq!(result.counts.alone, 180);
    assert_eq!((c.ttft.n, c.tpot.n), (180, 180));
    assert_recovers(c);
    // Step noise of 0.5 % per step: TTFT (1–2 steps) scatters by about that, TPOT (a mean of
    // 255 steps) by far less.
    assert!(c.ttft.rms < 0.01 && c.tpot.rms < 0.002, "{c:#?}");

    // The profile names its source and is what `sim_preset` reads.
    let out = tmp.path().join("fitted.toml");
    run(&run_dir, Some(&out), &Hardware::default()).unwrap();
    let text = std::fs::read_to_string(&out).unwrap();
    let profile = Profile::parse(&text).unwrap();
    let meta = profile.profile.unwrap();
    assert_eq!(
        (meta.model.as_str(), meta.gpu.as_str()),
        ("llama-3.1-8b", "h100-sxm")
    );
    assert_eq!(meta.cells.len(), 3);
    assert_eq!(meta.ttft_requests, 180);
    assert_eq!(profile.efficiency.memory, c.efficiency.memory);
}

#[test]
fn poisson_run_uses_only_requests_that_ran_alone_and_still_recovers_the_factors() {
    // About 2 s per request at 0.25 requests/s: a good share overlap and are left out.
    let tmp = tempfile::tempdir().unwrap();
    let run_dir = simulate(tmp.path(), &scenario("poisson", "request_rate = 0.25", 40));
    let result = calibrate_run(&run_dir, &Hardware::default()).unwrap();
    let counts = result.counts;
    assert_eq!(counts.successful, 240);
    assert!(
        counts.alone > 40 && counts.alone < 200,
        "{counts:?}: expected some, not all, requests to overlap"
    );
    assert_recovers(&result.calibration);
}

#[test]
fn a_run_where_nothing_ran_alone_is_refused_with_what_to_run() {
    let tmp = tempfile::tempdir().unwrap();
    let body = scenario("closed", "concurrency = 4", 8).replace("[1024, 4096, 16384]", "[256]");
    let run_dir = simulate(
        tmp.path(),
        &body.replace("output_tokens = 256", "output_tokens = 16"),
    );
    let err = calibrate_run(&run_dir, &Hardware::default()).unwrap_err();
    let text = format!("{err:#}");
    assert!(
        text.contains("ran alone") && text.contains("concurrency = 1"),
        "{text}"
    );
}
