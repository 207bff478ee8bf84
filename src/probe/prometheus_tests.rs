//! The Prometheus parser on real-looking vLLM, SGLang and llama.cpp expositions (written
//! from reference/hardware.md §7), and as a property: any text parses without panicking,
//! and label values survive escaping.

use proptest::prelude::*;

use super::*;

const VLLM: &str = include_str!("../../tests/fixtures/metrics/vllm.txt");
const SGLANG: &str = include_str!("../../tests/fixtures/metrics/sglang.txt");
const LLAMACPP: &str = include_str!("../../tests/fixtures/metrics/llamacpp.txt");

#[test]
fn vllm_gauges_are_combined_over_engines_and_counters_match_with_total() {
    let kept = extract(&parse(VLLM));
    assert_eq!(
        kept["kv_cache_usage"], 0.5,
        "fractions: the mean over engines"
    );
    assert_eq!(kept["requests_running"], 21.0, "counts: the sum");
    assert_eq!(kept["requests_waiting"], 3.0);
    assert_eq!(kept["preemptions_total"], 5.0);
    assert_eq!(kept["prompt_tokens_total"], 2_048_576.0);
    assert_eq!(kept["generation_tokens_total"], 512_144.0);
    let all = parse(VLLM);
    let bucket = all
        .iter()
        .find(|s| s.labels.iter().any(|(k, v)| k == "le" && v == "+Inf"))
        .unwrap();
    assert_eq!(
        bucket.value, 2048.0,
        "histogram series parse, +Inf in a label is text"
    );
    let info = all
        .iter()
        .find(|s| s.name == "vllm:cache_config_info")
        .unwrap();
    assert_eq!(info.labels.len(), 6);
}

#[test]
fn sglang_and_llamacpp_names_map_to_the_same_keys() {
    let kept = extract(&parse(SGLANG));
    assert_eq!(kept["kv_cache_usage"], 0.71);
    assert_eq!(kept["requests_running"], 48.0);
    assert_eq!(kept["requests_waiting"], 7.0);
    assert_eq!(kept["generation_tokens_total"], 131_072.0);
    let kept = extract(&parse(LLAMACPP));
    assert_eq!(kept["requests_running"], 4.0);
    assert_eq!(kept["prompt_tokens_total"], 4096.0);
    assert!(!kept.contains_key("kv_cache_usage"), "absent, not zero");
}

#[test]
fn the_deprecated_vllm_name_counts_only_without_the_new_one() {
    let old = "vllm:gpu_cache_usage_perc{model_name=\"m\"} 0.25\n";
    assert_eq!(extract(&parse(old))["kv_cache_usage"], 0.25);
    let both = format!("{old}vllm:kv_cache_usage_perc{{model_name=\"m\"}} 0.5\n");
    assert_eq!(extract(&parse(&both))["kv_cache_usage"], 0.5);
}

#[test]
fn odd_but_valid_lines_parse_and_broken_ones_are_skipped() {
    let s = parse_line("a_b:c{x=\"1\\\"2\\\\3\\n\" , y=\"\",} -Inf 1700000000000").unwrap();
    assert_eq!(s.name, "a_b:c");
    assert_eq!(
        s.labels,
        [
            ("x".into(), "1\"2\\3\n".into()),
            ("y".into(), String::new())
        ]
    );
    assert_eq!(s.value, f64::NEG_INFINITY);
    assert!(parse_line("up 1").is_some_and(|s| s.value == 1.0 && s.labels.is_empty()));
    assert!(parse_line("nan_metric NaN").unwrap().value.is_nan());
    for bad in [
        "# TYPE x gauge",
        "",
        "x{a=\"1\" 2",
        "x{a=1} 2",
        "x",
        "x abc",
        "{a=\"b\"} 1",
    ] {
        assert!(parse_line(bad).is_none(), "{bad:?}");
    }
    let text = "x 1\nbroken{\ny 2\n";
    assert_eq!(parse(text).len(), 2);
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

proptest! {
    #[test]
    fn any_text_parses_without_panicking(text in "\\PC*(\n\\PC*){0,5}") {
        let _ = parse(&text);
    }

    #[test]
    fn label_values_and_values_round_trip(
        name in "[a-z_:][a-z0-9_:]{0,20}",
        labels in proptest::collection::vec(("[a-z_][a-z0-9_]{0,8}", "\\PC{0,12}"), 0..4),
        value in -1e12f64..1e12,
    ) {
        let rendered: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{}\"", escape(v))).collect();
        let line = format!("{name}{{{}}} {value}", rendered.join(","));
        let s = parse_line(&line).expect("a valid line parses");
        prop_assert_eq!(s.name, name);
        prop_assert_eq!(s.labels, labels);
        prop_assert_eq!(s.value, value);
    }
}
