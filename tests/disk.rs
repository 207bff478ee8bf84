//! Nothing is lost (issue 6): an output folder that cannot be created, a file-size limit and a
//! full disk each stop the run with a message that names the path, keep the repetitions
//! already complete, and leave a run directory that `exp report` reads and
//! `exp run --resume` finishes. Summaries and markers are written atomically (tmp + rename,
//! see `store/files.rs`); the kill -9 and Ctrl-C cases are in `tests/resume.rs`.

mod common;

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::time::Duration;

use common::{exp, run, spawn};
use exp::plan::Plan;
use exp::run::RunError;
use exp::serve::{self, FixedTiming};
use exp::store::{RunDir, StoreError};

#[test]
fn an_out_folder_that_cannot_be_created_exits_2_naming_it() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("a-file");
    std::fs::write(&file, "not a folder").unwrap();
    let out = file.join("reports");
    let o = run([
        "run",
        "tests/fixtures/cli/tiny_sim.toml",
        "--out",
        out.to_str().unwrap(),
        "--no-progress",
    ])
    .expect_code(2);
    let first = o.stderr.lines().next().unwrap_or_default();
    assert!(
        first.starts_with(&format!(
            "error: cannot create the run directory (see --out): {}/tiny_sim/",
            out.display()
        )) && first.ends_with(": Not a directory (os error 20)"),
        "{}",
        o.stderr
    );
    assert!(!o.stderr.contains("run directory: "), "{}", o.stderr);
}

/// `exp run` of `two_sizes.toml` with every file limited to `bytes` (RLIMIT_FSIZE).
fn run_with_file_size_limit(out: &Path, bytes: u64) -> common::Outcome {
    let mut cmd = exp([
        "run",
        "tests/fixtures/cli/two_sizes.toml",
        "--out",
        out.to_str().unwrap(),
        "--no-progress",
    ]);
    // SAFETY: setrlimit is async-signal-safe and touches only the child about to exec.
    unsafe {
        cmd.pre_exec(move || {
            let limit = libc::rlimit {
                rlim_cur: bytes,
                rlim_max: bytes,
            };
            if libc::setrlimit(libc::RLIMIT_FSIZE, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    spawn(cmd).wait()
}

#[test]
fn a_file_size_limit_stops_the_run_naming_the_file_and_keeps_what_is_complete() {
    let tmp = tempfile::tempdir().unwrap();
    // Between the small cell's records (~6 KB) and the big one's (~120 KB).
    let o = run_with_file_size_limit(tmp.path(), 32 * 1024);
    // Before exp ignored SIGXFSZ, the kernel killed it here with no message (status 153).
    let o = o.expect_code(2);
    let dir = o.run_dir();
    let records = dir.join("records/output_tokens-256/rep-000.jsonl");
    let want = format!(
        "error: cannot write results: {}: File too large (os error 27); the run stopped: \
         repetitions marked complete are kept in {1} (fix the cause, then finish it with \
         `exp run --resume {1}`)",
        records.display(),
        dir.display()
    );
    assert_eq!(o.stderr.lines().last(), Some(want.as_str()), "{}", o.stderr);
    // Exactly the first slot (small cell, round 0) is complete; the failed one has no marker.
    assert_eq!(common::count_markers(&dir), 1);
    assert!(common::marker_path(&dir, "output_tokens-4", 0).exists());
    assert!(!common::marker_path(&dir, "output_tokens-256", 0).exists());
    assert_eq!(
        status(&dir),
        "failed",
        "the manifest says the run stopped on an error"
    );

    // What was kept is reported...
    let report = run(["report", dir.to_str().unwrap()]).expect_code(0);
    assert!(report.stdout.contains("report: "), "{}", report.stdout);
    assert_eq!(common::summary_n(&dir)["output_tokens-4"], 1);
    // ...and, the limit gone, the run resumes to the end.
    run(["run", "--resume", dir.to_str().unwrap(), "--no-progress"]).expect_code(0);
    assert_eq!(common::count_markers(&dir), 4);
    assert_eq!(common::summary_n(&dir)["output_tokens-256"], 2);
    assert_eq!(status(&dir), "complete");
}

/// `status` in the run's `manifest.json`.
fn status(dir: &std::path::Path) -> String {
    let text = std::fs::read(dir.join("manifest.json")).unwrap();
    let manifest: serde_json::Value = serde_json::from_slice(&text).unwrap();
    manifest["status"].as_str().unwrap().to_string()
}

/// A run against exp's fixed server whose records file is `/dev/full`: the first flush fails
/// with ENOSPC, and the repetition stops sending at once instead of running to its end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_stops_a_repetition_at_once_and_names_the_file() {
    let srv = serve::spawn_fixed(
        "127.0.0.1:0".parse().unwrap(),
        FixedTiming::new(Duration::from_millis(1), Duration::from_micros(100)),
    )
    .await
    .unwrap();
    let planned = 20_000;
    let text = format!(
        r#"
[experiment]
name = "full_disk"
description = "records go to /dev/full"
repetitions = 2
[target]
kind = "openai-completions"
base_url = "{}"
model = "exp-fixed"
[vars.fixed]
requests = {planned}
concurrency = 16
output_tokens = 4
[workload]
arrival = "closed"
warmup = 0
"#,
        srv.base_url()
    );
    let out = tempfile::tempdir().unwrap();
    let scenario = exp::scenario::parse(&text, Path::new("full.toml"), &[]).unwrap();
    let plan = Plan::build(scenario).unwrap();
    let manifest = exp::app::new_manifest(&plan, Path::new("full.toml"), &Default::default());
    let dir = RunDir::create(out.path(), &manifest, &plan.scenario.text).unwrap();
    let cell_dir = dir.root().join("records/default");
    std::fs::create_dir_all(&cell_dir).unwrap();
    let records = cell_dir.join("rep-000.jsonl");
    std::os::unix::fs::symlink("/dev/full", &records).unwrap();

    let err = exp::run::execute(&plan, &dir, false).await.unwrap_err();
    let RunError::Store(StoreError::Io { path, source }) = &err else {
        panic!("expected a store error, got {err}");
    };
    assert_eq!(path, &records);
    assert_eq!(source.raw_os_error(), Some(libc::ENOSPC), "{err}");
    assert!(
        err.to_string().starts_with("cannot write results: "),
        "{err}"
    );
    let sent = srv.truth().len();
    assert!(
        sent < planned / 2,
        "the repetition went on after its records could not be written: {sent} of {planned} sent"
    );
    assert!(dir.completed().unwrap().is_empty());
}
