#!/bin/sh
# The image's entrypoint. Docker and Railway volumes mount root-owned, while moontick runs as the
# unprivileged user `moontick`: started as root (the default), this takes ownership of the state
# and recording directories, then drops to that user for good (setpriv, util-linux) and runs moontick with the
# given arguments. Started as any other user (`docker run --user ...`), it runs moontick as is.
set -eu
if [ "$(id -u)" = 0 ]; then
  # Only the state and recording directories (RECORD_DIR set empty: none), never the
  # strategies; a failure is left for moontick to report with the path and what to do.
  for dir in "${STATE_DIR:-/app/state}" "${RECORD_DIR-/app/data}"; do
    [ -n "$dir" ] || continue
    mkdir -p "$dir" 2>/dev/null || true
    chown -R moontick:moontick "$dir" 2>/dev/null ||
      echo "docker-entrypoint: could not take ownership of $dir; moontick will say what failed" >&2
  done
  exec setpriv --reuid=moontick --regid=moontick --clear-groups --inh-caps=-all -- moontick "$@"
fi
exec moontick "$@"
