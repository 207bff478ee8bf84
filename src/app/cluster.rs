//! `exp slurm` and `exp k8s`: check the scenario can be sharded, then write what the
//! scheduler needs (see `crate::cluster`) and say how to submit it.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

use crate::cli::{FanoutArgs, K8sArgs, SlurmArgs, TargetArgs};
use crate::cluster::{self, Fanout};
use crate::shard::ShardBy;
use crate::store;

use super::Status;

/// `exp slurm`.
pub(super) fn slurm(args: &SlurmArgs) -> anyhow::Result<Status> {
    let exp = match &args.exp {
        Some(p) => p.clone(),
        None => this_exp()?,
    };
    let fanout = fan_out(&args.fanout, &args.scenario, &args.target, &args.out, exp)?;
    for opt in &args.sbatch {
        if !opt.starts_with('-') || opt.contains(['\n', '\r']) {
            bail!(
                "sbatch option {opt:?}: each option after `--` is one `#SBATCH` line and starts with `-` (e.g. `-- --gres=gpu:1 --time=02:00:00`)"
            );
        }
    }
    let dir = (args.dir.clone())
        .unwrap_or_else(|| Path::new("slurm").join(&fanout.name).join(&fanout.id));
    let cwd = std::env::current_dir().context("cannot read the working directory")?;
    let options = cluster::slurm::Options {
        partition: args.partition.clone(),
        sbatch: args.sbatch.clone(),
        dir: cwd.join(&dir).display().to_string(),
        chdir: cwd.display().to_string(),
    };
    let files = match args.fanout.clients {
        Some(_) => {
            let delay_s = args.start_delay.as_secs_f64().ceil() as u64;
            cluster::slurm::client_files(&fanout, &options, delay_s)
        }
        None => cluster::slurm::files(&fanout, &options),
    };
    write_files(&dir, files)?;
    std::fs::create_dir_all(dir.join("logs"))
        .with_context(|| format!("cannot create {}", dir.join("logs").display()))?;
    println!(
        "submit with: sh {}",
        crate::shell::quote(&format!("{}/submit.sh", dir.display()))
    );
    println!("merged run directory: {}", fanout.merged_dir());
    Ok(Status::Ok)
}

/// `exp k8s`.
pub(super) fn k8s(args: &K8sArgs) -> anyhow::Result<Status> {
    let file = (args.scenario.file_name())
        .map(|n| n.to_string_lossy().into_owned())
        .context("the scenario must be a file")?;
    let in_pod = format!("{}/{file}", args.scenario_path.trim_end_matches('/'));
    let runs = Path::new(&args.runs_path);
    let exp = args.exp.clone();
    let mut fanout = fan_out(&args.fanout, &args.scenario, &args.target, runs, exp)?;
    let scenario = super::load_scenario(&args.scenario, None, &args.target)?;
    if scenario.redacted_text() != scenario.text {
        bail!(
            "{}: the scenario holds secrets, which would be stored in a ConfigMap in plain text; read them from the environment (`[target] api_key_env`, set from a Kubernetes Secret) instead",
            args.scenario.display()
        );
    }
    fanout.scenario = in_pod;
    let options = cluster::k8s::Options {
        image: args.image.clone(),
        claim: args.claim.clone(),
        runs_path: args.runs_path.clone(),
        scenario_path: args.scenario_path.clone(),
        scenario_file: (file, scenario.text.clone()),
        namespace: args.namespace.clone(),
        merge_deadline_s: i64::try_from(args.merge_deadline.as_secs().max(1)).unwrap_or(i64::MAX),
    };
    let dir =
        (args.dir.clone()).unwrap_or_else(|| Path::new("k8s").join(&fanout.name).join(&fanout.id));
    let manifests = match args.fanout.clients {
        Some(_) => {
            let delay_s = args.start_delay.as_secs_f64().ceil() as u64;
            cluster::k8s::client_manifests(&fanout, &options, delay_s)
        }
        None => cluster::k8s::manifests(&fanout, &options),
    };
    let files = manifests
        .into_iter()
        .map(|(name, value)| {
            let text = serde_json::to_string_pretty(&value).expect("JSON serialises") + "\n";
            (name, text, false)
        })
        .collect::<Vec<_>>();
    write_files(
        &dir,
        files
            .iter()
            .map(|(n, t, x)| (n.as_str(), t.clone(), *x))
            .collect(),
    )?;
    println!(
        "apply with: kubectl apply -f {} (the claim {} must exist, ReadWriteMany)",
        crate::shell::quote(&dir.display().to_string()),
        args.claim
    );
    println!("merged run directory: {}", fanout.merged_dir());
    Ok(Status::Ok)
}

/// The fan-out `args` asks for: one load over clients, or shards (clap requires one of them).
fn fan_out(
    args: &FanoutArgs,
    scenario: &Path,
    target: &TargetArgs,
    out: &Path,
    exp: String,
) -> anyhow::Result<Fanout> {
    match (args.clients, args.shards) {
        (Some(n), _) => client_fanout(scenario, n, target, out, exp),
        (None, Some(n)) => fanout(scenario, (n, args.shard_by.into()), target, out, exp),
        (None, None) => {
            bail!("give --shards N (rounds over N jobs) or --clients N (one load from N clients)")
        }
    }
}

/// The fan-out of a scenario into `shards` shards, refused where a shard cannot decide alone
/// (as `exp run --shard` refuses it) or where a secret would be written into a script.
fn fanout(
    scenario: &Path,
    (shards, by): (u32, ShardBy),
    target: &TargetArgs,
    out: &Path,
    exp: String,
) -> anyhow::Result<Fanout> {
    let plan = super::load_plan(scenario, target)?;
    let file = scenario.display();
    if plan.scenario.search.is_some() {
        bail!(
            "{file}: a [search] chooses each next load from the probes measured so far, so it cannot be split into shards; run it with `exp search` on one node"
        );
    }
    if let Some(a) = plan.scenario.experiment.adaptive {
        bail!(
            "{file}: adaptive repetitions decide after each look whether to add rounds, from every round so far, which no single shard holds; fan out a fixed number of rounds (e.g. `--set experiment.repetitions={}`)",
            a.max
        );
    }
    let (rounds, cells) = (plan.rounds(), plan.cells.len());
    if by == ShardBy::Rounds && (shards == 0 || shards > rounds) {
        bail!(
            "--shards {shards}: each shard runs whole rounds and the scenario plans {rounds}, so 1 to {rounds} shards (or raise [experiment] repetitions)"
        );
    }
    if by == ShardBy::Cells && (shards == 0 || shards as usize > cells) {
        bail!(
            "--shards {shards}: with --shard-by cells each shard runs whole cells and the scenario has {cells}, so 1 to {cells} shards"
        );
    }
    assemble(&plan, scenario, (shards, by), target, out, exp)
}

/// The fan-out of one load over `clients` clients (`exp slurm --clients`), refused where
/// `exp run --client` would refuse it.
fn client_fanout(
    scenario: &Path,
    clients: u32,
    target: &TargetArgs,
    out: &Path,
    exp: String,
) -> anyhow::Result<Fanout> {
    let plan = super::load_plan(scenario, target)?;
    if clients == 0 {
        bail!("--clients 0: give the number of client tasks, at least 1");
    }
    let first = crate::fanout::Client {
        index: 1,
        count: clients,
    };
    let flag = format!("--clients {clients}");
    super::fanout::check(&plan, first, &flag, false, scenario)?;
    assemble(
        &plan,
        scenario,
        (clients, ShardBy::Rounds),
        target,
        out,
        exp,
    )
}

/// The [`Fanout`] of `plan` over `count` jobs or tasks (shards dealing out `by`), refused
/// where a secret or a folder name would not survive being written into a script.
fn assemble(
    plan: &crate::plan::Plan,
    scenario: &Path,
    (count, by): (u32, ShardBy),
    target: &TargetArgs,
    out: &Path,
    exp: String,
) -> anyhow::Result<Fanout> {
    let mut options = Vec::new();
    for set in &target.set {
        if plan.scenario.redact_override(set) != *set {
            bail!(
                "--set {}: a secret would be written into the job files in plain text; give it to the jobs through their environment (`[target] api_key_env`) instead",
                plan.scenario.redact_override(set)
            );
        }
        options.extend(["--set".to_string(), set.clone()]);
    }
    if let Some(t) = &target.target {
        options.extend(["--target".to_string(), t.clone()]);
    }
    let out_text = out.display().to_string();
    if out_text.contains(['"', '$', '`', '\\', '\n']) {
        bail!(
            "--out {out_text:?}: a folder name with \", $, ` or \\ cannot be written into a job script; pick a plainer one"
        );
    }
    Ok(Fanout {
        name: plan.scenario.experiment.name.clone(),
        id: store::now_rfc3339().replace(':', "-"),
        shards: count,
        by,
        exp,
        scenario: scenario.display().to_string(),
        out: out_text,
        options,
    })
}

/// This exp's own path, for jobs on nodes that share its file system.
fn this_exp() -> anyhow::Result<String> {
    let path = std::env::current_exe().context("cannot tell where this exp is; give --exp")?;
    Ok(path.display().to_string())
}

/// Writes the files into `dir`, which must not hold files yet.
fn write_files(dir: &Path, files: Vec<(&str, String, bool)>) -> anyhow::Result<()> {
    if dir.read_dir().is_ok_and(|mut d| d.next().is_some()) {
        bail!("{}: already holds files; give another --dir", dir.display());
    }
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    for (name, text, executable) in files {
        let path: PathBuf = dir.join(name);
        store::write_atomic(&path, text.as_bytes())?;
        if executable {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
                .with_context(|| format!("cannot make {} executable", path.display()))?;
        }
        println!("wrote {}", path.display());
    }
    Ok(())
}
