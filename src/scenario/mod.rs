//! Scenario files: TOML in, validated [`Scenario`] out. Owns the file format (see
//! `tests/fixtures/scenarios/ok/` for examples), every user-facing error about it, `--set`
//! overrides, and what one cell of the matrix means ([`Scenario::resolve`]).
//!
//! `load` reports every problem it finds, each with file, line, column, key path and a hint.
//! It walks a spanned TOML tree itself (not serde) so one typo does not hide the next. It
//! describes what was written and stops there: expanding the matrix, and the checks that need
//! its cells (every cell resolves, the baseline picks one cell), belong to `plan::Plan::build`,
//! which reports at this file's lines through `Scenario::error_at`.

mod analysis;
mod arrival;
mod doc;
mod duration;
mod error;
mod launch;
pub mod model;
mod overrides;
mod probes;
mod quality;
mod read;
mod repetitions;
mod resolve;
mod search;
mod secrets;
mod server;
mod server_render;
mod server_rules;
mod target;
mod template;
mod validate;
mod vars;
mod wellknown;
mod workload;

#[cfg(test)]
mod fuzz_tests;
#[cfg(test)]
mod server_tests;
#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};

pub(crate) use error::list as quoted_list;
pub use error::{ScenarioError, ScenarioErrors};
pub use model::*;
pub use overrides::{Override, OverrideError};
pub(crate) use template::eval_bool as template_eval;
pub(crate) use vars::same as same_value;

/// `scheme://host:port` of a URL (`http://127.0.0.1:8000/v1` → `http://127.0.0.1:8000`).
pub fn url_origin(url: &str) -> Option<String> {
    probes::origin(url)
}

use error::{LineIndex, Loc, make_error};

/// Loads and validates a scenario file.
pub fn load(path: &Path) -> Result<Scenario, ScenarioErrors> {
    load_with_overrides(path, &[])
}

/// Loads a scenario file with `--set` overrides applied before validation (later overrides
/// win; see [`Override`] for how variables move between fixed and sweep).
pub fn load_with_overrides(
    path: &Path,
    overrides: &[Override],
) -> Result<Scenario, ScenarioErrors> {
    let fail = |loc: Loc, message: String, hint: Option<&str>| {
        ScenarioErrors(vec![make_error(
            path,
            loc,
            "",
            message,
            hint.map(Into::into),
        )])
    };
    let bytes = std::fs::read(path)
        .map_err(|e| fail(Loc::None, format!("cannot read the file: {e}"), None))?;
    let text = match String::from_utf8(bytes) {
        Ok(text) => text,
        Err(e) => {
            let valid = &e.as_bytes()[..e.utf8_error().valid_up_to()];
            let loc =
                LineIndex::new(std::str::from_utf8(valid).unwrap_or_default()).locate(valid.len());
            let hint = Some("scenario files must be UTF-8 text; re-save it as UTF-8");
            return Err(fail(loc, "the file is not valid UTF-8".into(), hint));
        }
    };
    parse(&text, path, overrides)
}

/// Validates scenario text as if read from `path` (relative paths inside it are resolved
/// from `path`'s directory). `load` without the file system, for tests and tools.
pub fn parse(text: &str, path: &Path, overrides: &[Override]) -> Result<Scenario, ScenarioErrors> {
    let sets: Vec<String> = overrides.iter().map(Override::text).collect();
    let mut ctx = read::Ctx::new(path, text, &sets);
    let mut root = match doc::parse_document(text) {
        Ok(root) => root,
        Err(errors) => {
            for (message, span) in errors {
                // toml says "duplicate key" without naming it; the span does.
                let message = match text.get(span.clone()) {
                    Some(key) if message == "duplicate key" && !key.is_empty() => {
                        format!("{message} `{key}`")
                    }
                    _ => message,
                };
                let message = format!("invalid TOML: {message}");
                ctx.error(&doc::Origin::File(span), "", message, None);
            }
            return Err(ScenarioErrors(ctx.errors));
        }
    };
    for (i, o) in overrides.iter().enumerate() {
        if let Err(message) = overrides::apply(&mut root, o, i) {
            let hint = "the value is read as TOML, e.g. `[5, 10]`, `true` or `\"x\"`; anything else is taken as a plain string";
            let hint = message
                .starts_with("invalid TOML value")
                .then(|| hint.to_string());
            ctx.error(&doc::Origin::Set(i), &o.key_path, message, hint);
        }
    }
    let scenario = validate::validate(&mut ctx, &root, text, sets.clone());
    let mut errors = ctx.errors;
    match scenario {
        Some(s) if errors.is_empty() => Ok(s),
        _ => {
            if errors.is_empty() {
                // Every validator that gives up records why; this is a bug if reached.
                let message =
                    "the scenario is invalid, but no reason was recorded (this is a bug in exp)";
                errors.push(make_error(path, Loc::None, "", message.into(), None));
            }
            errors.sort_by_key(|e| (e.arg.is_some(), e.line.is_none(), e.line, e.col));
            Err(ScenarioErrors(errors))
        }
    }
}

/// The scenario files under `dir` (`*.toml`, sorted, hidden entries skipped); a file path
/// returns itself.
pub fn discover(dir: &Path) -> Vec<PathBuf> {
    if dir.is_file() {
        return vec![dir.to_path_buf()];
    }
    let hidden =
        |e: &walkdir::DirEntry| e.depth() > 0 && e.file_name().to_string_lossy().starts_with('.');
    let mut out: Vec<PathBuf> = walkdir::WalkDir::new(dir)
        .into_iter()
        .filter_entry(|e| !hidden(e))
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file() && e.path().extension().is_some_and(|x| x == "toml"))
        .map(walkdir::DirEntry::into_path)
        .collect();
    out.sort();
    out
}
