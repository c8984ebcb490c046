#!/bin/sh
# The image's command: render the one template from the environment, then run nginx in the
# foreground as the image's user. No entrypoint script of a base image is involved (those skip
# silently on a read-only root filesystem).
set -eu
config="$(/app/services/web/render-config.sh)"
exec nginx -e stderr -c "$config" "$@"
