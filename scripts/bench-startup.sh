#!/usr/bin/env bash
# Start-up with a valid JWT_TOKEN: time from launching `moontick run` to /readyz answering 200
# (session from the token with no login, hubs live, strategies loaded, contracts subscribed),
# against `moontick sim` on loopback. Release build.   scripts/bench-startup.sh [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-5}
cargo build --release --quiet
bin=$PWD/target/release/moontick
work=$(mktemp -d)
cp -r strategies "$work/"
cd "$work"
sim_port=$((20000 + RANDOM % 10000)); http_port=$((sim_port + 1))
"$bin" sim --port "$sim_port" >/dev/null 2>&1 &
sim_pid=$!
trap 'kill "$sim_pid" 2>/dev/null || true; rm -rf "$work"' EXIT
for _ in $(seq 1 50); do curl -s -o /dev/null "http://127.0.0.1:$sim_port/api/Status/ping" && break; sleep 0.1; done
token=$(PROJECT_X_API_URL=http://127.0.0.1:$sim_port PROJECT_X_USERNAME=demo PROJECT_X_API_KEY=demo \
  "$bin" token 2>/dev/null | sed -n 's/^JWT_TOKEN=//p')
for i in $(seq 1 "$runs"); do
  start=$(date +%s%N)
  JWT_TOKEN=$token PROJECT_X_API_URL=http://127.0.0.1:$sim_port PROJECT_X_ACCOUNT_ID=10001 \
    PORT=$http_port BIND_ADDR=127.0.0.1 RUST_LOG=warn "$bin" run >/dev/null 2>&1 &
  pid=$!
  until [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$http_port/readyz")" = 200 ]; do
    sleep 0.002
    kill -0 "$pid" 2>/dev/null || { echo "run $i: moontick exited before it was ready" >&2; exit 1; }
  done
  end=$(date +%s%N)
  echo "run $i: ready in $(( (end - start) / 1000000 )) ms"
  kill -TERM "$pid"; wait "$pid" || true
done
