#!/usr/bin/env bash
# Builds the image, starts it with no ProjectX credentials (it runs on its built-in simulator) on
# a root-owned state directory (as Railway's volumes are), and checks that /healthz and /readyz
# answer 200, that SIGTERM exits 0, and that the state was saved, owned by the image's
# unprivileged user. For whoever changes the Dockerfile. Run as root (for the root-owned mount).
#   scripts/docker-probe.sh            # build + probe
#   SKIP_BUILD=1 scripts/docker-probe.sh
# Needs docker (on a machine without a registry, run ../shared/tools/local-docker first) and curl.
set -euo pipefail
cd "$(dirname "$0")/.."
image=${IMAGE:-moontick}
port=${PROBE_PORT:-18080}
name=moontick-probe-$$

if [ -z "${SKIP_BUILD:-}" ]; then
  docker build --network host -t "$image" .
fi

# Host networking: the container's 0.0.0.0:$port is this machine's. A throw-away secret, because
# the server refuses to listen beyond loopback without one.
# A bind mount keeps the host's ownership: root, like a Railway volume. (A new named volume
# would copy the image's /app/state, already owned by the image's user.)
state=$(mktemp -d)
chown 0:0 "$state" && chmod 755 "$state"
docker run -d --name "$name" --network host -v "$state:/app/state" \
  -e PORT="$port" -e WEBHOOK_SECRET="probe-$RANDOM$RANDOM" "$image" >/dev/null
trap 'docker rm -f "$name" >/dev/null 2>&1 || true; rm -rf "$state"' EXIT

status() { curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port$1" || true; }
ok=""
for _ in $(seq 1 60); do
  if [ "$(status /healthz)" = 200 ] && [ "$(status /readyz)" = 200 ]; then ok=1; break; fi
  sleep 0.5
done
echo "healthz: $(status /healthz)  readyz: $(status /readyz) $(curl -s "http://127.0.0.1:$port/readyz")"
docker logs "$name" 2>&1 | head -n 20 || true  # head closes the pipe early: not a failure
if [ -z "$ok" ]; then
  echo "probe FAILED" >&2
  exit 1
fi
# A clean stop: SIGTERM drains HTTP, stops strategies (state saved) and exits 0.
docker stop -t 10 "$name" >/dev/null
code=$(docker inspect -f '{{.State.ExitCode}}' "$name")
docker logs "$name" 2>&1 | tail -n 4 || true
echo "exit code after SIGTERM: $code"
[ "$code" = 0 ] || { echo "probe FAILED: non-zero exit after SIGTERM" >&2; exit 1; }
# The entrypoint took ownership of the root-owned mount, then moontick (unprivileged) saved there.
uid=$(docker run --rm --entrypoint id "$image" -u moontick)
echo "state on the root-owned mount (moontick is uid $uid):"
ls -lnR "$state"
[ "$(stat -c %u "$state")" = "$uid" ] || { echo "probe FAILED: $state not owned by uid $uid" >&2; exit 1; }
ls "$state"/simulator-10001/*.json >/dev/null 2>&1 || { echo "probe FAILED: no state saved" >&2; exit 1; }
[ -z "$(find "$state" ! -uid "$uid")" ] ||
  { echo "probe FAILED: state written by another user than $uid" >&2; exit 1; }
echo "probe OK"
