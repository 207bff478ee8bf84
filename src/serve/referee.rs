//! The fixed server's referee: known answers and known log-probabilities, so exp's quality
//! pass can be checked against numbers set in advance (`accuracy=P`, `logprob=L`,
//! `scoring=prompt|generated` in `--fixed`). Off unless one of them is given; the default
//! replies then take none of this code.
//!
//! **Answers.** A prompt holding a retrieval question ([`crate::quality::answer_in`]: the
//! completions `prompt` text, or on chat the last user message) gets `" {answer}"` as its first
//! generated token when [`answers_correctly`], else a wrong number of the same width (last
//! digit + 1, modulo 10). Whether an item is answered right depends on its text alone, so it
//! is the same in every cell and every run; over many items the share right is about `P`.
//!
//! **Log-probabilities** (`/v1/completions`, non-streamed). Every scored token has log-prob
//! `L`, so any text's perplexity is exactly `e^(−L)`. Tokens are this server's: whitespace
//! words of the prompt, each carrying the whitespace before it (the last also the prompt's
//! trailing whitespace), or one per id of a token-id prompt (written as the decimal id);
//! then the generated tokens. `logprobs: k` (OpenAI's legacy form, any `k ≥ 0`) adds
//! `choices[0].logprobs = {tokens, token_logprobs, top_logprobs, text_offset}`, one
//! `{token: L}` entry per position; with `echo: true` the text and the log-probs start with the
//! prompt, whose first token's log-prob is `null` (it has no context), as vLLM does. vLLM's
//! `prompt_logprobs: k` adds `choices[0].prompt_logprobs = [null, {"<id>": {"logprob": L,
//! "rank": 1, "decoded_token": "<token>"}}, …]` (refused with `stream: true`, as vLLM does).
//! A text word's id is a stable hash of the word ([`word_id`]). `scoring=generated` is a
//! server like llama.cpp's, which ignores `echo` and `prompt_logprobs`: log-probs of the
//! generated tokens only.

use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::frames::TOKEN_TEXT;
use super::truth::Route;
use crate::seed::{fnv1a64, mix64};

/// Which tokens a server gives log-probabilities for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Scoring {
    /// The prompt's too, when asked (`echo`, `prompt_logprobs`): vLLM, SGLang, OpenAI's legacy
    /// completions.
    #[default]
    Prompt,
    /// Only generated tokens; `echo` and `prompt_logprobs` are ignored: llama.cpp's server.
    Generated,
}

/// The referee's settings (all off by default).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Referee {
    /// Share of retrieval prompts answered correctly, 0 to 1.
    pub accuracy: Option<f64>,
    /// Log-probability of every scored token, finite and ≤ 0 (perplexity `e^(−L)`).
    pub logprob: Option<f64>,
    /// Which tokens are scored; `Generated` needs `logprob`.
    pub scoring: Scoring,
}

impl Referee {
    /// Whether any of it is on.
    pub fn is_on(&self) -> bool {
        self.accuracy.is_some() || self.logprob.is_some()
    }

    /// Sets `key` from `--fixed` text; `Ok(false)` when `key` is not the referee's.
    pub(crate) fn set(&mut self, key: &str, value: &str) -> Result<bool, String> {
        let number = |v: &str| {
            v.trim()
                .parse::<f64>()
                .map_err(|_| format!("{key} `{v}` is not a number"))
        };
        match key {
            "accuracy" => self.accuracy = Some(number(value)?),
            "logprob" => self.logprob = Some(number(value)?),
            "scoring" => {
                self.scoring = match value.trim() {
                    "prompt" => Scoring::Prompt,
                    "generated" => Scoring::Generated,
                    v => return Err(format!("scoring `{v}` is not `prompt` or `generated`")),
                }
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// Checks the ranges.
    pub(crate) fn validate(&self) -> Result<(), String> {
        if let Some(p) = self.accuracy.filter(|p| !(0.0..=1.0).contains(p)) {
            return Err(format!("accuracy must be between 0 and 1, got {p}"));
        }
        if let Some(l) = self.logprob.filter(|l| !(l.is_finite() && *l <= 0.0)) {
            return Err(format!(
                "logprob must be a finite number ≤ 0 (a log-probability), got {l}"
            ));
        }
        if self.scoring == Scoring::Generated && self.logprob.is_none() {
            return Err("scoring=generated needs logprob=L (it says which tokens get L)".into());
        }
        Ok(())
    }
}

/// Whether the referee answers `prompt` correctly at `accuracy`: `u < accuracy` with
/// `u = mix64(fnv1a64(prompt)) / 2^64` (FNV-1a 64 of the UTF-8 bytes, then the SplitMix64
/// finaliser, as in [`crate::seed`]): stable across runs, platforms and Rust versions.
pub fn answers_correctly(prompt: &str, accuracy: f64) -> bool {
    let u = mix64(fnv1a64(prompt.as_bytes())) as f64 / 2f64.powi(64);
    u < accuracy
}

/// The id this server gives a prompt word: the top 31 bits of its FNV-1a 64 hash.
pub fn word_id(word: &str) -> u32 {
    (fnv1a64(word.as_bytes()) >> 33) as u32
}

/// The fields of a request the referee reads.
#[derive(Debug, Default, Deserialize)]
struct Fields {
    #[serde(default)]
    prompt: Option<Value>,
    #[serde(default)]
    messages: Option<Value>,
    #[serde(default)]
    stream: Option<bool>,
    #[serde(default)]
    echo: Option<bool>,
    #[serde(default)]
    logprobs: Option<Value>,
    #[serde(default)]
    prompt_logprobs: Option<Value>,
}

/// What the referee changes in one reply.
#[derive(Debug, Default)]
pub(crate) struct Verdict {
    /// The first generated token's text, when the prompt asks a retrieval question.
    pub first: Option<String>,
    /// Log-probs for a non-streamed completions reply.
    scored: Option<Scored>,
}

/// Log-probs of one reply.
#[derive(Debug)]
struct Scored {
    logprob: f64,
    /// Prompt tokens (text, id), present when echoed or when `prompt_logprobs` is asked.
    prompt: Vec<(String, String)>,
    echo: bool,
    logprobs: bool,
    prompt_logprobs: bool,
}

impl Verdict {
    /// The referee's view of a request `body` on `route` (a 400 message when a field it reads
    /// is wrong).
    pub fn judge(referee: &Referee, route: Route, body: &[u8]) -> Result<Verdict, String> {
        let fields: Fields =
            serde_json::from_slice(body).map_err(|e| format!("invalid JSON body: {e}"))?;
        let prompt = match route {
            Route::Completions => fields.prompt.as_ref().map(Prompt::of),
            Route::Chat => None,
        };
        let text = match (route, &prompt) {
            (Route::Completions, Some(Prompt::Text(t))) => Some(t.as_str()),
            (Route::Chat, _) => fields.messages.as_ref().and_then(last_user_text),
            _ => None,
        };
        let first = referee.accuracy.and_then(|p| {
            let answer = crate::quality::answer_in(text?)?;
            Some(match answers_correctly(text?, p) {
                true => format!(" {answer}"),
                false => format!(" {}", wrong(&answer)),
            })
        });
        let scored = match (referee.logprob, route, prompt) {
            (Some(l), Route::Completions, Some(prompt)) => score(referee, l, &fields, prompt)?,
            _ => None,
        };
        Ok(Verdict { first, scored })
    }

    /// Whether it changes nothing.
    pub fn is_empty(&self) -> bool {
        self.first.is_none() && self.scored.is_none()
    }

    /// Writes the verdict into the non-streamed reply `body` of `n` generated tokens.
    pub fn apply(&self, body: &mut Value, route: Route, n: u32) {
        let generated: Vec<&str> = (0..n)
            .map(|k| match (k, &self.first) {
                (0, Some(first)) => first.as_str(),
                _ => TOKEN_TEXT,
            })
            .collect();
        let choice = &mut body["choices"][0];
        if route == Route::Chat {
            choice["message"]["content"] = Value::String(generated.concat());
            return;
        }
        let Some(s) = &self.scored else {
            choice["text"] = Value::String(generated.concat());
            return;
        };
        let echoed: Vec<&str> = match s.echo {
            true => s.prompt.iter().map(|(t, _)| t.as_str()).collect(),
            false => Vec::new(),
        };
        let tokens: Vec<&str> = echoed.iter().chain(&generated).copied().collect();
        choice["text"] = Value::String(tokens.concat());
        if s.logprobs {
            choice["logprobs"] = logprobs_json(&tokens, !echoed.is_empty(), s.logprob);
        }
        if s.prompt_logprobs {
            let entries = s.prompt.iter().enumerate().map(|(k, (text, id))| match k {
                0 => Value::Null,
                _ => {
                    let entry = json!({"logprob": s.logprob, "rank": 1, "decoded_token": text});
                    Value::Object(Map::from_iter([(id.clone(), entry)]))
                }
            });
            choice["prompt_logprobs"] = Value::Array(entries.collect());
        }
    }
}

/// The log-probs a completions request asks for (`None` when it asks for none).
fn score(referee: &Referee, l: f64, f: &Fields, prompt: Prompt) -> Result<Option<Scored>, String> {
    let logprobs = count_field("logprobs", &f.logprobs)?.is_some();
    let by_prompt = referee.scoring == Scoring::Prompt;
    let echo = by_prompt && f.echo.unwrap_or(false);
    let prompt_logprobs =
        by_prompt && count_field("prompt_logprobs", &f.prompt_logprobs)?.is_some();
    if prompt_logprobs && f.stream.unwrap_or(false) {
        return Err("`prompt_logprobs` are not available when `stream=True`.".into());
    }
    if !(logprobs || echo || prompt_logprobs) {
        return Ok(None);
    }
    let prompt = match (echo || prompt_logprobs, prompt) {
        (false, _) => Vec::new(),
        (true, Prompt::Batch) => {
            return Err(
                "`prompt`: give one prompt (a text or a list of token ids) with echo or log-probs"
                    .into(),
            );
        }
        (true, p) => p.tokens(),
    };
    Ok(Some(Scored {
        logprob: l,
        prompt,
        echo,
        logprobs,
        prompt_logprobs,
    }))
}

/// A `logprobs`/`prompt_logprobs` value: absent or `null`, else a whole number ≥ 0.
fn count_field(name: &str, value: &Option<Value>) -> Result<Option<u64>, String> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_u64()
            .map(Some)
            .ok_or_else(|| format!("`{name}` must be a whole number ≥ 0 on /v1/completions")),
    }
}

/// `{tokens, token_logprobs, top_logprobs, text_offset}` for `tokens`, each scored `l` but the
/// first when `first_null` (a prompt's first token).
fn logprobs_json(tokens: &[&str], first_null: bool, l: f64) -> Value {
    let mut offsets = Vec::with_capacity(tokens.len());
    let mut at = 0;
    for t in tokens {
        offsets.push(at);
        at += t.chars().count();
    }
    let scored = |k: usize| !(first_null && k == 0);
    let token_logprobs = (0..tokens.len()).map(|k| match scored(k) {
        true => json!(l),
        false => Value::Null,
    });
    let top = tokens.iter().enumerate().map(|(k, t)| match scored(k) {
        true => Value::Object(Map::from_iter([((*t).to_owned(), json!(l))])),
        false => Value::Null,
    });
    json!({
        "tokens": tokens,
        "token_logprobs": token_logprobs.collect::<Vec<_>>(),
        "top_logprobs": top.collect::<Vec<_>>(),
        "text_offset": offsets,
    })
}

/// A number of the same width as `answer` that is not it: the last digit plus one, modulo 10.
fn wrong(answer: &str) -> String {
    let mut digits = answer.to_owned();
    if let Some(last) = digits.pop() {
        let d = last.to_digit(10).map_or(0, |d| (d + 1) % 10);
        digits.push(char::from_digit(d, 10).expect("a digit"));
    }
    digits
}

/// The text of the last `user` message: its `content` string, or its first text part.
fn last_user_text(messages: &Value) -> Option<&str> {
    let last = messages
        .as_array()?
        .iter()
        .rev()
        .find(|m| m["role"] == "user")?;
    match &last["content"] {
        Value::String(s) => Some(s),
        // Several parts would need joining (a copy); retrieval prompts are one part.
        Value::Array(parts) => parts.iter().find_map(|p| p["text"].as_str()),
        _ => None,
    }
}

/// A completions prompt as the referee sees it.
#[derive(Debug)]
enum Prompt {
    Text(String),
    Ids(Vec<u64>),
    /// Several prompts, or a shape it does not read.
    Batch,
}

impl Prompt {
    /// `"text"`, `["text"]`, `[1, 2]` or `[[1, 2]]`.
    fn of(value: &Value) -> Prompt {
        let ids = |v: &Vec<Value>| v.iter().map(Value::as_u64).collect::<Option<Vec<u64>>>();
        match value {
            Value::String(s) => Prompt::Text(s.clone()),
            Value::Array(items) => match items.as_slice() {
                [Value::String(s)] => Prompt::Text(s.clone()),
                [Value::Array(inner)] => ids(inner).map_or(Prompt::Batch, Prompt::Ids),
                _ => ids(items).map_or(Prompt::Batch, Prompt::Ids),
            },
            _ => Prompt::Batch,
        }
    }

    /// (text, id) of each prompt token; the texts concatenate to the echoed prompt.
    fn tokens(self) -> Vec<(String, String)> {
        match self {
            Prompt::Text(text) => text_tokens(&text),
            Prompt::Ids(ids) => ids
                .iter()
                .enumerate()
                .map(|(k, id)| match k {
                    0 => (id.to_string(), id.to_string()),
                    _ => (format!(" {id}"), id.to_string()),
                })
                .collect(),
            Prompt::Batch => Vec::new(),
        }
    }
}

/// Whitespace words of `text`, each with the whitespace before it; the last also takes the
/// trailing whitespace, so the texts concatenate to `text` (when it has a word).
fn text_tokens(text: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    let mut start = 0;
    let mut rest = text;
    while let Some(word_at) = rest.find(|c: char| !c.is_whitespace()) {
        let word = &rest[word_at..];
        let len = word.find(char::is_whitespace).unwrap_or(word.len());
        let end = text.len() - rest.len() + word_at + len;
        out.push((
            text[start..end].to_owned(),
            word_id(&word[..len]).to_string(),
        ));
        start = end;
        rest = &text[end..];
    }
    if let Some(last) = out.last_mut() {
        last.0.push_str(&text[start..]);
    }
    out
}

#[cfg(test)]
#[path = "referee_tests.rs"]
mod tests;
