//! Shared reading of JSON files: whole-file reads with the OS error named, non-blank JSONL lines
//! numbered from 1, and serde_json messages without their "line 1" suffix (a JSONL line is parsed
//! alone, so only the column means anything).

use std::path::Path;

use super::error::WorkloadError;

/// Reads `path` as UTF-8 text; `what` (`dataset`, `trace`) names the file in errors. Bytes
/// that are not UTF-8 are reported at their line (the OS error alone names no place).
pub(crate) fn read(path: &Path, what: &'static str) -> Result<String, WorkloadError> {
    let bytes = std::fs::read(path).map_err(|source| WorkloadError::Read {
        what,
        path: path.to_path_buf(),
        source,
    })?;
    String::from_utf8(bytes).map_err(|e| {
        let valid = &e.as_bytes()[..e.utf8_error().valid_up_to()];
        let line_start = valid.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        WorkloadError::Line {
            path: path.to_path_buf(),
            line: valid.iter().filter(|&&b| b == b'\n').count() as u64 + 1,
            message: format!(
                "not valid UTF-8 (byte {} of the line); {what} files must be UTF-8 text",
                valid.len() - line_start + 1
            ),
        }
    })
}

/// The non-blank lines of `text` with their 1-based line numbers.
pub(crate) fn lines(text: &str) -> impl Iterator<Item = (u64, &str)> {
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(n, line)| (n as u64 + 1, line))
}

/// A serde_json error as "what is wrong (column c)", for a line-level error; a line that is
/// not JSON at all says so first (serde's "expected value" alone reads like a schema problem).
pub(crate) fn message(err: &serde_json::Error) -> String {
    let text = err.to_string();
    let suffix = format!(" at line {} column {}", err.line(), err.column());
    let text = match text.strip_suffix(&suffix) {
        Some(msg) => format!("{msg} (column {})", err.column()),
        None => text,
    };
    if err.is_syntax() || err.is_eof() {
        format!("not valid JSON: {text}")
    } else {
        text
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
        assert_eq!(message(&err), "not valid JSON: expected value (column 7)");
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        struct NeedsPrompt {
            prompt: String,
        }
        let err = serde_json::from_str::<NeedsPrompt>("{\"p\": 1}").unwrap_err();
        assert_eq!(message(&err), "missing field `prompt` (column 8)");
    }

    #[test]
    fn bytes_that_are_not_utf8_are_reported_at_their_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d.jsonl");
        std::fs::write(&path, b"{\"prompt\": \"ok\"}\n{\"prompt\": \"caf\xe9\"}\n").unwrap();
        let err = read(&path, "dataset").unwrap_err().to_string();
        assert_eq!(
            err,
            format!(
                "{}:2: not valid UTF-8 (byte 16 of the line); dataset files must be UTF-8 text",
                path.display()
            )
        );
    }
}
