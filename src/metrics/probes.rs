//! Probe series → per-repetition values, over the repetition's measured window (first
//! scheduled send to last response). Pure. Gauges give their mean and max over the samples
//! inside the window (interpolated at its middle when none falls inside); counters give their
//! rate, interpolated at the window's edges; energy prefers the GPUs' energy counter and
//! falls back to integrating power. A series with no data gives no value: absent, not zero.

use std::collections::BTreeMap;

use super::registry::{Metric, MetricKey};
use crate::record::{ProbeKind, ProbeSample};

/// A window of wall-clock time, in Unix seconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Window {
    /// Start.
    pub start: f64,
    /// End (≥ start).
    pub end: f64,
}

type Points = Vec<(f64, f64)>;

/// The per-repetition values of the probes over `w`.
pub fn summarize(samples: &[ProbeSample], w: Window) -> BTreeMap<MetricKey, f64> {
    let mut out = BTreeMap::new();
    if w.end <= w.start {
        return out;
    }
    gpu(samples, w, &mut out);
    let series = |kind: ProbeKind, key: &str| -> Points {
        let mut p: Points = samples
            .iter()
            .filter(|s| s.probe == kind)
            .filter_map(|s| Some((s.ts, *s.values.get(key)?)))
            .collect();
        p.sort_by(|a, b| a.0.total_cmp(&b.0));
        p
    };
    let mut gauge = |metric: Metric, points: &Points, max_metric: Option<Metric>| {
        if let Some((mean, max)) = mean_max(points, w) {
            out.insert(metric.key(), mean);
            if let Some(m) = max_metric {
                out.insert(m.key(), max);
            }
        }
    };
    gauge(
        Metric::KvCacheUsage,
        &series(ProbeKind::Metrics, "kv_cache_usage"),
        Some(Metric::KvCacheUsageMax),
    );
    gauge(
        Metric::ServerRunning,
        &series(ProbeKind::Metrics, "requests_running"),
        None,
    );
    gauge(
        Metric::ServerWaiting,
        &series(ProbeKind::Metrics, "requests_waiting"),
        None,
    );
    let counters = [
        (
            Metric::Preemptions,
            ProbeKind::Metrics,
            "preemptions_total",
            w.end - w.start,
        ),
        (
            Metric::ServerCpu,
            ProbeKind::Host,
            "server_cpu_seconds",
            1.0,
        ),
        (
            Metric::ClientCpu,
            ProbeKind::Host,
            "client_cpu_seconds",
            1.0,
        ),
    ];
    for (metric, kind, key, scale) in counters {
        if let Some(r) = rate(&series(kind, key), w) {
            out.insert(metric.key(), r * scale);
        }
    }
    // The share of prompt tokens the prefix cache served: hits over queries in the window.
    let hits = rate(&series(ProbeKind::Metrics, "prefix_cache_hits_total"), w);
    let queries = rate(&series(ProbeKind::Metrics, "prefix_cache_queries_total"), w);
    if let (Some(h), Some(q)) = (hits, queries)
        && q > 0.0
    {
        out.insert(Metric::PrefixCacheHitRate.key(), h / q);
    }
    let line_rate = series(ProbeKind::Host, "net_line_rate")
        .first()
        .map(|p| p.1);
    if let (Some(r), Some(line)) = (rate(&series(ProbeKind::Host, "net_bytes"), w), line_rate) {
        out.insert(Metric::NetUtil.key(), r * 8.0 / line);
    }
    out
}

/// GPU series aggregated per sampling instant over GPUs: mean memory and SM use, total
/// power and energy (only at instants where every GPU reported them).
fn gpu(samples: &[ProbeSample], w: Window, out: &mut BTreeMap<MetricKey, f64>) {
    let mut by_ts: BTreeMap<u64, Vec<&BTreeMap<String, f64>>> = BTreeMap::new();
    for s in samples.iter().filter(|s| s.probe == ProbeKind::Gpu) {
        by_ts.entry(s.ts.to_bits()).or_default().push(&s.values);
    }
    let (mut mem, mut sm, mut power, mut energy) = (vec![], vec![], vec![], vec![]);
    for (bits, gpus) in &by_ts {
        let ts = f64::from_bits(*bits);
        let fracs: Vec<f64> = gpus
            .iter()
            .filter_map(|v| Some(v.get("memory_used")? / v.get("memory_total")?))
            .collect();
        if !fracs.is_empty() {
            mem.push((ts, fracs.iter().sum::<f64>() / fracs.len() as f64));
        }
        let utils: Vec<f64> = gpus
            .iter()
            .filter_map(|v| v.get("utilization").copied())
            .collect();
        if !utils.is_empty() {
            sm.push((ts, utils.iter().sum::<f64>() / utils.len() as f64));
        }
        let total = |key: &str| -> Option<f64> { gpus.iter().map(|v| v.get(key)).sum() };
        if let Some(p) = total("power") {
            power.push((ts, p));
        }
        if let Some(e) = total("energy") {
            energy.push((ts, e));
        }
    }
    let gauges = [
        (Metric::GpuMemUtil, Metric::GpuMemUtilMax, &mem),
        (Metric::SmUtil, Metric::SmUtilMax, &sm),
        (Metric::Power, Metric::PowerMax, &power),
    ];
    for (metric, max_metric, points) in gauges {
        if let Some((mean, max)) = mean_max(points, w) {
            out.insert(metric.key(), mean);
            out.insert(max_metric.key(), max);
        }
    }
    let joules = rate(&energy, w)
        .map(|watts| watts * (w.end - w.start))
        .or_else(|| mean_over_time(&power, w).map(|watts| watts * (w.end - w.start)));
    if let Some(j) = joules {
        out.insert(Metric::Energy.key(), j);
    }
}

/// Linear interpolation of a sorted series at `t` (inside its span only).
fn at(points: &Points, t: f64) -> Option<f64> {
    let i = points.partition_point(|p| p.0 < t);
    match (i.checked_sub(1).and_then(|j| points.get(j)), points.get(i)) {
        (_, Some(&(t1, v1))) if t1 == t => Some(v1),
        (Some(&(t0, v0)), Some(&(t1, v1))) => Some(v0 + (v1 - v0) * (t - t0) / (t1 - t0)),
        _ => None,
    }
}

/// The part of the window the series covers.
fn covered(points: &Points, w: Window) -> Option<(f64, f64)> {
    let (first, last) = (points.first()?.0, points.last()?.0);
    let (a, b) = (w.start.max(first), w.end.min(last));
    (b > a).then_some((a, b))
}

/// Mean and max of the samples inside the window; with none inside, the value interpolated
/// at the window's middle.
fn mean_max(points: &Points, w: Window) -> Option<(f64, f64)> {
    let inside: Vec<f64> = points
        .iter()
        .filter(|p| p.0 >= w.start && p.0 <= w.end)
        .map(|p| p.1)
        .collect();
    if inside.is_empty() {
        let mid = at(points, (w.start + w.end) / 2.0)?;
        return Some((mid, mid));
    }
    let mean = inside.iter().sum::<f64>() / inside.len() as f64;
    Some((mean, inside.iter().copied().fold(f64::MIN, f64::max)))
}

/// Rate of a counter (per second) over the covered part of the window; `None` when it went
/// down (a reset) or the series does not overlap the window.
fn rate(points: &Points, w: Window) -> Option<f64> {
    let (a, b) = covered(points, w)?;
    let delta = at(points, b)? - at(points, a)?;
    (delta >= 0.0).then(|| delta / (b - a))
}

/// Time-weighted mean of a gauge (trapezoids) over the covered part of the window.
fn mean_over_time(points: &Points, w: Window) -> Option<f64> {
    let (a, b) = covered(points, w)?;
    let mut pts = vec![(a, at(points, a)?)];
    pts.extend(points.iter().copied().filter(|p| p.0 > a && p.0 < b));
    pts.push((b, at(points, b)?));
    let area: f64 = pts
        .windows(2)
        .map(|s| (s[1].0 - s[0].0) * (s[0].1 + s[1].1) / 2.0)
        .sum();
    Some(area / (b - a))
}

#[cfg(test)]
#[path = "probes_tests.rs"]
mod tests;
