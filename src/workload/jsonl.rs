//! Shared reading of JSON files: whole-file reads with the OS error named, non-blank JSONL lines
//! numbered from 1, and serde_json messages without their "line 1" suffix (a JSONL line is parsed
//! alone, so only the column means anything).

use std::path::Path;

use super::error::WorkloadError;

/// Reads `path` as UTF-8 text; `what` (`dataset`, `trace`) names the file in errors.
pub(crate) fn read(path: &Path, what: &'static str) -> Result<String, WorkloadError> {
    std::fs::read_to_string(path).map_err(|source| WorkloadError::Read {
        what,
        path: path.to_path_buf(),
        source,
    })
}

/// The non-blank lines of `text` with their 1-based line numbers.
pub(crate) fn lines(text: &str) -> impl Iterator<Item = (u64, &str)> {
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(n, line)| (n as u64 + 1, line))
}

/// A serde_json error as "what is wrong (column c)", for a line-level error.
pub(crate) fn message(err: &serde_json::Error) -> String {
    let text = err.to_string();
    let suffix = format!(" at line {} column {}", err.line(), err.column());
    match text.strip_suffix(&suffix) {
        Some(msg) => format!("{msg} (column {})", err.column()),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blank_lines_are_skipped_but_counted() {
        let got: Vec<_> = lines("a\n\n  \nb\n").collect();
        assert_eq!(got, vec![(1, "a"), (4, "b")]);
    }

    #[test]
    fn message_keeps_the_column_only() {
        let err = serde_json::from_str::<serde_json::Value>("{\"a\": }").unwrap_err();
        let msg = message(&err);
        assert!(msg.ends_with("(column 7)"), "{msg}");
        assert!(!msg.contains("line"), "{msg}");
    }
}
