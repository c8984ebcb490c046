#!/bin/sh
# Renders nginx.conf.template into "$RUNTIME_DIR/nginx.conf" from the environment and prints
# its path. Used by the image (start.sh) and by `make up` alike, so both run one configuration.
# Each value is checked first; a bad one stops here with one line naming the variable (exit 2).
set -eu

here="$(dirname "$0")"
template="${WEB_TEMPLATE:-$here/nginx.conf.template}"

fail() { echo "render-config: $1" >&2; exit 2; }

port() { # NAME VALUE
    case "$2" in
        '' | *[!0-9]*) fail "$1 must be a port number, got '$2'" ;;
    esac
    [ "$2" -ge 1 ] && [ "$2" -le 65535 ] || fail "$1 must be a port number, got '$2'"
}

address() { # NAME VALUE: host:port, the host a DNS name or an IPv4 address
    case "$2" in
        *:*) ;;
        *) fail "$1 must be host:port, got '$2'" ;;
    esac
    host="${2%:*}"
    case "$host" in
        '' | *[!A-Za-z0-9.-]*) fail "$1 must be host:port, got '$2'" ;;
    esac
    port "$1" "${2##*:}"
}

directory() { # NAME VALUE: an absolute path nginx can take as it is
    case "$2" in
        /*) ;;
        *) fail "$1 must be an absolute path, got '$2'" ;;
    esac
    case "$2" in
        *[!A-Za-z0-9/._-]*) fail "$1 may hold only letters, digits and / . _ -, got '$2'" ;;
    esac
}

HOST="${HOST-0.0.0.0}"
PORT="${PORT-8080}"
STATUS_PORT="${STATUS_PORT-8081}"
RUNTIME_DIR="${RUNTIME_DIR-/tmp/nginx}"
[ -n "${TASKS_API_ADDRESS:-}" ] || fail "TASKS_API_ADDRESS is required (host:port of tasks-api)"
[ -n "${STATS_API_ADDRESS:-}" ] || fail "STATS_API_ADDRESS is required (host:port of stats-api)"
[ -n "${STATIC_ROOT:-}" ] || fail "STATIC_ROOT is required (the directory of the UI's files)"

case "$HOST" in
    '' | *[!0-9.]*) fail "HOST must be an IPv4 address, got '$HOST'" ;;
esac
port PORT "$PORT"
port STATUS_PORT "$STATUS_PORT"
[ "$PORT" != "$STATUS_PORT" ] || fail "STATUS_PORT must differ from PORT ($PORT)"
address TASKS_API_ADDRESS "$TASKS_API_ADDRESS"
address STATS_API_ADDRESS "$STATS_API_ADDRESS"
directory STATIC_ROOT "$STATIC_ROOT"
directory RUNTIME_DIR "$RUNTIME_DIR"
[ -f "$STATIC_ROOT/index.html" ] || fail "STATIC_ROOT has no index.html: '$STATIC_ROOT'"

mkdir -p "$RUNTIME_DIR"
# Only these names are replaced; nginx's own $variables are left alone. The values were checked
# above to hold no character sed would treat specially.
sed -e "s|\${HOST}|$HOST|g" \
    -e "s|\${PORT}|$PORT|g" \
    -e "s|\${STATUS_PORT}|$STATUS_PORT|g" \
    -e "s|\${TASKS_API_ADDRESS}|$TASKS_API_ADDRESS|g" \
    -e "s|\${STATS_API_ADDRESS}|$STATS_API_ADDRESS|g" \
    -e "s|\${STATIC_ROOT}|$STATIC_ROOT|g" \
    -e "s|\${RUNTIME_DIR}|$RUNTIME_DIR|g" \
    "$template" >"$RUNTIME_DIR/nginx.conf.new"
if grep -n '\${' "$RUNTIME_DIR/nginx.conf.new" >&2; then
    fail "unfilled placeholder in $template (above)"
fi
mv "$RUNTIME_DIR/nginx.conf.new" "$RUNTIME_DIR/nginx.conf"
echo "$RUNTIME_DIR/nginx.conf"
