//! The machine's monotonic clock as plain nanoseconds, so instants taken in different
//! processes can be compared: a client's record and a server's log of when it wrote a token.
//!
//! On Linux `std::time::Instant` reads `CLOCK_MONOTONIC`, which every process on the host
//! shares, but it does not expose its value. An [`Anchor`] pairs one `Instant` with one raw
//! `clock_gettime(CLOCK_MONOTONIC)` reading taken back to back (tens of nanoseconds apart) and
//! converts any other `Instant` through that pair. On other systems the raw reading is not
//! available and [`monotonic_ns`] returns `None`.

use std::time::Instant;

/// Raw `CLOCK_MONOTONIC` now, in nanoseconds (`None` where the clock cannot be read).
pub fn monotonic_ns() -> Option<u64> {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: clock_gettime writes into the timespec we own and has no other effects.
        let mut ts: libc::timespec = unsafe { std::mem::zeroed() };
        let rc = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
        (rc == 0).then(|| ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64)
    }
    #[cfg(not(target_os = "linux"))]
    {
        None
    }
}

/// One `Instant` and the raw monotonic reading taken with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Anchor {
    instant: Instant,
    ns: u64,
}

impl Anchor {
    /// Pairs `Instant::now()` with the raw clock; `None` where the raw clock is unavailable.
    pub fn now() -> Option<Anchor> {
        // Read the raw clock between two Instants and pair it with their midpoint: the pairing
        // error is then half the gap between the reads, a few tens of nanoseconds.
        let before = Instant::now();
        let ns = monotonic_ns()?;
        let after = Instant::now();
        Some(Anchor {
            instant: before + (after - before) / 2,
            ns,
        })
    }

    /// `at` as raw monotonic nanoseconds (saturating at 0 and `u64::MAX`).
    pub fn ns_of(&self, at: Instant) -> u64 {
        if at >= self.instant {
            let d = u64::try_from((at - self.instant).as_nanos()).unwrap_or(u64::MAX);
            self.ns.saturating_add(d)
        } else {
            let d = u64::try_from((self.instant - at).as_nanos()).unwrap_or(u64::MAX);
            self.ns.saturating_sub(d)
        }
    }

    /// The `Instant` of raw monotonic nanoseconds `ns` (the inverse of [`Anchor::ns_of`];
    /// saturates at the anchor for instants the platform cannot represent).
    pub fn instant_of(&self, ns: u64) -> Instant {
        let shift = |d: u64| std::time::Duration::from_nanos(d);
        if ns >= self.ns {
            self.instant
                .checked_add(shift(ns - self.ns))
                .unwrap_or(self.instant)
        } else {
            self.instant
                .checked_sub(shift(self.ns - ns))
                .unwrap_or(self.instant)
        }
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn instants_map_onto_the_raw_clock_within_microseconds() {
        let anchor = Anchor::now().unwrap();
        let later = Instant::now();
        let raw = monotonic_ns().unwrap();
        let mapped = anchor.ns_of(later);
        // `later` was taken before `raw`, both within a few microseconds.
        assert!(mapped <= raw + 1_000, "{mapped} vs {raw}");
        assert!(raw - mapped.min(raw) < 5_000_000, "{mapped} vs {raw}");
    }

    #[test]
    fn conversion_round_trips_and_keeps_differences() {
        let anchor = Anchor::now().unwrap();
        let a = Instant::now();
        let b = a + Duration::from_micros(1500);
        assert_eq!(anchor.ns_of(b) - anchor.ns_of(a), 1_500_000);
        let earlier = anchor.instant_of(anchor.ns_of(a) - 2_000_000);
        assert_eq!(a - earlier, Duration::from_millis(2));
        assert_eq!(anchor.instant_of(anchor.ns_of(a)), a);
    }
}
