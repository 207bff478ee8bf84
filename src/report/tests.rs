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
        status: "complete".into(),
        warnings: vec![],
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
            metrics: [("ttft.mean".to_string(), described)].into_iter().collect(),
        }],
        comparisons: vec![],
        checks: vec![],
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
