#!/usr/bin/env bash
# Builds an offline stand-in base image (docs/architecture.md) from Debian packages with
# debootstrap, imported as one image. Cached: when the image exists already, nothing happens.
# Needs a Docker daemon that answers (docker-engine.sh).
#   scripts/base-image.sh          python:3.12-slim-bookworm's stand-in: python3, venv, CA certificates, tar
#   scripts/base-image.sh nginx    the web image's base (nginx:1.26.3-bookworm): Debian 13's nginx,
#                                  the same nginx version as the pinned image, and tar for Skaffold's sync
set -euo pipefail

KIND="${1:-python}"
case "$KIND" in
    python)
        IMAGE="${TASKFLOW_BASE_IMAGE:-taskflow-ci/python-base:bookworm}"
        SUITE=bookworm
        PACKAGES=python3,python3-venv,ca-certificates,tar
        ;;
    nginx)
        IMAGE="${TASKFLOW_NGINX_BASE_IMAGE:-taskflow-ci/nginx-base:trixie}"
        SUITE=trixie
        PACKAGES=nginx,ca-certificates,tar
        ;;
    *) echo "base-image: unknown kind '$KIND' (python or nginx)" >&2; exit 2 ;;
esac
DOCKER="${DOCKER:-/usr/bin/docker}"

log() { echo "base-image: $*" >&2; }

# The first Debian mirror the machine's apt sources name (deb822 .sources or one-line .list).
apt_mirror() {
    local f uri
    for f in /etc/apt/sources.list.d/*.sources; do
        [[ -f "$f" ]] || continue
        uri="$(awk -v suite="$SUITE" '
            /^URIs:/ { uris = $2 }
            /^Suites:/ { for (i = 2; i <= NF; i++) if ($i == suite) found = 1 }
            /^$/ { if (found && uris != "") exit; found = 0; uris = "" }
            END { if (found && uris != "") print uris }' "$f")"
        [[ -n "$uri" ]] && { echo "$uri"; return 0; }
    done
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [[ -f "$f" ]] || continue
        uri="$(awk -v suite="$SUITE" '$1 == "deb" && $0 !~ /\[/ && $3 == suite { print $2; exit }
            $1 == "deb" && $2 ~ /^\[/ && $4 == suite { print $3; exit }' "$f")"
        [[ -n "$uri" ]] && { echo "$uri"; return 0; }
    done
    return 1
}

if "$DOCKER" image inspect "$IMAGE" >/dev/null 2>&1; then
    log "$IMAGE present; nothing to do"
    exit 0
fi
[[ "$(id -u)" == 0 ]] || { log "debootstrap needs root"; exit 1; }
command -v debootstrap >/dev/null || {
    log "installing debootstrap with apt"
    apt-get update -q >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q debootstrap >&2
}
# Any suite comes from the mirror that serves bookworm (one Debian archive holds them all).
MIRROR="${TASKFLOW_DEBIAN_MIRROR:-$(SUITE=bookworm apt_mirror)}" || { log "no Debian mirror in the apt sources"; exit 1; }
CA_BUNDLE="${TASKFLOW_CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}"

WORK="$(mktemp -d /tmp/taskflow-base.XXXXXX)"
trap 'rm -rf "$WORK"' EXIT
log "debootstrap $SUITE from $MIRROR (about a minute)"
debootstrap --variant=minbase --include="$PACKAGES" \
    "$SUITE" "$WORK/rootfs" "$MIRROR" >"$WORK/debootstrap.log" 2>&1 || {
    tail -n 30 "$WORK/debootstrap.log" >&2
    exit 1
}
# The host's bundle: downloads inside a build fail TLS without it.
cp "$CA_BUNDLE" "$WORK/rootfs/etc/ssl/certs/ca-certificates.crt"
rm -rf "$WORK"/rootfs/var/cache/apt/archives/*.deb "$WORK"/rootfs/var/lib/apt/lists/*
tar -C "$WORK/rootfs" -c . | "$DOCKER" import \
    --change 'ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt' \
    --change 'ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt' \
    --change 'ENV UV_NATIVE_TLS=1' \
    --change 'CMD ["/bin/bash"]' \
    - "$IMAGE" >/dev/null
log "imported $IMAGE"
