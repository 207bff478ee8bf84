//! The HTTP driver with a multi-turn source: a conversation's turn `t + 1` is sent only after
//! turn `t` finished, scheduled at its completion (plus think time); a failed turn ends the
//! conversation; no turn is sent after the release deadline.

use std::num::NonZeroU32;
use std::sync::Mutex;

use super::*;
use crate::record::Chunk;
use crate::workload::work::Prompt;

/// What the fake server saw of one request, on its own clock (ns from the origin).
#[derive(Debug, Clone, Copy)]
struct Seen {
    index: u64,
    turn: u32,
    start: u64,
    end: u64,
}

/// A server taking `delay` per request that fails turn `fail.1` of conversation `fail.0`.
struct Fake {
    delay: Duration,
    fail: Option<(u64, u32)>,
    seen: Mutex<Vec<Seen>>,
    in_flight: AtomicU64,
    peak: AtomicU64,
}

impl Fake {
    fn new(delay_ms: u64, fail: Option<(u64, u32)>) -> Arc<Self> {
        Arc::new(Fake {
            delay: Duration::from_millis(delay_ms),
            fail,
            seen: Mutex::new(Vec::new()),
            in_flight: AtomicU64::new(0),
            peak: AtomicU64::new(0),
        })
    }
}

/// The (conversation, turn) a [`Turns`] prompt encodes.
fn parse(req: &RequestSpec) -> (u64, u32) {
    let Prompt::Text(t) = &req.prompt else {
        panic!("text prompts")
    };
    let (i, t) = t.split_once(':').unwrap();
    (i.parse().unwrap(), t.parse().unwrap())
}

impl Sender for Fake {
    async fn send(
        &self,
        req: RequestSpec,
        index: u64,
        origin: std::time::Instant,
        scheduled_ns: u64,
    ) -> RequestRecord {
        let (i, turn) = parse(&req);
        let start = origin.elapsed().as_nanos() as u64;
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.peak.fetch_max(now, Ordering::SeqCst);
        tokio::time::sleep(self.delay).await;
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        let end = origin.elapsed().as_nanos() as u64;
        self.seen.lock().unwrap().push(Seen {
            index: i,
            turn,
            start,
            end,
        });
        let outcome = if self.fail == Some((index, turn)) {
            Outcome::Failed {
                reason: FailureReason::Http,
                http_status: Some(500),
                message: "boom".into(),
            }
        } else {
            Outcome::Ok
        };
        RequestRecord {
            index,
            turn: 0,
            scheduled_ns,
            sent_ns: Some(start),
            first_sent_ns: None,
            no_done: false,
            text: None,
            counted: None,
            chunks: vec![Chunk {
                at_ns: end,
                tokens: Some(1),
                reasoning: false,
            }],
            done_ns: Some(end),
            input_tokens: Some(req.input_tokens),
            output_tokens: Some(1),
            requested_input_tokens: Some(req.input_tokens),
            requested_output_tokens: Some(req.max_tokens),
            finish_reason: None,
            outcome,
        }
    }
}

/// Conversation `i` has `1 + i % 3` turns; turn `t` has a `10·(t+1)`-token prompt whose text
/// is `"{tag + i}:{t}"` (warm-up requests carry tag 1000, so the fake tells them apart).
struct Turns {
    think: Duration,
    tag: u64,
}

impl RequestSource for Turns {
    fn lengths(&self, i: u64) -> (u32, u32) {
        self.turn_lengths(i, 0)
    }
    fn request(&self, i: u64) -> RequestSpec {
        self.turn(i, 0)
    }
    fn turns(&self, i: u64) -> u32 {
        1 + (i % 3) as u32
    }
    fn turn_lengths(&self, _i: u64, t: u32) -> (u32, u32) {
        (10 * (t + 1), 1)
    }
    fn turn(&self, i: u64, t: u32) -> RequestSpec {
        RequestSpec {
            prompt: Prompt::Text(format!("{}:{t}", self.tag + i)),
            input_tokens: 10 * (t + 1),
            max_tokens: 1,
        }
    }
    fn think_time(&self) -> Duration {
        self.think
    }
}

fn work(arrivals: Arrivals, think_ms: u64, requests: Option<u64>) -> RepetitionWork {
    let think = Duration::from_millis(think_ms);
    RepetitionWork {
        warmup: 2,
        source: Arc::new(Turns { think, tag: 0 }),
        warmup_source: Arc::new(Turns { think, tag: 1000 }),
        requests,
        duration: None,
        grace: Duration::from_millis(500),
        arrivals,
        share: None,
    }
}

async fn run(fake: Arc<Fake>, w: &RepetitionWork) -> (DriveReport, Vec<RequestRecord>) {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let report = drive(fake, w, tx).await;
    let mut recs = Vec::new();
    while let Some(r) = rx.recv().await {
        recs.push(r);
    }
    recs.sort_by_key(|r| (r.index, r.turn));
    (report, recs)
}

/// Every conversation's turns are recorded in order, each scheduled at the previous one's
/// completion plus `think_ns`, and the server saw each begin only after the previous ended.
fn assert_turn_by_turn(fake: &Fake, recs: &[RequestRecord], think_ns: u64) {
    let seen = fake.seen.lock().unwrap().clone();
    for pair in recs.windows(2) {
        let (a, b) = (&pair[0], &pair[1]);
        if a.index != b.index {
            assert_eq!(b.turn, 0);
            continue;
        }
        assert_eq!(b.turn, a.turn + 1);
        assert_eq!(b.scheduled_ns, a.done_ns.unwrap() + think_ns);
        assert!(b.sent_ns.unwrap() >= b.scheduled_ns);
        assert!(b.requested_input_tokens > a.requested_input_tokens);
        let find = |r: &RequestRecord| {
            *seen
                .iter()
                .find(|s| (s.index, s.turn) == (r.index, r.turn))
                .unwrap()
        };
        let (sa, sb) = (find(a), find(b));
        assert!(
            sb.start >= sa.end + think_ns,
            "conversation {}: turn {} began at {} before turn {} ended at {} (+ think)",
            a.index,
            b.turn,
            sb.start,
            a.turn,
            sa.end
        );
    }
}

#[tokio::test]
async fn closed_loop_keeps_conversations_in_flight_and_sends_turns_in_order() {
    let fake = Fake::new(5, None);
    let w = work(
        Arrivals::Closed {
            concurrency: NonZeroU32::new(2).unwrap(),
        },
        0,
        Some(6),
    );
    let (report, recs) = run(fake.clone(), &w).await;
    assert_eq!(report.released, 6, "conversations");
    // Conversations 0..6 have 1, 2, 3, 1, 2, 3 turns.
    assert_eq!(recs.len(), 12);
    assert!(recs.iter().all(|r| r.outcome.is_ok()));
    // Two conversations at a time, each one request at a time.
    assert_eq!(fake.peak.load(Ordering::SeqCst), 2);
    assert_turn_by_turn(&fake, &recs, 0);
    // Warm-up sends first turns only.
    let warm: Vec<(u64, u32)> = fake
        .seen
        .lock()
        .unwrap()
        .iter()
        .filter(|s| s.index >= 1000)
        .map(|s| (s.index, s.turn))
        .collect();
    assert_eq!(warm.len(), 2);
    assert!(warm.iter().all(|&(_, t)| t == 0), "{warm:?}");
}

#[tokio::test]
async fn think_time_delays_the_next_turn_and_open_loop_keeps_first_turns_on_schedule() {
    let fake = Fake::new(5, None);
    let offsets: Vec<u64> = (0..3).map(|i| i * 10_000_000).collect();
    let w = work(
        Arrivals::Open {
            offsets_ns: offsets.clone(),
            max_concurrency: None,
        },
        20,
        Some(3),
    );
    let (_, recs) = run(fake.clone(), &w).await;
    assert_eq!(recs.len(), 6);
    for r in recs.iter().filter(|r| r.turn == 0) {
        assert_eq!(r.scheduled_ns, offsets[r.index as usize]);
    }
    assert_turn_by_turn(&fake, &recs, 20_000_000);
}

#[tokio::test]
async fn a_failed_turn_ends_its_conversation() {
    // Conversation 2 has three turns; its turn 1 fails, so turn 2 is never sent.
    let fake = Fake::new(2, Some((2, 1)));
    let w = work(Arrivals::Batch { size: nz(3) }, 0, Some(3));
    let (_, recs) = run(fake.clone(), &w).await;
    let two: Vec<u32> = recs
        .iter()
        .filter(|r| r.index == 2)
        .map(|r| r.turn)
        .collect();
    assert_eq!(two, [0, 1]);
    assert!(
        !recs
            .iter()
            .find(|r| (r.index, r.turn) == (2, 1))
            .unwrap()
            .outcome
            .is_ok()
    );
    assert_eq!(recs.len(), 1 + 2 + 2);
    assert_turn_by_turn(&fake, &recs, 0);
}

#[tokio::test]
async fn no_turn_is_sent_at_or_after_the_release_deadline() {
    // 60 ms per turn, 100 ms of releases: conversation 2's turns 0 (at 0) and 1 (≈ 60 ms) are
    // sent and finish within the grace period; turn 2 (due ≈ 120 ms) is not sent.
    let fake = Fake::new(60, None);
    let mut w = work(
        Arrivals::Open {
            offsets_ns: vec![0, 0, 0],
            max_concurrency: None,
        },
        0,
        None,
    );
    w.duration = Some(Duration::from_millis(100));
    let (report, recs) = run(fake, &w).await;
    assert_eq!(report.released, 3);
    let sent: Vec<(u64, u32)> = recs.iter().map(|r| (r.index, r.turn)).collect();
    assert_eq!(sent, [(0, 0), (1, 0), (1, 1), (2, 0), (2, 1)]);
    assert!(recs.iter().all(|r| r.outcome.is_ok()));
}

fn nz(n: u32) -> NonZeroU32 {
    NonZeroU32::new(n).unwrap()
}
