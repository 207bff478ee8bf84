//! When a fanned-out client (`exp run --client K/N`) starts a repetition's measured requests:
//! at a wall-clock instant every client shares, read once into this client's monotonic clock.
//!
//! The first repetition starts at `--start-at`. Each later one starts after a barrier on
//! files in a folder every client sees (beside the clients' run directories): after its
//! warm-up, client K writes `client-K.ready` (its wall clock then) into the repetition's
//! folder and waits for all N; the instant is the latest of the N times plus
//! [`BARRIER_LEAD`], which every client computes alike from the same files. No coordinator,
//! only one file system.
//!
//! A client that reaches the instant more than `max_skew` late (its warm-up, or the barrier,
//! finished too late) sends nothing and fails its repetition with the skew: its load would not
//! have been the planned load. A client that never writes its ready file (it died) leaves the
//! others to fail the repetition after a timeout, naming it; they go on with the next one.

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use tokio::time::Instant;

use crate::fanout::{self, Client, ClientMark, ClientPlan};
use crate::workload::work::RepetitionWork;

/// Between the last client's ready time and the shared instant: room for the other clients
/// to see its file (polling, a network file system's attribute cache).
pub const BARRIER_LEAD: Duration = Duration::from_secs(1);

/// How long a client waits at a barrier for the others when its repetitions have no
/// `duration` (with one, `duration + grace + 2 min`).
const BARRIER_TIMEOUT: Duration = Duration::from_secs(600);

/// How often the barrier folder is read.
const POLL: Duration = Duration::from_millis(20);

/// Until this long before the instant the client sleeps on its wall clock; then it reads
/// both clocks once and sleeps on the monotonic one (so clock slewing over a long wait does
/// not move the origin).
const CONVERT: Duration = Duration::from_millis(200);

/// Where a repetition's shared instant comes from.
#[derive(Debug, Clone)]
pub enum At {
    /// `--start-at`: the first repetition.
    Fixed(SystemTime),
    /// The barrier in `dir`, waited for at most `timeout`.
    Barrier {
        /// The repetition's folder in the shared barrier directory.
        dir: PathBuf,
        /// How long to wait for every client's ready file.
        timeout: Duration,
    },
}

/// One repetition's start, for one client.
#[derive(Debug, Clone)]
pub struct Gate {
    /// The client.
    pub client: Client,
    /// The instant, or how to agree on it.
    pub at: At,
    /// Latest acceptable origin after the instant.
    pub max_skew: Duration,
    /// This machine's name, for the marker.
    pub node: String,
}

/// What a client's gate let through.
#[derive(Debug, Clone)]
pub struct Began {
    /// The origin on this client's monotonic clock.
    pub origin: Instant,
    /// The origin on its wall clock.
    pub origin_wall: SystemTime,
    /// The marker's record of the start.
    pub mark: ClientMark,
    /// Why the repetition fails without sending (late, or the barrier timed out).
    pub refused: Option<String>,
}

impl Gate {
    /// The gate of a client's repetition `round` of `cell_id`: the first slot of the
    /// schedule (`first`) starts at `--start-at`, every later one after the barrier in its
    /// own folder.
    pub fn of_slot(
        c: &ClientPlan,
        first: bool,
        cell_id: &str,
        round: u32,
        work: &RepetitionWork,
    ) -> Gate {
        let at = match first {
            true => At::Fixed(c.start_at),
            false => At::Barrier {
                dir: c.barrier.join(format!("{cell_id}-r{round:03}")),
                timeout: (work.duration).map_or(BARRIER_TIMEOUT, |d| {
                    d + work.grace + Duration::from_secs(120)
                }),
            },
        };
        Gate {
            client: c.client,
            at,
            max_skew: c.max_skew,
            node: c.node.clone(),
        }
    }

    /// Waits for the repetition's instant and returns the origin.
    pub async fn wait(&self) -> Began {
        let instant = match &self.at {
            At::Fixed(at) => Ok(*at),
            At::Barrier { dir, timeout } => barrier(dir, self.client, *timeout).await,
        };
        let instant = match instant {
            Ok(at) => at,
            Err(why) => {
                let now = SystemTime::now();
                return self.began(Instant::now(), now, now, Some(why));
            }
        };
        if let Ok(ahead) = instant.duration_since(SystemTime::now())
            && ahead > CONVERT
        {
            sleep_wall(instant - CONVERT).await;
        }
        let (mono, wall) = (Instant::now(), SystemTime::now());
        let (origin, origin_wall) = match instant.duration_since(wall) {
            Ok(ahead) => (mono + ahead, instant),
            Err(_) => (mono, wall),
        };
        let skew = origin_wall.duration_since(instant).unwrap_or_default();
        let refused = (skew > self.max_skew).then(|| {
            format!(
                "client {} started {:.1} ms after the shared instant {} (max skew {} ms): its share was not sent, so the repetition did not carry the planned load (a slow warm-up or a late start; give a later --start-at, or raise --max-skew)",
                self.client,
                skew.as_secs_f64() * 1e3,
                humantime::format_rfc3339_millis(instant),
                self.max_skew.as_millis()
            )
        });
        self.began(origin, origin_wall, instant, refused)
    }

    fn began(
        &self,
        origin: Instant,
        origin_wall: SystemTime,
        instant: SystemTime,
        refused: Option<String>,
    ) -> Began {
        Began {
            origin,
            origin_wall,
            mark: ClientMark {
                index: self.client.index,
                count: self.client.count,
                node: self.node.clone(),
                start_at: humantime::format_rfc3339_nanos(instant).to_string(),
                skew_ms: fanout::skew_ms(origin_wall, instant),
            },
            refused,
        }
    }
}

/// Sleeps until the wall clock reads `at` (re-reading it, in case it is stepped).
async fn sleep_wall(at: SystemTime) {
    while let Ok(left) = at.duration_since(SystemTime::now()) {
        if left.is_zero() {
            return;
        }
        tokio::time::sleep(left.min(Duration::from_secs(1))).await;
    }
}

/// Writes this client's ready file into `dir`, waits for every client's, and returns the
/// shared instant; `Err` names the clients that did not come within `timeout`.
async fn barrier(
    dir: &std::path::Path,
    client: Client,
    timeout: Duration,
) -> Result<SystemTime, String> {
    let fail = |e: std::io::Error| format!("{}: cannot write the barrier file: {e}", dir.display());
    std::fs::create_dir_all(dir).map_err(fail)?;
    let now = humantime::format_rfc3339_nanos(SystemTime::now()).to_string();
    let mine = dir.join(format!("client-{}.ready", client.index));
    crate::store::write_atomic(&mine, now.as_bytes()).map_err(|e| e.to_string())?;
    let deadline = Instant::now() + timeout;
    loop {
        let (times, missing) = read_ready(dir, client.count);
        if missing.is_empty() {
            let last = times.into_iter().max().expect("count ≥ 1");
            return Ok(last + BARRIER_LEAD);
        }
        if Instant::now() >= deadline {
            let names: Vec<String> = missing
                .iter()
                .map(|k| format!("{k}/{}", client.count))
                .collect();
            return Err(format!(
                "client {} did not reach this repetition within {} s (no ready file in {}): it died, or is still running an earlier repetition; the repetition is failed on every client",
                names.join(", "),
                timeout.as_secs(),
                dir.display()
            ));
        }
        tokio::time::sleep(POLL).await;
    }
}

/// The ready times found in `dir`, and the clients whose file is missing (or unreadable).
fn read_ready(dir: &std::path::Path, count: u32) -> (Vec<SystemTime>, Vec<u32>) {
    let (mut times, mut missing) = (Vec::new(), Vec::new());
    for k in 1..=count {
        let text = std::fs::read_to_string(dir.join(format!("client-{k}.ready")));
        match text
            .ok()
            .and_then(|t| humantime::parse_rfc3339(t.trim()).ok())
        {
            Some(t) => times.push(t),
            None => missing.push(k),
        }
    }
    (times, missing)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gate(at: At, max_skew_ms: u64) -> Gate {
        Gate {
            client: Client { index: 2, count: 2 },
            at,
            max_skew: Duration::from_millis(max_skew_ms),
            node: "n1".into(),
        }
    }

    #[tokio::test]
    async fn a_future_instant_is_met_on_time() {
        let at = SystemTime::now() + Duration::from_millis(50);
        let began = gate(At::Fixed(at), 50).wait().await;
        assert!(began.refused.is_none());
        assert_eq!(began.origin_wall, at);
        assert_eq!(began.mark.skew_ms, 0.0);
        assert!(began.origin > Instant::now() - Duration::from_millis(20));
    }

    #[tokio::test]
    async fn a_late_client_is_refused_with_its_skew() {
        let at = SystemTime::now() - Duration::from_secs(2);
        let began = gate(At::Fixed(at), 50).wait().await;
        let why = began.refused.expect("late");
        assert!(why.starts_with("client 2/2 started 2"), "{why}");
        assert!(why.contains("max skew 50 ms"), "{why}");
        assert!(began.mark.skew_ms >= 2000.0);
    }

    #[tokio::test]
    async fn the_barrier_agrees_on_the_latest_ready_time() {
        let dir = tempfile::tempdir().unwrap();
        let other = humantime::format_rfc3339_nanos(SystemTime::now()).to_string();
        std::fs::write(dir.path().join("client-1.ready"), &other).unwrap();
        let at = At::Barrier {
            dir: dir.path().into(),
            timeout: Duration::from_secs(5),
        };
        let began = gate(at, 50).wait().await;
        assert!(began.refused.is_none(), "{:?}", began.refused);
        let (times, missing) = read_ready(dir.path(), 2);
        assert!(missing.is_empty());
        assert_eq!(
            began.origin_wall,
            times.into_iter().max().unwrap() + BARRIER_LEAD
        );
    }

    #[tokio::test]
    async fn a_missing_client_fails_the_barrier_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let at = At::Barrier {
            dir: dir.path().into(),
            timeout: Duration::from_millis(60),
        };
        let why = gate(at, 50).wait().await.refused.expect("timed out");
        assert!(
            why.starts_with("client 1/2 did not reach this repetition"),
            "{why}"
        );
    }
}
