//! Fuzzing what reads a server's bytes (issue 6): the SSE decoder, the chunk parser and the
//! record builder on top of them, with garbage, SSE-shaped garbage and mutated real chunks.
//! Nothing may panic or hang; cutting the same bytes differently must not change what is
//! decoded; the hand-written chunk parser must agree with a plain `serde_json::Value` reading
//! of the same payload. Bounded and seeded (see [`crate::fuzz`]).

use std::time::Duration;

use proptest::prelude::*;

use super::{StreamState, drain};
use crate::backend::openai::wire::{self, StreamChunk};
use crate::backend::protocol::{Content, Protocol};
use crate::backend::sse::{SseDecoder, SseEvent};
use crate::record::{Outcome, RequestRecord};

/// Pieces that SSE and OpenAI chunks are made of, so random streams get past the framing.
const PIECES: &[&[u8]] = &[
    b"data:",
    b"data: ",
    b"event: x",
    b"id: 1",
    b": ping",
    b"retry: 5",
    b"\n",
    b"\r",
    b"\r\n",
    b"\n\n",
    b"\xEF\xBB\xBF",
    b"\xEF\xBB",
    b"[DONE]",
    b"{",
    b"}",
    b"\"",
    b"{\"choices\":[{\"index\":0,\"text\":\" a\"}]}",
    b"{\"choices\":[{\"delta\":{\"content\":\"x\"}}]}",
    b"{\"choices\":[{\"delta\":{\"reasoning_content\":\"t\"}}]}",
    b"{\"choices\":[{\"text\":\"\",\"finish_reason\":\"stop\"}]}",
    b"{\"choices\":[],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":4}}",
    b"{\"choices\":null,\"usage\":null}",
    b"{\"error\":{\"message\":\"boom\"}}",
    b"{\"error\":\"bad\"}",
    b"{\"usage\":{\"completion_tokens\":4294967296}}",
    b"{\"choices\":[{\"text\":\"\\ud800\"}]}",
    b"\xff\xfe",
    b"\0",
];

fn sse_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..600),
        prop::collection::vec(
            prop_oneof![
                4 => prop::sample::select(PIECES).prop_map(<[u8]>::to_vec),
                1 => prop::collection::vec(any::<u8>(), 1..8),
            ],
            0..60,
        )
        .prop_map(|parts| parts.concat()),
    ]
}

/// An owned event, for comparing decodes.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Ev {
    Data(Vec<u8>),
    Done,
}

fn cut(bytes: &[u8], mut cuts: Vec<usize>) -> Vec<&[u8]> {
    cuts.iter_mut().for_each(|c| *c %= bytes.len() + 1);
    cuts.sort_unstable();
    let mut parts = Vec::new();
    let mut last = 0;
    for c in cuts {
        parts.push(&bytes[last..c]);
        last = c;
    }
    parts.push(&bytes[last..]);
    parts
}

fn decode(parts: &[&[u8]]) -> Vec<Ev> {
    let mut dec = SseDecoder::new();
    let mut out = Vec::new();
    let mut fed = 0;
    let pull = |dec: &mut SseDecoder, out: &mut Vec<Ev>| {
        while let Some(ev) = dec.next_event() {
            out.push(match ev {
                SseEvent::Data(d) => Ev::Data(d.to_vec()),
                SseEvent::Done => Ev::Done,
            });
        }
    };
    for p in parts {
        dec.feed(p);
        fed += p.len();
        pull(&mut dec, &mut out);
        assert!(dec.buffered() <= fed, "buffered more than was fed");
    }
    dec.finish();
    pull(&mut dec, &mut out);
    assert_eq!(dec.next_event(), None, "events after the end");
    out
}

#[test]
fn sse_garbage_in_any_cuts_decodes_the_same_and_never_panics() {
    let strategy = (sse_bytes(), prop::collection::vec(any::<usize>(), 0..10));
    crate::fuzz::run(
        "sse-garbage",
        strategy,
        4_000,
        Duration::from_secs(120),
        |(bytes, cuts)| {
            let whole = decode(&[&bytes]);
            prop_assert_eq!(decode(&cut(&bytes, cuts)), whole.clone());
            let ones: Vec<&[u8]> = bytes.chunks(1).collect();
            prop_assert_eq!(decode(&ones), whole);
            Ok(())
        },
    );
}

/// What a chunk means, read the slow, obvious way.
fn reference(payload: &[u8]) -> Option<(Content, Option<String>, bool)> {
    let v: serde_json::Value = serde_json::from_slice(payload).ok()?;
    let non_empty = |x: &serde_json::Value| x.as_str().is_some_and(|s| !s.is_empty());
    let choice = &v["choices"][0];
    let delta = &choice["delta"];
    let content = if non_empty(&choice["text"]) || non_empty(&delta["content"]) {
        Content::Answer
    } else if non_empty(&delta["reasoning"]) || non_empty(&delta["reasoning_content"]) {
        Content::Reasoning
    } else {
        Content::None
    };
    let finish = choice["finish_reason"].as_str().map(str::to_owned);
    Some((content, finish, !v["error"].is_null()))
}

/// Chunks shaped like the servers' (fields present, absent, null or of the wrong type).
fn chunk_json() -> impl Strategy<Value = String> {
    let text = prop_oneof![
        Just(None),
        Just(Some("null".to_string())),
        Just(Some("\"\"".to_string())),
        Just(Some("1".to_string())),
        "[ -~]{0,6}".prop_map(|s| Some(serde_json::to_string(&s).unwrap())),
        Just(Some("\"\\u00e9\\n\"".to_string())),
    ];
    let field =
        |name: &'static str, value: Option<String>| value.map(|v| format!("\"{name}\":{v}"));
    (
        text.clone(),
        text.clone(),
        text.clone(),
        text.clone(),
        prop::option::of(prop_oneof![
            Just("\"stop\""),
            Just("\"length\""),
            Just("null")
        ]),
        prop::option::of(prop_oneof![
            Just("null"),
            Just("{}"),
            Just("{\"completion_tokens\":7}"),
            Just("{\"prompt_tokens\":-1}"),
        ]),
        prop::option::of(prop_oneof![
            Just("null"),
            Just("\"e\""),
            Just("{\"message\":1}")
        ]),
        0usize..3,
    )
        .prop_map(move |(t, c, r, rc, fin, usage, error, n_choices)| {
            let delta: Vec<String> = [
                field("content", c),
                field("reasoning", r),
                field("reasoning_content", rc),
            ]
            .into_iter()
            .flatten()
            .collect();
            let mut choice: Vec<String> = [field("text", t)].into_iter().flatten().collect();
            choice.push(format!("\"delta\":{{{}}}", delta.join(",")));
            if let Some(f) = fin {
                choice.push(format!("\"finish_reason\":{f}"));
            }
            let one = format!("{{{}}}", choice.join(","));
            let choices = vec![one; n_choices].join(",");
            let mut top = vec![format!("\"choices\":[{choices}]")];
            top.extend(usage.map(|u| format!("\"usage\":{u}")));
            top.extend(error.map(|e| format!("\"error\":{e}")));
            format!("{{{}}}", top.join(","))
        })
}

#[test]
fn the_chunk_parser_agrees_with_a_plain_json_reading() {
    crate::fuzz::run(
        "wire-differential",
        chunk_json(),
        4_000,
        Duration::from_secs(120),
        |json| {
            let want = reference(json.as_bytes()).expect("generated chunks are JSON");
            // A field of the wrong type is a parse error for the fast parser; that is fine
            // (the request fails as `protocol`), as long as well-typed chunks agree.
            if let Ok(chunk) = StreamChunk::parse(json.as_bytes()) {
                prop_assert_eq!(chunk.content(), want.0, "{}", json);
                prop_assert_eq!(chunk.finish_reason().map(str::to_owned), want.1, "{}", json);
                prop_assert_eq!(chunk.error.is_some(), want.2, "{}", json);
                if want.2 {
                    prop_assert!(!wire::error_message(json.as_bytes()).is_empty());
                }
            }
            Ok(())
        },
    );
}

#[test]
fn the_chunk_parser_survives_garbage_and_mutated_chunks() {
    let mutated = (chunk_json(), any::<usize>(), any::<u8>(), any::<bool>()).prop_map(
        |(json, at, byte, cut)| {
            let mut b = json.into_bytes();
            let at = at % (b.len() + 1);
            if cut {
                b.truncate(at);
            } else {
                b.insert(at, byte);
            }
            b
        },
    );
    let strategy = prop_oneof![
        prop::collection::vec(any::<u8>(), 0..200),
        mutated,
        sse_bytes()
    ];
    crate::fuzz::run(
        "wire-garbage",
        strategy,
        4_000,
        Duration::from_secs(120),
        |bytes| {
            if let Ok(chunk) = StreamChunk::parse(&bytes) {
                let _ = (chunk.content(), chunk.finish_reason(), chunk.usage);
            }
            let _ = wire::error_message(&bytes);
            Ok(())
        },
    );
}

/// The outcome of a stream as the client builds it, fed in `parts`.
fn build(parts: &[&[u8]]) -> (Result<(), String>, usize, Option<u32>, bool) {
    let mut dec = SseDecoder::new();
    let mut state = StreamState::new(Protocol::OpenaiCompletions);
    let mut rec = RequestRecord {
        index: 0,
        scheduled_ns: 0,
        sent_ns: Some(0),
        first_sent_ns: None,
        no_done: false,
        text: None,
        counted: None,
        chunks: Vec::new(),
        done_ns: None,
        input_tokens: None,
        output_tokens: None,
        requested_input_tokens: None,
        requested_output_tokens: None,
        finish_reason: None,
        outcome: Outcome::Ok,
        turn: 0,
    };
    let mut result = Ok(());
    for (i, p) in parts.iter().enumerate() {
        dec.feed(p);
        if let Err(f) = drain(&mut dec, &mut state, i as u64, &mut rec) {
            result = Err(format!("{:?}", f.reason));
            break;
        }
    }
    if result.is_ok() {
        dec.finish();
        if let Err(f) = drain(&mut dec, &mut state, parts.len() as u64, &mut rec) {
            result = Err(format!("{:?}", f.reason));
        }
    }
    let stamps_sorted = rec.chunks.windows(2).all(|w| w[0].at_ns <= w[1].at_ns);
    assert!(stamps_sorted, "chunk stamps go back in time");
    assert_eq!(
        rec.outcome,
        Outcome::Ok,
        "drain never sets the outcome itself"
    );
    (result, rec.chunks.len(), rec.output_tokens, state.done)
}

#[test]
fn the_record_builder_gives_the_same_outcome_however_the_bytes_are_cut() {
    let strategy = (sse_bytes(), prop::collection::vec(any::<usize>(), 0..10));
    crate::fuzz::run(
        "stream-records",
        strategy,
        3_000,
        Duration::from_secs(120),
        |(bytes, cuts)| {
            prop_assert_eq!(build(&cut(&bytes, cuts)), build(&[&bytes]));
            Ok(())
        },
    );
}
