//! `--set key.path=value` overrides, applied to the raw document before validation so every
//! check covers them; errors about overridden values point at the `--set` instead of a line.
//!
//! Precedence: a later `--set` beats an earlier one, and any `--set` beats the file. Setting
//! a variable in one of `vars.fixed`, `vars.sweep` or `vars.linked.<group>` removes it from
//! the other two, so `--set vars.fixed.request_rate=5` pins a swept variable.

use super::doc::{self, Kind, Node, Origin, Table};

/// One `--set key.path=value` override.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Override {
    /// Dotted key path; quote segments containing dots: `analysis.thresholds."ttft.p99"`.
    pub key_path: String,
    /// The value as typed: parsed as a TOML value (`[5,10]`, `3`, `true`, `"x"`), or taken
    /// as a plain string when it is not one (`h100-sxm`, `30s`).
    pub value_text: String,
}

/// A `--set` argument that cannot be understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "--set {text}: {reason} (hint: write --set key.path=value, e.g. --set vars.sweep.request_rate=[5,10])"
)]
pub struct OverrideError {
    /// The argument as typed.
    pub text: String,
    /// What is wrong with it.
    pub reason: String,
}

impl Override {
    /// Parses `key.path=value`.
    pub fn parse(text: &str) -> Result<Self, OverrideError> {
        let fail = |reason: &str| OverrideError {
            text: text.to_string(),
            reason: reason.to_string(),
        };
        let (key, value) = text.split_once('=').ok_or_else(|| fail("missing `=`"))?;
        let o = Override {
            key_path: key.trim().to_string(),
            value_text: value.trim().to_string(),
        };
        o.segments().map_err(|r| fail(&r))?;
        Ok(o)
    }

    /// The override as typed, `key=value`.
    pub fn text(&self) -> String {
        format!("{}={}", self.key_path, self.value_text)
    }

    /// The key path split into segments (quotes removed).
    fn segments(&self) -> Result<Vec<String>, String> {
        let mut out = vec![];
        let mut rest = self.key_path.as_str();
        loop {
            let (seg, tail) = if let Some(q) = rest.strip_prefix('"') {
                let end = q.find('"').ok_or("unterminated quote in the key path")?;
                (q[..end].to_string(), &q[end + 1..])
            } else {
                let end = rest.find('.').unwrap_or(rest.len());
                let seg = &rest[..end];
                let bare = seg
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
                if seg.is_empty() || !bare {
                    return Err(format!("bad key path `{}`", self.key_path));
                }
                (seg.to_string(), &rest[end..])
            };
            out.push(seg);
            match tail.strip_prefix('.') {
                Some(t) => rest = t,
                None if tail.is_empty() => return Ok(out),
                None => return Err(format!("bad key path `{}`", self.key_path)),
            }
        }
    }

    /// The value as a raw node attributed to override number `index`.
    fn value(&self, index: usize) -> Result<Node, String> {
        let origin = Origin::Set(index);
        match doc::parse_value(&self.value_text, origin.clone()) {
            Ok(node) => Ok(node),
            Err(e) if self.value_text.starts_with(['[', '{', '"', '\'']) => {
                Err(format!("invalid TOML value: {e}"))
            }
            Err(_) => Ok(Node::new(origin, Kind::Str(self.value_text.clone()))),
        }
    }
}

/// Applies override number `index` to the document; the error says what blocked it.
pub(crate) fn apply(root: &mut Node, o: &Override, index: usize) -> Result<(), String> {
    let segs = o.segments()?;
    let value = o.value(index)?;
    if segs.first().map(String::as_str) == Some("vars") && segs.len() >= 3 {
        let name = segs.last().map(String::as_str).unwrap_or_default();
        let own_group = (segs[1] == "linked").then(|| segs[2].as_str());
        unset_variable(root, name, &segs[1], own_group);
    }
    let mut table = match &mut root.kind {
        Kind::Table(t) => t,
        _ => return Err("the document is not a table".into()),
    };
    let (last, parents) = segs.split_last().ok_or("empty key path")?;
    for (i, seg) in parents.iter().enumerate() {
        if table.get(seg).is_none() {
            let empty = Node::new(Origin::Set(index), Kind::Table(Table::default()));
            table.set(seg, Origin::Set(index), empty);
        }
        let node = table.get_mut(seg).ok_or("missing table")?;
        let type_name = node.type_name();
        table = match &mut node.kind {
            Kind::Table(t) => t,
            _ => {
                return Err(format!(
                    "`{}` is {type_name}, not a table",
                    segs[..=i].join(".")
                ));
            }
        };
    }
    table.set(last, Origin::Set(index), value);
    Ok(())
}

/// Removes variable `name` from the var sections other than the one being set.
fn unset_variable(root: &mut Node, name: &str, section: &str, own_group: Option<&str>) {
    let Some(vars) = root_table(root).and_then(|t| t.get_mut("vars")) else {
        return;
    };
    let Kind::Table(vars) = &mut vars.kind else {
        return;
    };
    for other in ["fixed", "sweep"].into_iter().filter(|s| *s != section) {
        if let Some(Node {
            kind: Kind::Table(t),
            ..
        }) = vars.get_mut(other)
        {
            t.remove(name);
        }
    }
    if let Some(Node {
        kind: Kind::Table(groups),
        ..
    }) = vars.get_mut("linked")
    {
        for g in groups
            .entries
            .iter_mut()
            .filter(|g| Some(g.key.as_str()) != own_group)
        {
            if let Kind::Table(t) = &mut g.value.kind {
                t.remove(name);
            }
        }
        groups
            .entries
            .retain(|g| !matches!(&g.value.kind, Kind::Table(t) if t.entries.is_empty()));
    }
}

fn root_table(root: &mut Node) -> Option<&mut Table> {
    match &mut root.kind {
        Kind::Table(t) => Some(t),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(text: &str) -> Node {
        doc::parse_document(text).unwrap()
    }

    fn get<'a>(n: &'a Node, path: &[&str]) -> Option<&'a Node> {
        path.iter().try_fold(n, |n, k| n.as_table()?.get(k))
    }

    #[test]
    fn parse_splits_at_the_first_equals_and_handles_quotes() {
        let o = Override::parse("analysis.thresholds.\"ttft.p99\"=5%").unwrap();
        assert_eq!(
            o.segments().unwrap(),
            ["analysis", "thresholds", "ttft.p99"]
        );
        assert_eq!(Override::parse("a.b=x=y").unwrap().value_text, "x=y");
        assert_eq!(Override::parse("nokey").unwrap_err().reason, "missing `=`");
        assert!(Override::parse("a..b=1").is_err());
    }

    #[test]
    fn values_are_toml_or_plain_strings() {
        let mut d = doc("[target]\nkind = \"sim\"\n");
        apply(&mut d, &Override::parse("target.gpu=h100-sxm").unwrap(), 0).unwrap();
        apply(
            &mut d,
            &Override::parse("vars.sweep.request_rate=[5,10]").unwrap(),
            1,
        )
        .unwrap();
        assert_eq!(
            get(&d, &["target", "gpu"]).unwrap().kind,
            Kind::Str("h100-sxm".into())
        );
        let rr = get(&d, &["vars", "sweep", "request_rate"]).unwrap();
        assert!(matches!(&rr.kind, Kind::Array(v) if v.len() == 2));
        assert_eq!(rr.origin, Origin::Set(1));
        let bad = Override::parse("vars.sweep.request_rate=[5,").unwrap();
        assert!(
            apply(&mut d, &bad, 2)
                .unwrap_err()
                .starts_with("invalid TOML value")
        );
    }

    #[test]
    fn setting_a_variable_removes_it_from_other_sections() {
        let mut d =
            doc("[vars.sweep]\nrequest_rate = [1, 2]\n[vars.linked.g]\nrequest_rate = [1]\n");
        apply(
            &mut d,
            &Override::parse("vars.fixed.request_rate=5").unwrap(),
            0,
        )
        .unwrap();
        assert!(get(&d, &["vars", "sweep", "request_rate"]).is_none());
        assert!(get(&d, &["vars", "linked", "g"]).is_none());
        assert_eq!(
            get(&d, &["vars", "fixed", "request_rate"]).unwrap().kind,
            Kind::Int(5)
        );
    }

    #[test]
    fn a_scalar_cannot_be_descended_into() {
        let mut d = doc("[experiment]\nname = \"x\"\n");
        let err = apply(&mut d, &Override::parse("experiment.name.x=1").unwrap(), 0).unwrap_err();
        assert_eq!(err, "`experiment.name` is a string, not a table");
    }
}
