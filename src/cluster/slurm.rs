//! `exp slurm`: three files in one folder. `shards.sbatch` is a job array with one task per
//! shard (task K runs `exp run --shard K/N`, or resumes its directory when an earlier attempt
//! left one); `merge.sbatch` runs `exp merge` into the merged run directory; `submit.sh`
//! submits the array and then the merge with `--dependency=afterok:<array>`, so the merge
//! runs once every shard succeeded (and is cancelled, not left pending, when one failed).
//! Batch scripts are shell text by nature: every word exp puts in one is quoted.
//!
//! A load fan-out ([`client_files`]) is one job instead: `clients.sbatch` asks for N tasks,
//! computes the shared start instant when the job starts (now + the start delay), runs
//! `client.sh` as N `srun` tasks (task K − 1 is `exp run --client K/N --start-at …`), and
//! then `exp merge --clients` in the same job; `submit.sh` submits it.

use super::Fanout;
use crate::shell;

/// What `exp slurm` was asked for beyond the experiment.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Options {
    /// `--partition`, for both jobs.
    pub partition: Option<String>,
    /// Further `#SBATCH` options for the shards' job (`--gres=gpu:1`, `--time=02:00:00`).
    pub sbatch: Vec<String>,
    /// The folder the scripts are written to, as the nodes see it (logs go under it).
    pub dir: String,
    /// The working directory of every job (relative paths are relative to it).
    pub chdir: String,
}

/// The files to write: (name, contents, executable).
pub fn files(f: &Fanout, o: &Options) -> Vec<(&'static str, String, bool)> {
    vec![
        ("shards.sbatch", shards(f, o), false),
        ("merge.sbatch", merge(f, o), false),
        ("submit.sh", submit(f, o), true),
    ]
}

fn header(o: &Options, job: &str, log: &str) -> String {
    let mut lines = vec![
        "#!/bin/bash".to_string(),
        format!("#SBATCH --job-name={}", shell::quote(job)),
        format!("#SBATCH --chdir={}", shell::quote(&o.chdir)),
        format!(
            "#SBATCH --output={}",
            shell::quote(&format!("{}/logs/{log}", o.dir))
        ),
    ];
    if let Some(p) = &o.partition {
        lines.push(format!("#SBATCH --partition={}", shell::quote(p)));
    }
    lines.join("\n") + "\n"
}

fn shards(f: &Fanout, o: &Options) -> String {
    let mut text = header(o, &format!("exp-{}", f.name), "shard-%a-%A.out");
    text += &format!("#SBATCH --array=1-{}\n", f.shards);
    for opt in &o.sbatch {
        text += &format!("#SBATCH {opt}\n");
    }
    text += &format!(
        "# Written by `exp slurm` (exp {}): shard $SLURM_ARRAY_TASK_ID of {} of `{}`.\n\
         # Submit with submit.sh (it adds the merge). To run one shard again, e.g. after a\n\
         # failure: `sbatch --array=K shards.sbatch` (it resumes that shard's directory).\n\
         set -eu\nk=$SLURM_ARRAY_TASK_ID\n",
        env!("CARGO_PKG_VERSION"),
        f.shards,
        f.scenario,
    );
    text + &f.shard_script("$k")
}

fn merge(f: &Fanout, o: &Options) -> String {
    let mut text = header(o, &format!("exp-{}-merge", f.name), "merge-%j.out");
    text += &format!(
        "# Written by `exp slurm` (exp {}): joins the {} shards into {}.\n\
         # submit.sh submits it after the shards; alone: `sbatch merge.sbatch` once they are done.\n\
         set -eu\nexec {}\n",
        env!("CARGO_PKG_VERSION"),
        f.shards,
        f.merged_dir(),
        shell::join(f.merge_words()),
    );
    text
}

fn submit(f: &Fanout, o: &Options) -> String {
    let dir = shell::quote(&o.dir);
    format!(
        "#!/bin/sh\n\
         # Written by `exp slurm` (exp {version}): submits the {n} shards of `{scenario}` as a job\n\
         # array, then their merge, which runs only if every shard succeeded (afterok).\n\
         set -eu\n\
         mkdir -p {dir}/logs\n\
         shards=$(sbatch --parsable {dir}/shards.sbatch)\n\
         shards=${{shards%%;*}}\n\
         merge=$(sbatch --parsable --dependency=afterok:\"$shards\" --kill-on-invalid-dep=yes {dir}/merge.sbatch)\n\
         merge=${{merge%%;*}}\n\
         echo \"shards: job $shards (array 1-{n}); merge: job $merge, after every shard succeeded\"\n\
         echo \"shard run directories: {shard_dirs}\"\n\
         echo \"merged run directory:  {merged} (report.md inside)\"\n",
        version = env!("CARGO_PKG_VERSION"),
        n = f.shards,
        scenario = f.scenario,
        shard_dirs = f.shard_dir("K"),
        merged = f.merged_dir(),
    )
}

/// The files of a load fan-out over `f.shards` clients whose load starts `delay_s` seconds
/// after the job starts: (name, contents, executable).
pub fn client_files(f: &Fanout, o: &Options, delay_s: u64) -> Vec<(&'static str, String, bool)> {
    vec![
        ("clients.sbatch", clients(f, o, delay_s), false),
        ("client.sh", client(f), true),
        ("submit.sh", submit_clients(f, o), true),
    ]
}

fn clients(f: &Fanout, o: &Options, delay_s: u64) -> String {
    let mut text = header(o, &format!("exp-{}", f.name), "clients-%j.out");
    text += &format!("#SBATCH --ntasks={}\n", f.shards);
    // One client per node unless the user placed them: clients packed onto one machine share
    // its CPUs and network, which is what fanning out avoids.
    let placed = (o.sbatch.iter()).any(|opt| {
        ["--ntasks-per-node", "--nodes", "-N"]
            .iter()
            .any(|p| opt.starts_with(p))
    });
    if !placed {
        text += "#SBATCH --ntasks-per-node=1\n";
    }
    for opt in &o.sbatch {
        text += &format!("#SBATCH {opt}\n");
    }
    text += &format!(
        "# Written by `exp slurm --clients` (exp {version}): one load of `{scenario}` sent by {n}\n\
         # clients (srun tasks) from one start instant, then their merge. A client that fails a\n\
         # repetition (late, or its share refused) exits 3; the merge fails that repetition too.\n\
         set -eu\n\
         at=$(date -u -d '+{delay_s} seconds' +%Y-%m-%dT%H:%M:%S.%3NZ)\n\
         echo \"clients start at $at\"\n\
         srun --ntasks={n} --kill-on-bad-exit=0 sh {script} \"$at\" || echo \"srun: a client exited with status $?\"\n\
         exec {merge}\n",
        version = env!("CARGO_PKG_VERSION"),
        scenario = f.scenario,
        n = f.shards,
        script = shell::quote(&format!("{}/client.sh", o.dir)),
        merge = shell::join(f.clients_merge_words()),
    );
    text
}

fn client(f: &Fanout) -> String {
    format!(
        "#!/bin/sh\n\
         # Written by `exp slurm --clients` (exp {}): srun task $SLURM_PROCID sends client\n\
         # $SLURM_PROCID + 1's share of the load, from the start instant in $1.\n\
         set -eu\nk=$((SLURM_PROCID + 1))\nat=$1\n{}",
        env!("CARGO_PKG_VERSION"),
        f.client_script("$k", "$at")
    )
}

fn submit_clients(f: &Fanout, o: &Options) -> String {
    let dir = shell::quote(&o.dir);
    format!(
        "#!/bin/sh\n\
         # Written by `exp slurm --clients` (exp {version}): submits the job that sends one load of\n\
         # `{scenario}` from {n} clients and merges them.\n\
         set -eu\n\
         mkdir -p {dir}/logs\n\
         job=$(sbatch --parsable {dir}/clients.sbatch)\n\
         job=${{job%%;*}}\n\
         echo \"clients: job $job ({n} srun tasks from one start instant, then the merge)\"\n\
         echo \"client run directories: {client_dirs}\"\n\
         echo \"merged run directory:  {merged} (report.md inside)\"\n",
        version = env!("CARGO_PKG_VERSION"),
        n = f.shards,
        scenario = f.scenario,
        client_dirs = f.client_dir("K"),
        merged = f.merged_dir(),
    )
}
