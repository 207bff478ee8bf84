//! What a cluster scheduler needs to run an experiment's shards in parallel and merge them:
//! `exp slurm` writes batch scripts ([`slurm`]), `exp k8s` Kubernetes Jobs ([`k8s`]). exp
//! never coordinates anything itself: the scheduler runs `exp run --shard K/N` once per shard
//! and `exp merge` after them, all on a shared file system.
//!
//! One generated experiment is one [`Fanout`]: its id (the generation time, as a run id) names
//! every run directory, so the shards' directories and the merged one are known before
//! anything runs — `<out>/<scenario>/<id>-shard-K-of-N` and `<out>/<scenario>/<id>` — and a
//! shard that is run again (a retried pod, a resubmitted array task) resumes its directory
//! instead of starting another. Pure: the callers write the files.
//!
//! A load fan-out (`exp slurm --clients N`) is the same [`Fanout`] with `shards` counting
//! clients: one job of N tasks, each `exp run --client K/N` from one `--start-at` computed
//! when the job starts, into `<out>/<scenario>/<id>-client-K-of-N`, then `exp merge
//! --clients` into `<out>/<scenario>/<id>`.

pub mod k8s;
pub mod slurm;

use crate::shard::{Shard, ShardBy};
use crate::shell;

/// One experiment fanned out over `shards` shards.
#[derive(Debug, Clone, PartialEq)]
pub struct Fanout {
    /// `[experiment] name`: the folder under `out`.
    pub name: String,
    /// The id of this fan-out (e.g. `2025-06-01T12-00-00Z`): the merged run's id, and the
    /// prefix of its shards' ids.
    pub id: String,
    /// Number of shards (of clients, for a load fan-out).
    pub shards: u32,
    /// What the shards deal out (`--shard-by`).
    pub by: ShardBy,
    /// The exp program the nodes run.
    pub exp: String,
    /// The scenario file, as the nodes see it.
    pub scenario: String,
    /// Where run directories go, as the nodes see it (`exp run --out`).
    pub out: String,
    /// `--set` and `--target` arguments, as words.
    pub options: Vec<String>,
}

impl Fanout {
    /// Shard `k`'s run directory (`k` may be a shell expression, e.g. `$k`).
    pub fn shard_dir(&self, k: &str) -> String {
        format!(
            "{}/{}/{}-shard-{k}-of-{}",
            self.out, self.name, self.id, self.shards
        )
    }

    /// The merged run directory.
    pub fn merged_dir(&self) -> String {
        format!("{}/{}/{}", self.out, self.name, self.id)
    }

    /// A POSIX shell script that runs shard `$k` (set before it, from 1): resumes its
    /// directory when an earlier attempt left one, else starts it.
    pub fn shard_script(&self, k: &str) -> String {
        let dir = self.shard_dir(k);
        let mut start = self.run_words();
        if self.by == ShardBy::Cells {
            start.extend(["--shard-by".into(), "cells".into()]);
        }
        let resume = shell::join([self.exp.as_str(), "run", "--no-progress", "--resume"]);
        format!(
            "dir=\"{dir}\"\nif [ -f \"$dir/manifest.json\" ]; then\n  exec {resume} \"$dir\"\nelse\n  exec {} --shard \"{k}/{n}\" --run-id \"{id}-shard-{k}-of-{n}\"\nfi\n",
            shell::join(&start),
            id = self.id,
            n = self.shards,
        )
    }

    /// `exp run SCENARIO --out OUT --no-progress OPTIONS…`: how a shard or a client starts,
    /// before its own flags.
    fn run_words(&self) -> Vec<String> {
        let mut words = vec![
            self.exp.clone(),
            "run".into(),
            self.scenario.clone(),
            "--out".into(),
            self.out.clone(),
            "--no-progress".into(),
        ];
        words.extend(self.options.iter().cloned());
        words
    }

    /// The command that merges every shard into [`Fanout::merged_dir`].
    pub fn merge_words(&self) -> Vec<String> {
        let mut words = vec![self.exp.clone(), "merge".into()];
        words.extend((1..=self.shards).map(|k| self.shard_dir(&k.to_string())));
        words.extend(["--out".into(), self.merged_dir()]);
        words
    }

    /// Client `k`'s run directory of a load fan-out (`k` may be a shell expression).
    pub fn client_dir(&self, k: &str) -> String {
        format!(
            "{}/{}/{}-client-{k}-of-{}",
            self.out, self.name, self.id, self.shards
        )
    }

    /// A POSIX shell line that runs client `$k` of a load fan-out (`k` and `at` are shell
    /// expressions: the client's number and the shared start instant).
    pub fn client_script(&self, k: &str, at: &str) -> String {
        let start = self.run_words();
        format!(
            "exec {} --client \"{k}/{n}\" --start-at \"{at}\" --run-id \"{id}-client-{k}-of-{n}\"\n",
            shell::join(&start),
            id = self.id,
            n = self.shards,
        )
    }

    /// The command that merges every client of a load fan-out into [`Fanout::merged_dir`].
    pub fn clients_merge_words(&self) -> Vec<String> {
        let mut words = vec![self.exp.clone(), "merge".into(), "--clients".into()];
        words.extend((1..=self.shards).map(|k| self.client_dir(&k.to_string())));
        words.extend(["--out".into(), self.merged_dir()]);
        words
    }

    /// Every shard, from 1.
    pub fn each(&self) -> impl Iterator<Item = Shard> + '_ {
        (1..=self.shards).map(|index| Shard::of_rounds(index, self.shards).by(self.by))
    }
}

#[cfg(test)]
mod tests;
