//! Bounded nonlinear least squares, small and in-house: Levenberg–Marquardt with a
//! forward-difference Jacobian, box constraints by projection, and standard errors from the
//! Gauss–Newton covariance `s²·(JᵀJ)⁻¹`. Pure; sized for a handful of parameters.
//!
//! The calibration models are piecewise linear in their parameters (a step time is
//! `max(a·u₁, b·u₂) + o` with `u = 1/η`), so within one roofline regime a single Gauss–Newton
//! step lands on the optimum; the damping only matters when a step crosses a kink.

/// Iterations before giving up on convergence (the result is still returned).
const MAX_ITERATIONS: usize = 200;
/// Relative decrease of the sum of squares below which the fit has converged.
const TOLERANCE: f64 = 1e-14;

/// A box-constrained least-squares problem in `k` parameters.
pub struct Problem<'a> {
    /// Residuals at a parameter vector (the same length at every call, ≥ `k`).
    pub residuals: &'a dyn Fn(&[f64]) -> Vec<f64>,
    /// Lower bound of each parameter.
    pub lower: Vec<f64>,
    /// Upper bound of each parameter.
    pub upper: Vec<f64>,
    /// Typical magnitude of each parameter (sets the finite-difference step).
    pub scale: Vec<f64>,
}

/// The result of [`least_squares`].
#[derive(Debug, Clone, PartialEq)]
pub struct Fit {
    /// The parameters at the minimum found.
    pub params: Vec<f64>,
    /// Standard error of each parameter, `None` when the covariance is not defined (no more
    /// residuals than parameters, or a singular `JᵀJ`: the data do not pin the parameter).
    pub std_errors: Vec<Option<f64>>,
    /// Sum of squared residuals at `params`.
    pub rss: f64,
    /// Residuals at `params`.
    pub residuals: Vec<f64>,
    /// Which parameters ended on a bound.
    pub at_bound: Vec<bool>,
    /// Iterations used.
    pub iterations: usize,
}

fn sum_squares(r: &[f64]) -> f64 {
    r.iter().map(|x| x * x).sum()
}

fn clamp(x: &mut [f64], p: &Problem<'_>) {
    for (i, v) in x.iter_mut().enumerate() {
        *v = v.clamp(p.lower[i], p.upper[i]);
    }
}

/// Forward-difference Jacobian (backward where the forward step would leave the box).
fn jacobian(p: &Problem<'_>, x: &[f64], r: &[f64]) -> Vec<Vec<f64>> {
    let mut columns = Vec::with_capacity(x.len());
    for k in 0..x.len() {
        let mut h = 1e-6 * p.scale[k].abs().max(x[k].abs());
        if x[k] + h > p.upper[k] {
            h = -h;
        }
        let mut xh = x.to_vec();
        xh[k] += h;
        let rh = (p.residuals)(&xh);
        columns.push(rh.iter().zip(r).map(|(a, b)| (a - b) / h).collect());
    }
    columns
}

/// `JᵀJ` (k×k) and `Jᵀr` (k) from the Jacobian's columns.
fn normal_equations(columns: &[Vec<f64>], r: &[f64]) -> (Vec<Vec<f64>>, Vec<f64>) {
    let k = columns.len();
    let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f64>();
    let jtj = (0..k)
        .map(|i| (0..k).map(|j| dot(&columns[i], &columns[j])).collect())
        .collect();
    let jtr = columns.iter().map(|c| dot(c, r)).collect();
    (jtj, jtr)
}

/// Solves `a·x = b` by Gaussian elimination with partial pivoting; `None` when `a` is
/// singular relative to its largest diagonal entry.
pub fn solve(a: &[Vec<f64>], b: &[f64]) -> Option<Vec<f64>> {
    let n = b.len();
    let mut m: Vec<Vec<f64>> = a.to_vec();
    let mut x = b.to_vec();
    let size = (0..n).map(|i| a[i][i].abs()).fold(0.0, f64::max);
    if !(size > 0.0 && size.is_finite()) {
        return None;
    }
    for col in 0..n {
        let pivot = (col..n).max_by(|&i, &j| m[i][col].abs().total_cmp(&m[j][col].abs()))?;
        if m[pivot][col].abs() <= 1e-12 * size {
            return None;
        }
        m.swap(col, pivot);
        x.swap(col, pivot);
        let (top, below) = m.split_at_mut(col + 1);
        let pivot_row = &top[col];
        for (k, row) in below.iter_mut().enumerate() {
            let f = row[col] / pivot_row[col];
            for (v, p) in row.iter_mut().zip(pivot_row).skip(col) {
                *v -= f * p;
            }
            x[col + 1 + k] -= f * x[col];
        }
    }
    for col in (0..n).rev() {
        let tail: f64 = (col + 1..n).map(|c| m[col][c] * x[c]).sum();
        x[col] = (x[col] - tail) / m[col][col];
    }
    Some(x)
}

/// Minimises the sum of squared residuals from `start` inside the box.
pub fn least_squares(p: &Problem<'_>, start: &[f64]) -> Fit {
    let mut x = start.to_vec();
    clamp(&mut x, p);
    let mut r = (p.residuals)(&x);
    let mut rss = sum_squares(&r);
    let mut lambda = 1e-3;
    let mut iterations = 0;
    while iterations < MAX_ITERATIONS {
        iterations += 1;
        let columns = jacobian(p, &x, &r);
        let (jtj, jtr) = normal_equations(&columns, &r);
        let mut improved = false;
        while lambda < 1e12 {
            let damped: Vec<Vec<f64>> = (0..x.len())
                .map(|i| {
                    let mut row = jtj[i].clone();
                    row[i] += lambda * jtj[i][i].max(1e-300);
                    row
                })
                .collect();
            let minus: Vec<f64> = jtr.iter().map(|v| -v).collect();
            let Some(step) = solve(&damped, &minus) else {
                lambda *= 10.0;
                continue;
            };
            let mut trial: Vec<f64> = x.iter().zip(&step).map(|(a, d)| a + d).collect();
            clamp(&mut trial, p);
            let trial_r = (p.residuals)(&trial);
            let trial_rss = sum_squares(&trial_r);
            if trial_rss < rss {
                let gain = (rss - trial_rss) / rss.max(f64::MIN_POSITIVE);
                (x, r, rss) = (trial, trial_r, trial_rss);
                lambda = (lambda / 10.0).max(1e-12);
                improved = gain > TOLERANCE;
                break;
            }
            lambda *= 10.0;
        }
        if !improved {
            break;
        }
    }
    finish(p, x, r, rss, iterations)
}

/// Standard errors and bound flags at the minimum.
fn finish(p: &Problem<'_>, x: Vec<f64>, r: Vec<f64>, rss: f64, iterations: usize) -> Fit {
    let k = x.len();
    let columns = jacobian(p, &x, &r);
    let (jtj, _) = normal_equations(&columns, &r);
    let dof = r.len().saturating_sub(k);
    let mut std_errors = vec![None; k];
    if dof > 0 {
        let s2 = rss / dof as f64;
        for (i, se) in std_errors.iter_mut().enumerate() {
            let mut unit = vec![0.0; k];
            unit[i] = 1.0;
            *se = solve(&jtj, &unit).map(|col| (s2 * col[i]).max(0.0).sqrt());
        }
    }
    let at_bound = (0..k)
        .map(|i| x[i] <= p.lower[i] || x[i] >= p.upper[i])
        .collect();
    Fit {
        params: x,
        std_errors,
        rss,
        residuals: r,
        at_bound,
        iterations,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn least_squares_recovers_a_line_and_its_standard_errors() {
        // y = 2x + 3 with residuals ±0.1 alternating: the fit is exact in the mean.
        let xs: Vec<f64> = (0..20).map(f64::from).collect();
        let ys: Vec<f64> = xs
            .iter()
            .enumerate()
            .map(|(i, x)| 2.0 * x + 3.0 + if i % 2 == 0 { 0.1 } else { -0.1 })
            .collect();
        let f = |p: &[f64]| -> Vec<f64> {
            xs.iter()
                .zip(&ys)
                .map(|(x, y)| p[0] * x + p[1] - y)
                .collect()
        };
        let fit = least_squares(
            &Problem {
                residuals: &f,
                lower: vec![-100.0, -100.0],
                upper: vec![100.0, 100.0],
                scale: vec![1.0, 1.0],
            },
            &[0.0, 0.0],
        );
        // Ordinary least squares on this design: slope 2 − 0.2·Σ(x−x̄)s/Σ(x−x̄)², closed form below.
        let xbar = 9.5;
        let sxx: f64 = xs.iter().map(|x| (x - xbar).powi(2)).sum();
        let sxy: f64 = xs.iter().zip(&ys).map(|(x, y)| (x - xbar) * y).sum();
        let slope = sxy / sxx;
        let intercept = ys.iter().sum::<f64>() / 20.0 - slope * xbar;
        assert!((fit.params[0] - slope).abs() < 1e-7, "{:?}", fit.params);
        assert!((fit.params[1] - intercept).abs() < 1e-6, "{:?}", fit.params);
        let s2 = fit.rss / 18.0;
        let se_slope = (s2 / sxx).sqrt();
        assert!((fit.std_errors[0].unwrap() - se_slope).abs() < 1e-6 * se_slope.max(1.0));
        assert_eq!(fit.at_bound, vec![false, false]);
    }

    #[test]
    fn least_squares_stops_on_a_bound() {
        // Minimum of (p − 5)² is at 5, but the box ends at 2.
        let f = |p: &[f64]| vec![p[0] - 5.0, p[0] - 5.0];
        let fit = least_squares(
            &Problem {
                residuals: &f,
                lower: vec![0.0],
                upper: vec![2.0],
                scale: vec![1.0],
            },
            &[1.0],
        );
        assert_eq!(fit.params, vec![2.0]);
        assert_eq!(fit.at_bound, vec![true]);
    }

    #[test]
    fn solve_known_system_and_singular_matrix() {
        let a = vec![
            vec![2.0, 1.0, -1.0],
            vec![-3.0, -1.0, 2.0],
            vec![-2.0, 1.0, 2.0],
        ];
        let x = solve(&a, &[8.0, -11.0, -3.0]).unwrap();
        for (got, want) in x.iter().zip([2.0, 3.0, -1.0]) {
            assert!((got - want).abs() < 1e-12, "{x:?}");
        }
        let singular = vec![vec![1.0, 2.0], vec![2.0, 4.0]];
        assert_eq!(solve(&singular, &[1.0, 2.0]), None);
    }
}
