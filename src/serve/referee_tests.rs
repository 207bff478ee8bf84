//! The referee: option parsing, exact log-prob replies, retrieval answers over HTTP.

use std::time::Duration;

use serde_json::{Value, json};

use super::*;
use crate::quality::{self, Task};
use crate::serve::{FixedServerHandle, FixedTiming, spawn_fixed};

fn timing(spec: &str) -> FixedTiming {
    spec.parse().unwrap()
}

async fn server(extra: &str) -> FixedServerHandle {
    let t = timing(&format!("ttft=1ms,itl=0ms,{extra}"));
    spawn_fixed("127.0.0.1:0".parse().unwrap(), t)
        .await
        .unwrap()
}

async fn post(srv: &FixedServerHandle, path: &str, body: Value) -> (u16, String) {
    let resp = reqwest::Client::new()
        .post(format!("{}/{path}", srv.base_url()))
        .json(&body)
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), resp.text().await.unwrap())
}

async fn completion(srv: &FixedServerHandle, body: Value) -> Value {
    let (status, text) = post(srv, "completions", body).await;
    assert_eq!(status, 200, "{text}");
    serde_json::from_str(&text).unwrap()
}

#[test]
fn referee_options_parse_and_reject_values_out_of_range() {
    let t = timing("ttft=1ms,itl=1ms,accuracy=0.8,logprob=-2.5,scoring=generated");
    assert_eq!(
        t.referee,
        Referee {
            accuracy: Some(0.8),
            logprob: Some(-2.5),
            scoring: Scoring::Generated
        }
    );
    assert!(t.referee.is_on());
    let t = timing("ttft=1ms,itl=1ms,logprob=0");
    assert_eq!(t.referee.scoring, Scoring::Prompt);
    assert!(!timing("ttft=1ms,itl=1ms").referee.is_on());
    for (bad, needle) in [
        ("accuracy=1.5", "accuracy must be between 0 and 1, got 1.5"),
        ("accuracy=-0.1", "accuracy must be between 0 and 1"),
        ("accuracy=most", "accuracy `most` is not a number"),
        ("logprob=0.5", "logprob must be a finite number ≤ 0"),
        ("logprob=-inf", "logprob must be a finite number ≤ 0"),
        ("logprob=NaN", "logprob must be a finite number ≤ 0"),
        (
            "logprob=-1,scoring=both",
            "scoring `both` is not `prompt` or `generated`",
        ),
        ("scoring=generated", "scoring=generated needs logprob=L"),
        ("speed=2", "accuracy, logprob or scoring"),
    ] {
        let spec = format!("ttft=1ms,itl=1ms,{bad}");
        let err = spec.parse::<FixedTiming>().unwrap_err().to_string();
        assert!(err.contains(needle), "{bad}: {err}");
    }
}

#[test]
fn prompt_tokens_carry_the_whitespace_before_them() {
    let toks = text_tokens("  a b\t\tc \n");
    let texts: Vec<&str> = toks.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(texts, ["  a", " b", "\t\tc \n"]);
    assert_eq!(toks[1].1, word_id("b").to_string());
    // FNV-1a 64 of "b", top 31 bits (computed independently).
    assert_eq!(word_id("b"), 1_471_279_014);
    assert!(text_tokens(" \n").is_empty());
    assert_eq!(wrong("68219"), "68210");
    assert_eq!(wrong("1234567"), "1234568");
}

#[tokio::test]
async fn echo_with_logprobs_scores_every_prompt_token_but_the_first() {
    let srv = server("logprob=-0.5").await;
    let body = json!({"prompt":"a b  c","max_tokens":2,"echo":true,"logprobs":1});
    let v = completion(&srv, body).await;
    let choice = &v["choices"][0];
    assert_eq!(choice["text"], "a b  c tok tok");
    assert_eq!(
        choice["logprobs"],
        json!({
            "tokens": ["a", " b", "  c", " tok", " tok"],
            "token_logprobs": [null, -0.5, -0.5, -0.5, -0.5],
            "top_logprobs": [null, {" b": -0.5}, {"  c": -0.5}, {" tok": -0.5}, {" tok": -0.5}],
            "text_offset": [0, 1, 3, 6, 10]
        })
    );
    assert_eq!(choice.get("prompt_logprobs"), None);
    assert_eq!(
        v["usage"],
        json!({"prompt_tokens":3,"completion_tokens":2,"total_tokens":5})
    );
}

#[tokio::test]
async fn echo_with_no_generation_and_token_id_prompts() {
    let srv = server("logprob=-1").await;
    // lm-evaluation-harness's loglikelihood request shape, token ids given.
    let body = json!({"prompt":[[5, 7, 9]],"max_tokens":0,"echo":true,"logprobs":0});
    let v = completion(&srv, body).await;
    assert_eq!(v["choices"][0]["text"], "5 7 9");
    assert_eq!(
        v["choices"][0]["logprobs"],
        json!({
            "tokens": ["5", " 7", " 9"],
            "token_logprobs": [null, -1.0, -1.0],
            "top_logprobs": [null, {" 7": -1.0}, {" 9": -1.0}],
            "text_offset": [0, 1, 3]
        })
    );
    assert_eq!(v["usage"]["prompt_tokens"], 3);
    assert_eq!(v["usage"]["completion_tokens"], 0);
}

#[tokio::test]
async fn without_echo_only_generated_tokens_are_scored() {
    let srv = server("logprob=-0.25").await;
    let v = completion(&srv, json!({"prompt":"a b","max_tokens":2,"logprobs":5})).await;
    assert_eq!(v["choices"][0]["text"], " tok tok");
    assert_eq!(
        v["choices"][0]["logprobs"],
        json!({
            "tokens": [" tok", " tok"],
            "token_logprobs": [-0.25, -0.25],
            "top_logprobs": [{" tok": -0.25}, {" tok": -0.25}],
            "text_offset": [0, 4]
        })
    );
    // Echo alone: the prompt comes back, no log-probs.
    let v = completion(&srv, json!({"prompt":"a b","max_tokens":1,"echo":true})).await;
    assert_eq!(v["choices"][0]["text"], "a b tok");
    assert_eq!(v["choices"][0]["logprobs"], Value::Null);
}

#[tokio::test]
async fn vllm_prompt_logprobs_give_one_entry_per_prompt_token() {
    let srv = server("logprob=-2").await;
    let body = json!({"prompt":"a b","max_tokens":1,"prompt_logprobs":1});
    let v = completion(&srv, body).await;
    assert_eq!(
        v["choices"][0]["prompt_logprobs"],
        json!([null, {"1471279014": {"logprob": -2.0, "rank": 1, "decoded_token": " b"}}])
    );
    assert_eq!(v["choices"][0]["text"], " tok");
    assert_eq!(v["choices"][0]["logprobs"], Value::Null);
    let body = json!({"prompt":"a b","max_tokens":1,"prompt_logprobs":1,"stream":true});
    let (status, text) = post(&srv, "completions", body).await;
    assert_eq!(status, 400);
    assert!(text.contains("`prompt_logprobs` are not available when `stream=True`."));
    let (status, text) = post(&srv, "completions", json!({"prompt":"a","logprobs":-1})).await;
    assert_eq!(status, 400);
    assert!(
        text.contains("`logprobs` must be a whole number ≥ 0"),
        "{text}"
    );
    let batch = json!({"prompt":["a","b"],"echo":true,"logprobs":1});
    let (status, text) = post(&srv, "completions", batch).await;
    assert_eq!(status, 400);
    assert!(text.contains("give one prompt"), "{text}");
}

#[tokio::test]
async fn generated_scoring_ignores_echo_and_prompt_logprobs_as_llama_cpp_does() {
    let srv = server("logprob=-0.5,scoring=generated").await;
    let body = json!({"prompt":"a b c","max_tokens":2,"echo":true,"logprobs":1,
        "prompt_logprobs":1});
    let v = completion(&srv, body).await;
    let choice = &v["choices"][0];
    assert_eq!(choice["text"], " tok tok");
    assert_eq!(choice["logprobs"]["tokens"], json!([" tok", " tok"]));
    assert_eq!(choice["logprobs"]["token_logprobs"], json!([-0.5, -0.5]));
    assert_eq!(choice.get("prompt_logprobs"), None);
}

#[tokio::test]
async fn without_the_referee_echo_and_logprobs_are_ignored_as_before() {
    let srv = server("usage=yes").await;
    let body = json!({"prompt":"a b","max_tokens":2,"echo":true,"logprobs":1,
        "prompt_logprobs":1,"stream":false});
    let v = completion(&srv, body).await;
    assert_eq!(v["choices"][0]["text"], " tok tok");
    assert_eq!(v["choices"][0]["logprobs"], Value::Null);
}

/// Generated text of a completions or chat reply, streamed or not.
async fn generated(srv: &FixedServerHandle, chat: bool, stream: bool, prompt: &str) -> String {
    let body = match chat {
        true => json!({"messages":[{"role":"system","content":"Be brief."},
            {"role":"user","content":prompt}],"max_tokens":3,"stream":stream}),
        false => json!({"prompt":prompt,"max_tokens":3,"stream":stream}),
    };
    let path = if chat {
        "chat/completions"
    } else {
        "completions"
    };
    let (status, text) = post(srv, path, body).await;
    assert_eq!(status, 200, "{text}");
    let pick = |v: &Value| match chat {
        true => v["choices"][0]["message"]["content"]
            .as_str()
            .or(v["choices"][0]["delta"]["content"].as_str())
            .unwrap_or_default()
            .to_owned(),
        false => v["choices"][0]["text"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
    };
    if !stream {
        return pick(&serde_json::from_str(&text).unwrap());
    }
    text.split("\n\n")
        .filter_map(|e| e.strip_prefix("data: "))
        .filter(|e| *e != "[DONE]")
        .map(|e| pick(&serde_json::from_str(e).unwrap()))
        .collect()
}

#[tokio::test]
async fn retrieval_prompts_are_answered_right_or_wrong_by_the_item() {
    let _quiet = crate::fuzz::QUIET.lock().await;
    let right = server("accuracy=1").await;
    let never = server("accuracy=0").await;
    for task in [Task::Passkey, Task::Niah] {
        let item = &quality::items(task, 300, 1, &[0.5], 4, None).unwrap()[0];
        for chat in [false, true] {
            for stream in [false, true] {
                let good = generated(&right, chat, stream, &item.prompt).await;
                assert_eq!(good, format!(" {} tok tok", item.answer), "{task:?}");
                assert!(quality::score(item, &good));
                let bad = generated(&never, chat, stream, &item.prompt).await;
                assert_eq!(bad.len(), good.len(), "same width: {bad}");
                assert!(!quality::score(item, &bad), "{bad}");
            }
        }
    }
    // Any other prompt gets the usual tokens.
    assert_eq!(
        generated(&right, false, true, "hello there").await,
        " tok tok tok"
    );
}

#[tokio::test]
async fn a_streamed_answer_keeps_chunks_and_timing() {
    let srv = server("accuracy=1,chunk=2").await;
    let item = &quality::items(Task::Passkey, 200, 1, &[0.0], 2, None).unwrap()[0];
    let body = json!({"prompt":item.prompt,"max_tokens":3,"stream":true});
    let (_, text) = post(&srv, "completions", body).await;
    let texts: Vec<Value> = text
        .split("\n\n")
        .filter_map(|e| e.strip_prefix("data: "))
        .filter(|e| *e != "[DONE]")
        .map(|e| serde_json::from_str::<Value>(e).unwrap()["choices"][0].clone())
        .collect();
    assert_eq!(
        texts,
        [
            json!({"index":0,"text":format!(" {} tok", item.answer),"logprobs":null,
                "finish_reason":null}),
            json!({"index":0,"text":" tok","logprobs":null,"finish_reason":"length"}),
        ]
    );
    assert_eq!(srv.truth()[0].tokens_written, 3);
}

#[test]
fn the_share_answered_right_is_the_accuracy_and_each_item_is_fixed() {
    let prompts: Vec<String> = quality::items(Task::Passkey, 80, 2000, &[0.5], 8, None)
        .unwrap()
        .into_iter()
        .map(|i| i.prompt)
        .collect();
    for p in [0.0, 0.3, 0.9, 1.0] {
        let right = prompts.iter().filter(|t| answers_correctly(t, p)).count();
        let share = right as f64 / prompts.len() as f64;
        // Binomial sd at p = 0.3: about 0.01.
        assert!((share - p).abs() < 0.04, "{p}: {share}");
    }
    // A higher accuracy keeps every item a lower one answered right.
    assert!(
        prompts
            .iter()
            .all(|t| !answers_correctly(t, 0.3) || answers_correctly(t, 0.9))
    );
}

#[test]
fn the_referee_is_off_by_default() {
    let t = FixedTiming::new(Duration::ZERO, Duration::ZERO);
    assert_eq!(t.referee, Referee::default());
    assert!(!t.referee.is_on());
}
