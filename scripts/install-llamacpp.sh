#!/usr/bin/env bash
# Installs the real engine for exp's real-engine test (tests/llamacpp.rs), idempotently:
#   - a virtualenv in .venv/ (ignored) with cmake (when none is on PATH), gguf, numpy, tokenizers;
#   - llama.cpp's `llama-server`, built for this CPU from the llama.cpp sources that PyPI's
#     llama-cpp-python sdist vendors, cached OUTSIDE the clone under
#     ${XDG_CACHE_HOME:-$HOME/.cache}/exp/llama.cpp/<version>/bin/llama-server, so later runs on
#     the same machine do not rebuild (a fresh machine builds once: about 5 min on an idle 2-core machine, up to 20 under load);
#   - a tiny random-weight llama GGUF with a locally trained byte-level BPE tokenizer
#     (scripts/make-tiny-model.py), beside the binary in .../models/.
# Nothing is downloaded except PyPI packages. Prints how long each step took, then the two
# paths as `EXP_LLAMA_SERVER=...` and `EXP_TINY_MODEL=...` lines.
#
# The binary is built with GGML_NATIVE (tuned to the build CPU); a cached binary that does not
# start here (SIGILL on another CPU) is rebuilt.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

# Pinned: the llama-cpp-python release whose vendored llama.cpp we build.
version=0.3.36
cache=${XDG_CACHE_HOME:-$HOME/.cache}/exp/llama.cpp/$version
server=$cache/bin/llama-server
model=$cache/models/tiny-llama.gguf
venv=$repo/.venv
jobs=${EXP_BUILD_JOBS:-$(nproc)}

step() {
  local name=$1; shift
  local start=$SECONDS
  echo "-- $name"
  "$@"
  echo "-- $name: $((SECONDS - start)) s"
}

make_venv() {
  if [[ ! -x $venv/bin/python ]]; then
    if ! python3 -m venv "$venv"; then
      # Debian's python3 ships venv separately.
      rm -rf "$venv"
      apt-get install -y python3-venv >/dev/null
      python3 -m venv "$venv"
    fi
  fi
  # module=requirement; pinned where the model file depends on the package's behaviour.
  local want=(gguf=gguf==0.19.0 numpy=numpy tokenizers=tokenizers==0.23.3)
  if ! command -v cmake >/dev/null; then
    want+=(cmake=cmake)
  fi
  local missing=()
  for pair in "${want[@]}"; do
    local module=${pair%%=*} req=${pair#*=}
    if [[ $module == cmake ]]; then
      [[ -x $venv/bin/cmake ]] || missing+=("$req")
    elif ! "$venv/bin/python" -c "import $module" 2>/dev/null; then
      missing+=("$req")
    fi
  done
  if ((${#missing[@]})); then
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "${missing[@]}"
  fi
}

# True when the cached binary exists and starts on this CPU (`--version` exits 0; a binary
# built for another CPU dies with SIGILL, exit status 132).
server_starts() {
  [[ -x $server ]] || return 1
  local rc=0
  "$server" --version >/dev/null 2>&1 || rc=$?
  if ((rc != 0)); then
    echo "cached $server does not start here (exit status $rc); rebuilding" >&2
    return 1
  fi
}

fetch_sources() {
  rm -rf "$cache/src"
  mkdir -p "$cache/src"
  # --no-binary for this package only: with :all: pip would also compile cmake from source to
  # read the sdist's metadata.
  "$venv/bin/python" -m pip download --quiet --disable-pip-version-check --no-deps \
    --no-binary llama-cpp-python "llama-cpp-python==$version" -d "$cache/src"
  tar -xzf "$cache/src/llama_cpp_python-$version.tar.gz" -C "$cache/src"
}

cmake_bin() {
  command -v cmake || echo "$venv/bin/cmake"
}

configure() {
  local cmake_bin
  cmake_bin=$(cmake_bin)
  "$cmake_bin" -S "$cache/src/llama_cpp_python-$version/vendor/llama.cpp" -B "$cache/build" \
    -DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=OFF -DGGML_NATIVE=ON \
    -DLLAMA_BUILD_UI=OFF -DLLAMA_USE_PREBUILT_UI=OFF -DLLAMA_OPENSSL=OFF \
    -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF >"$cache/configure.log" 2>&1 \
    || { tail -n 40 "$cache/configure.log"; return 1; }
}

compile() {
  local cmake_bin
  cmake_bin=$(cmake_bin)
  "$cmake_bin" --build "$cache/build" --target llama-server -j "$jobs" >"$cache/build.log" 2>&1 \
    || { tail -n 40 "$cache/build.log"; return 1; }
  mkdir -p "$cache/bin"
  cp "$cache/build/bin/llama-server" "$server.tmp"
  mv "$server.tmp" "$server"
  # Sources and objects are not needed once the binary is cached (~1 GB).
  rm -rf "$cache/src" "$cache/build"
}

make_model() {
  local stamp=$cache/models/tiny-llama.sha256 want
  # The model depends on the script and on exp's prompt words (the tokenizer's corpus).
  want=$(cat scripts/make-tiny-model.py scripts/tiny_tokenizer.py src/workload/words.rs | sha256sum | cut -d' ' -f1)
  if [[ -s $model && -s $stamp && $(cat "$stamp") == "$want" ]]; then
    echo "cached $model"
    return
  fi
  mkdir -p "$cache/models"
  "$venv/bin/python" scripts/make-tiny-model.py "$model"
  echo "$want" >"$stamp"
}

total=$SECONDS
step "virtualenv (.venv: cmake, gguf, numpy, tokenizers)" make_venv
if server_starts; then
  echo "-- llama-server: cached at $server"
else
  step "llama.cpp sources (llama-cpp-python $version sdist from PyPI)" fetch_sources
  step "configure llama-server" configure
  step "build llama-server (-j $jobs)" compile
  server_starts || { echo "built $server does not start" >&2; exit 1; }
fi
step "tiny model" make_model
echo "-- install-llamacpp: $((SECONDS - total)) s"
echo "EXP_LLAMA_SERVER=$server"
echo "EXP_TINY_MODEL=$model"
