//! Failed requests as data: the reason, the HTTP status and a message that is short and never
//! carries a secret.

use crate::record::{FailureReason, Outcome};

/// Longest message kept from a server's reply (characters).
pub(crate) const MAX_MESSAGE_CHARS: usize = 500;

/// Why one exchange failed, before it becomes an [`Outcome::Failed`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Failure {
    /// The closed reason reports count by.
    pub reason: FailureReason,
    /// The HTTP status, when the server answered with one.
    pub http_status: Option<u16>,
    /// What happened, in the server's or the transport's words.
    pub message: String,
}

impl Failure {
    /// A failure without an HTTP status.
    pub fn new(reason: FailureReason, message: impl Into<String>) -> Self {
        Failure {
            reason,
            http_status: None,
            message: message.into(),
        }
    }
}

/// Removes known secrets (API key, credential-like header values, URL password) from text.
#[derive(Debug, Clone, Default)]
pub(crate) struct Redactor {
    secrets: Vec<String>,
}

impl Redactor {
    /// Adds a secret; empty and very short strings are ignored (they would mangle text).
    pub fn add(&mut self, secret: &str) {
        if secret.len() >= 4 {
            self.secrets.push(secret.to_owned());
        }
    }

    /// `text` with every secret replaced by `[redacted]`.
    pub fn clean(&self, text: &str) -> String {
        let mut out = crate::secrets::scrub(text).into_owned();
        for s in &self.secrets {
            if out.contains(s.as_str()) {
                out = out.replace(s.as_str(), "[redacted]");
            }
        }
        out
    }

    /// The outcome for `failure`, message truncated and redacted.
    pub fn outcome(&self, failure: Failure) -> Outcome {
        Outcome::Failed {
            reason: failure.reason,
            http_status: failure.http_status,
            message: truncate(&self.clean(&failure.message), MAX_MESSAGE_CHARS),
        }
    }
}

pub(crate) use crate::secrets::is_secret_header;

/// At most `max` characters of `text`, with `…` when something was cut.
pub(crate) fn truncate(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_owned(),
    }
}

/// An error and its sources joined with `: ` (reqwest's own message alone says little).
pub(crate) fn error_chain(err: &dyn std::error::Error) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_redacted_and_messages_truncated() {
        let mut r = Redactor::default();
        r.add("sk-secret-123");
        r.add("");
        let out = r.outcome(Failure {
            reason: FailureReason::Http,
            http_status: Some(401),
            message: format!("bad key sk-secret-123 {}", "x".repeat(1000)),
        });
        let Outcome::Failed {
            message,
            http_status,
            ..
        } = out
        else {
            panic!()
        };
        assert!(message.starts_with("bad key [redacted] xxx"), "{message}");
        assert_eq!(message.chars().count(), MAX_MESSAGE_CHARS + 1);
        assert_eq!(http_status, Some(401));
    }

    #[test]
    fn truncation_respects_char_boundaries() {
        assert_eq!(truncate("héllo", 2), "hé…");
        assert_eq!(truncate("hé", 2), "hé");
    }

    #[test]
    fn credential_headers_are_recognised() {
        assert!(is_secret_header("Authorization"));
        assert!(is_secret_header("x-api-key"));
        assert!(!is_secret_header("x-request-id"));
    }
}
