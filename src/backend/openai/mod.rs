//! The OpenAI-compatible protocols: `/v1/completions` ([`Completions`]) and
//! `/v1/chat/completions` ([`Chat`]). They share the body ([`body`], which differs only in
//! how the prompt is given), the stream chunk ([`wire`], read by the byte scanner in
//! [`scan`] with serde behind it) and the model list; this module holds what both read.
//!
//! The chunk reader accepts both routes' shapes on either route (`text` or `delta`), as
//! servers that answer one route with the other's chunks are still measured.

mod body;
mod chat;
mod completions;
mod scan;
pub(crate) mod wire;

pub(crate) use chat::Chat;
pub(crate) use completions::Completions;

use serde::Deserialize;

use super::failure::{Failure, truncate};
use super::protocol::Event;
use crate::record::FailureReason;
use wire::StreamChunk;

/// Reads one `data:` payload of either stream: an `error` field fails the request as a
/// `stream_error`, a payload that is not JSON as a `protocol` failure.
fn decode(payload: &[u8]) -> Result<Event<'_>, Failure> {
    let chunk = StreamChunk::parse(payload).map_err(|e| {
        let text = String::from_utf8_lossy(payload);
        let message = format!("malformed JSON in stream ({e}): {}", truncate(&text, 200));
        Failure::new(FailureReason::Protocol, message)
    })?;
    if chunk.error.is_some() {
        return Err(Failure::new(
            FailureReason::StreamError,
            wire::error_message(payload),
        ));
    }
    let content = chunk.content();
    let usage = chunk.usage.unwrap_or_default();
    Ok(Event {
        content,
        prompt_tokens: usage.prompt_tokens,
        completion_tokens: usage.completion_tokens,
        finish_reason: chunk.into_finish_reason(),
    })
}

/// The generated text of one payload of either stream: the first choice's `text`, or its
/// delta's `content`, `reasoning` and `reasoning_content` (reasoning tokens are generated
/// tokens too, and servers count them in `completion_tokens`).
fn text(payload: &[u8]) -> Option<String> {
    #[derive(Deserialize)]
    struct Chunk {
        #[serde(default)]
        choices: Vec<Choice>,
    }
    #[derive(Deserialize)]
    struct Choice {
        #[serde(default)]
        text: Option<String>,
        #[serde(default)]
        delta: Option<Delta>,
    }
    #[derive(Deserialize)]
    struct Delta {
        #[serde(default)]
        content: Option<String>,
        #[serde(default)]
        reasoning: Option<String>,
        #[serde(default)]
        reasoning_content: Option<String>,
    }
    let chunk: Chunk = serde_json::from_slice(payload).ok()?;
    let choice = chunk.choices.into_iter().next()?;
    let mut out = choice.text.unwrap_or_default();
    if let Some(d) = choice.delta {
        for part in [d.reasoning, d.reasoning_content, d.content]
            .into_iter()
            .flatten()
        {
            out.push_str(&part);
        }
    }
    Some(out)
}

/// The model ids of a `GET /models` reply (`{"data": [{"id": …}, …]}`), in its order.
fn models(reply: &[u8]) -> Result<Vec<String>, String> {
    #[derive(Deserialize)]
    struct Models {
        data: Vec<Model>,
    }
    #[derive(Deserialize)]
    struct Model {
        id: String,
    }
    let models: Models = serde_json::from_slice(reply).map_err(|e| e.to_string())?;
    Ok(models.data.into_iter().map(|m| m.id).collect())
}
