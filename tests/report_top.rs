//! The top of report.md answers first (issue 15): snapshots of its Summary for a load sweep
//! (where the SLO stops holding, where throughput saturates), a treatment sweep (the
//! comparisons that changed), a search (the capacity) and a run made with `--baseline` (the
//! comparison's verdict). The simulated engine is seeded, so each Summary is exact.
//!
//! A deliberate change of the Summary: `UPDATE_SNAPSHOTS=1 cargo test --test report_top` rewrites
//! the snapshots under `tests/fixtures/report/`; review the diff.

mod common;

use std::path::{Path, PathBuf};

use common::{root, run};

/// The Summary section of a report: from `## Summary` to the note under its table.
fn summary(report: &str) -> String {
    let start = report
        .find("## Summary")
        .unwrap_or_else(|| panic!("no Summary in\n{report}"));
    let end = report[start..]
        .find("Means over repetitions")
        .map(|i| start + i)
        .unwrap_or(report.len());
    let line_end = report[end..]
        .find('\n')
        .map_or(report.len(), |i| end + i + 1);
    report[start..line_end].to_string()
}

fn snapshot(name: &str, got: &str) {
    let path = root().join(format!("tests/fixtures/report/{name}.summary.md"));
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        std::fs::write(&path, got).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (UPDATE_SNAPSHOTS=1 writes it)", path.display()));
    assert_eq!(
        got,
        want,
        "the Summary of {name} changed (UPDATE_SNAPSHOTS=1 rewrites {})",
        path.display()
    );
}

fn run_to(scenario: &str, out: &Path, extra: &[&str]) -> PathBuf {
    let mut args = vec![
        "run",
        scenario,
        "--out",
        out.to_str().unwrap(),
        "--no-progress",
    ];
    args.extend_from_slice(extra);
    run(args).expect_code(0).run_dir()
}

fn report_summary(dir: &Path) -> String {
    summary(&std::fs::read_to_string(dir.join("report.md")).unwrap())
}

#[test]
fn a_load_sweep_says_where_the_slo_stops_holding_and_throughput_saturates() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = run_to("tests/fixtures/report/load_sweep.toml", tmp.path(), &[]);
    let got = report_summary(&dir);
    assert!(
        got.contains("holds up to request_rate = 40 and fails from 80"),
        "{got}"
    );
    assert!(
        got.contains("saturates between request_rate = 40 and 80"),
        "{got}"
    );
    snapshot("load_sweep", &got);
}

#[test]
fn a_treatment_sweep_lists_the_comparisons_that_changed() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = run_to("tests/fixtures/report/treatment.toml", tmp.path(), &[]);
    let got = report_summary(&dir);
    assert!(got.contains("✅ tp=1 → 2: tpot.mean"), "{got}");
    snapshot("treatment", &got);
}

#[test]
fn a_search_states_its_capacity_first() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = run_to("tests/fixtures/scenarios/ok/search.toml", tmp.path(), &[]);
    let got = report_summary(&dir);
    assert!(got.contains("- Capacity at the SLO: **"), "{got}");
    snapshot("search", &got);
}

#[test]
fn a_run_with_a_baseline_states_the_comparisons_verdict() {
    let tmp = tempfile::tempdir().unwrap();
    let scenario = "tests/fixtures/cli/tiny_sim.toml";
    let base = run_to(scenario, &tmp.path().join("a"), &[]);
    let base_s = base.to_str().unwrap();
    let cand = run_to(scenario, &tmp.path().join("b"), &["--baseline", base_s]);
    let got = report_summary(&cand).replace(base_s, "BASELINE");
    assert!(
        got.contains(
            "- Against the baseline `BASELINE`: **✅ no change beyond the noise thresholds"
        ),
        "{got}"
    );
    let manifest = common::json(&cand.join("manifest.json"));
    assert_eq!(manifest["baseline"]["run_dir"].as_str(), Some(base_s));
    snapshot("baseline", &got);
}
