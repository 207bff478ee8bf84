//! The scanner agrees with serde wherever it answers, and answers for the payloads real
//! servers send.

use proptest::prelude::*;

use super::scan;
use crate::backend::openai::wire::StreamChunk;

/// Everything exp reads from a chunk, in comparable form.
type Reading = (
    bool,
    bool,
    Option<(bool, bool, bool)>,
    Option<String>,
    Option<(Option<u32>, Option<u32>)>,
    bool,
);

fn reading(c: &StreamChunk<'_>) -> Reading {
    let choice = c.first.0.as_ref();
    (
        choice.is_some(),
        choice.is_some_and(|ch| ch.text.0),
        choice
            .and_then(|ch| ch.delta.as_ref())
            .map(|d| (d.content.0, d.reasoning.0, d.reasoning_content.0)),
        c.finish_reason().map(str::to_owned),
        c.usage.map(|u| (u.prompt_tokens, u.completion_tokens)),
        c.error.is_some(),
    )
}

/// Checks agreement on one payload; returns whether the scanner answered.
fn agree(payload: &[u8]) -> bool {
    let slow: Result<StreamChunk<'_>, _> = serde_json::from_slice(payload);
    match scan(payload) {
        None => false,
        Some(fast) => {
            let text = String::from_utf8_lossy(payload);
            let slow = slow.unwrap_or_else(|e| panic!("scanner accepted, serde said {e}: {text}"));
            assert_eq!(reading(&fast), reading(&slow), "{text}");
            true
        }
    }
}

#[test]
fn real_servers_payloads_take_the_fast_path() {
    let payloads: &[&str] = &[
        // exp's fixed server (vLLM's shape).
        r#"{"id":"cmpl-fixed","object":"text_completion","created":0,"model":"exp-fixed","choices":[{"index":0,"text":" tok","logprobs":null,"finish_reason":null}]}"#,
        r#"{"id":"cmpl-fixed","object":"text_completion","created":0,"model":"m","choices":[{"index":0,"text":" tok","logprobs":null,"finish_reason":"length"}]}"#,
        r#"{"id":"x","object":"text_completion","created":0,"model":"m","choices":[],"usage":{"prompt_tokens":5,"completion_tokens":20,"total_tokens":25}}"#,
        // Chat deltas with role, content, reasoning, tool calls and continuous usage.
        r#"{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}]}"#,
        r#"{"id":"c","choices":[{"index":0,"delta":{"content":"Hello, \"world\"\n"},"finish_reason":null}],"usage":{"prompt_tokens":3,"completion_tokens":7,"total_tokens":10}}"#,
        r#"{"id":"c","choices":[{"index":0,"delta":{"reasoning_content":"think…","content":null}}]}"#,
        r#"{"id":"c","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"a\": [1, 2.5e3, true]}"}}]}}]}"#,
        // Ollama's partial usage and TGI's string error.
        r#"{"choices":null,"usage":{}}"#,
        r#"{"error":"bad input","error_type":"validation"}"#,
        "  {\n\"choices\" : [ { \"text\" : \"é\" } ] }  ",
    ];
    for p in payloads {
        assert!(agree(p.as_bytes()), "slow path for {p}");
    }
}

#[test]
fn unusual_or_broken_payloads_go_to_serde() {
    for p in [
        r#"{"choices":[{"text":"\u00e9"}]}"#,
        r#"{"ch\u006fices":[]}"#,
        r#"{"choices":[],"choices":[]}"#,
        r#"{"usage":{"prompt_tokens":1.0}}"#,
        r#"{"usage":{"prompt_tokens":4294967296}}"#,
        r#"{"choices":[{"finish_reason":"len\tgth"}]}"#,
        r#"{"choices":[{"text":"x"}]"#,
        r#"{"choices":[{"text":"x"}]} x"#,
        r#"{"id":01}"#,
        r#"{"id":"\q"}"#,
        "{\"id\":\"a\u{1}\"}",
        r#"[{"choices":[]}]"#,
        "",
    ] {
        assert!(scan(p.as_bytes()).is_none(), "{p}");
        agree(p.as_bytes());
    }
}

fn leaf() -> impl Strategy<Value = Vec<u8>> {
    let texts: Vec<&'static [u8]> = vec![
        b"null",
        b"true",
        b"false",
        b"tru",
        b"0",
        b"-0",
        b"7",
        b"4294967295",
        b"4294967296",
        b"1.5",
        b"1e3",
        b"-1",
        b"01",
        b"1.",
        b"\"\"",
        b"\" tok\"",
        b"\"a\\nb\"",
        b"\"\\u00e9\"",
        b"\"\\uD800\"",
        b"\"\xc3\xa9\"",
        b"\"\xff\"",
        b"\"\\x\"",
        b"\"a\x01\"",
        b"\"length\"",
        b"\"unterminated",
    ];
    proptest::sample::select(texts).prop_map(<[u8]>::to_vec)
}

fn key() -> impl Strategy<Value = Vec<u8>> {
    let keys: Vec<&'static [u8]> = vec![
        b"choices",
        b"usage",
        b"error",
        b"text",
        b"delta",
        b"finish_reason",
        b"content",
        b"reasoning",
        b"reasoning_content",
        b"prompt_tokens",
        b"completion_tokens",
        b"id",
        b"ch\\u006fices",
        b"\xff",
    ];
    proptest::sample::select(keys).prop_map(|k| [b"\"", k, b"\":"].concat())
}

fn value() -> impl Strategy<Value = Vec<u8>> {
    leaf().prop_recursive(5, 48, 5, |inner| {
        prop_oneof![
            prop::collection::vec((key(), inner.clone()), 0..5).prop_map(|fields| {
                let parts: Vec<Vec<u8>> =
                    fields.into_iter().map(|(k, v)| [k, v].concat()).collect();
                [b"{".to_vec(), parts.join(&b","[..]), b"}".to_vec()].concat()
            }),
            prop::collection::vec(inner, 0..4).prop_map(|items| {
                [b"[".to_vec(), items.join(&b", "[..]), b"]".to_vec()].concat()
            }),
        ]
    })
}

/// A top-level object, sometimes damaged by a cut or a stray byte.
fn payload() -> impl Strategy<Value = Vec<u8>> {
    let object = prop::collection::vec((key(), value()), 0..6).prop_map(|fields| {
        let parts: Vec<Vec<u8>> = fields.into_iter().map(|(k, v)| [k, v].concat()).collect();
        [b" {".to_vec(), parts.join(&b" ,"[..]), b"}\n".to_vec()].concat()
    });
    (object, 0..4u8, any::<prop::sample::Index>(), any::<u8>()).prop_map(
        |(mut p, damage, at, byte)| {
            if !p.is_empty() {
                let i = at.index(p.len());
                match damage {
                    0 => p.truncate(i),
                    1 => p.insert(i, byte),
                    _ => {}
                }
            }
            p
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4000))]

    #[test]
    fn wherever_the_scanner_answers_serde_agrees(p in payload()) {
        agree(&p);
    }
}
