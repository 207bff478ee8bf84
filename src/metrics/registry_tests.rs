use super::*;

#[test]
fn latency_tails_are_lower_better_seconds_with_wider_thresholds() {
    let k = MetricKey::parse("ttft.p99").unwrap();
    assert_eq!(k, Metric::Ttft.at(Stat::P99));
    assert_eq!(
        (k.unit(), k.better(), k.is_tail()),
        (Unit::Seconds, Better::Lower, true)
    );
    assert_eq!(k.default_threshold(), 0.05);
    assert_eq!(Metric::Ttft.at(Stat::Mean).default_threshold(), 0.03);
    assert_eq!(Metric::OutputThroughput.key().default_threshold(), 0.02);
    // A per-request rate's median is not a latency: the 2 % of throughputs.
    assert_eq!(Metric::Tps.at(Stat::P50).default_threshold(), 0.02);
}

#[test]
fn every_name_parses_back_to_its_key_and_names_are_unique() {
    let all = MetricKey::all();
    assert_eq!(
        all.len(),
        45 + 12 * 8,
        "45 per-repetition metrics, 12 per-request × 8"
    );
    for key in &all {
        assert_eq!(MetricKey::parse(&key.to_string()), Some(*key), "{key}");
    }
    let mut names: Vec<&str> = Metric::ALL.iter().map(|m| m.name()).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), Metric::ALL.len());
}

#[test]
fn unknown_names_and_misplaced_statistics_are_rejected() {
    for bad in [
        "ttft.p42",
        "latency",
        "ttft",
        "output_throughput.mean",
        "",
        "ttft.",
    ] {
        assert_eq!(MetricKey::parse(bad), None, "{bad}");
    }
}

#[test]
fn keys_order_as_their_text_so_files_keep_their_order() {
    let mut keys = MetricKey::all();
    keys.sort();
    let texts: Vec<String> = keys.iter().map(|k| k.to_string()).collect();
    let mut sorted = texts.clone();
    sorted.sort();
    assert_eq!(texts, sorted);
}

#[test]
fn keys_serialize_as_their_text() {
    let map = std::collections::BTreeMap::from([(Metric::Itl.at(Stat::P99), 1.5)]);
    let text = serde_json::to_string(&map).unwrap();
    assert_eq!(text, r#"{"itl.p99":1.5}"#);
    let back: std::collections::BTreeMap<MetricKey, f64> = serde_json::from_str(&text).unwrap();
    assert_eq!(back, map);
    let err = serde_json::from_str::<MetricKey>(r#""ttft.p42""#).unwrap_err();
    assert!(
        err.to_string().contains("unknown metric `ttft.p42`"),
        "{err}"
    );
}

#[test]
fn slo_metrics_are_the_per_request_latencies_but_queue_delay() {
    let names: Vec<&str> = Metric::slo_metrics().map(Metric::name).collect();
    assert_eq!(
        names,
        [
            "ttft",
            "ttft_sched",
            "ttfo",
            "e2e",
            "e2e_sched",
            "tpot",
            "ntpot",
            "itl"
        ]
    );
}

#[test]
fn quality_metrics_have_their_own_kinds_scales_and_thresholds() {
    use crate::stats::Scale;
    let ppl = Metric::Ppl.key();
    assert_eq!(
        (ppl.spec().kind, ppl.better()),
        (Kind::Perplexity, Better::Lower)
    );
    assert_eq!(
        (ppl.scale(), ppl.default_threshold()),
        (Scale::Relative, 0.01)
    );
    let acc = Metric::RetrievalAccuracy.key();
    assert_eq!((acc.unit(), acc.better()), (Unit::Fraction, Better::Higher));
    assert_eq!(
        (acc.scale(), acc.default_threshold()),
        (Scale::Absolute, 0.02)
    );
}

#[test]
fn new_batch_metrics_are_declared() {
    let s = Metric::SamplesPerS.spec();
    assert_eq!(
        (s.unit, s.better, s.kind),
        (Unit::SamplesPerSecond, Better::Higher, Kind::Repetition)
    );
    let t = Metric::StepTime.spec();
    assert_eq!((t.unit, t.better), (Unit::Seconds, Better::Lower));
    assert!(REPORTED.contains(&Metric::SamplesPerS.key()));
}

#[test]
fn every_per_request_metric_but_itl_and_chunk_gap_reads_its_own_field() {
    let m = RequestMetrics {
        ttft: Some(1.0),
        ttft_sched: Some(2.0),
        ttfo: Some(3.0),
        e2e: Some(4.0),
        e2e_sched: Some(5.0),
        queue_delay: Some(6.0),
        tpot: Some(7.0),
        ntpot: Some(8.0),
        tps: Some(9.0),
        decode_tps: Some(10.0),
        ..Default::default()
    };
    let read: Vec<(&str, Option<f64>)> = Metric::ALL
        .into_iter()
        .filter(|x| x.spec().kind == Kind::Distribution)
        .map(|x| (x.name(), x.request_value(&m)))
        .collect();
    assert_eq!(
        read,
        [
            ("ttft", Some(1.0)),
            ("ttft_sched", Some(2.0)),
            ("ttfo", Some(3.0)),
            ("e2e", Some(4.0)),
            ("e2e_sched", Some(5.0)),
            ("queue_delay", Some(6.0)),
            ("tpot", Some(7.0)),
            ("ntpot", Some(8.0)),
            ("itl", None),
            ("chunk_gap", None),
            ("tps", Some(9.0)),
            ("decode_tps", Some(10.0)),
        ]
    );
    let mut scalars = Metric::ALL
        .into_iter()
        .filter(|x| x.spec().kind != Kind::Distribution);
    assert!(scalars.all(|x| x.request_value(&m).is_none()));
}
