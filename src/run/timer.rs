//! Waiting for a scheduled send time with sub-millisecond precision.
//!
//! tokio's timer wheel has millisecond ticks and rounds every deadline up to the next tick, so
//! an open-loop send released with `sleep_until` is late by 0–1 ms (plus wake-up latency): a
//! p99 `queue_delay` of about a millisecond from the timer alone. On Linux the driver instead
//! arms a `timerfd` (an absolute `CLOCK_MONOTONIC` deadline, hrtimer precision) and waits for
//! it on the runtime's own event loop, so the wake-up costs no extra thread. Elsewhere, or if
//! the timerfd cannot be set up, it falls back to tokio's timer.

use tokio::time::Instant;

/// A reusable precise sleep for one task (the open-loop release loop).
#[derive(Debug)]
pub(crate) struct SendTimer {
    #[cfg(target_os = "linux")]
    fd: Option<linux::TimerFd>,
}

impl SendTimer {
    /// A timer backed by a timerfd where available. Must be called inside a tokio runtime.
    pub fn new() -> SendTimer {
        SendTimer {
            #[cfg(target_os = "linux")]
            fd: linux::TimerFd::new().ok(),
        }
    }

    /// True when sleeps are precise (a timerfd), false on the tokio-timer fallback.
    #[cfg(test)]
    pub fn is_precise(&self) -> bool {
        #[cfg(target_os = "linux")]
        {
            self.fd.is_some()
        }
        #[cfg(not(target_os = "linux"))]
        {
            false
        }
    }

    /// Returns at `at` or soon after (never before); at once if `at` has passed.
    pub async fn sleep_until(&mut self, at: Instant) {
        if Instant::now() >= at {
            return;
        }
        #[cfg(target_os = "linux")]
        if let Some(fd) = &mut self.fd
            && fd.sleep_until(at.into_std()).await.is_ok()
        {
            // The anchor that converts the deadline is exact to tens of nanoseconds; never
            // hand back control before `at` even so.
            while Instant::now() < at {
                std::hint::spin_loop();
            }
            return;
        }
        tokio::time::sleep_until(at).await;
    }
}

#[cfg(target_os = "linux")]
mod linux {
    use std::io;
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

    use tokio::io::Interest;
    use tokio::io::unix::AsyncFd;

    use crate::clock::Anchor;

    /// A non-blocking `timerfd` on `CLOCK_MONOTONIC`, registered with the runtime.
    #[derive(Debug)]
    pub(super) struct TimerFd {
        fd: AsyncFd<OwnedFd>,
        anchor: Anchor,
    }

    impl TimerFd {
        pub fn new() -> io::Result<TimerFd> {
            let anchor = Anchor::now().ok_or_else(|| io::Error::other("no monotonic clock"))?;
            // SAFETY: timerfd_create has no memory effects; the fd is owned right away.
            let raw: RawFd = unsafe {
                libc::timerfd_create(
                    libc::CLOCK_MONOTONIC,
                    libc::TFD_NONBLOCK | libc::TFD_CLOEXEC,
                )
            };
            if raw < 0 {
                return Err(io::Error::last_os_error());
            }
            // SAFETY: `raw` is a fresh descriptor nothing else owns.
            let owned = unsafe { OwnedFd::from_raw_fd(raw) };
            // SAFETY: the OwnedFd moves into the AsyncFd, which keeps it open and unchanged
            // until it is dropped.
            let fd = unsafe { AsyncFd::register_with_interest(owned, Interest::READABLE) }
                .map_err(|e| e.into_parts().1)?;
            Ok(TimerFd { fd, anchor })
        }

        /// Arms the timer for `at` and waits until it expires.
        pub async fn sleep_until(&mut self, at: std::time::Instant) -> io::Result<()> {
            let ns = self.anchor.ns_of(at);
            let spec = libc::itimerspec {
                it_interval: libc::timespec {
                    tv_sec: 0,
                    tv_nsec: 0,
                },
                it_value: libc::timespec {
                    tv_sec: (ns / 1_000_000_000) as libc::time_t,
                    tv_nsec: (ns % 1_000_000_000) as libc::c_long,
                },
            };
            let raw = self.fd.get_ref().as_raw_fd();
            // SAFETY: `spec` is a valid itimerspec; the old value is not asked for.
            let rc = unsafe {
                libc::timerfd_settime(raw, libc::TFD_TIMER_ABSTIME, &spec, std::ptr::null_mut())
            };
            if rc != 0 {
                return Err(io::Error::last_os_error());
            }
            loop {
                let mut guard = self.fd.readable().await?;
                let mut expirations = [0u8; 8];
                // SAFETY: reads at most 8 bytes into the buffer we own.
                let n = unsafe { libc::read(raw, expirations.as_mut_ptr().cast(), 8) };
                if n == 8 {
                    return Ok(());
                }
                let err = io::Error::last_os_error();
                if err.kind() != io::ErrorKind::WouldBlock {
                    return Err(err);
                }
                // Readiness left over from an earlier expiration: wait for this one.
                guard.clear_ready();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// Precise sleeps wake within a fraction of a millisecond of their deadline, never early.
    #[tokio::test(flavor = "current_thread")]
    async fn sleeps_end_just_after_their_deadline() {
        let mut timer = SendTimer::new();
        let mut late = Vec::new();
        for i in 0..40u64 {
            let at = Instant::now() + Duration::from_micros(700 + 37 * i);
            timer.sleep_until(at).await;
            let now = Instant::now();
            assert!(now >= at, "woke early");
            late.push(now - at);
        }
        late.sort();
        let median = late[late.len() / 2];
        if timer.is_precise() {
            // tokio's millisecond timer would be ~0.5 ms late on the median; a busy test
            // machine adds scheduling delay, hence the generous bound.
            assert!(
                median < Duration::from_micros(400),
                "median lateness {median:?}"
            );
        }
        // A deadline already passed returns at once.
        timer
            .sleep_until(Instant::now() - Duration::from_millis(1))
            .await;
    }
}
