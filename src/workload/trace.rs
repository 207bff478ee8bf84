//! Replay traces: JSONL lines `{"timestamp": <seconds>, "input_tokens": n, "output_tokens": n}`,
//! optionally with a `"prompt"` string (then `input_tokens` may be left out). Send offsets are
//! relative to the first timestamp; per-request lengths override the cell's prompt and output
//! lengths (a line's prompt is counted with the target's tokenizer when there is one). Other
//! keys are ignored, so richer trace formats can be replayed as they are.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::error::WorkloadError;
use super::tokenizer::{ModelTokenizer, TokenizerError};
use super::work::{Prompt, RequestSource, RequestSpec};
use super::{jsonl, words};

/// A loaded trace (non-empty, timestamps non-decreasing).
#[derive(Debug, Clone, PartialEq)]
pub struct Trace {
    path: PathBuf,
    entries: Vec<TraceEntry>,
    has_prompts: bool,
}

/// One request of a trace.
#[derive(Debug, Clone, PartialEq)]
pub struct TraceEntry {
    /// Send offset from the trace's first request, in ns.
    pub offset_ns: u64,
    /// Prompt tokens: the line's `input_tokens`, else the word count of its `prompt`.
    pub input_tokens: u32,
    /// Output tokens.
    pub output_tokens: u32,
    /// The prompt text, when the line gives it.
    pub prompt: Option<String>,
}

#[derive(serde::Deserialize)]
struct RawLine {
    timestamp: f64,
    input_tokens: Option<u32>,
    output_tokens: u32,
    prompt: Option<String>,
}

impl Trace {
    /// Reads and checks the trace at `path`.
    pub fn load(path: &Path) -> Result<Self, WorkloadError> {
        let text = jsonl::read(path, "trace")?;
        Self::parse(path, &text)
    }

    /// Parses trace text; `path` is only used in error messages.
    pub fn parse(path: &Path, text: &str) -> Result<Self, WorkloadError> {
        let bad = |line: u64, message: String| WorkloadError::Line {
            path: path.to_path_buf(),
            line,
            message,
        };
        let mut entries = Vec::new();
        let mut first: Option<f64> = None;
        let mut previous = f64::NEG_INFINITY;
        let mut has_prompts = false;
        for (n, line) in jsonl::lines(text) {
            let raw: RawLine =
                serde_json::from_str(line).map_err(|e| bad(n, jsonl::message(&e)))?;
            if !raw.timestamp.is_finite() || raw.timestamp < previous {
                return Err(bad(
                    n,
                    format!(
                        "timestamp {} is before the previous line's {previous} \
                         (timestamps must be finite and non-decreasing)",
                        raw.timestamp
                    ),
                ));
            }
            previous = raw.timestamp;
            let input_tokens = match (raw.input_tokens, &raw.prompt) {
                (Some(n), _) => n,
                (None, Some(text)) => words::count(text),
                (None, None) => {
                    return Err(bad(
                        n,
                        "missing `input_tokens` (needed without a `prompt`)".into(),
                    ));
                }
            };
            if raw.output_tokens == 0 || input_tokens == 0 {
                return Err(bad(n, "token counts must be at least 1".into()));
            }
            has_prompts |= raw.prompt.is_some();
            let origin = *first.get_or_insert(raw.timestamp);
            entries.push(TraceEntry {
                offset_ns: ((raw.timestamp - origin) * 1e9).round() as u64,
                input_tokens,
                output_tokens: raw.output_tokens,
                prompt: raw.prompt,
            });
        }
        if entries.is_empty() {
            return Err(WorkloadError::File {
                path: path.to_path_buf(),
                message: "the trace has no requests".into(),
            });
        }
        Ok(Self {
            path: path.to_path_buf(),
            entries,
            has_prompts,
        })
    }

    /// The file it was read from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// All entries, in file order.
    pub fn entries(&self) -> &[TraceEntry] {
        &self.entries
    }

    /// Entry `index`, wrapping around (warm-up requests cycle through the trace).
    pub fn entry(&self, index: u64) -> &TraceEntry {
        &self.entries[(index % self.entries.len() as u64) as usize]
    }

    /// Whether any line carries its own prompt text.
    pub fn has_prompts(&self) -> bool {
        self.has_prompts
    }
}

/// Serves a trace line's own `prompt` where it has one and defers to `inner` otherwise (whose
/// lengths already follow the trace). With a tokenizer, a line's prompt is as long as the
/// tokenizer counts it (one encode per request), whatever its `input_tokens` says.
pub(crate) struct TracePrompts {
    /// The source for lines without a prompt.
    pub inner: Arc<dyn RequestSource>,
    /// The trace.
    pub trace: Arc<Trace>,
    /// The target's tokenizer, if it has one.
    pub tokenizer: Option<Arc<ModelTokenizer>>,
}

impl TracePrompts {
    /// Counts the first line's prompt that has one, so a tokenizer that cannot read these
    /// prompts fails the workload's build.
    pub(crate) fn check(&self) -> Result<(), TokenizerError> {
        let first = self.trace.entries.iter().find_map(|e| e.prompt.as_deref());
        match (&self.tokenizer, first) {
            (Some(tok), Some(text)) => tok.count(text).map(|_| ()),
            _ => Ok(()),
        }
    }

    fn input_tokens(&self, e: &TraceEntry, text: &str) -> u32 {
        self.tokenizer
            .as_ref()
            .and_then(|t| t.count(text).ok())
            .map_or(e.input_tokens, |n| n.max(1))
    }
}

impl RequestSource for TracePrompts {
    fn lengths(&self, i: u64) -> (u32, u32) {
        let e = self.trace.entry(i);
        match &e.prompt {
            Some(text) => (self.input_tokens(e, text), e.output_tokens),
            None => self.inner.lengths(i),
        }
    }

    fn request(&self, i: u64) -> RequestSpec {
        let e = self.trace.entry(i);
        match &e.prompt {
            Some(text) => RequestSpec {
                prompt: Prompt::Text(text.clone()),
                input_tokens: self.input_tokens(e, text),
                max_tokens: e.output_tokens,
            },
            None => self.inner.request(i),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Trace, WorkloadError> {
        Trace::parse(Path::new("t.jsonl"), text)
    }

    #[test]
    fn offsets_are_relative_to_the_first_timestamp() {
        let t = parse(
            "{\"timestamp\": 100.5, \"input_tokens\": 10, \"output_tokens\": 5}\n\
             \n\
             {\"timestamp\": 100.75, \"input_tokens\": 20, \"output_tokens\": 6, \"x\": 1}\n\
             {\"timestamp\": 102.5, \"prompt\": \"hello there\", \"output_tokens\": 7}\n",
        )
        .unwrap();
        let offsets: Vec<u64> = t.entries().iter().map(|e| e.offset_ns).collect();
        assert_eq!(offsets, vec![0, 250_000_000, 2_000_000_000]);
        assert_eq!(t.entry(1).input_tokens, 20);
        assert_eq!(t.entry(2).input_tokens, 2, "word count of the prompt");
        assert_eq!(t.entry(2).prompt.as_deref(), Some("hello there"));
        assert_eq!(t.entry(4).output_tokens, 6, "wraps around");
    }

    #[test]
    fn bad_lines_are_named() {
        let ok = "{\"timestamp\": 1, \"input_tokens\": 1, \"output_tokens\": 1}\n";
        let cases = [
            (
                format!("{ok}{{\"timestamp\": 2, \"input_tokens\": 1}}\n"),
                2,
                "output_tokens",
            ),
            (
                format!("{ok}\n{{\"timestamp\": 0.5, \"input_tokens\": 1, \"output_tokens\": 1}}"),
                3,
                "non-decreasing",
            ),
            (
                format!("{ok}{{\"timestamp\": 2, \"output_tokens\": 1}}"),
                2,
                "input_tokens",
            ),
            (format!("{ok}not json"), 2, "column"),
        ];
        for (text, line, needle) in cases {
            let msg = parse(&text).unwrap_err().to_string();
            assert!(msg.starts_with(&format!("t.jsonl:{line}: ")), "{msg}");
            assert!(msg.contains(needle), "{msg}");
        }
        assert!(parse("\n").unwrap_err().to_string().contains("no requests"));
    }
}
