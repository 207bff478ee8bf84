//! The report: a view model built from the manifest and the analysis, rendered by minijinja
//! (strict undefined variables, no HTML escaping: Markdown is not HTML). The embedded template
//! is `templates/report.md.j2`; users may copy it and pass `--template`.

mod chart;
pub mod export;
pub mod headline;
mod model;
pub mod nodes;
pub mod plot;
pub mod quality;
mod search;
pub mod svg;
mod view;

pub use chart::ChartView;
pub use model::{ReportModel, build};
pub use search::{SearchProbeRow, SearchView};

use std::path::Path;

use minijinja::{AutoEscape, Environment, UndefinedBehavior};

/// The embedded default template.
pub const DEFAULT_TEMPLATE: &str = include_str!("../../templates/report.md.j2");

/// A template that could not be read or rendered.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The template file could not be read.
    #[error("cannot read template {path}: {source}")]
    Read {
        /// The template path.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// minijinja refused the template or the data (e.g. an undefined variable).
    #[error("template {name}: {source:#}{hint}")]
    Render {
        /// Template name.
        name: String,
        /// minijinja's error (with line).
        source: minijinja::Error,
        /// For an undefined variable, a line naming what a template can use; else empty.
        hint: String,
    },
    /// plotters could not draw an SVG chart.
    #[error("cannot draw chart {name}: {message}")]
    Chart {
        /// The SVG's file name.
        name: String,
        /// plotters' error.
        message: String,
    },
}

/// Renders the view model with the embedded template or `template` if given.
pub fn render(model: &ReportModel, template: Option<&Path>) -> Result<String, ReportError> {
    let (name, source) = match template {
        Some(path) => (
            path.display().to_string(),
            std::fs::read_to_string(path).map_err(|source| ReportError::Read {
                path: path.display().to_string(),
                source,
            })?,
        ),
        None => ("report.md.j2".to_string(), DEFAULT_TEMPLATE.to_string()),
    };
    render_source(&name, &source, model)
}

/// Renders `context` with the template text `source` (called `name` in errors) under the
/// report settings: strict undefined variables, no HTML escaping, `trim_blocks`, trailing
/// newline kept. Shared by every Markdown exp writes (`report.md`, `compare.md`).
pub fn render_source<T: serde::Serialize>(
    name: &str,
    source: &str,
    context: &T,
) -> Result<String, ReportError> {
    let mut env = Environment::new();
    // minijinja names the undefined variable in its errors only in debug mode, which it turns
    // on only for debug builds: the release binary users run must say as much as `cargo test`.
    env.set_debug(true);
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_auto_escape_callback(|_| AutoEscape::None);
    env.set_syntax(
        minijinja::syntax::SyntaxConfig::builder()
            .trim_blocks(true)
            .keep_trailing_newline(true)
            .build()
            .expect("default delimiters are valid"),
    );
    let err = |source| ReportError::Render {
        name: name.to_string(),
        hint: undefined_hint(&source, context),
        source,
    };
    env.add_template_owned(name.to_string(), source.to_string())
        .map_err(err)?;
    let tmpl = env.get_template(name).map_err(err)?;
    tmpl.render(minijinja::value::Serde(context)).map_err(err)
}

/// minijinja's debug block lists only the referenced names that exist, so for an undefined
/// variable say which top-level names the view model has.
fn undefined_hint<T: serde::Serialize>(err: &minijinja::Error, model: &T) -> String {
    if err.kind() != minijinja::ErrorKind::UndefinedError {
        return String::new();
    }
    match serde_json::to_value(model) {
        Ok(serde_json::Value::Object(map)) => {
            let names: Vec<&str> = map.keys().map(String::as_str).collect();
            format!(
                "\nhint: a report template can use these top-level names: {}",
                names.join(", ")
            )
        }
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests;
