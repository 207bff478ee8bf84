//! Probe summaries on series with known answers.

use crate::metrics::registry::k;
use std::collections::BTreeMap;

use super::*;

fn sample(kind: ProbeKind, ts: f64, gpu: Option<u32>, values: &[(&str, f64)]) -> ProbeSample {
    ProbeSample {
        ts,
        probe: kind,
        gpu,
        values: values
            .iter()
            .map(|(k, v)| (k.to_string(), *v))
            .collect::<BTreeMap<_, _>>(),
    }
}

/// Two GPUs sampled every second from 0 to 4 s: 100 W and 200 W, energy counters rising
/// accordingly, 40 and 60 of 80 GiB used, 50 % and 100 % busy.
fn gpus(with_energy: bool) -> Vec<ProbeSample> {
    let mut out = vec![];
    for t in 0..5 {
        let t = f64::from(t);
        for (i, watts, used, util) in [(0, 100.0, 40.0, 0.5), (1, 200.0, 60.0, 1.0)] {
            let mut v = vec![
                ("power", watts),
                ("memory_used", used),
                ("memory_total", 80.0),
                ("utilization", util),
            ];
            if with_energy {
                v.push(("energy", 5000.0 + watts * t));
            }
            out.push(sample(ProbeKind::Gpu, 1000.0 + t, Some(i), &v));
        }
    }
    out
}

const W: Window = Window {
    start: 1001.0,
    end: 1003.0,
};

#[test]
fn gpu_figures_average_over_gpus_and_energy_comes_from_the_counter() {
    let s = summarize(&gpus(true), W);
    assert_eq!(s[&k("power")], 300.0);
    assert_eq!(s[&k("power_max")], 300.0);
    assert_eq!(s[&k("gpu_mem_util")], 0.625);
    assert_eq!(s[&k("sm_util")], 0.75);
    assert_eq!(s[&k("energy")], 600.0, "300 W over 2 s");
    let no_counter = summarize(&gpus(false), W);
    assert_eq!(
        no_counter[&k("energy")],
        600.0,
        "integrated from power instead"
    );
}

#[test]
fn counters_are_interpolated_at_the_window_edges() {
    let host = [(0.0, 0.0), (2.0, 1.0), (4.0, 3.0)].map(|(t, cpu)| {
        sample(
            ProbeKind::Host,
            1000.0 + t,
            None,
            &[("server_cpu_seconds", cpu)],
        )
    });
    let s = summarize(&host, W);
    // At 1 s: 0.5 CPU-s, at 3 s: 2.0 CPU-s → 1.5 CPU-s in 2 s.
    assert_eq!(s[&k("server_cpu")], 0.75);
    assert!(!s.contains_key(&k("client_cpu")), "absent, not zero");
    assert!(!s.contains_key(&k("power")));
}

#[test]
fn a_window_between_two_samples_takes_the_interpolated_gauge() {
    let kv = [(1.0, 0.2), (2.0, 0.4)].map(|(t, x)| {
        sample(
            ProbeKind::Metrics,
            1000.0 + t,
            None,
            &[("kv_cache_usage", x)],
        )
    });
    let w = Window {
        start: 1001.2,
        end: 1001.4,
    };
    let s = summarize(&kv, w);
    assert!((s[&k("kv_cache_usage")] - 0.26).abs() < 1e-12);
    assert!((s[&k("kv_cache_usage_max")] - 0.26).abs() < 1e-12);
}

#[test]
fn network_use_needs_a_line_rate_and_counter_resets_give_nothing() {
    let net = [(0.0, 0.0), (4.0, 5e9)].map(|(t, b)| {
        sample(
            ProbeKind::Host,
            1000.0 + t,
            None,
            &[("net_bytes", b), ("net_line_rate", 100e9)],
        )
    });
    let s = summarize(&net, W);
    assert!(
        (s[&k("net_util")] - 0.1).abs() < 1e-12,
        "1.25 GB/s = 10 Gbit/s of 100"
    );
    let reset = [(0.0, 50.0), (4.0, 10.0)].map(|(t, x)| {
        sample(
            ProbeKind::Metrics,
            1000.0 + t,
            None,
            &[("preemptions_total", x)],
        )
    });
    assert!(!summarize(&reset, W).contains_key(&k("preemptions")));
}

#[test]
fn prefix_cache_hit_rate_is_hits_over_queries_in_the_window() {
    // 100 queried tokens/s; 37.5 % of them hit in the first 2 s, 75 % in the next 2.
    let points = [(0.0, 0.0, 0.0), (2.0, 200.0, 75.0), (4.0, 400.0, 225.0)];
    let m = points.map(|(t, q, h)| {
        sample(
            ProbeKind::Metrics,
            1000.0 + t,
            None,
            &[
                ("prefix_cache_queries_total", q),
                ("prefix_cache_hits_total", h),
            ],
        )
    });
    let s = summarize(&m, W);
    // At 1 s: 100 queried, 37.5 hit; at 3 s: 300 and 150 → 112.5 of 200.
    assert!((s[&k("prefix_cache_hit_rate")] - 0.5625).abs() < 1e-12);
    let idle = [(0.0, 10.0, 5.0), (4.0, 10.0, 5.0)].map(|(t, q, h)| {
        sample(
            ProbeKind::Metrics,
            1000.0 + t,
            None,
            &[
                ("prefix_cache_queries_total", q),
                ("prefix_cache_hits_total", h),
            ],
        )
    });
    assert!(!summarize(&idle, W).contains_key(&k("prefix_cache_hit_rate")));
}
