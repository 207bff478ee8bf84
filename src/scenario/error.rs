//! Errors of scenario loading. Each one says where (file, line and column, or the `--set`
//! override it came from), which key (`vars.sweep.request_rate[2]`), what is wrong and how to
//! fix it. [`Locs`] remembers where every key of a loaded file was, so errors found after
//! validation (matrix expansion, resolving a cell) can still point at the line.

use std::collections::BTreeMap;
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};

/// One problem in a scenario file.
///
/// Displays as `path:line:col: key: message (hint: …)`, or `path: --set k=v: key: message`
/// when the offending value came from a command-line override.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ScenarioError {
    /// The scenario file.
    pub path: PathBuf,
    /// 1-based line of the offending key or value, when known.
    pub line: Option<NonZeroU32>,
    /// 1-based column (in characters), when known.
    pub col: Option<NonZeroU32>,
    /// The command-line argument the value came from instead of a line (`--set k=v`,
    /// `--target URL`).
    pub arg: Option<Box<str>>,
    /// Dotted key path (`workload.arrival`, `vars.sweep.request_rate[1]`); empty for
    /// whole-file problems (malformed TOML, unreadable file).
    pub key: String,
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    pub hint: Option<String>,
}

impl std::fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.path.display())?;
        match (&self.arg, self.line, self.col) {
            (Some(arg), _, _) => write!(f, ": {arg}")?,
            (None, Some(line), Some(col)) => write!(f, ":{line}:{col}")?,
            (None, Some(line), None) => write!(f, ":{line}")?,
            _ => {}
        }
        f.write_str(": ")?;
        if !self.key.is_empty() {
            write!(f, "{}: ", self.key)?;
        }
        f.write_str(&self.message)?;
        if let Some(hint) = &self.hint {
            write!(f, " (hint: {hint})")?;
        }
        Ok(())
    }
}

/// Every problem found in one scenario file, in file order where possible.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ScenarioErrors(pub Vec<ScenarioError>);

impl std::fmt::Display for ScenarioErrors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

/// Where a key or value came from.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) enum Loc {
    /// Unknown (a whole-file problem, or a value made up by code).
    #[default]
    None,
    /// A 1-based line and column in the file.
    At { line: u32, col: u32 },
    /// A command-line argument, as typed (`--set k=v`).
    Set(String),
}

/// Where each key path of a loaded scenario was written.
#[derive(Debug, Clone, Default)]
pub(crate) struct Locs {
    pub path: PathBuf,
    pub map: BTreeMap<String, Loc>,
}

impl Locs {
    /// An error at `key`, or at its nearest ancestor with a known location.
    pub fn error(
        &self,
        key: &str,
        message: impl Into<String>,
        hint: Option<String>,
    ) -> ScenarioError {
        let mut probe = key;
        let loc = loop {
            if let Some(loc) = self.map.get(probe) {
                break loc.clone();
            }
            match parent_key(probe) {
                Some(p) => probe = p,
                None if !probe.is_empty() => probe = "",
                None => break Loc::None,
            }
        };
        make_error(&self.path, loc, key, message.into(), hint)
    }

    /// The key path where variable `name` was declared (`vars.sweep.tp`), or `vars`.
    pub fn var_key(&self, name: &str) -> String {
        let direct = [join_key("vars.fixed", name), join_key("vars.sweep", name)];
        let suffix = format!(".{}", join_key("", name));
        let linked = self.map.keys().find(|k| {
            k.starts_with("vars.linked.") && k.ends_with(&suffix) && k.matches('.').count() == 3
        });
        direct
            .into_iter()
            .chain(linked.cloned())
            .find(|k| self.map.contains_key(k))
            .unwrap_or_else(|| "vars".into())
    }
}

/// Builds an error at a location.
pub(crate) fn make_error(
    path: &Path,
    loc: Loc,
    key: &str,
    message: String,
    hint: Option<String>,
) -> ScenarioError {
    let (line, col, arg) = match loc {
        Loc::None => (None, None, None),
        Loc::At { line, col } => (NonZeroU32::new(line), NonZeroU32::new(col), None),
        Loc::Set(s) => (None, None, Some(s.into_boxed_str())),
    };
    ScenarioError {
        path: path.to_path_buf(),
        line,
        col,
        arg,
        key: key.to_string(),
        message,
        hint,
    }
}

/// Appends one segment to a dotted key path, quoting it the TOML way when it is not bare.
pub(crate) fn join_key(parent: &str, seg: &str) -> String {
    let bare = !seg.is_empty()
        && seg
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    let seg = if bare {
        seg.to_string()
    } else {
        format!("{seg:?}")
    };
    if parent.is_empty() {
        seg
    } else {
        format!("{parent}.{seg}")
    }
}

/// The key path one level up (`a.b[2]` → `a.b`, `a."x.y"` → `a`), `None` at the top.
pub(crate) fn parent_key(key: &str) -> Option<&str> {
    if key.ends_with(']') {
        return key.rfind('[').map(|i| &key[..i]);
    }
    let mut in_quotes = false;
    let mut last_dot = None;
    for (i, c) in key.char_indices() {
        match c {
            '"' => in_quotes = !in_quotes,
            '.' if !in_quotes => last_dot = Some(i),
            _ => {}
        }
    }
    last_dot.map(|i| &key[..i])
}

/// The candidate closest to `word` when it is close enough to be a likely typo.
pub(crate) fn closest<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let word_l = word.to_lowercase();
    let limit = (word.chars().count() / 3).max(1);
    candidates
        .into_iter()
        .map(|c| (strsim::damerau_levenshtein(&word_l, &c.to_lowercase()), c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// `` (did you mean `x`?) `` when a candidate is close, otherwise nothing.
pub(crate) fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> String {
    closest(word, candidates)
        .map(|c| format!(" (did you mean `{c}`?)"))
        .unwrap_or_default()
}

/// A list of names as `` `a`, `b`, `c` ``.
pub(crate) fn list(names: impl IntoIterator<Item = impl AsRef<str>>) -> String {
    names
        .into_iter()
        .map(|n| format!("`{}`", n.as_ref()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Converts byte offsets of a text into 1-based line and column (columns count characters).
#[derive(Debug, Clone)]
pub(crate) struct LineIndex {
    starts: Vec<usize>,
    text: String,
}

impl LineIndex {
    /// Indexes `text`.
    pub fn new(text: &str) -> Self {
        let mut starts = vec![0];
        starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        LineIndex {
            starts,
            text: text.to_string(),
        }
    }

    /// Line and column of a byte offset.
    pub fn locate(&self, offset: usize) -> Loc {
        let offset = offset.min(self.text.len());
        let line = self.starts.partition_point(|&s| s <= offset) - 1;
        let start = self.starts[line];
        let col = self
            .text
            .get(start..offset)
            .map_or(offset - start, |s| s.chars().count());
        Loc::At {
            line: line as u32 + 1,
            col: col as u32 + 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_index_counts_lines_and_characters() {
        let idx = LineIndex::new("ab\nµc = 1\n");
        assert_eq!(idx.locate(0), Loc::At { line: 1, col: 1 });
        assert_eq!(idx.locate(3), Loc::At { line: 2, col: 1 });
        // `µ` is two bytes but one column.
        assert_eq!(idx.locate(5), Loc::At { line: 2, col: 2 });
    }

    #[test]
    fn key_paths_join_and_split() {
        assert_eq!(join_key("checks", "ttft.p99"), "checks.\"ttft.p99\"");
        assert_eq!(join_key("", "vars"), "vars");
        assert_eq!(parent_key("checks.\"ttft.p99\""), Some("checks"));
        assert_eq!(parent_key("vars.sweep.x[2]"), Some("vars.sweep.x"));
        assert_eq!(parent_key("vars"), None);
    }

    #[test]
    fn typos_get_suggestions_and_strangers_do_not() {
        assert_eq!(closest("arival", ["arrival", "prompts"]), Some("arrival"));
        assert_eq!(closest("Arrival", ["arrival"]), Some("arrival"));
        assert_eq!(closest("xyz", ["arrival", "prompts"]), None);
    }

    #[test]
    fn display_has_location_key_message_and_hint() {
        let e = make_error(
            Path::new("s/x.toml"),
            Loc::At { line: 7, col: 16 },
            "vars.sweep.request_rate[1]",
            "must be > 0, got 0".into(),
            Some("use a positive rate".into()),
        );
        assert_eq!(
            e.to_string(),
            "s/x.toml:7:16: vars.sweep.request_rate[1]: must be > 0, got 0 (hint: use a positive rate)"
        );
        let e = make_error(
            Path::new("x.toml"),
            Loc::Set("--set a.b=1".into()),
            "a.b",
            "bad".into(),
            None,
        );
        assert_eq!(e.to_string(), "x.toml: --set a.b=1: a.b: bad");
    }
}
