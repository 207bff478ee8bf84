//! Generated tokens of a server that sends no usage (issue 12). Counting chunks is wrong by
//! the tokens per chunk (speculative decoding, engines that batch their writes), so the
//! client keeps such a response's text and, after the repetition's last request and before
//! its completion marker, exp counts it — with the scenario's `[target] tokenizer` when there
//! is one, else with the server's `/tokenize` — and drops the text. Counting after the
//! repetition keeps it off the measured path (a `/tokenize` call is load on the server). Only
//! when neither can count do lengths fall back to chunks, with a warning that says so.
//!
//! The same pass counts such a request's prompt with the server's `/tokenize` when no
//! `[target] tokenizer` fitted it exactly before it was sent: the prompt is rebuilt from the
//! repetition's deterministic workload, so the records never hold prompt text.

use std::sync::{Arc, Mutex};

use crate::backend::Client;
use crate::record::{Counted, CountedBy, RequestRecord};
use crate::store::{RepWriter, StoreError};
use crate::workload::ModelTokenizer;
use crate::workload::work::{Prompt, RequestSource};

/// The workload a repetition's prompts are rebuilt from.
pub(super) type Prompts = Option<Arc<dyn RequestSource>>;

/// What counts generated text.
#[derive(Clone)]
pub(super) enum Counter {
    /// The scenario's `[target] tokenizer`.
    Tokenizer(Arc<ModelTokenizer>),
    /// The server's `/tokenize`.
    Server(Arc<Client>),
}

impl Counter {
    async fn count(&self, text: &str) -> Result<u32, String> {
        match self {
            Counter::Tokenizer(t) => t.count(text).map_err(|e| e.to_string()),
            Counter::Server(c) => c.tokenize(text).await.map_err(|e| e.to_string()),
        }
    }

    fn by(&self) -> CountedBy {
        match self {
            Counter::Tokenizer(_) => CountedBy::Tokenizer,
            Counter::Server(_) => CountedBy::Server,
        }
    }

    fn name(&self) -> String {
        match self {
            Counter::Tokenizer(t) => format!("`[target] tokenizer` ({})", t.path().display()),
            Counter::Server(c) => format!("the server's {}", c.tokenize_url()),
        }
    }
}

#[derive(Default)]
struct Progress {
    counted: u64,
    failure: Option<String>,
}

/// Counts the generated tokens of every record that kept its text, and drops the text; the
/// note for the marker says how (or why they could not be counted). Nothing to do — `None` —
/// when every response carried usage.
pub(super) async fn count_texts(
    writer: &mut RepWriter,
    counter: Option<Counter>,
    prompts: Prompts,
) -> Result<Option<String>, StoreError> {
    let texts = writer.tally().with_text;
    if texts == 0 {
        return Ok(None);
    }
    let progress = Arc::new(Mutex::new(Progress::default()));
    // Only the server's tokenizer adds to the client's prompt count: with `[target]
    // tokenizer` the prompt was fitted exactly before it was sent.
    let prompts = match counter {
        Some(Counter::Server(_)) => prompts,
        _ => None,
    };
    let shared = (counter.clone(), progress.clone(), prompts);
    writer
        .rewrite_texts(|rec| count_one(rec, shared.0.clone(), shared.1.clone(), shared.2.clone()))
        .await?;
    let p = progress.lock().unwrap_or_else(|e| e.into_inner());
    let fallback = "their output lengths are chunk counts (set `[target] tokenizer` to the model's tokenizer.json to count them exactly)";
    Ok(Some(match (&counter, &p.failure) {
        (None, _) => format!(
            "the server sent no usage for {texts} responses and has no tokenizer to count them with: {fallback}"
        ),
        (Some(c), Some(why)) => format!(
            "the server sent no usage for {texts} responses; {} counted {} of them, then failed ({why}): the rest have chunk counts ({fallback})",
            c.name(),
            p.counted
        ),
        (Some(c), None) => format!(
            "the server sent no usage for {texts} responses: {} counted their generated tokens",
            c.name()
        ),
    }))
}

async fn count_one(
    mut rec: RequestRecord,
    counter: Option<Counter>,
    progress: Arc<Mutex<Progress>>,
    prompts: Prompts,
) -> RequestRecord {
    let text = rec.text.take().unwrap_or_default();
    let Some(counter) = counter else {
        return rec;
    };
    if progress
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .failure
        .is_some()
    {
        return rec;
    }
    let counted = counter.count(&text).await;
    // A completion prompt without the server's count: its tokens by the same tokenizer (a
    // chat prompt is left alone: its template adds tokens the text does not show).
    let prompt = match (&prompts, rec.input_tokens, &counted) {
        (Some(source), None, Ok(_)) => match source.turn(rec.index, rec.turn).prompt {
            Prompt::Text(p) => counter.count(&p).await.ok(),
            Prompt::Chat(_) => None,
        },
        _ => None,
    };
    let mut p = progress.lock().unwrap_or_else(|e| e.into_inner());
    match counted {
        Ok(tokens) => {
            rec.counted = Some(Counted {
                tokens,
                by: counter.by(),
                prompt,
            });
            p.counted += 1;
        }
        Err(why) => p.failure = Some(why),
    }
    rec
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Manifest, RunDir};

    fn rec(i: u64, text: Option<&str>) -> RequestRecord {
        RequestRecord {
            text: text.map(str::to_string),
            ..RequestRecord::sent_ok(i, 0)
        }
    }

    /// A run directory (from the fixture's manifest) in `tmp`.
    fn run_dir(tmp: &tempfile::TempDir) -> RunDir {
        let manifest: Manifest = serde_json::from_str(include_str!(
            "../../tests/fixtures/rundirs/fx_http/manifest.json"
        ))
        .unwrap();
        RunDir::create(tmp.path(), &manifest, "").unwrap()
    }

    #[tokio::test]
    async fn the_tokenizer_counts_kept_texts_and_they_are_dropped() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = run_dir(&tmp);
        let mut w = dir.start_repetition("c", 0).unwrap();
        w.append(&rec(0, Some("the of and"))).unwrap();
        w.append(&rec(1, Some("hello world"))).unwrap();
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/tokenizer/bpe.json");
        let tokenizer = Arc::new(ModelTokenizer::load(&path).unwrap());
        let note = count_texts(&mut w, Some(Counter::Tokenizer(tokenizer)), None)
            .await
            .unwrap()
            .unwrap();
        assert!(
            note.starts_with("the server sent no usage for 2 responses: `[target] tokenizer` ("),
            "{note}"
        );
        // The fixture's counts (workload::tokenizer_tests): 3 and 5 tokens.
        let marker = dir.marker("c", 0);
        assert!(marker.is_err(), "no marker yet");
        drop(w);
        let text = std::fs::read_to_string(dir.root().join("records/c/rep-000.jsonl")).unwrap();
        let recs: Vec<RequestRecord> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let counts: Vec<u32> = recs.iter().map(|r| r.counted.unwrap().tokens).collect();
        assert_eq!(counts, [3, 5]);
        assert!(recs.iter().all(|r| r.text.is_none()));
        assert!(
            recs.iter()
                .all(|r| r.counted.unwrap().by == CountedBy::Tokenizer)
        );
    }

    #[tokio::test]
    async fn nothing_to_count_leaves_no_note() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = run_dir(&tmp);
        let mut w = dir.start_repetition("c", 0).unwrap();
        w.append(&rec(0, None)).unwrap();
        assert_eq!(count_texts(&mut w, None, None).await.unwrap(), None);
        w.append(&rec(1, Some("x y"))).unwrap();
        let note = count_texts(&mut w, None, None).await.unwrap().unwrap();
        assert_eq!(
            note,
            "the server sent no usage for 1 responses and has no tokenizer to count them with: their output lengths are chunk counts (set `[target] tokenizer` to the model's tokenizer.json to count them exactly)"
        );
    }
}
