//! The perplexity corpus: the user's documents, read from `.jsonl` (`{"text": …}` per line)
//! or `.txt` (documents separated by blank lines), and the segments exp scores. A document
//! that fits `window_tokens` is one segment, sent as text; a longer one is cut into windows
//! of `window_tokens` token ids after the tokenizer's BOS (what a server puts before a text
//! prompt), each after the first starting with half a window of the previous text as
//! context, so every token is scored once and with context (the document's first after BOS
//! only) (lm-evaluation-harness's rolling log-likelihood with a stride of half a
//! window). Every cell scores the same segments, so they pair across cells.

use std::path::{Path, PathBuf};

use crate::workload::tokenizer::{ModelTokenizer, TokenizerError};

/// Why the corpus cannot be used. Each names the file, and the line where there is one.
#[derive(Debug, thiserror::Error)]
pub enum CorpusError {
    /// The file could not be read.
    #[error("{path}: cannot read the perplexity corpus: {message}")]
    Read {
        /// The corpus.
        path: PathBuf,
        /// The OS error.
        message: String,
    },
    /// A line of a `.jsonl` corpus is not `{"text": "…"}`.
    #[error(
        "{path}:{line}: {message} (hint: each line of a .jsonl corpus is one document, {{\"text\": \"…\"}})"
    )]
    Line {
        /// The corpus.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// What is wrong with it.
        message: String,
    },
    /// Fewer documents than asked for.
    #[error(
        "{path}: [quality] perplexity.documents = {want}, but the corpus has {have} non-empty documents (hint: lower `documents`, or leave it out to score them all)"
    )]
    TooFew {
        /// The corpus.
        path: PathBuf,
        /// Documents asked for.
        want: u32,
        /// Documents found.
        have: usize,
    },
    /// Tokenizing a document failed.
    #[error("{0}")]
    Tokenizer(#[from] TokenizerError),
}

/// Reads the corpus's documents (empty ones skipped), the first `documents` of them when set.
pub fn load(path: &Path, documents: Option<u32>) -> Result<Vec<String>, CorpusError> {
    let text = std::fs::read_to_string(path).map_err(|e| CorpusError::Read {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    let docs = match path.extension().and_then(|e| e.to_str()) {
        Some("jsonl") => parse_jsonl(path, &text)?,
        _ => parse_txt(&text),
    };
    match documents {
        Some(want) if docs.len() < want as usize => Err(CorpusError::TooFew {
            path: path.to_path_buf(),
            want,
            have: docs.len(),
        }),
        Some(want) => Ok(docs.into_iter().take(want as usize).collect()),
        None => Ok(docs),
    }
}

fn parse_jsonl(path: &Path, text: &str) -> Result<Vec<String>, CorpusError> {
    let mut docs = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let error = |message: String| CorpusError::Line {
            path: path.to_path_buf(),
            line: i + 1,
            message,
        };
        let value: serde_json::Value =
            serde_json::from_str(line).map_err(|e| error(format!("not JSON: {e}")))?;
        let Some(doc) = value.get("text").and_then(|t| t.as_str()) else {
            return Err(error("no string `text`".into()));
        };
        if !doc.trim().is_empty() {
            docs.push(doc.to_string());
        }
    }
    Ok(docs)
}

fn parse_txt(text: &str) -> Vec<String> {
    let mut docs = Vec::new();
    let mut current: Vec<&str> = Vec::new();
    for line in text.lines().chain(std::iter::once("")) {
        if line.trim().is_empty() {
            if !current.is_empty() {
                docs.push(current.join("\n"));
                current.clear();
            }
        } else {
            current.push(line);
        }
    }
    docs
}

/// What one scoring request sends.
#[derive(Debug, Clone, PartialEq)]
pub enum SegmentPrompt {
    /// A whole document, as text.
    Text(String),
    /// A window of a long document, as token ids.
    Tokens(Vec<u32>),
}

/// One scored unit of the corpus.
#[derive(Debug, Clone, PartialEq)]
pub struct Segment {
    /// The document's position in the corpus.
    pub document: u32,
    /// The window's position in the document (0 for a document sent whole).
    pub window: u32,
    /// What to send.
    pub prompt: SegmentPrompt,
    /// Leading tokens that are context only (not scored).
    pub skip: usize,
    /// The document's [`digest`]: whether two runs scored the same text.
    pub digest: String,
}

/// The first 16 hex digits of the SHA-256 of a document's text: what tells two runs' document
/// `d` apart when the corpus file changed between them (same name, other text).
pub fn digest(doc: &str) -> String {
    use sha2::{Digest, Sha256};
    let hash = Sha256::digest(doc.as_bytes());
    hash.iter().take(8).map(|b| format!("{b:02x}")).collect()
}

/// The segments of `docs`: whole documents without a window (or a tokenizer), windows of
/// `window` tokens for the longer ones otherwise.
pub fn segments(
    docs: &[String],
    window: Option<u32>,
    tokenizer: Option<&ModelTokenizer>,
) -> Result<Vec<Segment>, CorpusError> {
    let mut out = Vec::new();
    for (d, doc) in docs.iter().enumerate() {
        let document = d as u32;
        let (Some(window), Some(tok)) = (window, tokenizer) else {
            out.push(whole(document, doc));
            continue;
        };
        let ids = tok.encode(doc)?;
        if ids.len() <= window as usize {
            out.push(whole(document, doc));
            continue;
        }
        // Each window starts as a text prompt would, with the tokenizer's BOS (not scored).
        let bos = tok.special_prefix()?;
        let text_digest = digest(doc);
        for (w, (start, end, skip)) in windows(ids.len(), window as usize).into_iter().enumerate() {
            let mut prompt = bos.clone();
            prompt.extend_from_slice(&ids[start..end]);
            out.push(Segment {
                document,
                window: w as u32,
                prompt: SegmentPrompt::Tokens(prompt),
                skip: bos.len() + skip,
                digest: text_digest.clone(),
            });
        }
    }
    Ok(out)
}

fn whole(document: u32, doc: &str) -> Segment {
    Segment {
        document,
        window: 0,
        prompt: SegmentPrompt::Text(doc.to_string()),
        skip: 0,
        digest: digest(doc),
    }
}

/// `(start, end, skip)` of each window over `len` tokens: the first is `[0, window)`; each
/// next one scores the following `window − window/2` tokens after `window/2` of context.
fn windows(len: usize, window: usize) -> Vec<(usize, usize, usize)> {
    let context = window / 2;
    let stride = window - context;
    let mut out = vec![(0, window.min(len), 0)];
    let mut scored = window.min(len);
    while scored < len {
        let end = (scored + stride).min(len);
        out.push((scored - context, end, context));
        scored = end;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_document_digest_is_the_start_of_its_sha256() {
        // SHA-256("abc") = ba7816bf 8f01cfea 414140de … (FIPS 180-2, appendix B.1).
        assert_eq!(digest("abc"), "ba7816bf8f01cfea");
        let segs = segments(&["abc".to_string()], None, None).unwrap();
        assert_eq!(segs[0].digest, "ba7816bf8f01cfea");
    }

    #[test]
    fn windows_score_every_token_once_with_half_a_window_of_context() {
        assert_eq!(windows(10, 16), vec![(0, 10, 0)]);
        assert_eq!(windows(16, 8), vec![(0, 8, 0), (4, 12, 4), (8, 16, 4)]);
        assert_eq!(windows(13, 8), vec![(0, 8, 0), (4, 12, 4), (8, 13, 4)]);
        // Odd windows: 3 tokens of context, 4 new.
        assert_eq!(windows(12, 7), vec![(0, 7, 0), (4, 11, 3), (8, 12, 3)]);
        for (len, w) in [(100, 16), (17, 16), (1000, 33)] {
            let scored: usize = windows(len, w).iter().map(|(s, e, k)| e - s - k).sum();
            assert_eq!(scored, len, "len {len}, window {w}");
        }
    }

    /// A long document becomes windows of token ids, each after the tokenizer's BOS (if it
    /// adds one), with the BOS and the context skipped; every token is scored once.
    #[test]
    fn windows_carry_the_bos_a_text_prompt_would_get() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/tokenizer/bpe.json"
        );
        let tok = ModelTokenizer::load(Path::new(path)).unwrap();
        let bos = tok.special_prefix().unwrap();
        let doc = "the queue grew while the batch waited for memory ".repeat(20);
        let n = tok.encode(&doc).unwrap().len();
        let segs = segments(std::slice::from_ref(&doc), Some(16), Some(&tok)).unwrap();
        assert!(segs.len() > 2, "{}", segs.len());
        let mut scored = 0;
        for s in &segs {
            let SegmentPrompt::Tokens(ids) = &s.prompt else {
                panic!("a long document is sent as token ids")
            };
            assert!(ids.starts_with(&bos));
            assert!(ids.len() <= bos.len() + 16);
            scored += ids.len() - s.skip;
        }
        assert_eq!(scored, n);
        // A short one is sent whole, as text.
        let short = segments(&["a b".to_string()], Some(16), Some(&tok)).unwrap();
        assert_eq!(short[0].prompt, SegmentPrompt::Text("a b".into()));
    }

    #[test]
    fn txt_documents_are_separated_by_blank_lines() {
        let docs = parse_txt("one\ntwo\n\n\n  \nthree\n");
        assert_eq!(docs, vec!["one\ntwo".to_string(), "three".to_string()]);
    }

    #[test]
    fn jsonl_errors_name_the_line() {
        let path = Path::new("c.jsonl");
        let docs = parse_jsonl(path, "{\"text\": \"a b\"}\n\n{\"text\": \" \"}\n").unwrap();
        assert_eq!(docs, vec!["a b".to_string()]);
        let e = parse_jsonl(path, "{\"text\": \"a\"}\n{\"body\": 1}\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "c.jsonl:2: no string `text` (hint: each line of a .jsonl corpus is one document, {\"text\": \"…\"})"
        );
    }

    #[test]
    fn too_few_documents_is_an_error_with_the_count() {
        let dir = std::env::temp_dir().join(format!("exp-corpus-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("c.txt");
        std::fs::write(&path, "a\n\nb\n").unwrap();
        assert_eq!(load(&path, Some(2)).unwrap().len(), 2);
        let e = load(&path, Some(3)).unwrap_err();
        assert!(
            e.to_string()
                .contains("perplexity.documents = 3, but the corpus has 2"),
            "{e}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
