//! `openai-completions`: `POST {base_url}/completions` with the prompt as `prompt` (a
//! conversation's messages joined with newlines).

use super::body::{self, Input};
use crate::backend::failure::Failure;
use crate::backend::protocol::{BodyOptions, Event, PromptCount, Spec, Wire};
use crate::workload::work::RequestSpec;

/// The OpenAI completions protocol.
pub(crate) struct Completions;

impl Wire for Completions {
    const SPEC: Spec = Spec {
        name: "openai-completions",
        route: "completions",
        models_route: "models",
        prompt_count: PromptCount::AsSent,
    };

    fn render(req: &RequestSpec, opts: BodyOptions<'_>) -> Vec<u8> {
        body::render(req, Input::Prompt, opts)
    }

    fn decode(payload: &[u8]) -> Result<Event<'_>, Failure> {
        super::decode(payload)
    }

    fn models(reply: &[u8]) -> Result<Vec<String>, String> {
        super::models(reply)
    }

    fn text(payload: &[u8]) -> Option<String> {
        super::text(payload)
    }
}
