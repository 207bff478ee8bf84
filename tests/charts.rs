//! Charts next to the report (issue 5, "Done means"): a sweep's report holds one Mermaid
//! chart per primary metric and links an SVG under each; every SVG written parses as XML;
//! a `[search]` run writes its attainment SVG; re-running `exp report` leaves no stale
//! files; `exp report --stdout` writes none and links none.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use common::{run, text, walk};

/// The default primary metrics, in report order, with their chart titles.
const PRIMARY: [(&str, &str); 6] = [
    ("output_throughput", "Output throughput"),
    ("ttft.mean", "TTFT mean"),
    ("ttft.p99", "TTFT p99"),
    ("tpot.mean", "TPOT mean"),
    ("itl.p99", "ITL p99"),
    ("e2e.mean", "E2E mean"),
];

fn sweep(out: &Path) -> PathBuf {
    run([
        "run",
        "tests/fixtures/cli/chart_sweep.toml",
        "--out",
        out.to_str().unwrap(),
        "--no-progress",
    ])
    .expect_code(0)
    .run_dir()
}

/// Every `.svg` under `dir` with its bytes, by path relative to `dir`.
fn svgs(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    walk(dir)
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "svg"))
        .map(|p| {
            let rel = p.strip_prefix(dir).unwrap().display().to_string();
            (rel, std::fs::read(&p).unwrap())
        })
        .collect()
}

/// Parses an SVG with roxmltree and checks its root; returns its `<text>` contents.
fn check_svg(path: &str, bytes: &[u8]) -> Vec<String> {
    let text = std::str::from_utf8(bytes).unwrap();
    let doc = roxmltree::Document::parse(text).unwrap_or_else(|e| panic!("{path}: {e}"));
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "svg", "{path}");
    for a in ["width", "height", "viewBox"] {
        let v = root
            .attribute(a)
            .unwrap_or_else(|| panic!("{path}: no {a}"));
        assert!(!v.is_empty(), "{path}: empty {a}");
    }
    doc.descendants()
        .filter(|n| n.has_tag_name("text"))
        .map(|n| n.text().unwrap_or("").trim().to_string())
        .collect()
}

/// The relative targets of every `](charts/….svg)` link in a report.
fn links(report: &str) -> Vec<String> {
    report
        .match_indices("](charts/")
        .map(|(i, _)| {
            let rest = &report[i + 2..];
            rest[..rest.find(')').unwrap()].to_string()
        })
        .collect()
}

#[test]
fn a_sweep_report_has_a_mermaid_chart_and_a_valid_svg_per_primary_metric() {
    let out = tempfile::tempdir().unwrap();
    let dir = sweep(out.path());
    let report = text(&dir.join("report.md"));
    assert_eq!(
        report.matches("```mermaid").count(),
        PRIMARY.len(),
        "{report}"
    );
    for (_, title) in PRIMARY {
        assert_eq!(
            report
                .matches(&format!("    title \"{title} by request_rate\""))
                .count(),
            1,
            "{title}"
        );
    }
    // One SVG per primary metric and a frontier per latency metric, each linked once.
    let linked = links(&report);
    let mut want: Vec<String> = PRIMARY
        .iter()
        .map(|(m, _)| format!("charts/{}.svg", m.replace('.', "_")))
        .collect();
    want.extend(
        PRIMARY[1..]
            .iter()
            .map(|(m, _)| format!("charts/frontier_{}.svg", m.replace('.', "_"))),
    );
    let mut sorted = linked.clone();
    sorted.sort();
    want.sort();
    assert_eq!(sorted, want);
    let files = svgs(&dir);
    let written: Vec<&String> = files.keys().collect();
    assert_eq!(
        written,
        want.iter().collect::<Vec<_>>(),
        "exactly the linked SVGs exist"
    );
    for (path, bytes) in &files {
        check_svg(path, bytes);
    }
    // The TTFT p99 chart: both series in its legend, the log x axis labelled by rate.
    let texts = check_svg("ttft_p99", &files["charts/ttft_p99.svg"]);
    for t in [
        "prompt_tokens=32",
        "prompt_tokens=256",
        "request_rate (log scale)",
        "TTFT p99 (ms)",
    ] {
        assert!(texts.iter().any(|x| x == t), "{t} in {texts:?}");
    }
}

#[test]
fn rerunning_report_replaces_the_charts_and_leaves_no_stale_file() {
    let out = tempfile::tempdir().unwrap();
    let dir = sweep(out.path());
    let dir_arg = dir.to_str().unwrap();
    let first = svgs(&dir);
    let stale = dir.join("charts").join("tpot_p50.svg");
    std::fs::write(&stale, "<svg/>").unwrap();

    run(["report", dir_arg]).expect_code(0);
    run(["report", dir_arg]).expect_code(0);
    assert!(
        !stale.exists(),
        "an SVG the report no longer draws is removed"
    );
    assert_eq!(svgs(&dir), first, "same charts, byte for byte");
    let leftovers: Vec<PathBuf> = walk(&dir.join("charts"))
        .into_iter()
        .filter(|p| p.extension().is_none_or(|e| e != "svg"))
        .collect();
    assert!(leftovers.is_empty(), "no temporary files: {leftovers:?}");

    // `--stdout` touches no file and links no SVG.
    std::fs::remove_dir_all(dir.join("charts")).unwrap();
    let printed = run(["report", dir_arg, "--stdout"]).expect_code(0).stdout;
    assert_eq!(printed.matches("```mermaid").count(), PRIMARY.len());
    assert!(!printed.contains("charts/"), "{printed}");
    assert!(!dir.join("charts").exists());
}

#[test]
fn a_search_run_writes_its_attainment_chart() {
    let out = tempfile::tempdir().unwrap();
    let dir = run([
        "search",
        "tests/fixtures/cli/search_sim.toml",
        "--no-progress",
        "--out",
        out.path().to_str().unwrap(),
        // Fewer requests and repetitions than the fixture: a quick search is enough here.
        "--set",
        "vars.fixed.requests=40",
        "--set",
        "search.repetitions=2",
    ])
    .expect_code(0)
    .run_dir();
    let report = text(&dir.join("report.md"));
    assert_eq!(links(&report), ["charts/attainment.svg"]);
    assert!(report.contains("\n[SVG with the 95 % CI band](charts/attainment.svg)\n"));
    let files = svgs(&dir);
    assert_eq!(files.keys().collect::<Vec<_>>(), ["charts/attainment.svg"]);
    let texts = check_svg("attainment", &files["charts/attainment.svg"]);
    assert!(texts.iter().any(|t| t == "target 99.0 %"), "{texts:?}");
    assert!(
        texts.iter().any(|t| t.starts_with("capacity ")),
        "{texts:?}"
    );
}
