#!/usr/bin/env bash
# Installs what `make up` and `make test` need on a fresh Debian machine, then syncs the workspace.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
compgen -G "/usr/lib/postgresql/*/bin/pg_ctl" >/dev/null || missing+=(postgresql)
command -v redis-server >/dev/null || missing+=(redis-server)
# The web entry point of `make up`: nginx (in /usr/sbin, often not on a user's PATH) and its exporter.
command -v nginx >/dev/null || [[ -x /usr/sbin/nginx ]] || missing+=(nginx)
command -v prometheus-nginx-exporter >/dev/null || missing+=(prometheus-nginx-exporter)
# Tools a verb asks for on top, each a command named as its Debian package (`make bench` needs
# wrk for its ceiling; `make test-all` chromium and curl for the browser and proxy tests; `make
# test` Debian's prometheus, prometheus-postgres-exporter and prometheus-redis-exporter).
for tool in ${BOOTSTRAP_TOOLS:-}; do command -v "$tool" >/dev/null || missing+=("$tool"); done
if ((${#missing[@]})); then
  if [[ $(id -u) -ne 0 ]]; then
    echo "bootstrap: please install ${missing[*]} (e.g. sudo apt-get install -y ${missing[*]})" >&2
    exit 1
  fi
  echo "bootstrap: installing ${missing[*]} with apt-get" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  # Debian starts the servers it just installed on the standard ports; ours use free ports.
  for service in postgresql redis-server nginx prometheus-nginx-exporter prometheus \
    prometheus-postgres-exporter prometheus-redis-exporter; do
    [[ " ${missing[*]} " == *" $service "* ]] && { systemctl disable --now "$service" >/dev/null 2>&1 || true; }
  done
fi

if ! command -v uv >/dev/null; then
  echo "bootstrap: installing uv with pip" >&2
  python3 -m pip install --quiet uv || python3 -m pip install --quiet --break-system-packages uv
  command -v pyenv >/dev/null && pyenv rehash
fi
# pip may put uv where PATH does not look (a user or pyenv bin); the module always works.
uv() { if command -v uv >/dev/null; then command uv "$@"; else python3 -m uv "$@"; fi; }
export UV_PYTHON_DOWNLOADS=never
uv sync --all-packages --frozen --quiet
