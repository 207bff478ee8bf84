//! Tests of [`super::build`]: determinism, independence from the cell, and the wiring of
//! prompts, lengths, warm-up and traces.

use std::io::Write;
use std::num::NonZeroU32;
use std::time::Duration;

use super::work::{Arrivals, Prompt, RepetitionWork, RequestSpec};
use super::*;
use crate::scenario::model::{ArrivalConfig, LengthDist};

const SEEDS: WorkloadSeeds = WorkloadSeeds {
    arrivals: 1,
    prompts: 2,
    lengths: 3,
    warmup: 4,
};

fn config() -> WorkloadConfig {
    WorkloadConfig {
        prompts: PromptSource::Synthetic,
        prompt_tokens: 128,
        prompt_dist: LengthDist::Lognormal { sigma: 0.4 },
        output_tokens: 64,
        output_dist: LengthDist::Uniform { spread: 0.5 },
        arrival: ArrivalConfig::Poisson { rate: 5.0 },
        max_concurrency: None,
        requests: Some(200),
        duration: None,
        warmup: 3,
        grace: Duration::from_secs(2),
    }
}

fn offsets(work: &RepetitionWork) -> &[u64] {
    match &work.arrivals {
        Arrivals::Open { offsets_ns, .. } => offsets_ns,
        other => panic!("expected open loop, got {other:?}"),
    }
}

fn requests(work: &RepetitionWork, n: u64) -> Vec<RequestSpec> {
    (0..n).map(|i| work.source.request(i)).collect()
}

fn text(spec: &RequestSpec) -> &str {
    match &spec.prompt {
        Prompt::Text(t) => t,
        Prompt::Chat(_) => panic!("expected text"),
    }
}

fn build_here(cfg: &WorkloadConfig, seeds: &WorkloadSeeds) -> RepetitionWork {
    Datasets::new().build(cfg, seeds).unwrap()
}

#[test]
fn same_seeds_give_identical_offsets_and_prompts() {
    let a = build_here(&config(), &SEEDS);
    let b = build(&config(), &SEEDS).unwrap();
    assert_eq!(offsets(&a), offsets(&b));
    assert_eq!(requests(&a, 50), requests(&b, 50));
    assert_eq!(
        (a.requests, a.warmup, a.grace),
        (Some(200), 3, Duration::from_secs(2))
    );
    let other = build_here(
        &config(),
        &WorkloadSeeds {
            prompts: 9,
            ..SEEDS
        },
    );
    assert_eq!(offsets(&a), offsets(&other));
    assert_ne!(text(&a.source.request(0)), text(&other.source.request(0)));
}

#[test]
fn cells_with_other_settings_see_the_same_requests() {
    let base = build_here(&config(), &SEEDS);
    let mut capped = config();
    capped.max_concurrency = NonZeroU32::new(4);
    let capped = build_here(&capped, &SEEDS);
    assert_eq!(offsets(&base), offsets(&capped));
    assert_eq!(requests(&base, 30), requests(&capped, 30));
    // A closed-loop cell of the same repetition draws the same prompts and lengths.
    let mut closed = config();
    closed.arrival = ArrivalConfig::Closed {
        concurrency: NonZeroU32::new(8).unwrap(),
    };
    let closed = build_here(&closed, &SEEDS);
    assert_eq!(requests(&base, 30), requests(&closed, 30));
}

#[test]
fn lengths_match_requests_and_vary_per_request() {
    let work = build_here(&config(), &SEEDS);
    let specs = requests(&work, 100);
    for (i, spec) in specs.iter().enumerate() {
        assert_eq!(
            work.source.lengths(i as u64),
            (spec.input_tokens, spec.max_tokens)
        );
        assert_eq!(text(spec).split(' ').count(), spec.input_tokens as usize);
        assert!((32..=96).contains(&spec.max_tokens));
    }
    let distinct: std::collections::BTreeSet<u32> = specs.iter().map(|s| s.input_tokens).collect();
    assert!(distinct.len() > 20);
}

#[test]
fn warmup_requests_come_from_their_own_stream() {
    let work = build_here(&config(), &SEEDS);
    let warm: Vec<String> = (0..3)
        .map(|i| text(&work.warmup_source.request(i)).to_owned())
        .collect();
    let measured: Vec<String> = (0..100)
        .map(|i| text(&work.source.request(i)).to_owned())
        .collect();
    assert!(warm.iter().all(|w| !measured.contains(w)));
    let again = build_here(&config(), &SEEDS);
    assert_eq!(text(&again.warmup_source.request(2)), warm[2]);
}

#[test]
fn prefix_as_long_as_the_prompt_is_refused() {
    let mut cfg = config();
    cfg.prompts = PromptSource::SharedPrefix {
        groups: NonZeroU32::new(2).unwrap(),
        prefix_tokens: 128,
    };
    let err = Datasets::new().build(&cfg, &SEEDS).unwrap_err();
    assert!(
        err.to_string()
            .contains("`prefix_tokens` (128) must be less than `prompt_tokens` (128)"),
        "{err}"
    );
}

#[test]
fn datasets_are_read_from_their_path_and_missing_files_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let mut f = std::fs::File::create(dir.path().join("p.jsonl")).unwrap();
    writeln!(f, "{{\"prompt\": \"say hi to me\", \"output_tokens\": 7}}").unwrap();
    let mut cfg = config();
    cfg.prompts = PromptSource::Jsonl(dir.path().join("p.jsonl"));
    let work = Datasets::new().build(&cfg, &SEEDS).unwrap();
    assert_eq!(
        work.source.request(5).prompt,
        Prompt::Text("say hi to me".into())
    );
    assert_eq!(work.source.lengths(5), (4, 7));
    cfg.prompts = PromptSource::ShareGpt(dir.path().join("missing.json"));
    let err = Datasets::new().build(&cfg, &SEEDS).unwrap_err().to_string();
    assert!(
        err.starts_with("cannot read dataset `") && err.contains("missing.json"),
        "{err}"
    );
}

#[test]
fn trace_replay_sets_offsets_and_overrides_lengths() {
    let dir = tempfile::tempdir().unwrap();
    let mut f = std::fs::File::create(dir.path().join("t.jsonl")).unwrap();
    writeln!(
        f,
        "{{\"timestamp\": 10.0, \"input_tokens\": 30, \"output_tokens\": 5}}"
    )
    .unwrap();
    writeln!(
        f,
        "{{\"timestamp\": 10.25, \"input_tokens\": 12, \"output_tokens\": 9}}"
    )
    .unwrap();
    writeln!(
        f,
        "{{\"timestamp\": 11.0, \"prompt\": \"tell me more\", \"output_tokens\": 3}}"
    )
    .unwrap();
    let mut cfg = config();
    cfg.arrival = ArrivalConfig::Trace(dir.path().join("t.jsonl"));
    cfg.requests = None;
    let work = Datasets::new().build(&cfg, &SEEDS).unwrap();
    assert_eq!(offsets(&work), [0, 250_000_000, 1_000_000_000]);
    assert_eq!(work.requests, Some(3));
    assert_eq!(work.source.lengths(0), (30, 5));
    let spec = work.source.request(1);
    assert_eq!((spec.input_tokens, spec.max_tokens), (12, 9));
    assert_eq!(text(&spec).split(' ').count(), 12);
    assert_eq!(
        work.source.request(2).prompt,
        Prompt::Text("tell me more".into())
    );
    assert_eq!(work.source.lengths(2), (3, 3));
    assert_eq!(
        work.warmup_source.lengths(4),
        (12, 9),
        "warm-up cycles the trace"
    );
}
