//! What the client itself cost in one repetition, from its completion marker (the CPU time
//! and window that `run::usage` recorded), so no one mistakes a client limit for a server
//! limit: `client_cpu_per_request`, `client_cpu_util`, `client_cpu_wait`, `client_cores`.
//! Pure.

use std::collections::BTreeMap;

use super::registry::{Metric, MetricKey};
use crate::store::RepMarker;

/// Adds the `client_*` metrics of a repetition that sent `sent` requests (nothing for
/// simulated runs, or markers written before these were recorded).
pub fn add(marker: &RepMarker, sent: u64, values: &mut BTreeMap<MetricKey, f64>) {
    let Some(cpu) = marker.client_cpu_seconds else {
        return;
    };
    let d = &marker.details;
    if sent > 0 {
        values.insert(Metric::ClientCpuPerRequest.key(), cpu / sent as f64);
    }
    if let Some(window) = d.client_window_seconds.filter(|w| *w > 0.0) {
        values.insert(Metric::ClientCpuUtil.key(), cpu / window);
        if let Some(wait) = d.client_cpu_wait_seconds {
            values.insert(Metric::ClientCpuWait.key(), wait / window);
        }
    }
    if let Some(cores) = d.client_cores {
        values.insert(Metric::ClientCores.key(), f64::from(cores));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MarkerDetails;

    fn marker(cpu: Option<f64>, details: serde_json::Value) -> RepMarker {
        RepMarker {
            schema_version: crate::store::SCHEMA_VERSION,
            cell_id: "c".into(),
            round: 0,
            records: 100,
            origin_wall: "2026-01-01T00:00:00Z".into(),
            wall_seconds: 3.0,
            client_cpu_seconds: cpu,
            details: serde_json::from_value::<MarkerDetails>(details).unwrap(),
            failure: None,
        }
    }

    fn get(v: &BTreeMap<MetricKey, f64>, m: Metric) -> f64 {
        v[&m.key()]
    }

    #[test]
    fn cpu_per_request_and_share_of_a_core_come_from_the_measured_window() {
        let m = marker(
            Some(0.05),
            serde_json::json!({"client_window_seconds": 2.0, "client_cores": 2, "client_cpu_wait_seconds": 0.5}),
        );
        let mut v = BTreeMap::new();
        add(&m, 100, &mut v);
        assert!((get(&v, Metric::ClientCpuPerRequest) - 0.0005).abs() < 1e-12);
        assert!((get(&v, Metric::ClientCpuUtil) - 0.025).abs() < 1e-12);
        assert_eq!(get(&v, Metric::ClientCores), 2.0);
        assert!((get(&v, Metric::ClientCpuWait) - 0.25).abs() < 1e-12);
    }

    #[test]
    fn simulated_runs_and_old_markers_add_nothing_or_what_they_have() {
        let mut v = BTreeMap::new();
        add(&marker(None, serde_json::json!({})), 10, &mut v);
        assert!(v.is_empty());
        add(&marker(Some(1.0), serde_json::json!({})), 10, &mut v);
        assert_eq!(v.len(), 1, "{v:?}");
        assert!((get(&v, Metric::ClientCpuPerRequest) - 0.1).abs() < 1e-12);
    }

    #[test]
    fn marker_details_keep_simulator_statistics_and_unknown_keys() {
        let text = serde_json::json!({
            "sim_steps": 7, "sim_preemptions": 0, "sim_rejected": 1, "sim_peak_running": 4,
            "sim_peak_kv_usage": 0.5, "sim_window_ns": 900, "from_the_future": [1, 2]
        });
        let m = marker(None, text.clone());
        let sim = m.details.sim.unwrap();
        assert_eq!(
            (sim.sim_steps, sim.sim_rejected, sim.sim_peak_running),
            (7, 1, 4)
        );
        assert_eq!(
            m.details.other["from_the_future"],
            serde_json::json!([1, 2])
        );
        assert_eq!(
            serde_json::to_value(&m.details).unwrap(),
            text,
            "written back unchanged"
        );
        let http = marker(None, serde_json::json!({"client_cores": 2}));
        assert_eq!(
            (http.details.sim, http.details.client_cores),
            (None, Some(2))
        );
    }
}
