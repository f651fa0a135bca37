#!/usr/bin/env bash
# Conformance with independent SignalR clients: builds moontick, starts `moontick sim` on a free
# loopback port, installs the official @microsoft/signalr JS client (npm ci) and the Python
# signalrcore client (pip, in a throw-away venv), and runs each against the simulator's market
# hub. Exits non-zero if either fails. Needs node/npm and python3 on PATH.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

echo "== conformance: build"
cargo build --locked --bin moontick
TARGET_DIR=$(cargo metadata --format-version 1 --no-deps |
  python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
BIN="$TARGET_DIR/debug/moontick"

PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')
WORK=$(mktemp -d)
SIM_LOG="$WORK/sim.log"
SIM_PID=""
cleanup() {
  if [ -n "$SIM_PID" ]; then
    kill "$SIM_PID" 2>/dev/null || true
    wait "$SIM_PID" 2>/dev/null || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT

echo "== conformance: moontick sim on port $PORT"
# A clean environment, so a developer's .env or RUST_LOG cannot change the simulator.
(cd "$WORK" && exec env -i PATH="$PATH" RUST_LOG=warn "$BIN" sim --port "$PORT") >"$SIM_LOG" 2>&1 &
SIM_PID=$!
export SIM_URL="http://127.0.0.1:$PORT" SIM_USER=demo SIM_KEY=demo
for _ in $(seq 1 100); do
  if curl -sf "$SIM_URL/api/Status/ping" >/dev/null 2>&1; then break; fi
  if ! kill -0 "$SIM_PID" 2>/dev/null; then
    echo "moontick sim exited:"; cat "$SIM_LOG"; exit 1
  fi
  sleep 0.1
done
curl -sf "$SIM_URL/api/Status/ping" >/dev/null || { echo "moontick sim did not come up"; cat "$SIM_LOG"; exit 1; }

status=0

echo "== conformance: @microsoft/signalr (skipNegotiation, WebSockets)"
(cd "$ROOT/conformance/js" && npm ci --no-audit --no-fund --loglevel=error && timeout 60 node test.mjs) || status=1

echo "== conformance: signalrcore (negotiate)"
python3 -m venv "$WORK/venv"
"$WORK/venv/bin/pip" install --quiet --disable-pip-version-check -r "$ROOT/conformance/python/requirements.txt"
timeout 60 "$WORK/venv/bin/python" "$ROOT/conformance/python/test_market_hub.py" || status=1

if [ "$status" -ne 0 ]; then
  echo "== conformance FAILED; simulator log:"
  cat "$SIM_LOG"
fi
exit "$status"
