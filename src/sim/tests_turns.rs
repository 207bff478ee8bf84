//! Multi-turn conversations in virtual time, with hand-computed answers (1 ms per step): turn
//! `t + 1` is submitted at turn `t`'s last token (plus think time) with its longer input, the
//! conversation holds its slot throughout, and the deadline and KV rejections end it.

use std::time::Duration;

use super::tests::{FLAT, nz, params, work};
use super::*;
use crate::record::{FailureReason, Outcome, RequestRecord};
use crate::workload::work::{Arrivals, Prompt, RequestSource, RequestSpec};

/// Conversation `i` has `turns[i mod len]` turns; turn `t` has `100·(t+1)` prompt tokens and
/// 3 output tokens.
struct Chats {
    turns: Vec<u32>,
    think: Duration,
}

impl Chats {
    fn new(turns: &[u32], think_ms: u64) -> Self {
        Chats {
            turns: turns.to_vec(),
            think: Duration::from_millis(think_ms),
        }
    }
}

impl RequestSource for Chats {
    fn lengths(&self, i: u64) -> (u32, u32) {
        self.turn_lengths(i, 0)
    }
    fn request(&self, i: u64) -> RequestSpec {
        self.turn(i, 0)
    }
    fn turns(&self, i: u64) -> u32 {
        self.turns[(i % self.turns.len() as u64) as usize]
    }
    fn turn_lengths(&self, _i: u64, t: u32) -> (u32, u32) {
        (100 * (t + 1), 3)
    }
    fn turn(&self, i: u64, t: u32) -> RequestSpec {
        let (input_tokens, max_tokens) = self.turn_lengths(i, t);
        RequestSpec {
            prompt: Prompt::Text("x ".repeat(input_tokens as usize)),
            input_tokens,
            max_tokens,
        }
    }
    fn think_time(&self) -> Duration {
        self.think
    }
}

const MS: u64 = 1_000_000;

/// (conversation, turn, scheduled ms, sent ms, done ms) of every record, in the order sent.
fn timeline(r: &SimRun) -> Vec<(u64, u32, u64, u64, Option<u64>)> {
    r.records
        .iter()
        .map(|x| {
            (
                x.index,
                x.turn,
                x.scheduled_ns / MS,
                x.sent_ns.unwrap() / MS,
                x.done_ns.map(|d| d / MS),
            )
        })
        .collect()
}

fn run(w: &crate::workload::work::RepetitionWork, kv: u64) -> SimRun {
    run_repetition(w, &params(8, 8192, kv), &FLAT, 0).unwrap()
}

#[test]
fn each_turn_is_sent_at_the_previous_turns_last_token_with_a_longer_input() {
    let w = work(
        Arrivals::Closed { concurrency: nz(1) },
        Chats::new(&[3, 2], 0),
        Some(2),
    );
    let r = run(&w, 1 << 20);
    // 3 tokens take 3 steps of 1 ms; one conversation at a time.
    assert_eq!(
        timeline(&r),
        [
            (0, 0, 0, 0, Some(3)),
            (0, 1, 3, 3, Some(6)),
            (0, 2, 6, 6, Some(9)),
            (1, 0, 9, 9, Some(12)),
            (1, 1, 12, 12, Some(15)),
        ]
    );
    let inputs: Vec<u32> = r.records.iter().map(|x| x.input_tokens.unwrap()).collect();
    assert_eq!(inputs, [100, 200, 300, 100, 200]);
    assert!(r.records.iter().all(|x| x.outcome.is_ok()));
}

#[test]
fn think_time_delays_the_next_turn_and_keeps_the_slot() {
    let w = work(
        Arrivals::Closed { concurrency: nz(1) },
        Chats::new(&[3], 5),
        Some(2),
    );
    let r = run(&w, 1 << 20);
    assert_eq!(
        timeline(&r)[..4],
        [
            (0, 0, 0, 0, Some(3)),
            (0, 1, 8, 8, Some(11)),
            (0, 2, 16, 16, Some(19)),
            // The next conversation waited for the whole first one, think time included.
            (1, 0, 19, 19, Some(22)),
        ]
    );
}

#[test]
fn open_loop_cap_counts_conversations_and_batches_wait_for_every_turn() {
    let capped = Arrivals::Open {
        offsets_ns: vec![0, 0],
        max_concurrency: Some(nz(1)),
    };
    let r = run(&work(capped, Chats::new(&[2], 0), None), 1 << 20);
    let starts: Vec<_> = timeline(&r).into_iter().filter(|x| x.1 == 0).collect();
    // Conversation 1 was due at 0 and waited for both turns of conversation 0.
    assert_eq!(starts, [(0, 0, 0, 0, Some(3)), (1, 0, 0, 6, Some(9))]);

    let batch = Arrivals::Batch { size: nz(2) };
    let r = run(&work(batch, Chats::new(&[1, 3], 0), Some(4)), 1 << 20);
    let t = timeline(&r);
    let last_of_first_batch = t
        .iter()
        .filter(|x| x.0 < 2)
        .filter_map(|x| x.4)
        .max()
        .unwrap();
    assert_eq!(last_of_first_batch, 9, "conversation 1's third turn");
    for x in t.iter().filter(|x| x.0 >= 2 && x.1 == 0) {
        assert_eq!(
            (x.2, x.3),
            (9, 9),
            "the second batch starts after every turn"
        );
    }
    assert_eq!(t.len(), 1 + 3 + 1 + 3);
}

#[test]
fn the_deadline_and_a_rejected_turn_end_a_conversation() {
    let mut w = work(
        Arrivals::Closed { concurrency: nz(1) },
        Chats::new(&[3], 0),
        None,
    );
    w.duration = Some(Duration::from_millis(5));
    w.grace = Duration::from_millis(10);
    let r = run(&w, 1 << 20);
    // Turn 2 would be due at 6 ms, after the 5 ms deadline: never sent, nothing else starts.
    assert_eq!(timeline(&r), [(0, 0, 0, 0, Some(3)), (0, 1, 3, 3, Some(6))]);

    // 256 KV tokens hold turns 0 and 1 (100 + 3 − 1, 200 + 3 − 1) but never turn 2: it is
    // rejected, the conversation ends there and the next one starts at once.
    let w = work(
        Arrivals::Closed { concurrency: nz(1) },
        Chats::new(&[3], 0),
        Some(2),
    );
    let r = run(&w, 256);
    let rejected = |x: &RequestRecord| {
        matches!(
            x.outcome,
            Outcome::Failed {
                reason: FailureReason::Rejected,
                ..
            }
        )
    };
    let shape: Vec<(u64, u32, bool)> = r
        .records
        .iter()
        .map(|x| (x.index, x.turn, rejected(x)))
        .collect();
    assert_eq!(
        shape,
        [
            (0, 0, false),
            (0, 1, false),
            (0, 2, true),
            (1, 0, false),
            (1, 1, false),
            (1, 2, true),
        ]
    );
    assert_eq!(r.records[3].scheduled_ns, 6 * MS);
    assert_eq!(r.stats.rejected, 2);
}

#[test]
fn single_turn_sources_are_unchanged() {
    let w = work(
        Arrivals::Closed { concurrency: nz(2) },
        Chats::new(&[1], 0),
        Some(4),
    );
    let r = run(&w, 1 << 20);
    let t = timeline(&r);
    assert_eq!(
        t,
        [
            (0, 0, 0, 0, Some(3)),
            (1, 0, 0, 0, Some(3)),
            (2, 0, 3, 3, Some(6)),
            (3, 0, 3, 3, Some(6)),
        ]
    );
}
