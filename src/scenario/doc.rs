//! The raw document: an owned TOML tree where every key and value remembers where it came
//! from (a byte span of the file, or a `--set` override). Validation walks this tree itself
//! instead of deserializing with serde, so it can report every problem, not just the first.

use std::ops::Range;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

/// Where a key or value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Origin {
    /// A byte range of the scenario file.
    File(Range<usize>),
    /// The `--set` override with this index.
    Set(usize),
}

/// A value and its origin.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Node {
    pub origin: Origin,
    pub kind: Kind,
}

/// The kinds of TOML values.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Kind {
    Str(String),
    Int(i64),
    /// An integer literal that does not fit in 64 bits (kept as written).
    BigInt(String),
    Float(f64),
    Bool(bool),
    Datetime(String),
    Array(Vec<Node>),
    Table(Table),
}

/// A table in source order.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct Table {
    pub entries: Vec<Entry>,
}

/// One `key = value` of a table.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Entry {
    pub key: String,
    pub key_origin: Origin,
    pub value: Node,
}

impl Table {
    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<&Node> {
        self.entries.iter().find(|e| e.key == key).map(|e| &e.value)
    }

    /// The mutable value of `key`.
    pub fn get_mut(&mut self, key: &str) -> Option<&mut Node> {
        self.entries
            .iter_mut()
            .find(|e| e.key == key)
            .map(|e| &mut e.value)
    }

    /// Sets `key`, replacing any previous value in place (keeping its position).
    pub fn set(&mut self, key: &str, key_origin: Origin, value: Node) {
        match self.entries.iter_mut().find(|e| e.key == key) {
            Some(e) => {
                e.key_origin = key_origin;
                e.value = value;
            }
            None => self.entries.push(Entry {
                key: key.to_string(),
                key_origin,
                value,
            }),
        }
    }

    /// Removes `key` if present.
    pub fn remove(&mut self, key: &str) {
        self.entries.retain(|e| e.key != key);
    }
}

impl Node {
    /// A node of the given kind.
    pub fn new(origin: Origin, kind: Kind) -> Self {
        Node { origin, kind }
    }

    /// The table inside, if this is one.
    pub fn as_table(&self) -> Option<&Table> {
        match &self.kind {
            Kind::Table(t) => Some(t),
            _ => None,
        }
    }

    /// "a string", "an integer", … for messages.
    pub fn type_name(&self) -> &'static str {
        match self.kind {
            Kind::Str(_) => "a string",
            Kind::Int(_) => "an integer",
            Kind::BigInt(_) => "an integer too large for 64 bits",
            Kind::Float(_) => "a float",
            Kind::Bool(_) => "a boolean",
            Kind::Datetime(_) => "a date-time",
            Kind::Array(_) => "an array",
            Kind::Table(_) => "a table",
        }
    }

    /// The type and, for scalars, the value: `a string ("ten")`, `an integer (0)`.
    pub fn describe(&self) -> String {
        match &self.kind {
            Kind::Str(s) => format!("a string ({s:?})"),
            Kind::Int(i) => format!("an integer ({i})"),
            Kind::Float(x) => format!("a float ({x})"),
            Kind::Bool(b) => format!("a boolean ({b})"),
            Kind::BigInt(s) | Kind::Datetime(s) => format!("{} ({s})", self.type_name()),
            Kind::Array(_) | Kind::Table(_) => self.type_name().to_string(),
        }
    }
}

/// Parses a whole document. Returns the tree, or toml's syntax errors as (message, span).
pub(crate) fn parse_document(text: &str) -> Result<Node, Vec<(String, Range<usize>)>> {
    let (table, errors) = DeTable::parse_recoverable(text);
    if !errors.is_empty() {
        return Err(errors
            .iter()
            .map(|e| (e.message().to_string(), e.span().unwrap_or(0..0)))
            .collect());
    }
    let span = table.span();
    let kind = Kind::Table(convert_table(table.into_inner(), &|s| Origin::File(s)));
    Ok(Node::new(Origin::File(span.start..span.start), kind))
}

/// Parses a lone TOML value (`[5, 10]`, `"x"`, `3`); every node gets `origin`.
pub(crate) fn parse_value(text: &str, origin: Origin) -> Result<Node, String> {
    let value = DeValue::parse(text).map_err(|e| e.message().to_string())?;
    Ok(convert(value, &|_| origin.clone()))
}

fn convert_table(table: DeTable<'_>, origin: &dyn Fn(Range<usize>) -> Origin) -> Table {
    let entries = table
        .into_iter()
        .map(|(k, v)| Entry {
            key: k.get_ref().to_string(),
            key_origin: origin(k.span()),
            value: convert(v, origin),
        })
        .collect();
    Table { entries }
}

fn convert(value: Spanned<DeValue<'_>>, origin: &dyn Fn(Range<usize>) -> Origin) -> Node {
    let at = origin(value.span());
    let kind = match value.into_inner() {
        DeValue::String(s) => Kind::Str(s.into_owned()),
        DeValue::Integer(i) => match i64::from_str_radix(i.as_str(), i.radix()) {
            Ok(v) => Kind::Int(v),
            Err(_) => Kind::BigInt(i.to_string()),
        },
        DeValue::Float(f) => Kind::Float(f.as_str().parse().unwrap_or(f64::NAN)),
        DeValue::Boolean(b) => Kind::Bool(b),
        DeValue::Datetime(d) => Kind::Datetime(d.to_string()),
        DeValue::Array(items) => {
            Kind::Array(items.into_iter().map(|v| convert(v, origin)).collect())
        }
        DeValue::Table(t) => Kind::Table(convert_table(t, origin)),
    };
    Node::new(at, kind)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_and_kinds_survive_conversion() {
        let text = "[a]\nx = 0x10\ny = [1.5, \"s\"]\nz = nan\n";
        let doc = parse_document(text).unwrap();
        let a = doc
            .as_table()
            .unwrap()
            .get("a")
            .unwrap()
            .as_table()
            .unwrap();
        assert_eq!(a.get("x").unwrap().kind, Kind::Int(16));
        let y = a.get("y").unwrap();
        assert_eq!(y.origin, Origin::File(17..27));
        assert!(matches!(&y.kind, Kind::Array(v) if v[1].kind == Kind::Str("s".into())));
        assert!(matches!(a.get("z").unwrap().kind, Kind::Float(x) if x.is_nan()));
    }

    #[test]
    fn syntax_errors_carry_a_span() {
        let errs = parse_document("a = 1\nb = \n").unwrap_err();
        assert_eq!(errs[0].1, 10..10);
    }
}
