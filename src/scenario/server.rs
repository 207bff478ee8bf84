//! `[server]`: validated once into a [`ServerSpec`] (templates checked, not rendered), then
//! rendered per cell and port into a `ServerConfig` by `Scenario::resolve` (see
//! `server_render.rs`). Every template sees the cell's variables plus `port`.

use std::path::PathBuf;
use std::time::Duration;

use super::doc::{Kind, Node, Origin, Table};
use super::error::join_key;
use super::launch::{LogPattern, PortChoice, RestartPolicy};
use super::read::Ctx;
use super::target::checked_template;

const KEYS: &[&str] = &[
    "command",
    "shell",
    "stop_command",
    "env",
    "cwd",
    "port",
    "ready_url",
    "ready_log",
    "ready_timeout",
    "warmup_requests",
    "stop_grace",
    "restart",
    "reset_url",
    "version_command",
];
const RESTARTS: &[&str] = &["per-cell", "per-repetition", "never"];
/// Keys that describe a launch, meaningless for `restart = "never"`.
const LAUNCH_KEYS: &[&str] = &["command", "shell", "stop_command", "env", "cwd"];

/// `[server]` with its templates unrendered.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ServerSpec {
    /// Argument templates; one element run under `sh -c` when `shell`.
    pub command: Option<Vec<String>>,
    pub shell: bool,
    pub stop_command: Option<Vec<String>>,
    pub version_command: Option<Vec<String>>,
    pub env: Vec<(String, String)>,
    pub cwd: Option<String>,
    pub port: Option<PortChoice>,
    pub ready_url: Option<String>,
    pub ready_log: Option<LogPattern>,
    pub ready_timeout: Duration,
    pub warmup_requests: u32,
    pub stop_grace: Duration,
    pub restart: RestartPolicy,
    pub reset_url: Option<String>,
    /// The scenario file's directory, for a relative `cwd`.
    pub base_dir: PathBuf,
}

/// Validates `[server]`; `names` are the scenario's variables (`port` is added here).
pub(crate) fn validate(ctx: &mut Ctx, node: &Node, names: &[String]) -> Option<ServerSpec> {
    let t = ctx.table("server", node, KEYS)?;
    let mut names = names.to_vec();
    names.push("port".into());
    let names = &names[..];
    let restart = match t.get("restart") {
        None => RestartPolicy::PerCell,
        Some(n) => match ctx.choice("server.restart", n, RESTARTS)? {
            "never" => RestartPolicy::Never,
            "per-repetition" => RestartPolicy::PerRepetition,
            _ => RestartPolicy::PerCell,
        },
    };
    let shell = t
        .get("shell")
        .map_or(Some(false), |n| ctx.bool("server.shell", n));
    let command = t
        .get("command")
        .map(|n| command(ctx, n, shell.unwrap_or(false), names));
    let argv = |ctx: &mut Ctx, key: &str| {
        t.get(key)
            .map(|n| argv_templates(ctx, &join_key("server", key), n, names))
    };
    let stop_command = argv(ctx, "stop_command");
    let version_command = argv(ctx, "version_command");
    let env = t.get("env").map(|n| env(ctx, n, names));
    let tpl = |ctx: &mut Ctx, key: &str| {
        t.get(key)
            .map(|n| checked_template(ctx, &join_key("server", key), n, names))
    };
    let cwd = tpl(ctx, "cwd");
    let ready_url = tpl(ctx, "ready_url");
    let reset_url = tpl(ctx, "reset_url");
    let port = t.get("port").map(|n| port(ctx, n));
    let ready_log = t.get("ready_log").map(|n| ready_log(ctx, n));
    let timing = timing(ctx, t);
    let port = port.flatten();
    policy_rules(ctx, t, &node.origin, restart, port);
    // A launch that did not validate could use any variable: give up on the whole table, so
    // later checks do not guess which variables the server reads.
    let (Some(command), Some(env), Some(cwd)) = (
        command.map_or(Some(None), |c| c.map(Some)),
        env.map_or(Some(None), |e| e.map(Some)),
        cwd.map_or(Some(None), |c| c.map(Some)),
    ) else {
        return None;
    };
    Some(ServerSpec {
        command,
        shell: shell?,
        stop_command: stop_command.flatten(),
        version_command: version_command.flatten(),
        env: env.unwrap_or_default(),
        cwd,
        port: port.or((restart != RestartPolicy::Never).then_some(PortChoice::Auto)),
        ready_url: ready_url.flatten(),
        ready_log: ready_log.flatten(),
        ready_timeout: timing?.0,
        warmup_requests: timing?.2,
        stop_grace: timing?.1,
        restart,
        reset_url: reset_url.flatten(),
        base_dir: ctx.resolve_path(""),
    })
}

const SEC: Duration = Duration::from_secs(1);

/// `ready_timeout` (default 10 min), `stop_grace` (30 s) and `warmup_requests` (0).
fn timing(ctx: &mut Ctx, t: &Table) -> Option<(Duration, Duration, u32)> {
    let day = 86400 * SEC;
    let ready_timeout = t.get("ready_timeout").map_or(Some(600 * SEC), |n| {
        ctx.duration("server.ready_timeout", n, day)
    });
    let stop_grace = t.get("stop_grace").map_or(Some(30 * SEC), |n| {
        ctx.duration("server.stop_grace", n, 3600 * SEC)
    });
    let warmup_requests = t.get("warmup_requests").map_or(Some(0), |n| {
        ctx.int("server.warmup_requests", n, 0, 1_000_000, None)
    });
    Some((ready_timeout?, stop_grace?, warmup_requests? as u32))
}

/// A launched server needs a command, an external one (`never`) must not have one; one
/// readiness probe.
fn policy_rules(
    ctx: &mut Ctx,
    t: &Table,
    origin: &Origin,
    restart: RestartPolicy,
    port: Option<PortChoice>,
) {
    if let (Some(_), Some(_)) = (t.get("ready_url"), t.get("ready_log")) {
        let hint =
            "keep one: a URL that must answer 2xx, or a line to wait for in the server's output";
        ctx.error(
            origin,
            "server.ready_log",
            "`ready_url` and `ready_log` are alternatives",
            Some(hint.into()),
        );
    }
    if restart != RestartPolicy::Never {
        let hint = "the server's command line as an array, e.g. `command = [\"vllm\", \"serve\", \"{{ model }}\", \"--port\", \"{{ port }}\"]`, or restart = \"never\" for a server that is already running";
        ctx.require("server", (t, origin), "command", hint);
        return;
    }
    for e in t
        .entries
        .iter()
        .filter(|e| LAUNCH_KEYS.contains(&e.key.as_str()))
    {
        let hint = "restart = \"never\" measures a server that is already running; remove the key, or choose restart = \"per-cell\" to launch it";
        ctx.error(
            &e.key_origin,
            &join_key("server", &e.key),
            "not used with restart = \"never\"",
            Some(hint.into()),
        );
    }
    if port == Some(PortChoice::Auto)
        && let Some(n) = t.get("port")
    {
        let hint = "give the port the running server listens on, e.g. `port = 8000`";
        ctx.error(
            &n.origin,
            "server.port",
            "\"auto\" picks a port for a server exp launches, but restart = \"never\" launches none",
            Some(hint.into()),
        );
    }
}

/// `command`: an array of templates, or one string with `shell = true`.
fn command(ctx: &mut Ctx, node: &Node, shell: bool, names: &[String]) -> Option<Vec<String>> {
    match (&node.kind, shell) {
        (Kind::Str(_), true) => {
            checked_template(ctx, "server.command", node, names).map(|s| vec![s])
        }
        (Kind::Str(_), false) => {
            let hint = "write the arguments as an array, run without a shell (`command = [\"vllm\", \"serve\", \"{{ model }}\"]`), or add `shell = true` to run the string under `sh -c`";
            ctx.error(
                &node.origin,
                "server.command",
                "a single string runs under a shell only with `shell = true`",
                Some(hint.into()),
            );
            None
        }
        (Kind::Array(_), true) => {
            let hint = "with `shell = true`, write the command as one string for `sh -c`; or drop `shell` to run the array directly";
            ctx.error(
                &node.origin,
                "server.command",
                "`shell = true` takes the command as a single string",
                Some(hint.into()),
            );
            None
        }
        _ => argv_templates(ctx, "server.command", node, names),
    }
}

/// A non-empty array of templates whose first element (the program) is not empty.
fn argv_templates(ctx: &mut Ctx, key: &str, node: &Node, names: &[String]) -> Option<Vec<String>> {
    let Kind::Array(items) = &node.kind else {
        let hint = "an array of arguments, e.g. `[\"docker\", \"stop\", \"vllm-{{ port }}\"]`";
        let message = format!("expected an array of strings, got {}", node.describe());
        ctx.error(&node.origin, key, message, Some(hint.into()));
        return None;
    };
    if items.is_empty() {
        ctx.error(&node.origin, key, "empty command: no program to run", None);
        return None;
    }
    let mut out = Vec::with_capacity(items.len());
    let mut ok = true;
    for (i, item) in items.iter().enumerate() {
        match checked_template(ctx, &format!("{key}[{i}]"), item, names) {
            Some(s) if i == 0 && s.trim().is_empty() => {
                ctx.error(
                    &item.origin,
                    &format!("{key}[0]"),
                    "empty program name",
                    None,
                );
                ok = false;
            }
            Some(s) => out.push(s),
            None => ok = false,
        }
    }
    ok.then_some(out)
}

fn env(ctx: &mut Ctx, node: &Node, names: &[String]) -> Option<Vec<(String, String)>> {
    let t = ctx.table("server.env", node, &[])?;
    let mut out = vec![];
    let mut ok = true;
    for e in &t.entries {
        let key = join_key("server.env", &e.key);
        let valid = e
            .key
            .starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
            && e.key.chars().all(|c| c == '_' || c.is_ascii_alphanumeric());
        if !valid {
            let hint = "use letters, digits and `_`, e.g. `CUDA_VISIBLE_DEVICES`";
            ctx.error(
                &e.key_origin,
                &key,
                format!("{:?} is not a valid environment variable name", e.key),
                Some(hint.into()),
            );
            ok = false;
            continue;
        }
        let value = match &e.value.kind {
            Kind::Int(i) => Some(i.to_string()),
            Kind::Bool(b) => Some(b.to_string()),
            _ => checked_template(ctx, &key, &e.value, names),
        };
        match value {
            Some(v) => out.push((e.key.clone(), v)),
            None => ok = false,
        }
    }
    ok.then_some(out)
}

fn port(ctx: &mut Ctx, node: &Node) -> Option<PortChoice> {
    if let Kind::Str(s) = &node.kind {
        if s == "auto" {
            return Some(PortChoice::Auto);
        }
        let hint = "a port number such as 8000, or \"auto\" to pick a free port for every launch";
        let message = format!(
            "expected a port number or \"auto\", got {}",
            node.describe()
        );
        ctx.error(&node.origin, "server.port", message, Some(hint.into()));
        return None;
    }
    let hint = Some("a port number such as 8000, or \"auto\"");
    let p = ctx.int("server.port", node, 1, 65535, hint)?;
    Some(PortChoice::Fixed(p as u16))
}

fn ready_log(ctx: &mut Ctx, node: &Node) -> Option<LogPattern> {
    if let Kind::Table(_) = node.kind {
        let t = ctx.table("server.ready_log", node, &["regex"])?;
        let hint = "write `ready_log = { regex = \"listening on .*:[0-9]+\" }`";
        let n = ctx.require("server.ready_log", (t, &node.origin), "regex", hint)?;
        let source = ctx.string("server.ready_log.regex", n)?;
        return match regex::Regex::new(source) {
            Ok(_) => Some(LogPattern::Regex(source.to_string())),
            Err(e) => {
                // regex's messages draw the pattern over several lines; keep the last one.
                let text = e.to_string();
                let last = text
                    .lines()
                    .rev()
                    .find(|l| !l.trim().is_empty())
                    .unwrap_or("");
                let message = format!(
                    "invalid regular expression: {}",
                    last.trim().trim_start_matches("error: ")
                );
                ctx.error(&n.origin, "server.ready_log.regex", message, None);
                None
            }
        };
    }
    let s = ctx.string("server.ready_log", node)?;
    if s.is_empty() {
        let hint = "the text the server prints once it accepts requests, e.g. \"Application startup complete\"";
        ctx.error(
            &node.origin,
            "server.ready_log",
            "must not be empty",
            Some(hint.into()),
        );
        return None;
    }
    Some(LogPattern::Substring(s.to_string()))
}
