//! Adaptive repetitions (issue 5): `repetitions = { min, max, target_ci }` adds whole rounds
//! in the randomized-block order of a fixed run until every primary metric's CI is precise
//! enough, records every look and the stop reason in the manifest, says why in the report,
//! and `--resume` continues the same decision.

mod common;

use std::path::Path;

use common::{exp, json, marker_path, records_path, run, text};

const SCENARIO: &str = "tests/fixtures/cli/adaptive_sim.toml";

fn run_adaptive(out: &Path) -> std::path::PathBuf {
    run([
        "run",
        SCENARIO,
        "--no-progress",
        "--out",
        out.to_str().unwrap(),
    ])
    .expect_code(0)
    .run_dir()
}

/// The (round, cell) order `exp plan` prints for a fixed number of repetitions.
fn fixed_order(rounds: u32) -> Vec<(u64, u64)> {
    let out = exp([
        "plan",
        SCENARIO,
        "--set",
        &format!("experiment.repetitions={rounds}"),
    ])
    .output()
    .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    let order = stdout.split("order (round: cells)\n").nth(1).unwrap();
    order
        .lines()
        .flat_map(|line| {
            let (round, cells) = line.trim().split_once(": ").unwrap();
            let round: u64 = round.parse().unwrap();
            cells
                .split(' ')
                .map(move |c| (round, c.parse::<u64>().unwrap()))
                .collect::<Vec<_>>()
        })
        .collect()
}

fn schedule(manifest: &serde_json::Value) -> Vec<(u64, u64)> {
    manifest["schedule"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s[0].as_u64().unwrap(), s[1].as_u64().unwrap()))
        .collect()
}

#[test]
fn rounds_are_added_until_precise_and_the_report_says_why_it_stopped() {
    let out = tempfile::tempdir().unwrap();
    let dir = run_adaptive(out.path());
    let manifest = json(&dir.join("manifest.json"));
    let adaptive = &manifest["adaptive"];
    // Seed 11: after 3 rounds add 4, after 7 add 4, then every primary metric within ±4 %
    // after 11.
    let looks: Vec<(u64, u64)> = adaptive["looks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| (l["rounds"].as_u64().unwrap(), l["added"].as_u64().unwrap()))
        .collect();
    assert_eq!(looks, vec![(3, 4), (7, 4), (11, 0)]);
    assert_eq!(adaptive["stop"]["reason"], "precision");
    assert_eq!(adaptive["stop"]["rounds"], 11);
    assert_eq!(manifest["repetitions"], 11);
    // Added rounds follow the same randomized-block order a fixed 11-round run would use.
    assert_eq!(schedule(&manifest), fixed_order(11));
    assert!(common::summary_n(&dir).values().all(|&n| n == 11));
    let report = text(&dir.join("report.md"));
    assert!(
        report.contains("| Repetitions | adaptive, 3 to 12 rounds until every primary metric's 95 % CI is within ±4.00 % of its mean: precision reached after 11 rounds |"),
        "{report}"
    );
    let summary = json(&dir.join("summary.json"));
    assert_eq!(summary["adaptive"]["stop"]["reason"], "precision");
}

#[test]
fn a_resumed_adaptive_run_continues_the_same_decision() {
    let out = tempfile::tempdir().unwrap();
    let dir = run_adaptive(out.path());
    let finished = json(&dir.join("manifest.json"));
    let cells: Vec<String> = finished["cells"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_string())
        .collect();
    let original = |cell: &str, round: u32| std::fs::read(records_path(&dir, cell, round)).unwrap();
    let kept_later: Vec<Vec<u8>> = (4..11).map(|r| original(&cells[0], r)).collect();

    // What an interruption during the second batch leaves: the first look recorded (7 rounds
    // planned), rounds 0–3 done in one cell and 0–2 in the other, no stop, no report.
    let mut manifest = finished.clone();
    manifest["repetitions"] = 7.into();
    manifest["schedule"] =
        serde_json::Value::Array(finished["schedule"].as_array().unwrap()[..14].to_vec());
    manifest["adaptive"]["looks"] =
        serde_json::Value::Array(finished["adaptive"]["looks"].as_array().unwrap()[..1].to_vec());
    manifest["adaptive"]["stop"] = serde_json::Value::Null;
    manifest["status"] = "interrupted".into();
    std::fs::write(
        dir.join("manifest.json"),
        serde_json::to_vec_pretty(&manifest).unwrap(),
    )
    .unwrap();
    for (i, cell) in cells.iter().enumerate() {
        for round in (4 - i as u32)..11 {
            std::fs::remove_file(marker_path(&dir, cell, round)).unwrap();
            std::fs::remove_file(records_path(&dir, cell, round)).unwrap();
        }
    }
    std::fs::remove_file(dir.join("report.md")).unwrap();

    let resumed = run(["run", "--resume", dir.to_str().unwrap(), "--no-progress"]).expect_code(0);
    assert!(
        resumed
            .stderr
            .contains("adaptive repetitions: precision reached after 11 rounds"),
        "{}",
        resumed.stderr
    );
    let after = json(&dir.join("manifest.json"));
    assert_eq!(after["adaptive"], finished["adaptive"]);
    assert_eq!(after["schedule"], finished["schedule"]);
    assert_eq!(after["status"], "complete");
    for (round, bytes) in (4..11).zip(&kept_later) {
        assert!(
            &original(&cells[0], round) == bytes,
            "round {round} was redone differently"
        );
    }
}
