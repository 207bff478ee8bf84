//! Known answers for the fidelity benchmark.

use super::*;

fn row(metric: Metric, role: Role, published: f64, predicted: f64) -> Row {
    Row {
        case: "c".into(),
        role,
        metric,
        published,
        predicted,
    }
}

#[test]
fn summary_takes_the_median_and_worst_of_absolute_errors() {
    // Errors +10 %, −20 %, +5 %, −40 %: |errors| 5, 10, 20, 40 → median 15 (type 7), worst 40.
    let rows = [
        row(Metric::Ttft, Role::Fit, 100.0, 110.0),
        row(Metric::Ttft, Role::Fit, 100.0, 80.0),
        row(Metric::Ttft, Role::HeldOut, 100.0, 105.0),
        row(Metric::Ttft, Role::HeldOut, 100.0, 60.0),
    ];
    let s = Summary::of(rows.iter()).unwrap();
    assert_eq!(s.count, 4);
    assert!((s.median - 0.15).abs() < 1e-12, "{s:?}");
    assert!((s.worst - 0.40).abs() < 1e-12, "{s:?}");
    assert!(!s.meets_goal());
    assert!(Summary::of([].iter()).is_none());
    let o = Outcome {
        cases: Vec::new(),
        rows: rows.to_vec(),
    };
    let held = o.summary(Metric::Ttft, Some(Role::HeldOut)).unwrap();
    assert!((held.median - 0.225).abs() < 1e-12, "{held:?}");
    assert!(o.summary(Metric::Tpot, None).is_none());
}

#[test]
fn the_fixture_covers_what_issue_13_asks() {
    // ≥ 10 cases, ≥ 4 GPU types, batch-1 and loaded, TTFT, TPOT and throughput, fit and
    // held-out, each with a source address and a figure.
    let cases = fixture::parse(CASES_TOML).unwrap();
    assert!(cases.len() >= 10, "{}", cases.len());
    let gpus: std::collections::BTreeSet<&str> =
        cases.iter().map(|c| c.gpu.name.as_str()).collect();
    assert!(gpus.len() >= 4, "{gpus:?}");
    assert!(cases.iter().any(|c| c.load.width() == 1));
    assert!(cases.iter().any(|c| c.load.width() > 1));
    for role in [Role::Fit, Role::HeldOut] {
        assert!(cases.iter().any(|c| c.role == role));
    }
    for m in Metric::ALL {
        assert!(
            cases.iter().any(|c| m.published(&c.published).is_some()),
            "{m:?}"
        );
    }
    for c in &cases {
        assert!(c.source.starts_with("https://"), "{}", c.id);
        assert!(!c.figure.is_empty() && !c.engine.is_empty(), "{}", c.id);
    }
}

#[test]
fn fixture_errors_name_the_case() {
    let base = CASES_TOML.split("[[case]]").next().unwrap();
    let one = |body: &str| format!("{base}[[case]]\n{body}");
    let case = "id = \"x\"\nrole = \"fit\"\nsource = \"https://a\"\nfigure = \"f\"\nengine = \"e\"\n\
                model = \"Llama-3.1-8B\"\ngpu = \"H100-SXM\"\ntp = 1\nprompt = 8\noutput = 8\n";
    let err = |extra: &str| {
        fixture::parse(&one(&format!("{case}{extra}")))
            .unwrap_err()
            .to_string()
    };
    assert!(err("published = { ttft_ms = 1.0 }\n").contains("case `x`: needs exactly one of"));
    assert!(err("concurrency = 1\npublished = {}\n").contains("case `x`: publishes no figure"));
    let twice = format!("{case}concurrency = 1\npublished = {{ ttft_ms = 1.0 }}\n");
    let text = format!("{base}[[case]]\n{twice}[[case]]\n{twice}");
    assert!(
        fixture::parse(&text)
            .unwrap_err()
            .to_string()
            .contains("`x` appears twice")
    );
}

#[test]
fn ideal_floors_are_below_every_published_figure() {
    // Lower bounds stay lower bounds: with everything at peak and no overheads the simulator
    // is faster than every measurement (throughput higher).
    let o = run(fixture::parse(CASES_TOML).unwrap(), Preset::Ideal).unwrap();
    for r in &o.rows {
        match r.metric {
            Metric::Throughput => assert!(r.predicted > r.published, "{r:?}"),
            _ => assert!(r.predicted < r.published, "{r:?}"),
        }
    }
}

#[test]
fn calibrated_summary_is_pinned() {
    // The figures README reports; a change to the step-time model or the API server shows
    // here first.
    let o = run(fixture::parse(CASES_TOML).unwrap(), Preset::Calibrated).unwrap();
    let pct = |m, role| {
        let s = o.summary(m, role).unwrap();
        (
            (s.median * 1000.0).round() / 10.0,
            (s.worst * 1000.0).round() / 10.0,
        )
    };
    assert_eq!(
        pct(Metric::Ttft, None),
        (6.3, 69.7),
        "{}",
        render(&o, "calibrated")
    );
    assert_eq!(
        pct(Metric::Tpot, None),
        (4.0, 21.4),
        "{}",
        render(&o, "calibrated")
    );
    assert_eq!(
        pct(Metric::Throughput, None),
        (6.2, 17.1),
        "{}",
        render(&o, "calibrated")
    );
}

/// The figures [`fit_calibrated`] moves: the shared ones in an [`Efficiency`], the GEMM
/// fraction of Ampere, the one family that differs, and the GEMM fraction of FP8 weights.
#[derive(Debug, Clone, Copy)]
struct Figures {
    shared: Efficiency,
    ampere_matmul: f64,
    fp8_matmul: f64,
}

impl Figures {
    const COUNT: usize = 11;

    fn get(&mut self, i: usize) -> &mut f64 {
        let e = &mut self.shared;
        match i {
            0 => &mut e.matmul,
            1 => &mut e.matmul_half_tokens,
            2 => &mut e.attention,
            3 => &mut e.memory,
            4 => &mut e.step_overhead_s,
            5 => &mut e.per_layer_overhead_s,
            6 => &mut e.per_sequence_overhead_s,
            7 => &mut e.per_request_overhead_s,
            8 => &mut e.per_prompt_token_overhead_s,
            9 => &mut self.ampere_matmul,
            _ => &mut self.fp8_matmul,
        }
    }

    fn for_case(&self, c: &Case) -> Efficiency {
        let mut e = self.shared;
        if crate::hw::family(&c.gpu) == crate::hw::Family::Ampere {
            e.matmul = self.ampere_matmul;
        }
        if c.weights == crate::hw::Dtype::Fp8 && c.gpu.fp8_dense_tflops.is_some() {
            e.matmul = self.fp8_matmul;
        }
        e
    }
}

/// Coordinate descent of the calibrated figures on the fit cases, from the current preset
/// (run by hand: `cargo test --release --lib fit_calibrated -- --ignored --nocapture`). The
/// loss is the sum of squared log errors of every published figure of the fit cases; the
/// held-out cases play no part. It prints the figures after each round, then every case with
/// the result.
///
/// The preset's API-server pair (`per_request_overhead_s`, `per_prompt_token_overhead_s`) is
/// `FIT_FIGURES=7,8` from the step-time figures it held then (loss 0.0386). Moving every
/// figure then lowered the loss to 0.030 but traded the step-time figures against the two
/// throughput cases (per-sequence cost ×2.7, attention 0.46) and predicted the held-out static
/// batches 24–40 % low, so the step-time figures stayed as they were. The GEMM fractions of
/// 16-bit and FP8 weights are `FIT_FIGURES=0,1,10` from the rest held (loss 0.0386 → 0.0239).
#[test]
#[ignore]
fn fit_calibrated() {
    let cases: Vec<Case> = fixture::parse(CASES_TOML)
        .unwrap()
        .into_iter()
        .filter(|c| c.role == Role::Fit)
        .collect();
    let gpu = |name| crate::hw::Gpu::by_name(name).unwrap();
    let mut f = Figures {
        shared: Efficiency::calibrated(&gpu("H100-SXM"), crate::hw::Dtype::Bf16),
        ampere_matmul: Efficiency::calibrated(&gpu("A100-80GB"), crate::hw::Dtype::Bf16).matmul,
        fp8_matmul: Efficiency::calibrated(&gpu("H100-SXM"), crate::hw::Dtype::Fp8).matmul,
    };
    let loss = |f: Figures| -> f64 {
        let mut sum = 0.0;
        for c in &cases {
            let p = replay(c, Preset::Fixed(f.for_case(c))).unwrap();
            for m in Metric::ALL {
                if let Some(published) = m.published(&c.published) {
                    sum += (p.get(m) / published).ln().powi(2);
                }
            }
        }
        sum
    };
    // FIT_FIGURES=7,8 moves only those figures (indices as in `Figures::get`); default all.
    let moved: Vec<usize> = std::env::var("FIT_FIGURES").map_or_else(
        |_| (0..Figures::COUNT).collect(),
        |v| v.split(',').map(|i| i.trim().parse().unwrap()).collect(),
    );
    let mut best = loss(f);
    eprintln!("start loss {best:.4} {f:?}");
    let mut step = 0.2;
    for _round in 0..6 {
        for &i in &moved {
            for dir in [1.0 + step, 1.0 / (1.0 + step)] {
                loop {
                    let mut t = f;
                    *t.get(i) *= dir;
                    if t.shared.validate().is_err() || t.ampere_matmul > 1.0 || t.fp8_matmul > 1.0 {
                        break;
                    }
                    let l = loss(t);
                    if l < best {
                        best = l;
                        f = t;
                    } else {
                        break;
                    }
                }
            }
        }
        step /= 2.0;
        eprintln!("loss {best:.4} {f:?}");
    }
    // Every case, held-out ones included, with the fitted figures.
    let all = fixture::parse(CASES_TOML).unwrap();
    let mut rows = Vec::new();
    for c in &all {
        let o = run(vec![c.clone()], Preset::Fixed(f.for_case(c))).unwrap();
        rows.extend(o.rows);
    }
    eprintln!("{}", render(&Outcome { cases: all, rows }, "fit"));
}
