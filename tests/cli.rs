//! Binary-level behaviour of `exp` (issue 2, "Done means"): validate, plan, run, report,
//! checks and exit codes, determinism and estimate, through the built binary exactly as a
//! user runs it. Resume and Ctrl-C are in `tests/resume.rs`; runs against a real HTTP server
//! in `tests/target.rs`.

mod common;

use std::net::TcpListener;
use std::path::Path;

use common::{fixture, json, planned_slots, records_path, run, summary_n, text, walk};

/// A small two-cell simulated run with three repetitions, in a fresh folder.
fn tiny_run(out: &Path, extra: &[&str]) -> common::Outcome {
    let out = out.to_str().unwrap();
    let mut args = vec![
        "run",
        "tests/fixtures/cli/tiny_sim.toml",
        "--out",
        out,
        "--set",
        "experiment.repetitions=3",
        "--no-progress",
    ];
    args.extend_from_slice(extra);
    run(args)
}

// ---- 1. validate ----

#[test]
fn validate_accepts_every_shipped_scenario_and_lists_each_file() {
    let out = run(["validate", "scenarios/"]).expect_code(0);
    let shipped: Vec<_> = walk(&common::root().join("scenarios"))
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    assert!(!shipped.is_empty());
    for path in shipped {
        let name = path.file_name().unwrap().to_str().unwrap();
        let prefix = format!("ok    scenarios/{name} (");
        assert!(
            out.stdout.lines().any(|l| l.starts_with(&prefix)),
            "`{prefix}` not listed in:\n{}",
            out.stdout
        );
    }
    assert_eq!(out.stderr, "");
}

#[test]
fn validate_pins_the_typo_hint_and_reports_every_problem_of_a_file() {
    let out = run(["validate", "tests/fixtures/cli/validate"]).expect_code(2);
    assert_eq!(
        out.stdout,
        "ok    tests/fixtures/cli/validate/good.toml (2 cells × 10 repetitions)\n"
    );
    let expected = [
        "tests/fixtures/cli/validate/several.toml:5:15: experiment.repetitions: must be >= 1 and <= 100000, got 0 (hint: repetitions per cell; 10 or more for trustworthy confidence intervals)",
        "tests/fixtures/cli/validate/several.toml:13:17: vars.fixed.prompt_tokens: must be >= 1, got -5 (hint: prompt length in tokens, e.g. `prompt_tokens = 512`)",
        "tests/fixtures/cli/validate/several.toml:18:1: workload.warmpu: unknown key (did you mean `warmup`?)",
        "tests/fixtures/cli/validate/several.toml:21:14: checks.\"ttft.p99\": \"fast please\" does not start with <, <=, > or >= (hint: write a comparison and a threshold, e.g. \"< 800ms\", \"<= 0.01\", \">= 95%\", \"> 1000\")",
        "tests/fixtures/cli/validate/typo.toml:15:1: workload.arival: unknown key (did you mean `arrival`?)",
        "error: 2 of 3 scenario files have problems",
    ];
    assert_eq!(out.stderr.lines().collect::<Vec<_>>(), expected);
}

/// Issue 12: settings accepted silently before — concurrency with Poisson arrivals, both
/// `requests` and `duration`, more warm-up than measured requests — are warned about at their
/// lines, by `exp validate` and `exp plan`, and kept in the run's report.
#[test]
fn settings_that_may_not_mean_what_was_meant_are_warned_about_at_their_lines() {
    let file = "tests/fixtures/cli/warnings.toml";
    let expected = [
        "warning: tests/fixtures/cli/warnings.toml:14:15: vars.fixed.concurrency: `concurrency` is set, but arrival = \"poisson\" sends on its own schedule and never reads it (hint: to cap the requests in flight use `workload.max_concurrency`; for a fixed number in flight use arrival = \"closed\")",
        "warning: tests/fixtures/cli/warnings.toml:15:12: vars.fixed.duration: `requests` and `duration` are both set: a repetition ends at whichever it reaches first (hint: keep one of them to say what a repetition is)",
        "warning: tests/fixtures/cli/warnings.toml:22:10: workload.warmup: `warmup` = 20 sends more warm-up requests than the 5 measured in a repetition, before each of them (hint: a few dozen warm-up requests are usually enough; warm-up is sent and discarded in every repetition)",
    ];
    let validated = run(["validate", file]).expect_code(0);
    assert_eq!(validated.stderr.lines().collect::<Vec<_>>(), expected);
    let planned = run(["plan", file]).expect_code(0);
    assert_eq!(planned.stderr.lines().collect::<Vec<_>>(), expected);
}

#[test]
fn validate_of_a_single_bad_file_or_a_missing_path_exits_2() {
    let out = run(["validate", "tests/fixtures/cli/validate/typo.toml"]).expect_code(2);
    assert!(out.stderr.contains(
        "tests/fixtures/cli/validate/typo.toml:15:1: workload.arival: unknown key (did you mean `arrival`?)\n"
    ));
    let out = run(["validate", "tests/fixtures/cli/no-such-folder"]).expect_code(2);
    assert_eq!(
        out.stderr,
        "error: tests/fixtures/cli/no-such-folder: no such file or folder\n"
    );
}

// ---- 2. plan ----

#[test]
fn plan_prints_cells_requests_and_order() {
    let out = run([
        "plan",
        "tests/fixtures/cli/tiny_sim.toml",
        "--set",
        "experiment.repetitions=3",
    ])
    .expect_code(0);
    let expected = "\
scenario  tiny_sim (tests/fixtures/cli/tiny_sim.toml)
design    2 cell(s) × 3 repetition(s), randomized-blocks order, seed 7
target    simulated engine (virtual time)

  #  cell                                  requests/rep  virtual time/rep
  0  request_rate-5                                   8  1.4 s
  1  request_rate-10                                  8  0.7 s

requests  48 measured (plus warm-up)
time      a few seconds of wall time: the simulated engine runs in virtual time (tens of thousands of requests per second; README, Performance)

order (round: cells)
    0: 1 0
    1: 0 1
    2: 1 0
";
    assert_eq!(out.stdout, expected);
}

#[test]
fn plan_sends_nothing_and_writes_nothing() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let url = format!("http://{}/v1", listener.local_addr().unwrap());
    let cwd = tempfile::tempdir().unwrap();
    let scenario = common::root().join(fixture("http_small.toml"));
    let mut cmd = common::exp(["plan".as_ref(), scenario.as_os_str()]);
    cmd.args(["--target", &url]).current_dir(cwd.path());
    let out = common::spawn(cmd).wait().expect_code(0);
    assert!(
        out.stdout
            .contains(&format!("target    openai-completions at {url}\n")),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("requests  12 measured"),
        "{}",
        out.stdout
    );
    match listener.accept() {
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
        other => panic!("exp plan connected to the target: {other:?}"),
    }
    assert!(walk(cwd.path()).is_empty(), "exp plan wrote files");
}

// ---- 3. run ----

#[test]
fn run_writes_the_whole_run_directory_and_records_the_override() {
    let out_dir = tempfile::tempdir().unwrap();
    let out = tiny_run(out_dir.path(), &[]).expect_code(0);
    let dir = out.run_dir();
    assert!(dir.starts_with(out_dir.path().join("tiny_sim")), "{dir:?}");

    assert_eq!(
        std::fs::read(dir.join("scenario.toml")).unwrap(),
        std::fs::read(common::root().join(fixture("tiny_sim.toml"))).unwrap()
    );
    let manifest = json(&dir.join("manifest.json"));
    assert_eq!(
        manifest["overrides"],
        serde_json::json!(["experiment.repetitions=3"])
    );
    assert_eq!(manifest["repetitions"], 3);
    assert_eq!(manifest["status"], "complete");

    let slots = planned_slots(&dir);
    assert_eq!(slots.len(), 6, "2 cells × 3 rounds");
    for (cell, round) in &slots {
        let records = common::records(&dir, cell, *round);
        assert_eq!(records.len(), 8, "{cell} round {round}");
        let marker = json(&common::marker_path(&dir, cell, *round));
        assert_eq!(marker["records"], 8);
        assert_eq!(marker["cell_id"], cell.as_str());
    }
    let files = walk(&dir.join("records"));
    assert_eq!(files.len(), 2 * slots.len(), "no stray files: {files:?}");

    let n = summary_n(&dir);
    assert_eq!(n.values().copied().collect::<Vec<_>>(), [3, 3]);
    let report = text(&dir.join("report.md"));
    assert!(report.contains("| Override | `--set experiment.repetitions=3` |"));
    assert!(report.contains(
        "experiment.repetitions = 3: fewer than 10 repetitions give wide confidence intervals"
    ));
    assert!(
        out.stdout
            .contains(&format!("report: {}", dir.join("report.md").display()))
    );
}

// ---- 4. checks and exit codes ----

#[test]
fn a_failing_check_exits_1_and_shows_in_terminal_and_report() {
    let out_dir = tempfile::tempdir().unwrap();
    let out = run([
        "run",
        &fixture("failing_check.toml"),
        "--out",
        out_dir.path().to_str().unwrap(),
        "--no-progress",
    ])
    .expect_code(1);
    assert!(
        out.stdout
            .contains("check FAILED: default `ttft.p99 < 1us`\n"),
        "{}",
        out.stdout
    );
    let dir = out.run_dir();
    let report = text(&dir.join("report.md"));
    assert!(report.contains("**1 of 2 checks FAILED**"), "{report}");
    let fail_row = report
        .lines()
        .find(|l| l.starts_with("| default | `ttft.p99 < 1us` |"))
        .expect("check row");
    assert!(fail_row.ends_with("| **FAIL** |"), "{fail_row}");
    assert!(report.contains("| default | `error_rate < 0.01` | 0 % | pass |"));
    // Re-rendering judges the same saved results the same way.
    run(["report", dir.to_str().unwrap()]).expect_code(1);
}

#[test]
fn a_bad_scenario_exits_2_and_creates_no_run_directory() {
    let out_dir = tempfile::tempdir().unwrap();
    let out = run([
        "run",
        "tests/fixtures/cli/validate/typo.toml",
        "--out",
        out_dir.path().to_str().unwrap(),
    ])
    .expect_code(2);
    assert_eq!(
        out.stderr,
        "error: tests/fixtures/cli/validate/typo.toml:15:1: workload.arival: unknown key (did you mean `arrival`?)\n"
    );
    assert!(walk(out_dir.path()).is_empty());
}

#[test]
fn usage_errors_exit_2() {
    let cases: &[&[&str]] = &[
        &[],
        &["frobnicate"],
        &["run"],
        &["run", "tests/fixtures/cli/tiny_sim.toml", "--bogus"],
        &["run", "--resume", "somewhere", "--set", "experiment.seed=1"],
        &["estimate", "--gpu", "h20"],
        &[
            "estimate",
            "--model",
            "qwen2.5-32b",
            "--gpu",
            "h20",
            "--prompt",
            "many",
        ],
        &["report"],
    ];
    for args in cases {
        let out = run(*args);
        assert_eq!(out.code(), 2, "exp {args:?}\n{}", out.stderr);
        assert!(!out.stderr.is_empty(), "exp {args:?} explains itself");
    }
}

#[test]
fn errors_name_their_cause_once() {
    let out = run(["report", "tests/fixtures/cli/no-such-run"]).expect_code(2);
    assert_eq!(
        out.stderr,
        "error: tests/fixtures/cli/no-such-run/manifest.json: No such file or directory (os error 2)\n"
    );
}

// ---- 5. report ----

#[test]
fn report_rerenders_identically_and_takes_templates() {
    let out_dir = tempfile::tempdir().unwrap();
    let dir = tiny_run(out_dir.path(), &[]).expect_code(0).run_dir();
    let dir_arg = dir.to_str().unwrap();
    let report = std::fs::read(dir.join("report.md")).unwrap();
    let summary = std::fs::read(dir.join("summary.json")).unwrap();

    run(["report", dir_arg]).expect_code(0);
    assert_eq!(std::fs::read(dir.join("report.md")).unwrap(), report);
    assert_eq!(std::fs::read(dir.join("summary.json")).unwrap(), summary);

    // `--stdout` writes no SVG charts, so its report links none; the rest is identical.
    let out = run(["report", dir_arg, "--stdout"]).expect_code(0);
    let written = String::from_utf8(report.clone()).unwrap();
    assert!(written.contains("](charts/ttft_p99.svg)"), "{written}");
    assert_eq!(out.stdout, without_svg_links(&written));

    let custom = run([
        "report",
        dir_arg,
        "--stdout",
        "--template",
        "tests/fixtures/cli/templates/brief.md.j2",
    ])
    .expect_code(0);
    assert_eq!(
        custom.stdout,
        "exp report: tiny_sim\n2 cells × 3 repetitions, seed 7, 6 repetition rows\n"
    );
    assert_eq!(std::fs::read(dir.join("report.md")).unwrap(), report);

    run([
        "report",
        dir_arg,
        "--template",
        "tests/fixtures/cli/templates/brief.md.j2",
    ])
    .expect_code(0);
    assert_eq!(text(&dir.join("report.md")), custom.stdout);
}

/// A report without its SVG links: each `[SVG …](charts/…)` line and the blank line before.
fn without_svg_links(report: &str) -> String {
    let mut lines: Vec<&str> = Vec::new();
    for line in report.split_inclusive('\n') {
        if line.starts_with("[SVG with") {
            lines.pop();
        } else {
            lines.push(line);
        }
    }
    lines.concat()
}

#[test]
fn a_template_with_an_undefined_variable_fails_clearly() {
    let out_dir = tempfile::tempdir().unwrap();
    let dir = tiny_run(out_dir.path(), &[]).expect_code(0).run_dir();
    let report = std::fs::read(dir.join("report.md")).unwrap();
    let out = run([
        "report",
        dir.to_str().unwrap(),
        "--template",
        "tests/fixtures/cli/templates/undefined.md.j2",
    ])
    .expect_code(2);
    assert!(
        out.stderr.starts_with(
            "error: cannot render the report: template tests/fixtures/cli/templates/undefined.md.j2: undefined value: `experiment` is undefined (in tests/fixtures/cli/templates/undefined.md.j2:2)"
        ),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains(
        "\nhint: a report template can use these top-level names: charts, checks, comparison_note, comparisons, definitions, description, design, fixed, headline, nodes, quality, repetitions, run, scenario, schema_version, search, simulated, tables, title, verdict_line, warnings\n"
    ), "{}", out.stderr);
    assert_eq!(std::fs::read(dir.join("report.md")).unwrap(), report);
}

// ---- 7. determinism ----

#[test]
fn same_seed_without_noise_gives_identical_records() {
    let (a, b, c) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    let quiet = ["--set", "target.noise_cv=0"];
    let dir_a = tiny_run(a.path(), &quiet).expect_code(0).run_dir();
    let dir_b = tiny_run(b.path(), &quiet).expect_code(0).run_dir();
    let reseeded = ["--set", "target.noise_cv=0", "--set", "experiment.seed=8"];
    let dir_c = tiny_run(c.path(), &reseeded).expect_code(0).run_dir();
    let mut differs = false;
    for (cell, round) in planned_slots(&dir_a) {
        let bytes = |d: &Path| std::fs::read(records_path(d, &cell, round)).unwrap();
        assert_eq!(bytes(&dir_a), bytes(&dir_b), "{cell} round {round}");
        differs |= bytes(&dir_a) != bytes(&dir_c);
    }
    assert!(differs, "another seed should give other records");
}

// ---- 8. estimate ----

#[test]
fn estimate_reproduces_the_seed_figures() {
    let out = run([
        "estimate",
        "--model",
        "qwen2.5-32b",
        "--gpu",
        "h20",
        "--prompt",
        "1024",
        "--output",
        "1024",
        "--method",
        "seed",
    ])
    .expect_code(0);
    for line in [
        "parameters                      31.98 B        31,984,189,440; embedding once, no norms or head",
        "prefill FLOPs                   65.28 TFLOP    batch 1, attention over the full s²",
        "TTFT (compute only)             441.10 ms      prefill FLOPs / peak",
    ] {
        assert!(
            out.stdout.lines().any(|l| l == line),
            "missing `{line}` in:\n{}",
            out.stdout
        );
    }
}

#[test]
fn estimate_with_an_unknown_gpu_lists_the_catalog() {
    let out = run(["estimate", "--model", "qwen2.5-32b", "--gpu", "h2o"]).expect_code(2);
    let lines: Vec<_> = out.stderr.lines().collect();
    assert_eq!(
        lines[0],
        "error: unknown GPU `h2o`: it is not in the built-in catalog and no file exists at that path, did you mean `H20`?"
    );
    assert!(
        lines[1].starts_with("  built-in GPUs: H20, H100-SXM, "),
        "{}",
        lines[1]
    );
    assert!(lines[1].contains("A100-80GB"), "{}", lines[1]);
}
