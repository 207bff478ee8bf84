use crate::metrics::registry::k;
use std::collections::BTreeMap;

use super::*;
use crate::analysis::{Analysis, CellAnalysis, CellResults};
use crate::scenario::model::RunOrder;
use crate::store::{Manifest, SCHEMA_VERSION};

fn model() -> ReportModel {
    let text = "[experiment]\nname = \"demo\"\ndescription = \"A <b>demo</b> & test\"\n[target]\nkind = \"sim\"\nmodel_config = \"llama-3.1-8b\"\ngpu = \"h100-sxm\"\n[vars.fixed]\nrequests = 5\nrequest_rate = 1\n";
    let scenario = crate::scenario::parse(text, std::path::Path::new("demo.toml"), &[]).unwrap();
    let manifest = Manifest {
        schema_version: SCHEMA_VERSION,
        exp_version: "0.1.0".into(),
        git_revision: None,
        host: None,
        run_id: "run-1".into(),
        scenario_name: "demo".into(),
        scenario_file: "demo.toml".into(),
        scenario_sha256: "abcdef0123456789".into(),
        overrides: vec!["experiment.repetitions=3".into()],
        target_override: None,
        seed: 7,
        repetitions: 3,
        order: RunOrder::RandomizedBlocks,
        executor: "simulated engine".into(),
        cells: vec![],
        schedule: vec![],
        started: "2026-11-21T00:00:00Z".into(),
        ended: None,
        status: crate::store::RunStatus::Complete,
        warnings: vec![],
        launches: vec![],
        adaptive: None,
        sequential: None,
        session: None,
        baseline: None,
        node: None,
        shard: None,
        merged: Vec::new(),
        client: None,
        merged_clients: Vec::new(),
    };
    let cells = vec![CellResults {
        id: "default".into(),
        vars: BTreeMap::new(),
        swept: BTreeMap::new(),
        reps: vec![],
    }];
    let described = crate::stats::describe(&[0.1, 0.12, 0.11]).unwrap();
    let analysis = Analysis {
        cells: vec![CellAnalysis {
            id: "default".into(),
            label: "default".into(),
            n: 3,
            metrics: [(k("ttft.mean"), described)].into_iter().collect(),
        }],
        comparisons: vec![],
        checks: vec![],
        quality: vec![],
        warnings: vec!["only 3 repetitions".into()],
    };
    build(
        &manifest,
        &scenario,
        &cells,
        &analysis,
        Some("llama on h100".into()),
    )
}

#[test]
fn the_default_template_renders_markdown_without_html_escaping() {
    let text = render(&model(), None).unwrap();
    assert!(text.starts_with("# exp report: demo\n"), "{text}");
    assert!(
        text.contains("A <b>demo</b> & test"),
        "Markdown must not be HTML-escaped"
    );
    assert!(
        text.contains("| default | 3 | 110 ms ± 10.0 ms | [85.2 ms, 135 ms] | 9.09 % |"),
        "{text}"
    );
    assert!(text.contains("`--set experiment.repetitions=3`"));
    assert!(text.contains("- ⚠ only 3 repetitions"));
    assert!(text.contains("**Simulated results.**"));
    assert!(text.contains("type 7 (linear interpolation, as NumPy)"));
}

#[test]
fn a_custom_template_with_an_undefined_variable_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mine.md.j2");
    std::fs::write(&path, "# {{ title }}\n{{ no_such_field }}\n").unwrap();
    let err = render(&model(), Some(&path)).unwrap_err().to_string();
    assert!(err.contains("undefined"), "{err}");
    assert!(err.contains("mine.md.j2"), "{err}");

    std::fs::write(&path, "{{ title }} · {{ run.id }} · {{ design.seed }}").unwrap();
    assert_eq!(
        render(&model(), Some(&path)).unwrap(),
        "exp report: demo · run-1 · 7"
    );
}

/// The report model of a sweep over `prompt_tokens` × `request_rate` where repetition r of a
/// cell has TTFT = (rate × 10 ms + prompt / 10 µs) × (1 + r / 1000) and throughput =
/// 100 × rate × (1 + r / 1000) tok/s.
fn sweep_model(exclude: &str) -> ReportModel {
    let text = format!(
        "[experiment]\nname = \"sweep\"\ndescription = \"d\"\nrepetitions = 5\n[target]\nkind = \"sim\"\nmodel_config = \"llama-3.1-8b\"\ngpu = \"h100-sxm\"\n[vars.fixed]\nrequests = 5\n[vars.sweep]\nprompt_tokens = [100, 1000]\nrequest_rate = [1, 2, 4]\n[vars]\nexclude = [{exclude}]\n[analysis]\nprimary = [\"ttft.mean\", \"output_throughput\"]\n"
    );
    let scenario = crate::scenario::parse(&text, std::path::Path::new("s.toml"), &[]).unwrap();
    let cells: Vec<CellResults> = crate::matrix::expand(&scenario)
        .unwrap()
        .into_iter()
        .map(|c| {
            let rate = c.vars["request_rate"].as_f64().unwrap();
            let prompt = c.vars["prompt_tokens"].as_f64().unwrap();
            let reps = (0..5)
                .map(|round| {
                    let mut summary = crate::metrics::RepetitionSummary::default();
                    let jitter = 1.0 + 0.001 * f64::from(round);
                    summary
                        .values
                        .insert(k("ttft.mean"), (rate * 0.01 + prompt * 1e-5) * jitter);
                    summary
                        .values
                        .insert(k("output_throughput"), 100.0 * rate * jitter);
                    crate::analysis::RepResult {
                        round,
                        order: round as usize,
                        summary,
                        wall_seconds: 1.0,
                        client_cpu_seconds: None,
                    }
                })
                .collect();
            CellResults {
                id: c.id.to_string(),
                vars: c.vars,
                swept: c.swept,
                reps,
            }
        })
        .collect();
    let analysis = crate::analysis::analyze(&scenario, &cells);
    let mut m = model();
    let full = build(&manifest_of(&m), &scenario, &cells, &analysis, None);
    m.charts = full.charts;
    m.plot = full.plot;
    m
}

/// The rendered report of [`sweep_model`], without SVGs.
fn sweep_report(exclude: &str) -> String {
    render(&sweep_model(exclude), None).unwrap()
}

fn manifest_of(m: &ReportModel) -> Manifest {
    Manifest {
        schema_version: SCHEMA_VERSION,
        exp_version: m.run.exp_version.clone(),
        git_revision: None,
        host: None,
        run_id: m.run.id.clone(),
        scenario_name: "sweep".into(),
        scenario_file: "s.toml".into(),
        scenario_sha256: "00".into(),
        overrides: vec![],
        target_override: None,
        seed: 1,
        repetitions: 5,
        order: RunOrder::RandomizedBlocks,
        executor: "sim".into(),
        cells: vec![],
        schedule: vec![],
        started: m.run.started.clone(),
        ended: None,
        status: crate::store::RunStatus::Complete,
        warnings: vec![],
        launches: vec![],
        adaptive: None,
        sequential: None,
        session: None,
        baseline: None,
        node: None,
        shard: None,
        merged: Vec::new(),
        client: None,
        merged_clients: Vec::new(),
    }
}

#[test]
fn a_sweep_gets_one_mermaid_chart_per_primary_metric_over_the_load_variable() {
    let text = sweep_report("");
    assert_eq!(text.matches("```mermaid").count(), 2, "{text}");
    let want = r##"```mermaid
---
config:
  themeVariables:
    xyChart:
      plotColorPalette: "#1f77b4, #ff7f0e"
---
xychart-beta
    title "TTFT mean by request_rate"
    x-axis "request_rate" ["1", "2", "4"]
    y-axis "TTFT mean (ms)" 0 --> 60
    line [11.02, 21.04, 41.08]
    line [20.04, 30.06, 50.1]
```

Lines: 🟦 `prompt_tokens=100` · 🟧 `prompt_tokens=1000`
"##;
    assert!(text.contains(want), "{text}");
    assert!(
        text.contains("    title \"Output throughput by request_rate\"\n    x-axis \"request_rate\" [\"1\", \"2\", \"4\"]\n    y-axis \"Output throughput (tok/s)\" 0 --> 500\n"),
        "{text}"
    );
}

#[test]
fn a_line_with_an_excluded_cell_gets_its_own_chart() {
    let text = sweep_report("\"prompt_tokens == 1000 and request_rate == 4\"");
    assert_eq!(text.matches("```mermaid").count(), 4, "{text}");
    assert!(
        text.contains("    title \"TTFT mean by request_rate (prompt_tokens=1000)\"\n    x-axis \"request_rate\" [\"1\", \"2\"]\n"),
        "{text}"
    );
}

#[test]
fn a_single_cell_report_has_no_charts() {
    let text = render(&model(), None).unwrap();
    assert!(!text.contains("```mermaid") && !text.contains("## Charts"));
}

#[test]
fn the_chart_model_carries_each_mean_with_the_t_interval_of_its_repetitions() {
    let m = sweep_model("");
    let plot = m.plot.as_ref().unwrap();
    assert_eq!(plot.x_title, "request_rate");
    let labels: Vec<&str> = plot.levels.iter().map(|l| l.label.as_str()).collect();
    assert_eq!(labels, ["1", "2", "4"]);
    assert_eq!(plot.numeric_levels(), Some(vec![1.0, 2.0, 4.0]));
    let ttft = plot.metric(k("ttft.mean")).unwrap();
    assert_eq!(ttft.series[1].name, "prompt_tokens=1000");
    // prompt 1000, rate 4: base 0.05 s, repetitions base × (1, 1.001, …, 1.004).
    let base = 4.0 * 0.01 + 1000.0 * 1e-5;
    let reps: Vec<f64> = (0..5)
        .map(|r| base * (1.0 + 0.001 * f64::from(r)))
        .collect();
    let mean = reps.iter().sum::<f64>() / 5.0;
    let sd = (reps.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / 4.0).sqrt();
    let t_975_4 = 2.776_445_105_197_799; // Student t, 97.5th percentile, 4 degrees of freedom
    let half = t_975_4 * sd / 5f64.sqrt();
    let point = ttft.series[1].points[2].unwrap();
    assert_eq!(point.n, 5);
    assert!((point.mean - mean).abs() < 1e-15);
    let (lo, hi) = point.ci.unwrap();
    assert!(
        (lo - (mean - half)).abs() < 1e-12,
        "{lo} vs {}",
        mean - half
    );
    assert!(
        (hi - (mean + half)).abs() < 1e-12,
        "{hi} vs {}",
        mean + half
    );
    // output_throughput is primary here, so it is not added a second time.
    assert_eq!(plot.metrics.len(), 2);
    assert!(plot.metrics.iter().all(|m| m.primary));
}

#[test]
fn each_svg_is_linked_right_under_its_mermaid_chart() {
    let mut m = sweep_model("");
    let svgs = svg::render(&mut m).unwrap();
    let names: Vec<&str> = svgs.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "ttft_mean.svg",
            "frontier_ttft_mean.svg",
            "output_throughput.svg"
        ]
    );
    for f in &svgs {
        roxmltree::Document::parse(&f.text).unwrap_or_else(|e| panic!("{}: {e}", f.name));
    }
    let text = render(&m, None).unwrap();
    assert!(text.contains(
        "Lines: 🟦 `prompt_tokens=100` · 🟧 `prompt_tokens=1000`\n\n[SVG with 95 % CI error bars](charts/ttft_mean.svg) · [latency–throughput frontier (SVG)](charts/frontier_ttft_mean.svg)\n\n```mermaid"
    ), "{text}");
    assert!(
        text.contains("[SVG with 95 % CI error bars](charts/output_throughput.svg)\n"),
        "{text}"
    );
    assert_eq!(text.matches("](charts/").count(), 3);
    assert!(!sweep_report("").contains("charts/"), "no SVGs, no links");
    // A user's template gets the paths too.
    let mine =
        "{% for c in charts %}{{ c.metric }}: {{ c.svg }} {{ c.frontier_svg }}\n{% endfor %}";
    assert_eq!(
        render_source("mine.md.j2", mine, &m).unwrap(),
        "ttft.mean: charts/ttft_mean.svg charts/frontier_ttft_mean.svg\noutput_throughput: charts/output_throughput.svg None\n"
    );
}

#[test]
fn an_excluded_cell_keeps_one_svg_per_metric_linked_from_its_first_chart() {
    let mut m = sweep_model("\"prompt_tokens == 1000 and request_rate == 4\"");
    let svgs = svg::render(&mut m).unwrap();
    assert_eq!(svgs.len(), 3);
    let linked: Vec<(&str, Option<&str>)> = m
        .charts
        .iter()
        .map(|c| (c.metric.as_str(), c.svg.as_deref()))
        .collect();
    assert_eq!(
        linked,
        [
            ("ttft.mean", Some("charts/ttft_mean.svg")),
            ("ttft.mean", None),
            ("output_throughput", Some("charts/output_throughput.svg")),
            ("output_throughput", None),
        ]
    );
}
