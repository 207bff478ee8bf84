//! The replies the fixed and the simulated servers write: SSE frames, rendered once per server
//! so a token costs a reference-count increment, not a JSON serialisation; and the JSON bodies
//! of non-streamed replies, errors and `/v1/models`.
//!
//! Shapes follow vLLM: every token is one `data: {json}\n\n` event whose text is `" tok"`;
//! the last token's event carries `finish_reason: "length"`; with `include_usage` a chunk with
//! `choices: []` and `usage` follows; `data: [DONE]` ends the stream. Chat streams start with
//! a role-only delta (the fixed server sends it as soon as the request is received, the
//! simulated one with the first token, as vLLM does).

use bytes::{BufMut, Bytes, BytesMut};
use serde_json::{Value, json};

use super::truth::Route;

/// The text of every generated token.
pub const TOKEN_TEXT: &str = " tok";

/// Pre-rendered frames for one route.
#[derive(Debug, Clone)]
pub(crate) struct RouteFrames {
    /// The route these frames belong to.
    route: Route,
    /// Chat only: the role-only first delta.
    pub role: Option<Bytes>,
    /// A token that is not the last.
    pub token: Bytes,
    /// The last token (`finish_reason: "length"`).
    pub last: Bytes,
    /// No token at all but finished (`max_tokens: 0`).
    pub empty_last: Bytes,
    /// With several tokens per event: the last event when it carries fewer than a full
    /// chunk (index `i`: `i + 1` tokens).
    pub last_short: Vec<Bytes>,
    /// JSON up to (not including) the point where `"usage":…}` is appended.
    head: String,
}

/// Frames for both routes.
#[derive(Debug, Clone)]
pub(crate) struct Frames {
    completions: RouteFrames,
    chat: RouteFrames,
}

/// The `[DONE]` frame.
pub(crate) const DONE: &[u8] = b"data: [DONE]\n\n";

impl Frames {
    /// Renders every constant frame for `model`, with ids `cmpl-fixed` / `chatcmpl-fixed`.
    #[cfg(test)]
    pub fn new(model: &str) -> Self {
        Frames::tagged(model, "fixed")
    }

    /// Renders every constant frame for `model`, with ids `cmpl-{tag}` / `chatcmpl-{tag}`
    /// (`tag` is written as is: plain ASCII letters, digits and `-`).
    pub fn tagged(model: &str, tag: &str) -> Self {
        Frames::build(model, tag, 1)
    }

    /// [`Frames::new`] for events of `chunk` tokens each: an event's text is one
    /// [`TOKEN_TEXT`] per token it carries.
    pub fn chunked(model: &str, chunk: u32) -> Self {
        Frames::build(model, "fixed", chunk)
    }

    fn build(model: &str, tag: &str, chunk: u32) -> Self {
        let model = serde_json::to_string(model).expect("a string serialises");
        let chunk = chunk.max(1) as usize;
        Frames {
            completions: completions(&model, tag, chunk),
            chat: chat(&model, tag, chunk),
        }
    }

    /// The frames of `route`.
    pub fn route(&self, route: Route) -> &RouteFrames {
        match route {
            Route::Completions => &self.completions,
            Route::Chat => &self.chat,
        }
    }
}

fn frame(json: &str) -> Bytes {
    let mut b = BytesMut::with_capacity(json.len() + 8);
    b.put_slice(b"data: ");
    b.put_slice(json.as_bytes());
    b.put_slice(b"\n\n");
    b.freeze()
}

/// The JSON of one streamed event of `route` whose generated text is `text`; `finish` is JSON
/// (`null` or `"length"`).
fn event_json(route: Route, head: &str, text: &str, finish: &str) -> String {
    let text = serde_json::to_string(text).expect("a string serialises");
    match route {
        Route::Completions => format!(
            r#"{head},"choices":[{{"index":0,"text":{text},"logprobs":null,"finish_reason":{finish}}}]}}"#
        ),
        Route::Chat => format!(
            r#"{head},"choices":[{{"index":0,"delta":{{"content":{text}}},"logprobs":null,"finish_reason":{finish}}}]}}"#
        ),
    }
}

fn completions(model: &str, tag: &str, chunk: usize) -> RouteFrames {
    let head =
        format!(r#"{{"id":"cmpl-{tag}","object":"text_completion","created":0,"model":{model}"#);
    route_frames(Route::Completions, head, None, chunk)
}

fn chat(model: &str, tag: &str, chunk: usize) -> RouteFrames {
    let head = format!(
        r#"{{"id":"chatcmpl-{tag}","object":"chat.completion.chunk","created":0,"model":{model}"#
    );
    let role = format!(
        r#"{head},"choices":[{{"index":0,"delta":{{"role":"assistant","content":""}},"logprobs":null,"finish_reason":null}}]}}"#
    );
    route_frames(Route::Chat, head, Some(frame(&role)), chunk)
}

fn route_frames(route: Route, head: String, role: Option<Bytes>, chunk: usize) -> RouteFrames {
    let event =
        |n: usize, finish: &str| frame(&event_json(route, &head, &TOKEN_TEXT.repeat(n), finish));
    RouteFrames {
        route,
        role,
        token: event(chunk, "null"),
        last: event(chunk, r#""length""#),
        empty_last: event(0, r#""length""#),
        last_short: (1..chunk).map(|n| event(n, r#""length""#)).collect(),
        head,
    }
}

/// `"usage":{…}` for the given counts.
fn usage_json(prompt: u32, completion: u32) -> String {
    format!(
        r#""usage":{{"prompt_tokens":{prompt},"completion_tokens":{completion},"total_tokens":{}}}"#,
        u64::from(prompt) + u64::from(completion)
    )
}

impl RouteFrames {
    /// The trailing usage chunk (`choices: []`).
    pub fn usage(&self, prompt: u32, completion: u32) -> Bytes {
        frame(&format!(
            r#"{},"choices":[],{}}}"#,
            self.head,
            usage_json(prompt, completion)
        ))
    }

    /// An event of `tokens` tokens (at least one) whose first token's text is `first` instead
    /// of [`TOKEN_TEXT`] (a referee's answer), the reply's last event when `last`. Rendered per
    /// reply, unlike the shared frames.
    pub fn first_event(&self, first: &str, tokens: u32, last: bool) -> Bytes {
        let text = format!("{first}{}", TOKEN_TEXT.repeat(tokens.max(1) as usize - 1));
        let finish = if last { r#""length""# } else { "null" };
        frame(&event_json(self.route, &self.head, &text, finish))
    }

    /// `base` (one of this route's frames) with cumulative usage added, as vLLM's
    /// `continuous_usage_stats` does on every chunk.
    pub fn with_usage(&self, base: &Bytes, prompt: u32, completion: u32) -> Bytes {
        // base = "data: {…}\n\n": reopen the object before its closing brace.
        let open = &base[..base.len() - 3];
        let usage = usage_json(prompt, completion);
        let mut b = BytesMut::with_capacity(open.len() + usage.len() + 4);
        b.put_slice(open);
        b.put_u8(b',');
        b.put_slice(usage.as_bytes());
        b.put_slice(b"}\n\n");
        b.freeze()
    }
}

/// The body of a non-streamed reply of `n` tokens to a `prompt`-token request (ids as in
/// [`Frames::tagged`]).
pub(crate) fn whole_reply(route: Route, model: &str, tag: &str, prompt: u32, n: u32) -> Value {
    let text = TOKEN_TEXT.repeat(n as usize);
    let usage = json!({"prompt_tokens":prompt,"completion_tokens":n,"total_tokens":u64::from(prompt)+u64::from(n)});
    match route {
        Route::Completions => json!({"id":format!("cmpl-{tag}"),"object":"text_completion",
            "created":0,"model":model,"choices":[{"index":0,"text":text,"logprobs":null,
            "finish_reason":"length"}],"usage":usage}),
        Route::Chat => json!({"id":format!("chatcmpl-{tag}"),"object":"chat.completion",
            "created":0,"model":model,"choices":[{"index":0,"message":{"role":"assistant",
            "content":text},"logprobs":null,"finish_reason":"length"}],"usage":usage}),
    }
}

/// An OpenAI-shaped `400 invalid_request_error` body.
pub(crate) fn error_body(message: &str) -> Value {
    json!({"error":{"message":message,"type":"invalid_request_error","param":null,"code":400}})
}

/// The `/v1/models` body listing one model.
pub(crate) fn models_body(model: &str) -> Value {
    json!({"object":"list","data":[{"id":model,"object":"model","created":0,"owned_by":"exp"}]})
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(frame: &Bytes) -> Value {
        let s = std::str::from_utf8(frame).unwrap();
        let json = s
            .strip_prefix("data: ")
            .unwrap()
            .strip_suffix("\n\n")
            .unwrap();
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn completion_frames_are_valid_json_in_vllm_shape() {
        let f = Frames::new("m\"q");
        let r = f.route(Route::Completions);
        let tok = parse(&r.token);
        assert_eq!(tok["model"], json!("m\"q"));
        assert_eq!(tok["choices"][0]["text"], json!(TOKEN_TEXT));
        assert_eq!(tok["choices"][0]["finish_reason"], Value::Null);
        assert_eq!(
            parse(&r.last)["choices"][0]["finish_reason"],
            json!("length")
        );
        let u = parse(&r.usage(3, 20));
        assert_eq!(u["choices"], json!([]));
        assert_eq!(
            u["usage"],
            json!({"prompt_tokens":3,"completion_tokens":20,"total_tokens":23})
        );
    }

    #[test]
    fn shared_frames_are_pinned_byte_for_byte() {
        let f = Frames::new("m");
        assert_eq!(
            f.route(Route::Completions).token,
            &b"data: {\"id\":\"cmpl-fixed\",\"object\":\"text_completion\",\"created\":0,\
\"model\":\"m\",\"choices\":[{\"index\":0,\"text\":\" tok\",\"logprobs\":null,\
\"finish_reason\":null}]}\n\n"[..]
        );
        assert_eq!(
            f.route(Route::Chat).role.as_deref().unwrap(),
            &b"data: {\"id\":\"chatcmpl-fixed\",\"object\":\"chat.completion.chunk\",\
\"created\":0,\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\
\"content\":\"\"},\"logprobs\":null,\"finish_reason\":null}]}\n\n"[..]
        );
        assert_eq!(
            parse(&Frames::chunked("m", 3).route(Route::Chat).last)["choices"][0]["delta"],
            json!({"content":" tok tok tok"})
        );
    }

    #[test]
    fn a_first_event_carries_the_answer_then_plain_tokens() {
        let f = Frames::new("m");
        let e = parse(&f.route(Route::Completions).first_event(" 68217", 3, false));
        assert_eq!(e["choices"][0]["text"], json!(" 68217 tok tok"));
        assert_eq!(e["choices"][0]["finish_reason"], Value::Null);
        let e = parse(&f.route(Route::Chat).first_event(" 12", 1, true));
        assert_eq!(e["choices"][0]["delta"], json!({"content":" 12"}));
        assert_eq!(e["choices"][0]["finish_reason"], json!("length"));
    }

    #[test]
    fn chat_frames_start_with_a_role_delta_and_carry_content() {
        let f = Frames::new("m");
        let r = f.route(Route::Chat);
        let role = parse(r.role.as_ref().unwrap());
        assert_eq!(
            role["choices"][0]["delta"],
            json!({"role":"assistant","content":""})
        );
        assert_eq!(
            parse(&r.token)["choices"][0]["delta"]["content"],
            json!(TOKEN_TEXT)
        );
        let cont = parse(&r.with_usage(&r.token, 4, 2));
        assert_eq!(cont["usage"]["completion_tokens"], json!(2));
        assert_eq!(cont["choices"][0]["delta"]["content"], json!(TOKEN_TEXT));
    }
}
