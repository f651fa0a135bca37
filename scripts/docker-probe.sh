#!/usr/bin/env bash
# Builds the image, starts it with no ProjectX credentials (it runs on its built-in simulator),
# and checks that /healthz and /readyz answer 200. For whoever changes the Dockerfile.
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
docker run -d --name "$name" --network host \
  -e PORT="$port" -e WEBHOOK_SECRET="probe-$RANDOM$RANDOM" "$image" >/dev/null
trap 'docker rm -f "$name" >/dev/null 2>&1 || true' EXIT

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
echo "probe OK"
