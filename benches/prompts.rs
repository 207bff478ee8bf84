//! `cargo bench --bench prompts`: what exact prompt lengths cost per request, in wall-clock
//! milliseconds per synthetic prompt of N tokens built with the byte-level BPE fixture
//! (`tests/fixtures/tokenizer/bpe.json`), against word-count prompts, and what one encode of
//! the same text costs (the floor: a fitted prompt is counted at least once).

use std::path::Path;
use std::time::{Duration, Instant};

use exp::scenario::model::{ArrivalConfig, LengthDist, PromptSource, WorkloadConfig};
use exp::workload::work::Prompt;
use exp::workload::{Datasets, ModelTokenizer, WorkloadSeeds};

fn main() {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tokenizer/bpe.json");
    let start = Instant::now();
    let tok = ModelTokenizer::load(&fixture).expect("fixture");
    println!("load + word costs: {:.1} ms", ms(start.elapsed()));
    let seeds = WorkloadSeeds {
        arrivals: 1,
        prompts: 2,
        lengths: 3,
        warmup: 4,
    };
    println!(
        "{:>8}  {:>12}  {:>12}  {:>12}",
        "tokens", "exact ms", "encode ms", "words ms"
    );
    for n in [128u32, 1024, 8192, 32768] {
        let cfg = WorkloadConfig {
            prompts: PromptSource::Synthetic,
            prompt_tokens: n,
            prompt_dist: LengthDist::Fixed,
            output_tokens: 16,
            output_dist: LengthDist::Fixed,
            arrival: ArrivalConfig::Poisson { rate: 1.0 },
            max_concurrency: None,
            requests: Some(100),
            duration: None,
            warmup: 0,
            grace: Duration::from_secs(1),
        };
        let cache = Datasets::new();
        let exact = cache
            .build_with(&cfg, &seeds, Some(&fixture))
            .expect("work");
        let words = cache.build(&cfg, &seeds).expect("work");
        let reps = (262_144 / n).clamp(5, 200) as u64;
        let time = |f: &dyn Fn(u64)| {
            let start = Instant::now();
            for i in 0..reps {
                f(i);
            }
            ms(start.elapsed()) / reps as f64
        };
        let exact_ms = time(&|i| {
            let spec = exact.source.request(i);
            assert_eq!(spec.input_tokens, n);
        });
        let Prompt::Text(text) = exact.source.request(0).prompt else {
            unreachable!()
        };
        let encode_ms = time(&|_| {
            assert_eq!(tok.count(&text).expect("count"), n);
        });
        let words_ms = time(&|i| {
            std::hint::black_box(words.source.request(i));
        });
        println!("{n:>8}  {exact_ms:>12.3}  {encode_ms:>12.3}  {words_ms:>12.3}");
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}
