//! Interrupted runs (issue 2, "Done means"): a run killed outright or stopped with Ctrl-C is
//! finished by `exp run --resume <dir>`, which keeps exactly the repetitions whose completion
//! markers exist (byte for byte, untouched) and redoes the rest, partial records included.

mod common;

use std::path::Path;

use common::{
    completed_snapshots, count_markers, exp, marker_path, planned_slots, records_path, run,
    snapshot, spawn, summary_n, text, wait_until,
};

/// Starts the few-seconds `resume.toml` run and returns it with its run directory, once the
/// directory exists.
fn start_long_run(out: &Path) -> (common::Running, std::path::PathBuf) {
    let mut cmd = exp([
        "run",
        "tests/fixtures/cli/resume.toml",
        "--no-progress",
        "--out",
    ]);
    cmd.arg(out);
    let running = spawn(cmd);
    let scenario_dir = out.join("resume");
    wait_until("the run directory", || {
        std::fs::read_dir(&scenario_dir).is_ok_and(|mut d| d.next().is_some())
    });
    let dir = std::fs::read_dir(&scenario_dir)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    wait_until("the manifest", || dir.join("manifest.json").exists());
    (running, dir)
}

/// Resumes `dir` and checks it ends complete with every cell at the planned `n`.
fn resume_to_the_end(dir: &Path) -> common::Outcome {
    let out = run(["run", "--resume", dir.to_str().unwrap(), "--no-progress"]).expect_code(0);
    let slots = planned_slots(dir);
    for (cell, round) in &slots {
        assert!(
            marker_path(dir, cell, *round).exists(),
            "{cell} round {round}"
        );
    }
    assert_eq!(count_markers(dir), slots.len());
    let manifest = common::json(&dir.join("manifest.json"));
    let planned = manifest["repetitions"].as_u64().unwrap();
    let n = summary_n(dir);
    assert_eq!(n.len(), manifest["cells"].as_array().unwrap().len());
    assert!(n.values().all(|&n| n == planned), "{n:?}");
    assert_eq!(manifest["status"], "complete");
    let report = text(&dir.join("report.md"));
    assert!(
        report.contains(" · complete · "),
        "report says the run is complete"
    );
    for cell in n.keys() {
        let label = cell.replace('-', "=");
        let row = format!("| {label} | {planned} |");
        assert!(report.contains(&row), "`{row}` missing from the report");
    }
    out
}

#[test]
fn a_killed_run_resumes_keeping_exactly_the_finished_repetitions() {
    let out = tempfile::tempdir().unwrap();
    let (running, dir) = start_long_run(out.path());
    wait_until("two finished repetitions", || count_markers(&dir) >= 2);
    running.signal(libc::SIGKILL);
    let killed = running.wait();
    assert_eq!(killed.status.code(), None, "ended by SIGKILL");

    let kept = completed_snapshots(&dir);
    let total = planned_slots(&dir).len();
    assert!(kept.len() >= 2);
    assert!(
        kept.len() < total,
        "the run finished before it was killed; make resume.toml bigger"
    );
    assert!(
        !dir.join("report.md").exists(),
        "a killed run writes no report"
    );

    resume_to_the_end(&dir);
    for ((cell, round), (records, marker)) in &kept {
        assert!(
            snapshot(&records_path(&dir, cell, *round)) == *records,
            "{cell} round {round}: kept records were rewritten"
        );
        assert!(
            snapshot(&marker_path(&dir, cell, *round)) == *marker,
            "{cell} round {round}: kept marker was rewritten"
        );
    }
}

#[test]
fn a_partial_records_file_without_marker_is_redone() {
    let out = tempfile::tempdir().unwrap();
    let dir = run([
        "run",
        "tests/fixtures/cli/tiny_sim.toml",
        "--out",
        out.path().to_str().unwrap(),
        "--set",
        "experiment.repetitions=3",
        "--no-progress",
    ])
    .expect_code(0)
    .run_dir();
    let slots = planned_slots(&dir);
    let (cell, round) = slots[slots.len() / 2].clone();
    let records = records_path(&dir, &cell, round);
    let whole = std::fs::read(&records).unwrap();
    // What a crash mid-repetition leaves: half the records (ending mid-line), no marker.
    std::fs::write(&records, &whole[..whole.len() / 2]).unwrap();
    std::fs::remove_file(marker_path(&dir, &cell, round)).unwrap();
    let kept = completed_snapshots(&dir);
    assert_eq!(kept.len(), slots.len() - 1);

    resume_to_the_end(&dir);
    // The simulator is seeded per (cell, round), so the redo writes the same records.
    assert_eq!(std::fs::read(&records).unwrap(), whole);
    for ((c, r), (recs, marker)) in &kept {
        assert!(snapshot(&records_path(&dir, c, *r)) == *recs, "{c} {r}");
        assert!(snapshot(&marker_path(&dir, c, *r)) == *marker, "{c} {r}");
    }
}

#[test]
fn ctrl_c_stops_with_130_and_resume_completes_the_run() {
    let out = tempfile::tempdir().unwrap();
    let (running, dir) = start_long_run(out.path());
    wait_until("a finished repetition", || count_markers(&dir) >= 1);
    running.signal(libc::SIGINT);
    let stopped = running.wait().expect_code(130);
    let hint = format!(
        "interrupted: continue with `exp run --resume {}`",
        dir.display()
    );
    assert!(stopped.stderr.contains(&hint), "{}", stopped.stderr);

    let kept = completed_snapshots(&dir);
    assert!(!kept.is_empty());
    assert!(
        kept.len() < planned_slots(&dir).len(),
        "Ctrl-C stopped the run early"
    );
    let manifest = common::json(&dir.join("manifest.json"));
    assert_eq!(manifest["status"], "interrupted");
    // The partial report is written, with the repetitions finished so far.
    let partial: u64 = summary_n(&dir).values().sum();
    assert_eq!(partial, kept.len() as u64);

    resume_to_the_end(&dir);
    for ((cell, round), (records, _)) in &kept {
        assert!(
            snapshot(&records_path(&dir, cell, *round)) == *records,
            "{cell} round {round}: kept records were rewritten"
        );
    }
}
