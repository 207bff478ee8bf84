//! Multiplicity adjustment over a family of p-values (statistics.md §2.5, §3.7): Holm's
//! step-down (family-wise error, the default for verdicts) and Benjamini–Hochberg (false
//! discovery rate, for large exploratory sweeps). Both return adjusted p-values in input order;
//! reject `Hᵢ` iff `adjusted[i] ≤ α`.

/// Cleans one p-value: NaN counts as 1 (no evidence), the rest is clamped to `[0, 1]`.
fn clean(p: f64) -> f64 {
    if p.is_nan() { 1.0 } else { p.clamp(0.0, 1.0) }
}

/// Indices of `p` sorted by ascending (cleaned) p-value; stable for equal values.
fn ascending(p: &[f64]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..p.len()).collect();
    order.sort_by(|&i, &j| clean(p[i]).total_cmp(&clean(p[j])));
    order
}

/// Holm–Bonferroni adjusted p-values:
/// `p̃₍ᵢ₎ = min(1, max_{j≤i} (m − j + 1)·p₍ⱼ₎)` over the ascending order, returned in input order.
/// With one p-value this is the identity. NaN inputs are treated as 1.
pub fn holm(p: &[f64]) -> Vec<f64> {
    let m = p.len();
    let mut adjusted = vec![0.0; m];
    let mut running_max: f64 = 0.0;
    for (rank, &i) in ascending(p).iter().enumerate() {
        let scaled = ((m - rank) as f64 * clean(p[i])).min(1.0);
        running_max = running_max.max(scaled);
        adjusted[i] = running_max;
    }
    adjusted
}

/// Benjamini–Hochberg adjusted p-values:
/// `p̃₍ᵢ₎ = min(1, min_{j≥i} m·p₍ⱼ₎/j)` over the ascending order, returned in input order.
/// NaN inputs are treated as 1.
pub fn benjamini_hochberg(p: &[f64]) -> Vec<f64> {
    let m = p.len();
    let mut adjusted = vec![0.0; m];
    let mut running_min: f64 = 1.0;
    for (rank, &i) in ascending(p).iter().enumerate().rev() {
        let scaled = m as f64 * clean(p[i]) / (rank + 1) as f64;
        running_min = running_min.min(scaled);
        adjusted[i] = running_min;
    }
    adjusted
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::fixtures::close;

    const P: [f64; 5] = [0.004, 0.029, 0.012, 0.041, 0.250];

    #[test]
    fn holm_example_of_statistics_md_3_7_with_monotonicity() {
        let got = holm(&P);
        for (g, want) in got.iter().zip([0.020, 0.087, 0.048, 0.087, 0.250]) {
            close(*g, want);
        }
        let rejected: Vec<bool> = got.iter().map(|&q| q <= 0.05).collect();
        assert_eq!(rejected, [true, false, true, false, false]);
    }

    #[test]
    fn bh_example_of_statistics_md_3_7() {
        let got = benjamini_hochberg(&P);
        for (g, want) in got.iter().zip([0.020, 0.048333, 0.030, 0.05125, 0.250]) {
            close(*g, want);
        }
        let rejected: Vec<bool> = got.iter().map(|&q| q <= 0.05).collect();
        assert_eq!(rejected, [true, true, true, false, false]);
    }

    #[test]
    fn single_p_value_is_unchanged() {
        assert_eq!(holm(&[0.03]), vec![0.03]);
        assert_eq!(benjamini_hochberg(&[0.03]), vec![0.03]);
    }

    #[test]
    fn empty_family_and_caps() {
        assert!(holm(&[]).is_empty());
        assert!(benjamini_hochberg(&[]).is_empty());
        assert_eq!(holm(&[0.6, 0.7]), vec![1.0, 1.0]);
    }

    #[test]
    fn nan_is_treated_as_no_evidence() {
        assert_eq!(holm(&[f64::NAN, 0.01]), vec![1.0, 0.02]);
        assert_eq!(benjamini_hochberg(&[f64::NAN, 0.01]), vec![1.0, 0.02]);
    }
}
