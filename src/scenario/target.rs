//! `[target]`: validated once into a [`TargetSpec`] (templates checked, not rendered), then
//! rendered per cell into a `TargetConfig` by `Scenario::resolve` (see `resolve.rs`).

use std::num::NonZeroU32;
use std::path::PathBuf;
use std::time::Duration;

use super::doc::{Node, Origin, Table};
use super::error::{did_you_mean, join_key};
use super::model::{SimConfig, TargetKind};
use super::read::{Ctx, Range};
use super::template;

const KEYS: &[&str] = &[
    "kind",
    "base_url",
    "model",
    "api_key_env",
    "headers",
    "timeout",
    "idle_timeout",
    "token_timeout",
    "ignore_eos",
    "tokenizer",
    "model_config",
    "gpu",
    "gpus",
    "sim_preset",
    "noise_cv",
    "gpu_memory_utilization",
    "block_size",
];
const SIM_KEYS: &[&str] = &[
    "sim_preset",
    "noise_cv",
    "gpu_memory_utilization",
    "block_size",
];

/// `gpus`: a number, or a template rendering to one (`"{{ tp }}"`).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Gpus {
    Count(NonZeroU32),
    Template(String),
}

/// `[target]` with its templates unrendered.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct TargetSpec {
    pub kind: TargetKind,
    pub base_url: Option<String>,
    pub model: Option<String>,
    pub api_key_env: Option<String>,
    /// (name, value template, secret).
    pub headers: Vec<(String, String, bool)>,
    pub timeout: Duration,
    pub idle_timeout: Duration,
    pub token_timeout: Option<Duration>,
    pub ignore_eos: bool,
    pub tokenizer: Option<PathBuf>,
    pub model_config: Option<String>,
    pub gpu: Option<String>,
    pub gpus: Option<Gpus>,
    pub sim: Option<SimConfig>,
    /// The scenario file's directory, for `model_config`/`gpu` values that are paths.
    pub base_dir: PathBuf,
}

/// Validates `[target]`; `names` are the scenario's variables (for template checks).
pub(crate) fn validate(
    ctx: &mut Ctx,
    node: Option<&Node>,
    root: &Node,
    names: &[String],
) -> Option<TargetSpec> {
    let Some(node) = node else {
        let hint = "add a [target] table, e.g. `kind = \"sim\"` with `model_config` and `gpu`";
        ctx.error(
            &root.origin,
            "target",
            "missing required table [target]",
            Some(hint.into()),
        );
        return None;
    };
    let t = ctx.table("target", node, KEYS)?;
    let kinds: Vec<&'static str> = TargetKind::all().map(TargetKind::name).collect();
    let kind = ctx
        .require("target", (t, &node.origin), "kind", &kind_hint(&kinds))
        .and_then(|n| ctx.choice("target.kind", n, &kinds))
        .and_then(TargetKind::parse);
    let tpl = |ctx: &mut Ctx, name: &str| {
        let n = t.get(name)?;
        checked_template(ctx, &join_key("target", name), n, names)
    };
    let base_url = tpl(ctx, "base_url");
    let model = tpl(ctx, "model");
    let model_config = tpl(ctx, "model_config");
    let gpu = tpl(ctx, "gpu");
    let day = Duration::from_secs(86400);
    let timeout = t
        .get("timeout")
        .map_or(Some(Duration::from_secs(600)), |n| {
            ctx.duration("target.timeout", n, day)
        });
    let idle_timeout = t
        .get("idle_timeout")
        .map_or(Some(Duration::from_secs(60)), |n| {
            ctx.duration("target.idle_timeout", n, day)
        });
    let token_timeout = t
        .get("token_timeout")
        .map(|n| ctx.duration("target.token_timeout", n, day));
    let ignore_eos = t
        .get("ignore_eos")
        .map_or(Some(true), |n| ctx.bool("target.ignore_eos", n));
    let tokenizer = t
        .get("tokenizer")
        .map(|n| ctx.path_value("target.tokenizer", n, true));
    let api_key_env = t.get("api_key_env").map(|n| api_key_env(ctx, n));
    let headers = t.get("headers").map(|n| headers(ctx, n, names));
    let gpus = t.get("gpus").map(|n| gpus(ctx, n, names));
    let kind = kind?;
    kind_rules(ctx, t, &node.origin, kind);
    let sim = match kind {
        TargetKind::Sim => Some(sim_config(ctx, t)?),
        TargetKind::Http(_) => None,
    };
    Some(TargetSpec {
        kind,
        base_url,
        model,
        api_key_env: api_key_env.flatten(),
        headers: headers.flatten().unwrap_or_default(),
        timeout: timeout?,
        idle_timeout: idle_timeout?,
        token_timeout: match token_timeout {
            Some(t) => Some(t?),
            None => None,
        },
        ignore_eos: ignore_eos?,
        tokenizer: tokenizer.flatten(),
        model_config,
        gpu,
        gpus: gpus.flatten(),
        sim,
        base_dir: ctx.resolve_path(""),
    })
}

/// The hint for a missing `kind`, listing `names`:
/// `` `kind = "sim"`, `"openai-completions"` or `"openai-chat"` ``.
fn kind_hint(names: &[&str]) -> String {
    let mut hint = String::new();
    for (i, name) in names.iter().enumerate() {
        let sep = match i {
            0 => "",
            _ if i + 1 == names.len() => " or ",
            _ => ", ",
        };
        let value = match i {
            0 => format!("kind = \"{name}\""),
            _ => format!("\"{name}\""),
        };
        hint.push_str(&format!("{sep}`{value}`"));
    }
    hint
}

/// Keys required or refused depending on the kind of target.
fn kind_rules(ctx: &mut Ctx, t: &Table, origin: &Origin, kind: TargetKind) {
    let present = |k: &str| t.entries.iter().find(|e| e.key == k);
    if kind == TargetKind::Sim {
        if let Some(e) = present("base_url") {
            let hint =
                "remove it, or set kind = \"openai-completions\" to measure a server at that URL";
            ctx.error(
                &e.key_origin,
                "target.base_url",
                "not used by kind = \"sim\"",
                Some(hint.into()),
            );
        }
        for (name, example) in [
            ("model_config", "\"llama-3.1-8b\""),
            ("gpu", "\"h100-sxm\""),
        ] {
            let hint =
                format!("the simulator needs `{name}`, a catalog name such as {example} or a path");
            ctx.require("target", (t, origin), name, &hint);
        }
        return;
    }
    for k in SIM_KEYS {
        if let Some(e) = present(k) {
            let hint = "remove it; it only configures the simulated engine".to_string();
            ctx.error(
                &e.key_origin,
                &join_key("target", k),
                "only used by kind = \"sim\"",
                Some(hint),
            );
        }
    }
    let url_hint =
        "the server's OpenAI-compatible base URL, e.g. `base_url = \"http://127.0.0.1:8000/v1\"`";
    ctx.require("target", (t, origin), "base_url", url_hint);
    for (have, need) in [("model_config", "gpu"), ("gpu", "model_config")] {
        if let (Some(e), None) = (present(have), present(need)) {
            let hint = format!(
                "MFU/MBU need both `model_config` and `gpu`; add `{need}` or remove `{have}`"
            );
            ctx.error(
                &e.key_origin,
                &join_key("target", have),
                format!("needs `{need}` too"),
                Some(hint),
            );
        }
    }
}

/// A string template whose syntax is valid and whose variables all exist.
pub(crate) fn checked_template(
    ctx: &mut Ctx,
    key: &str,
    node: &Node,
    names: &[String],
) -> Option<String> {
    let source = ctx.string(key, node)?;
    match template::template_variables(source) {
        Err(e) => ctx.error(&node.origin, key, format!("invalid template: {e}"), None),
        Ok(used) => {
            let unknown: Vec<&String> = used.iter().filter(|u| !names.contains(u)).collect();
            for name in &unknown {
                let close = did_you_mean(name, names.iter().map(String::as_str));
                let hint = format!("define `{name}` in [vars.fixed] or [vars.sweep]");
                ctx.error(
                    &node.origin,
                    key,
                    format!("undefined variable `{name}` in template{close}"),
                    Some(hint),
                );
            }
            if unknown.is_empty() {
                return Some(source.to_string());
            }
        }
    }
    None
}

fn api_key_env(ctx: &mut Ctx, node: &Node) -> Option<String> {
    let name = ctx.string("target.api_key_env", node)?;
    let ok = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !ok {
        // The value is not echoed: it may be the key itself.
        let hint = "write the variable's name, e.g. \"OPENAI_API_KEY\"; never put the key itself in the file";
        ctx.error(
            &node.origin,
            "target.api_key_env",
            "must be the name of an environment variable",
            Some(hint.into()),
        );
        return None;
    }
    Some(name.to_string())
}

fn headers(ctx: &mut Ctx, node: &Node, names: &[String]) -> Option<Vec<(String, String, bool)>> {
    let t = ctx.table("target.headers", node, &[])?;
    let mut out = vec![];
    for e in &t.entries {
        let key = join_key("target.headers", &e.key);
        let token = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
        if e.key.is_empty() || !e.key.chars().all(token) {
            ctx.error(
                &e.key_origin,
                &key,
                format!("{:?} is not a valid HTTP header name", e.key),
                None,
            );
            continue;
        }
        let (value, secret) = if let Some(vt) = e.value.as_table() {
            ctx.table(&key, &e.value, &["value", "secret"]);
            let hint = "write `{ value = \"Bearer {{ token }}\", secret = true }`";
            let v = ctx.require(&key, (vt, &e.value.origin), "value", hint);
            let v = v.and_then(|v| checked_template(ctx, &join_key(&key, "value"), v, names));
            let s = vt
                .get("secret")
                .map_or(Some(false), |s| ctx.bool(&join_key(&key, "secret"), s));
            (v, s)
        } else {
            (checked_template(ctx, &key, &e.value, names), Some(false))
        };
        if let (Some(v), Some(s)) = (value, secret) {
            out.push((e.key.clone(), v, s));
        }
    }
    Some(out)
}

fn gpus(ctx: &mut Ctx, node: &Node, names: &[String]) -> Option<Gpus> {
    if let super::doc::Kind::Str(_) = node.kind {
        return checked_template(ctx, "target.gpus", node, names).map(Gpus::Template);
    }
    let n = ctx.int(
        "target.gpus",
        node,
        1,
        65_536,
        Some("GPUs serving one replica, e.g. `gpus = 8`"),
    )?;
    NonZeroU32::new(n as u32).map(Gpus::Count)
}

fn sim_config(ctx: &mut Ctx, t: &Table) -> Option<SimConfig> {
    let preset = match t.get("sim_preset") {
        None => Some("calibrated".to_string()),
        Some(n) => match ctx.string("target.sim_preset", n) {
            Some(p @ ("ideal" | "calibrated")) => Some(p.to_string()),
            Some(_) => ctx
                .path_value("target.sim_preset", n, true)
                .map(|p| p.display().to_string()),
            None => None,
        },
    };
    let num = |ctx: &mut Ctx, name: &str, range: Range, default: f64| {
        t.get(name).map_or(Some(default), |n| {
            ctx.number(&join_key("target", name), n, range, None)
        })
    };
    let noise_cv = num(ctx, "noise_cv", Range::at_least(0.0).below(1.0), 0.02);
    let gmu = num(
        ctx,
        "gpu_memory_utilization",
        Range::above(0.0).up_to(1.0),
        0.9,
    );
    let block_size = t
        .get("block_size")
        .map_or(Some(16), |n| ctx.int("target.block_size", n, 1, 1024, None));
    Some(SimConfig {
        preset: preset?,
        noise_cv: noise_cv?,
        gpu_memory_utilization: gmu?,
        block_size: block_size? as u32,
    })
}
