//! The Prometheus text exposition format (0.0.4), as servers print it at `/metrics`, and the
//! few series exp keeps from it. Pure.
//!
//! Parsed: `name{label="value",…} value [timestamp]` lines; `# HELP`/`# TYPE` and other
//! comments are skipped; label values may hold escaped `\\`, `\"` and `\n`; values may be
//! `NaN`, `+Inf`, `-Inf`. Histogram and summary series (`_bucket`, `_sum`, `_count`) parse
//! like any other and are ignored by [`extract`]. Counters match with or without `_total`
//! (prometheus_client appends it).

use std::collections::BTreeMap;

/// One sample line.
#[derive(Debug, Clone, PartialEq)]
pub struct PromSample {
    /// Metric name (`vllm:num_requests_running`).
    pub name: String,
    /// Labels in order of appearance.
    pub labels: Vec<(String, String)>,
    /// The value.
    pub value: f64,
}

/// Parses a whole exposition; lines that do not parse are skipped (a server's one odd line
/// must not hide the rest).
pub fn parse(text: &str) -> Vec<PromSample> {
    text.lines().filter_map(parse_line).collect()
}

/// Parses one line; `None` for comments, blank and malformed lines.
pub fn parse_line(line: &str) -> Option<PromSample> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let name_end = line
        .find(|c: char| c == '{' || c.is_whitespace())
        .unwrap_or(line.len());
    let name = &line[..name_end];
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_:".contains(c))
    {
        return None;
    }
    let mut rest = &line[name_end..];
    let mut labels = Vec::new();
    if let Some(after) = rest.strip_prefix('{') {
        let (parsed, tail) = parse_labels(after)?;
        labels = parsed;
        rest = tail;
    }
    let value = rest.split_whitespace().next()?;
    Some(PromSample {
        name: name.to_string(),
        labels,
        value: parse_value(value)?,
    })
}

fn parse_value(text: &str) -> Option<f64> {
    match text {
        "+Inf" | "Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        "NaN" => Some(f64::NAN),
        _ => text.parse().ok(),
    }
}

/// Parses `a="x",b="y"}` (after the `{`); returns the labels and what follows the `}`.
fn parse_labels(mut s: &str) -> Option<(Vec<(String, String)>, &str)> {
    let mut out = Vec::new();
    loop {
        s = s.trim_start();
        if let Some(tail) = s.strip_prefix('}') {
            return Some((out, tail));
        }
        let eq = s.find('=')?;
        let key = s[..eq].trim().to_string();
        s = s[eq + 1..].trim_start().strip_prefix('"')?;
        let mut value = String::new();
        let mut chars = s.char_indices();
        let end = loop {
            let (i, c) = chars.next()?;
            match c {
                '"' => break i,
                '\\' => match chars.next()?.1 {
                    'n' => value.push('\n'),
                    other => value.push(other),
                },
                c => value.push(c),
            }
        };
        out.push((key, value));
        s = s[end + 1..].trim_start();
        s = s.strip_prefix(',').unwrap_or(s);
    }
}

/// How the series of one kept metric combine across label sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Combine {
    /// Fractions (one per engine): their mean.
    Mean,
    /// Counts: their sum.
    Sum,
}

/// The series exp keeps: (key in probe files, how to combine, names in the engines that
/// export it, counters without `_total`).
const KEPT: &[(&str, Combine, &[&str])] = &[
    (
        "kv_cache_usage",
        Combine::Mean,
        &[
            "vllm:kv_cache_usage_perc",
            "vllm:gpu_cache_usage_perc",
            "sglang:token_usage",
            "llamacpp:kv_cache_usage_ratio",
        ],
    ),
    (
        "requests_running",
        Combine::Sum,
        &[
            "vllm:num_requests_running",
            "sglang:num_running_reqs",
            "llamacpp:requests_processing",
            "tgi_batch_current_size",
        ],
    ),
    (
        "requests_waiting",
        Combine::Sum,
        &[
            "vllm:num_requests_waiting",
            "sglang:num_queue_reqs",
            "llamacpp:requests_deferred",
            "tgi_queue_size",
        ],
    ),
    (
        "preemptions_total",
        Combine::Sum,
        &["vllm:num_preemptions", "sglang:num_retracted_reqs"],
    ),
    // Prompt tokens looked up in the prefix cache, and those found there.
    (
        "prefix_cache_queries_total",
        Combine::Sum,
        &["vllm:prefix_cache_queries"],
    ),
    (
        "prefix_cache_hits_total",
        Combine::Sum,
        &["vllm:prefix_cache_hits"],
    ),
    (
        "prompt_tokens_total",
        Combine::Sum,
        &[
            "vllm:prompt_tokens",
            "sglang:prompt_tokens",
            "llamacpp:prompt_tokens",
        ],
    ),
    (
        "generation_tokens_total",
        Combine::Sum,
        &[
            "vllm:generation_tokens",
            "sglang:generation_tokens",
            "llamacpp:tokens_predicted",
        ],
    ),
];

/// Whether `name` is `base` or `base_total`.
fn is(name: &str, base: &str) -> bool {
    name.strip_prefix(base)
        .is_some_and(|rest| rest.is_empty() || rest == "_total")
}

/// The kept series of an exposition, each combined over its label sets. The first engine
/// name that is present wins (vLLM's deprecated `gpu_cache_usage_perc` only counts when the
/// new name is absent). Non-finite values are dropped.
pub fn extract(samples: &[PromSample]) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    for (key, combine, names) in KEPT {
        for base in *names {
            let values: Vec<f64> = samples
                .iter()
                .filter(|s| is(&s.name, base) && s.value.is_finite())
                .map(|s| s.value)
                .collect();
            if values.is_empty() {
                continue;
            }
            let sum: f64 = values.iter().sum();
            let v = match combine {
                Combine::Sum => sum,
                Combine::Mean => sum / values.len() as f64,
            };
            out.insert(key.to_string(), v);
            break;
        }
    }
    out
}

#[cfg(test)]
#[path = "prometheus_tests.rs"]
mod tests;
