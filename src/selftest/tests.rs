//! Tests of the self-test: pinned figures, other seeds, the noise, Wilson intervals, and
//! that a test which never or always flags fails.

use super::*;

#[test]
fn the_default_self_test_is_calibrated_and_its_figures_are_pinned() {
    let o = run(&Settings::default()).unwrap();
    assert!(o.passed(), "{}", render(&o));
    // Seed 1: pinned so any change to the noise, Welch's test or the power is noticed.
    assert_eq!((o.false_positive.hits, o.detection.hits), (88, 1849));
    let p = &o.paired;
    assert_eq!((p.false_positive.hits, p.detection.hits), (90, 1071));
    // One-sample noncentral t at n = 10, δ = ln 1.01, sd = √2·σ(CV 1 %): 0.510453
    // (recomputed in plain Python by integrating over the χ² density of the sd).
    assert!((p.analytical_power - 0.510453).abs() < 5e-5);
    // Unpaired, the ±20 % shared workload effect hides the 1 % shift completely.
    assert_eq!(p.welch_detection.hits, 0);
    // statistics.md §3.12: power at n = 10 for δ = 5 %, CV = 3 % is 0.9408.
    assert!((o.analytical_power - 0.9408).abs() < 5e-5);
}

#[test]
fn other_seeds_are_calibrated_too() {
    for seed in 2..=6 {
        let o = run(&Settings {
            seed,
            ..Settings::default()
        })
        .unwrap();
        assert!(o.passed(), "{}", render(&o));
    }
}

#[test]
fn the_noise_has_the_requested_mean_and_cv() {
    let mut noise = Noise::new(3, 0.03);
    let v = noise.runs(100.0, 200_000);
    let d = stats::describe(&v).unwrap();
    assert!((d.mean - 100.0).abs() < 0.02, "{}", d.mean);
    assert!((d.cv.unwrap() - 0.03).abs() < 2e-4, "{:?}", d.cv);
}

#[test]
fn wilson_intervals_match_known_values() {
    // 100 of 2000: Wilson 95 % [4.128 %, 6.044 %].
    let r = Rate::new(100, 2000);
    assert!((r.ci.0 - 0.041281).abs() < 5e-6, "{:?}", r.ci);
    assert!((r.ci.1 - 0.060444).abs() < 5e-6, "{:?}", r.ci);
}

#[test]
fn a_test_that_never_or_always_flags_fails() {
    let settings = Settings::default();
    let silent = Outcome {
        settings,
        false_positive: Rate::new(0, 2000),
        detection: Rate::new(0, 2000),
        analytical_power: 0.9408,
        sequential: Rate::new(100, 2000),
        sequential_unadjusted: Rate::new(100, 2000),
        paired: PairedOutcome {
            false_positive: Rate::new(100, 2000),
            detection: Rate::new(1000, 2000),
            analytical_power: 0.51,
            welch_detection: Rate::new(0, 2000),
        },
    };
    assert!(!silent.false_positive_ok() && !silent.detection_ok());
    // The paired design fails on its own, too.
    let paired_silent = Outcome {
        false_positive: Rate::new(100, 2000),
        detection: Rate::new(1882, 2000),
        paired: PairedOutcome {
            false_positive: Rate::new(0, 2000),
            ..silent.paired
        },
        ..silent
    };
    assert!(!paired_silent.paired_false_positive_ok() && !paired_silent.passed());
    let noisy = Outcome {
        false_positive: Rate::new(400, 2000),
        detection: Rate::new(2000, 2000),
        ..silent
    };
    assert!(!noisy.passed());
}

#[test]
fn too_few_trials_are_refused() {
    let s = Settings {
        trials: 999,
        ..Settings::default()
    };
    assert_eq!(run(&s), Err(SelftestError::TooFewTrials(999)));
}
