//! The simulated server against plain HTTP clients: shapes, refusals, `/metrics`, timing
//! against the hardware model, and cancellation on disconnect.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::*;
use crate::hw::{Deployment, Efficiency, Gpu, ModelConfig, PrefillWork};
use crate::sim::LinearCost;

/// A server whose steps take `step_ms` whatever they hold, with no noise.
async fn linear(step_ms: f64, max_num_seqs: u32, kv_tokens: u64) -> SimServerHandle {
    let cost = LinearCost {
        per_step_s: step_ms / 1e3,
        per_token_s: 0.0,
        per_context_token_s: 0.0,
    };
    let mut params = EngineParams::new(max_num_seqs, 8192, kv_tokens);
    params.noise_cv = 0.0;
    let config = SimServeConfig {
        cost: Arc::new(cost),
        params,
        seed: 1,
        model: "sim-test".into(),
    };
    spawn_sim("127.0.0.1:0".parse().unwrap(), config)
        .await
        .unwrap()
}

fn post(url: String, body: Value) -> reqwest::RequestBuilder {
    reqwest::Client::new().post(url).json(&body)
}

/// `data:` payloads of a whole SSE body.
fn payloads(body: &str) -> Vec<String> {
    body.split("\n\n")
        .filter(|e| !e.is_empty())
        .map(|e| e.strip_prefix("data: ").expect("one data line").to_owned())
        .collect()
}

fn json_events(events: &[String]) -> Vec<Value> {
    let (last, rest) = events.split_last().unwrap();
    assert_eq!(last, "[DONE]");
    rest.iter()
        .map(|e| serde_json::from_str(e).unwrap())
        .collect()
}

#[tokio::test]
async fn completion_stream_has_max_tokens_chunks_then_usage_and_done() {
    let srv = linear(1.0, 8, 100_000).await;
    let body = json!({"model":"sim-test","prompt":"one two three","max_tokens":5,
        "stream":true,"stream_options":{"include_usage":true}});
    let resp = post(format!("{}/completions", srv.base_url()), body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    let events = json_events(&payloads(&resp.text().await.unwrap()));
    assert_eq!(events.len(), 5 + 1, "{events:?}");
    for (k, e) in events[..5].iter().enumerate() {
        assert_eq!(e["id"], json!("cmpl-sim"));
        assert_eq!(e["model"], json!("sim-test"));
        assert_eq!(e["choices"][0]["text"], json!(" tok"));
        let finish = if k == 4 { json!("length") } else { Value::Null };
        assert_eq!(e["choices"][0]["finish_reason"], finish, "token {k}");
    }
    assert_eq!(events[5]["choices"], json!([]));
    assert_eq!(
        events[5]["usage"],
        json!({"prompt_tokens":3,"completion_tokens":5,"total_tokens":8})
    );
    let stats = srv.stats();
    assert_eq!(
        (stats.generation_tokens, stats.prompt_tokens, stats.finished),
        (5, 3, 1)
    );
    assert_eq!(stats.lag.count, 5, "every token's lag is recorded");
}

#[tokio::test]
async fn chat_streams_a_role_delta_first_and_whole_replies_carry_usage() {
    let srv = linear(1.0, 8, 100_000).await;
    let messages =
        json!([{"role":"system","content":"be brief"},{"role":"user","content":"hi there you"}]);
    let body = json!({"model":"m","messages":messages,"max_tokens":3,"stream":true});
    let url = format!("{}/chat/completions", srv.base_url());
    let text = post(url.clone(), body).send().await.unwrap().text().await;
    let events = json_events(&payloads(&text.unwrap()));
    assert_eq!(
        events.len(),
        1 + 3,
        "role + 3 tokens, no usage unless asked: {events:?}"
    );
    assert_eq!(
        events[0]["choices"][0]["delta"],
        json!({"role":"assistant","content":""})
    );
    assert_eq!(events[0]["object"], json!("chat.completion.chunk"));
    for e in &events[1..] {
        assert_eq!(e["choices"][0]["delta"]["content"], json!(" tok"));
    }
    let whole: Value = post(url, json!({"messages":messages,"max_tokens":4}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        whole["choices"][0]["message"]["content"],
        json!(" tok".repeat(4))
    );
    assert_eq!(whole["usage"]["prompt_tokens"], json!(5));
    let whole: Value = post(
        format!("{}/completions", srv.base_url()),
        json!({"prompt":"a b","max_tokens":2}),
    )
    .send()
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(whole["choices"][0]["text"], json!(" tok tok"));
    assert_eq!(whole["usage"]["total_tokens"], json!(4));
    let models: Value = reqwest::get(format!("{}/models", srv.base_url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(models["data"][0]["id"], json!("sim-test"));
}

#[tokio::test]
async fn requests_the_engine_cannot_serve_get_a_400_saying_why() {
    // 1024 KV tokens: a 2000-word prompt can never fit.
    let srv = linear(1.0, 8, 1024).await;
    let url = format!("{}/completions", srv.base_url());
    for (body, needle) in [
        (
            json!({"prompt":"w ".repeat(2000),"max_tokens":4}),
            "KV tokens",
        ),
        (
            json!({"prompt":"","max_tokens":4}),
            "at least one prompt token",
        ),
        (
            json!({"prompt":"a","max_tokens":0}),
            "at least one prompt token",
        ),
        (json!({"max_tokens":4}), "`prompt` is required"),
    ] {
        let resp = post(url.clone(), body).send().await.unwrap();
        assert_eq!(resp.status(), 400);
        let err: Value = resp.json().await.unwrap();
        let message = err["error"]["message"].as_str().unwrap();
        assert!(message.contains(needle), "{message}");
    }
    assert_eq!(srv.stats().running + srv.stats().waiting, 0);
}

/// Samples of a Prometheus text exposition, keyed by `name{labels}`. Panics on any line that
/// is not a HELP/TYPE comment or a well-formed sample of a declared family.
fn parse_prometheus(text: &str) -> BTreeMap<String, f64> {
    let mut families = BTreeMap::new();
    let mut samples = BTreeMap::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            assert!(rest.split_once(' ').is_some(), "HELP without text: {line}");
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap();
            assert!(["counter", "gauge", "histogram"].contains(&kind), "{line}");
            families.insert(name.to_owned(), kind.to_owned());
        } else {
            let (series, value) = line.rsplit_once(' ').expect("name{labels} value");
            let value: f64 = value.parse().unwrap_or_else(|_| panic!("value: {line}"));
            let (name, labels) = series.split_once('{').expect("labels");
            let labels = labels.strip_suffix('}').expect("closing brace");
            for pair in labels.split("\",") {
                let (key, v) = pair.split_once("=\"").expect("key=\"value\"");
                assert!(key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'));
                assert!(!v.trim_end_matches('"').contains('"'), "{line}");
            }
            let family = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|s| name.strip_suffix(s).filter(|f| families.contains_key(*f)))
                .unwrap_or(name);
            assert!(families.contains_key(family), "no TYPE for {name}");
            samples.insert(series.to_owned(), value);
        }
    }
    samples
}

fn sample(samples: &BTreeMap<String, f64>, name: &str, extra: &str) -> f64 {
    let key = format!("{name}{{model_name=\"sim-test\",engine=\"0\"{extra}}}");
    *samples.get(&key).unwrap_or_else(|| panic!("{key} missing"))
}

async fn scrape(srv: &SimServerHandle) -> BTreeMap<String, f64> {
    let resp = reqwest::get(format!("http://{}/metrics", srv.addr()))
        .await
        .unwrap();
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    parse_prometheus(&resp.text().await.unwrap())
}

#[tokio::test]
async fn metrics_parse_as_prometheus_text_and_gauges_follow_the_batch() {
    // Two sequences at most, 5 ms steps: four 30-token requests run two by two.
    let srv = linear(5.0, 2, 100_000).await;
    let url = format!("{}/completions", srv.base_url());
    let sends: Vec<_> = (0..4)
        .map(|_| {
            let req = post(url.clone(), json!({"prompt":"a b c d","max_tokens":30}));
            tokio::spawn(async move { req.send().await.unwrap().text().await.unwrap() })
        })
        .collect();
    let started = Instant::now();
    let busy = loop {
        let m = scrape(&srv).await;
        let running = sample(&m, "vllm:num_requests_running", "");
        let waiting = sample(&m, "vllm:num_requests_waiting", "");
        if (running, waiting) == (2.0, 2.0) {
            break m;
        }
        assert!(started.elapsed() < Duration::from_secs(5), "never 2 + 2");
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    assert!(sample(&busy, "vllm:kv_cache_usage_perc", "") > 0.0);
    for s in sends {
        s.await.unwrap();
    }
    let done = scrape(&srv).await;
    for (name, extra, want) in [
        ("vllm:num_requests_running", "", 0.0),
        ("vllm:num_requests_waiting", "", 0.0),
        ("vllm:kv_cache_usage_perc", "", 0.0),
        ("vllm:num_preemptions_total", "", 0.0),
        ("vllm:prompt_tokens_total", "", 16.0),
        ("vllm:generation_tokens_total", "", 120.0),
        (
            "vllm:request_success_total",
            ",finished_reason=\"length\"",
            4.0,
        ),
        (
            "vllm:request_success_total",
            ",finished_reason=\"abort\"",
            0.0,
        ),
        // Whole replies: one write, one lag, per request.
        ("exp:emission_lag_seconds_count", "", 4.0),
    ] {
        assert_eq!(sample(&done, name, extra), want, "{name}{extra}");
    }
    let info = ",block_size=\"16\",num_gpu_blocks=\"6250\"";
    assert_eq!(sample(&done, "vllm:cache_config_info", info), 1.0);
}

/// Waits until the server's figures satisfy `done`.
async fn until(srv: &SimServerHandle, what: &str, done: impl Fn(&SimServerStats) -> bool) {
    let started = Instant::now();
    while !done(&srv.stats()) {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{what}: {:?}",
            srv.stats()
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

#[tokio::test]
async fn clients_that_disconnect_are_cancelled_in_the_engine() {
    // One sequence at a time: the second request waits behind the first.
    let srv = linear(1.0, 1, 1_000_000).await;
    let url = format!("{}/completions", srv.base_url());
    let body = json!({"prompt":"a b","max_tokens":100_000,"stream":true});
    let mut running = post(url.clone(), body.clone()).send().await.unwrap();
    assert!(running.chunk().await.unwrap().is_some(), "a first token");
    let queued = post(url, body).send().await.unwrap();
    assert_eq!(queued.status(), 200, "headers come with the admission");
    assert_eq!((srv.stats().running, srv.stats().waiting), (1, 1));
    drop(queued);
    until(&srv, "the queued request leaves", |s| s.waiting == 0).await;
    assert_eq!((srv.stats().running, srv.stats().aborted), (1, 1));
    drop(running);
    until(&srv, "the running request leaves", |s| s.running == 0).await;
    let stats = srv.stats();
    assert_eq!((stats.aborted, stats.finished), (2, 0));
    assert_eq!(stats.kv_usage, 0.0, "the requests' blocks were freed");
    let text = reqwest::get(format!("http://{}/metrics", srv.addr()))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(text.contains(r#"vllm:request_success_total{model_name="sim-test",engine="0",finished_reason="abort"} 2.0"#));
    srv.shutdown().await.unwrap();
}

/// Llama-3.1-8B on one H100 with the calibrated preset, as `exp serve --sim` builds it.
fn h100_8b() -> Deployment {
    let model = ModelConfig::load("llama-3.1-8b").unwrap();
    let gpu = Gpu::load("h100-sxm").unwrap();
    let (w, kv) = (model.dtype, model.default_kv_dtype());
    let eff = Efficiency::calibrated(&gpu, w);
    Deployment::new(model, gpu, 1, w, kv, eff).unwrap()
}

/// When each of the `n` tokens of a lone `prompt`-token request is emitted (seconds after its
/// arrival): the prefill step, then one decode step per token at contexts prompt, prompt+1, ….
fn model_token_times(deployment: &Deployment, prompt: u32, n: u32) -> Vec<f64> {
    let prefill = PrefillWork {
        new_tokens: prompt,
        context_before: 0,
    };
    let mut times = vec![deployment.step_time(&[prefill], &[]).seconds];
    for k in 1..n {
        let step = deployment.step_time(&[], &[prompt + k - 1]).seconds;
        times.push(times[k as usize - 1] + step);
    }
    times
}

/// exp's own client for one completions target.
fn exp_client(base_url: String) -> crate::backend::Client {
    crate::backend::Client::new(crate::backend::ClientConfig {
        protocol: crate::backend::Protocol::OpenaiCompletions,
        base_url,
        model: "m".into(),
        headers: vec![],
        api_key: None,
        timeout: Duration::from_secs(10),
        idle_timeout: Duration::from_secs(10),
        token_timeout: None,
        ignore_eos: true,
        continuous_usage_stats: false,
        max_connections: 1,
    })
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_times_follow_the_hardware_models_steps() {
    let _quiet = crate::fuzz::QUIET.lock().await;
    let deployment = h100_8b();
    let (prompt, n) = (2000u32, 4u32);
    let expected = model_token_times(&deployment, prompt, n);
    let kv = deployment.kv_capacity_tokens(0.9).unwrap();
    let mut params = EngineParams::new(256, 8192, kv);
    params.noise_cv = 0.0;
    let config = SimServeConfig {
        cost: Arc::new(deployment),
        params,
        seed: 0,
        model: "m".into(),
    };
    let srv = spawn_sim("127.0.0.1:0".parse().unwrap(), config)
        .await
        .unwrap();
    let client = exp_client(srv.base_url());
    let spec = crate::workload::work::RequestSpec {
        prompt: crate::workload::work::Prompt::Text(vec!["w"; prompt as usize].join(" ")),
        input_tokens: prompt,
        max_tokens: n,
    };
    // Warm the connection so the measured request does not pay for the TCP handshake.
    client.send(&spec, 0, Instant::now(), 0).await;
    // Timing on shared cores is noisy: the server must be within bounds in one of three
    // tries, spaced out to escape a burst of load (the unit tests run in parallel). A server that is systematically off (a
    // missing or extra step) fails all three.
    let mut misses = Vec::new();
    for attempt in 1..=5 {
        if attempt > 1 {
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        let rec = client.send(&spec, attempt, Instant::now(), 0).await;
        assert_eq!(rec.outcome, crate::record::Outcome::Ok, "{rec:?}");
        assert_eq!(
            (rec.input_tokens, rec.output_tokens),
            (Some(prompt), Some(n))
        );
        assert_eq!(rec.chunks.len(), n as usize);
        match timing_miss(&rec, &expected) {
            None => return,
            Some(miss) => misses.push(miss),
        }
    }
    panic!("token times off the model in every try: {misses:#?}");
}

/// Why a record's token times disagree with the model's, if they do.
fn timing_miss(rec: &crate::record::RequestRecord, expected: &[f64]) -> Option<String> {
    // TTFT: the prefill step plus the request's transit (1–3 ms in a debug build on two
    // shared cores), never less than the step.
    let ttft_ms = (rec.chunks[0].at_ns - rec.sent_ns.unwrap()) as f64 / 1e6;
    let model_ms = expected[0] * 1e3;
    if !(ttft_ms > model_ms - 0.2 && ttft_ms < model_ms + 10.0) {
        return Some(format!("TTFT {ttft_ms:.3} ms, model {model_ms:.3} ms"));
    }
    // Later tokens after the first: the decode steps, with no transit in them (a missing or
    // extra decode step would be off by 7 ms; 5 ms allows for the client being scheduled late).
    for k in 1..expected.len() {
        let after_ms = (rec.chunks[k].at_ns - rec.chunks[0].at_ns) as f64 / 1e6;
        let model_ms = (expected[k] - expected[0]) * 1e3;
        if (after_ms - model_ms).abs() >= 5.0 {
            return Some(format!(
                "token {k}: {after_ms:.3} ms after the first, model {model_ms:.3} ms"
            ));
        }
    }
    None
}
