//! Tests of [`super::Datasets::build_with`] with a tokenizer (issue 2, exact prompt lengths):
//! synthetic prompts are exactly their drawn number of tokens, dataset prompts are counted with
//! the tokenizer, and the same seeds still give the same requests in every cell.

use std::io::Write;
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::work::{Prompt, RepetitionWork, RequestSpec};
use super::*;
use crate::scenario::model::{ArrivalConfig, LengthDist};

const SEEDS: WorkloadSeeds = WorkloadSeeds {
    arrivals: 11,
    prompts: 12,
    lengths: 13,
    warmup: 14,
};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/tokenizer")
        .join(name)
}

fn bpe() -> ModelTokenizer {
    ModelTokenizer::load(&fixture("bpe.json")).unwrap()
}

fn config(prompt_tokens: u32, dist: LengthDist) -> WorkloadConfig {
    WorkloadConfig {
        prompts: PromptSource::Synthetic,
        prompt_tokens,
        prompt_dist: dist,
        output_tokens: 16,
        output_dist: LengthDist::Fixed,
        arrival: ArrivalConfig::Poisson { rate: 5.0 },
        max_concurrency: None,
        requests: Some(50),
        duration: None,
        warmup: 2,
        grace: Duration::from_secs(1),
    }
}

fn build(cfg: &WorkloadConfig, seeds: &WorkloadSeeds, tokenizer: &Path) -> RepetitionWork {
    Datasets::new()
        .build_with(cfg, seeds, Some(tokenizer))
        .unwrap()
}

fn text(spec: &RequestSpec) -> &str {
    match &spec.prompt {
        Prompt::Text(t) => t,
        Prompt::Chat(_) => panic!("expected text"),
    }
}

#[test]
fn synthetic_prompts_re_encode_to_exactly_n_tokens() {
    let tok = bpe();
    for (n, requests) in [(1, 20), (7, 20), (512, 10), (4096, 3)] {
        let work = build(&config(n, LengthDist::Fixed), &SEEDS, &fixture("bpe.json"));
        for i in 0..requests {
            for source in [&work.source, &work.warmup_source] {
                let spec = source.request(i);
                assert_eq!(spec.input_tokens, n);
                assert_eq!(tok.count(text(&spec)).unwrap(), n, "{}", text(&spec));
                assert_eq!(source.lengths(i), (n, 16));
            }
        }
    }
}

#[test]
fn drawn_lengths_are_exact_and_prompts_are_distinct() {
    let tok = bpe();
    let work = build(
        &config(200, LengthDist::Lognormal { sigma: 0.5 }),
        &SEEDS,
        &fixture("bpe.json"),
    );
    let specs: Vec<RequestSpec> = (0..50).map(|i| work.source.request(i)).collect();
    for (i, spec) in specs.iter().enumerate() {
        assert_eq!(tok.count(text(spec)).unwrap(), spec.input_tokens);
        assert_eq!(work.source.lengths(i as u64).0, spec.input_tokens);
    }
    let lengths: std::collections::BTreeSet<u32> = specs.iter().map(|s| s.input_tokens).collect();
    assert!(lengths.len() > 20, "{lengths:?}");
    let texts: std::collections::BTreeSet<&str> = specs.iter().map(text).collect();
    assert_eq!(texts.len(), 50);
}

#[test]
fn the_same_seeds_give_the_same_prompts_in_every_cell() {
    let cfg = config(300, LengthDist::Uniform { spread: 0.5 });
    let path = fixture("bpe.json");
    let a = build(&cfg, &SEEDS, &path);
    let b = build(&cfg, &SEEDS, &path);
    let mut closed = cfg.clone();
    closed.arrival = ArrivalConfig::Closed {
        concurrency: NonZeroU32::new(8).unwrap(),
    };
    let c = build(&closed, &SEEDS, &path);
    for i in 0..20 {
        assert_eq!(a.source.request(i), b.source.request(i));
        assert_eq!(a.source.request(i), c.source.request(i));
    }
    let other = build(
        &cfg,
        &WorkloadSeeds {
            prompts: 99,
            ..SEEDS
        },
        &path,
    );
    assert_ne!(text(&a.source.request(0)), text(&other.source.request(0)));
}

#[test]
fn shared_prefixes_are_exact_and_shared_within_a_group() {
    let tok = bpe();
    let mut cfg = config(120, LengthDist::Fixed);
    cfg.prompts = PromptSource::SharedPrefix {
        groups: NonZeroU32::new(3).unwrap(),
        prefix_tokens: 40,
    };
    let work = build(&cfg, &SEEDS, &fixture("bpe.json"));
    let (a, b) = (work.source.request(1), work.source.request(4));
    assert_eq!(tok.count(text(&a)).unwrap(), 120);
    assert_eq!(tok.count(text(&b)).unwrap(), 120);
    // The common part, up to its last space, is the group's prefix: exactly 40 tokens.
    let common: usize = text(&a)
        .bytes()
        .zip(text(&b).bytes())
        .take_while(|(x, y)| x == y)
        .count();
    let prefix = &text(&a)[..text(&a)[..common].rfind(' ').unwrap()];
    assert_eq!(tok.count(prefix).unwrap(), 40, "{prefix}");
    assert!(!text(&work.source.request(2)).starts_with(prefix));
}

#[test]
fn dataset_prompts_are_counted_with_the_tokenizer() {
    let tok = bpe();
    let dir = tempfile::tempdir().unwrap();
    let mut f = std::fs::File::create(dir.path().join("p.jsonl")).unwrap();
    let prompts = [
        "Explain quantum computing in simple terms.",
        "the of and",
        "Write a haiku about the sea",
    ];
    for p in prompts {
        writeln!(f, "{{\"prompt\": \"{p}\"}}").unwrap();
    }
    let mut cfg = config(1, LengthDist::Fixed);
    cfg.prompts = PromptSource::Jsonl(dir.path().join("p.jsonl"));
    let cache = Datasets::new();
    let work = cache
        .build_with(&cfg, &SEEDS, Some(&fixture("bpe.json")))
        .unwrap();
    let mut seen = Vec::new();
    for i in 0..3 {
        let spec = work.source.request(i);
        assert_eq!(spec.input_tokens, tok.count(text(&spec)).unwrap());
        assert_eq!(work.source.lengths(i).0, spec.input_tokens);
        seen.push((text(&spec).to_string(), spec.input_tokens));
    }
    seen.sort();
    // 30 tokens against 6 words: the counts are the tokenizer's, not word counts.
    assert_eq!(seen[0], (prompts[0].to_string(), 30));
    // Without a tokenizer the same dataset reports words.
    let words = cache.build(&cfg, &SEEDS).unwrap();
    let spec = (0..3)
        .map(|i| words.source.request(i))
        .find(|s| text(s) == prompts[0])
        .unwrap();
    assert_eq!(spec.input_tokens, 6);
}

#[test]
fn a_tokenizer_that_cannot_do_the_job_fails_the_build() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(7, LengthDist::Fixed);
    // Every letter is two tokens here, so no text has 7.
    let even = serde_json::json!({
        "version": "1.0", "truncation": null, "padding": null, "added_tokens": [],
        "normalizer": {"type": "Replace", "pattern": {"Regex": "[a-z]"}, "content": "ab"},
        "pre_tokenizer": {"type": "Whitespace"}, "post_processor": null, "decoder": null,
        "model": {"type": "BPE", "dropout": null, "unk_token": "[UNK]",
                  "continuing_subword_prefix": null, "end_of_word_suffix": null,
                  "fuse_unk": false, "byte_fallback": false, "ignore_merges": false,
                  "vocab": {"[UNK]": 0, "a": 1, "b": 2}, "merges": []}
    });
    let path = dir.path().join("even.json");
    std::fs::write(&path, even.to_string()).unwrap();
    let err = Datasets::new()
        .build_with(&cfg, &SEEDS, Some(&path))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("cannot write a prompt of exactly 7 tokens"),
        "{err}"
    );
    let err = Datasets::new()
        .build_with(&cfg, &SEEDS, Some(&dir.path().join("no.json")))
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("cannot load tokenizer `"), "{err}");
}

#[test]
fn tokenizers_and_dataset_counts_are_loaded_once_per_cache() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("p.jsonl"),
        "{\"prompt\": \"hello world\"}\n",
    )
    .unwrap();
    let cache = Datasets::new();
    let a = cache.tokenizer(&fixture("bpe.json")).unwrap();
    let b = cache.tokenizer(&fixture("bpe.json")).unwrap();
    assert!(std::sync::Arc::ptr_eq(&a, &b));
    let path = dir.path().join("p.jsonl");
    let c1 = cache
        .token_counts(DatasetFormat::Jsonl, &path, &fixture("bpe.json"))
        .unwrap();
    let c2 = cache
        .token_counts(DatasetFormat::Jsonl, &path, &fixture("bpe.json"))
        .unwrap();
    assert!(std::sync::Arc::ptr_eq(&c1, &c2));
    assert_eq!(c1.get(0), 5);
    let words = cache
        .token_counts(DatasetFormat::Jsonl, &path, &fixture("words.json"))
        .unwrap();
    assert_eq!(words.get(0), 2);
}

#[test]
fn trace_lines_are_exact_too() {
    let tok = bpe();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("t.jsonl"),
        "{\"timestamp\": 0, \"input_tokens\": 12, \"output_tokens\": 5}\n\
         {\"timestamp\": 1, \"prompt\": \"Explain quantum computing in simple terms.\", \
          \"input_tokens\": 99, \"output_tokens\": 3}\n",
    )
    .unwrap();
    let mut cfg = config(1, LengthDist::Fixed);
    cfg.arrival = ArrivalConfig::Trace(dir.path().join("t.jsonl"));
    cfg.requests = None;
    let work = Datasets::new()
        .build_with(&cfg, &SEEDS, Some(&fixture("bpe.json")))
        .unwrap();
    // A line without a prompt gets a synthetic one of exactly its length.
    let spec = work.source.request(0);
    assert_eq!(
        (spec.input_tokens, tok.count(text(&spec)).unwrap()),
        (12, 12)
    );
    // A line's own prompt is as long as the tokenizer counts it, not as the line says.
    let spec = work.source.request(1);
    assert_eq!((spec.input_tokens, spec.max_tokens), (30, 3));
    assert_eq!(work.source.lengths(1), (30, 3));
    let words = Datasets::new().build(&cfg, &SEEDS).unwrap();
    assert_eq!(words.source.request(1).input_tokens, 99);
}
