//! Interrupted runs (issue 2, "Done means"): a run killed outright or stopped with Ctrl-C is
//! finished by `exp run --resume <dir>`, which keeps exactly the repetitions whose completion
//! markers exist (byte for byte, untouched) and redoes the rest, partial records included.
//!
//! The kill points are random: a few per test run, each after a drawn number of finished
//! repetitions plus a drawn delay (so it lands anywhere in a repetition, or in a resume's
//! start). They are drawn from `RESUME_KILL_SEED` when it is set, else from the clock; the
//! seed is printed, so `RESUME_KILL_SEED=<seed> cargo test --test resume` replays a failure.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use common::{
    completed_snapshots, count_markers, exp, marker_path, planned_slots, records_path, run,
    snapshot, spawn, summary_n, text, wait_until,
};

/// Kills per test run (the last one followed by a resume to the end).
const KILLS: usize = 3;

/// Longest delay drawn after a kill point's repetition count is reached (a repetition of
/// `resume.toml` takes about 0.1 s in a debug build).
const MAX_DELAY_MS: u64 = 120;

/// splitmix64: enough randomness to place kill points, reproducible from its seed.
struct Draw(u64);

impl Draw {
    /// Seeded from `RESUME_KILL_SEED` or the clock, and says which (for `test`).
    fn new(test: &str) -> Draw {
        let seed = std::env::var("RESUME_KILL_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
                now.unwrap().as_nanos() as u64
            });
        println!("{test}: kill points from RESUME_KILL_SEED={seed}");
        Draw(seed)
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `lo..=hi`.
    fn between(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }
}

/// Waits until `dir` holds at least `markers` finished repetitions, then `delay_ms` more.
fn wait_for_kill_point(dir: &Path, markers: usize, delay_ms: u64) {
    wait_until(&format!("{markers} finished repetitions"), || {
        count_markers(dir) >= markers
    });
    std::thread::sleep(Duration::from_millis(delay_ms));
}

/// `exp run --resume dir`, running.
fn resume_in_background(dir: &Path) -> common::Running {
    spawn(exp([
        "run",
        "--resume",
        dir.to_str().unwrap(),
        "--no-progress",
    ]))
}

type Kept = BTreeMap<(String, u32), (common::Snapshot, common::Snapshot)>;

/// Asserts that every repetition in `before` is still in `dir`, records and marker byte for
/// byte.
fn assert_untouched(dir: &Path, before: &Kept, seed_hint: &str) {
    for ((cell, round), (records, marker)) in before {
        assert!(
            snapshot(&records_path(dir, cell, *round)) == *records,
            "{cell} round {round}: kept records were rewritten ({seed_hint})"
        );
        assert!(
            snapshot(&marker_path(dir, cell, *round)) == *marker,
            "{cell} round {round}: kept marker was rewritten ({seed_hint})"
        );
    }
}

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
    let dir = common::wait_for_run_dir(&scenario_dir);
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
fn a_run_killed_at_random_points_resumes_keeping_exactly_the_finished_repetitions() {
    let mut draw = Draw::new("kill -9");
    let hint = format!("replay with RESUME_KILL_SEED={}", draw.0);
    let out = tempfile::tempdir().unwrap();
    let (first, dir) = start_long_run(out.path());
    let total = planned_slots(&dir).len();
    // Kill points: repetitions finished by then (never so many that the run may end first),
    // in order, and a delay after that.
    let mut points: Vec<(usize, u64)> = (0..KILLS)
        .map(|_| {
            let markers = draw.between(1, total as u64 - 6) as usize;
            (markers, draw.between(0, MAX_DELAY_MS))
        })
        .collect();
    points.sort_unstable();
    println!("kill points (repetitions finished, then ms): {points:?}");
    let mut kept = Kept::new();
    let mut running = Some(first);
    for (markers, delay) in points {
        let run = running.take().unwrap_or_else(|| resume_in_background(&dir));
        wait_for_kill_point(&dir, markers, delay);
        run.signal(libc::SIGKILL);
        let killed = run.wait();
        assert_eq!(killed.status.code(), None, "ended by SIGKILL ({hint})");
        let now = completed_snapshots(&dir);
        assert!(now.len() >= markers, "{hint}");
        assert!(
            now.len() < total,
            "the run finished before it was killed; make resume.toml bigger ({hint})"
        );
        assert!(
            !dir.join("report.md").exists(),
            "a killed run writes no report"
        );
        // What was finished before this kill survived it, and the runs in between.
        assert_untouched(&dir, &kept, &hint);
        kept = now;
        // The manifest still says `running`, but its process is gone: the report says so.
        let report = common::run(["report", dir.to_str().unwrap(), "--stdout"]).expect_code(0);
        assert!(
            report.stdout.contains(" · interrupted · "),
            "a killed run reads as interrupted ({hint}):\n{}",
            report.stdout
        );
    }
    resume_to_the_end(&dir);
    assert_untouched(&dir, &kept, &hint);
    // The simulator is seeded per (cell, round): every repetition, kept or redone after a
    // kill that cut it, has exactly the records of a run that was never interrupted.
    let reference = run([
        "run",
        "tests/fixtures/cli/resume.toml",
        "--no-progress",
        "--out",
        out.path().join("reference").to_str().unwrap(),
    ])
    .expect_code(0)
    .run_dir();
    for (cell, round) in planned_slots(&dir) {
        assert!(
            std::fs::read(records_path(&dir, &cell, round)).unwrap()
                == std::fs::read(records_path(&reference, &cell, round)).unwrap(),
            "{cell} round {round}: records differ from an uninterrupted run ({hint})"
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
    let mut draw = Draw::new("Ctrl-C");
    let out = tempfile::tempdir().unwrap();
    let (running, dir) = start_long_run(out.path());
    let total = planned_slots(&dir).len() as u64;
    let (markers, delay) = (draw.between(1, total - 6), draw.between(0, MAX_DELAY_MS));
    println!("Ctrl-C after {markers} finished repetitions and {delay} ms");
    wait_for_kill_point(&dir, markers as usize, delay);
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
