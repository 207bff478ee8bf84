use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng as StdRng;

use super::*;

/// The statistics of `values` by sorting them in memory.
fn sorted(values: &[f64]) -> BTreeMap<MetricKey, f64> {
    let mut out = BTreeMap::new();
    let mut col = Column::default();
    values.iter().for_each(|&x| col.push(x));
    assert!(col.finish(Metric::Itl, &mut out).is_none());
    out
}

/// The statistics of `values` by a spilled column and selection passes; also the passes.
fn selected(values: &[f64]) -> (BTreeMap<MetricKey, f64>, usize) {
    let mut out = BTreeMap::new();
    let mut col = Column::default();
    col.spill();
    values.iter().for_each(|&x| col.push(x));
    let Some(mut search) = col.finish(Metric::Itl, &mut out) else {
        return (out, 0);
    };
    let mut passes = 0;
    while search.needs_pass() {
        values.iter().for_each(|&x| search.see(x));
        search.end_pass();
        passes += 1;
    }
    search.finish(&mut out);
    (out, passes)
}

/// Percentiles, minimum and maximum are the same bits; mean and std within 1e-12.
fn assert_same(values: &[f64]) -> usize {
    let (want, (got, passes)) = (sorted(values), selected(values));
    assert_eq!(want.len(), got.len(), "{values:?}");
    for (key, w) in &want {
        let g = got[key];
        match matches!(key.stat(), Some(Stat::Mean | Stat::Std)) {
            true => assert!(
                (w - g).abs() <= 1e-12 * w.abs().max(1.0),
                "{key}: {w} vs {g}"
            ),
            false => assert_eq!(w.to_bits(), g.to_bits(), "{key}: {w} vs {g}"),
        }
    }
    assert!(passes <= 3, "{passes} passes after the first");
    passes
}

#[test]
fn keys_order_values_as_total_cmp_does() {
    let xs = [
        -f64::INFINITY,
        -2.5,
        -0.0,
        0.0,
        1e-300,
        0.5,
        1.0,
        3e10,
        f64::INFINITY,
    ];
    for w in xs.windows(2) {
        assert!(key(w[0]) < key(w[1]), "{} < {}", w[0], w[1]);
        assert_eq!(value_of(key(w[0])).to_bits(), w[0].to_bits());
    }
}

#[test]
fn selection_equals_sorting_on_small_and_edge_samples() {
    assert!(selected(&[]).0.is_empty());
    for values in [
        vec![0.25],
        vec![0.5, 0.25],
        vec![7.0, 7.0],
        vec![0.0, -0.0, 1.0],
        vec![3.0, 1.0, 2.0, 1.0, 3.0, 3.0],
        (1..=10).map(f64::from).collect(),
        (0..101).map(|i| f64::from(i % 7) * 1e-3).collect(),
    ] {
        assert_same(&values);
    }
}

#[test]
fn selection_equals_sorting_on_random_samples_with_ties() {
    let mut rng = StdRng::seed_from_u64(12);
    for n in [2, 3, 99, 100, 101, 1000, 5_000] {
        let values: Vec<f64> = (0..n)
            .map(|_| match rng.random_range(0..4) {
                // Ties: a few exact values repeated.
                0 => f64::from(rng.random_range(0..5u32)) * 0.01,
                1 => rng.random::<f64>() * 1e-3,
                2 => rng.random::<f64>() * 10.0,
                _ => (rng.random::<f64>() * 1e6).round() / 1e9,
            })
            .collect();
        assert_same(&values);
    }
}

/// Buckets fuller than [`COLLECT_MAX`] are counted by their next bits: values packed into one
/// top-16-bit bucket, and one value repeated (resolved by counting alone).
#[test]
fn full_buckets_are_refined_within_three_passes() {
    let n = 3 * COLLECT_MAX as usize;
    let mut rng = StdRng::seed_from_u64(7);
    let packed: Vec<f64> = (0..n)
        .map(|_| 0.010 + (rng.random_range(0..1_000_000u32) as f64) * 1e-12)
        .collect();
    assert!(assert_same(&packed) >= 2, "needed a refinement");
    let repeated = vec![0.002; n];
    assert_same(&repeated);
    let mut nearly = repeated.clone();
    nearly[n / 2] = 0.002000000000000001;
    nearly[n - 1] = 5.0;
    assert_same(&nearly);
}
