//! The open-file limit a load generator or a server needs: one descriptor per connection, so
//! the usual soft limit of 1,024 would silently cap concurrency (connects fail with `EMFILE`).
//! [`raise`] lifts the soft limit to the hard limit, which an unprivileged process may do.

/// The open-file limits after [`raise`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FdLimit {
    /// The soft limit now in force.
    pub soft: u64,
    /// The hard limit (the most the soft limit can be raised to without privileges).
    pub hard: u64,
}

/// Raises `RLIMIT_NOFILE`'s soft limit to its hard limit and returns both (`None` where the
/// limits cannot be read).
pub fn raise() -> Option<FdLimit> {
    #[cfg(unix)]
    {
        // SAFETY: getrlimit/setrlimit read and write the rlimit struct we own.
        let mut lim: libc::rlimit = unsafe { std::mem::zeroed() };
        if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
            return None;
        }
        // An unlimited hard limit still stops at the kernel's `fs.nr_open` (2^20 by default).
        let target = if lim.rlim_max == libc::RLIM_INFINITY {
            1 << 20
        } else {
            lim.rlim_max
        };
        if lim.rlim_cur < target {
            let wanted = libc::rlimit {
                rlim_cur: target,
                rlim_max: lim.rlim_max,
            };
            if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &wanted) } == 0 {
                lim.rlim_cur = target;
            }
        }
        Some(FdLimit {
            soft: lim.rlim_cur as u64,
            hard: lim.rlim_max as u64,
        })
    }
    #[cfg(not(unix))]
    {
        None
    }
}

#[cfg(all(test, unix))]
mod tests {
    #[test]
    fn the_soft_limit_reaches_the_hard_limit() {
        let lim = super::raise().unwrap();
        assert!(lim.soft == lim.hard || lim.hard == libc::RLIM_INFINITY);
        assert_eq!(super::raise(), Some(lim), "raising again changes nothing");
    }
}
