//! Server logs: the tail shown when a server fails, and the incremental reader that watches
//! for a readiness line.

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

/// Lines of the log shown with a failure.
pub const TAIL_LINES: usize = 30;

/// The last lines of a server's log, shown under an error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogTail {
    /// The log file.
    pub path: PathBuf,
    /// Its last lines (at most [`TAIL_LINES`]).
    pub lines: Vec<String>,
}

impl LogTail {
    /// Reads the last [`TAIL_LINES`] lines of `path` (at most the last 64 KiB).
    pub fn read(path: &Path) -> Self {
        LogTail {
            path: path.to_path_buf(),
            lines: tail(path, TAIL_LINES)
                .iter()
                .map(|l| crate::secrets::scrub(l).into_owned())
                .collect(),
        }
    }
}

impl std::fmt::Display for LogTail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.lines.is_empty() {
            return write!(f, "\n  (the log {} is empty)", self.path.display());
        }
        write!(
            f,
            "\n  last {} lines of {}:",
            self.lines.len(),
            self.path.display()
        )?;
        for line in &self.lines {
            write!(f, "\n  | {line}")?;
        }
        Ok(())
    }
}

/// The last `n` lines of a file (lossy UTF-8), from its last 64 KiB.
pub fn tail(path: &Path, n: usize) -> Vec<String> {
    let Ok(mut file) = std::fs::File::open(path) else {
        return vec![];
    };
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let start = len.saturating_sub(64 * 1024);
    let mut bytes = Vec::new();
    if file.seek(SeekFrom::Start(start)).is_err() || file.read_to_end(&mut bytes).is_err() {
        return vec![];
    }
    let text = String::from_utf8_lossy(&bytes);
    let mut lines: Vec<&str> = text.lines().collect();
    if start > 0 && !lines.is_empty() {
        // The first line was cut by the 64 KiB window.
        lines.remove(0);
    }
    let from = lines.len().saturating_sub(n);
    lines[from..]
        .iter()
        .map(|l| l.trim_end().to_string())
        .collect()
}

/// Reads complete new lines of a growing log file.
#[derive(Debug)]
pub struct LineReader {
    path: PathBuf,
    offset: u64,
    partial: Vec<u8>,
}

impl LineReader {
    /// A reader from the start of `path`.
    pub fn new(path: &Path) -> Self {
        LineReader {
            path: path.to_path_buf(),
            offset: 0,
            partial: Vec::new(),
        }
    }

    /// The complete lines written since the last call.
    pub fn new_lines(&mut self) -> Vec<String> {
        let Ok(mut file) = std::fs::File::open(&self.path) else {
            return vec![];
        };
        let mut bytes = Vec::new();
        if file.seek(SeekFrom::Start(self.offset)).is_err() || file.read_to_end(&mut bytes).is_err()
        {
            return vec![];
        }
        self.offset += bytes.len() as u64;
        self.partial.extend_from_slice(&bytes);
        let Some(last_newline) = self.partial.iter().rposition(|b| *b == b'\n') else {
            return vec![];
        };
        let complete: Vec<u8> = self.partial.drain(..=last_newline).collect();
        String::from_utf8_lossy(&complete)
            .lines()
            .map(str::to_string)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn tail_keeps_the_last_lines_and_the_reader_only_complete_ones() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.log");
        let mut f = std::fs::File::create(&path).unwrap();
        for i in 0..40 {
            writeln!(f, "line {i}").unwrap();
        }
        let t = LogTail::read(&path);
        assert_eq!(t.lines.len(), TAIL_LINES);
        assert_eq!(t.lines[0], "line 10");
        assert_eq!(t.lines[29], "line 39");
        assert!(t.to_string().contains("\n  | line 39"));

        let mut r = LineReader::new(&path);
        assert_eq!(r.new_lines().len(), 40);
        write!(f, "half").unwrap();
        assert!(r.new_lines().is_empty());
        writeln!(f, " done").unwrap();
        assert_eq!(r.new_lines(), ["half done"]);
    }
}
