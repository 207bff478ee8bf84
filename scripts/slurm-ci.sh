#!/usr/bin/env bash
# CI stage (issue 14): a real Slurm runs a sharded experiment, and the merge equals the
# unsharded run. Installs Debian's slurmctld, slurmd, slurm-client and munge (as root, or
# through sudo), starts a single-node cluster on this machine (or reuses the one an earlier
# run of this script started), submits a two-shard simulated experiment written by
# `exp slurm` with `sbatch`, waits for the array and its merge job, and compares the merged
# summary.json with an unsharded run's. Then the same with shard 2 killed (kill -9) after its
# first repetition: the merge must be cancelled, the shard's array task submitted again must
# resume it, and the merge then equal the unsharded run. Then one load fanned out over two
# clients (`exp slurm --clients 2`: one job, two srun tasks from one start instant, then the
# merge) against `exp serve --fixed`: the merged run must hold exactly the planned requests.
# Idempotent: a second run reuses the cluster. Measured on the shared 2-core VM with a debug build of exp: 48 s for both parts
# (the first alone: 5–7 s), plus apt the first time.
#
# EXP=path/to/exp uses that binary (default: cargo build --release, as .ci/run does).
# SLURM_CI_KEEP=1 keeps the work folder.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

sudo=""
if [ "$(id -u)" -ne 0 ]; then
  sudo="sudo -n"
fi

install() {
  if command -v slurmctld >/dev/null && command -v slurmd >/dev/null \
    && command -v sbatch >/dev/null && command -v munged >/dev/null; then
    return
  fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq slurmctld slurmd slurm-client munge >/dev/null
}

# Our own pid files, so this script only ever stops daemons it started.
run_dir=/run/exp-slurm-ci
conf=/etc/slurm/slurm.conf

write_conf() {
  local host cpus text
  host=$(hostname -s)
  cpus=$(nproc)
  text="# Written by exp's scripts/slurm-ci.sh: a single-node cluster for CI.
ClusterName=expci
SlurmctldHost=$host
NodeName=$host CPUs=$cpus State=UNKNOWN
PartitionName=ci Nodes=ALL Default=YES MaxTime=INFINITE State=UP
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
ReturnToService=2
MpiDefault=none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=$run_dir/slurmctld.pid
SlurmdPidFile=$run_dir/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
"
  if [ -f "$conf" ] && [ "$(cat "$conf")" = "$(printf '%s' "$text")" ]; then
    return 1 # unchanged
  fi
  printf '%s' "$text" | $sudo tee "$conf" >/dev/null
}

alive() { # pid file → is its process running?
  [ -f "$1" ] && $sudo kill -0 "$(cat "$1")" 2>/dev/null
}

stop() { # pid file: stop the daemon we started, by its pid
  if alive "$1"; then
    $sudo kill "$(cat "$1")"
    for _ in $(seq 50); do alive "$1" || return 0; sleep 0.1; done
  fi
}

start_cluster() {
  $sudo mkdir -p "$run_dir" /var/spool/slurmctld /var/spool/slurmd /var/log/slurm /run/munge
  local changed=0
  write_conf || changed=$?
  if [ "$changed" -eq 0 ]; then
    # A new or changed configuration: restart what we started before.
    stop "$run_dir/slurmd.pid"
    stop "$run_dir/slurmctld.pid"
  fi
  if ! $sudo test -s /etc/munge/munge.key; then
    $sudo mungekey --create --keyfile=/etc/munge/munge.key 2>/dev/null \
      || $sudo dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
  fi
  $sudo chown munge:munge /etc/munge/munge.key /run/munge
  $sudo chmod 400 /etc/munge/munge.key
  if ! munge -n >/dev/null 2>&1; then
    $sudo runuser -u munge -- /usr/sbin/munged
    for _ in $(seq 50); do munge -n >/dev/null 2>&1 && break; sleep 0.1; done
  fi
  alive "$run_dir/slurmctld.pid" || $sudo slurmctld
  alive "$run_dir/slurmd.pid" || $sudo slurmd
  local host state
  host=$(hostname -s)
  for _ in $(seq 150); do
    state=$(sinfo -h -n "$host" -o %T 2>/dev/null | head -n1 || true)
    case "$state" in
      idle*|mixed*|allocated*) return 0 ;;
      down*|drain*) $sudo scontrol update nodename="$host" state=resume 2>/dev/null || true ;;
    esac
    sleep 0.2
  done
  echo "the Slurm node did not become idle (state: ${state:-none}); logs: /var/log/slurm/" >&2
  return 1
}

exp_binary() {
  if [ -n "${EXP:-}" ]; then
    realpath "$EXP"
  else
    cargo build --release --locked -q >&2
    echo "$root/target/release/exp"
  fi
}

# Waits until the jobs (comma-separated ids) have left the queue.
wait_jobs() {
  for _ in $(seq 600); do
    if [ -z "$(squeue -h -j "$1" 2>/dev/null)" ]; then return 0; fi
    sleep 0.2
  done
  squeue
  echo "jobs $1 did not finish within 2 minutes" >&2
  return 1
}

# Asserts that the merged run at $1 has the statistics of an unsharded run of scenario $2.
same_as_unsharded() {
  local merged=$1 scenario=$2 whole
  if [ ! -f "$merged/summary.json" ]; then
    echo "no merged run at $merged; the jobs' logs:" >&2
    tail -n 30 "$work"/*/logs/* >&2 || true
    return 1
  fi
  whole=$(mktemp -d "$work/whole.XXXXXX")
  "$exp" run "$scenario" --out "$whole" --no-progress >/dev/null 2>&1
  python3 - "$(ls -d "$whole"/*/*)/summary.json" "$merged/summary.json" <<'PY'
import json, sys

def statistics(path):
    s = json.load(open(path))
    s.pop("run_id")
    s.pop("nodes", None)
    for rep in s["repetitions"]:
        rep.pop("wall_seconds", None)
    return s

whole, merged = (statistics(p) for p in sys.argv[1:])
if whole != merged:
    for key in whole:
        if whole[key] != merged.get(key):
            print(f"summary.json differs in {key!r}", file=sys.stderr)
    sys.exit(1)
print(f"merged == unsharded: {len(merged['repetitions'])} repetitions, {len(merged['cells'])} cells")
PY
  grep -q "## Shards and nodes" "$merged/report.md"
}

# Submits what `exp slurm` wrote into $1 (with its submit.sh) and sets `merged`, `shards_job`
# and `merge_job` from what it printed.
submit() {
  local out
  out=$(sh "$1/submit.sh")
  echo "$out"
  merged=$(echo "$out" | sed -n 's/^merged run directory: *\(.*\) (report.md inside)$/\1/p')
  shards_job=$(echo "$out" | sed -n 's/^shards: job \([0-9]*\).*/\1/p')
  merge_job=$(echo "$out" | sed -n 's/.*merge: job \([0-9]*\).*/\1/p')
}

install
start_cluster
exp=$(exp_binary)
work=$(mktemp -d "${TMPDIR:-/tmp}/exp-slurm-ci.XXXXXX")

echo "-- two shards, then their merge (afterok)"
scenario=tests/fixtures/cli/tiny_sim.toml
"$exp" slurm "$scenario" --shards 2 --out "$work/reports" --dir "$work/slurm" --exp "$exp"
submit "$work/slurm"
wait_jobs "$shards_job,$merge_job"
same_as_unsharded "$merged" "$scenario"

echo "-- shard 2 killed (kill -9 once a repetition of it is complete): the merge is cancelled;"
echo "   its array task submitted again resumes it, and the merge then equals the unsharded run"
scenario=tests/fixtures/cli/resume.toml
flaky="$work/flaky-exp"
cat >"$flaky" <<SH
#!/bin/sh
case "\$*" in *"--shard 2/2"*)
  if mkdir "$work/killed-once" 2>/dev/null; then
    "$exp" "\$@" & pid=\$!
    until ls "$work"/killed/resume/*-shard-2-of-2/records/*/*.done.json >/dev/null 2>&1 \\
      || ! kill -0 \$pid 2>/dev/null; do sleep 0.01; done
    kill -9 \$pid 2>/dev/null
    exit 137
  fi;;
esac
exec "$exp" "\$@"
SH
chmod +x "$flaky"
"$exp" slurm "$scenario" --shards 2 --out "$work/killed" --dir "$work/slurm-killed" --exp "$flaky"
submit "$work/slurm-killed"
wait_jobs "$shards_job,$merge_job"
if [ -f "$merged/manifest.json" ]; then
  echo "the merge ran although shard 2 was killed" >&2
  exit 1
fi
"$exp" merge "$work"/killed/resume/*-shard-[12]-of-2 --out "$work/refused" 2>&1 | sed 's/^/   /' || true
again=$(sbatch --parsable --array=2 "$work/slurm-killed/shards.sbatch")
again=${again%%;*}
merge_job=$(sbatch --parsable --dependency=afterok:"$again" "$work/slurm-killed/merge.sbatch")
merge_job=${merge_job%%;*}
wait_jobs "$again,$merge_job"
same_as_unsharded "$merged" "$scenario"

echo "-- one load from two clients: srun tasks from one start instant against exp serve --fixed,"
echo "   then their merge, which must hold exactly the planned requests"
scenario=tests/fixtures/cli/fanout_http.toml
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$exp" serve --fixed ttft=20ms,itl=2ms --port "$port" >"$work/serve.log" 2>&1 &
serve_pid=$!
trap 'kill "$serve_pid" 2>/dev/null || true' EXIT
for _ in $(seq 100); do
  (echo >"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
  sleep 0.1
done
# One node here: both clients on it (exp slurm puts one client per node unless told).
"$exp" slurm "$scenario" --clients 2 --start-delay 10s --target "http://127.0.0.1:$port/v1" \
  --out "$work/fanout" --dir "$work/slurm-fanout" --exp "$exp" -- --ntasks-per-node=2
out=$(sh "$work/slurm-fanout/submit.sh")
echo "$out"
merged=$(echo "$out" | sed -n 's/^merged run directory: *\(.*\) (report.md inside)$/\1/p')
clients_job=$(echo "$out" | sed -n 's/^clients: job \([0-9]*\).*/\1/p')
wait_jobs "$clients_job"
kill "$serve_pid" 2>/dev/null || true
if [ ! -f "$merged/manifest.json" ]; then
  echo "no merged run at $merged; the job's log:" >&2
  tail -n 40 "$work"/slurm-fanout/logs/* >&2 || true
  exit 1
fi
python3 - "$merged" "$scenario" <<'PY'
import json, pathlib, sys, tomllib

merged, scenario = pathlib.Path(sys.argv[1]), tomllib.load(open(sys.argv[2], "rb"))
manifest = json.load(open(merged / "manifest.json"))
planned = scenario["vars"]["fixed"]["requests"] * len(manifest["schedule"])
sent = sum(len(p.read_text().splitlines()) for p in merged.glob("records/*/rep-*[0-9].jsonl"))
assert manifest["status"] == "complete", manifest["status"]
assert [c["index"] for c in manifest["merged_clients"]] == [1, 2], manifest["merged_clients"]
assert sent == planned, f"{sent} requests in the merged run, {planned} planned"
print(f"merged == planned: {sent} requests from 2 clients in {len(manifest['schedule'])} repetitions")
PY

if [ -z "${SLURM_CI_KEEP:-}" ]; then
  rm -rf "$work"
else
  echo "kept: $work"
fi
