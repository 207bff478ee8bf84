//! What one cell means: `Scenario::resolve` renders the `[target]` templates with the cell's
//! variables and fills the workload and engine from the well-known variables and defaults.
//! Also the `--target URL` switch, which points a scenario at a running server.

use std::num::NonZeroU32;

use super::error::{Loc, Locs, ScenarioError, join_key};
use super::model::{
    CellConfig, CostConfig, EngineConfig, HardwareConfig, Header, Scenario, TargetConfig,
    TargetKind, Vars,
};
use super::target::{Gpus, TargetSpec};
use super::template;
use super::wellknown::{self, ENGINE_VARS};
use super::{probes, server_render};
use crate::backend::Protocol;

impl Scenario {
    /// The configuration of the cell with these variables (fixed and swept, as in
    /// a cell of the plan): templates rendered, well-known variables applied, defaults
    /// filled in (`prompt_tokens` 512, `output_tokens` 128, `burstiness` 1, `tp` 1,
    /// `max_num_seqs` 256, `max_num_batched_tokens` 8192, `requests` 100 when neither
    /// `requests` nor `duration` is set, `gpus` = `tp`).
    ///
    /// `plan::Plan::build` resolves every cell of the matrix (and reports every key that
    /// fails, once); after it, this only fails for variables that did not come from the
    /// scenario's own matrix.
    ///
    /// With a `[server]` whose port is automatic, templates see `port` as `<port>` (for
    /// plans); [`Scenario::resolve_at_port`] renders them with the port a launch picked.
    pub fn resolve(&self, vars: &Vars) -> Result<CellConfig, ScenarioError> {
        self.resolve_with(vars, None)
    }

    /// [`Scenario::resolve`] with `port` bound to a launched server's port.
    pub fn resolve_at_port(&self, vars: &Vars, port: u16) -> Result<CellConfig, ScenarioError> {
        self.resolve_with(vars, Some(port))
    }

    fn resolve_with(&self, vars: &Vars, port: Option<u16>) -> Result<CellConfig, ScenarioError> {
        let engine = self.engine(vars)?;
        let with_port = match &self.server {
            Some(s) => server_render::with_port(vars, s.port, port),
            None => vars.clone(),
        };
        let target = self.target.render(&with_port, engine.tp, &self.locs)?;
        let workload = self.workload.render(vars, &self.locs)?;
        let origin = target.base_url.as_deref().and_then(probes::origin);
        let origin = origin.as_deref();
        let server = (self.server.as_ref())
            .map(|s| s.render(vars, port, origin, &self.locs))
            .transpose()?;
        let probes = (self.probes.as_ref())
            .map(|p| p.render(&with_port, origin, &self.locs))
            .transpose()?;
        let cost = match self.gpu_hour {
            Some(gpu_hour) => Some(CostConfig {
                gpu_hour,
                gpus: self.target.gpus(vars, engine.tp, &self.locs)?,
            }),
            None => None,
        };
        let quality = (self.quality.as_ref())
            .map(|q| q.render(vars, &self.locs))
            .transpose()?;
        Ok(CellConfig {
            target,
            workload,
            engine,
            server,
            probes,
            cost,
            quality,
        })
    }

    /// Whether the scenario has a `[server]` that exp launches.
    pub fn launches_server(&self) -> bool {
        self.server.as_ref().is_some_and(|s| {
            s.command.is_some() && s.restart != crate::scenario::model::RestartPolicy::Never
        })
    }

    fn engine(&self, vars: &Vars) -> Result<EngineConfig, ScenarioError> {
        let get = |name: &str, default: u64| -> Result<NonZeroU32, ScenarioError> {
            let v = wellknown::count_at(vars, &self.locs, name, Some(default))?;
            Ok(NonZeroU32::new(v.unwrap_or(default) as u32).unwrap_or(NonZeroU32::MIN))
        };
        Ok(EngineConfig {
            tp: get("tp", 1)?,
            max_num_seqs: get("max_num_seqs", 256)?,
            max_num_batched_tokens: get("max_num_batched_tokens", 8192)?,
        })
    }

    /// Which kind of target the scenario measures.
    pub fn target_kind(&self) -> TargetKind {
        self.target.kind
    }

    /// Points the scenario at a running OpenAI-compatible server (the CLI's `--target URL`).
    ///
    /// A `sim` scenario becomes `openai-completions` (its simulator settings are dropped;
    /// `model_config`/`gpu` stay, for MFU/MBU); an `openai-*` scenario keeps its kind and
    /// only changes `base_url`. Refused when the URL is not http(s), or when the scenario
    /// sweeps or sets engine variables (`tp`, …) that are not `labels`, because a fixed
    /// server cannot act on them. A warning records the switch.
    pub fn set_target_url(&mut self, url: &str) -> Result<(), ScenarioError> {
        let arg = format!("--target {url}");
        let mut locs = self.locs.clone();
        locs.map
            .insert("target.base_url".into(), Loc::Set(arg.clone()));
        locs.map.insert("target".into(), Loc::Set(arg));
        check_url(url, "target.base_url", &locs)?;
        if self.launches_server() {
            let hint = "drop --target to launch the scenario's [server], or set `[server] restart = \"never\"` to measure a server that is already running";
            return Err(locs.error(
                "target.base_url",
                "--target measures a running server, but the scenario launches its own ([server] command)",
                Some(hint.into()),
            ));
        }
        let kind = match self.target.kind {
            TargetKind::Sim => TargetKind::Http(Protocol::OpenaiCompletions),
            http @ TargetKind::Http(_) => http,
        };
        let declared = |v: &str| {
            self.vars.fixed.contains_key(v)
                || self.vars.sweep.iter().any(|(n, _)| n == v)
                || self
                    .vars
                    .linked
                    .iter()
                    .any(|g| g.vars.iter().any(|(n, _)| n == v))
        };
        let labelled = |v: &str| self.vars.labels.iter().any(|l| l == v);
        if let Some(var) = ENGINE_VARS.iter().find(|v| declared(v) && !labelled(v)) {
            let message =
                format!("`{var}` is an engine variable, but --target measures a fixed server");
            let hint = format!(
                "mark it as a label with `labels = [\"{var}\"]` (or `--set vars.labels=[\"{var}\"]`), or drop --target"
            );
            return Err(locs.error(&locs.var_key(var), message, Some(hint)));
        }
        self.target.kind = kind;
        self.target.sim = None;
        self.target.base_url = Some(url.to_string());
        self.locs = locs;
        self.warnings.push(format!(
            "target replaced by --target {url} (kind = {:?})",
            kind.name()
        ));
        Ok(())
    }

    /// An error located at `key` (or its nearest located parent) of this scenario's file.
    pub(crate) fn error_at(
        &self,
        key: &str,
        message: impl Into<String>,
        hint: Option<String>,
    ) -> ScenarioError {
        self.locs.error(key, message, hint)
    }
}

impl TargetSpec {
    /// Renders the target for one cell; `tp` is the cell's tensor-parallel degree.
    pub(crate) fn render(
        &self,
        vars: &Vars,
        tp: NonZeroU32,
        locs: &Locs,
    ) -> Result<TargetConfig, ScenarioError> {
        let field =
            |name: &str, source: &Option<String>| render_field(name, source.as_deref(), vars, locs);
        let base_url = field("base_url", &self.base_url)?;
        if let Some(url) = &base_url {
            check_url(url, "target.base_url", locs)?;
        }
        let headers = self
            .headers
            .iter()
            .map(|(name, source, secret)| {
                let value = template::render(source, vars)
                    .map_err(|e| locs.error(&join_key("target.headers", name), e, None))?;
                Ok(Header {
                    name: name.clone(),
                    value,
                    secret: *secret,
                })
            })
            .collect::<Result<Vec<_>, ScenarioError>>()?;
        let hardware = match (
            field("model_config", &self.model_config)?,
            field("gpu", &self.gpu)?,
        ) {
            (Some(model_config), Some(gpu)) => Some(HardwareConfig {
                model_config: self.path_like(model_config),
                gpu: self.path_like(gpu),
                gpus: self.gpus(vars, tp, locs)?,
            }),
            _ => None,
        };
        Ok(TargetConfig {
            kind: self.kind,
            base_url,
            model: field("model", &self.model)?,
            api_key_env: self.api_key_env.clone(),
            headers,
            timeout: self.timeout,
            idle_timeout: self.idle_timeout,
            token_timeout: self.token_timeout,
            ignore_eos: self.ignore_eos,
            tokenizer: self.tokenizer.clone(),
            hardware,
            sim: self.sim.clone(),
        })
    }

    /// Catalog names stay as they are; paths are made relative to the scenario's directory.
    fn path_like(&self, s: String) -> String {
        let is_path = s.contains('/') || s.ends_with(".json") || s.ends_with(".toml");
        if is_path {
            self.base_dir.join(&s).display().to_string()
        } else {
            s
        }
    }

    fn gpus(&self, vars: &Vars, tp: NonZeroU32, locs: &Locs) -> Result<NonZeroU32, ScenarioError> {
        let gpus = match &self.gpus {
            None => return Ok(tp),
            Some(Gpus::Count(n)) => *n,
            Some(Gpus::Template(source)) => {
                let text = template::render(source, vars)
                    .map_err(|e| locs.error("target.gpus", e, None))?;
                let n = text.trim().parse::<u32>().ok().and_then(NonZeroU32::new);
                n.ok_or_else(|| {
                    locs.error(
                        "target.gpus",
                        format!("renders to {text:?}, not a positive integer"),
                        None,
                    )
                })?
            }
        };
        if gpus < tp {
            let hint = "one replica needs at least `tp` GPUs; raise `gpus`, or leave it out so it defaults to tp";
            return Err(locs.error(
                "target.gpus",
                format!("{gpus} GPUs are fewer than tp = {tp}"),
                Some(hint.into()),
            ));
        }
        Ok(gpus)
    }
}

/// Renders one optional `[target]` string; an empty result is an error.
fn render_field(
    name: &str,
    source: Option<&str>,
    vars: &Vars,
    locs: &Locs,
) -> Result<Option<String>, ScenarioError> {
    let Some(source) = source else {
        return Ok(None);
    };
    let key = join_key("target", name);
    let out = template::render(source, vars).map_err(|e| locs.error(&key, e, None))?;
    if out.trim().is_empty() {
        return Err(locs.error(
            &key,
            format!("renders to an empty string from {source:?}"),
            None,
        ));
    }
    Ok(Some(out))
}

/// An http(s) URL, or an error at `key`.
fn check_url(url: &str, key: &str, locs: &Locs) -> Result<(), ScenarioError> {
    if url.starts_with("http://") || url.starts_with("https://") {
        return Ok(());
    }
    let hint = "e.g. \"http://127.0.0.1:8000/v1\"".to_string();
    Err(locs.error(
        key,
        format!("{url:?} is not an http:// or https:// URL"),
        Some(hint),
    ))
}
