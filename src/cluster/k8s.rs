//! `exp k8s`: the Kubernetes objects that run an experiment's shards and merge them, built as
//! the API's own types (`k8s-openapi`) and written as JSON manifests for `kubectl apply -f`:
//!
//! - a ConfigMap holding the scenario file, mounted read-only in every pod;
//! - an Indexed Job of N completions, all in parallel: pod `JOB_COMPLETION_INDEX` = i runs
//!   shard i + 1 (or resumes its run directory when an earlier pod of that index left one),
//!   with `EXP_NODE` set to the pod's node, so the manifest names the machine, not the pod;
//! - a merge Job that waits until every shard's manifest says it finished, then runs
//!   `exp merge` (Kubernetes has no `afterok` between Jobs, and waiting on the shared volume
//!   needs no API access).
//!
//! Run directories live on a ReadWriteMany PersistentVolumeClaim mounted in every pod.
//!
//! A load fan-out ([`client_manifests`]) has the same three objects with a clients Job in
//! place of the shards': pod i runs `exp run --client i+1/N`, all N in parallel. Pods start
//! when they are scheduled, so the start instant is fixed by the first pod to start: it
//! takes a lock directory on the volume and writes `now + delay` (whole seconds, as GNU and
//! busybox `date` both write it) into `<id>-start-at` beside the run directories; every pod
//! reads it from there. A pod that starts after that instant fails its first repetition as
//! late. Client pods are not retried: a client cannot rejoin a load already under way.

use std::collections::BTreeMap;

use k8s_openapi::api::batch::v1::{Job, JobSpec};
use k8s_openapi::api::core::v1::{
    ConfigMap, ConfigMapVolumeSource, Container, EnvVar, EnvVarSource, ObjectFieldSelector,
    PersistentVolumeClaimVolumeSource, PodSpec, PodTemplateSpec, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::Fanout;
use crate::shell;

/// What `exp k8s` was asked for beyond the experiment.
#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    /// The container image with exp in it.
    pub image: String,
    /// The PersistentVolumeClaim (ReadWriteMany) that holds the run directories.
    pub claim: String,
    /// Where the claim is mounted in the pods (the fan-out's `out`).
    pub runs_path: String,
    /// Where the ConfigMap with the scenario is mounted in the pods.
    pub scenario_path: String,
    /// The scenario file's name and text.
    pub scenario_file: (String, String),
    /// Namespace of every object, when given.
    pub namespace: Option<String>,
    /// How long the merge Job may wait and run before Kubernetes stops it (its
    /// `activeDeadlineSeconds`): a shard or client that failed past its retries never says
    /// it finished, and the merge would otherwise wait for it forever.
    pub merge_deadline_s: i64,
}

/// The manifests: (file name, object as JSON).
pub fn manifests(f: &Fanout, o: &Options) -> Vec<(String, serde_json::Value)> {
    let base = base_name(f);
    let json = |v: serde_json::Result<serde_json::Value>| v.expect("API objects serialise");
    vec![
        (
            "configmap.json".into(),
            json(serde_json::to_value(config_map(&base, o))),
        ),
        (
            "shards-job.json".into(),
            json(serde_json::to_value(shards_job(f, &base, o))),
        ),
        (
            "merge-job.json".into(),
            json(serde_json::to_value(merge_job(f, &base, o))),
        ),
    ]
}

/// `exp-<scenario>-<id>` as a DNS label: lowercase letters, digits and `-`, short enough for
/// `-shards` and the pod suffixes Kubernetes adds (a Job name of at most 52 characters).
pub fn base_name(f: &Fanout) -> String {
    let clean = |s: &str| {
        s.to_lowercase()
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect::<String>()
    };
    let id = clean(&f.id);
    let room = 52 - "exp--".len() - "-shards".len() - id.len();
    let name: String = clean(&f.name).chars().take(room).collect();
    format!("exp-{}-{id}", name.trim_matches('-'))
}

fn meta(name: &str, o: &Options, f: Option<&Fanout>) -> ObjectMeta {
    let mut labels = BTreeMap::new();
    labels.insert("app.kubernetes.io/name".to_string(), "exp".to_string());
    if let Some(f) = f {
        labels.insert("exp/experiment".to_string(), base_name(f));
    }
    ObjectMeta {
        name: Some(name.to_string()),
        namespace: o.namespace.clone(),
        labels: Some(labels),
        ..Default::default()
    }
}

fn config_map(base: &str, o: &Options) -> ConfigMap {
    let (file, text) = o.scenario_file.clone();
    ConfigMap {
        metadata: meta(&format!("{base}-scenario"), o, None),
        data: Some(BTreeMap::from([(file, text)])),
        ..Default::default()
    }
}

/// The pod's volumes and their mounts: the runs claim (read-write) and the scenario
/// ConfigMap (read-only).
fn volumes(base: &str, o: &Options) -> (Vec<Volume>, Vec<VolumeMount>) {
    let volumes = vec![
        Volume {
            name: "runs".into(),
            persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                claim_name: o.claim.clone(),
                read_only: None,
            }),
            ..Default::default()
        },
        Volume {
            name: "scenario".into(),
            config_map: Some(ConfigMapVolumeSource {
                name: format!("{base}-scenario"),
                ..Default::default()
            }),
            ..Default::default()
        },
    ];
    let mounts = vec![
        VolumeMount {
            name: "runs".into(),
            mount_path: o.runs_path.clone(),
            ..Default::default()
        },
        VolumeMount {
            name: "scenario".into(),
            mount_path: o.scenario_path.clone(),
            read_only: Some(true),
            ..Default::default()
        },
    ];
    (volumes, mounts)
}

/// A one-container pod running `script` under `sh -c`.
fn pod(base: &str, o: &Options, container: &str, script: String) -> PodTemplateSpec {
    let (volumes, volume_mounts) = volumes(base, o);
    let node = EnvVar {
        name: "EXP_NODE".into(),
        value_from: Some(EnvVarSource {
            field_ref: Some(ObjectFieldSelector {
                field_path: "spec.nodeName".into(),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    };
    PodTemplateSpec {
        metadata: None,
        spec: Some(PodSpec {
            restart_policy: Some("Never".into()),
            containers: vec![Container {
                name: container.into(),
                image: Some(o.image.clone()),
                command: Some(vec!["sh".into(), "-c".into(), script]),
                env: Some(vec![node]),
                volume_mounts: Some(volume_mounts),
                ..Default::default()
            }],
            volumes: Some(volumes),
            ..Default::default()
        }),
    }
}

fn shards_job(f: &Fanout, base: &str, o: &Options) -> Job {
    let n = i32::try_from(f.shards).unwrap_or(i32::MAX);
    let script = format!(
        "set -eu\n# Pod i of the Indexed Job runs shard i + 1 of {}.\nk=$((JOB_COMPLETION_INDEX + 1))\n{}",
        f.shards,
        f.shard_script("$k")
    );
    Job {
        metadata: meta(&format!("{base}-shards"), o, Some(f)),
        spec: Some(JobSpec {
            completion_mode: Some("Indexed".into()),
            completions: Some(n),
            parallelism: Some(n),
            // A failed pod of an index is retried (and resumes that shard) twice.
            backoff_limit_per_index: Some(2),
            template: pod(base, o, "shard", script),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn merge_job(f: &Fanout, base: &str, o: &Options) -> Job {
    let dirs: Vec<String> = (1..=f.shards)
        .map(|k| f.shard_dir(&k.to_string()))
        .collect();
    merge_job_of(f, base, o, (&dirs, SHARDS_ENDED), f.merge_words())
}

/// The manifests of a load fan-out over `f.shards` clients whose load starts `delay_s`
/// seconds after the first client pod starts: (file name, object as JSON).
pub fn client_manifests(f: &Fanout, o: &Options, delay_s: u64) -> Vec<(String, serde_json::Value)> {
    let base = base_name(f);
    let json = |v: serde_json::Result<serde_json::Value>| v.expect("API objects serialise");
    let dirs: Vec<String> = (1..=f.shards)
        .map(|k| f.client_dir(&k.to_string()))
        .collect();
    let merge = merge_job_of(f, &base, o, (&dirs, CLIENTS_ENDED), f.clients_merge_words());
    vec![
        (
            "configmap.json".into(),
            json(serde_json::to_value(config_map(&base, o))),
        ),
        (
            "clients-job.json".into(),
            json(serde_json::to_value(clients_job(f, &base, o, delay_s))),
        ),
        ("merge-job.json".into(), json(serde_json::to_value(merge))),
    ]
}

fn clients_job(f: &Fanout, base: &str, o: &Options, delay_s: u64) -> Job {
    let n = i32::try_from(f.shards).unwrap_or(i32::MAX);
    let at_file = format!("{}/{}/{}-start-at", f.out, f.name, f.id);
    let script = format!(
        "set -eu\n# Pod i of the Indexed Job is client i + 1 of {n}. The first pod to start fixes the\n# shared start instant ({delay_s} s ahead) on the runs volume; every pod reads it there.\nk=$((JOB_COMPLETION_INDEX + 1))\nat_file={at}\nmkdir -p \"$(dirname \"$at_file\")\"\nif mkdir \"$at_file.lock\" 2>/dev/null; then\n  date -u -d \"@$(($(date +%s) + {delay_s}))\" +%Y-%m-%dT%H:%M:%SZ >\"$at_file.tmp\"\n  mv \"$at_file.tmp\" \"$at_file\"\nfi\nuntil [ -s \"$at_file\" ]; do sleep 0.2; done\nat=$(cat \"$at_file\")\n{}",
        f.client_script("$k", "$at"),
        n = f.shards,
        at = shell::quote(&at_file),
    );
    Job {
        metadata: meta(&format!("{base}-clients"), o, Some(f)),
        spec: Some(JobSpec {
            completion_mode: Some("Indexed".into()),
            completions: Some(n),
            // Every client at once: the load is their sum.
            parallelism: Some(n),
            // A client cannot rejoin a load under way (its run directory exists, its
            // repetitions would be late): not retried.
            backoff_limit_per_index: Some(0),
            template: pod(base, o, "client", script),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The statuses a shard's merge waits for: a shard that stopped otherwise is retried (and
/// `exp merge` refuses an unfinished one).
const SHARDS_ENDED: &str = "complete|partial";

/// The statuses a clients' merge waits for: every status a run ends with, since a client is
/// not retried and `exp merge --clients` fails the repetitions a stopped client did not finish.
const CLIENTS_ENDED: &str = "complete|partial|interrupted|failed";

/// A Job that waits until every run directory in `dirs` has a status among `ended` (`a|b`),
/// then runs `words`.
fn merge_job_of(
    f: &Fanout,
    base: &str,
    o: &Options,
    (dirs, ended): (&[String], &str),
    words: Vec<String>,
) -> Job {
    let script = format!(
        "set -eu\n# Waits until every run directory says it finished, then merges them; Kubernetes stops\n# it after activeDeadlineSeconds ({deadline} s) when one never does.\nfor d in {}; do\n  echo \"waiting for $d\"\n  until grep -Eqs '\"status\": \"({ended})\"' \"$d/manifest.json\"; do sleep 10; done\ndone\nexec {}\n",
        shell::join(dirs),
        shell::join(words),
        deadline = o.merge_deadline_s,
    );
    Job {
        metadata: meta(&format!("{base}-merge"), o, Some(f)),
        spec: Some(JobSpec {
            completions: Some(1),
            // Not retried: a merge that ran has written its directory (a `partial` merge
            // exits 3), and a second try would only find it there.
            backoff_limit: Some(0),
            active_deadline_seconds: Some(o.merge_deadline_s),
            template: pod(base, o, "merge", script),
            ..Default::default()
        }),
        ..Default::default()
    }
}
