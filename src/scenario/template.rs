//! minijinja glue for `[target]` templates (`model = "{{ model }}"`) and `vars.exclude`
//! expressions (`"concurrency > max_num_seqs"`). Undefined variables are errors (strict
//! undefined), never empty strings.

use std::collections::BTreeSet;

use minijinja::{Environment, UndefinedBehavior};

use super::model::{Value, Vars};

fn env() -> Environment<'static> {
    let mut env = Environment::new();
    // Error details (the undefined name) in release builds too, as in `cargo test`.
    env.set_debug(true);
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env
}

/// A cell's variables as a minijinja context.
fn context(vars: &Vars) -> minijinja::Value {
    minijinja::Value::from_pairs(vars.iter().map(|(k, v)| {
        let v = match v {
            Value::Bool(b) => minijinja::Value::from(*b),
            Value::Int(i) => minijinja::Value::from(*i),
            Value::Float(x) => minijinja::Value::from(*x),
            Value::Str(s) => minijinja::Value::from(s.as_str()),
        };
        (k.as_str(), v)
    }))
}

/// Whether a string uses template syntax at all (plain strings skip minijinja).
pub(crate) fn is_template(s: &str) -> bool {
    s.contains("{{") || s.contains("{%") || s.contains("{#")
}

fn message(e: &minijinja::Error) -> String {
    match e.detail() {
        Some(detail) => format!("{}: {detail}", e.kind()),
        None => e.kind().to_string(),
    }
}

fn without_globals(
    env: &Environment<'_>,
    names: impl IntoIterator<Item = String>,
) -> BTreeSet<String> {
    let globals: BTreeSet<&str> = env.globals().map(|(n, _)| n).collect();
    names
        .into_iter()
        .filter(|n| !globals.contains(n.as_str()))
        .collect()
}

/// The variables a template reads (sorted), or its syntax error.
pub(crate) fn template_variables(source: &str) -> Result<BTreeSet<String>, String> {
    let env = env();
    let t = env.template_from_str(source).map_err(|e| message(&e))?;
    Ok(without_globals(&env, t.undeclared_variables(false)))
}

/// The variables an expression reads (sorted), or its syntax error.
pub(crate) fn expression_variables(expr: &str) -> Result<BTreeSet<String>, String> {
    let env = env();
    let e = env.compile_expression(expr).map_err(|e| message(&e))?;
    Ok(without_globals(&env, e.undeclared_variables(false)))
}

/// Renders a template with a cell's variables.
pub(crate) fn render(source: &str, vars: &Vars) -> Result<String, String> {
    if !is_template(source) {
        return Ok(source.to_string());
    }
    env()
        .render_str(source, context(vars))
        .map_err(|e| message(&e))
}

/// Evaluates an expression over a cell's variables as a boolean.
pub(crate) fn eval_bool(expr: &str, vars: &Vars) -> Result<bool, String> {
    let env = env();
    let e = env.compile_expression(expr).map_err(|e| message(&e))?;
    Ok(e.eval(context(vars)).map_err(|e| message(&e))?.is_true())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars() -> Vars {
        Vars::from([
            ("tp".into(), Value::Int(4)),
            ("model".into(), Value::Str("llama".into())),
        ])
    }

    #[test]
    fn templates_render_and_name_their_variables() {
        assert_eq!(
            render("{{ model }}-tp{{ tp }}", &vars()).unwrap(),
            "llama-tp4"
        );
        let used =
            template_variables("{{ model }}{% for i in range(tp) %}{{ i }}{% endfor %}").unwrap();
        assert_eq!(
            used,
            BTreeSet::from(["model".to_string(), "tp".to_string()])
        );
        assert!(render("{{ nope }}", &vars()).is_err());
        assert!(template_variables("{{ unclosed").is_err());
    }

    #[test]
    fn expressions_evaluate_to_booleans() {
        assert!(eval_bool("tp > 2", &vars()).unwrap());
        assert!(!eval_bool("model == 'x'", &vars()).unwrap());
        assert!(eval_bool("missing > 1", &vars()).is_err());
        assert_eq!(expression_variables("a > b").unwrap().len(), 2);
    }
}
