//! Which of a scenario's values are secret (see [`crate::secrets`]): the variables that hold
//! them, the values themselves, and their redacted forms for manifests and reports.

use std::collections::BTreeSet;

use super::model::{Scenario, Value, Vars};
use super::template::{is_template, template_variables};
use crate::secrets::{self, is_secret_header, is_secret_name};

impl Scenario {
    /// Variables whose values are secret: a secret-looking name (`token`, `api_key`, …), or
    /// read by a secret header's template (`secret = true`, or a credential-like header
    /// name).
    pub fn secret_vars(&self) -> BTreeSet<String> {
        let mut out: BTreeSet<String> = self
            .all_var_names()
            .filter(|n| is_secret_name(n))
            .map(str::to_string)
            .collect();
        for (name, source, secret) in &self.target.headers {
            if (*secret || is_secret_header(name))
                && let Ok(read) = template_variables(source)
            {
                out.extend(read);
            }
        }
        out
    }

    /// Every secret value the scenario holds once overrides are applied: the values of
    /// [`Scenario::secret_vars`] (fixed, swept and linked; strings only) and the text of
    /// secret headers written without a template.
    pub fn secret_values(&self) -> Vec<String> {
        let names = self.secret_vars();
        let spec = &self.vars;
        let levels = spec
            .fixed
            .iter()
            .map(|(n, v)| (n, std::slice::from_ref(v)))
            .chain(spec.sweep.iter().map(|(n, l)| (n, l.as_slice())))
            .chain(
                spec.linked
                    .iter()
                    .flat_map(|g| g.vars.iter().map(|(n, l)| (n, l.as_slice()))),
            );
        let mut out: Vec<String> = levels
            .filter(|(n, _)| names.contains(n.as_str()))
            .flat_map(|(_, l)| l.iter())
            .filter_map(|v| match v {
                Value::Str(s) => Some(s.clone()),
                _ => None,
            })
            .collect();
        for (name, source, secret) in &self.target.headers {
            if (*secret || is_secret_header(name)) && !is_template(source) {
                out.push(source.clone());
            }
        }
        out
    }

    /// `vars` with the value of every secret variable replaced by its marker.
    pub fn redact_vars(&self, vars: &Vars) -> Vars {
        let names = self.secret_vars();
        vars.iter()
            .map(|(n, v)| match names.contains(n) {
                true => (n.clone(), Value::Str(secrets::marker(&v.to_string()))),
                false => (n.clone(), v.clone()),
            })
            .collect()
    }

    /// A `--set key=value` as it may be recorded: the value replaced by its marker when the
    /// key sets a secret variable, a header, or a secret-looking key.
    pub fn redact_override(&self, text: &str) -> String {
        let Some((key, value)) = text.split_once('=') else {
            return text.to_string();
        };
        let names = self.secret_vars();
        let segments: Vec<&str> = key.split('.').map(|s| s.trim_matches('"')).collect();
        let secret = match segments.as_slice() {
            ["vars", "fixed" | "sweep", name] => names.contains(*name),
            ["vars", "linked", _, name] => names.contains(*name),
            ["target", "headers", ..] => true,
            _ => segments.last().is_some_and(|s| is_secret_name(s)),
        };
        match secret {
            true => format!("{key}={}", secrets::marker(value)),
            false => text.to_string(),
        }
    }

    /// The scenario text as a run directory keeps it: every secret value written as a TOML
    /// string (`"…"` or `'…'`, whatever its length) replaced by its quoted marker.
    pub fn redacted_text(&self) -> String {
        let mut values = self.secret_values();
        values.sort_by_key(|v| std::cmp::Reverse(v.len()));
        let mut text = self.text.clone();
        for v in values {
            let basic = toml_basic(&v);
            for (quoted, mark) in [
                (basic.clone(), format!("\"{}\"", secrets::marker(&v))),
                (format!("'{v}'"), format!("'{}'", secrets::marker(&v))),
            ] {
                text = text.replace(&quoted, &mark);
            }
        }
        text
    }

    fn all_var_names(&self) -> impl Iterator<Item = &str> {
        let spec = &self.vars;
        spec.fixed
            .keys()
            .map(String::as_str)
            .chain(spec.sweep.iter().map(|(n, _)| n.as_str()))
            .chain(
                spec.linked
                    .iter()
                    .flat_map(|g| g.vars.iter().map(|(n, _)| n.as_str())),
            )
    }
}

/// `value` as a TOML basic string (`"…"`, with `\\` and `\"` escaped).
fn toml_basic(value: &str) -> String {
    let escaped = value.replace('\\', "\\\\").replace('"', "\\\"");
    format!("\"{escaped}\"")
}

#[cfg(test)]
mod tests {
    use crate::scenario::{Override, parse};
    use crate::secrets::marker;
    use std::path::Path;

    const TEXT: &str = r#"
[experiment]
name = "s"
description = "secrets"

[target]
kind = "openai-completions"
base_url = "http://127.0.0.1:1"
model = "m"
headers = { "Authorization" = { value = "Bearer {{ creds }}", secret = true }, "x-api-key" = "literal-key-123", "x-team" = "perf-{{ team }}" }

[vars.fixed]
creds = "c-000000"
team = "blue"
hf_token = "hf_abcdefgh"
max_tokens = 64
duration = "2s"

[vars.sweep]
request_rate = [1, 2]
"#;

    fn scenario(sets: &[&str]) -> crate::scenario::Scenario {
        let overrides: Vec<Override> = sets.iter().map(|s| Override::parse(s).unwrap()).collect();
        parse(TEXT, Path::new("s.toml"), &overrides).unwrap()
    }

    #[test]
    fn secret_variables_are_named_or_read_by_secret_headers() {
        let s = scenario(&[]);
        let vars: Vec<String> = s.secret_vars().into_iter().collect();
        assert_eq!(vars, ["creds", "hf_token"]);
        let mut values = s.secret_values();
        values.sort();
        assert_eq!(values, ["c-000000", "hf_abcdefgh", "literal-key-123"]);
        let s = scenario(&["vars.fixed.creds=sk-given"]);
        assert!(s.secret_values().contains(&"sk-given".to_string()));
    }

    #[test]
    fn the_saved_text_keeps_markers_for_every_quoted_secret() {
        let s = scenario(&[]);
        let text = s.redacted_text();
        for v in ["c-000000", "hf_abcdefgh", "literal-key-123"] {
            assert!(!text.contains(v), "{v} in {text}");
            assert!(text.contains(&format!("\"{}\"", marker(v))), "{text}");
        }
        assert!(text.contains("team = \"blue\""));
        assert!(text.contains("Bearer {{ creds }}"));
    }

    #[test]
    fn cells_and_overrides_keep_keys_and_hide_values() {
        let s = scenario(&[]);
        let redacted = s.redact_vars(&s.vars.fixed);
        assert_eq!(redacted["creds"].to_string(), marker("c-000000"));
        assert_eq!(redacted["team"].to_string(), "blue");
        assert_eq!(redacted["max_tokens"].to_string(), "64");
        for (set, hidden) in [
            ("vars.fixed.creds=sk-1", true),
            ("vars.sweep.hf_token=[\"a\",\"b\"]", true),
            ("target.headers.x-extra=v", true),
            ("target.api_key_env=KEY", true),
            ("vars.fixed.team=red", false),
            ("vars.sweep.request_rate=[5,10]", false),
        ] {
            let out = s.redact_override(set);
            let (key, value) = set.split_once('=').unwrap();
            match hidden {
                true => assert_eq!(out, format!("{key}={}", marker(value))),
                false => assert_eq!(out, set),
            }
        }
    }
}
