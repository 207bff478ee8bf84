//! Loaded datasets, traces and tokenizers, kept for the life of the process (or of a
//! [`Datasets`] value) so a large file is read and parsed once, not once per repetition, and a
//! dataset's token counts are computed once per tokenizer. Entries are keyed by the resolved
//! (canonical, where possible) path; failed loads are not cached.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use super::conversation::Conversations;
use super::dataset::{Dataset, TokenCounts};
use super::error::WorkloadError;
use super::tokenizer::ModelTokenizer;
use super::trace::Trace;

/// Format of a prompt dataset file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DatasetFormat {
    /// One JSON object per line with `prompt`.
    Jsonl,
    /// A ShareGPT JSON array.
    ShareGpt,
}

/// A cache of loaded datasets, traces and tokenizers, shared by every repetition that uses them.
#[derive(Debug, Default)]
pub struct Datasets {
    datasets: Mutex<HashMap<(DatasetFormat, PathBuf), Arc<Dataset>>>,
    traces: Mutex<HashMap<PathBuf, Arc<Trace>>>,
    tokenizers: Mutex<HashMap<PathBuf, Arc<ModelTokenizer>>>,
    counts: Mutex<HashMap<CountsKey, Arc<TokenCounts>>>,
    conversations: Mutex<HashMap<PathBuf, Arc<Conversations>>>,
}

/// (dataset format, dataset path, tokenizer path).
type CountsKey = (DatasetFormat, PathBuf, PathBuf);

fn key(path: &Path) -> PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
}

impl Datasets {
    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// The process-wide cache used by [`super::build`].
    pub fn global() -> &'static Datasets {
        static GLOBAL: OnceLock<Datasets> = OnceLock::new();
        GLOBAL.get_or_init(Datasets::new)
    }

    /// The dataset at `path` (already resolved against the scenario's directory), loaded on
    /// first use.
    pub fn dataset(
        &self,
        format: DatasetFormat,
        path: &Path,
    ) -> Result<Arc<Dataset>, WorkloadError> {
        // Holding the lock while loading makes concurrent callers wait instead of parsing twice.
        let mut map = self.datasets.lock().unwrap_or_else(PoisonError::into_inner);
        let k = (format, key(path));
        if let Some(d) = map.get(&k) {
            return Ok(Arc::clone(d));
        }
        let d = Arc::new(match format {
            DatasetFormat::Jsonl => Dataset::load_jsonl(path)?,
            DatasetFormat::ShareGpt => Dataset::load_sharegpt(path)?,
        });
        map.insert(k, Arc::clone(&d));
        Ok(d)
    }

    /// The multi-turn conversation dataset at `path` (already resolved), loaded on first use.
    pub fn conversations(&self, path: &Path) -> Result<Arc<Conversations>, WorkloadError> {
        let mut map = self
            .conversations
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let k = key(path);
        if let Some(c) = map.get(&k) {
            return Ok(Arc::clone(c));
        }
        let c = Arc::new(Conversations::load(path)?);
        map.insert(k, Arc::clone(&c));
        Ok(c)
    }

    /// The trace at `path` (already resolved), loaded on first use.
    pub fn trace(&self, path: &Path) -> Result<Arc<Trace>, WorkloadError> {
        let mut map = self.traces.lock().unwrap_or_else(PoisonError::into_inner);
        let k = key(path);
        if let Some(t) = map.get(&k) {
            return Ok(Arc::clone(t));
        }
        let t = Arc::new(Trace::load(path)?);
        map.insert(k, Arc::clone(&t));
        Ok(t)
    }

    /// The `tokenizer.json` at `path` (already resolved), loaded on first use.
    pub fn tokenizer(&self, path: &Path) -> Result<Arc<ModelTokenizer>, WorkloadError> {
        let mut map = self
            .tokenizers
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let k = key(path);
        if let Some(t) = map.get(&k) {
            return Ok(Arc::clone(t));
        }
        let t = Arc::new(ModelTokenizer::load(path)?);
        map.insert(k, Arc::clone(&t));
        Ok(t)
    }

    /// The token counts of the dataset at `path` under the tokenizer at `tokenizer` (both
    /// already resolved), shared by every repetition.
    pub fn token_counts(
        &self,
        format: DatasetFormat,
        path: &Path,
        tokenizer: &Path,
    ) -> Result<Arc<TokenCounts>, WorkloadError> {
        let data = self.dataset(format, path)?;
        let tok = self.tokenizer(tokenizer)?;
        let mut map = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        let counts = map
            .entry((format, key(path), key(tokenizer)))
            .or_insert_with(|| Arc::new(TokenCounts::new(data, tok)));
        Ok(Arc::clone(counts))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn a_file_is_loaded_once_and_shared() {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        writeln!(file, "{{\"prompt\": \"one two\"}}").unwrap();
        let cache = Datasets::new();
        let a = cache.dataset(DatasetFormat::Jsonl, file.path()).unwrap();
        // Changing the file does not matter any more: the cached copy is served.
        writeln!(file, "not json").unwrap();
        let b = cache.dataset(DatasetFormat::Jsonl, file.path()).unwrap();
        assert!(Arc::ptr_eq(&a, &b));
        assert!(
            Datasets::new()
                .dataset(DatasetFormat::Jsonl, file.path())
                .is_err()
        );
    }
}
