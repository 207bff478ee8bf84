//! Test datasets copied from statistics.md §3 (tests must not read the reference at run time).

/// Example 1 baseline: output throughput per run (tok/s); clear regression, complete separation.
pub const E1_BASE: [f64; 10] = [
    2451.3, 2438.9, 2460.2, 2447.5, 2455.0, 2442.1, 2449.8, 2458.6, 2444.7, 2452.4,
];
/// Example 1 candidate.
pub const E1_CAND: [f64; 10] = [
    2410.6, 2428.3, 2401.9, 2419.7, 2395.2, 2424.8, 2407.4, 2415.0, 2431.6, 2399.3,
];
/// Example 2 baseline: p99 TTFT per run (ms); borderline, unequal n and variances.
pub const E2_BASE: [f64; 10] = [
    182.4, 175.9, 190.3, 178.8, 185.1, 201.7, 179.5, 183.2, 188.6, 176.4,
];
/// Example 2 candidate.
pub const E2_CAND: [f64; 8] = [195.8, 180.3, 188.9, 223.5, 179.1, 205.7, 192.4, 230.2];
/// Hand example x.
pub const H_X: [f64; 5] = [1.0, 2.0, 3.0, 4.0, 5.0];
/// Hand example y.
pub const H_Y: [f64; 5] = [2.0, 4.0, 6.0, 8.0, 10.0];

/// Asserts `|a − b| < 1e-6`, the tolerance of statistics.md §3.
#[track_caller]
pub fn close(a: f64, b: f64) {
    assert!((a - b).abs() < 1e-6, "{a} != {b} (tolerance 1e-6)");
}
