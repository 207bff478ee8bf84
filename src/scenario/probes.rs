//! `[probes]` (what to sample while a repetition runs) and `[cost]` (price per GPU-hour),
//! validated into specs and rendered per cell by `Scenario::resolve`.

use std::time::Duration;

use super::doc::{Kind, Node};
use super::error::{Locs, ScenarioError};
use super::launch::{GpuProbe, ProbeConfig};
use super::model::Vars;
use super::read::{Ctx, Range};
use super::target::checked_template;
use super::template;

const KEYS: &[&str] = &[
    "interval",
    "gpu",
    "metrics_url",
    "host",
    "net_interface",
    "net_line_rate_gbps",
];

/// Where the Prometheus text comes from.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum MetricsUrl {
    /// `/metrics` on the server's port (or the target's host and port).
    Default,
    /// `metrics_url = false`.
    Off,
    /// A template.
    Template(String),
}

/// `[probes]`, templates unrendered.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ProbeSpec {
    pub interval: Duration,
    pub gpu: GpuProbe,
    pub metrics_url: MetricsUrl,
    pub host: bool,
    pub net_interface: Option<String>,
    pub net_line_rate: Option<f64>,
}

/// Validates `[probes]`; `names` are the variables templates may use (with `port` when the
/// scenario has a `[server]`).
pub(crate) fn validate(ctx: &mut Ctx, node: &Node, names: &[String]) -> Option<ProbeSpec> {
    let t = ctx.table("probes", node, KEYS)?;
    let interval = t.get("interval").map_or(Some(Duration::from_secs(1)), |n| {
        ctx.duration("probes.interval", n, Duration::from_secs(3600))
    });
    if let (Some(d), Some(n)) = (interval, t.get("interval"))
        && d < Duration::from_millis(50)
    {
        let hint = "sampling nvidia-smi or /metrics faster than every 50ms measures the probe, not the server";
        ctx.error(
            &n.origin,
            "probes.interval",
            "must be at least 50ms",
            Some(hint.into()),
        );
    }
    let gpu = t.get("gpu").map_or(Some(GpuProbe::Auto), |n| gpu(ctx, n));
    let metrics_url = match t.get("metrics_url") {
        None => Some(MetricsUrl::Default),
        Some(n) if n.kind == Kind::Bool(false) => Some(MetricsUrl::Off),
        Some(n) => checked_template(ctx, "probes.metrics_url", n, names).map(MetricsUrl::Template),
    };
    let host = t
        .get("host")
        .map_or(Some(true), |n| ctx.bool("probes.host", n));
    let net_interface = t
        .get("net_interface")
        .map(|n| ctx.string("probes.net_interface", n).map(str::to_string));
    let rate = t.get("net_line_rate_gbps").map(|n| {
        let hint = Some("the interface's line rate in Gbit/s, e.g. 100");
        ctx.number(
            "probes.net_line_rate_gbps",
            n,
            Range::above(0.0).up_to(1e6),
            hint,
        )
    });
    Some(ProbeSpec {
        interval: interval?,
        gpu: gpu?,
        metrics_url: metrics_url?,
        host: host?,
        net_interface: net_interface.flatten(),
        net_line_rate: rate.flatten().map(|g| g * 1e9),
    })
}

fn gpu(ctx: &mut Ctx, node: &Node) -> Option<GpuProbe> {
    match &node.kind {
        Kind::Bool(true) => Some(GpuProbe::On),
        Kind::Bool(false) => Some(GpuProbe::Off),
        Kind::Str(s) if s == "auto" => Some(GpuProbe::Auto),
        _ => {
            let hint = "true (nvidia-smi must be present), false, or \"auto\" (when present)";
            let message = format!("expected true, false or \"auto\", got {}", node.describe());
            ctx.error(&node.origin, "probes.gpu", message, Some(hint.into()));
            None
        }
    }
}

impl ProbeSpec {
    /// Renders the probes of a cell; `vars` include `port` when the scenario has a server,
    /// `origin` is the target's `scheme://host:port`.
    pub(crate) fn render(
        &self,
        vars: &Vars,
        origin: Option<&str>,
        locs: &Locs,
    ) -> Result<ProbeConfig, ScenarioError> {
        let metrics_url = match &self.metrics_url {
            MetricsUrl::Off => None,
            MetricsUrl::Template(s) => Some(
                template::render(s, vars).map_err(|e| locs.error("probes.metrics_url", e, None))?,
            ),
            MetricsUrl::Default => match (vars.get("port"), origin) {
                (Some(p), _) => Some(format!("http://127.0.0.1:{p}/metrics")),
                (None, Some(o)) => Some(format!("{o}/metrics")),
                (None, None) => None,
            },
        };
        Ok(ProbeConfig {
            interval: self.interval,
            gpu: self.gpu,
            metrics_url,
            host: self.host,
            net_interface: self.net_interface.clone(),
            net_line_rate: self.net_line_rate,
        })
    }
}

/// Validates `[cost]`: the price of one GPU-hour.
pub(crate) fn cost(ctx: &mut Ctx, node: &Node) -> Option<f64> {
    let t = ctx.table("cost", node, &["gpu_hour"])?;
    let hint = "the price of one GPU-hour, e.g. `gpu_hour = 2.5`; the GPU count is `[target] gpus` (default tp)";
    let n = ctx.require("cost", (t, &node.origin), "gpu_hour", hint)?;
    ctx.number("cost.gpu_hour", n, Range::above(0.0).up_to(1e6), Some(hint))
}

/// `scheme://host:port` of a URL (`http://127.0.0.1:8000/v1` → `http://127.0.0.1:8000`).
pub(crate) fn origin(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let host = rest.split('/').next().filter(|h| !h.is_empty())?;
    Some(format!("{scheme}://{host}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origin_keeps_scheme_host_and_port() {
        assert_eq!(
            origin("http://127.0.0.1:8000/v1").as_deref(),
            Some("http://127.0.0.1:8000")
        );
        assert_eq!(
            origin("https://api.x.com").as_deref(),
            Some("https://api.x.com")
        );
        assert_eq!(origin("not a url"), None);
    }
}
