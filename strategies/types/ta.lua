---@meta
-- LuaLS type stubs for `ta`, the indicators every strategy has (README, "Indicators (`ta`)").
-- Not loaded by the engine. Each object is incremental: feed it one value (or bar) at a time
-- with :update; it returns the current value, nil until it has seen enough values, and
-- :value() returns the same again. Definitions follow TA-Lib's. An object belongs to the
-- version of the file that made it: `state` cannot carry it across a reload (make it when the
-- file loads). Bad arguments (a period below 1, a non-number, NaN) are errors.

---@class ta
ta = {}

---@class TaSma
local TaSma = {}
---@param x number
---@return number|nil mean of the last n values
function TaSma:update(x) end
---@return number|nil
function TaSma:value() end

---@class TaEma
local TaEma = {}
---@param x number
---@return number|nil
function TaEma:update(x) end
---@return number|nil
function TaEma:value() end

---@class TaWma
local TaWma = {}
---@param x number
---@return number|nil
function TaWma:update(x) end
---@return number|nil
function TaWma:value() end

---@class TaRsi
local TaRsi = {}
---@param x number
---@return number|nil rsi 0..100
function TaRsi:update(x) end
---@return number|nil
function TaRsi:value() end

---@class TaAtr
local TaAtr = {}
---@param high number
---@param low number must not be above high
---@param close number
---@return number|nil
function TaAtr:update(high, low, close) end
---@return number|nil
function TaAtr:value() end

---@class TaMacd
local TaMacd = {}
---@param x number
---@return number|nil macd fast EMA minus slow EMA
---@return number|nil signal EMA of macd
---@return number|nil histogram macd minus signal
function TaMacd:update(x) end
---@return number|nil macd
---@return number|nil signal
---@return number|nil histogram
function TaMacd:value() end

---@class TaBbands
local TaBbands = {}
---@param x number
---@return number|nil upper middle + k deviations
---@return number|nil middle SMA of the last n values
---@return number|nil lower middle - k deviations
function TaBbands:update(x) end
---@return number|nil upper
---@return number|nil middle
---@return number|nil lower
function TaBbands:value() end

---@class TaStdev
local TaStdev = {}
---@param x number
---@return number|nil population standard deviation of the last n values
function TaStdev:update(x) end
---@return number|nil
function TaStdev:value() end

---@class TaVwap
local TaVwap = {}
---@param price number e.g. bar.close, or (high + low + close) / 3
---@param volume number >= 0
---@param time number seconds since the Unix epoch, as bar.time, q.time and bot.now() give
---@return number|nil vwap since 17:00 Chicago (the CME trading day); nil until volume traded
function TaVwap:update(price, volume, time) end
---@return number|nil
function TaVwap:value() end

---@class TaHighest
local TaHighest = {}
---@param x number
---@return number|nil highest of the last n values, x included
function TaHighest:update(x) end
---@return number|nil
function TaHighest:value() end

---@class TaLowest
local TaLowest = {}
---@param x number
---@return number|nil lowest of the last n values, x included
function TaLowest:update(x) end
---@return number|nil
function TaLowest:value() end

--- Simple moving average of the last n values. Warm-up: n values.
---@param n integer 1..100000
---@return TaSma
function ta.sma(n) end

--- Exponential moving average, k = 2 / (n + 1), seeded with the SMA of the first n values.
--- Warm-up: n values.
---@param n integer 1..100000
---@return TaEma
function ta.ema(n) end

--- Weighted moving average, weights 1..n (newest n). Warm-up: n values.
---@param n integer 1..100000
---@return TaWma
function ta.wma(n) end

--- Relative strength index with Wilder's smoothing. Warm-up: n + 1 values.
---@param n integer 1..100000
---@return TaRsi
function ta.rsi(n) end

--- Average true range with Wilder's smoothing; :update(high, low, close). Warm-up: n + 1 bars.
---@param n integer 1..100000
---@return TaAtr
function ta.atr(n) end

--- MACD as TA-Lib aligns it (periods swapped if fast > slow). Warm-up: slow + signal - 1.
---@param fast integer 1..100000
---@param slow integer 1..100000
---@param signal integer 1..100000
---@return TaMacd
function ta.macd(fast, slow, signal) end

--- Bollinger bands: SMA of n values +- k population standard deviations. Warm-up: n values.
---@param n integer 1..100000
---@param k? number >= 0, default 2
---@return TaBbands
function ta.bbands(n, k) end

--- Population standard deviation of the last n values. Warm-up: n values.
---@param n integer 1..100000
---@return TaStdev
function ta.stdev(n) end

--- Volume-weighted average price, starting over each CME trading day (17:00 Chicago);
--- :update(price, volume, time).
---@return TaVwap
function ta.vwap() end

--- Highest of the last n values, the current one included. Warm-up: n values.
---@param n integer 1..100000
---@return TaHighest
function ta.highest(n) end

--- Lowest of the last n values, the current one included. Warm-up: n values.
---@param n integer 1..100000
---@return TaLowest
function ta.lowest(n) end

--- True when a went from at or below b (prev_a <= prev_b) to above it (a > b). False while
--- any argument is nil (an indicator still warming up).
---@param prev_a number|nil
---@param a number|nil
---@param prev_b number|nil
---@param b number|nil
---@return boolean
function ta.crossed_above(prev_a, a, prev_b, b) end

--- True when a went from at or above b (prev_a >= prev_b) to below it (a < b). False while
--- any argument is nil.
---@param prev_a number|nil
---@param a number|nil
---@param prev_b number|nil
---@param b number|nil
---@return boolean
function ta.crossed_below(prev_a, a, prev_b, b) end
