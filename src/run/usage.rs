//! What the client itself cost, so no one mistakes a client limit for a server limit: the
//! process's CPU time over a repetition's measured part (after warm-up), the wall time of that
//! part and the cores the process may run on, written to the completion marker and turned
//! into per-repetition metrics when results are read back:
//!
//! * `client_cpu_per_request`: client CPU seconds per request sent;
//! * `client_cpu_util`: client CPU seconds per wall-clock second (1.0 = one core busy);
//! * `client_cpu_wait`: seconds the client's threads were ready to run but waited for a CPU
//!   (other processes held it), per wall-clock second; Linux only;
//! * `client_cores`: cores the client could use (its CPU affinity and quota).
//!
//! CPU time is the whole process's (`getrusage(RUSAGE_SELF)`: driver, HTTP stack, record
//! writer), so it is exact only when nothing else runs in the process, as in `exp run`. The
//! wait is the sum over the threads alive at both ends of the window
//! (`/proc/self/task/*/schedstat`); on a busy machine it is what turns a client that is fast
//! enough into one that is late.

use std::time::Instant;

use super::executor::Measured;
use crate::store::MarkerDetails;

/// The process's CPU time and run-queue wait at one moment.
#[derive(Debug, Clone, Copy, Default)]
pub struct Snapshot {
    /// CPU seconds so far ([`process_cpu_seconds`]).
    pub cpu_seconds: Option<f64>,
    /// Run-queue wait so far ([`runqueue_wait_seconds`]).
    pub wait_seconds: Option<f64>,
}

impl Snapshot {
    /// Reads both now.
    pub fn take() -> Snapshot {
        Snapshot {
            cpu_seconds: process_cpu_seconds(),
            wait_seconds: runqueue_wait_seconds(),
        }
    }
}

/// Seconds this process's live threads have spent ready to run but waiting for a CPU
/// (Linux `schedstat`; `None` elsewhere or where the kernel does not keep it).
pub fn runqueue_wait_seconds() -> Option<f64> {
    let tasks = std::fs::read_dir("/proc/self/task").ok()?;
    let mut total: Option<u64> = None;
    for task in tasks.flatten() {
        let Ok(text) = std::fs::read_to_string(task.path().join("schedstat")) else {
            continue;
        };
        if let Some(wait) = text
            .split_whitespace()
            .nth(1)
            .and_then(|w| w.parse::<u64>().ok())
        {
            total = Some(total.unwrap_or(0) + wait);
        }
    }
    total.map(|ns| ns as f64 / 1e9)
}

/// User + system CPU seconds of this process so far.
pub fn process_cpu_seconds() -> Option<f64> {
    // SAFETY: getrusage writes into the zeroed struct we own and has no other effects.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    (rc == 0).then(|| {
        let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
        tv(usage.ru_utime) + tv(usage.ru_stime)
    })
}

/// Cores this process may run on (affinity mask and CPU quota), at least 1.
pub fn available_cores() -> u32 {
    std::thread::available_parallelism().map_or(1, |n| n.get() as u32)
}

/// Closes the measured window now: records its wall time, the cores and the run-queue wait
/// in `details` and returns the CPU seconds spent in it (`None` where CPU time cannot be read).
pub(crate) fn close_window(measured: &Measured, details: &mut MarkerDetails) -> Option<f64> {
    let window = Instant::now()
        .saturating_duration_since(measured.origin)
        .as_secs_f64();
    let now = Snapshot::take();
    let start = measured.at_origin;
    details.client_window_seconds = Some(window);
    details.client_cores = Some(available_cores());
    if let (Some(a), Some(b)) = (start.wait_seconds, now.wait_seconds) {
        details.client_cpu_wait_seconds = Some((b - a).max(0.0));
    }
    Some((now.cpu_seconds? - start.cpu_seconds?).max(0.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_window_closes_with_cpu_spent_since_the_origin() {
        let measured = Measured {
            origin: Instant::now(),
            at_origin: Snapshot::take(),
        };
        let mut x = 0u64;
        for i in 0..2_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        std::hint::black_box(x);
        let mut details = MarkerDetails::default();
        let cpu = close_window(&measured, &mut details).unwrap();
        assert!(cpu >= 0.0);
        assert!(details.client_window_seconds.unwrap() > 0.0);
        assert!(details.client_cores.unwrap() >= 1);
        #[cfg(target_os = "linux")]
        assert!(details.client_cpu_wait_seconds.unwrap() >= 0.0);
    }
}
