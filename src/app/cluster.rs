//! `exp slurm` and `exp k8s`: write what a cluster scheduler needs to run an experiment's
//! shards in parallel and merge them.

use anyhow::bail;

use crate::cli::{K8sArgs, SlurmArgs};

use super::Status;

/// `exp slurm`.
pub(super) fn slurm(_args: &SlurmArgs) -> anyhow::Result<Status> {
    bail!("not yet")
}

/// `exp k8s`.
pub(super) fn k8s(_args: &K8sArgs) -> anyhow::Result<Status> {
    bail!("not yet")
}
