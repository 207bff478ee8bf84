//! `[workload]`: the arrival process, prompt source and length distributions, validated into a
//! [`WorkloadSpec`]; the cell's well-known variables (`request_rate`, `prompt_tokens`, …) turn
//! it into a [`WorkloadConfig`] in `Scenario::resolve`.

use std::num::NonZeroU32;
use std::path::PathBuf;
use std::time::Duration;

use super::arrival::ArrivalKind;
use super::doc::{Kind, Node, Origin, Table};
use super::error::{Locs, ScenarioError, join_key};
use super::model::{LengthDist, PromptSource, Vars, WorkloadConfig};
use super::read::{Ctx, Range};
use super::wellknown::{self, count_at as count, located as fail};

const KEYS: &[&str] = &[
    "arrival",
    "prompts",
    "shared_prefix",
    "prompt_dist",
    "output_dist",
    "trace",
    "warmup",
    "grace",
    "max_concurrency",
    "think_time",
];
const DATASET_KINDS: &[&str] = &["jsonl", "sharegpt", "conversations"];

/// `[workload]`, validated.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct WorkloadSpec {
    pub arrival: ArrivalKind,
    pub prompts: PromptSource,
    pub prompt_dist: LengthDist,
    pub output_dist: LengthDist,
    pub trace: Option<PathBuf>,
    pub warmup: u32,
    pub grace: Duration,
    pub max_concurrency: Option<NonZeroU32>,
}

/// Validates `[workload]` (absent means all defaults).
pub(crate) fn validate(ctx: &mut Ctx, node: Option<&Node>) -> Option<WorkloadSpec> {
    let empty = Node::new(Origin::File(0..0), Kind::Table(Table::default()));
    let node = node.unwrap_or(&empty);
    let t = ctx.table("workload", node, KEYS)?;
    let arrival = match t.get("arrival") {
        None => Some(ArrivalKind::Poisson),
        Some(n) => {
            let names = ArrivalKind::ALL.map(ArrivalKind::name);
            ctx.choice("workload.arrival", n, &names)
                .and_then(ArrivalKind::parse)
        }
    };
    let prompts = prompts(ctx, node);
    let dist = |ctx: &mut Ctx, name: &str| {
        t.get(name).map_or(Some(LengthDist::Fixed), |n| {
            length_dist(ctx, &join_key("workload", name), n)
        })
    };
    let prompt_dist = dist(ctx, "prompt_dist");
    let output_dist = dist(ctx, "output_dist");
    let trace = t
        .get("trace")
        .map(|n| ctx.path_value("workload.trace", n, true));
    let warmup = t.get("warmup").map_or(Some(5), |n| {
        ctx.int("workload.warmup", n, 0, 1_000_000, None)
    });
    let grace = t.get("grace").map_or(Some(Duration::from_secs(30)), |n| {
        ctx.duration("workload.grace", n, Duration::from_secs(86400))
    });
    let max_concurrency = t
        .get("max_concurrency")
        .map(|n| ctx.int("workload.max_concurrency", n, 1, 1_000_000, None));
    let arrival = arrival?;
    arrival_rules(ctx, t, &node.origin, arrival);
    conversation_rules(ctx, t, arrival, prompts.as_ref());
    Some(WorkloadSpec {
        arrival,
        prompts: prompts?,
        prompt_dist: prompt_dist?,
        output_dist: output_dist?,
        trace: trace.flatten(),
        warmup: warmup? as u32,
        grace: grace?,
        max_concurrency: max_concurrency
            .flatten()
            .and_then(|n| NonZeroU32::new(n as u32)),
    })
}

/// `trace` goes with arrival = "trace" only; `max_concurrency` with open-loop arrivals only.
fn arrival_rules(ctx: &mut Ctx, t: &Table, origin: &Origin, arrival: ArrivalKind) {
    let at = |k: &str| {
        t.entries
            .iter()
            .find(|e| e.key == k)
            .map(|e| e.key_origin.clone())
    };
    match (arrival.replays_trace(), at("trace")) {
        (true, None) => {
            let hint = "arrival = \"trace\" replays a JSONL file: `trace = \"traces/x.jsonl\"`";
            ctx.require("workload", (t, origin), "trace", hint);
        }
        (true, Some(_)) | (false, None) => {}
        (false, Some(origin)) => {
            let hint = "set arrival = \"trace\" to replay it, or remove `trace`";
            let message = format!("not used by arrival = {:?}", arrival.name());
            ctx.error(&origin, "workload.trace", message, Some(hint.into()));
        }
    }
    if let (true, Some(origin)) = (arrival.bounds_in_flight(), at("max_concurrency")) {
        let hint = "it caps open-loop arrivals; closed and batch modes are bounded by `concurrency` / `batch_size`";
        let message = format!("not used by arrival = {:?}", arrival.name());
        ctx.error(
            &origin,
            "workload.max_concurrency",
            message,
            Some(hint.into()),
        );
    }
}

/// Conversations are released by an arrival process; a trace brings its own prompts and lengths.
fn conversation_rules(
    ctx: &mut Ctx,
    t: &Table,
    arrival: ArrivalKind,
    prompts: Option<&PromptSource>,
) {
    if let (true, Some(PromptSource::Conversations { .. }), Some(n)) =
        (arrival.replays_trace(), prompts, t.get("prompts"))
    {
        let hint = "release conversations with poisson, gamma, constant, closed or batch arrivals";
        ctx.error(
            &n.origin,
            "workload.prompts",
            "conversations cannot be replayed with arrival = \"trace\"",
            Some(hint.into()),
        );
    }
}

/// Whether a `[workload]` table has keys it should not.
pub(crate) fn has_unknown_keys(node: &Node) -> bool {
    node.as_table()
        .is_some_and(|t| t.entries.iter().any(|e| !KEYS.contains(&e.key.as_str())))
}

fn prompts(ctx: &mut Ctx, node: &Node) -> Option<PromptSource> {
    let t = node.as_table()?;
    let shared = t.entries.iter().find(|e| e.key == "shared_prefix");
    let think = t.entries.iter().find(|e| e.key == "think_time");
    let source = match t.get("prompts") {
        None => PromptSource::Synthetic,
        Some(n) if matches!(n.kind, Kind::Table(_)) => {
            let pt = ctx.table("workload.prompts", n, DATASET_KINDS)?;
            let [e] = pt.entries.as_slice() else {
                let hint = "write `prompts = { jsonl = \"prompts.jsonl\" }`, `{ sharegpt = \"sg.json\" }` or `{ conversations = \"chats.json\" }`";
                ctx.error(
                    &n.origin,
                    "workload.prompts",
                    "needs exactly one of `jsonl`, `sharegpt` and `conversations`",
                    Some(hint.into()),
                );
                return None;
            };
            let path = ctx.path_value(&join_key("workload.prompts", &e.key), &e.value, true)?;
            match e.key.as_str() {
                "jsonl" => PromptSource::Jsonl(path),
                "sharegpt" => PromptSource::ShareGpt(path),
                _ => PromptSource::Conversations {
                    path,
                    think_time: think
                        .map_or(Some(Duration::ZERO), |e| think_time(ctx, &e.value))?,
                },
            }
        }
        Some(n) => match ctx.choice("workload.prompts", n, &["synthetic", "shared-prefix"])? {
            "synthetic" => PromptSource::Synthetic,
            _ => {
                let hint = "add `shared_prefix = { groups = 8, prefix_tokens = 256 }`";
                let s = ctx.require("workload", (t, &node.origin), "shared_prefix", hint)?;
                return shared_prefix(ctx, s);
            }
        },
    };
    if let (Some(e), false) = (think, matches!(source, PromptSource::Conversations { .. })) {
        let hint = "set prompts = { conversations = \"chats.json\" } to use it, or remove it";
        ctx.error(
            &e.key_origin,
            "workload.think_time",
            "only used with multi-turn conversations",
            Some(hint.into()),
        );
    }
    if let Some(e) = shared {
        let hint = "set prompts = \"shared-prefix\" to use it, or remove it";
        ctx.error(
            &e.key_origin,
            "workload.shared_prefix",
            "only used with prompts = \"shared-prefix\"",
            Some(hint.into()),
        );
    }
    Some(source)
}

/// `think_time`: a duration up to an hour; unlike other durations it may be 0 (the default).
fn think_time(ctx: &mut Ctx, node: &Node) -> Option<Duration> {
    if let Kind::Str(text) = &node.kind
        && super::duration::parse(text).is_ok_and(|d| d.is_zero())
    {
        return Some(Duration::ZERO);
    }
    ctx.duration("workload.think_time", node, Duration::from_secs(3600))
}

fn shared_prefix(ctx: &mut Ctx, node: &Node) -> Option<PromptSource> {
    let key = "workload.shared_prefix";
    let t = ctx.table(key, node, &["groups", "prefix_tokens"])?;
    let hint = "write `shared_prefix = { groups = 8, prefix_tokens = 256 }`";
    let groups = ctx.require(key, (t, &node.origin), "groups", hint);
    let groups = groups.and_then(|n| ctx.int(&join_key(key, "groups"), n, 1, 1_000_000, None));
    let prefix = ctx.require(key, (t, &node.origin), "prefix_tokens", hint);
    let prefix =
        prefix.and_then(|n| ctx.int(&join_key(key, "prefix_tokens"), n, 1, 10_000_000, None));
    Some(PromptSource::SharedPrefix {
        groups: NonZeroU32::new(groups? as u32)?,
        prefix_tokens: prefix? as u32,
    })
}

fn length_dist(ctx: &mut Ctx, key: &str, node: &Node) -> Option<LengthDist> {
    let hint = "write \"fixed\", `{ uniform = 0.2 }`, `{ normal = 0.1 }` or `{ lognormal = 0.5 }`";
    if let Kind::Str(text) = &node.kind {
        if text != "fixed" {
            ctx.error(
                &node.origin,
                key,
                format!("unknown distribution {text:?}"),
                Some(hint.into()),
            );
            return None;
        }
        return Some(LengthDist::Fixed);
    }
    let t = ctx.table(key, node, &["uniform", "normal", "lognormal"])?;
    let [e] = t.entries.as_slice() else {
        ctx.error(
            &node.origin,
            key,
            "needs exactly one distribution",
            Some(hint.into()),
        );
        return None;
    };
    let k = join_key(key, &e.key);
    Some(match e.key.as_str() {
        "uniform" => LengthDist::Uniform {
            spread: ctx.number(
                &k,
                &e.value,
                Range::above(0.0).below(1.0),
                Some("relative half-width, e.g. 0.2"),
            )?,
        },
        "normal" => LengthDist::Normal {
            cv: ctx.number(
                &k,
                &e.value,
                Range::above(0.0).up_to(10.0),
                Some("std / mean, e.g. 0.1"),
            )?,
        },
        "lognormal" => LengthDist::Lognormal {
            sigma: ctx.number(
                &k,
                &e.value,
                Range::above(0.0).up_to(5.0),
                Some("σ of ln(length), e.g. 0.5"),
            )?,
        },
        _ => return None,
    })
}

impl WorkloadSpec {
    /// The workload of one cell.
    pub(crate) fn render(&self, vars: &Vars, locs: &Locs) -> Result<WorkloadConfig, ScenarioError> {
        let arrival = self.arrival.config(self.trace.as_deref(), vars, locs)?;
        let prompt_tokens = count(vars, locs, "prompt_tokens", Some(512))?.unwrap_or(512) as u32;
        if let PromptSource::SharedPrefix { prefix_tokens, .. } = self.prompts
            && prefix_tokens >= prompt_tokens
        {
            let message = format!(
                "prefix_tokens ({prefix_tokens}) must be below prompt_tokens ({prompt_tokens})"
            );
            let hint = "the shared prefix is part of each prompt; lower it or raise prompt_tokens";
            return Err(locs.error(
                "workload.shared_prefix.prefix_tokens",
                message,
                Some(hint.into()),
            ));
        }
        let duration = wellknown::duration_var(vars).map_err(|p| fail(locs, "duration", p))?;
        let requests = count(vars, locs, "requests", None)?;
        Ok(WorkloadConfig {
            prompts: self.prompts.clone(),
            prompt_tokens,
            prompt_dist: self.prompt_dist,
            output_tokens: count(vars, locs, "output_tokens", Some(128))?.unwrap_or(128) as u32,
            output_dist: self.output_dist,
            arrival,
            max_concurrency: self.max_concurrency,
            requests: if requests.is_none() && duration.is_none() {
                Some(100)
            } else {
                requests
            },
            duration,
            warmup: self.warmup,
            grace: self.grace,
        })
    }
}
