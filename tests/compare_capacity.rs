//! Capacity at the SLO, baseline against candidate (issue 5): real `[search]` runs on the
//! simulated engine (seeded, in virtual time, so every probe and every number repeats), one with
//! 16 sequences in flight and one with 6. Their bisections share one probe load, yet
//! `exp compare` calls the capacity drop a regression (exit 1 under `--fail-on regression`),
//! the reverse an improvement (exit 0), and two searches under different SLOs invalid (exit 2).
//! A closer pair, 16 against 12 sequences with 10 repetitions per probe (a third less
//! capacity), is a regression too: the confident brackets this comparison used before read it
//! as `inconclusive`, Δ ∈ [−58.0 %, +125 %].
//! The capacity section of the Markdown is a snapshot
//! (`UPDATE_SNAPSHOTS=1 cargo test --test compare_capacity` rewrites it).

mod common;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use common::{exp, run, spawn, text};

const SCENARIO: &str = "tests/fixtures/cli/search_sim.toml";
const SNAPSHOT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/compare/capacity.md"
);

/// The search runs, made once per test binary.
struct Runs {
    /// 16 sequences: capacity 11.05 req/s.
    base: PathBuf,
    /// 6 sequences, run with `--baseline base`: capacity 2.657 req/s.
    slow: PathBuf,
    /// 16 sequences under `ttft ≤ 300 ms`.
    lax: PathBuf,
    /// What `exp run --baseline` printed for `slow`.
    slow_stdout: String,
    /// Its exit code.
    slow_code: i32,
}

fn runs() -> &'static Runs {
    static RUNS: OnceLock<Runs> = OnceLock::new();
    RUNS.get_or_init(|| {
        let tmp = Path::new(env!("CARGO_TARGET_TMPDIR")).join("compare_capacity");
        let _ = std::fs::remove_dir_all(&tmp);
        let out = |name: &str| tmp.join(name).to_str().unwrap().to_string();
        let search = |name: &str, set: &str| {
            let args = ["search", SCENARIO, "--no-progress", "--set", set];
            run(args.iter().copied().chain(["--out", &out(name)]))
                .expect_code(0)
                .run_dir()
        };
        let base = search("base", "vars.fixed.max_num_seqs=16");
        let lax = search("lax", "slo.ttft=300ms");
        let base_arg = base.to_str().unwrap().to_string();
        let slow = run([
            "run",
            SCENARIO,
            "--no-progress",
            "--set",
            "vars.fixed.max_num_seqs=6",
            "--out",
            &out("slow"),
            "--baseline",
            &base_arg,
            "--fail-on",
            "regression",
        ]);
        Runs {
            slow: slow.run_dir(),
            slow_stdout: slow.stdout.clone(),
            slow_code: slow.code(),
            base,
            lax,
        }
    })
}

/// Searches with 10 repetitions per probe at 16 and at 12 sequences, made concurrently once
/// per test binary.
fn ten_rounds() -> &'static (PathBuf, PathBuf) {
    static RUNS: OnceLock<(PathBuf, PathBuf)> = OnceLock::new();
    RUNS.get_or_init(|| {
        let tmp = Path::new(env!("CARGO_TARGET_TMPDIR")).join("compare_capacity_10");
        let _ = std::fs::remove_dir_all(&tmp);
        let search = |seqs: u32| {
            let out = tmp.join(seqs.to_string()).to_str().unwrap().to_string();
            let set = format!("vars.fixed.max_num_seqs={seqs}");
            let args = ["search", SCENARIO, "--no-progress", "--set", &set];
            let more = ["--set", "search.repetitions=10", "--out", &out];
            spawn(exp(args.iter().chain(more.iter())))
        };
        let (base, cand) = (search(16), search(12));
        let dir = |r: common::Running| r.wait().expect_code(0).run_dir();
        (dir(base), dir(cand))
    })
}

/// `exp compare` → (exit code, stdout).
fn compare(base: &Path, cand: &Path, extra: &[&str]) -> (i32, String) {
    let (b, c) = (base.to_str().unwrap(), cand.to_str().unwrap());
    let out = run(["compare", b, c].into_iter().chain(extra.iter().copied()));
    (out.code(), out.stdout)
}

/// The capacity section: from its heading to the heading of the cell tables.
fn capacity_section(markdown: &str) -> &str {
    let start = markdown
        .find("#### Capacity at the SLO")
        .unwrap_or_else(|| panic!("no capacity section:\n{markdown}"));
    let end = markdown.find("#### Cells").unwrap();
    &markdown[start..end]
}

#[test]
fn run_with_a_baseline_calls_the_lower_capacity_a_regression() {
    let r = runs();
    assert_eq!(r.slow_code, 1, "{}", r.slow_stdout);
    assert!(
        r.slow_stdout.contains(
            "❌ regression (6 comparisons in 1 matched cell and 1 capacity at the SLO: 1 regression, 6 invalid)"
        ),
        "{}",
        r.slow_stdout
    );
    assert!(
        r.slow_stdout
            .contains("  capacity at the SLO · default: −76.4 % [−84.1 %, −60.3 %] → regression"),
        "{}",
        r.slow_stdout
    );
    let md = text(&r.slow.join("compare.md"));
    assert!(
        md.contains("| default | mean attainment ≥ 99.0 % with ttft ≤ 200 ms | 11.25 req/s [6.694, 17.92] | 2.657 req/s [2.657, 2.878] | −76.4 % [−84.1 %, −60.3 %] | **regression** (τ 5.00 %) |"),
        "{md}"
    );
    // The one load both bisections probed is still compared as an ordinary cell.
    assert!(md.contains("- ℹ️ both searches of `default` probed 5 req/s: those probes are also compared as ordinary cells"), "{md}");
    assert!(
        md.contains("| request_rate=5 | ttft.mean | 3 / 3 |"),
        "{md}"
    );
}

#[test]
fn the_reverse_pair_is_an_improvement_and_passes_fail_on_regression() {
    let r = runs();
    let (code, stdout) = compare(&r.slow, &r.base, &["--fail-on", "regression"]);
    assert_eq!(code, 0, "{stdout}");
    assert!(
        stdout.contains("**✅ improvement, no regression (6 comparisons in 1 matched cell and 1 capacity at the SLO: 1 improvement, 6 invalid)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("| +323 % [+152 %, +530 %] | **improvement** (τ 5.00 %) |"),
        "{stdout}"
    );
    let (code, _) = compare(&r.slow, &r.base, &["--fail-on", "any-change"]);
    assert_eq!(code, 1);
}

#[test]
fn searches_under_different_slos_are_not_comparable() {
    let r = runs();
    let (code, stdout) = compare(&r.base, &r.lax, &["--fail-on", "regression"]);
    assert_eq!(code, 2, "{stdout}");
    let why = "the searches' criteria differ: the [slo] bounds differ (ttft ≤ 200 ms vs ttft ≤ 300 ms); a capacity under different SLOs is not comparable";
    assert!(
        stdout.contains(&format!(
            "**⛔ invalid comparison: every verdict is invalid (e.g. the capacity of default: {why})"
        )),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("> - capacity at the SLO of `default`: {why}\n")),
        "{stdout}"
    );
}

#[test]
fn the_capacity_section_matches_the_snapshot() {
    let r = runs();
    let md = text(&r.slow.join("compare.md"));
    // The two bisections' own probes are not listed as cells missing from the other run.
    assert!(!md.contains("Not compared (in one run only)"), "{md}");
    assert!(
        md.contains("candidate probes at loads the other search did not probe are compared through the capacity, not cell by cell"),
        "{md}"
    );
    let got = capacity_section(&md);
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        std::fs::write(SNAPSHOT, got).unwrap();
    }
    let want = std::fs::read_to_string(SNAPSHOT)
        .expect("snapshot missing: run with UPDATE_SNAPSHOTS=1 to create it");
    assert_eq!(
        got, want,
        "rerun with UPDATE_SNAPSHOTS=1 if the change is intended"
    );
}

#[test]
fn a_third_less_capacity_under_ten_rounds_of_noise_is_a_regression() {
    let (base, cand) = ten_rounds();
    let (code, md) = compare(base, cand, &["--fail-on", "regression"]);
    assert_eq!(code, 1, "{md}");
    // The bisections' brackets [9.688, 10.08) and [6.759, 6.954); the curves cross at 9.959
    // and 6.889, Δ̂ = −30.8 %, and the interval of Δ stays below −5 %.
    assert!(
        md.contains("| default | mean attainment ≥ 99.0 % with ttft ≤ 200 ms | 9.959 req/s [9.004, 11.35] | 6.889 req/s [6.201, 8.175] | −30.8 % [−41.9 %, −16.1 %] | **regression** (τ 5.00 %) |"),
        "{md}"
    );
    assert!(
        md.contains("- baseline (converged): bisection bracket [9.688, 10.08); curve crossing 9.959 req/s [9.004, 11.35]; 2000 bootstrap draws of whole rounds\n"),
        "{md}"
    );
}
