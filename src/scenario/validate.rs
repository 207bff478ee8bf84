//! Raw document → [`Scenario`]: walks every top-level table, collecting all problems, then
//! checks what spans tables (engine variables against the target, variables the arrival
//! process needs). Matrix-level checks (cell count, exclusions, baseline, per-cell
//! rendering) run later, in `plan::Plan::build`.

use std::collections::BTreeSet;

use super::doc::{Node, Origin, Table};
use super::error::{Locs, closest};
use super::model::{Experiment, RunOrder, Scenario, TargetKind, Value, VarSpec};
use super::read::Ctx;
use super::target::TargetSpec;
use super::wellknown::ENGINE_VARS;
use super::workload::WorkloadSpec;
use super::{
    analysis, arrival, probes, quality, search, server, server_rules, target, vars, workload,
};

const TOP_KEYS: &[&str] = &[
    "experiment",
    "target",
    "vars",
    "workload",
    "slo",
    "checks",
    "analysis",
    "report",
    "server",
    "probes",
    "cost",
    "search",
    "quality",
];

/// Validates a whole document. `None` when any error was recorded in `ctx`.
pub(crate) fn validate(
    ctx: &mut Ctx,
    root: &Node,
    text: &str,
    overrides: Vec<String>,
) -> Option<Scenario> {
    let locs = ctx.locs(root);
    let t = ctx.table("", root, TOP_KEYS)?;
    let experiment = experiment(ctx, t.get("experiment"), root);
    let (mut var_spec, mut names) = vars::validate(ctx, t.get("vars"));
    let server = t.get("server").map(|n| server::validate(ctx, n, &names));
    // `port` is a template variable wherever a server is involved.
    let mut names_port = names.clone();
    if t.get("server").is_some() {
        names_port.push("port".into());
    }
    let target = target::validate(ctx, t.get("target"), root, &names_port);
    let probes = t
        .get("probes")
        .map(|n| probes::validate(ctx, n, &names_port));
    let gpu_hour = t.get("cost").map(|n| probes::cost(ctx, n));
    let workload = workload::validate(ctx, t.get("workload"));
    let slo = analysis::slo(ctx, t.get("slo"));
    let search_context = search::Context {
        arrival: workload.as_ref().map(|w| w.arrival),
        has_slo: !slo.is_empty(),
    };
    let search = search::search(
        ctx,
        t.get("search"),
        search_context,
        &mut var_spec,
        &mut names,
    );
    let quality = t.get("quality").map(|n| quality::validate(ctx, n, &names));
    if let (Some(Some(_)), Some(target)) = (&quality, &target)
        && target.kind == TargetKind::Sim
        && let Some(n) = t.get("quality")
    {
        let hint = "point the scenario at a server that generates text (`[target] kind = \"openai-completions\"` with `base_url`, or a [server] to launch), or drop [quality]";
        ctx.error(
            &n.origin,
            "quality",
            "the simulated engine generates no text, so it has no quality to score",
            Some(hint.into()),
        );
    }
    if let (Some(Some(q)), Some(target)) = (&quality, &target)
        && let Some(p) = &q.perplexity
        && p.window_tokens.is_some()
        && target.tokenizer.is_none()
    {
        let node = (t.get("quality").and_then(|n| n.as_table()))
            .and_then(|q| q.get("perplexity"))
            .and_then(|n| n.as_table())
            .and_then(|p| p.get("window_tokens"));
        if let Some(n) = node {
            let hint = "set `tokenizer = \"path/to/tokenizer.json\"` in [target] (the model's tokenizer.json), or drop window_tokens to send each document whole";
            ctx.error(
                &n.origin,
                "quality.perplexity.window_tokens",
                "needs [target] tokenizer, to cut long documents into windows of token ids",
                Some(hint.into()),
            );
        }
    }
    let checks = analysis::checks(ctx, t.get("checks"));
    let analysis = analysis::analysis(ctx, t.get("analysis"), &names);
    let report = analysis::report(ctx, t.get("report"));
    if let (Some(target), Some(workload)) = (&target, &workload) {
        // A misspelt [workload] key may be the arrival the user meant; don't guess.
        let typo = t.get("workload").is_some_and(workload::has_unknown_keys);
        // A [server] whose launch did not validate may use any variable: don't guess.
        let launch_vars = match &server {
            None => Some(BTreeSet::new()),
            Some(s) => s.as_ref().map(server::ServerSpec::launch_variables),
        };
        let vars = (&var_spec, &names[..], launch_vars.as_ref());
        cross_check(ctx, &locs, target, (workload, typo), vars);
    }
    let sections = server_rules::Sections {
        target: target.as_ref(),
        order: experiment.as_ref().map(|e| e.order),
        server: server.as_ref(),
        probes: probes.is_some(),
    };
    server_rules::check_sections(ctx, &locs, sections, &names);
    if let (Some(Some(_)), Some(e)) = (&search, &experiment)
        && e.adaptive.is_some()
    {
        ctx.warnings.push(
            "experiment.repetitions: adaptive repetitions do not apply to [search]; every probe runs search.repetitions times".into(),
        );
    }
    if !ctx.errors.is_empty() {
        return None;
    }
    Some(Scenario {
        source: ctx.path().to_path_buf(),
        text: text.to_string(),
        experiment: experiment?,
        vars: var_spec,
        slo,
        checks,
        analysis: analysis?,
        report: report?,
        search: search?,
        warnings: std::mem::take(&mut ctx.warnings),
        overrides,
        target: target?,
        workload: workload?,
        server: server.flatten(),
        probes: probes.flatten(),
        gpu_hour: gpu_hour.flatten(),
        quality: quality.flatten(),
        locs,
    })
}

fn experiment(ctx: &mut Ctx, node: Option<&Node>, root: &Node) -> Option<Experiment> {
    let Some(node) = node else {
        let hint = "add [experiment] with `name` and `description`";
        ctx.error(
            &root.origin,
            "experiment",
            "missing required table [experiment]",
            Some(hint.into()),
        );
        return None;
    };
    let t = ctx.table(
        "experiment",
        node,
        &["name", "description", "seed", "repetitions", "order"],
    )?;
    let name = experiment_name(ctx, t, &node.origin);
    let description = description(ctx, t, &node.origin);
    let seed = t.get("seed").map_or(Some(0), |n| {
        ctx.int("experiment.seed", n, 0, i64::MAX, None)
    });
    let reps = super::repetitions::repetitions(ctx, t.get("repetitions"));
    let order = t.get("order").map_or(Some("randomized-blocks"), |n| {
        ctx.choice(
            "experiment.order",
            n,
            &["randomized-blocks", "sequential", "grouped"],
        )
    });
    let (repetitions, adaptive) = reps?;
    Some(Experiment {
        name: name?,
        description: description?,
        seed: seed? as u64,
        repetitions,
        adaptive,
        order: match order? {
            "sequential" => RunOrder::Sequential,
            "grouped" => RunOrder::Grouped,
            _ => RunOrder::RandomizedBlocks,
        },
    })
}

/// `name`: a slug, since it names the results directory (and so must not escape it).
fn experiment_name(ctx: &mut Ctx, t: &Table, origin: &Origin) -> Option<String> {
    let hint = "add `name = \"my_experiment\"` (it names the results directory)";
    let n = ctx.require("experiment", (t, origin), "name", hint)?;
    let s = ctx.string("experiment.name", n)?;
    let slug = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-';
    if (1..=64).contains(&s.len()) && s.chars().all(slug) {
        return Some(s.to_string());
    }
    let hint = "it names the results directory: use 1 to 64 characters of a-z, 0-9, `_` and `-`";
    ctx.error(
        &n.origin,
        "experiment.name",
        format!("{s:?} is not a valid name"),
        Some(hint.into()),
    );
    None
}

fn description(ctx: &mut Ctx, t: &Table, origin: &Origin) -> Option<String> {
    let hint = "add `description = \"what this experiment tests\"`";
    let n = ctx.require("experiment", (t, origin), "description", hint)?;
    let s = ctx.string("experiment.description", n)?;
    if s.trim().is_empty() {
        ctx.error(
            &n.origin,
            "experiment.description",
            "must not be empty",
            Some(hint.into()),
        );
        return None;
    }
    Some(s.to_string())
}

/// Checks that need both `[target]`/`[workload]` and `[vars]`.
fn cross_check(
    ctx: &mut Ctx,
    locs: &Locs,
    target: &TargetSpec,
    (workload, workload_typo): (&WorkloadSpec, bool),
    (spec, names, launch_vars): (&VarSpec, &[String], Option<&BTreeSet<String>>),
) {
    let declared = |n: &str| names.iter().any(|x| x == n);
    // A label that is a typo of `n` (already reported) counts as labelling `n`.
    let labelled = |n: &str| {
        spec.labels.iter().any(|l| {
            l == n || (!declared(l) && closest(l, names.iter().map(String::as_str)) == Some(n))
        })
    };
    for var in ENGINE_VARS.iter().copied().filter(|v| declared(v)) {
        if target.kind != TargetKind::Sim
            && !labelled(var)
            && launch_vars.is_some_and(|l| !l.contains(var))
        {
            let what = if var == "tp" {
                "tensor-parallel degree".to_string()
            } else {
                format!("`{var}`")
            };
            let message = format!(
                "`{var}` is an engine variable, but kind = {:?} measures a fixed server",
                target.kind.name()
            );
            let hint = format!(
                "a fixed external server cannot change its {what}; pass it to a server exp launches (`[server] command = [..., \"{{{{ {var} }}}}\"]`), mark it as a label with `labels = [\"{var}\"]`, or use kind = \"sim\""
            );
            ctx.errors
                .push(locs.error(&locs.var_key(var), message, Some(hint)));
        }
        if target.kind == TargetKind::Sim && labelled(var) {
            ctx.warnings.push(format!(
                "vars.labels: `{var}` is a label, but the simulator still acts on it"
            ));
        }
    }
    if let Some(var) = workload
        .arrival
        .required_var()
        .filter(|v| !declared(v) && !workload_typo)
    {
        ctx.errors
            .push(arrival::missing(locs, workload.arrival, var));
    }
    workload_warnings(ctx, locs, workload, spec, &declared);
}

/// Settings that are accepted but may not mean what the author thinks (issue 12): each a
/// warning at its line, in the same words as errors.
fn workload_warnings(
    ctx: &mut Ctx,
    locs: &Locs,
    workload: &WorkloadSpec,
    spec: &VarSpec,
    declared: &dyn Fn(&str) -> bool,
) {
    let warn = |ctx: &mut Ctx, key: &str, message: String, hint: &str| {
        let located = locs.error(key, message, Some(hint.into()));
        ctx.warnings.push(located.to_string());
    };
    if declared("concurrency") && !workload.arrival.bounds_in_flight() {
        let message = format!(
            "`concurrency` is set, but arrival = \"{}\" sends on its own schedule and never reads it",
            workload.arrival.name()
        );
        let hint = "to cap the requests in flight use `workload.max_concurrency`; for a fixed number in flight use arrival = \"closed\"";
        warn(ctx, &locs.var_key("concurrency"), message, hint);
    }
    if declared("requests") && declared("duration") {
        let message = "`requests` and `duration` are both set: a repetition ends at whichever it reaches first".to_string();
        let hint = "keep one of them to say what a repetition is";
        warn(ctx, &locs.var_key("duration"), message, hint);
    }
    let fewest = var_values(spec, "requests")
        .filter_map(|v| match v {
            Value::Int(n) => Some(*n),
            _ => None,
        })
        .min();
    if let Some(n) = fewest.filter(|n| i64::from(workload.warmup) > *n) {
        let message = format!(
            "`warmup` = {} sends more warm-up requests than the {n} measured in a repetition, before each of them",
            workload.warmup
        );
        let hint = "a few dozen warm-up requests are usually enough; warm-up is sent and discarded in every repetition";
        warn(ctx, "workload.warmup", message, hint);
    }
}

/// Every value a variable takes: fixed, swept or linked.
fn var_values<'a>(spec: &'a VarSpec, name: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
    let fixed = spec.fixed.get(name).into_iter();
    let sweep = (spec.sweep.iter())
        .filter(move |(n, _)| n == name)
        .flat_map(|(_, values)| values);
    let linked = (spec.linked.iter())
        .flat_map(|g| &g.vars)
        .filter(move |(n, _)| n == name)
        .flat_map(|(_, values)| values);
    fixed.chain(sweep).chain(linked)
}
