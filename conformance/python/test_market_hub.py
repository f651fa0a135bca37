"""The Python signalrcore client against the simulator's market hub, through negotiate (its
default): log in over REST, find the MNQ front month, subscribe to its quotes and check that
GatewayQuote arrives as [contractId, {symbol, bestBid, ...}].

Env: SIM_URL (http://127.0.0.1:PORT), SIM_USER, SIM_KEY. Exits 0 on success, 1 with a reason.
"""

import json
import logging
import os
import sys
import threading
import urllib.request

from signalrcore.hub_connection_builder import HubConnectionBuilder

LIMIT_S = 20


def fail(message):
    print(f"python conformance FAILED: {message}", file=sys.stderr, flush=True)
    os._exit(1)


def post(base, path, body, token=None):
    headers = {"content-type": "application/json"}
    if token:
        headers["authorization"] = f"Bearer {token}"
    req = urllib.request.Request(
        base + path, data=json.dumps(body).encode(), headers=headers, method="POST"
    )
    try:
        with urllib.request.urlopen(req, timeout=10) as res:
            return json.load(res)
    except Exception as e:  # noqa: BLE001 - any failure is reported the same way
        fail(f"{path}: {e}")


def main():
    base = os.environ.get("SIM_URL") or fail("SIM_URL is not set")
    user = os.environ.get("SIM_USER", "demo")
    key = os.environ.get("SIM_KEY", "demo")

    login = post(base, "/api/Auth/loginKey", {"userName": user, "apiKey": key})
    if not login.get("success") or not login.get("token"):
        fail(f"login refused: {login}")
    token = login["token"]

    search = post(base, "/api/Contract/search", {"searchText": "MNQ", "live": False}, token)
    contract = next(
        (
            c
            for c in search.get("contracts") or []
            if c.get("symbolId") == "F.US.MNQ" and c.get("activeContract")
        ),
        None,
    )
    if contract is None:
        fail(f"no active F.US.MNQ contract in {search}")

    got = {}
    done = threading.Event()
    errors = []

    def on_quote(args):
        if not done.is_set():
            got["args"] = args
            done.set()

    hub = (
        HubConnectionBuilder()
        .with_url(f"{base}/hubs/market", options={"access_token_factory": lambda: token})
        .configure_logging(logging.WARNING)
        .build()
    )
    hub.on("GatewayQuote", on_quote)
    hub.on_error(lambda e: errors.append(str(e)))
    hub.on_close(lambda: None)

    def subscribe():
        def on_completion(message):
            if getattr(message, "error", None):
                errors.append(f"SubscribeContractQuotes: {message.error}")

        hub.send("SubscribeContractQuotes", [contract["id"]], on_invocation=on_completion)

    hub.on_open(subscribe)
    if not hub.start():
        fail("the hub connection did not start")
    if not done.wait(LIMIT_S):
        fail(f"no GatewayQuote within {LIMIT_S} s (errors: {errors})")
    hub.stop()

    args = got["args"]
    if len(args) != 2:
        fail(f"GatewayQuote has {len(args)} arguments, expected 2: {args}")
    contract_id, quote = args
    if contract_id != contract["id"]:
        fail(f"first argument {contract_id!r} is not {contract['id']}")
    if not isinstance(quote, dict):
        fail(f"second argument is not an object: {quote!r}")
    if quote.get("symbol") != "F.US.MNQ":
        fail(f"symbol is {quote.get('symbol')!r}")
    for field in ("bestBid", "bestAsk", "lastPrice"):
        value = quote.get(field)
        if not isinstance(value, (int, float)) or value <= 0:
            fail(f"{field} is {value!r} in the first quote {quote}")
    if not quote["bestAsk"] > quote["bestBid"]:
        fail(f"crossed quote {quote}")
    if errors:
        fail(f"errors reported: {errors}")
    print(
        f"python conformance ok: GatewayQuote [{contract_id}, "
        f"{{bestBid: {quote['bestBid']}, bestAsk: {quote['bestAsk']}, ...}}]",
        flush=True,
    )
    # signalrcore leaves non-daemon threads behind; the verdict is already printed.
    os._exit(0)


if __name__ == "__main__":
    main()
