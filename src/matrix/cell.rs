//! A cell of the matrix and its id: a stable, filesystem-safe slug of the swept variables'
//! values (`request_rate-10_tp-4`), used for result files and report rows.

use crate::scenario::{Value, Vars};
use crate::seed::fnv1a64;

/// Longest id kept verbatim; longer ones are cut and suffixed with a hash.
const MAX_ID_LEN: usize = 150;

/// One cell of the experiment matrix.
#[derive(Debug, Clone, PartialEq)]
pub struct Cell {
    /// Position in the expanded matrix (after exclusions), from 0.
    pub index: usize,
    /// Stable id (see [`CellId`]).
    pub id: CellId,
    /// Every variable of the cell: fixed values and this cell's swept values.
    pub vars: Vars,
    /// Only the variables declared in `[vars.sweep]` or `[vars.linked.*]`, with this
    /// cell's values (what distinguishes it from the other cells).
    pub swept: Vars,
}

/// A cell id: `name-value` pairs of the swept variables sorted by name, joined by `_`
/// (`request_rate-10_tp-4`); `default` when nothing is swept.
///
/// Values keep only `[A-Za-z0-9.+-]`; any other character (including `_`) is replaced and
/// a hash of the exact value appended, so distinct values never share an id. An id depends
/// only on its own cell's values: adding a level to a sweep leaves other ids unchanged.
#[derive(
    Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(transparent)]
pub struct CellId(String);

impl CellId {
    /// The id of a cell with these swept variables.
    pub fn new(swept: &Vars) -> Self {
        if swept.is_empty() {
            return CellId("default".into());
        }
        let id = swept
            .iter()
            .map(|(k, v)| format!("{k}-{}", slug(v)))
            .collect::<Vec<_>>()
            .join("_");
        if id.len() <= MAX_ID_LEN {
            return CellId(id);
        }
        let cut = id
            .char_indices()
            .take_while(|(i, _)| *i < MAX_ID_LEN - 10)
            .last()
            .map_or(0, |(i, c)| i + c.len_utf8());
        CellId(format!(
            "{}-{:08x}",
            &id[..cut],
            fnv1a64(id.as_bytes()) as u32
        ))
    }

    /// The id as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for CellId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

fn slug(v: &Value) -> String {
    let raw = v.to_string();
    let keep = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '+' | '-');
    if !raw.is_empty() && raw.chars().all(keep) {
        return raw;
    }
    let mut out = String::new();
    for c in raw.chars().take(40) {
        let c = if keep(c) { c } else { '-' };
        if !(c == '-' && out.ends_with('-')) {
            out.push(c);
        }
    }
    let out = out.trim_matches('-');
    let hash = fnv1a64(raw.as_bytes()) as u32;
    if out.is_empty() {
        format!("{hash:08x}")
    } else {
        format!("{out}-{hash:08x}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, Value)]) -> Vars {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect()
    }

    #[test]
    fn ids_sort_by_name_and_read_naturally() {
        let id = CellId::new(&vars(&[
            ("tp", Value::Int(4)),
            ("request_rate", Value::Int(10)),
        ]));
        assert_eq!(id.as_str(), "request_rate-10_tp-4");
        assert_eq!(CellId::new(&Vars::new()).as_str(), "default");
        assert_eq!(
            CellId::new(&vars(&[("x", Value::Float(0.5))])).as_str(),
            "x-0.5"
        );
    }

    #[test]
    fn unsafe_characters_are_replaced_and_hashed() {
        let a = CellId::new(&vars(&[("model", Value::Str("org/llama_3".into()))]));
        let b = CellId::new(&vars(&[("model", Value::Str("org-llama-3".into()))]));
        assert!(a.as_str().starts_with("model-org-llama-3-"), "{a}");
        assert_eq!(b.as_str(), "model-org-llama-3");
        assert_ne!(a, b);
        assert!(!a.as_str().contains('/'));
    }

    proptest::proptest! {
        /// Issue 6: whatever a swept value is (`..`, `/etc/passwd`, NUL, emoji), its cell id
        /// is one plain folder name, so `records/<cell-id>/` stays inside the run directory.
        #[test]
        fn ids_are_one_plain_path_component(
            value in proptest::prop_oneof![
                proptest::prelude::Just("..".to_string()),
                proptest::prelude::Just("/etc/passwd".to_string()),
                proptest::prelude::Just("../../x".to_string()),
                proptest::prelude::Just(".".to_string()),
                proptest::prelude::Just(String::new()),
                proptest::prelude::any::<String>(),
            ],
            name in "[a-z_][a-z0-9_]{0,10}",
        ) {
            let id = CellId::new(&vars(&[(name.as_str(), Value::Str(value))]));
            let mut parts = std::path::Path::new(id.as_str()).components();
            proptest::prop_assert!(matches!(
                (parts.next(), parts.next()),
                (Some(std::path::Component::Normal(_)), None)
            ), "{}", id);
            proptest::prop_assert!(id
                .as_str()
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "._+-".contains(c)), "{}", id);
        }
    }

    #[test]
    fn long_ids_are_cut_with_a_hash() {
        let long = vars(&[
            ("prompt", Value::Str("a".repeat(300))),
            ("x", Value::Int(1)),
        ]);
        let id = CellId::new(&long);
        assert!(id.as_str().len() <= MAX_ID_LEN, "{}", id.as_str().len());
        assert_ne!(
            id,
            CellId::new(&vars(&[
                ("prompt", Value::Str("a".repeat(300))),
                ("x", Value::Int(2))
            ]))
        );
    }
}
