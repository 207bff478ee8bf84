//! The validation context: collects errors and warnings while the section validators walk the
//! raw tree, and offers typed readers (`string`, `int`, `duration`, `table`…) that report a
//! located error and return `None` instead of stopping at the first problem.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::doc::{Kind, Node, Origin, Table};
use super::duration;
use super::error::{LineIndex, Loc, Locs, ScenarioError, did_you_mean, join_key, list, make_error};

/// Collects problems found while validating one file.
pub(crate) struct Ctx<'a> {
    path: &'a Path,
    base_dir: PathBuf,
    index: LineIndex,
    sets: &'a [String],
    pub errors: Vec<ScenarioError>,
    pub warnings: Vec<String>,
}

/// Bounds of a number for [`Ctx::number`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct Range {
    pub min: f64,
    pub min_inclusive: bool,
    pub max: f64,
    pub max_inclusive: bool,
}

impl Range {
    /// `x > min`.
    pub const fn above(min: f64) -> Self {
        Range {
            min,
            min_inclusive: false,
            max: f64::INFINITY,
            max_inclusive: true,
        }
    }

    /// Sets an exclusive upper bound.
    pub const fn below(self, max: f64) -> Self {
        Range {
            max,
            max_inclusive: false,
            ..self
        }
    }

    /// Sets an inclusive upper bound.
    pub const fn up_to(self, max: f64) -> Self {
        Range {
            max,
            max_inclusive: true,
            ..self
        }
    }

    /// Sets an inclusive lower bound.
    pub const fn at_least(min: f64) -> Self {
        Range {
            min,
            min_inclusive: true,
            max: f64::INFINITY,
            max_inclusive: true,
        }
    }

    /// `None` when `x` is inside, else the sentence saying why not.
    pub fn check(&self, x: f64) -> Option<String> {
        let lo_ok = if self.min_inclusive {
            x >= self.min
        } else {
            x > self.min
        };
        let hi_ok = if self.max_inclusive {
            x <= self.max
        } else {
            x < self.max
        };
        if lo_ok && hi_ok {
            return None;
        }
        let lo = format!(
            "{} {}",
            if self.min_inclusive { ">=" } else { ">" },
            self.min
        );
        let hi = format!(
            "{} {}",
            if self.max_inclusive { "<=" } else { "<" },
            self.max
        );
        Some(if self.max.is_infinite() {
            format!("must be {lo}, got {x}")
        } else {
            format!("must be {lo} and {hi}, got {x}")
        })
    }
}

impl<'a> Ctx<'a> {
    /// A context for the file at `path` with this text and these `--set` overrides (as typed).
    pub fn new(path: &'a Path, text: &str, sets: &'a [String]) -> Self {
        let base_dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        Ctx {
            path,
            base_dir,
            index: LineIndex::new(text),
            sets,
            errors: vec![],
            warnings: vec![],
        }
    }

    /// The scenario file.
    pub fn path(&self) -> &Path {
        self.path
    }

    /// Location of an origin.
    pub fn loc(&self, origin: &Origin) -> Loc {
        match origin {
            Origin::File(span) => self.index.locate(span.start),
            Origin::Set(i) => Loc::Set(format!(
                "--set {}",
                self.sets.get(*i).map_or("", String::as_str)
            )),
        }
    }

    /// Records an error at `origin`.
    pub fn error(
        &mut self,
        origin: &Origin,
        key: &str,
        message: impl Into<String>,
        hint: Option<String>,
    ) {
        let e = make_error(self.path, self.loc(origin), key, message.into(), hint);
        self.errors.push(e);
    }

    /// Records where every key path of the tree under `node` is.
    pub fn locs(&self, node: &Node) -> Locs {
        let mut locs = Locs {
            path: self.path.to_path_buf(),
            ..Locs::default()
        };
        self.record(&mut locs, "", node);
        locs
    }

    fn record(&self, locs: &mut Locs, key: &str, node: &Node) {
        locs.map.insert(key.to_string(), self.loc(&node.origin));
        match &node.kind {
            Kind::Table(t) => t.entries.iter().for_each(|e| {
                self.record(locs, &join_key(key, &e.key), &e.value);
            }),
            Kind::Array(items) => items.iter().enumerate().for_each(|(i, n)| {
                self.record(locs, &format!("{key}[{i}]"), n);
            }),
            _ => {}
        }
    }

    fn wrong_type(&mut self, key: &str, node: &Node, want: &str, hint: Option<String>) {
        let message = format!("expected {want}, got {}", node.describe());
        self.error(&node.origin, key, message, hint);
    }

    /// A table whose keys must all be in `known` (unknown ones are reported with a
    /// suggestion); pass `&[]` for tables of user-chosen names.
    pub fn table<'n>(&mut self, key: &str, node: &'n Node, known: &[&str]) -> Option<&'n Table> {
        let Kind::Table(t) = &node.kind else {
            self.wrong_type(key, node, "a table", None);
            return None;
        };
        for e in &t.entries {
            if !known.is_empty() && !known.contains(&e.key.as_str()) {
                let close = did_you_mean(&e.key, known.iter().copied());
                let message = if close.is_empty() {
                    format!("unknown key (valid keys: {})", list(known))
                } else {
                    format!("unknown key{close}")
                };
                self.error(&e.key_origin, &join_key(key, &e.key), message, None);
            }
        }
        Some(t)
    }

    /// A required key of `table`; reports it missing (at the table) when absent.
    pub fn require<'n>(
        &mut self,
        key: &str,
        table: (&'n Table, &Origin),
        name: &str,
        hint: &str,
    ) -> Option<&'n Node> {
        let found = table.0.get(name);
        if found.is_none() {
            self.error(
                table.1,
                &join_key(key, name),
                "missing required key",
                Some(hint.into()),
            );
        }
        found
    }

    /// A string.
    pub fn string<'n>(&mut self, key: &str, node: &'n Node) -> Option<&'n str> {
        match &node.kind {
            Kind::Str(s) => Some(s),
            _ => {
                self.wrong_type(key, node, "a string", None);
                None
            }
        }
    }

    /// A boolean.
    pub fn bool(&mut self, key: &str, node: &Node) -> Option<bool> {
        match node.kind {
            Kind::Bool(b) => Some(b),
            _ => {
                self.wrong_type(key, node, "a boolean (true or false)", None);
                None
            }
        }
    }

    /// An array.
    pub fn array<'n>(&mut self, key: &str, node: &'n Node) -> Option<&'n [Node]> {
        match &node.kind {
            Kind::Array(a) => Some(a),
            _ => {
                self.wrong_type(key, node, "an array", None);
                None
            }
        }
    }

    /// An array of strings.
    pub fn strings(&mut self, key: &str, node: &Node) -> Option<Vec<(String, Origin)>> {
        let items = self.array(key, node)?;
        let mut out = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            out.push((
                self.string(&format!("{key}[{i}]"), item)?.to_string(),
                item.origin.clone(),
            ));
        }
        Some(out)
    }

    /// An integer in `[min, max]`.
    pub fn int(
        &mut self,
        key: &str,
        node: &Node,
        min: i64,
        max: i64,
        hint: Option<&str>,
    ) -> Option<i64> {
        let Kind::Int(i) = node.kind else {
            self.wrong_type(key, node, "an integer", hint.map(Into::into));
            return None;
        };
        if i < min || i > max {
            let message = if max == i64::MAX {
                format!("must be >= {min}, got {i}")
            } else {
                format!("must be >= {min} and <= {max}, got {i}")
            };
            self.error(&node.origin, key, message, hint.map(Into::into));
            return None;
        }
        Some(i)
    }

    /// A finite number (integer or float) inside `range`.
    pub fn number(
        &mut self,
        key: &str,
        node: &Node,
        range: Range,
        hint: Option<&str>,
    ) -> Option<f64> {
        let x = match node.kind {
            Kind::Int(i) => i as f64,
            Kind::Float(x) => x,
            _ => {
                self.wrong_type(key, node, "a number", hint.map(Into::into));
                return None;
            }
        };
        let problem = if x.is_finite() {
            range.check(x)
        } else {
            Some(format!("must be a finite number, got {x}"))
        };
        if let Some(message) = problem {
            self.error(&node.origin, key, message, hint.map(Into::into));
            return None;
        }
        Some(x)
    }

    /// A positive duration string (at most `max`).
    pub fn duration(&mut self, key: &str, node: &Node, max: Duration) -> Option<Duration> {
        let Kind::Str(text) = &node.kind else {
            let hint = Some(duration::SYNTAX.to_string());
            self.wrong_type(key, node, "a duration string", hint);
            return None;
        };
        let result = duration::parse(text)
            .map_err(|m| (m, Some(duration::SYNTAX.to_string())))
            .and_then(|d| check_duration(d, max).map_err(|m| (m, None)));
        match result {
            Ok(d) => Some(d),
            Err((message, hint)) => {
                self.error(&node.origin, key, message, hint);
                None
            }
        }
    }

    /// A path relative to the scenario file's directory; when `must_exist`, a missing file
    /// is reported.
    pub fn path_value(&mut self, key: &str, node: &Node, must_exist: bool) -> Option<PathBuf> {
        let text = self.string(key, node)?;
        let path = self.resolve_path(text);
        if must_exist && !path.exists() {
            let message = format!("file not found: {}", path.display());
            let hint = "relative paths are resolved from the scenario file's directory".to_string();
            self.error(&node.origin, key, message, Some(hint));
            return None;
        }
        Some(path)
    }

    /// `text` relative to the scenario file's directory (absolute paths are kept).
    pub fn resolve_path(&self, text: &str) -> PathBuf {
        self.base_dir.join(text)
    }

    /// One of a closed set of strings.
    pub fn choice<'c>(&mut self, key: &str, node: &Node, choices: &[&'c str]) -> Option<&'c str> {
        let text = self.string(key, node)?;
        if let Some(c) = choices.iter().find(|c| **c == text) {
            return Some(c);
        }
        let close = did_you_mean(text, choices.iter().copied());
        let message = format!("unknown value {text:?}{close}");
        self.error(
            &node.origin,
            key,
            message,
            Some(format!("one of {}", list(choices))),
        );
        None
    }
}

/// Duration range check shared by all duration-valued keys.
pub(crate) fn check_duration(d: Duration, max: Duration) -> Result<Duration, String> {
    if d.is_zero() {
        return Err("must be > 0".into());
    }
    if d > max {
        return Err(format!(
            "must be at most {}, got {}",
            duration::show(max),
            duration::show(d)
        ));
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_explain_themselves() {
        assert_eq!(
            Range::above(0.0).check(0.0),
            Some("must be > 0, got 0".into())
        );
        assert_eq!(
            Range::above(0.0).below(0.5).check(0.7),
            Some("must be > 0 and < 0.5, got 0.7".into())
        );
        assert_eq!(Range::at_least(0.0).below(1.0).check(0.0), None);
        assert_eq!(Range::above(0.0).up_to(1.0).check(1.0), None);
    }
}
