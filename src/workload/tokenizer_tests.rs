//! Tests of [`super::ModelTokenizer`] on the checked-in fixtures (`tests/fixtures/tokenizer/`,
//! made by `tests/tokenizer_fixture.rs`) and on variants of them written here.

use super::*;

const BPE: &str = include_str!("../../tests/fixtures/tokenizer/bpe.json");
const WORDS_ONLY: &str = include_str!("../../tests/fixtures/tokenizer/words.json");

fn bpe() -> ModelTokenizer {
    ModelTokenizer::from_json(Path::new("bpe.json"), BPE).unwrap()
}

/// `json` with `key` (a top-level or `model` key) replaced by `value`.
fn variant(json: &str, key: &str, value: serde_json::Value) -> String {
    let mut v: serde_json::Value = serde_json::from_str(json).unwrap();
    match v.get_mut(key) {
        Some(slot) => *slot = value,
        None => v["model"][key] = value,
    }
    v.to_string()
}

#[test]
fn counts_are_the_fixtures_without_special_tokens() {
    let t = bpe();
    // Frequent words are one token; rarer ones split ("those" = "th" "o" "se" as a first word).
    assert_eq!(t.count("the of and").unwrap(), 3);
    assert_eq!(t.count("those").unwrap(), 4);
    assert_eq!(t.count("hello world").unwrap(), 5);
    assert_eq!(t.encode("the").unwrap(), [276]);
    assert_eq!(t.encode(" the").unwrap(), [259]);
    // The special token is in the vocabulary but never added.
    assert_eq!(t.count("").unwrap(), 0);
    let words = ModelTokenizer::from_json(Path::new("w.json"), WORDS_ONLY).unwrap();
    assert_eq!(words.count("the of and zebra").unwrap(), 4, "[UNK] counts");
}

#[test]
fn word_costs_are_measured_alone_and_after_a_space() {
    let costs = bpe().costs().clone();
    // Word 0 is "the": one token either way. "those" (255): 4 alone, 3 after a space.
    assert_eq!((costs.cost(0, true), costs.cost(0, false)), (1, 1));
    assert_eq!((costs.cost(255, true), costs.cost(255, false)), (4, 3));
    // Filler words add one token each: "the", "of", …
    assert_eq!(costs.filler(0), 0);
    assert!((0..=255u8).all(|b| costs.cost(costs.filler(b), false) == 1));
    let words = ModelTokenizer::from_json(Path::new("w.json"), WORDS_ONLY).unwrap();
    assert_eq!(words.costs(), WordCosts::words());
}

#[test]
fn fit_pads_and_cuts_to_exact_lengths_and_keeps_the_prefix() {
    let t = bpe();
    let prefix = "those children always";
    assert_eq!(t.count(prefix).unwrap(), 13);
    let long = format!("{prefix} {}", ["example"; 200].join(" "));
    for want in [14, 15, 20, 40, 333] {
        for start in [prefix, &long] {
            let mut text = start.to_string();
            t.fit(&mut text, want, prefix.len()).unwrap();
            assert_eq!(t.count(&text).unwrap(), want, "{text}");
            assert!(text.starts_with(prefix), "{text}");
        }
    }
    for want in [1, 2, 5] {
        let mut text = long.clone();
        t.fit(&mut text, want, 0).unwrap();
        assert_eq!(t.count(&text).unwrap(), want, "{text}");
    }
}

#[test]
fn fit_copes_with_a_decoder_that_does_not_round_trip() {
    // Without a decoder, decoding joins raw tokens with spaces ("Ġthe Ġof"): cutting by
    // tokens fails and whole words are dropped instead.
    let json = variant(BPE, "decoder", serde_json::Value::Null);
    let t = ModelTokenizer::from_json(Path::new("bpe.json"), &json).unwrap();
    for want in [1, 7, 64] {
        let mut text = ["between"; 100].join(" ");
        t.fit(&mut text, want, 0).unwrap();
        assert_eq!(t.count(&text).unwrap(), want, "{text}");
        assert!(!text.contains('Ġ'), "{text}");
    }
}

/// Every letter becomes "ab", two tokens: a text always has an even number of tokens.
fn even_only() -> ModelTokenizer {
    let json = serde_json::json!({
        "version": "1.0", "truncation": null, "padding": null, "added_tokens": [],
        "normalizer": {"type": "Replace", "pattern": {"Regex": "[a-z]"}, "content": "ab"},
        "pre_tokenizer": {"type": "Whitespace"}, "post_processor": null, "decoder": null,
        "model": {"type": "BPE", "dropout": null, "unk_token": "[UNK]",
                  "continuing_subword_prefix": null, "end_of_word_suffix": null,
                  "fuse_unk": false, "byte_fallback": false, "ignore_merges": false,
                  "vocab": {"[UNK]": 0, "a": 1, "b": 2}, "merges": []}
    });
    ModelTokenizer::from_json(Path::new("even.json"), &json.to_string()).unwrap()
}

#[test]
fn an_impossible_length_fails_with_a_clear_error() {
    let t = even_only();
    assert_eq!(t.count("the of").unwrap(), 10);
    // Filler words have two letters (four tokens): one of them makes 14.
    let mut text = "the of".to_string();
    t.fit(&mut text, 14, 0).unwrap();
    assert_eq!(t.count(&text).unwrap(), 14);
    let err = t.fit(&mut text, 7, 0).unwrap_err().to_string();
    assert!(
        err.starts_with("tokenizer `even.json`: cannot write a prompt of exactly 7 tokens"),
        "{err}"
    );
}

#[test]
fn truncation_and_padding_in_the_file_are_switched_off() {
    let truncation = serde_json::json!({"direction": "Right", "max_length": 4, "strategy":
        "LongestFirst", "stride": 0});
    let json = variant(BPE, "truncation", truncation);
    let t = ModelTokenizer::from_json(Path::new("bpe.json"), &json).unwrap();
    assert_eq!(t.count(&["the"; 50].join(" ")).unwrap(), 50);
}

#[test]
fn load_errors_name_the_file() {
    let missing = ModelTokenizer::load(Path::new("/nonexistent/tokenizer.json"))
        .unwrap_err()
        .to_string();
    assert!(
        missing.starts_with("cannot load tokenizer `/nonexistent/tokenizer.json`: "),
        "{missing}"
    );
    let bad = ModelTokenizer::from_json(Path::new("t.json"), "{\"version\": 1}")
        .unwrap_err()
        .to_string();
    assert!(bad.starts_with("cannot load tokenizer `t.json`: "), "{bad}");
    // A word-level vocabulary whose unknown token is missing cannot encode unknown words.
    let json = variant(WORDS_ONLY, "unk_token", "<missing>".into());
    let strict = ModelTokenizer::from_json(Path::new("w.json"), &json).unwrap();
    assert_eq!(strict.count("the of").unwrap(), 2);
    let err = strict.count("zebra").unwrap_err().to_string();
    assert!(err.starts_with("tokenizer `w.json`: "), "{err}");
}

#[test]
fn loading_from_a_file_gives_the_same_counts() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tokenizer.json");
    std::fs::write(&path, BPE).unwrap();
    let t = ModelTokenizer::load(&path).unwrap();
    assert_eq!(t.path(), path);
    assert_eq!(t.count("hello world").unwrap(), 5);
}
