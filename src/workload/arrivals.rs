//! The release process of one repetition: open-loop send offsets (Poisson, gamma, constant,
//! trace replay) or the closed-loop and batch settings.
//!
//! Open-loop offsets are integer nanoseconds from the repetition origin; the first is 0. Poisson
//! and gamma gaps are drawn one after another from the repetition's arrival stream and are never
//! rescaled, so N requests span whatever a real process of that rate spans (about (N − 1)/rate
//! ± √(N − 1)/rate for Poisson), and a shorter schedule is a prefix of a longer one.

use rand::Rng;
use rand_distr::{Distribution, Exp, Gamma};

use super::error::WorkloadError;
use super::stream::{self, Purpose};
use super::trace::Trace;
use super::work::Arrivals;
use crate::scenario::model::{ArrivalConfig, WorkloadConfig};

/// Most open-loop requests one repetition may schedule (a guard against `rate × duration` typos).
pub const MAX_OPEN_REQUESTS: u64 = 50_000_000;

/// Where an open-loop schedule stops: after `requests` sends, or at the first offset at or past
/// `duration_ns`, whichever comes first.
#[derive(Debug, Clone, Copy)]
struct Span {
    requests: Option<u64>,
    duration_ns: Option<u64>,
}

/// The arrivals of `cfg` and the number of measured requests to release (`None`: until the
/// duration ends). `trace` must be the loaded trace when `cfg.arrival` is a trace.
pub(crate) fn build(
    cfg: &WorkloadConfig,
    seed: u64,
    trace: Option<&Trace>,
) -> Result<(Arrivals, Option<u64>), WorkloadError> {
    let span = Span {
        requests: cfg.requests,
        duration_ns: cfg
            .duration
            .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)),
    };
    let mut rng = stream::sequential(seed, Purpose::Arrivals);
    let offsets = match &cfg.arrival {
        ArrivalConfig::Closed { concurrency } => {
            return Ok((
                Arrivals::Closed {
                    concurrency: *concurrency,
                },
                cfg.requests,
            ));
        }
        ArrivalConfig::Batch { size } => {
            return Ok((Arrivals::Batch { size: *size }, cfg.requests));
        }
        ArrivalConfig::Poisson { rate } => {
            check_size(span, *rate)?;
            let exp = Exp::new(check_rate(*rate)?).map_err(|e| invalid(format!("poisson: {e}")))?;
            random_gaps(span, &exp, &mut rng)?
        }
        ArrivalConfig::Gamma { rate, burstiness } => {
            check_size(span, *rate)?;
            let shape = positive("burstiness", *burstiness)?;
            let scale = 1.0 / (check_rate(*rate)? * shape);
            let gamma = Gamma::new(shape, scale).map_err(|e| invalid(format!("gamma: {e}")))?;
            random_gaps(span, &gamma, &mut rng)?
        }
        ArrivalConfig::Constant { rate } => {
            check_size(span, *rate)?;
            let step = 1e9 / check_rate(*rate)?;
            schedule(span, |i| to_ns(i as f64 * step))?
        }
        ArrivalConfig::Trace(path) => {
            let trace = trace
                .ok_or_else(|| invalid(format!("trace `{}` was not loaded", path.display())))?;
            let span = Span {
                requests: Some(span.requests.map_or(trace.entries().len() as u64, |r| {
                    r.min(trace.entries().len() as u64)
                })),
                ..span
            };
            schedule(span, |i| trace.entries()[i as usize].offset_ns)?
        }
    };
    let n = offsets.len() as u64;
    let arrivals = Arrivals::Open {
        offsets_ns: offsets,
        max_concurrency: cfg.max_concurrency,
    };
    Ok((arrivals, Some(n)))
}

fn invalid(message: String) -> WorkloadError {
    WorkloadError::Invalid(message)
}

fn positive(name: &str, x: f64) -> Result<f64, WorkloadError> {
    if x.is_finite() && x > 0.0 {
        Ok(x)
    } else {
        Err(invalid(format!(
            "`{name}` = {x}: must be a finite number > 0"
        )))
    }
}

fn check_rate(rate: f64) -> Result<f64, WorkloadError> {
    positive("rate", rate)
}

/// Refuses schedules expected to exceed [`MAX_OPEN_REQUESTS`] before generating them.
fn check_size(span: Span, rate: f64) -> Result<(), WorkloadError> {
    if span.requests.is_none() && span.duration_ns.is_none() {
        return Err(unbounded());
    }
    let by_duration = span
        .duration_ns
        .map_or(f64::INFINITY, |d| d as f64 / 1e9 * rate);
    let by_requests = span.requests.map_or(f64::INFINITY, |r| r as f64);
    if by_duration.min(by_requests) > MAX_OPEN_REQUESTS as f64 {
        return Err(too_many());
    }
    Ok(())
}

fn unbounded() -> WorkloadError {
    invalid("an open-loop schedule needs `requests` or `duration`".into())
}

fn too_many() -> WorkloadError {
    invalid(format!(
        "the open-loop schedule would exceed {MAX_OPEN_REQUESTS} requests \
         (check `rate`, `duration` and `requests`)"
    ))
}

fn to_ns(seconds_times_1e9: f64) -> u64 {
    // `as` saturates; offsets past u64::MAX ns (584 years) cannot be scheduled anyway.
    seconds_times_1e9.round() as u64
}

/// Offsets with i.i.d. gaps in seconds drawn from `gaps`, the first at 0.
fn random_gaps<D, R>(span: Span, gaps: &D, rng: &mut R) -> Result<Vec<u64>, WorkloadError>
where
    D: Distribution<f64>,
    R: Rng + ?Sized,
{
    let mut t = 0.0_f64;
    schedule(span, |i| {
        if i > 0 {
            t += gaps.sample(rng);
        }
        to_ns(t * 1e9)
    })
}

/// Calls `offset(0), offset(1), …` until `span` is reached.
fn schedule(span: Span, mut offset: impl FnMut(u64) -> u64) -> Result<Vec<u64>, WorkloadError> {
    if span.requests.is_none() && span.duration_ns.is_none() {
        return Err(unbounded());
    }
    let limit = span.requests.unwrap_or(u64::MAX);
    let mut offsets = Vec::with_capacity(limit.min(1 << 20) as usize);
    for i in 0..limit {
        let t = offset(i);
        if span.duration_ns.is_some_and(|d| t >= d) {
            break;
        }
        if i >= MAX_OPEN_REQUESTS {
            return Err(too_many());
        }
        offsets.push(t);
    }
    Ok(offsets)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::model::LengthDist;
    use crate::scenario::model::PromptSource;
    use std::num::NonZeroU32;
    use std::time::Duration;

    fn cfg(arrival: ArrivalConfig, requests: Option<u64>, duration: Option<f64>) -> WorkloadConfig {
        WorkloadConfig {
            prompts: PromptSource::Synthetic,
            prompt_tokens: 16,
            prompt_dist: LengthDist::Fixed,
            output_tokens: 8,
            output_dist: LengthDist::Fixed,
            arrival,
            max_concurrency: None,
            requests,
            duration: duration.map(Duration::from_secs_f64),
            warmup: 0,
            grace: Duration::ZERO,
        }
    }

    fn offsets(arrival: ArrivalConfig, requests: Option<u64>, duration: Option<f64>) -> Vec<u64> {
        match build(&cfg(arrival, requests, duration), 42, None).unwrap() {
            (Arrivals::Open { offsets_ns, .. }, Some(n)) => {
                assert_eq!(n, offsets_ns.len() as u64);
                offsets_ns
            }
            other => panic!("expected an open loop, got {other:?}"),
        }
    }

    /// Mean and population variance of the gaps, in seconds.
    fn gap_moments(offsets: &[u64]) -> (f64, f64) {
        let gaps: Vec<f64> = offsets
            .windows(2)
            .map(|w| (w[1] - w[0]) as f64 / 1e9)
            .collect();
        let m = gaps.iter().sum::<f64>() / gaps.len() as f64;
        let v = gaps.iter().map(|g| (g - m).powi(2)).sum::<f64>() / gaps.len() as f64;
        (m, v)
    }

    #[test]
    fn poisson_gaps_have_exponential_moments() {
        let o = offsets(ArrivalConfig::Poisson { rate: 10.0 }, Some(100_001), None);
        assert_eq!(o[0], 0);
        assert!(o.windows(2).all(|w| w[0] <= w[1]));
        let (m, v) = gap_moments(&o);
        // Mean 1/rate = 0.1 s (standard error 3.2e-4 s); variance 1/rate² = 0.01 (SE 8.9e-5 s²).
        assert!((m - 0.1).abs() < 0.001, "mean gap {m}");
        assert!((v - 0.01).abs() < 0.0003, "gap variance {v}");
    }

    #[test]
    fn poisson_is_not_rescaled_and_shorter_schedules_are_prefixes() {
        let long = offsets(ArrivalConfig::Poisson { rate: 1.0 }, Some(100), None);
        let short = offsets(ArrivalConfig::Poisson { rate: 1.0 }, Some(50), None);
        assert_eq!(short[..], long[..50]);
        let last = long[99];
        assert!(last != 99_000_000_000 && last != 100_000_000_000, "{last}");
        let timed = offsets(ArrivalConfig::Poisson { rate: 1.0 }, None, Some(30.0));
        assert!(!timed.is_empty() && timed.iter().all(|&t| t < 30_000_000_000));
        assert_eq!(timed[..], long[..timed.len()]);
        assert!(long[timed.len()] >= 30_000_000_000);
        let both = offsets(ArrivalConfig::Poisson { rate: 1.0 }, Some(5), Some(30.0));
        assert_eq!(both[..], long[..5]);
    }

    #[test]
    fn a_higher_rate_scales_the_same_variates() {
        let slow = offsets(ArrivalConfig::Poisson { rate: 1.0 }, Some(20), None);
        let fast = offsets(ArrivalConfig::Poisson { rate: 4.0 }, Some(20), None);
        for (s, f) in slow.iter().zip(&fast) {
            assert!((*s as f64 / 4.0 - *f as f64).abs() <= 2.0, "{s} vs {f}");
        }
    }

    #[test]
    fn constant_spacing_is_exact() {
        let ms = 1_000_000;
        let o = offsets(ArrivalConfig::Constant { rate: 4.0 }, Some(5), None);
        assert_eq!(o, vec![0, 250 * ms, 500 * ms, 750 * ms, 1000 * ms]);
        let o = offsets(ArrivalConfig::Constant { rate: 4.0 }, None, Some(1.0));
        assert_eq!(
            o,
            vec![0, 250 * ms, 500 * ms, 750 * ms],
            "offsets stay below the duration"
        );
        assert_eq!(
            offsets(ArrivalConfig::Constant { rate: 3.0 }, Some(4), None)[3],
            1_000_000_000
        );
    }

    #[test]
    fn gamma_with_burstiness_one_matches_exponential_moments() {
        let o = offsets(
            ArrivalConfig::Gamma {
                rate: 10.0,
                burstiness: 1.0,
            },
            Some(100_001),
            None,
        );
        let (m, v) = gap_moments(&o);
        assert!((m - 0.1).abs() < 0.001, "mean gap {m}");
        assert!((v - 0.01).abs() < 0.0003, "gap variance {v}");
        // Shape 0.25: same mean, squared CV 1/shape = 4.
        let o = offsets(
            ArrivalConfig::Gamma {
                rate: 10.0,
                burstiness: 0.25,
            },
            Some(100_001),
            None,
        );
        let (m, v) = gap_moments(&o);
        assert!((m - 0.1).abs() < 0.002, "mean gap {m}");
        assert!(
            (v / (m * m) - 4.0).abs() < 0.3,
            "squared cv {}",
            v / (m * m)
        );
    }

    #[test]
    fn closed_and_batch_pass_through_and_max_concurrency_is_kept() {
        let c = NonZeroU32::new(8).unwrap();
        let (a, n) = build(
            &cfg(ArrivalConfig::Closed { concurrency: c }, None, Some(5.0)),
            1,
            None,
        )
        .unwrap();
        assert_eq!((a, n), (Arrivals::Closed { concurrency: c }, None));
        let (a, n) = build(
            &cfg(ArrivalConfig::Batch { size: c }, Some(64), None),
            1,
            None,
        )
        .unwrap();
        assert_eq!((a, n), (Arrivals::Batch { size: c }, Some(64)));
        let mut capped = cfg(ArrivalConfig::Poisson { rate: 1.0 }, Some(3), None);
        capped.max_concurrency = Some(c);
        let (a, _) = build(&capped, 1, None).unwrap();
        assert!(matches!(a, Arrivals::Open { max_concurrency: Some(m), .. } if m == c));
    }

    #[test]
    fn trace_offsets_are_replayed_and_cut_by_requests_and_duration() {
        let trace = Trace::parse(
            std::path::Path::new("t.jsonl"),
            "{\"timestamp\": 5.0, \"input_tokens\": 3, \"output_tokens\": 2}\n\
             {\"timestamp\": 5.5, \"input_tokens\": 3, \"output_tokens\": 2}\n\
             {\"timestamp\": 7.0, \"input_tokens\": 3, \"output_tokens\": 2}\n",
        )
        .unwrap();
        let arrival = ArrivalConfig::Trace("t.jsonl".into());
        let run = |requests, duration| match build(
            &cfg(arrival.clone(), requests, duration),
            1,
            Some(&trace),
        ) {
            Ok((Arrivals::Open { offsets_ns, .. }, _)) => offsets_ns,
            other => panic!("{other:?}"),
        };
        assert_eq!(run(None, None), vec![0, 500_000_000, 2_000_000_000]);
        assert_eq!(run(Some(2), None), vec![0, 500_000_000]);
        assert_eq!(run(Some(10), Some(1.0)), vec![0, 500_000_000]);
    }

    #[test]
    fn impossible_schedules_are_refused() {
        let none = build(
            &cfg(ArrivalConfig::Poisson { rate: 1.0 }, None, None),
            1,
            None,
        );
        assert!(
            none.unwrap_err()
                .to_string()
                .contains("needs `requests` or `duration`")
        );
        let zero = build(
            &cfg(ArrivalConfig::Constant { rate: 0.0 }, Some(3), None),
            1,
            None,
        );
        assert!(zero.unwrap_err().to_string().contains("`rate` = 0"));
        let huge = build(
            &cfg(ArrivalConfig::Poisson { rate: 1e9 }, None, Some(3600.0)),
            1,
            None,
        );
        assert!(huge.unwrap_err().to_string().contains("would exceed"));
    }
}
