#!/usr/bin/env bash
# The dashboard's browser test: builds moontick, starts `moontick run` on the built-in simulator
# (a loopback port, a webhook secret, one strategy), installs playwright-core (npm ci; it
# downloads no browser) and drives Debian's Chromium through dashboard.test.mjs. Fails, never
# skips, when Chromium is missing. Then a backtest over what that run recorded, and its
# report.html opened offline (report.test.mjs), and a replay of that recording whose dashboard
# must say REPLAY (replay.test.mjs). Screenshots are left in browser/artifacts/.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
if [ ! -x "$CHROMIUM" ]; then
  echo "browser test: $CHROMIUM not found; install Debian's chromium (apt-get install -y chromium)" >&2
  exit 1
fi

echo "== browser: build"
cargo build --locked --bin moontick
TARGET_DIR=$(cargo metadata --format-version 1 --no-deps |
  python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
BIN="$TARGET_DIR/debug/moontick"

PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')
SECRET="browser-test-$(python3 -c 'import secrets; print(secrets.token_hex(8))')"
WORK=$(mktemp -d)
RUN_LOG="$WORK/run.log"
RUN_PID=""
REPLAY_PID=""
cleanup() {
  for pid in $RUN_PID $REPLAY_PID; do
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  rm -rf "$WORK"
}
trap cleanup EXIT

mkdir -p "$WORK/strategies"
cat >"$WORK/strategies/buyer.lua" <<'LUA'
-- Buys one MNQ per webhook, with a bracket (stop loss and take profit).
local M = { symbols = { "MNQ" } }
function M.on_quote(q) end
function M.on_webhook(req)
  local h, why = bot.buy{ symbol = "MNQ", size = 1, stop_loss_ticks = 40, take_profit_ticks = 80 }
  return { ok = h ~= nil, why = why }
end
return M
LUA

echo "== browser: moontick run on the simulator, port $PORT"
# A clean environment, so a developer's .env or credentials cannot make this a live run.
(cd "$WORK" && exec env -i PATH="$PATH" RUST_LOG=info BIND_ADDR=127.0.0.1 PORT="$PORT" \
  WEBHOOK_SECRET="$SECRET" STRATEGIES_DIR="$WORK/strategies" STATE_DIR="$WORK/state" \
  "$BIN" run) >"$RUN_LOG" 2>&1 &
RUN_PID=$!
BASE_URL="http://127.0.0.1:$PORT"
for _ in $(seq 1 300); do
  if curl -sf "$BASE_URL/readyz" >/dev/null 2>&1; then break; fi
  if ! kill -0 "$RUN_PID" 2>/dev/null; then
    echo "moontick run exited:"; cat "$RUN_LOG"; exit 1
  fi
  sleep 0.1
done
curl -sf "$BASE_URL/readyz" >/dev/null || { echo "moontick run did not become ready"; cat "$RUN_LOG"; exit 1; }

echo "== browser: headless Chromium ($("$CHROMIUM" --version 2>/dev/null || echo unknown))"
status=0
(cd "$ROOT/browser" && npm ci --no-audit --no-fund --loglevel=error &&
  BASE_URL="$BASE_URL" SECRET="$SECRET" CHROMIUM="$CHROMIUM" timeout 180 node --test dashboard.test.mjs) || status=1

echo "== browser: a backtest's report.html (over what the run above recorded)"
cat >"$WORK/flip.lua" <<'LUA'
-- In and out every few quotes, so the report has trades to draw.
local M = { symbols = { "MNQ" } }
local n = 0
function M.on_quote(q)
  n = n + 1
  if n % 10 == 5 then bot.buy{ symbol = "MNQ", size = 1 } end
  if n % 10 == 0 then bot.sell{ symbol = "MNQ", size = 1 } end
end
return M
LUA
if (cd "$WORK" && "$BIN" backtest flip.lua --data data --out "$WORK/bt" >"$WORK/bt.log" 2>&1); then
  (cd "$ROOT/browser" && REPORT="$WORK/bt/report.html" CHROMIUM="$CHROMIUM" \
    timeout 120 node --test report.test.mjs) || status=1
else
  echo "moontick backtest failed:"; cat "$WORK/bt.log"; status=1
fi

echo "== browser: moontick replay of that recording (its dashboard)"
RPORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')
(cd "$WORK" && exec env -i PATH="$PATH" RUST_LOG=info BIND_ADDR=127.0.0.1 PORT="$RPORT" \
  "$BIN" replay flip.lua --data data --speed 4 --out "$WORK/rp") >"$WORK/replay.log" 2>&1 &
REPLAY_PID=$!
for _ in $(seq 1 300); do
  if curl -sf "http://127.0.0.1:$RPORT/healthz" >/dev/null 2>&1; then break; fi
  sleep 0.1
done
if curl -sf "http://127.0.0.1:$RPORT/healthz" >/dev/null; then
  (cd "$ROOT/browser" && BASE_URL="http://127.0.0.1:$RPORT" CHROMIUM="$CHROMIUM" \
    timeout 120 node --test replay.test.mjs) || status=1
else
  echo "moontick replay did not serve:"; cat "$WORK/replay.log"; status=1
fi
kill "$REPLAY_PID" 2>/dev/null || true
wait "$REPLAY_PID" 2>/dev/null || true
REPLAY_PID=""

if grep -qF "$SECRET" "$RUN_LOG"; then
  echo "browser test: the secret appeared in moontick's log" >&2
  status=1
fi
if [ "$status" -ne 0 ]; then
  echo "== browser test FAILED; moontick log:"
  tail -n 200 "$RUN_LOG"
fi
exit "$status"
