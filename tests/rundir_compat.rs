//! Results live for months: run directories written by an earlier exp must still read.
//!
//! `tests/fixtures/rundirs/` holds two run directories written by exp 0.1 before the metric
//! registry redesign (issue 11), with the `summary.json` and `report.md` that exp wrote for
//! them then: a simulated batch sweep (`fx_batch.toml`) and a closed loop against
//! `exp serve --fixed ttft=20ms,itl=2ms` with host probes and the client's CPU in its
//! completion markers (`fx_http.toml`). `exp report` re-reads each from a copy and must give
//! every per-repetition number it gave then, to the last bit; metrics added since may appear
//! beside them.

mod common;

use std::path::{Path, PathBuf};

use serde_json::Value;

fn fixture(name: &str) -> PathBuf {
    common::root().join("tests/fixtures/rundirs").join(name)
}

/// A writable copy of a fixture run directory.
fn copy_of(name: &str) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dst = tmp.path().join(name);
    copy_tree(&fixture(name), &dst);
    (tmp, dst)
}

fn copy_tree(src: &Path, dst: &Path) {
    std::fs::create_dir_all(dst).unwrap();
    for entry in std::fs::read_dir(src).unwrap() {
        let entry = entry.unwrap();
        let to = dst.join(entry.file_name());
        match entry.file_type().unwrap().is_dir() {
            true => copy_tree(&entry.path(), &to),
            false => {
                std::fs::copy(entry.path(), to).unwrap();
            }
        }
    }
}

fn read_json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// `(cell, round)` → that repetition's summary values.
fn values_by_repetition(summary: &Value) -> Vec<((String, u64), serde_json::Map<String, Value>)> {
    summary["repetitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let key = (
                r["cell_id"].as_str().unwrap().to_string(),
                r["round"].as_u64().unwrap(),
            );
            (key, r["summary"]["values"].as_object().unwrap().clone())
        })
        .collect()
}

/// Re-reports the fixture and checks that every number of the old summary is still there.
fn report_keeps_every_old_value(name: &str) -> (Value, String) {
    let (_tmp, dir) = copy_of(name);
    common::run(["report", dir.to_str().unwrap()]).expect_code(0);
    let old = read_json(&fixture(&format!("{name}.summary.json")));
    let new = read_json(&dir.join("summary.json"));
    let new_reps = values_by_repetition(&new);
    let old_reps = values_by_repetition(&old);
    assert_eq!(old_reps.len(), new_reps.len(), "{name}: repetitions");
    let mut compared = 0;
    for ((key, old_values), (new_key, new_values)) in old_reps.iter().zip(&new_reps) {
        assert_eq!(key, new_key, "{name}: repetition order");
        for (metric, old_value) in old_values {
            let new_value = new_values
                .get(metric)
                .unwrap_or_else(|| panic!("{name} {key:?}: `{metric}` is gone"));
            assert_eq!(old_value, new_value, "{name} {key:?}: `{metric}`");
            compared += 1;
        }
    }
    assert!(compared > 100, "{name}: only {compared} values compared");
    for field in ["cells", "comparisons", "checks"] {
        assert_eq!(
            old[field].as_array().map(Vec::len),
            new[field].as_array().map(Vec::len),
            "{name}: {field}"
        );
    }
    let report = std::fs::read_to_string(dir.join("report.md")).unwrap();
    (new, report)
}

/// The footnote of definitions, which changed on purpose since exp 0.1 (issue 12: `tpot`
/// and `itl` exact for multi-token chunks, `chunk_gap` added).
const FOOTNOTE: &str = "<sub>Definitions.";

/// The table rows of `report` — every number it shows, with its cell and metric — without
/// the metric tables titled `titles` and without the Summary at the top (new since exp 0.1,
/// it repeats numbers from the tables). A metric table is `### <title> (` in exp 0.1's
/// reports and a folded `<details><summary><b><title></b> (` block since.
fn without_sections(report: &str, titles: &[&str]) -> String {
    let mut skipping = false;
    let mut kept = Vec::new();
    for line in report.lines().filter(|l| !l.starts_with(FOOTNOTE)) {
        let folded = line.strip_prefix("<details><summary><b>");
        if line.starts_with('#') || folded.is_some() {
            let lower = line.to_lowercase();
            let folded = folded.map(str::to_lowercase);
            skipping = line == "## Summary"
                || titles.iter().map(|t| t.to_lowercase()).any(|t| {
                    lower.starts_with(&format!("### {t} ("))
                        || folded
                            .as_ref()
                            .is_some_and(|f| f.starts_with(&format!("{t}</b> (")))
                });
        }
        if !skipping && line.starts_with('|') {
            kept.push(line);
        }
    }
    // One minus sign since exp 0.1 (p-values and Hedges' g used the ASCII one).
    kept.join("\n").replace('−', "-")
}

#[test]
fn a_simulated_batch_run_written_by_exp_0_1_reports_the_same_numbers() {
    let (summary, report) = report_keeps_every_old_value("fx_batch");
    // Batch mode's metrics are new since: every repetition has them now...
    let first = &summary["repetitions"][0]["summary"]["values"];
    assert!(first["samples_per_s"].as_f64().unwrap() > 0.0, "{first}");
    assert!(first["step_time"].as_f64().unwrap() > 0.0, "{first}");
    // ...and the report is the old one with their two tables added, nothing else changed.
    let old_report = std::fs::read_to_string(fixture("fx_batch.report.md")).unwrap();
    assert_ne!(report, old_report);
    let trimmed = without_sections(&report, &["samples per s", "step time"]);
    // A table no longer shown: the simulated engine's queue delay (0 by construction).
    let dropped = ["queue delay p99"];
    assert_eq!(trimmed, without_sections(&old_report, &dropped));
    assert!(report.contains("**chunk_gap**: gap between consecutive content chunks"));
}

#[test]
fn an_http_run_with_probes_written_by_exp_0_1_reports_the_same_numbers() {
    let (summary, report) = report_keeps_every_old_value("fx_http");
    // The client's CPU comes from the completion markers' `details` and the host probe's
    // series: both must still be read.
    let first = &summary["repetitions"][0]["summary"]["values"];
    for metric in [
        "client_cpu",
        "client_cpu_per_request",
        "client_cores",
        "mfu",
    ] {
        assert!(first.get(metric).is_some(), "{metric} missing");
    }
    let old_report = std::fs::read_to_string(fixture("fx_http.report.md")).unwrap();
    // A table no longer shown: the client's CPU in cores from the host probe, beside its
    // share of the client's cores.
    let dropped = ["client cpu"];
    assert_eq!(
        without_sections(&report, &[]),
        without_sections(&old_report, &dropped),
        "report.md of an unchanged run must show the same numbers"
    );
    assert!(report.contains("## Summary"), "{report}");
}
