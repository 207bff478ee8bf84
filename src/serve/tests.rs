//! The fixed server against a plain HTTP client: routes, shapes, pacing and the truth log.

use std::time::{Duration, Instant};

use super::*;

async fn server(ttft_ms: u64, itl_ms: u64) -> FixedServerHandle {
    let timing = FixedTiming::new(
        Duration::from_millis(ttft_ms),
        Duration::from_millis(itl_ms),
    );
    spawn_fixed("127.0.0.1:0".parse().unwrap(), timing)
        .await
        .unwrap()
}

#[test]
fn timing_specs_parse_with_units_and_reject_mistakes() {
    let t: FixedTiming = "ttft=100ms, itl=10ms,slowdown=1.1,model=m,echo=x-request-id"
        .parse()
        .unwrap();
    assert_eq!(
        (t.ttft, t.itl),
        (Duration::from_millis(100), Duration::from_millis(10))
    );
    assert_eq!((t.slowdown, t.model.as_str()), (1.1, "m"));
    assert_eq!(t.echo_header.as_deref(), Some("x-request-id"));
    let t: FixedTiming = "ttft=0.5s,itl=250us".parse().unwrap();
    assert_eq!(
        (t.ttft, t.itl),
        (Duration::from_millis(500), Duration::from_micros(250))
    );
    for (bad, needle) in [
        ("ttft=100ms", "both ttft and itl"),
        ("ttft=100,itl=1ms", "give a unit"),
        ("ttft=1ms,itl=1ms,slowdown=0", "slowdown must be > 0"),
        ("ttft=1ms,itl=1ms,speed=2", "unknown key `speed`"),
        ("ttft=7200s,itl=1ms", "at most 1h"),
        (
            "ttft=1ms,itl=1ms,echo=bad header",
            "not a valid header name",
        ),
    ] {
        let err = bad.parse::<FixedTiming>().unwrap_err().to_string();
        assert!(err.contains(needle), "{bad}: {err}");
    }
}

fn post(url: String, body: serde_json::Value) -> reqwest::RequestBuilder {
    reqwest::Client::new().post(url).json(&body)
}

/// `data:` payloads of a whole SSE body (the server writes `data: …\n\n` only).
fn payloads(body: &str) -> Vec<String> {
    body.split("\n\n")
        .filter(|e| !e.is_empty())
        .map(|e| {
            e.strip_prefix("data: ")
                .expect("every event is one data line")
                .to_owned()
        })
        .collect()
}

#[tokio::test]
async fn completions_stream_has_one_event_per_token_then_usage_and_done() {
    let srv = server(20, 2).await;
    let body = serde_json::json!({"model":"x","prompt":"one two three","max_tokens":5,
        "stream":true,"stream_options":{"include_usage":true}});
    let resp = post(format!("{}/completions", srv.base_url()), body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    let events = payloads(&resp.text().await.unwrap());
    assert_eq!(events.len(), 5 + 2, "{events:?}");
    let json: Vec<serde_json::Value> = events[..6]
        .iter()
        .map(|e| serde_json::from_str(e).unwrap())
        .collect();
    for (k, chunk) in json[..5].iter().enumerate() {
        assert_eq!(chunk["choices"][0]["text"], TOKEN_TEXT);
        let finish = if k == 4 {
            serde_json::json!("length")
        } else {
            serde_json::Value::Null
        };
        assert_eq!(chunk["choices"][0]["finish_reason"], finish);
    }
    assert_eq!(json[5]["usage"]["prompt_tokens"], 3);
    assert_eq!(json[5]["usage"]["completion_tokens"], 5);
    assert_eq!(events[6], "[DONE]");
    let truth = srv.truth();
    assert_eq!(truth.len(), 1);
    assert!(truth[0].completed && truth[0].stream);
    assert_eq!((truth[0].tokens_written, truth[0].prompt_tokens), (5, 3));
}

#[tokio::test]
async fn tokens_are_written_at_absolute_deadlines() {
    let _quiet = crate::fuzz::QUIET.lock().await;
    let srv = server(30, 1).await;
    // Deadlines are received + 30 ms + k·1 ms. The timer only fires late (up to a tick when
    // idle, more on a busy machine); 199 relative 1 ms sleeps would add that lateness up
    // (measured here: 199 × `sleep(1ms)` takes about 400 ms, not 199 ms). A starved process
    // can miss once: the bounds must hold in one of three tries.
    let mut seen = Vec::new();
    for attempt in 0..3 {
        let body = serde_json::json!({"prompt":"p","max_tokens":200,"stream":true});
        let text = post(format!("{}/completions", srv.base_url()), body)
            .send()
            .await
            .unwrap();
        text.text().await.unwrap();
        let t = &srv.truth()[attempt];
        let first = t.first_token.unwrap() - t.received;
        let last = t.last_token.unwrap() - t.received;
        assert!(first >= Duration::from_millis(30), "{first:?}");
        assert!(last >= Duration::from_millis(229), "{last:?}");
        if first < Duration::from_millis(60) && last < Duration::from_millis(280) {
            return;
        }
        seen.push((first, last));
    }
    panic!("late in every try (first, last): {seen:?}");
}

#[tokio::test]
async fn chat_stream_starts_with_a_role_delta_and_continuous_usage_counts_up() {
    let srv = server(5, 1).await;
    let body = serde_json::json!({"messages":[{"role":"user","content":"a b"}],"max_tokens":3,
        "stream":true,"stream_options":{"include_usage":true,"continuous_usage_stats":true}});
    let resp = post(format!("{}/chat/completions", srv.base_url()), body)
        .send()
        .await
        .unwrap();
    let events = payloads(&resp.text().await.unwrap());
    let json: Vec<serde_json::Value> = events[..5]
        .iter()
        .map(|e| serde_json::from_str(e).unwrap())
        .collect();
    assert_eq!(json[0]["choices"][0]["delta"]["role"], "assistant");
    for (k, chunk) in json.iter().enumerate().take(4).skip(1) {
        assert_eq!(chunk["choices"][0]["delta"]["content"], TOKEN_TEXT);
        assert_eq!(chunk["usage"]["completion_tokens"], k);
        assert_eq!(chunk["usage"]["prompt_tokens"], 2);
    }
    assert_eq!(json[4]["choices"], serde_json::json!([]));
    assert_eq!(events[5], "[DONE]");
}

#[tokio::test]
async fn non_streaming_requests_get_one_json_reply_after_the_last_token_time() {
    let srv = server(20, 5).await;
    let start = Instant::now();
    let body = serde_json::json!({"messages":[{"role":"user","content":"hi"}],"max_tokens":4});
    let resp = post(format!("{}/chat/completions", srv.base_url()), body)
        .send()
        .await
        .unwrap();
    assert!(start.elapsed() >= Duration::from_millis(35));
    let v: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(v["choices"][0]["message"]["content"], TOKEN_TEXT.repeat(4));
    assert_eq!(v["usage"]["completion_tokens"], 4);
    assert!(!srv.truth()[0].stream);
}

#[tokio::test]
async fn models_health_and_bad_requests() {
    let srv = server(1, 1).await;
    let c = reqwest::Client::new();
    let models: serde_json::Value = c
        .get(format!("{}/models", srv.base_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(models["data"][0]["id"], "exp-fixed");
    let health = c
        .get(format!("http://{}/health", srv.addr()))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    let bad = post(
        format!("{}/completions", srv.base_url()),
        serde_json::json!({"model":"x"}),
    );
    let bad = bad.send().await.unwrap();
    assert_eq!(bad.status(), 400);
    let err: serde_json::Value = bad.json().await.unwrap();
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap()
            .contains("`prompt` is required")
    );
    assert!(
        srv.truth().is_empty(),
        "rejected requests are not generation requests"
    );
    srv.shutdown().await.unwrap();
}

#[tokio::test]
async fn slowdown_scales_timing_and_the_echo_header_is_logged_and_returned() {
    let _quiet = crate::fuzz::QUIET.lock().await;
    let mut timing = FixedTiming::new(Duration::from_millis(40), Duration::from_millis(4));
    timing.slowdown = 1.5;
    timing.echo_header = Some("x-request-id".into());
    let srv = spawn_fixed("127.0.0.1:0".parse().unwrap(), timing)
        .await
        .unwrap();
    let body = serde_json::json!({"prompt":"p","max_tokens":11,"stream":true});
    let resp = post(format!("{}/completions", srv.base_url()), body)
        .header("x-request-id", "req-7")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["x-request-id"], "req-7");
    resp.text().await.unwrap();
    let t = &srv.truth()[0];
    assert_eq!(t.request_id.as_deref(), Some("req-7"));
    let first = t.first_token.unwrap() - t.received;
    let last = t.last_token.unwrap() - t.received;
    // 1.5 × (40 ms, 10 × 4 ms) = (60 ms, 60 ms); unscaled would be (40 ms, 40 ms). Tokens are
    // due at fixed offsets from the request, so a timer that fires late delays one token and
    // shortens the next gap: check the deadlines no token can beat (60 ms and 120 ms), with
    // room above for a busy machine, not the spread between two late timers.
    assert!(
        first >= Duration::from_millis(60) && first < Duration::from_millis(85),
        "{first:?}"
    );
    assert!(
        last >= Duration::from_millis(120) && last < Duration::from_millis(150),
        "{last:?}"
    );
}

#[tokio::test]
async fn a_client_that_leaves_early_is_logged_as_incomplete() {
    let srv = server(5, 20).await;
    let body = serde_json::json!({"prompt":"p","max_tokens":50,"stream":true});
    let mut resp = post(format!("{}/completions", srv.base_url()), body)
        .send()
        .await
        .unwrap();
    resp.chunk().await.unwrap();
    drop(resp);
    let mut truth = srv.truth();
    for _ in 0..100 {
        if !truth.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
        truth = srv.truth();
    }
    assert_eq!(truth.len(), 1);
    assert!(!truth[0].completed);
    assert!(truth[0].tokens_written < 50);
}
