//! Errors of building a repetition's workload: unreadable or malformed datasets and traces, and
//! workload settings that cannot be honoured. Every message names the file and the line (JSONL)
//! or the array element (ShareGPT) and says what is wrong; tokenizer errors name the tokenizer.

use std::path::PathBuf;

/// Why a workload could not be built.
#[derive(Debug, thiserror::Error)]
pub enum WorkloadError {
    /// A dataset or trace file could not be opened or read.
    #[error("cannot read {what} `{}`: {source}", path.display())]
    Read {
        /// `dataset` or `trace`.
        what: &'static str,
        /// The resolved path.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A line of a JSONL dataset or trace is malformed.
    #[error("{}:{line}: {message}", path.display())]
    Line {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: u64,
        /// What is wrong.
        message: String,
    },
    /// An element of a ShareGPT array is malformed.
    #[error("{}: element {index}: {message}", path.display())]
    Element {
        /// The file.
        path: PathBuf,
        /// 0-based index in the top-level array.
        index: usize,
        /// What is wrong.
        message: String,
    },
    /// A whole-file problem: not JSON at all, or no usable entries.
    #[error("{}: {message}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The workload settings cannot be honoured (e.g. a shared prefix as long as the prompt).
    #[error("workload: {0}")]
    Invalid(String),
    /// The target's tokenizer could not be loaded, or cannot measure or write these prompts.
    #[error(transparent)]
    Tokenizer(#[from] super::tokenizer::TokenizerError),
}
