//! Multi-turn conversations end to end: the shipped `scenarios/multi_turn_chat.toml` through
//! `exp run` on the simulated engine and against `exp serve --fixed` as an `openai-chat`
//! target, and the HTTP driver against the in-process fixed server, whose truth log shows
//! when it received each turn and when it wrote the previous turn's last token.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use common::{free_port, json, planned_slots, records, run};
use exp::backend::Protocol;
use exp::record::RequestRecord;
use exp::scenario::model::{ArrivalConfig, LengthDist, PromptSource, WorkloadConfig};
use exp::serve::{self, FixedTiming};
use exp::workload::{Datasets, WorkloadSeeds};

const SCENARIO: &str = "scenarios/multi_turn_chat.toml";
const DATASET: &str = "scenarios/data/multi_turn_chats.json";
/// Conversations and turns in the shipped dataset (every conversation is used once).
const CONVERSATIONS: usize = 24;
const TURNS: usize = 68;

fn u(v: &serde_json::Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not an integer: {v}"))
}

/// Records of one repetition grouped by conversation, each in turn order; checks that every
/// conversation's turns are 0, 1, 2, … with growing prompts, and that turn `t + 1` was
/// scheduled `think_ns` after turn `t`'s last token and not sent before.
fn check_turns(recs: &[serde_json::Value], think_ns: u64) -> BTreeMap<u64, Vec<serde_json::Value>> {
    let mut by_conv: BTreeMap<u64, Vec<serde_json::Value>> = BTreeMap::new();
    for r in recs {
        assert_eq!(r["outcome"]["status"], "ok", "{r}");
        by_conv.entry(u(&r["i"])).or_default().push(r.clone());
    }
    for turns in by_conv.values_mut() {
        turns.sort_by_key(|r| r["turn"].as_u64().unwrap_or(0));
        for (t, r) in turns.iter().enumerate() {
            assert_eq!(r["turn"].as_u64().unwrap_or(0), t as u64, "{r}");
        }
        for pair in turns.windows(2) {
            let (a, b) = (&pair[0], &pair[1]);
            assert_eq!(u(&b["scheduled_ns"]), u(&a["done_ns"]) + think_ns, "{b}");
            assert!(u(&b["sent_ns"]) >= u(&b["scheduled_ns"]), "{b}");
            assert!(
                u(&b["requested_input_tokens"]) > u(&a["requested_input_tokens"]),
                "the history grows: {a} then {b}"
            );
        }
    }
    by_conv
}

#[test]
fn the_shipped_scenario_replays_conversations_turn_by_turn_on_the_simulator() {
    let out_dir = tempfile::tempdir().unwrap();
    let out = run([
        "run",
        SCENARIO,
        "--out",
        out_dir.path().to_str().unwrap(),
        "--set",
        "experiment.repetitions=3",
        "--no-progress",
    ])
    .expect_code(0);
    let dir = out.run_dir();
    for (cell, round) in planned_slots(&dir) {
        let recs = records(&dir, &cell, round);
        assert_eq!(recs.len(), TURNS, "{cell} round {round}");
        let by_conv = check_turns(&recs, 2_000_000_000);
        assert_eq!(by_conv.len(), CONVERSATIONS);
        // Virtual time: no client delay at all.
        assert!(recs.iter().all(|r| r["sent_ns"] == r["scheduled_ns"]));
    }
    let summary = json(&dir.join("summary.json"));
    for cell in summary["cells"].as_array().unwrap() {
        let conv = &cell["metrics"]["conversations"];
        assert_eq!(conv["mean"], CONVERSATIONS as f64, "{cell}");
        assert_eq!(cell["metrics"]["requests"]["mean"], TURNS as f64);
    }
}

#[test]
fn the_shipped_scenario_sends_the_whole_history_to_a_chat_server() {
    let port = free_port();
    let server = common::fixed_server("ttft=5ms,itl=1ms", port);
    let url = format!("http://127.0.0.1:{port}/v1");
    let out_dir = tempfile::tempdir().unwrap();
    let out = run([
        "run",
        SCENARIO,
        "--target",
        &url,
        "--set",
        "target.kind=\"openai-chat\"",
        "--set",
        "workload.think_time=\"20ms\"",
        "--set",
        "vars.fixed.output_tokens=4",
        "--set",
        "experiment.repetitions=2",
        "--out",
        out_dir.path().to_str().unwrap(),
        "--no-progress",
    ]);
    server.signal(libc::SIGKILL);
    let _ = server.wait();
    let dir = out.expect_code(0).run_dir();
    for (cell, round) in planned_slots(&dir) {
        let recs = records(&dir, &cell, round);
        assert_eq!(recs.len(), TURNS, "{cell} round {round}");
        check_turns(&recs, 20_000_000);
        for r in &recs {
            // The server counts the words of every message it was sent: the whole history.
            assert_eq!(r["input_tokens"], r["requested_input_tokens"], "{r}");
            assert_eq!(r["output_tokens"], 4, "{r}");
        }
    }
}

/// The HTTP driver against the in-process fixed server: the server never received a turn
/// before it had written the previous turn's last token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_receives_each_turn_after_writing_the_previous_answer() {
    let timing = FixedTiming::new(Duration::from_millis(5), Duration::from_millis(1));
    let srv = serve::spawn_fixed("127.0.0.1:0".parse().unwrap(), timing)
        .await
        .unwrap();
    let client = common::fixed_client(Protocol::OpenaiChat, srv.base_url(), 8);
    let cfg = WorkloadConfig {
        prompts: PromptSource::Conversations {
            path: Path::new(env!("CARGO_MANIFEST_DIR")).join(DATASET),
            think_time: Duration::ZERO,
        },
        prompt_tokens: 512,
        prompt_dist: LengthDist::Fixed,
        output_tokens: 6,
        output_dist: LengthDist::Fixed,
        arrival: ArrivalConfig::Closed {
            concurrency: 4.try_into().unwrap(),
        },
        max_concurrency: None,
        requests: Some(8),
        duration: None,
        warmup: 0,
        grace: Duration::from_secs(5),
    };
    let seeds = WorkloadSeeds {
        arrivals: 1,
        prompts: 2,
        lengths: 3,
        warmup: 4,
    };
    let work = Datasets::new().build(&cfg, &seeds).unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let report = exp::run::driver::drive(std::sync::Arc::new(client), &work, tx).await;
    let mut recs: Vec<RequestRecord> = Vec::new();
    while let Some(r) = rx.recv().await {
        recs.push(r);
    }
    let expected: u32 = (0..8).map(|i| work.source.turns(i)).sum();
    assert_eq!(recs.len(), expected as usize);
    assert!(expected > 8, "the conversations have several turns");
    recs.sort_by_key(|r| (r.index, r.turn));
    let truth = srv.truth();
    assert_eq!(truth.len(), recs.len());
    // The server entry of a record: same prompt length, received soonest after the send.
    let entry = |r: &RequestRecord| {
        let sent = report.origin + Duration::from_nanos(r.sent_ns.unwrap());
        truth
            .iter()
            .filter(|t| t.prompt_tokens == r.requested_input_tokens.unwrap())
            .filter(|t| t.received >= sent)
            .min_by_key(|t| t.received - sent)
            .expect("the server logged the request")
    };
    for pair in recs.windows(2).filter(|p| p[0].index == p[1].index) {
        let (a, b) = (entry(&pair[0]), entry(&pair[1]));
        assert_eq!(b.prompt_tokens, pair[1].input_tokens.unwrap());
        assert!(
            b.received > a.last_token.unwrap(),
            "conversation {} turn {} reached the server before turn {} was answered",
            pair[1].index,
            pair[1].turn,
            pair[0].turn
        );
    }
    srv.shutdown().await.unwrap();
}
