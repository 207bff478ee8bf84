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

/// Takes every third arrival; remembers what it ran and when it was prepared.
#[derive(Default)]
struct Thirds {
    fake: Arc<Fake>,
    /// Sends the fake had seen when `prepare` ran (the warm-up's).
    prepared_after: AtomicU64,
    ran: std::sync::Mutex<Vec<(u64, u64)>>,
}

impl Divert for Thirds {
    fn prepare(&self) -> BoxFuture<'_, ()> {
        let seen = self.fake.calls.load(Ordering::SeqCst);
        self.prepared_after.store(seen, Ordering::SeqCst);
        Box::pin(async {})
    }
    fn takes(&self, index: u64) -> bool {
        index.is_multiple_of(3)
    }
    fn run(
        self: Arc<Self>,
        index: u64,
        _origin: std::time::Instant,
        scheduled_ns: u64,
    ) -> BoxFuture<'static, ()> {
        Box::pin(async move {
            tokio::time::sleep(Duration::from_millis(2)).await;
            self.ran.lock().unwrap().push((index, scheduled_ns));
        })
    }
}

/// `[quality] when = "under-load"`: arrivals a divert takes are its own in every arrival
/// process, never request records, and the divert is prepared after warm-up.
#[tokio::test]
async fn a_divert_takes_its_arrivals_in_every_mode_and_they_are_never_records() {
    let _quiet = crate::fuzz::QUIET.lock().await;
    let offsets: Vec<u64> = (0..12).map(|i| i * 2_000_000).collect();
    let modes = [
        Arrivals::Open {
            offsets_ns: offsets,
            max_concurrency: None,
        },
        Arrivals::Closed { concurrency: nz(3) },
        Arrivals::Batch { size: nz(4) },
    ];
    for arrivals in modes {
        let fake = Arc::new(Fake {
            delay: Duration::from_millis(3),
            ..Default::default()
        });
        let thirds = Arc::new(Thirds {
            fake: fake.clone(),
            ..Default::default()
        });
        let w = work(arrivals.clone(), Some(12), None);
        let (tx, mut rx) = mpsc::unbounded_channel();
        let divert = Some(thirds.clone() as Arc<dyn Divert>);
        let report = drive_with(fake.clone(), &w, tx, divert, None).await;
        let mut recs = Vec::new();
        while let Some(r) = rx.recv().await {
            recs.push(r);
        }
        let mut indices: Vec<u64> = recs.iter().map(|r| r.index).collect();
        indices.sort_unstable();
        let measured: Vec<u64> = (0..12u64).filter(|i| !i.is_multiple_of(3)).collect();
        assert_eq!(indices, measured, "{arrivals:?}");
        assert_eq!(report.released, 8, "{arrivals:?}");
        if let Arrivals::Open { offsets_ns, .. } = &arrivals {
            // A diverted arrival keeps its place in the schedule.
            for &(i, scheduled) in thirds.ran.lock().unwrap().iter() {
                assert_eq!(scheduled, offsets_ns[i as usize]);
            }
        }
        let mut ran: Vec<u64> = thirds.ran.lock().unwrap().iter().map(|r| r.0).collect();
        ran.sort_unstable();
        assert_eq!(ran, vec![0, 3, 6, 9], "{arrivals:?}");
        // Prepared after the two warm-up requests, before any measured one.
        assert_eq!(thirds.prepared_after.load(Ordering::SeqCst), 2);
        assert_eq!(fake.calls.load(Ordering::SeqCst), 2 + 8);
    }
}
