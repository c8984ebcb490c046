#!/usr/bin/env bash
# The one owner of the Docker engine for builds and container tests (docs/architecture.md).
#
#   scripts/docker-engine.sh start       reuse a daemon that answers, else start one; prints "reused" or "started"
#   scripts/docker-engine.sh stop        stop the daemon only if this script started it
#   scripts/docker-engine.sh run CMD...  start, run CMD, then stop what was started
#   scripts/docker-engine.sh status      exit 0 when a daemon answers
#
# The daemon runs with no bridge network, so container traffic never leaves loopback.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STATE_DIR="${TASKFLOW_ENGINE_STATE:-$ROOT/.run/docker-engine}"
PID_FILE="$STATE_DIR/dockerd.pid"
LOG_FILE="$STATE_DIR/dockerd.log"
DOCKER="${DOCKER:-/usr/bin/docker}"
DOCKERD="${DOCKERD:-/usr/sbin/dockerd}"
WAIT_SECONDS="${TASKFLOW_ENGINE_WAIT:-60}"

log() { echo "docker-engine: $*" >&2; }

answers() { "$DOCKER" info >/dev/null 2>&1; }

install_engine() {
    [[ -x "$DOCKER" && -x "$DOCKERD" ]] && return 0
    if [[ "$(id -u)" != 0 ]]; then
        log "$DOCKER or $DOCKERD missing and not root: install docker.io (Debian) first"
        return 1
    fi
    log "installing docker.io and debootstrap with apt"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q >&2
    apt-get install -y -q docker.io debootstrap >&2
}

# The dockerd this script started, if it is still running (guards against a recycled pid).
our_daemon() {
    [[ -f "$PID_FILE" ]] || return 1
    local pid
    pid="$(cat "$PID_FILE")"
    [[ "$(cat "/proc/$pid/comm" 2>/dev/null)" == dockerd ]] && echo "$pid"
}

wait_answers() {
    local pid="$1" deadline=$((SECONDS + WAIT_SECONDS))
    until answers; do
        if ! kill -0 "$pid" 2>/dev/null; then
            log "dockerd exited; last lines of $LOG_FILE:"
            tail -n 20 "$LOG_FILE" >&2
            return 1
        fi
        if ((SECONDS >= deadline)); then
            log "dockerd did not answer within ${WAIT_SECONDS}s (log: $LOG_FILE)"
            return 1
        fi
        sleep 0.5
    done
}

start() {
    local pid
    if answers; then
        echo reused
        return 0
    fi
    # Started by another caller and still coming up: wait for it, leave stopping to that caller.
    if pid="$(our_daemon)"; then
        wait_answers "$pid" && { echo reused; return 0; }
        return 1
    fi
    install_engine
    if [[ "$(id -u)" != 0 ]]; then
        log "no Docker daemon answers and starting one needs root"
        return 1
    fi
    mkdir -p "$STATE_DIR"
    # setsid: the daemon ignores the caller's Ctrl-C; `stop` or the `run` trap ends it.
    setsid "$DOCKERD" --bridge=none --iptables=false --ip-forward=false --ip-masq=false \
        >"$LOG_FILE" 2>&1 </dev/null &
    echo $! >"$PID_FILE"
    if ! wait_answers "$!"; then
        stop >/dev/null
        return 1
    fi
    echo started
}

stop() {
    local pid
    if pid="$(our_daemon)"; then
        kill -TERM "$pid"
        for _ in $(seq 1 60); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.5
        done
        if kill -0 "$pid" 2>/dev/null; then
            log "dockerd $pid ignored TERM for 30s; sending KILL"
            kill -KILL "$pid" 2>/dev/null || true
        fi
    fi
    rm -f "$PID_FILE"
    echo stopped
}

case "${1:-}" in
start) start ;;
stop) stop ;;
status) answers ;;
run)
    shift
    [[ $# -gt 0 ]] || { log "usage: $0 run CMD..."; exit 2; }
    how="$(start)"
    if [[ "$how" == started ]]; then trap 'stop >/dev/null' EXIT; fi
    "$@"
    ;;
*)
    echo "usage: $0 start|stop|status|run CMD..." >&2
    exit 2
    ;;
esac
