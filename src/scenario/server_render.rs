//! Rendering `[server]` for one cell and port (see `server.rs` for validation).

use std::collections::BTreeSet;

use super::error::{Locs, ScenarioError, join_key};
use super::launch::{PORT_PLACEHOLDER, PortChoice};
use super::model::{Readiness, ServerConfig, Value, Vars};
use super::server::ServerSpec;
use super::template;

impl ServerSpec {
    /// The variables the launch reads (command, environment, directory): changing one of them
    /// changes the server, so engine variables used here are legitimate against a real target.
    pub(crate) fn launch_variables(&self) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        let sources = self
            .command
            .iter()
            .flatten()
            .chain(self.env.iter().map(|(_, v)| v));
        for s in sources.chain(self.cwd.iter()) {
            out.extend(template::template_variables(s).unwrap_or_default());
        }
        out
    }

    /// Whether any launch template reads `port`.
    pub(crate) fn launch_uses_port(&self) -> bool {
        self.launch_variables().contains("port")
    }

    /// Renders `[server]` for a cell: `port` is the picked port, or `None` for an automatic
    /// port not picked yet (rendered as `<port>`). `origin` is the target's
    /// `scheme://host:port`, for the default readiness URL of an external server.
    pub(crate) fn render(
        &self,
        vars: &Vars,
        port: Option<u16>,
        origin: Option<&str>,
        locs: &Locs,
    ) -> Result<ServerConfig, ScenarioError> {
        let r = Renderer {
            vars: with_port(vars, self.port, port),
            locs,
        };
        let command = match (&self.command, self.shell) {
            (Some(c), true) => Some(vec!["sh".into(), "-c".into(), r.one("command", &c[0])?]),
            (Some(c), false) => Some(r.list("command", c)?),
            (None, _) => None,
        };
        let env = (self.env.iter())
            .map(|(k, v)| Ok((k.clone(), r.one(&format!("env.{k}"), v)?)))
            .collect::<Result<Vec<_>, ScenarioError>>()?;
        let ready = match (&self.ready_log, &self.ready_url) {
            (Some(p), _) => Readiness::Log(p.clone()),
            (None, Some(url)) => Readiness::Url(r.one("ready_url", url)?),
            (None, None) => Readiness::Url(match (r.vars.get("port"), origin) {
                (Some(p), _) => format!("http://127.0.0.1:{p}/health"),
                (None, Some(o)) => format!("{o}/health"),
                (None, None) => "http://127.0.0.1/health".into(),
            }),
        };
        let list = |key, c: &Option<Vec<String>>| c.as_deref().map(|c| r.list(key, c)).transpose();
        let one = |key, s: &Option<String>| s.as_deref().map(|s| r.one(key, s)).transpose();
        Ok(ServerConfig {
            command,
            stop_command: list("stop_command", &self.stop_command)?,
            version_command: list("version_command", &self.version_command)?,
            env,
            cwd: one("cwd", &self.cwd)?.map(|d| self.base_dir.join(d)),
            port: self.port,
            bound_port: port.or(match self.port {
                Some(PortChoice::Fixed(p)) => Some(p),
                _ => None,
            }),
            ready,
            ready_timeout: self.ready_timeout,
            warmup_requests: self.warmup_requests,
            stop_grace: self.stop_grace,
            restart: self.restart,
            reset_url: one("reset_url", &self.reset_url)?,
        })
    }
}

/// Renders `[server]` templates, locating errors at their keys.
struct Renderer<'a> {
    vars: Vars,
    locs: &'a Locs,
}

impl Renderer<'_> {
    fn one(&self, key: &str, source: &str) -> Result<String, ScenarioError> {
        template::render(source, &self.vars)
            .map_err(|e| self.locs.error(&join_key("server", key), e, None))
    }

    fn list(&self, key: &str, items: &[String]) -> Result<Vec<String>, ScenarioError> {
        (items.iter().enumerate())
            .map(|(i, s)| {
                template::render(s, &self.vars)
                    .map_err(|e| self.locs.error(&format!("server.{key}[{i}]"), e, None))
            })
            .collect()
    }
}

/// The cell's variables plus `port`: the picked port, the fixed one, or the placeholder.
pub(crate) fn with_port(vars: &Vars, choice: Option<PortChoice>, picked: Option<u16>) -> Vars {
    let mut vars = vars.clone();
    let value = match (picked, choice) {
        (Some(p), _) | (None, Some(PortChoice::Fixed(p))) => Value::Int(i64::from(p)),
        (None, Some(PortChoice::Auto)) => Value::Str(PORT_PLACEHOLDER.into()),
        (None, None) => return vars,
    };
    vars.insert("port".into(), value);
    vars
}
