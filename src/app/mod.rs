//! The application: each subcommand as a short pipeline over the library's stages
//! (scenario → plan → run → metrics → analysis → report). The only place that prints results.

pub mod calibrate;
mod charts;
mod cluster;
mod compare;
mod estimate;
mod fanout;
mod finish;
mod manifest_sync;
mod merge;
mod prompt_lengths;
mod rounds;
mod search;
mod secret;
mod sequential;
mod serve;
mod session;

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

use crate::cli::{Cli, Command, EstimateArgs, ReportFormat, RunArgs, ServeArgs, TargetArgs};
use crate::plan::Plan;
use crate::run;
use crate::run::RunEnd;
use crate::scenario::{self, Scenario};
use crate::store::{self, Manifest, RunDir, RunStatus};

pub use finish::{finish_run, load_results, new_manifest};

/// How a command ended, when it did not fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Everything fine.
    Ok,
    /// The run finished but a declared check failed.
    ChecksFailed,
    /// Ctrl-C: finished repetitions are kept.
    Interrupted,
    /// `--fail-on` was met by a comparison with a baseline.
    CompareFailed,
    /// The comparison with a baseline is invalid (no matched cell, or every verdict invalid).
    CompareInvalid,
    /// The run ended with failed repetitions (their server died, was not there, or answered
    /// none of their requests): the report lists them, `--resume` retries them.
    Partial,
}

impl Status {
    /// The process exit code.
    pub fn code(self) -> u8 {
        match self {
            Status::Ok => 0,
            Status::ChecksFailed => 1,
            Status::Interrupted => 130,
            Status::CompareFailed => 1,
            Status::CompareInvalid => 2,
            Status::Partial => 3,
        }
    }
}

/// Runs one command line.
pub fn run(cli: Cli) -> anyhow::Result<Status> {
    match cli.command {
        Command::Validate { paths } => validate(&paths),
        Command::Plan { scenario, target } => {
            let plan = load_plan(&scenario, &target)?;
            print!("{}", crate::secrets::scrub(&plan.render()));
            for w in &plan.scenario.warnings {
                eprintln!("warning: {w}");
            }
            Ok(Status::Ok)
        }
        Command::Run(args) => runtime()?.block_on(run_command(args, None)),
        Command::Report {
            run_dir,
            template,
            stdout,
            format,
        } => report(&run_dir, template.as_deref(), stdout, format),
        Command::Estimate(args) => estimate(&args),
        Command::Merge(args) => merge::command(&args),
        Command::Slurm(args) => cluster::slurm(&args),
        Command::K8s(args) => cluster::k8s(&args),
        Command::Serve(args) => runtime()?.block_on(serve(args)),
        Command::Compare(args) => compare::command(&args),
        Command::Selftest { which } => selftest(&which),
        Command::Search(args) => {
            let path = args.scenario.clone();
            let plan = load_plan(&path, &args.target)?;
            if plan.scenario.search.is_none() {
                bail!(
                    "{}: no [search] table (add one with `variable`, `low` and `high`, e.g. `[search]\nlow = 1\nhigh = 50`)",
                    path.display()
                );
            }
            let run = RunArgs {
                scenario: Some(path),
                target: args.target,
                out: args.out,
                resume: None,
                no_progress: args.no_progress,
                baseline: None,
                fail_on: None,
                extra_looks: 0,
                shard: None,
                shard_by: crate::cli::ShardByArg::Rounds,
                client: None,
                start_at: None,
                max_skew: crate::fanout::MAX_SKEW,
                run_id: None,
            };
            runtime()?.block_on(run_command(run, Some(plan)))
        }
        Command::Calibrate {
            run_dir,
            out,
            model,
            gpu,
        } => calibrate::run(
            &run_dir,
            out.as_deref(),
            &calibrate::Hardware { model, gpu },
        )
        .map(|()| Status::Ok),
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

fn validate(paths: &[PathBuf]) -> anyhow::Result<Status> {
    let (mut files, mut bad) = (0usize, 0usize);
    for root in paths {
        if !root.exists() {
            bail!("{}: no such file or folder", root.display());
        }
        for path in scenario::discover(root) {
            files += 1;
            match scenario::load(&path)
                .map_err(|e| e.to_string())
                .and_then(|s| {
                    let plan = Plan::build(s).map_err(|e| e.to_string())?;
                    run::preflight(&plan).map_err(|e| format!("{}: {e}", path.display()))?;
                    Ok(plan)
                }) {
                Ok(plan) => {
                    let exp = &plan.scenario.experiment;
                    let reps = match &exp.adaptive {
                        Some(a) => format!("{} to {} adaptive", exp.repetitions, a.max),
                        None => exp.repetitions.to_string(),
                    };
                    println!(
                        "ok    {} ({} cells × {reps} repetitions)",
                        path.display(),
                        plan.cells.len()
                    );
                    for w in &plan.scenario.warnings {
                        eprintln!("warning: {w}");
                    }
                }
                Err(errors) => {
                    bad += 1;
                    eprintln!("{errors}");
                }
            }
        }
    }
    if files == 0 {
        bail!(
            "no *.toml scenario files found under {}",
            paths
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    if bad > 0 {
        bail!("{bad} of {files} scenario files have problems");
    }
    Ok(Status::Ok)
}

/// Loads a scenario with `--set` and `--target` applied, and plans it.
fn load_plan(path: &Path, target: &TargetArgs) -> anyhow::Result<Plan> {
    let scenario = load_scenario(path, None, target)?;
    Plan::build(scenario).map_err(|e| anyhow::anyhow!("{e}"))
}

fn load_scenario(path: &Path, text: Option<&str>, target: &TargetArgs) -> anyhow::Result<Scenario> {
    let mut overrides = target
        .set
        .iter()
        .map(|s| scenario::Override::parse(s))
        .collect::<Result<Vec<_>, _>>()?;
    // `--target URL --set target.kind=openai-chat` on a simulated scenario: the new kind
    // needs its base URL before validation.
    if let Some(url) = &target.target
        && overrides.iter().any(|o| o.key_path == "target.kind")
    {
        overrides.push(scenario::Override::parse(&format!(
            "target.base_url={url}"
        ))?);
    }
    let loaded = match text {
        Some(text) => scenario::parse(text, path, &overrides),
        None => scenario::load_with_overrides(path, &overrides),
    };
    let mut scenario = loaded.map_err(|e| anyhow::anyhow!("{e}"))?;
    crate::secrets::remember(scenario.secret_values().iter().map(String::as_str));
    if let Some(url) = &target.target {
        scenario
            .set_target_url(url)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    Ok(scenario)
}

/// `exp run` (and `exp search`, with its plan already built): a new run of the scenario, or
/// `--resume` of a saved one, executed to the end, reported, and compared with `--baseline`.
async fn run_command(args: RunArgs, planned: Option<Plan>) -> anyhow::Result<Status> {
    let show_progress = !args.no_progress && std::io::IsTerminal::is_terminal(&std::io::stderr());
    if let Some(baseline) = &args.baseline {
        compare::check_baseline(baseline)?;
    }
    let (mut plan, dir, mut manifest) = match &args.resume {
        Some(run_dir) => resume(run_dir, &args.target.set)?,
        None => new_run(&args, planned)?,
    };
    eprintln!("run directory: {}", dir.root().display());
    let end = match execute(&args, &mut plan, &dir, &mut manifest, show_progress).await {
        Ok(end) => end,
        Err(e) => {
            // The manifest says so; the repetitions marked complete stay for `--resume`.
            manifest.status = RunStatus::Failed;
            manifest.ended = Some(store::now_rfc3339());
            let saved = manifest_sync::save(&dir, &mut manifest);
            let e = anyhow::anyhow!("{e}; {}", stopped_text(dir.root()));
            return Err(match saved {
                Ok(()) => e,
                Err(save) => e.context(format!("and its manifest could not be updated: {save}")),
            });
        }
    };
    let checks_failed = close_run(&dir, &mut manifest, &plan, end)?;
    if end == RunEnd::Interrupted {
        match manifest.client {
            // A client cannot rejoin its load alone (see `fanout`).
            Some(_) => eprintln!(
                "interrupted: the repetitions this client finished are kept; `exp merge --clients` fails the others"
            ),
            None => eprintln!(
                "interrupted: continue with `exp run --resume {}`",
                dir.root().display()
            ),
        }
        return Ok(Status::Interrupted);
    }
    if let Some(status) = fanout::finished(&manifest) {
        return Ok(status);
    }
    if manifest.status == RunStatus::Partial {
        let baseline = match args.baseline {
            Some(_) => "; it was not compared with the baseline",
            None => "",
        };
        eprintln!(
            "partial: some repetitions failed (listed in the report){baseline}; retry them with `exp run --resume {}`",
            dir.root().display()
        );
        return Ok(Status::Partial);
    }
    if let Some(baseline) = &args.baseline {
        let status = sequential::after_run(
            &mut plan,
            &dir,
            &mut manifest,
            baseline,
            args.fail_on,
            args.extra_looks,
            show_progress,
        )
        .await?;
        if status != Status::Ok {
            return Ok(status);
        }
    }
    if let Some(shard) = &manifest.shard {
        eprintln!(
            "shard {}/{} complete{}: once every shard is, join them with `exp merge SHARD_DIR… --out DIR`",
            shard.index,
            shard.count,
            match checks_failed {
                true => " (its [checks] are judged on the merged run, not on one shard)",
                false => "",
            }
        );
        return Ok(Status::Ok);
    }
    Ok(if checks_failed {
        Status::ChecksFailed
    } else {
        Status::Ok
    })
}

/// Executes a new or resumed run's repetitions (a resumed run is checked first, once: its
/// data files may have changed since it was planned; a new one was checked before its
/// directory existed).
async fn execute(
    args: &RunArgs,
    plan: &mut Plan,
    dir: &RunDir,
    manifest: &mut Manifest,
    show_progress: bool,
) -> anyhow::Result<RunEnd> {
    if args.resume.is_some() {
        run::preflight(plan)?;
        run::check_api_keys(plan)?;
    }
    if plan.scenario.search.is_some() {
        search::execute(plan, dir, manifest, show_progress).await
    } else {
        rounds::execute(plan, dir, manifest, show_progress).await
    }
}

/// Plans a new run, checks what would stop it part-way ([`run::preflight`]) and creates its
/// directory and manifest; a search run starts with no probes.
fn new_run(args: &RunArgs, planned: Option<Plan>) -> anyhow::Result<(Plan, RunDir, Manifest)> {
    let path = args
        .scenario
        .as_deref()
        .context("a scenario file is required")?;
    let mut plan = match planned {
        Some(plan) => plan,
        None => load_plan(path, &args.target)?,
    };
    if let Some(shard) = args.shard {
        let shard = shard.by(args.shard_by.into());
        shard_plan(&mut plan, shard, args, path)?;
    }
    if let Some(client) = args.client {
        let flag = format!("--client {client}");
        fanout::check(&plan, client, &flag, args.baseline.is_some(), path)?;
    }
    run::preflight(&plan).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    run::check_api_keys(&plan).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    let mut manifest = finish::new_manifest(&plan, path, &args.target);
    if let Some(id) = &args.run_id {
        manifest.run_id = id.clone();
    }
    fanout::record(&mut manifest, args);
    if let Some(spec) = plan.scenario.search.clone() {
        if args.extra_looks > 0 {
            bail!(
                "{}: --extra-looks adds repetitions to compare cells, but a [search] run chooses its loads as it goes; drop --extra-looks (raise [experiment] repetitions instead)",
                path.display()
            );
        }
        plan = search::start(plan, &mut manifest, &spec);
    }
    let dir = RunDir::create(&args.out, &manifest, &plan.scenario.redacted_text())
        .context("cannot create the run directory (see --out)")?;
    fanout::plan(&mut plan, &dir, args);
    Ok((plan, dir, manifest))
}

/// Restricts a new run's plan to one shard's rounds, refusing what a shard cannot decide
/// alone: a search (each next load depends on every probe so far), adaptive repetitions
/// (each look needs every round so far) and a comparison with a baseline (of a whole run).
fn shard_plan(
    plan: &mut Plan,
    shard: crate::shard::Shard,
    args: &RunArgs,
    path: &Path,
) -> anyhow::Result<()> {
    let file = path.display();
    if plan.scenario.search.is_some() {
        bail!(
            "{file}: --shard {shard}: a [search] chooses each next load from the probes measured so far, which no single shard sees; run the search without --shard"
        );
    }
    if let Some(a) = plan.scenario.experiment.adaptive {
        bail!(
            "{file}: --shard {shard}: adaptive repetitions decide after each look whether to add rounds, from every round so far, which no single shard holds; shard a fixed number of rounds instead (e.g. `--set experiment.repetitions={}`, the adaptive maximum, on every shard), or run without --shard",
            a.max
        );
    }
    if args.baseline.is_some() {
        bail!(
            "--shard {shard}: --baseline compares a whole run and a shard holds only some of its rounds; merge the shards (`exp merge`), then `exp compare BASELINE MERGED` (extra looks need the whole run too: run them without --shard)"
        );
    }
    shard.check_size(plan.rounds(), plan.cells.len())?;
    plan.set_shard(shard);
    Ok(())
}

/// Records how the execution ended in the manifest and writes the report; true when a
/// declared check failed.
fn close_run(
    dir: &RunDir,
    manifest: &mut Manifest,
    plan: &Plan,
    end: RunEnd,
) -> anyhow::Result<bool> {
    manifest.status = match end {
        RunEnd::Interrupted => RunStatus::Interrupted,
        RunEnd::Complete if dir.failed()?.is_empty() => RunStatus::Complete,
        RunEnd::Complete => RunStatus::Partial,
    };
    manifest.ended = Some(store::now_rfc3339());
    manifest_sync::save(dir, manifest)?;
    finish_run(dir, manifest, plan, None, true)
}

/// What a run that stopped on an error keeps, and how to finish it.
fn stopped_text(root: &Path) -> String {
    format!(
        "the run stopped: repetitions marked complete are kept in {0} \
         (fix the cause, then finish it with `exp run --resume {0}`)",
        root.display()
    )
}

/// Reopens a run directory and rebuilds its plan from the saved scenario and overrides, with
/// the secrets that were not saved given back (`given`: `--set` arguments).
fn resume(run_dir: &Path, given: &[String]) -> anyhow::Result<(Plan, RunDir, Manifest)> {
    let (dir, mut manifest) = RunDir::open(run_dir)?;
    if let Some(c) = &manifest.client {
        bail!(
            "{}: client {}/{} of a fanned-out load cannot be resumed alone: the others would not send their shares with it. Merge what the clients have (`exp merge --clients`; the repetitions one of them failed are failed in the merge), or run every client again with a new --start-at",
            run_dir.display(),
            c.index,
            c.count
        );
    }
    let mut plan = secret::resumed_plan(&dir, &manifest, given)?;
    // An adaptive run may have planned more rounds than the scenario's minimum.
    if plan.scenario.search.is_none() {
        plan.set_rounds(manifest.repetitions);
    }
    if let Some(shard) = &manifest.shard {
        plan.set_shard(shard.shard());
    }
    if plan
        .cells
        .iter()
        .map(|c| c.id.to_string())
        .collect::<Vec<_>>()
        != manifest
            .cells
            .iter()
            .map(|c| c.id.clone())
            .collect::<Vec<_>>()
    {
        bail!(
            "{}: the saved scenario no longer expands to the recorded cells (was exp upgraded?); start a new run",
            run_dir.display()
        );
    }
    manifest.status = RunStatus::Running;
    manifest.session = Some(session::current());
    dir.write_manifest(&manifest)?;
    Ok((plan, dir, manifest))
}

/// The plan of a saved run: its scenario copy with the recorded overrides (for a search, the
/// probes recorded in the manifest). Secrets read as their markers: enough to report, not to
/// send requests (see [`secret::resumed_plan`]).
fn saved_plan(dir: &RunDir, manifest: &Manifest) -> anyhow::Result<Plan> {
    let text = dir.scenario_text()?;
    plan_from(dir, manifest, &text, manifest.overrides.clone())
}

/// The plan of a saved run from a scenario text and overrides.
fn plan_from(
    dir: &RunDir,
    manifest: &Manifest,
    text: &str,
    overrides: Vec<String>,
) -> anyhow::Result<Plan> {
    let target = TargetArgs {
        target: manifest.target_override.clone(),
        set: overrides,
    };
    let path = Path::new(&manifest.scenario_file);
    let plan = load_scenario(path, Some(text), &target)
        .and_then(|s| Plan::build(s).map_err(|e| anyhow::anyhow!("{e}")))
        .with_context(|| {
            format!(
                "{}: the saved scenario no longer loads",
                dir.root().display()
            )
        })?;
    if plan.scenario.search.is_some() {
        return search::probe_plan(plan, manifest);
    }
    Ok(plan)
}

fn report(
    run_dir: &Path,
    template: Option<&Path>,
    stdout: bool,
    format: ReportFormat,
) -> anyhow::Result<Status> {
    let (dir, mut manifest) = RunDir::open(run_dir)?;
    session::settle(&mut manifest);
    let plan = saved_plan(&dir, &manifest)?;
    if format != ReportFormat::Md {
        finish::export(&dir, &manifest, &plan, format, stdout)?;
        return Ok(Status::Ok);
    }
    let checks_failed = finish_run(&dir, &manifest, &plan, template, !stdout)?;
    Ok(if checks_failed {
        Status::ChecksFailed
    } else {
        Status::Ok
    })
}

fn estimate(args: &EstimateArgs) -> anyhow::Result<Status> {
    let text = estimate::run(args)?;
    print!("{text}");
    Ok(Status::Ok)
}

async fn serve(args: ServeArgs) -> anyhow::Result<Status> {
    serve::run(args).await?;
    Ok(Status::Ok)
}

fn selftest(which: &crate::cli::Selftest) -> anyhow::Result<Status> {
    let (trials, seed) = match which {
        crate::cli::Selftest::Stats { trials, seed } => (trials, seed),
        crate::cli::Selftest::Fidelity { preset, cases } => {
            return fidelity(preset, cases.as_deref());
        }
        crate::cli::Selftest::Steps { file, gpu, preset } => {
            return steps(file, gpu.as_deref(), preset);
        }
    };
    let settings = crate::selftest::Settings {
        trials: *trials as usize,
        seed: *seed,
        ..Default::default()
    };
    let outcome = crate::selftest::run(&settings)?;
    print!("{}", crate::selftest::render(&outcome));
    Ok(if outcome.passed() {
        Status::Ok
    } else {
        Status::ChecksFailed
    })
}

fn fidelity(preset: &str, cases: Option<&std::path::Path>) -> anyhow::Result<Status> {
    use crate::selftest::fidelity;
    let text = match cases {
        Some(path) => {
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?
        }
        None => fidelity::CASES_TOML.to_string(),
    };
    let cases = fidelity::fixture::parse(&text)?;
    let outcome = fidelity::run(cases, selftest_preset(preset)?)?;
    print!("{}", fidelity::render(&outcome, preset));
    Ok(if outcome.meets_goal() {
        Status::Ok
    } else {
        Status::ChecksFailed
    })
}

/// `--preset` of `exp selftest fidelity|steps`: `calibrated`, `ideal`, or a profile file.
fn selftest_preset(preset: &str) -> anyhow::Result<crate::selftest::fidelity::Preset> {
    use crate::selftest::fidelity::Preset;
    Ok(match preset {
        "calibrated" => Preset::Calibrated,
        "ideal" => Preset::Ideal,
        path => {
            let text = std::fs::read_to_string(path).with_context(|| {
                format!("--preset {path}: not `ideal` or `calibrated`, and not a readable profile")
            })?;
            let profile = crate::calibrate::Profile::parse(&text)
                .map_err(|e| anyhow::anyhow!("--preset {path}: not a profile: {e}"))?;
            Preset::Fixed(profile.efficiency)
        }
    })
}

fn steps(file: &std::path::Path, gpu: Option<&str>, preset: &str) -> anyhow::Result<Status> {
    use crate::selftest::fidelity::Preset;
    use crate::selftest::steps;
    let text =
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    let measured = steps::parse(&text, &file.display().to_string())?;
    let efficiency = match selftest_preset(preset)? {
        Preset::Calibrated => None,
        Preset::Ideal => Some(crate::hw::Efficiency::ideal()),
        Preset::Fixed(e) => Some(e),
    };
    let comparison =
        steps::compare(&measured, gpu, efficiency).with_context(|| file.display().to_string())?;
    print!("{}", steps::render(&comparison, preset));
    Ok(if comparison.passed() {
        Status::Ok
    } else {
        Status::ChecksFailed
    })
}
