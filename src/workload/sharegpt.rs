//! ShareGPT parsing: a JSON array of `{"conversations": [{"from": "human", "value": "…"}, …]}`.
//! The first `human` (or `user`) turn is the prompt. Conversations without one, or whose first
//! one is empty, are skipped and counted (the public ShareGPT dump has such entries); anything
//! structurally wrong up to that turn is an error naming the element. The array is read one
//! element at a time, so a large file never exists as one JSON tree in memory.

use std::cell::RefCell;
use std::fmt;
use std::path::Path;

use serde::de::{self, Deserializer as _, SeqAccess, Visitor};
use serde_json::Value;

use super::dataset::Entry;
use super::error::WorkloadError;
use super::words;

/// Entries of a ShareGPT file, and how many elements were skipped.
pub(crate) fn parse(path: &Path, text: &str) -> Result<(Vec<Entry>, usize), WorkloadError> {
    parse_elements(path, text, entry)
}

/// What one element of the array becomes: `Ok(None)` skips it, `Err` names what is wrong.
pub(crate) type ElementFn<T> = fn(&Value) -> Result<Option<T>, String>;

/// Every element of a ShareGPT array turned into a `T` by `element`, and how many were skipped;
/// the first element `element` refuses is reported with its index.
pub(crate) fn parse_elements<T>(
    path: &Path,
    text: &str,
    element: ElementFn<T>,
) -> Result<(Vec<T>, usize), WorkloadError> {
    let problem = RefCell::new(None);
    let mut de = serde_json::Deserializer::from_str(text);
    let parsed = de
        .deserialize_seq(Elements {
            problem: &problem,
            element,
        })
        .and_then(|v| de.end().map(|()| v));
    parsed.map_err(|err| match problem.into_inner() {
        Some((index, message)) => WorkloadError::Element {
            path: path.to_path_buf(),
            index,
            message,
        },
        None => WorkloadError::File {
            path: path.to_path_buf(),
            message: format!("not a ShareGPT JSON array: {err}"),
        },
    })
}

struct Elements<'a, T> {
    problem: &'a RefCell<Option<(usize, String)>>,
    element: ElementFn<T>,
}

impl<'de, T> Visitor<'de> for Elements<'_, T> {
    type Value = (Vec<T>, usize);

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of conversations")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut entries = Vec::new();
        let mut skipped = 0;
        let mut index = 0;
        while let Some(value) = seq.next_element::<Value>()? {
            match (self.element)(&value) {
                Ok(Some(e)) => entries.push(e),
                Ok(None) => skipped += 1,
                Err(message) => {
                    *self.problem.borrow_mut() = Some((index, message));
                    return Err(de::Error::custom("bad element"));
                }
            }
            index += 1;
        }
        Ok((entries, skipped))
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The `conversations` array of one element.
pub(crate) fn messages(element: &Value) -> Result<&[Value], String> {
    let Value::Object(map) = element else {
        return Err(format!("expected an object, found {}", kind(element)));
    };
    match map.get("conversations") {
        Some(Value::Array(turns)) => Ok(turns),
        Some(other) => Err(format!(
            "`conversations` must be an array, found {}",
            kind(other)
        )),
        None => Err("missing `conversations`".into()),
    }
}

/// `(from, value)` of message `j` of a `conversations` array.
pub(crate) fn message(j: usize, turn: &Value) -> Result<(&str, &str), String> {
    let field = |name: &str| match turn.get(name) {
        Some(Value::String(s)) => Ok(s.as_str()),
        Some(other) => Err(format!(
            "conversations[{j}].{name} must be a string, found {}",
            kind(other)
        )),
        None => Err(format!("conversations[{j}] has no `{name}`")),
    };
    if !turn.is_object() {
        return Err(format!(
            "conversations[{j}] must be an object, found {}",
            kind(turn)
        ));
    }
    Ok((field("from")?, field("value")?))
}

/// The prompt of one element: `Ok(None)` when it has no usable human turn.
fn entry(element: &Value) -> Result<Option<Entry>, String> {
    for (j, turn) in messages(element)?.iter().enumerate() {
        let (from, text) = message(j, turn)?;
        if from == "human" || from == "user" {
            if text.trim().is_empty() {
                return Ok(None);
            }
            return Ok(Some(Entry {
                words: words::count(text),
                prompt: text.to_owned(),
                output_tokens: None,
            }));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_str(text: &str) -> Result<(Vec<Entry>, usize), WorkloadError> {
        parse(Path::new("sg.json"), text)
    }

    #[test]
    fn first_human_turn_is_the_prompt_and_unusable_elements_are_skipped() {
        let (entries, skipped) = parse_str(
            r#"[
              {"id": "a", "conversations": [{"from": "system", "value": "be nice"},
                {"from": "human", "value": "hello big world"}, {"from": "gpt", "value": "hi"}]},
              {"conversations": []},
              {"conversations": [{"from": "gpt", "value": "only me"}]},
              {"conversations": [{"from": "human", "value": "  "}]},
              {"conversations": [{"from": "user", "value": "two words"}]}
            ]"#,
        )
        .unwrap();
        assert_eq!(skipped, 3);
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0].prompt, "hello big world");
        assert_eq!(entries[0].words, 3);
        assert_eq!(entries[1].words, 2);
    }

    #[test]
    fn structural_problems_name_the_element() {
        let cases = [
            (
                r#"[{"conversations": []}, 7]"#,
                "element 1: expected an object, found a number",
            ),
            (r#"[{"turns": []}]"#, "element 0: missing `conversations`"),
            (
                r#"[{"conversations": [{"from": "human", "value": 3}]}]"#,
                "element 0: conversations[0].value must be a string, found a number",
            ),
        ];
        for (text, want) in cases {
            let msg = parse_str(text).unwrap_err().to_string();
            assert_eq!(msg, format!("sg.json: {want}"));
        }
        let msg = parse_str(r#"{"conversations": []}"#)
            .unwrap_err()
            .to_string();
        assert!(
            msg.starts_with("sg.json: not a ShareGPT JSON array"),
            "{msg}"
        );
        assert!(parse_str("[] x").is_err());
    }
}
