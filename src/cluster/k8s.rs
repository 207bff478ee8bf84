//! `exp k8s`: an Indexed Job with one pod per shard and a merge Job.
