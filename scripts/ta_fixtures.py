#!/usr/bin/env python3
"""Writes tests/fixtures/ta/*.json: reference outputs for the `ta` indicators of Lua strategies.

The references come from TA-Lib (PyPI package `TA-Lib`, whose wheels carry the C library) over
a deterministic OHLCV series generated here from a fixed seed. VWAP is not in TA-Lib; its
reference is computed below from its definition (cumulative price x volume over cumulative
volume, restarting each CME trading day at 17:00 America/Chicago), with the trading day taken
from the zoneinfo database, independently of the Rust code.

Run from the repository root (CI does not need Python: the fixtures are committed):

    python3 -m venv /tmp/ta-venv && /tmp/ta-venv/bin/pip install TA-Lib numpy
    /tmp/ta-venv/bin/python scripts/ta_fixtures.py

Each fixture is {"call", "inputs", "talib", "outputs"}: `call` is the Lua constructor, `inputs`
names the series columns passed to `:update` in order, and `outputs` has one entry per bar,
null while the indicator warms up, else a number (or a list for several results).
"""

import datetime as dt
import json
import math
import random
import statistics
from fractions import Fraction
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import talib

OUT = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "ta"
CHICAGO = ZoneInfo("America/Chicago")
SEED = 20261129
BARS = 600
TICK = 0.25


def open_at(t: dt.datetime) -> bool:
    """CME Globex hours: Sunday 17:00 to Friday 16:00 Chicago, closed 16:00-17:00 daily."""
    c = t.astimezone(CHICAGO)
    wd, h = c.weekday(), c.hour  # Monday = 0
    if h == 16 or wd == 5:
        return False
    if wd == 4 and h >= 16:
        return False
    if wd == 6 and h < 17:
        return False
    return True


def series():
    """15-minute MNQ-like bars on the 0.25 tick grid, only while the market is open, across the
    2026 US daylight-saving switch (8 March) and a weekend, so VWAP resets at both 17:00
    offsets. A flat stretch gives zero deviation, zero true-range moves and ties for MAX/MIN."""
    rng = random.Random(SEED)
    t = dt.datetime(2026, 3, 4, 23, 0, tzinfo=dt.timezone.utc)
    close = 20000.0
    rows = []
    while len(rows) < BARS:
        t += dt.timedelta(minutes=15)
        if not open_at(t):
            continue
        o = close
        flat = 200 <= len(rows) < 230
        if flat:
            c = o
            h = o
            lo = o
        else:
            c = o + round(rng.gauss(0, 10) / TICK) * TICK
            h = max(o, c) + rng.randint(0, 12) * TICK
            lo = min(o, c) - rng.randint(0, 12) * TICK
        v = rng.randint(0, 3) if flat else rng.randint(40, 4000)
        rows.append(
            {
                "time": int(t.timestamp()),
                "open": o,
                "high": h,
                "low": lo,
                "close": c,
                "volume": float(v),
            }
        )
        close = c
    return rows


def col(rows, name):
    return np.array([r[name] for r in rows], dtype=float)


def one(a):
    return [None if math.isnan(x) else float(x) for x in a]


def many(*arrays):
    out = []
    for xs in zip(*arrays):
        out.append(None if any(math.isnan(x) for x in xs) else [float(x) for x in xs])
    return out


def trading_day(ts: int) -> dt.date:
    c = dt.datetime.fromtimestamp(ts, dt.timezone.utc).astimezone(CHICAGO)
    return c.date() + dt.timedelta(days=1) if c.hour >= 17 else c.date()


def vwap(rows):
    out, day, pv, vol = [], None, 0.0, 0.0
    for r in rows:
        d = trading_day(r["time"])
        if d != day:
            day, pv, vol = d, 0.0, 0.0
        pv += r["close"] * r["volume"]
        vol += r["volume"]
        out.append(pv / vol if vol > 0 else None)
    return out


def check_stdev(n, outputs, closes):
    """TA-Lib's STDDEV subtracts running sums of squares; make sure that at this price level
    its rounding stays far inside the tests' 1e-9, against exact rational arithmetic."""
    for i, got in enumerate(outputs):
        if got is None:
            continue
        exact = statistics.pvariance([Fraction(x) for x in closes[i - n + 1 : i + 1]])
        want = math.sqrt(exact)
        assert abs(got - want) <= 1e-11 * max(want, 1.0), (n, i, got, want)


def main():
    rows = series()
    o, h, lo, c, v = (col(rows, k) for k in ("open", "high", "low", "close", "volume"))
    fixtures = {}

    def add(name, call, inputs, fn, outputs):
        fixtures[name] = {"call": call, "inputs": inputs, "talib": fn, "outputs": outputs}

    for n in (1, 5, 20):
        add(f"sma_{n}", f"ta.sma({n})", ["close"], f"SMA(close, {n})", one(talib.SMA(c, n)))
    for n in (1, 5, 20):
        add(f"ema_{n}", f"ta.ema({n})", ["close"], f"EMA(close, {n})", one(talib.EMA(c, n)))
    for n in (1, 10):
        add(f"wma_{n}", f"ta.wma({n})", ["close"], f"WMA(close, {n})", one(talib.WMA(c, n)))
    for n in (2, 14):
        add(f"rsi_{n}", f"ta.rsi({n})", ["close"], f"RSI(close, {n})", one(talib.RSI(c, n)))
    for n in (1, 14):
        add(
            f"atr_{n}",
            f"ta.atr({n})",
            ["high", "low", "close"],
            f"ATR(high, low, close, {n})",
            one(talib.ATR(h, lo, c, n)),
        )
    for f, s, g in ((12, 26, 9), (3, 10, 1), (26, 12, 9)):
        m = talib.MACD(c, f, s, g)
        add(f"macd_{f}_{s}_{g}", f"ta.macd({f}, {s}, {g})", ["close"], f"MACD(close, {f}, {s}, {g})", many(*m))
    for n, k in ((20, 2), (5, 1.5)):
        b = talib.BBANDS(c, n, k, k, 0)
        add(
            f"bbands_{n}_{k}".replace(".", "_"),
            f"ta.bbands({n}, {k})",
            ["close"],
            f"BBANDS(close, {n}, {k}, {k}, SMA)",
            many(*b),
        )
    for n in (2, 10):  # TA-Lib's STDDEV takes n >= 2
        out = one(talib.STDDEV(c, n, 1))
        check_stdev(n, out, [r["close"] for r in rows])
        add(f"stdev_{n}", f"ta.stdev({n})", ["close"], f"STDDEV(close, {n}, 1)", out)
    for n in (2, 10):  # TA-Lib's MAX and MIN take n >= 2
        add(f"highest_{n}", f"ta.highest({n})", ["high"], f"MAX(high, {n})", one(talib.MAX(h, n)))
        add(f"lowest_{n}", f"ta.lowest({n})", ["low"], f"MIN(low, {n})", one(talib.MIN(lo, n)))
    add(
        "vwap",
        "ta.vwap()",
        ["close", "volume", "time"],
        "none: sum(close*volume)/sum(volume) per CME trading day, computed in this script",
        vwap(rows),
    )

    OUT.mkdir(parents=True, exist_ok=True)
    for old in OUT.glob("*.json"):
        old.unlink()
    meta = {"seed": SEED, "talib": talib.__version__, "ta_lib_c": talib.__ta_version__.decode()}
    bars = ",\n".join(json.dumps(r) for r in rows)
    (OUT / "series.json").write_text(f'{{"generator": {json.dumps(meta)},\n"bars": [\n{bars}\n]}}\n')
    for name, fx in fixtures.items():
        (OUT / f"{name}.json").write_text(json.dumps(fx) + "\n")
    print(f"wrote {len(fixtures)} fixtures and series.json ({len(rows)} bars) to {OUT}")


if __name__ == "__main__":
    main()
