//! Outlier diagnostics among run values (statistics.md §2.7, §3.10): Tukey fences on type-7
//! quartiles (criterion's mild 1.5·IQR / severe 3·IQR) and the Iglewicz–Hoaglin modified
//! z-score `M = 0.6745·(x − median)/MAD` with the usual 3.5 cut-off. Outliers are reported,
//! never dropped. (hyperfine's 14.826 cut-off is far too lenient; do not copy it.)

use serde::Serialize;

use super::quantile::{quantile, sorted_copy};

/// Conventional `|M|` above which a value is a modified-z outlier.
pub const MODIFIED_Z_THRESHOLD: f64 = 3.5;

/// Where a value falls relative to Tukey's fences.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OutlierClass {
    /// Below `Q1 − 3·IQR`.
    LowSevere,
    /// Below `Q1 − 1.5·IQR`.
    LowMild,
    /// Inside the fences.
    NotOutlier,
    /// Above `Q3 + 1.5·IQR`.
    HighMild,
    /// Above `Q3 + 3·IQR`.
    HighSevere,
}

/// Tukey fences of a sample.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TukeyFences {
    /// First quartile (type 7).
    pub q1: f64,
    /// Third quartile (type 7).
    pub q3: f64,
    /// `Q3 − Q1`.
    pub iqr: f64,
    /// `Q1 − 3·IQR`.
    pub severe_low: f64,
    /// `Q1 − 1.5·IQR`.
    pub mild_low: f64,
    /// `Q3 + 1.5·IQR`.
    pub mild_high: f64,
    /// `Q3 + 3·IQR`.
    pub severe_high: f64,
}

impl TukeyFences {
    /// Classifies one value (fences are exclusive: a value on a fence is not beyond it).
    pub fn classify(&self, x: f64) -> OutlierClass {
        if x < self.severe_low {
            OutlierClass::LowSevere
        } else if x > self.severe_high {
            OutlierClass::HighSevere
        } else if x < self.mild_low {
            OutlierClass::LowMild
        } else if x > self.mild_high {
            OutlierClass::HighMild
        } else {
            OutlierClass::NotOutlier
        }
    }

    /// `(index, class)` of every value of `values` outside the mild fences, in input order.
    pub fn outliers(&self, values: &[f64]) -> Vec<(usize, OutlierClass)> {
        values
            .iter()
            .enumerate()
            .map(|(i, &x)| (i, self.classify(x)))
            .filter(|(_, class)| *class != OutlierClass::NotOutlier)
            .collect()
    }
}

/// Tukey fences of `values`; `None` when empty or a value is not finite.
pub fn tukey_fences(values: &[f64]) -> Option<TukeyFences> {
    if !values.iter().all(|v| v.is_finite()) {
        return None;
    }
    let sorted = sorted_copy(values);
    let (q1, q3) = (quantile(&sorted, 0.25)?, quantile(&sorted, 0.75)?);
    let iqr = q3 - q1;
    Some(TukeyFences {
        q1,
        q3,
        iqr,
        severe_low: q1 - 3.0 * iqr,
        mild_low: q1 - 1.5 * iqr,
        mild_high: q3 + 1.5 * iqr,
        severe_high: q3 + 3.0 * iqr,
    })
}

/// The spread estimate behind a modified z-score.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RobustScale {
    /// `M = 0.6745·(x − median)/MAD` (Iglewicz–Hoaglin).
    Mad,
    /// MAD is 0 (more than half the values equal): `M = (x − median)/(1.253314·MeanAD)`.
    MeanAbsoluteDeviation,
    /// Every value equals the median: all scores are 0.
    Constant,
}

/// Modified z-scores of a sample.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModifiedZ {
    /// Median (type 7).
    pub median: f64,
    /// Median absolute deviation from the median (unscaled).
    pub mad: f64,
    /// Which formula produced `scores`.
    pub scale: RobustScale,
    /// One score per input value, in input order.
    pub scores: Vec<f64>,
}

impl ModifiedZ {
    /// Indices whose `|M|` exceeds `threshold` (use [`MODIFIED_Z_THRESHOLD`]).
    pub fn outliers(&self, threshold: f64) -> Vec<usize> {
        (0..self.scores.len())
            .filter(|&i| self.scores[i].abs() > threshold)
            .collect()
    }
}

/// Modified z-scores of `values`; `None` when empty or a value is not finite.
pub fn modified_z(values: &[f64]) -> Option<ModifiedZ> {
    if !values.iter().all(|v| v.is_finite()) {
        return None;
    }
    let median = quantile(&sorted_copy(values), 0.5)?;
    let deviations: Vec<f64> = values.iter().map(|x| (x - median).abs()).collect();
    let mad = quantile(&sorted_copy(&deviations), 0.5)?;
    let mean_ad = deviations.iter().sum::<f64>() / values.len() as f64;
    let (scale, factor) = if mad > 0.0 {
        (RobustScale::Mad, 0.6745 / mad)
    } else if mean_ad > 0.0 {
        (
            RobustScale::MeanAbsoluteDeviation,
            1.0 / (1.253314 * mean_ad),
        )
    } else {
        (RobustScale::Constant, 0.0)
    };
    let scores = values.iter().map(|x| (x - median) * factor).collect();
    Some(ModifiedZ {
        median,
        mad,
        scale,
        scores,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::fixtures::{E2_BASE, close};

    fn dataset_c() -> Vec<f64> {
        E2_BASE
            .iter()
            .map(|&x| if x == 201.7 { 251.7 } else { x })
            .collect()
    }

    #[test]
    fn tukey_fences_of_e2_baseline() {
        let f = tukey_fences(&E2_BASE).unwrap();
        close(f.q1, 178.975);
        close(f.q3, 187.725);
        close(f.iqr, 8.75);
        close(f.severe_low, 152.725);
        close(f.mild_low, 165.85);
        close(f.mild_high, 200.85);
        close(f.severe_high, 213.975);
        assert_eq!(f.outliers(&E2_BASE), vec![(5, OutlierClass::HighMild)]);
    }

    #[test]
    fn dataset_c_has_a_high_severe_outlier() {
        let c = dataset_c();
        let f = tukey_fences(&c).unwrap();
        assert_eq!(f.outliers(&c), vec![(5, OutlierClass::HighSevere)]);
        assert_eq!(f.classify(100.0), OutlierClass::LowSevere);
        assert_eq!(f.classify(160.0), OutlierClass::LowMild);
    }

    #[test]
    fn modified_z_of_e2_baseline_and_dataset_c() {
        let m = modified_z(&E2_BASE).unwrap();
        close(m.median, 182.8);
        close(m.mad, 4.9);
        assert!((m.scores[5] - 2.6016).abs() < 5e-5);
        assert!(m.outliers(MODIFIED_Z_THRESHOLD).is_empty());
        let c = modified_z(&dataset_c()).unwrap();
        assert!((c.scores[5] - 9.4843).abs() < 5e-5);
        assert_eq!(c.outliers(MODIFIED_Z_THRESHOLD), vec![5]);
        // hyperfine's unscaled score |x − med|/MAD = 14.061 < 14.826: it would miss this run.
        assert!(((251.7 - c.median) / c.mad - 14.061).abs() < 5e-4);
    }

    #[test]
    fn zero_mad_falls_back_to_the_mean_absolute_deviation() {
        let m = modified_z(&[10.0, 10.0, 10.0, 10.0, 30.0]).unwrap();
        assert_eq!(m.scale, RobustScale::MeanAbsoluteDeviation);
        // MeanAD = 4, so M = 20/(1.253314·4) = 3.98942.
        assert!((m.scores[4] - 3.98942).abs() < 1e-5);
        assert_eq!(m.outliers(MODIFIED_Z_THRESHOLD), vec![4]);
    }

    #[test]
    fn constant_sample_has_no_outliers() {
        let m = modified_z(&[2.0; 4]).unwrap();
        assert_eq!(m.scale, RobustScale::Constant);
        assert_eq!(m.scores, vec![0.0; 4]);
        let f = tukey_fences(&[2.0; 4]).unwrap();
        assert!(f.outliers(&[2.0; 4]).is_empty());
    }

    #[test]
    fn empty_or_non_finite_gives_none() {
        assert_eq!(tukey_fences(&[]), None);
        assert_eq!(modified_z(&[]), None);
        assert_eq!(modified_z(&[1.0, f64::INFINITY]), None);
    }
}
