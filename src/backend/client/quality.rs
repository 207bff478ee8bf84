//! The client's quality requests, outside the measurement: scoring a prompt from the
//! server's echoed log-probs (perplexity), and one greedy, non-streamed answer (retrieval).
//!
//! Scoring uses the OpenAI legacy form that lm-evaluation-harness sends and vLLM and SGLang
//! serve: `POST {base}/completions` with `echo: true`, `logprobs: 1`, `max_tokens: 1`; the
//! reply's `choices[0].logprobs.token_logprobs` must hold one entry per prompt token (the
//! first `null`) before the generated one. A server that answers with log-probs for the
//! generated token only (llama.cpp) cannot score prompts: that is reported as such, never
//! turned into a number.

use serde_json::{Value, json};

use super::{BackendError, Client, join, parse_base};

/// A prompt to score: text (the server tokenizes it) or token ids (exactly these tokens).
#[derive(Debug, Clone, Copy)]
pub enum ScorePrompt<'a> {
    /// Text.
    Text(&'a str),
    /// Token ids.
    Tokens(&'a [u32]),
}

/// The scored part of a prompt.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scored {
    /// Tokens with a log-prob, after the skipped context.
    pub tokens: u64,
    /// Σ −ln p over them.
    pub nll: f64,
    /// The prompt's length in tokens.
    pub prompt_tokens: u32,
}

/// Why a prompt was not scored.
#[derive(Debug, Clone, PartialEq)]
pub enum ScoreError {
    /// The reply cannot be a prompt's log-probs: this server cannot score prompts.
    Unsupported(String),
    /// This request failed (transport, status, a malformed reply).
    Failed(String),
}

/// A generated answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    /// The generated text.
    pub text: String,
    /// The server's count of the prompt, when it sent usage.
    pub prompt_tokens: Option<u32>,
}

impl Client {
    /// `{base}/completions`, where scoring goes whatever the target's protocol.
    fn completions_url(&self) -> Result<reqwest::Url, BackendError> {
        join(&parse_base(&self.cfg.base_url)?, "completions")
    }

    /// Scores `prompt`: Σ −ln p of its tokens after the first `skip` (context for a window
    /// of a long document), from the server's echoed log-probs.
    pub async fn score_prompt(
        &self,
        prompt: ScorePrompt<'_>,
        skip: usize,
    ) -> Result<Scored, ScoreError> {
        let url = self
            .completions_url()
            .map_err(|e| ScoreError::Failed(e.to_string()))?;
        let prompt_json = match prompt {
            ScorePrompt::Text(t) => json!(t),
            ScorePrompt::Tokens(ids) => json!(ids),
        };
        let body = json!({
            "model": self.cfg.model,
            "prompt": prompt_json,
            "max_tokens": 1,
            "temperature": 0.0,
            "logprobs": 1,
            "echo": true,
            "stream": false,
        });
        let request = (self.http.post(url.clone()))
            .timeout(self.cfg.timeout)
            .json(&body);
        let bytes = self.side_request(request).await.map_err(|e| match e {
            // A 4xx to the request itself (`echo` or `logprobs` refused) is the server's
            // answer to the question "can you score prompts?"; the caller decides which.
            BackendError::Status { status, body }
                if (400..500).contains(&status) && !matches!(status, 408 | 429) =>
            {
                ScoreError::Unsupported(format!("{url} answered {status}: {body}"))
            }
            other => ScoreError::Failed(other.to_string()),
        })?;
        let reply: Value = serde_json::from_slice(&bytes)
            .map_err(|e| ScoreError::Failed(format!("{url}: the reply is not JSON: {e}")))?;
        let known = match prompt {
            ScorePrompt::Tokens(ids) => Some(ids.len()),
            ScorePrompt::Text(_) => None,
        };
        read_scores(&reply, known, skip).map_err(ScoreError::Unsupported)
    }

    /// One greedy, non-streamed answer to `prompt` on the target's route (a user message on
    /// chat), at most `max_tokens` tokens.
    pub async fn answer(&self, prompt: &str, max_tokens: u32) -> Result<Answer, BackendError> {
        let chat = self.cfg.protocol == crate::backend::Protocol::OpenaiChat;
        let mut body = json!({
            "model": self.cfg.model,
            "max_tokens": max_tokens,
            "temperature": 0.0,
            "stream": false,
        });
        match chat {
            true => body["messages"] = json!([{"role": "user", "content": prompt}]),
            false => body["prompt"] = json!(prompt),
        }
        let request = (self.http.post(self.url.clone()))
            .timeout(self.cfg.timeout)
            .json(&body);
        let bytes = self.side_request(request).await?;
        let reply: Value = serde_json::from_slice(&bytes)
            .map_err(|e| BackendError::Decode(format!("{}: {e}", self.url)))?;
        let choice = &reply["choices"][0];
        let text = match chat {
            true => choice["message"]["content"].as_str(),
            false => choice["text"].as_str(),
        };
        let Some(text) = text else {
            return Err(BackendError::Decode(format!(
                "{}: the reply has no generated text (choices[0].{})",
                self.url,
                if chat { "message.content" } else { "text" }
            )));
        };
        let prompt_tokens = reply["usage"]["prompt_tokens"]
            .as_u64()
            .and_then(|n| u32::try_from(n).ok());
        Ok(Answer {
            text: text.to_string(),
            prompt_tokens,
        })
    }
}

/// Reads the prompt's log-probs from an echoed completion. `known`: the prompt's length when
/// exp sent token ids; otherwise `usage.prompt_tokens` says where the prompt ends. Any reply
/// that does not hold one entry per prompt token is an error naming what came instead.
pub(crate) fn read_scores(
    reply: &Value,
    known: Option<usize>,
    skip: usize,
) -> Result<Scored, String> {
    const CANNOT: &str = "this server cannot score prompts";
    let choice = &reply["choices"][0];
    let Some(logprobs) = choice.get("logprobs").filter(|l| !l.is_null()) else {
        return Err(format!(
            "{CANNOT}: asked for the prompt's log-probs (`echo: true`, `logprobs: 1`), the reply has none"
        ));
    };
    let usage_prompt = reply["usage"]["prompt_tokens"].as_u64().map(|n| n as usize);
    let Some(entries) = logprobs["token_logprobs"].as_array() else {
        if let Some(content) = logprobs["content"].as_array() {
            // llama.cpp's llama-server: `echo` ignored, the generated token's log-prob in the
            // chat format (`logprobs.content`), the reply's text the generated token alone.
            let prompt = match known.or(usage_prompt) {
                Some(n) => format!("the {n} prompt tokens"),
                None => "the prompt".into(),
            };
            return Err(format!(
                "{CANNOT}: asked for the prompt's log-probs (`echo: true`, `logprobs: 1`), it returned {} in `logprobs.content`, for the generated text only, and none for {prompt}: it does not echo the prompt",
                plural(content.len(), "log-prob")
            ));
        }
        let keys = match logprobs.as_object() {
            Some(o) => o
                .keys()
                .map(|k| format!("`{k}`"))
                .collect::<Vec<_>>()
                .join(", "),
            None => "not an object".into(),
        };
        return Err(format!(
            "{CANNOT}: the reply's `logprobs` has no `token_logprobs` (it has {keys}), so it holds no log-probs for the prompt"
        ));
    };
    let Some(prompt_tokens) = known.or(usage_prompt) else {
        return Err(format!(
            "{CANNOT} that exp can check: the reply has no `usage.prompt_tokens`, so prompt log-probs cannot be told from generated ones"
        ));
    };
    if entries.len() < prompt_tokens {
        return Err(format!(
            "{CANNOT}: asked for the log-probs of a {prompt_tokens}-token prompt (`echo: true`), it returned {} (log-probs of generated tokens only?); a number computed from them would not be a perplexity",
            entries.len()
        ));
    }
    let mut tokens = 0u64;
    let mut nll = 0.0;
    for (i, entry) in entries[..prompt_tokens].iter().enumerate().skip(skip) {
        match entry {
            Value::Null => {}
            v => match v.as_f64() {
                Some(lp) if lp.is_finite() && lp <= 1e-9 => {
                    tokens += 1;
                    nll -= lp.min(0.0);
                }
                _ => {
                    return Err(format!(
                        "{CANNOT}: prompt token {i} has log-prob {v}, not a finite number ≤ 0"
                    ));
                }
            },
        }
    }
    if tokens == 0 {
        return Err(format!(
            "{CANNOT}: every log-prob of the {prompt_tokens}-token prompt is null"
        ));
    }
    Ok(Scored {
        tokens,
        nll,
        prompt_tokens: prompt_tokens as u32,
    })
}

/// "1 log-prob", "3 log-probs".
fn plural(n: usize, what: &str) -> String {
    match n {
        1 => format!("1 {what}"),
        n => format!("{n} {what}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(lps: Value, prompt_tokens: u64) -> Value {
        json!({"choices": [{"text": "x", "logprobs": {"tokens": [], "token_logprobs": lps}}],
               "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": 1}})
    }

    #[test]
    fn prompt_log_probs_sum_after_the_first_null() {
        let r = reply(json!([null, -1.0, -0.5, -2.0, -0.25]), 4);
        let s = read_scores(&r, None, 0).unwrap();
        assert_eq!((s.tokens, s.prompt_tokens), (3, 4));
        assert!((s.nll - 3.5).abs() < 1e-12, "{}", s.nll);
        // A window's context is skipped: only tokens 2 and 3 are scored.
        let s = read_scores(&r, None, 2).unwrap();
        assert_eq!(s.tokens, 2);
        assert!((s.nll - 2.5).abs() < 1e-12);
        // Token ids sent: their count is the prompt's length, usage or not.
        let s = read_scores(&r, Some(3), 0).unwrap();
        assert_eq!(s.tokens, 2);
    }

    #[test]
    fn generated_only_log_probs_are_refused_with_the_reason() {
        // `echo` answered with the generated token's log-prob only (llama.cpp: see below).
        let r = reply(json!([-0.7]), 12);
        let e = read_scores(&r, None, 0).unwrap_err();
        assert_eq!(
            e,
            "this server cannot score prompts: asked for the log-probs of a 12-token prompt (`echo: true`), it returned 1 (log-probs of generated tokens only?); a number computed from them would not be a perplexity"
        );
        let other = json!({"choices": [{"logprobs": {"top": [{"logprob": -0.7}]}}],
                           "usage": {"prompt_tokens": 12}});
        let e = read_scores(&other, None, 0).unwrap_err();
        assert_eq!(
            e,
            "this server cannot score prompts: the reply's `logprobs` has no `token_logprobs` (it has `top`), so it holds no log-probs for the prompt"
        );
        let none = json!({"choices": [{"text": "x", "logprobs": null}]});
        assert!(
            read_scores(&none, None, 0)
                .unwrap_err()
                .contains("the reply has none")
        );
        let no_usage = json!({"choices": [{"logprobs": {"token_logprobs": [null, -1.0]}}]});
        assert!(
            read_scores(&no_usage, None, 0)
                .unwrap_err()
                .contains("no `usage.prompt_tokens`")
        );
        let positive = reply(json!([null, 0.5]), 2);
        assert!(
            read_scores(&positive, None, 0)
                .unwrap_err()
                .contains("not a finite number ≤ 0")
        );
    }

    /// Issue 17: llama.cpp's llama-server (the llama-cpp-python 0.3.36 sdist's llama.cpp,
    /// `llama-server --version`: 0.5.0-dev, commit 0c1e570) answered exp's scoring request for
    /// an 11-token prompt with this, status 200: `echo` ignored (the text is the generated
    /// token), one log-prob in the chat format, `usage.prompt_tokens` right.
    #[test]
    fn llama_cpp_reply_to_echo_is_not_prompt_log_probs() {
        let reply: Value = serde_json::from_str(LLAMA_CPP_ECHO_REPLY).unwrap();
        let e = read_scores(&reply, None, 0).unwrap_err();
        assert_eq!(
            e,
            "this server cannot score prompts: asked for the prompt's log-probs (`echo: true`, `logprobs: 1`), it returned 1 log-prob in `logprobs.content`, for the generated text only, and none for the 11 prompt tokens: it does not echo the prompt"
        );
    }

    const LLAMA_CPP_ECHO_REPLY: &str = r#"{"choices":[{"text":"Picture","index":0,"logprobs":{"content":[{"id":1611,"token":"Picture","bytes":[80,105,99,116,117,114,101],"logprob":-6.830196380615234,"top_logprobs":[{"id":1611,"token":"Picture","bytes":[80,105,99,116,117,114,101],"logprob":-6.830196380615234}]}]},"finish_reason":"length"}],"created":1796620270,"model":"tiny","system_fingerprint":"b1-0c1e570","object":"text_completion","usage":{"completion_tokens":1,"prompt_tokens":11,"total_tokens":12,"prompt_tokens_details":{"cached_tokens":10}},"id":"chatcmpl-MjJ3gxqTgGtGA2HH2KYBAwono8dfPmxa","timings":{"cache_n":10,"prompt_n":1,"prompt_ms":0.51,"prompt_per_token_ms":0.51,"prompt_per_second":1960.7843137254902,"predicted_n":1,"predicted_ms":0.001,"predicted_per_token_ms":0.0,"predicted_per_second":0.0}}"#;
}
