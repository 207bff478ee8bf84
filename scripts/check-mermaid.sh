#!/usr/bin/env bash
# Renders every Mermaid block of the given Markdown files in headless Chromium with the real
# `mermaid` package (issue 15): what a reviewer's browser shows, not what the text looks like.
# Installs what it needs on a fresh Debian machine: Chromium from apt, Node.js and npm from apt
# when absent, and mermaid from npm, cached per version under ~/.cache/exp/mermaid/.
#   scripts/check-mermaid.sh reports/x/<run-id>/report.md [more.md ...]
set -euo pipefail

version=${EXP_MERMAID_VERSION:-11.17.2}
cache=${EXP_CACHE:-$HOME/.cache/exp}/mermaid/$version
here=$(cd "$(dirname "$0")" && pwd)

apt_install() {
  if [[ $(id -u) -eq 0 ]]; then
    apt-get install -y --no-install-recommends "$@" >/dev/null
  else
    sudo apt-get install -y --no-install-recommends "$@" >/dev/null
  fi
}

chromium=$(command -v chromium || command -v chromium-browser || true)
if [[ -z $chromium ]]; then
  echo "-- installing chromium (apt)"
  apt_install chromium || { apt-get update >/dev/null; apt_install chromium; }
  chromium=$(command -v chromium)
fi
if ! command -v npm >/dev/null; then
  echo "-- installing nodejs and npm (apt)"
  apt_install nodejs npm || { apt-get update >/dev/null; apt_install nodejs npm; }
fi
js=$cache/node_modules/mermaid/dist/mermaid.min.js
if [[ ! -s $js ]]; then
  echo "-- installing mermaid $version (npm, cached in $cache)"
  mkdir -p "$cache"
  npm install --prefix "$cache" --no-audit --no-fund --silent "mermaid@$version" >/dev/null
fi
echo "-- $("$chromium" --version 2>/dev/null), mermaid $version"
python3 "$here/check-mermaid.py" "$js" "$chromium" "$@"
