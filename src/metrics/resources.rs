//! Per-repetition resource, energy and cost values (metrics.md, "Resource, quality, cost"),
//! added to a repetition's summary when its results are read: the probe series summarised
//! over the measured window, client CPU from the completion marker when the host probe did
//! not run, energy per output token, and the price of the tokens. Pure.

use std::collections::BTreeMap;
use std::time::SystemTime;

use super::probes::{Window, summarize};
use super::registry::{Metric, MetricKey};
use crate::record::ProbeSample;
use crate::scenario::model::CostConfig;

/// What a repetition's resource values are computed from.
#[derive(Debug, Clone, Copy, Default)]
pub struct ResourceInputs<'a> {
    /// Wall-clock time of the records' origin.
    pub origin_wall: Option<SystemTime>,
    /// The repetition's probe samples, if it had probes.
    pub probes: Option<&'a [ProbeSample]>,
    /// Client CPU seconds and wall seconds of the whole repetition (its marker).
    pub client_cpu: Option<(f64, f64)>,
    /// `[cost]` with the cell's GPU count.
    pub cost: Option<CostConfig>,
}

/// The measured window of a repetition in Unix seconds, from its span in ns from the origin
/// (its first scheduled send to its last response: the window of `duration` and the
/// throughputs, [`super::Summarizer::window_ns`]).
pub fn window(span_ns: Option<(u64, u64)>, origin_wall: SystemTime) -> Option<Window> {
    let origin = origin_wall
        .duration_since(SystemTime::UNIX_EPOCH)
        .ok()?
        .as_secs_f64();
    let (start, end) = span_ns?;
    Some(Window {
        start: origin + start as f64 / 1e9,
        end: origin + end as f64 / 1e9,
    })
}

/// Adds the resource values of a repetition to `values` (which already hold its
/// throughputs and `duration`).
pub fn add(
    values: &mut BTreeMap<MetricKey, f64>,
    span_ns: Option<(u64, u64)>,
    inputs: ResourceInputs,
) {
    if let (Some(samples), Some(origin)) = (inputs.probes, inputs.origin_wall)
        && let Some(w) = window(span_ns, origin)
    {
        values.extend(summarize(samples, w));
    }
    if let Some((cpu, wall)) = inputs.client_cpu
        && wall > 0.0
    {
        values.entry(Metric::ClientCpu.key()).or_insert(cpu / wall);
    }
    let get = |m: Metric| (values.get(&m.key()).copied()).filter(|v| v.is_finite() && *v > 0.0);
    let (total, output, duration) = (
        get(Metric::TotalThroughput),
        get(Metric::OutputThroughput),
        get(Metric::Duration),
    );
    if let (Some(joules), Some(rate), Some(d)) = (get(Metric::Energy), output, duration) {
        values.insert(Metric::EnergyPerToken.key(), joules / (rate * d));
    }
    if let Some(cost) = inputs.cost {
        // price × GPUs × duration / 3600 over tokens / 1000, with tokens = rate × duration.
        let per_second = cost.gpu_hour * f64::from(cost.gpus.get()) / 3600.0;
        if let Some(rate) = total {
            values.insert(Metric::CostPer1kTokens.key(), 1000.0 * per_second / rate);
        }
        if let Some(rate) = output {
            values.insert(
                Metric::CostPer1kOutputTokens.key(),
                1000.0 * per_second / rate,
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use std::num::NonZeroU32;

    use super::*;
    use crate::metrics::registry::k;

    #[test]
    fn cost_per_thousand_tokens_from_price_gpus_and_throughput() {
        let mut v = BTreeMap::from([
            (k("duration"), 60.0),
            (k("total_throughput"), 10_000.0),
            (k("output_throughput"), 2_000.0),
        ]);
        let cost = CostConfig {
            gpu_hour: 2.5,
            gpus: NonZeroU32::new(8).unwrap(),
        };
        let inputs = ResourceInputs {
            cost: Some(cost),
            client_cpu: Some((3.0, 12.0)),
            ..Default::default()
        };
        add(&mut v, None, inputs);
        // $20 per hour of 8 GPUs; 36 M tokens per hour → $0.000556 per 1k tokens.
        assert!((v[&k("cost_per_1k_tokens")] - 20.0 / 36_000.0).abs() < 1e-15);
        // 7.2 M output tokens per hour → $0.002778 per 1k output tokens.
        assert!((v[&k("cost_per_1k_output_tokens")] - 20.0 / 7_200.0).abs() < 1e-15);
        assert_eq!(v[&k("client_cpu")], 0.25);
        assert!(
            !v.contains_key(&k("energy_per_token")),
            "no energy measured: absent"
        );
    }

    #[test]
    fn energy_per_token_divides_by_the_output_tokens_of_the_window() {
        let mut v = BTreeMap::from([
            (k("duration"), 10.0),
            (k("output_throughput"), 500.0),
            (k("energy"), 3000.0),
        ]);
        add(&mut v, None, ResourceInputs::default());
        assert_eq!(v[&k("energy_per_token")], 0.6);
        assert!(!v.contains_key(&k("cost_per_1k_tokens")));
    }
}
