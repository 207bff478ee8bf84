//! Batch mode's samples/s and step time (issue 11's first metrics added through the registry):
//! `scenarios/batch_sweep.toml` on the simulated engine, shortened, writes `samples_per_s` and
//! `step_time` for every repetition into `summary.json` and a table for each into the report.

mod common;

use serde_json::Value;

#[test]
fn batch_sweep_reports_samples_per_second_and_step_time() {
    let out = tempfile::tempdir().unwrap();
    let run = common::run([
        "run",
        "scenarios/batch_sweep.toml",
        "--out",
        out.path().to_str().unwrap(),
        "--no-progress",
        "--set",
        "experiment.repetitions=2",
        "--set",
        "vars.fixed.requests=16",
        "--set",
        "vars.sweep.batch_size=[1,4]",
    ])
    .expect_code(0);
    let dir = run.run_dir();
    let summary: Value =
        serde_json::from_slice(&std::fs::read(dir.join("summary.json")).unwrap()).unwrap();
    let reps = summary["repetitions"].as_array().unwrap();
    assert_eq!(reps.len(), 4);
    for rep in reps {
        let v = &rep["summary"]["values"];
        let bs: f64 = match rep["cell_id"].as_str().unwrap() {
            "batch_size-1" => 1.0,
            "batch_size-4" => 4.0,
            other => panic!("unexpected cell {other}"),
        };
        let (samples, step) = (
            v["samples_per_s"].as_f64().unwrap(),
            v["step_time"].as_f64().unwrap(),
        );
        // Every batch is full and every request ends ok: samples/s = BS / mean step time.
        assert!((samples * step / bs - 1.0).abs() < 1e-9, "{v}");
        // A step lasts at least as long as each of its requests, so (equal batches) the mean
        // step is at least the mean request.
        assert!(step >= v["e2e.mean"].as_f64().unwrap() - 1e-9, "{v}");
    }
    let report = std::fs::read_to_string(dir.join("report.md")).unwrap();
    assert!(
        report.contains("<b>Samples per s</b> (samples/s, ↑ better)"),
        "{report}"
    );
    assert!(
        report.contains("<b>Step time</b> (time, ↓ better)"),
        "{report}"
    );
}
