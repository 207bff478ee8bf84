//! The host, from `/proc` and `/sys`: CPU seconds of the server's process group and of exp
//! itself (counters; their rate is cores busy), and bytes through the network interfaces
//! (`/proc/net/dev`), with the interface's line rate when known.

use std::collections::BTreeMap;

use crate::server::process::{group_members, proc_stat};

/// Clock ticks per second of `/proc/<pid>/stat` times.
fn ticks_per_second() -> f64 {
    // SAFETY: sysconf has no memory effects.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 { t as f64 } else { 100.0 }
}

/// CPU seconds (user + system) used so far by the live processes of a process group. A
/// process that exits takes its time with it (until its parent reaps it), so a rate over a
/// window where workers exit is an underestimate.
pub fn group_cpu_seconds(pgid: u32) -> Option<f64> {
    let members = group_members(pgid);
    if members.is_empty() {
        return None;
    }
    let ticks: u64 = members
        .iter()
        .filter_map(|pid| proc_stat(*pid))
        .map(|s| s.cpu_ticks)
        .sum();
    Some(ticks as f64 / ticks_per_second())
}

/// CPU seconds used so far by exp itself.
pub fn own_cpu_seconds() -> Option<f64> {
    let text = std::fs::read_to_string("/proc/self/stat").ok()?;
    let s = crate::server::process::parse_stat(&text)?;
    Some(s.cpu_ticks as f64 / ticks_per_second())
}

/// Received and sent bytes per interface, from `/proc/net/dev` text.
pub fn parse_net_dev(text: &str) -> BTreeMap<String, (u64, u64)> {
    text.lines()
        .filter_map(|line| {
            let (name, rest) = line.split_once(':')?;
            let f: Vec<u64> = rest
                .split_whitespace()
                .map(|x| x.parse().ok())
                .collect::<Option<_>>()?;
            // rx: bytes packets errs drop fifo frame compressed multicast; then tx: bytes …
            Some((name.trim().to_string(), (*f.first()?, *f.get(8)?)))
        })
        .collect()
}

/// Bytes received plus sent on `interface` (or on every interface but `lo`), and the
/// interface's line rate in bits per second (`/sys/class/net/<if>/speed` is in Mbit/s), when
/// one interface is named and the kernel knows its speed.
pub fn net_bytes(interface: Option<&str>) -> Option<(f64, Option<f64>)> {
    let table = parse_net_dev(&std::fs::read_to_string("/proc/net/dev").ok()?);
    let total: u64 = match interface {
        Some(name) => {
            let (rx, tx) = table.get(name)?;
            rx + tx
        }
        None => table
            .iter()
            .filter(|(n, _)| n.as_str() != "lo")
            .map(|(_, (rx, tx))| rx + tx)
            .sum(),
    };
    let speed = interface
        .and_then(|n| std::fs::read_to_string(format!("/sys/class/net/{n}/speed")).ok())
        .and_then(|s| s.trim().parse::<f64>().ok())
        .filter(|mbit| *mbit > 0.0)
        .map(|mbit| mbit * 1e6);
    Some((total as f64, speed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn net_dev_lines_give_rx_and_tx_bytes() {
        let text = "Inter-|   Receive                                                |  Transmit\n face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n    lo: 1000 10 0 0 0 0 0 0 1000 10 0 0 0 0 0 0\n  eth0: 123456789 1000 0 0 0 0 0 0 987654321 900 0 0 0 0 0 0\n";
        let t = parse_net_dev(text);
        assert_eq!(t["eth0"], (123_456_789, 987_654_321));
        assert_eq!(t["lo"], (1000, 1000));
        assert_eq!(t.len(), 2);
    }

    #[test]
    fn own_cpu_time_is_readable_and_grows() {
        let a = own_cpu_seconds().unwrap();
        let mut x = 0u64;
        for i in 0..20_000_000u64 {
            x = x.wrapping_add(i * i);
        }
        std::hint::black_box(x);
        assert!(own_cpu_seconds().unwrap() >= a);
    }
}
