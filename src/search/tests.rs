use std::num::NonZeroU32;

use super::*;

fn spec(low: f64, high: f64, integer: bool) -> SearchSpec {
    SearchSpec {
        variable: if integer {
            "concurrency"
        } else {
            "request_rate"
        }
        .into(),
        low,
        high,
        target: 0.99,
        tolerance: 0.05,
        repetitions: NonZeroU32::new(3).unwrap(),
        integer,
    }
}

/// Runs a search against a system whose attainment is 100 % up to `capacity` and falls
/// linearly above it; returns the probes in the order they were made.
fn search(spec: &SearchSpec, capacity: f64) -> Vec<Probe> {
    let mut probes = Vec::new();
    while let Some(load) = next_probe(spec, &probes) {
        let a = if load <= capacity {
            1.0
        } else {
            (1.0 - (load - capacity) / capacity).max(0.0)
        };
        probes.push(Probe {
            load,
            attainment: vec![a, a, a],
        });
        assert!(probes.len() < 50, "the search does not end");
    }
    probes
}

#[test]
fn bisection_brackets_the_capacity_within_tolerance() {
    let s = spec(5.0, 20.0, false);
    let probes = search(&s, 13.7);
    let loads: Vec<f64> = probes.iter().map(|p| p.load).collect();
    assert_eq!(loads, vec![5.0, 20.0, 12.5, 16.25, 14.38, 13.44, 13.91]);
    let o = outcome(&s, "default", &probes);
    assert_eq!(o.status, Status::Converged);
    let (pass, fail) = (o.capacity.unwrap(), o.first_failing.unwrap());
    assert!(pass <= 13.7 && 13.7 < fail, "[{pass}, {fail}]");
    assert!(fail - pass <= 0.05 * pass);
    assert!(o.non_monotone.is_empty());
    // Probes are reported by load, with their attainment.
    assert!(o.probes.windows(2).all(|w| w[0].load < w[1].load));
    assert_eq!(o.probes[0].ci, Some((1.0, 1.0)));
}

#[test]
fn every_probe_after_the_first_bracket_lies_inside_it() {
    let s = spec(1.0, 100.0, false);
    let probes = search(&s, 37.3);
    let mut width = f64::INFINITY;
    for k in 2..=probes.len() {
        let (Some(pass), Some(fail)) = bracket(&s, &probes[..k]) else {
            continue;
        };
        assert!(pass < fail);
        assert!(fail - pass <= width, "the bracket widened at probe {k}");
        width = fail - pass;
        if k < probes.len() {
            let next = probes[k].load;
            assert!(
                pass < next && next < fail,
                "probe {next} outside [{pass}, {fail}]"
            );
        }
    }
    assert!(width <= 0.05 * 37.3);
}

#[test]
fn a_capacity_below_the_range_halves_down_and_says_so() {
    let s = spec(5.0, 20.0, false);
    let probes = search(&s, 0.1);
    let loads: Vec<f64> = probes.iter().map(|p| p.load).collect();
    assert_eq!(loads, vec![5.0, 2.5, 1.25, 0.625, 0.3125]);
    let o = outcome(&s, "default", &probes);
    assert_eq!((o.status, o.capacity), (Status::BelowRange, None));
    assert_eq!(o.first_failing, Some(0.3125));
}

#[test]
fn a_capacity_above_the_range_doubles_up_to_sixteen_times_high() {
    let s = spec(5.0, 20.0, false);
    let probes = search(&s, 1000.0);
    let loads: Vec<f64> = probes.iter().map(|p| p.load).collect();
    assert_eq!(loads, vec![5.0, 20.0, 40.0, 80.0, 160.0, 320.0]);
    let o = outcome(&s, "default", &probes);
    assert_eq!((o.status, o.capacity), (Status::AboveRange, Some(320.0)));
}

#[test]
fn counts_are_searched_in_whole_numbers_to_a_gap_of_one() {
    let s = spec(8.0, 64.0, true);
    let probes = search(&s, 37.0);
    assert!(probes.iter().all(|p| p.load.fract() == 0.0));
    let o = outcome(&s, "default", &probes);
    assert_eq!(o.status, Status::Converged);
    assert_eq!((o.capacity, o.first_failing), (Some(37.0), Some(38.0)));
}

#[test]
fn an_interrupted_search_is_unfinished_and_a_non_monotone_probe_is_reported() {
    let s = spec(5.0, 20.0, false);
    let mut probes = search(&s, 13.7);
    let o = outcome(&s, "default", &probes[..3]);
    assert_eq!(o.status, Status::Unfinished);
    // A noisy pass above the first failing load.
    probes.push(Probe {
        load: 30.0,
        attainment: vec![1.0, 1.0],
    });
    let o = outcome(&s, "default", &probes);
    assert_eq!(o.non_monotone, vec![30.0]);
    assert!(o.capacity.unwrap() < 13.7);
}

#[test]
fn a_mean_equal_to_the_target_in_decimals_passes() {
    let s = spec(5.0, 20.0, false);
    let p = Probe {
        load: 5.0,
        attainment: vec![0.995, 0.99, 0.985],
    };
    assert!(p.mean() < 0.99, "the binary mean falls short");
    assert!(p.passed(&s));
}

#[test]
fn loads_read_in_their_units() {
    assert_eq!(load_text("request_rate", 13.44), "13.44 req/s");
    assert_eq!(load_text("request_rate", 0.3125), "0.3125 req/s");
    assert_eq!(load_text("request_rate", 5.0), "5 req/s");
    assert_eq!(load_text("concurrency", 37.0), "37 in flight");
}

#[test]
fn plans_count_the_probes_a_search_takes() {
    let s = spec(2.0, 50.0, false);
    // 2 passes, 50 fails; bisection 26 (pass), 38, 32, 29, 27.5, 26.75 (fail): within 5 %.
    assert_eq!(probes_needed(&s, 26.0), 8);
    // Nothing passes: 2, then halving to the floor 2 / 16 = 0.125.
    assert_eq!(probes_needed(&s, 0.0), 5);
}
