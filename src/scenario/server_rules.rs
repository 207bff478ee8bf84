//! Rules that tie `[server]` to the rest of the scenario: a launched server needs a real
//! target, `port` belongs to the server, and an automatic port must reach both the command
//! and the target's URL.

use super::error::Locs;
use super::launch::{PortChoice, RestartPolicy};
use super::model::{RunOrder, TargetKind};
use super::read::Ctx;
use super::server::ServerSpec;
use super::target::TargetSpec;
use super::template;

/// The sections the rules look at (each `None` when absent or invalid; `server` is
/// `Some(None)` when `[server]` is present but invalid).
pub(crate) struct Sections<'a> {
    pub target: Option<&'a TargetSpec>,
    pub order: Option<RunOrder>,
    pub server: Option<&'a Option<ServerSpec>>,
    pub probes: bool,
}

/// Checks `[server]`, `[probes]` and `order` against the rest of the scenario.
pub(crate) fn check_sections(ctx: &mut Ctx, locs: &Locs, s: Sections, names: &[String]) {
    if let (Some(target), Some(Some(server))) = (s.target, s.server) {
        check(ctx, locs, target, server, names);
    }
    if let Some(order) = s.order {
        check_order(ctx, locs, order, s.server);
    }
    if s.probes && s.target.is_some_and(|t| t.kind == TargetKind::Sim) {
        ctx.warnings.push("[probes] is ignored by kind = \"sim\": the simulated engine runs in virtual time, on no hardware to sample".into());
    }
}

/// Checks `[server]` against `[target]` and `[vars]`.
fn check(ctx: &mut Ctx, locs: &Locs, target: &TargetSpec, server: &ServerSpec, names: &[String]) {
    if target.kind == TargetKind::Sim {
        let hint = "set [target] kind = \"openai-completions\" (or \"openai-chat\") with `base_url = \"http://127.0.0.1:{{ port }}/v1\"`";
        let e = locs.error(
            "server",
            "[server] launches a real server, but kind = \"sim\" measures the simulated engine",
            Some(hint.into()),
        );
        ctx.errors.push(e);
    }
    if names.iter().any(|n| n == "port") {
        let hint = "with a [server], `port` is set by exp: use `[server] port = 8000` (or \"auto\") instead of a variable";
        let key = locs.var_key("port");
        ctx.errors.push(locs.error(
            &key,
            "`port` is reserved for the server's port",
            Some(hint.into()),
        ));
    }
    if server.port != Some(PortChoice::Auto) || target.kind == TargetKind::Sim {
        return;
    }
    let uses_port = |s: &Option<String>| {
        s.as_deref()
            .and_then(|s| template::template_variables(s).ok())
            .is_some_and(|v| v.contains("port"))
    };
    if !uses_port(&target.base_url) {
        let hint = "write `base_url = \"http://127.0.0.1:{{ port }}/v1\"`, or give the server a fixed `port = 8000`";
        let message = "[server] picks a free port for every launch (port = \"auto\"), but base_url does not use `{{ port }}`";
        ctx.errors
            .push(locs.error("target.base_url", message, Some(hint.into())));
    }
    if server.command.is_some() && !server.launch_uses_port() {
        let hint = "pass it to the server, e.g. `\"--port\", \"{{ port }}\"`, or set a fixed `port = 8000` that the server listens on";
        let message = "port = \"auto\" picks a free port, but the command never uses `{{ port }}`";
        ctx.errors
            .push(locs.error("server.command", message, Some(hint.into())));
    }
}

/// `order = "grouped"` needs a server exp launches once per configuration. `server` is
/// `Some(None)` when `[server]` is present but invalid (already reported).
fn check_order(ctx: &mut Ctx, locs: &Locs, order: RunOrder, server: Option<&Option<ServerSpec>>) {
    if order != RunOrder::Grouped {
        return;
    }
    let problem = match server {
        None => "\"grouped\" needs a [server] that exp launches",
        Some(None) => return,
        Some(Some(s)) if s.restart == RestartPolicy::Never => {
            "\"grouped\" needs a [server] that exp launches, but restart = \"never\""
        }
        Some(Some(s)) if s.restart == RestartPolicy::PerRepetition => {
            "\"grouped\" runs all repetitions of a configuration on one launch, but restart = \"per-repetition\" launches one per repetition"
        }
        Some(Some(_)) => return,
    };
    let hint = "grouped order is for expensive launches: a [server] with a `command` and restart = \"per-cell\"; otherwise use order = \"randomized-blocks\"";
    ctx.errors
        .push(locs.error("experiment.order", problem, Some(hint.into())));
}
