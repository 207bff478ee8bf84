//! Multi-turn conversations: parsing rules, turn prompts that replay the history in order,
//! lengths that grow with the turn, determinism, and the wiring through `workload::build`.

use std::io::Write;
use std::time::Duration;

use super::*;
use crate::scenario::model::{ArrivalConfig, LengthDist, PromptSource, WorkloadConfig};
use crate::workload::{Datasets, WorkloadSeeds};

/// Three conversations: 3 turns with a system prompt, 2 turns, 4 turns.
const CHATS: &str = r#"[
  {"id": "a", "conversations": [
    {"from": "system", "value": "be brief"},
    {"from": "human", "value": "u0 one two"},
    {"from": "gpt", "value": "a0 three four five"},
    {"from": "human", "value": "u1 six"},
    {"from": "gpt", "value": "a1 seven eight"},
    {"from": "human", "value": "u2 nine ten eleven"},
    {"from": "gpt", "value": "never sent"}]},
  {"id": "b", "conversations": [
    {"from": "user", "value": "b0"},
    {"from": "assistant", "value": "r0 x"},
    {"from": "user", "value": "b1 y z"}]},
  {"id": "c", "conversations": [
    {"from": "human", "value": "c0"}, {"from": "gpt", "value": "d0"},
    {"from": "human", "value": "c1"}, {"from": "gpt", "value": "d1"},
    {"from": "human", "value": "c2"}, {"from": "gpt", "value": "d2"},
    {"from": "human", "value": "c3"}]}
]"#;

fn parse(text: &str) -> Result<Conversations, WorkloadError> {
    Conversations::parse(Path::new("c.json"), text)
}

fn msg(role: &str, content: &str) -> ChatMessage {
    ChatMessage {
        role: role.into(),
        content: content.into(),
    }
}

fn fixed(mean: u32) -> LengthDraw {
    LengthDraw::new(mean, LengthDist::Fixed, 0, Purpose::OutputLength)
}

fn chat(spec: &RequestSpec) -> &[ChatMessage] {
    match &spec.prompt {
        Prompt::Chat(m) => m,
        Prompt::Text(_) => panic!("expected chat messages"),
    }
}

/// The source's unit whose conversation has `turns` turns.
fn unit_with(src: &ConversationSource, turns: u32) -> u64 {
    (0..3).find(|&i| src.turns(i) == turns).unwrap()
}

#[test]
fn turn_prompts_replay_the_recorded_history_in_order() {
    let data = Arc::new(parse(CHATS).unwrap());
    let src = ConversationSource::new(data, 9, fixed(32), Duration::ZERO);
    let i = unit_with(&src, 3);
    let want = [
        msg("system", "be brief"),
        msg("user", "u0 one two"),
        msg("assistant", "a0 three four five"),
        msg("user", "u1 six"),
        msg("assistant", "a1 seven eight"),
        msg("user", "u2 nine ten eleven"),
    ];
    for (t, end) in [(0, 2), (1, 4), (2, 6)] {
        assert_eq!(chat(&src.turn(i, t)), &want[..end], "turn {t}");
    }
    assert_eq!(src.request(i), src.turn(i, 0));
    let j = unit_with(&src, 2);
    assert_eq!(
        chat(&src.turn(j, 1)),
        [
            msg("user", "b0"),
            msg("assistant", "r0 x"),
            msg("user", "b1 y z")
        ]
    );
}

#[test]
fn input_lengths_grow_with_the_turn_and_count_the_history_words() {
    let data = Arc::new(parse(CHATS).unwrap());
    let src = ConversationSource::new(data, 9, fixed(32), Duration::ZERO);
    let i = unit_with(&src, 3);
    let inputs: Vec<u32> = (0..3).map(|t| src.turn_lengths(i, t).0).collect();
    // 2 + 3, + 4 + 2, + 3 + 4 words.
    assert_eq!(inputs, [5, 11, 18]);
    for t in 0..3 {
        let spec = src.turn(i, t);
        let words: usize = chat(&spec)
            .iter()
            .map(|m| m.content.split_whitespace().count())
            .sum();
        assert_eq!(spec.input_tokens as usize, words);
        assert_eq!((spec.input_tokens, spec.max_tokens), src.turn_lengths(i, t));
        assert_eq!(spec.max_tokens, 32, "the cell's output rule");
    }
    assert_eq!(src.lengths(i), src.turn_lengths(i, 0));
}

#[test]
fn order_is_seeded_and_output_lengths_are_drawn_per_turn() {
    let data = Arc::new(parse(CHATS).unwrap());
    let draw = LengthDraw::new(
        100,
        LengthDist::Uniform { spread: 0.5 },
        3,
        Purpose::OutputLength,
    );
    let a = ConversationSource::new(data.clone(), 1, draw, Duration::ZERO);
    let b = ConversationSource::new(data.clone(), 1, draw, Duration::ZERO);
    for i in 0..6 {
        for t in 0..a.turns(i) {
            assert_eq!(a.turn(i, t), b.turn(i, t));
        }
    }
    assert_eq!(a.request(4).prompt, a.request(1).prompt, "wraps around");
    let orders: std::collections::BTreeSet<Vec<u32>> = (0..8)
        .map(|seed| {
            let s = ConversationSource::new(data.clone(), seed, draw, Duration::ZERO);
            (0..3).map(|i| s.turns(i)).collect()
        })
        .collect();
    assert!(orders.len() > 1, "the seed changes the order");
    // Turn 0 draws what a single-turn source would; later turns draw their own lengths.
    let c = unit_with(&a, 4);
    assert_eq!(a.turn_lengths(c, 0).1, draw.get(c));
    let outputs: Vec<u32> = (0..4).map(|t| a.turn_lengths(c, t).1).collect();
    assert!(outputs.windows(2).any(|w| w[0] != w[1]), "{outputs:?}");
    assert!(
        outputs.iter().all(|o| (50..=150).contains(o)),
        "{outputs:?}"
    );
}

#[test]
fn messages_are_normalised_into_an_alternating_chat() {
    let data = parse(
        r#"[
      {"conversations": [{"from": "gpt", "value": "greeting first is dropped"},
        {"from": "system", "value": "sys"}, {"from": "human", "value": "q1"},
        {"from": "human", "value": "q2"}, {"from": "bing", "value": " "},
        {"from": "chatgpt", "value": "r1"}, {"from": "model", "value": "r2"},
        {"from": "user", "value": "q3"}]},
      {"conversations": [{"from": "gpt", "value": "no user at all"}]},
      {"conversations": [{"from": "human", "value": "  "}]},
      {"conversations": []}
    ]"#,
    )
    .unwrap();
    assert_eq!(data.skipped(), 3);
    let c = &data.items()[0];
    assert_eq!(
        c.messages,
        [
            msg("system", "sys"),
            msg("user", "q1\n\nq2"),
            msg("assistant", "r1\n\nr2"),
            msg("user", "q3"),
        ]
    );
    let ends: Vec<(u32, u32)> = c.turns.iter().map(|e| (e.messages, e.words)).collect();
    assert_eq!(ends, [(2, 3), (4, 6)]);
}

#[test]
fn bad_elements_are_named_by_index() {
    let ok = r#"{"conversations": [{"from": "human", "value": "hi"}]}"#;
    let cases = [
        (
            format!(r#"[{ok}, {{"conversations": [{{"from": "robot", "value": "x"}}]}}]"#),
            "element 1: conversations[0].from: unknown role \"robot\" (expected one of system, \
             human, user, gpt, assistant, chatgpt, bing, bard, model)",
        ),
        (
            format!(
                r#"[{ok}, {ok}, {{"conversations": [{{"from": "human", "value": "q"}},
                {{"from": "system", "value": "late"}}]}}]"#
            ),
            "element 2: conversations[1]: a system message after the first user message",
        ),
        (
            r#"[{"conversations": [{"from": "human", "value": 3}]}]"#.to_string(),
            "element 0: conversations[0].value must be a string, found a number",
        ),
        (
            format!("[{ok}, 7]"),
            "element 1: expected an object, found a number",
        ),
    ];
    for (text, want) in cases {
        let msg = parse(&text).unwrap_err().to_string();
        assert_eq!(msg, format!("c.json: {want}"));
    }
    let none = parse(r#"[{"conversations": []}]"#).unwrap_err().to_string();
    assert_eq!(
        none,
        "c.json: the dataset has no conversations (1 skipped: no non-empty user message)"
    );
}

#[test]
fn the_shipped_dataset_has_two_to_four_turns_per_conversation() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/data/multi_turn_chats.json");
    let data = Conversations::load(&path).unwrap();
    assert!(data.items().len() >= 16);
    assert_eq!(data.skipped(), 0);
    for c in data.items() {
        assert!((2..=4).contains(&c.turns.len()), "{} turns", c.turns.len());
        assert!(c.turns.windows(2).all(|w| w[0].words < w[1].words));
    }
}

fn config(prompts: PromptSource) -> WorkloadConfig {
    WorkloadConfig {
        prompts,
        prompt_tokens: 128,
        prompt_dist: LengthDist::Fixed,
        output_tokens: 16,
        output_dist: LengthDist::Fixed,
        arrival: ArrivalConfig::Closed {
            concurrency: std::num::NonZeroU32::MIN,
        },
        max_concurrency: None,
        requests: Some(5),
        duration: None,
        warmup: 2,
        grace: Duration::from_secs(1),
    }
}

#[test]
fn build_serves_conversations_with_their_think_time_and_refuses_a_trace() {
    let dir = tempfile::tempdir().unwrap();
    let mut f = std::fs::File::create(dir.path().join("c.json")).unwrap();
    f.write_all(CHATS.as_bytes()).unwrap();
    let seeds = WorkloadSeeds {
        arrivals: 1,
        prompts: 2,
        lengths: 3,
        warmup: 4,
    };
    let mut cfg = config(PromptSource::Conversations {
        path: dir.path().join("c.json"),
        think_time: Duration::from_millis(250),
    });
    let work = Datasets::new().build(&cfg, &seeds).unwrap();
    let turns: Vec<u32> = (0..3).map(|i| work.source.turns(i)).collect();
    let mut sorted = turns.clone();
    sorted.sort();
    assert_eq!(sorted, [2, 3, 4]);
    assert_eq!(work.source.think_time(), Duration::from_millis(250));
    assert_eq!(work.warmup_source.think_time(), Duration::from_millis(250));
    assert_eq!(work.source.turn_lengths(0, 1).1, 16);
    cfg.arrival = ArrivalConfig::Trace(dir.path().join("t.jsonl"));
    let err = Datasets::new().build(&cfg, &seeds).unwrap_err();
    assert!(err.to_string().contains("trace"), "{err}");
}
