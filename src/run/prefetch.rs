//! Prompt text built off the async workers. Building a request can take a while (a prompt of
//! exactly 32K tokenizer tokens takes about 0.1 s); built on a tokio worker, it would stall
//! every stream whose socket that worker polls, and their chunks would be stamped late. So
//! requests are built ahead of need on a few threads of their own and handed over through
//! bounded channels.
//!
//! Request `i` is still exactly `source.request(i)` (sources are deterministic per index), and
//! they come out in index order: builder `k` of `n` builds indices `k, k + n, k + 2n, …` into
//! its own channel, and [`Prefetch::next`] reads the channels round-robin. Memory stays bounded
//! by the lookahead (about `depth` requests built and not yet taken, plus one in progress per
//! builder). When a builder cannot be started or dies, its requests are built inline instead:
//! slower to send, never missing.

use std::sync::Arc;

use tokio::sync::mpsc;

use crate::fanout::Share;
use crate::workload::work::{RequestSource, RequestSpec};

/// Most requests built ahead of need: enough to fill a wide closed loop at its start, small
/// enough that 32K-token prompts stay in the tens of megabytes.
pub(super) const MAX_DEPTH: usize = 256;

/// Requests built ahead for an open loop without `max_concurrency`.
pub(super) const OPEN_DEPTH: usize = 32;

/// Requests `0..limit` of a source (or a client's share of them), built ahead on their own
/// threads, taken in order.
pub(super) struct Prefetch {
    source: Arc<dyn RequestSource>,
    lanes: Vec<mpsc::Receiver<RequestSpec>>,
    /// Position of the next request among those taken (its index without a share).
    next: u64,
    limit: u64,
    share: Option<Share>,
}

/// The index of the request at position `p`: `p` itself, or the share's `p`-th request.
fn index_at(share: Option<Share>, p: u64) -> Option<u64> {
    match share {
        None => Some(p),
        Some(share) => share.nth(p),
    }
}

impl Prefetch {
    /// Starts building requests `0..limit` of `source`, at most about `depth` ahead of the
    /// ones taken (`depth` is clamped to `1..=MAX_DEPTH`), on up to one thread per core.
    pub(super) fn start(source: Arc<dyn RequestSource>, limit: u64, depth: usize) -> Prefetch {
        Prefetch::start_share(source, limit, depth, None)
    }

    /// [`Prefetch::start`] for a client's `share` of requests `0..limit`: they come out in
    /// index order with their indices in the planned schedule.
    pub(super) fn start_share(
        source: Arc<dyn RequestSource>,
        limit: u64,
        depth: usize,
        share: Option<Share>,
    ) -> Prefetch {
        let depth = depth.clamp(1, MAX_DEPTH);
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let lanes = cores.min(depth).max(1);
        let per_lane = depth.div_ceil(lanes);
        let receivers = (0..lanes)
            .map(|k| {
                let (tx, rx) = mpsc::channel(per_lane);
                let source = source.clone();
                let stride = lanes as u64;
                // A thread that cannot be started leaves its channel closed: `next` then
                // builds that lane's requests itself.
                let _ = std::thread::Builder::new()
                    .name(format!("exp-prompts-{k}"))
                    .spawn(move || {
                        build_lane(source.as_ref(), share, k as u64, stride, limit, &tx)
                    });
                rx
            })
            .collect();
        Prefetch {
            source,
            lanes: receivers,
            next: 0,
            limit,
            share,
        }
    }

    /// The next request in index order with its index, or `None` past `limit`. Waits (without
    /// blocking the worker) while it is still being built.
    pub(super) async fn next(&mut self) -> Option<(u64, RequestSpec)> {
        let i = index_at(self.share, self.next).filter(|&i| i < self.limit)?;
        let lane = (self.next % self.lanes.len() as u64) as usize;
        self.next += 1;
        let spec = match self.lanes[lane].recv().await {
            Some(spec) => spec,
            // The builder never started or panicked: build here (a panic then repeats where
            // it can be seen).
            None => self.source.request(i),
        };
        Some((i, spec))
    }
}

/// Builds the requests at positions `first, first + stride, …` (indices below `limit`) into
/// `tx`, until the receiver goes.
fn build_lane(
    source: &dyn RequestSource,
    share: Option<Share>,
    first: u64,
    stride: u64,
    limit: u64,
    tx: &mpsc::Sender<RequestSpec>,
) {
    let mut p = first;
    while let Some(i) = index_at(share, p).filter(|&i| i < limit) {
        if tx.blocking_send(source.request(i)).is_err() {
            return;
        }
        p = match p.checked_add(stride) {
            Some(next) => next,
            None => return,
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::work::Prompt;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::time::{Duration, Instant};

    /// Request `i`'s prompt is `i`; every build sleeps `delay` and is counted.
    struct Slow {
        delay: Duration,
        built: AtomicU64,
    }
    impl RequestSource for Slow {
        fn lengths(&self, _i: u64) -> (u32, u32) {
            (1, 1)
        }
        fn request(&self, i: u64) -> RequestSpec {
            std::thread::sleep(self.delay);
            self.built.fetch_add(1, Ordering::SeqCst);
            RequestSpec {
                prompt: Prompt::Text(i.to_string()),
                input_tokens: 1,
                max_tokens: 1,
            }
        }
    }

    fn slow(ms: u64) -> Arc<Slow> {
        Arc::new(Slow {
            delay: Duration::from_millis(ms),
            built: AtomicU64::new(0),
        })
    }

    #[tokio::test]
    async fn requests_come_in_index_order_and_stop_at_the_limit() {
        let mut p = Prefetch::start(slow(0), 50, 7);
        for want in 0..50u64 {
            let (i, spec) = p.next().await.unwrap();
            assert_eq!(i, want);
            assert_eq!(spec.prompt, Prompt::Text(want.to_string()));
        }
        assert!(p.next().await.is_none());
    }

    #[tokio::test]
    async fn building_runs_ahead_but_no_further_than_the_depth() {
        let _quiet = crate::fuzz::QUIET.lock().await;
        let source = slow(1);
        let p = Prefetch::start(source.clone(), 1000, 8);
        tokio::time::sleep(Duration::from_millis(300)).await;
        let built = source.built.load(Ordering::SeqCst);
        // Each lane holds its share of the depth and one more finished build waiting for a
        // place (blocked in `blocking_send`).
        let lanes = p.lanes.len() as u64;
        let most = 8u64.div_ceil(lanes) * lanes + lanes;
        assert!(built >= 8 && built <= most, "built {built}, at most {most}");
        drop(p);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_slow_build_never_blocks_the_runtime() {
        let _quiet = crate::fuzz::QUIET.lock().await;
        // One runtime thread: a build on it would stop the ticker below for 150 ms.
        let mut p = Prefetch::start(slow(150), 2, 1);
        let ticker = tokio::spawn(async {
            let mut worst = Duration::ZERO;
            for _ in 0..30 {
                let t = Instant::now();
                tokio::time::sleep(Duration::from_millis(5)).await;
                worst = worst.max(t.elapsed());
            }
            worst
        });
        while p.next().await.is_some() {}
        let worst = ticker.await.unwrap();
        assert!(worst < Duration::from_millis(100), "a tick took {worst:?}");
    }

    #[tokio::test]
    async fn a_lane_without_a_builder_is_built_inline() {
        let source = slow(0);
        let mut p = Prefetch::start(source.clone(), 3, 1);
        // What a builder that died leaves: a closed channel.
        let (_, closed) = mpsc::channel(1);
        p.lanes = vec![closed];
        for want in 0..3 {
            assert_eq!(p.next().await.unwrap().0, want);
        }
    }
}
