//! Secrets: which values must never reach a file or a message, and how they are hidden.
//!
//! A value is secret when it flows into a secret header (`secret = true`, or a credential-like
//! header name such as `Authorization` or `x-api-key`), when it is the value of a variable
//! whose name looks secret (`token`, `api_key`, `hf_token`, `password`, …), or when it is the
//! API key read from `api_key_env`. Such a value is written as `<redacted:1a2b3c4d>`: the first
//! 32 bits of its SHA-256, so cells that differ only in a secret stay distinguishable and two
//! runs given the same secret still match, while the value itself cannot be read back.
//!
//! Hiding happens twice: where exp knows a value's key (a cell's variables, `--set`
//! overrides, the report's variables) it is replaced whatever its length; and every file exp
//! writes through [`crate::store::write_atomic`], every server log and every error message
//! is scrubbed of every secret of at least [`MIN_SCRUB_CHARS`] characters the process has
//! seen ([`remember`]), wherever it appears.

use std::borrow::Cow;
use std::sync::Mutex;

use sha2::{Digest, Sha256};

/// Secrets shorter than this are hidden only where their key is known: replacing every
/// occurrence of a two-letter value would mangle unrelated text.
pub const MIN_SCRUB_CHARS: usize = 6;

/// What every redacted value starts with.
pub const MARKER_PREFIX: &str = "<redacted:";

/// Name segments that mark a secret (`api_key`, `HF_TOKEN`, `db-password`, `auth`). Plural
/// `tokens`/`keys` are not secrets (`max_tokens`, `max-num-batched-tokens`).
const SECRET_SEGMENTS: [&str; 10] = [
    "auth",
    "authorization",
    "bearer",
    "credential",
    "credentials",
    "passwd",
    "password",
    "secret",
    "token",
    "key",
];

/// Whether a name (variable, environment variable, command-line option, header) looks like it
/// holds a secret: one of its segments (split at anything but letters and digits) is
/// `token`, `key`, `secret`, `password`, `auth`, … or ends in `token`/`key`/`secret`/`password`
/// (`apikey`, `hftoken`). `max_tokens`, `tokenizer` and `num_keys` are not secrets.
pub fn is_secret_name(name: &str) -> bool {
    name.to_ascii_lowercase()
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|s| !s.is_empty())
        .any(|s| {
            SECRET_SEGMENTS.contains(&s)
                || ["token", "key", "secret", "password"]
                    .iter()
                    .any(|end| s.ends_with(end))
        })
}

/// Whether a header name usually carries credentials (`Authorization`, `x-api-key`,
/// `Proxy-Authorization`, `Cookie`).
pub fn is_secret_header(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    is_secret_name(&n) || n.contains("authorization") || n == "cookie"
}

/// The text written in place of `value`: `<redacted:` + the first 8 hex digits of its
/// SHA-256 + `>`.
pub fn marker(value: &str) -> String {
    let hash = Sha256::digest(value.as_bytes());
    let hex: String = hash[..4].iter().map(|b| format!("{b:02x}")).collect();
    format!("{MARKER_PREFIX}{hex}>")
}

/// Whether `text` holds a redacted value.
pub fn has_marker(text: &str) -> bool {
    text.contains(MARKER_PREFIX)
}

/// A set of secret values and the text that replaces them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scrubber {
    /// (value as it may appear in text, its marker), longest first so a secret that contains
    /// another is replaced whole.
    values: Vec<(String, String)>,
}

impl Scrubber {
    /// Adds a secret (ignored when shorter than [`MIN_SCRUB_CHARS`]). Its JSON and TOML
    /// escaped spellings are added too, so it is found inside `manifest.json` and in a TOML
    /// string.
    pub fn add(&mut self, value: &str) {
        if value.chars().count() < MIN_SCRUB_CHARS {
            return;
        }
        let mark = marker(value);
        let json = serde_json::to_string(value).expect("a string serialises");
        let escaped = &json[1..json.len() - 1];
        for form in [value, escaped] {
            if !self.values.iter().any(|(v, _)| v == form) {
                self.values.push((form.to_string(), mark.clone()));
            }
        }
        self.values
            .sort_by(|a, b| b.0.len().cmp(&a.0.len()).then(a.0.cmp(&b.0)));
    }

    /// True when there is nothing to hide.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// `text` with every secret replaced by its marker.
    pub fn scrub<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let mut out = Cow::Borrowed(text);
        for (value, mark) in &self.values {
            if out.contains(value.as_str()) {
                out = Cow::Owned(out.replace(value.as_str(), mark));
            }
        }
        out
    }
}

/// Every secret this process has seen (see [`remember`]).
static SEEN: Mutex<Scrubber> = Mutex::new(Scrubber { values: Vec::new() });

/// Remembers secrets for the rest of the process: every later [`scrub`] hides them.
pub fn remember<'a>(values: impl IntoIterator<Item = &'a str>) {
    let mut seen = SEEN.lock().unwrap_or_else(|e| e.into_inner());
    for v in values {
        seen.add(v);
    }
}

/// `text` with every remembered secret replaced by its marker.
pub fn scrub(text: &str) -> Cow<'_, str> {
    let seen = SEEN.lock().unwrap_or_else(|e| e.into_inner());
    match seen.scrub(text) {
        Cow::Borrowed(_) => Cow::Borrowed(text),
        Cow::Owned(s) => Cow::Owned(s),
    }
}

/// [`scrub`] for bytes that may not be UTF-8 (left alone when they are not).
pub fn scrub_bytes(bytes: &[u8]) -> Cow<'_, [u8]> {
    match std::str::from_utf8(bytes) {
        Ok(text) => match scrub(text) {
            Cow::Borrowed(_) => Cow::Borrowed(bytes),
            Cow::Owned(s) => Cow::Owned(s.into_bytes()),
        },
        Err(_) => Cow::Borrowed(bytes),
    }
}

/// Rewrites a file (a server's log) with every remembered secret hidden; a file that cannot
/// be read is left as it is.
pub fn scrub_file(path: &std::path::Path) {
    let Ok(bytes) = std::fs::read(path) else {
        return;
    };
    let text = String::from_utf8_lossy(&bytes);
    if let Cow::Owned(clean) = scrub(&text) {
        let _ = std::fs::write(path, clean);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_hold_secrets() {
        for n in [
            "token",
            "api_key",
            "OPENAI_API_KEY",
            "HF_TOKEN",
            "hf-token",
            "apikey",
            "db_password",
            "auth",
            "x-api-key",
            "client_secret",
            "credentials",
        ] {
            assert!(is_secret_name(n), "{n}");
        }
        for n in [
            "max_tokens",
            "max-num-batched-tokens",
            "tokenizer",
            "output_tokens",
            "num_keys",
            "model",
            "CUDA_VISIBLE_DEVICES",
            "port",
        ] {
            assert!(!is_secret_name(n), "{n}");
        }
        assert!(is_secret_header("Authorization"));
        assert!(is_secret_header("Proxy-Authorization"));
        assert!(is_secret_header("x-api-key"));
        assert!(is_secret_header("Cookie"));
        assert!(!is_secret_header("x-request-id"));
    }

    #[test]
    fn marker_is_a_short_sha256() {
        // printf %s sk-test-123 | sha256sum → 5f2c4b93…
        let expected = {
            let h = Sha256::digest(b"sk-test-123");
            format!(
                "<redacted:{:02x}{:02x}{:02x}{:02x}>",
                h[0], h[1], h[2], h[3]
            )
        };
        assert_eq!(marker("sk-test-123"), expected);
        assert_ne!(marker("sk-test-123"), marker("sk-test-124"));
        assert!(has_marker(&marker("x")));
    }

    #[test]
    fn scrubbing_hides_every_spelling_and_the_longest_first() {
        let mut s = Scrubber::default();
        s.add("abc");
        s.add("sk-inner");
        s.add("Bearer sk-inner");
        s.add("pa\"ss\\word");
        assert_eq!(
            s.scrub("x abc y"),
            "x abc y",
            "too short to scrub in free text"
        );
        assert_eq!(
            s.scrub("h: Bearer sk-inner; k=sk-inner"),
            format!("h: {}; k={}", marker("Bearer sk-inner"), marker("sk-inner"))
        );
        let json = serde_json::to_string("pa\"ss\\word").unwrap();
        assert_eq!(s.scrub(&json), format!("\"{}\"", marker("pa\"ss\\word")));
        assert!(matches!(s.scrub("nothing here"), Cow::Borrowed(_)));
    }
}
