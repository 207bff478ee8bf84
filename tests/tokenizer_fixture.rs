//! The tokenizers under `tests/fixtures/tokenizer/` and the code that makes them, so no test
//! needs a model hub: `cargo test --test tokenizer_fixture -- --ignored` rewrites the files, and
//! `fixtures_are_what_this_file_makes` fails when they drift from this code.
//!
//! - `bpe.json`: a byte-level BPE (GPT-2 / Llama 3 style pre-tokenizer and decoder) with 480
//!   entries, trained on exp's built-in words with Zipf frequencies (word k appears ⌈2000/(k+1)⌉
//!   times): frequent words are one token, rarer ones two or more, other text mostly bytes.
//! - `words.json`: a word-level tokenizer over the built-in words (one token per word, `[UNK]`
//!   for anything else), which counts like exp's fixed server.

use std::path::PathBuf;

use exp::workload::words::WORDS;
use tokenizers::decoders::DecoderWrapper;
use tokenizers::models::bpe::{BPE, BpeTrainerBuilder};
use tokenizers::models::wordlevel::WordLevel;
use tokenizers::normalizers::NormalizerWrapper;
use tokenizers::pre_tokenizers::PreTokenizerWrapper;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::whitespace::Whitespace;
use tokenizers::processors::PostProcessorWrapper;
use tokenizers::{AddedToken, Tokenizer, TokenizerBuilder};

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tokenizer")
}

/// The training text: lines of ten words, word k repeated ⌈2000/(k+1)⌉ times.
fn corpus() -> Vec<String> {
    let words: Vec<&str> = WORDS
        .iter()
        .enumerate()
        .flat_map(|(k, w)| std::iter::repeat_n(*w, 2000usize.div_ceil(k + 1)))
        .collect();
    words.chunks(10).map(|line| line.join(" ")).collect()
}

fn bpe() -> String {
    let byte_level = ByteLevel::default().add_prefix_space(false);
    let mut trainer = BpeTrainerBuilder::new()
        .show_progress(false)
        .vocab_size(480)
        .min_frequency(0)
        .special_tokens(vec![AddedToken::from("<|endoftext|>", true)])
        .initial_alphabet(ByteLevel::alphabet().into_iter().collect())
        .build();
    let mut tok = TokenizerBuilder::<
        BPE,
        NormalizerWrapper,
        PreTokenizerWrapper,
        PostProcessorWrapper,
        DecoderWrapper,
    >::new()
    .with_model(BPE::default())
    .with_pre_tokenizer(Some(byte_level.into()))
    .with_post_processor(Some(byte_level.into()))
    .with_decoder(Some(byte_level.into()))
    .build()
    .unwrap();
    tok.train(&mut trainer, corpus().into_iter()).unwrap();
    Tokenizer::from(tok).to_string(true).unwrap()
}

fn words() -> String {
    let vocab: serde_json::Map<String, serde_json::Value> = std::iter::once("[UNK]")
        .chain(WORDS.iter().copied())
        .zip(0..)
        .map(|(w, id): (&str, u32)| (w.to_string(), id.into()))
        .collect();
    let model: WordLevel =
        serde_json::from_value(serde_json::json!({ "vocab": vocab, "unk_token": "[UNK]" }))
            .unwrap();
    let mut tok = Tokenizer::new(model);
    tok.with_pre_tokenizer(Some(Whitespace {}));
    tok.to_string(true).unwrap()
}

#[test]
#[ignore = "rewrites the checked-in fixtures"]
fn write_fixtures() {
    std::fs::create_dir_all(dir()).unwrap();
    std::fs::write(dir().join("bpe.json"), bpe() + "\n").unwrap();
    std::fs::write(dir().join("words.json"), words() + "\n").unwrap();
}

#[test]
fn fixtures_are_what_this_file_makes() {
    for (name, made) in [("bpe.json", bpe()), ("words.json", words())] {
        let file = std::fs::read_to_string(dir().join(name)).unwrap();
        assert!(
            file.trim_end() == made,
            "{name} differs from what tests/tokenizer_fixture.rs makes: rerun it with --ignored"
        );
    }
}
