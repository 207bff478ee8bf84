use std::num::NonZeroU32;
use std::sync::atomic::AtomicU32;

use super::*;
use crate::record::Chunk;
use crate::workload::work::Prompt;

/// A sender whose "server" takes a fixed time and which tracks requests in flight.
#[derive(Default)]
struct Fake {
    delay: Duration,
    in_flight: AtomicU32,
    peak: AtomicU32,
    calls: AtomicU64,
    /// Sends made before the origin (their instants would saturate to 0).
    early: AtomicU32,
}

impl Sender for Fake {
    async fn send(
        &self,
        req: RequestSpec,
        index: u64,
        origin: std::time::Instant,
        scheduled_ns: u64,
    ) -> RequestRecord {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if std::time::Instant::now() < origin {
            self.early.fetch_add(1, Ordering::SeqCst);
        }
        let sent = origin.elapsed().as_nanos() as u64;
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.peak.fetch_max(now, Ordering::SeqCst);
        tokio::time::sleep(self.delay).await;
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        let done = origin.elapsed().as_nanos() as u64;
        RequestRecord {
            index,
            turn: 0,
            scheduled_ns,
            sent_ns: Some(sent),
            first_sent_ns: None,
            no_done: false,
            text: None,
            counted: None,
            chunks: vec![Chunk {
                at_ns: done,
                tokens: Some(1),
                reasoning: false,
            }],
            done_ns: Some(done),
            input_tokens: Some(req.input_tokens),
            output_tokens: Some(1),
            requested_input_tokens: Some(req.input_tokens),
            requested_output_tokens: Some(req.max_tokens),
            finish_reason: None,
            outcome: Outcome::Ok,
        }
    }
}

struct Words;
impl RequestSource for Words {
    fn lengths(&self, _i: u64) -> (u32, u32) {
        (3, 1)
    }
    fn request(&self, i: u64) -> RequestSpec {
        RequestSpec {
            prompt: Prompt::Text(format!("hello {i} world")),
            input_tokens: 3,
            max_tokens: 1,
        }
    }
}

fn work(arrivals: Arrivals, requests: Option<u64>, duration: Option<Duration>) -> RepetitionWork {
    RepetitionWork {
        warmup: 2,
        source: Arc::new(Words),
        warmup_source: Arc::new(Words),
        requests,
        duration,
        grace: Duration::from_millis(30),
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
    recs.sort_by_key(|r| r.index);
    (report, recs)
}

fn nz(n: u32) -> NonZeroU32 {
    NonZeroU32::new(n).unwrap()
}

#[tokio::test]
async fn open_loop_sends_on_schedule_and_keeps_the_scheduled_instant() {
    let _quiet = crate::fuzz::QUIET.lock().await;
    let fake = Arc::new(Fake {
        delay: Duration::from_millis(20),
        ..Default::default()
    });
    let offsets: Vec<u64> = (0..10).map(|i| i * 10_000_000).collect();
    let w = work(
        Arrivals::Open {
            offsets_ns: offsets.clone(),
            max_concurrency: None,
        },
        Some(10),
        None,
    );
    let (report, recs) = run(fake.clone(), &w).await;
    assert_eq!(report.released, 10);
    assert_eq!(recs.len(), 10);
    // Warm-up requests were sent but not recorded.
    assert_eq!(fake.calls.load(Ordering::SeqCst), 12);
    for (r, off) in recs.iter().zip(&offsets) {
        assert_eq!(r.scheduled_ns, *off);
        let late = r.sent_ns.unwrap() - r.scheduled_ns;
        // Generous: the machine running the tests is shared; lateness is measured, not hidden.
        assert!(late < 25_000_000, "request {} sent {late} ns late", r.index);
    }
    // Sends every 10 ms with 20 ms service: two or three in flight, never ten.
    assert!(fake.peak.load(Ordering::SeqCst) <= 4);
}

#[tokio::test]
async fn max_concurrency_makes_requests_wait_and_the_wait_is_visible() {
    let fake = Arc::new(Fake {
        delay: Duration::from_millis(30),
        ..Default::default()
    });
    let w = work(
        Arrivals::Open {
            offsets_ns: vec![0; 6],
            max_concurrency: Some(nz(2)),
        },
        Some(6),
        None,
    );
    let (_, recs) = run(fake.clone(), &w).await;
    assert_eq!(fake.peak.load(Ordering::SeqCst), 2);
    // The last pair waited for two earlier pairs: about 60 ms of queue delay.
    let last = &recs[5];
    assert!(last.sent_ns.unwrap() - last.scheduled_ns >= 55_000_000);
}

#[tokio::test]
async fn closed_loop_holds_exactly_its_concurrency() {
    let fake = Arc::new(Fake {
        delay: Duration::from_millis(5),
        ..Default::default()
    });
    let w = work(Arrivals::Closed { concurrency: nz(4) }, Some(40), None);
    let (report, recs) = run(fake.clone(), &w).await;
    assert_eq!((report.released, recs.len()), (40, 40));
    assert_eq!(fake.peak.load(Ordering::SeqCst), 4);
    let indices: Vec<u64> = recs.iter().map(|r| r.index).collect();
    assert_eq!(indices, (0..40).collect::<Vec<_>>());
    assert_eq!(
        fake.early.load(Ordering::SeqCst),
        0,
        "sent before the origin"
    );
}

#[tokio::test]
async fn batch_mode_sends_whole_batches_and_waits_for_them() {
    let fake = Arc::new(Fake {
        delay: Duration::from_millis(10),
        ..Default::default()
    });
    let w = work(Arrivals::Batch { size: nz(3) }, Some(7), None);
    let (_, recs) = run(fake.clone(), &w).await;
    assert_eq!(recs.len(), 7);
    assert_eq!(fake.peak.load(Ordering::SeqCst), 3);
    // Requests of one batch share their scheduled instant; the next batch starts after.
    assert_eq!(recs[0].scheduled_ns, recs[2].scheduled_ns);
    assert!(recs[3].scheduled_ns >= recs[2].done_ns.unwrap());
    assert_eq!(
        fake.early.load(Ordering::SeqCst),
        0,
        "sent before the origin"
    );
}

#[tokio::test]
async fn duration_stops_releases_and_cancels_what_outlives_the_grace_period() {
    let fake = Arc::new(Fake {
        delay: Duration::from_millis(200),
        ..Default::default()
    });
    let offsets: Vec<u64> = (0..100).map(|i| i * 10_000_000).collect();
    let w = work(
        Arrivals::Open {
            offsets_ns: offsets,
            max_concurrency: None,
        },
        None,
        Some(Duration::from_millis(50)),
    );
    let (report, recs) = run(fake, &w).await;
    // Sends at 0..40 ms fall inside 50 ms; none of them can finish within 50 + 30 ms.
    assert_eq!(report.released, 5);
    assert_eq!(recs.len(), 5);
    assert!(recs.iter().all(|r| matches!(
        r.outcome,
        Outcome::Failed {
            reason: FailureReason::Cancelled,
            ..
        }
    )));
}
