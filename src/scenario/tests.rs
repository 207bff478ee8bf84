//! Scenario loading as a specification: every `fixtures/scenarios/ok/*.toml` loads, and every
//! `fixtures/scenarios/bad/<name>.toml` (one mistake each) fails with exactly the messages in
//! `<name>.expected` (`$FILE` stands for the fixture's path, `$DIR` for its directory). A
//! `<name>.set` file lists
//! `--set` overrides, one per line. The fixtures pass through what `exp validate` runs: matrix
//! problems (too many cells, every cell excluded, a baseline that picks no cell) are found by
//! `Plan::build`, and dataset and trace problems (a line that is not JSON, a file that is not
//! UTF-8) by the same pre-flight check `exp run` makes before writing anything; their data
//! files live in `bad/data/`.

use crate::metrics::registry::k;
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::*;
use crate::backend::Protocol;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/scenarios");

fn fixture(rel: &str) -> PathBuf {
    Path::new(FIXTURES).join(rel)
}

fn overrides_for(toml: &Path) -> Vec<Override> {
    let set = toml.with_extension("set");
    let Ok(text) = std::fs::read_to_string(&set) else {
        return vec![];
    };
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| Override::parse(l).unwrap())
        .collect()
}

/// The plan of a scenario that loads: its matrix expanded and every cell resolved.
fn planned(s: &Scenario) -> crate::plan::Plan {
    crate::plan::Plan::build(s.clone()).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn every_ok_fixture_loads_plans_and_passes_preflight() {
    let files = discover(&fixture("ok"));
    assert!(files.len() >= 5, "{files:?}");
    for path in files {
        let s = load(&path).unwrap_or_else(|e| panic!("{}:\n{e}", path.display()));
        // Plans every cell and reads every dataset and trace file the fixture names.
        assert_eq!(
            preflight_text(&path, s),
            "(loaded without errors)",
            "{}",
            path.display()
        );
    }
}

/// What `exp validate` and `exp run` say about a scenario that loads: the problems found by
/// expanding its matrix and checking its cells, then by reading its dataset and trace files
/// before a run starts.
fn preflight_text(path: &Path, scenario: Scenario) -> String {
    let plan = match crate::plan::Plan::build(scenario) {
        Ok(plan) => plan,
        Err(e) => return e.to_string(),
    };
    match crate::run::preflight(&plan) {
        Ok(()) => "(loaded without errors)".to_string(),
        Err(e) => format!("{}: {e}", path.display()),
    }
}

/// Regression: dataset and trace paths were resolved against the scenario's folder twice, so
/// `exp run tests/fixtures/scenarios/ok/trace.toml` from the crate root looked for
/// `tests/fixtures/scenarios/ok/tests/fixtures/scenarios/ok/traces/tiny.jsonl`.
#[test]
fn datasets_of_a_scenario_given_by_a_relative_path_are_found() {
    for name in ["trace.toml", "closed_shared_prefix.toml", "sweep.toml"] {
        let rel = Path::new("tests/fixtures/scenarios/ok").join(name);
        assert!(rel.is_relative() && rel.exists(), "{}", rel.display());
        let scenario = load(&rel).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(preflight_text(&rel, scenario), "(loaded without errors)");
    }
}

#[test]
fn every_bad_fixture_fails_with_its_expected_messages() {
    let files = discover(&fixture("bad"));
    assert!(files.len() >= 20, "{files:?}");
    let mut failures = vec![];
    for path in files {
        let expected_path = path.with_extension("expected");
        let expected = std::fs::read_to_string(&expected_path)
            .unwrap_or_else(|_| panic!("missing {}", expected_path.display()))
            .replace("$FILE", &path.display().to_string())
            .replace("$DIR", &path.parent().unwrap().display().to_string());
        let got = match load_with_overrides(&path, &overrides_for(&path)) {
            Ok(s) => preflight_text(&path, s),
            Err(e) => e.to_string(),
        };
        if got.trim_end() != expected.trim_end() {
            failures.push(format!(
                "{}\n  expected: {}\n  got:      {}",
                path.display(),
                expected.trim_end(),
                got
            ));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn a_typo_names_the_line_and_suggests_the_fix() {
    let path = fixture("bad/unknown_key_typo.toml");
    let errs = load(&path).unwrap_err().0;
    assert_eq!(errs.len(), 1);
    assert_eq!(errs[0].line.map(NonZeroU32::get), Some(14));
    assert_eq!(errs[0].col.map(NonZeroU32::get), Some(1));
    assert!(
        errs[0].message.contains("did you mean `arrival`?"),
        "{}",
        errs[0]
    );
}

#[test]
fn all_problems_in_a_file_are_reported() {
    let text = "[experiment]\nname = \"Bad Name\"\ndescription = \"\"\nrepetitions = 0\n\n[target]\nkind = \"simm\"\n";
    let errs = parse(text, Path::new("x.toml"), &[]).unwrap_err().0;
    let keys: Vec<&str> = errs.iter().map(|e| e.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "experiment.name",
            "experiment.description",
            "experiment.repetitions",
            "target.kind"
        ]
    );
    assert!(
        errs[3].message.contains("did you mean `sim`?"),
        "{}",
        errs[3]
    );
}

#[test]
fn target_kind_hints_list_every_kind_in_order() {
    let missing = parse("[target]\n", Path::new("x.toml"), &[]).unwrap_err().0;
    let kind = missing.iter().find(|e| e.key == "target.kind").unwrap();
    assert_eq!(
        kind.hint.as_deref(),
        Some("`kind = \"sim\"`, `\"openai-completions\"` or `\"openai-chat\"`")
    );
    let unknown = parse("[target]\nkind = \"http\"\n", Path::new("x.toml"), &[]);
    let unknown = unknown.unwrap_err().0;
    let kind = unknown.iter().find(|e| e.key == "target.kind").unwrap();
    assert_eq!(
        kind.hint.as_deref(),
        Some("one of `sim`, `openai-completions`, `openai-chat`")
    );
}

#[test]
fn resolve_fills_defaults() {
    let s = load(&fixture("ok/minimal.toml")).unwrap();
    let cells = planned(&s).cells;
    assert_eq!(cells.len(), 1);
    assert_eq!(cells[0].id.as_str(), "default");
    let c = s.resolve(&cells[0].vars).unwrap();
    assert_eq!(c.workload.prompt_tokens, 512);
    assert_eq!(c.workload.output_tokens, 128);
    assert_eq!(c.workload.requests, Some(100));
    assert_eq!(c.workload.duration, None);
    assert_eq!(c.workload.warmup, 5);
    assert_eq!(c.workload.grace, Duration::from_secs(30));
    assert_eq!(c.workload.arrival, ArrivalConfig::Poisson { rate: 10.0 });
    assert_eq!(c.workload.prompts, PromptSource::Synthetic);
    assert_eq!(c.engine.tp.get(), 1);
    assert_eq!(c.engine.max_num_seqs.get(), 256);
    assert_eq!(c.engine.max_num_batched_tokens.get(), 8192);
    assert_eq!(c.target.timeout, Duration::from_secs(600));
    assert_eq!(c.target.idle_timeout, Duration::from_secs(60));
    assert!(c.target.ignore_eos);
    let hw = c.target.hardware.unwrap();
    assert_eq!(
        (hw.model_config.as_str(), hw.gpu.as_str(), hw.gpus.get()),
        ("llama-3.1-8b", "h100-sxm", 1)
    );
    let sim = c.target.sim.unwrap();
    assert_eq!(
        (
            sim.preset.as_str(),
            sim.noise_cv,
            sim.gpu_memory_utilization,
            sim.block_size
        ),
        ("calibrated", 0.02, 0.9, 16)
    );
    assert_eq!(s.experiment.seed, 0);
    assert_eq!(s.experiment.repetitions.get(), 10);
    assert_eq!(s.experiment.order, RunOrder::RandomizedBlocks);
    assert_eq!(s.analysis.alpha, 0.05);
    assert_eq!(s.analysis.load, ["request_rate", "concurrency"]);
    assert!(s.warnings.is_empty());
}

#[test]
fn resolve_renders_templates_and_applies_well_known_vars() {
    let s = load(&fixture("ok/openai.toml")).unwrap();
    let cells = planned(&s).cells;
    let c = s.resolve(&cells[1].vars).unwrap();
    assert_eq!(c.target.kind, TargetKind::Http(Protocol::OpenaiChat));
    assert_eq!(
        c.target.base_url.as_deref(),
        Some("http://127.0.0.1:8000/v1")
    );
    assert_eq!(
        c.target.model.as_deref(),
        Some("meta-llama/Llama-3.1-8B-Instruct")
    );
    let auth = c
        .target
        .headers
        .iter()
        .find(|h| h.name == "Authorization")
        .unwrap();
    assert_eq!(
        (auth.value.as_str(), auth.secret),
        ("Bearer not-a-real-token", true)
    );
    assert_eq!(c.workload.arrival, ArrivalConfig::Poisson { rate: 5.0 });
    assert_eq!(
        (c.workload.requests, c.workload.duration),
        (None, Some(Duration::from_secs(120)))
    );
    assert_eq!(s.checks[0].threshold, 0.8);
    assert_eq!(s.checks[2].threshold, 0.95);
    assert_eq!(s.analysis.thresholds[&k("ttft.p99")], 0.05);
    assert_eq!(s.analysis.capacity_threshold, Some(0.10));
}

#[test]
fn closed_loop_and_shared_prefix_resolve() {
    let s = load(&fixture("ok/closed_shared_prefix.toml")).unwrap();
    let cells = planned(&s).cells;
    assert_eq!(cells.len(), 8);
    let c = s.resolve(&cells[7].vars).unwrap();
    assert_eq!(
        c.workload.arrival,
        ArrivalConfig::Closed {
            concurrency: NonZeroU32::new(64).unwrap()
        }
    );
    let groups = NonZeroU32::new(8).unwrap();
    assert_eq!(
        c.workload.prompts,
        PromptSource::SharedPrefix {
            groups,
            prefix_tokens: 768
        }
    );
    assert_eq!(c.workload.duration, Some(Duration::from_secs(60)));
    assert_eq!(c.workload.requests, None);
}

#[test]
fn set_overrides_beat_the_file_and_later_ones_win() {
    let path = fixture("ok/sweep.toml");
    let sets = [
        "vars.sweep.tp=[4, 8]",
        "experiment.seed=7",
        "experiment.seed=9",
        "workload.warmup=0",
    ];
    let sets: Vec<Override> = sets.iter().map(|s| Override::parse(s).unwrap()).collect();
    let s = load_with_overrides(&path, &sets).unwrap();
    assert_eq!(s.experiment.seed, 9);
    assert_eq!(
        s.vars.sweep[0],
        ("tp".to_string(), vec![Value::Int(4), Value::Int(8)])
    );
    assert_eq!(s.overrides.len(), 4);
    let cells = planned(&s).cells;
    assert_eq!(s.resolve(&cells[0].vars).unwrap().workload.warmup, 0);
}

#[test]
fn set_fixed_pins_a_swept_variable() {
    let path = fixture("ok/openai.toml");
    let s = load_with_overrides(
        &path,
        &[Override::parse("vars.fixed.request_rate=3").unwrap()],
    )
    .unwrap();
    assert!(s.vars.sweep.iter().all(|(n, _)| n != "request_rate"));
    assert_eq!(s.vars.fixed["request_rate"], Value::Int(3));
    assert_eq!(planned(&s).cells.len(), 1);
}

#[test]
fn override_errors_point_at_the_set_argument() {
    let path = fixture("ok/minimal.toml");
    let errs = load_with_overrides(&path, &[Override::parse("workload.arrival=closd").unwrap()])
        .unwrap_err()
        .0;
    assert_eq!(errs.len(), 1);
    assert_eq!(
        (errs[0].line, errs[0].arg.as_deref()),
        (None, Some("--set workload.arrival=closd"))
    );
    assert!(
        errs[0].message.contains("did you mean `closed`?"),
        "{}",
        errs[0]
    );
}

#[test]
fn target_url_switches_sim_to_openai_completions() {
    let mut s = load(&fixture("ok/minimal.toml")).unwrap();
    s.set_target_url("http://10.0.0.1:8000/v1").unwrap();
    assert_eq!(
        s.target_kind(),
        TargetKind::Http(Protocol::OpenaiCompletions)
    );
    let c = s.resolve(&planned(&s).cells[0].vars).unwrap();
    assert_eq!(
        c.target.base_url.as_deref(),
        Some("http://10.0.0.1:8000/v1")
    );
    assert_eq!(c.target.sim, None);
    assert!(c.target.hardware.is_some());
    assert_eq!(s.warnings.len(), 1);
    let err = s.set_target_url("10.0.0.1:8000").unwrap_err();
    assert_eq!(err.arg.as_deref(), Some("--target 10.0.0.1:8000"));
}

#[test]
fn target_url_refuses_engine_sweeps_that_are_not_labels() {
    let mut s = load(&fixture("ok/sweep.toml")).unwrap();
    let err = s.set_target_url("http://10.0.0.1:8000/v1").unwrap_err();
    assert_eq!(err.key, "vars.sweep.tp");
    assert_eq!(s.target_kind(), TargetKind::Sim);
}

#[test]
fn few_repetitions_are_a_warning() {
    let s = load(&fixture("ok/trace.toml")).unwrap();
    assert_eq!(s.warnings.len(), 1);
    assert!(
        s.warnings[0].starts_with("experiment.repetitions = 3"),
        "{:?}",
        s.warnings
    );
}

#[test]
fn discover_sorts_toml_files_and_accepts_a_file() {
    let files = discover(&fixture("ok"));
    let names: Vec<_> = files
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted);
    assert!(names.iter().all(|n| n.ends_with(".toml")));
    assert_eq!(
        discover(&fixture("ok/minimal.toml")),
        vec![fixture("ok/minimal.toml")]
    );
}
