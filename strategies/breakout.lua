-- Breakout on 1-minute bars: when a bar closes above the highest high (or below the lowest low)
-- of the `lookback` bars before it, enter in that direction with a bracket whose stop sits
-- `atr_mult` ATRs away and whose target is `reward` times the stop.
-- The engine's risk guard has the last word: a refused order comes back as nil, reason.

local M = {
  symbols = { "MNQ" },
  bars = { "1m" },
  params = { size = 1, lookback = 20, atr_len = 14, atr_mult = 2, reward = 2 },
  limits = { max_position = 2 },
}

local p = M.params
local hi, lo, atr = ta.highest(p.lookback), ta.lowest(p.lookback), ta.atr(p.atr_len)
local seen -- open time of the newest bar the indicators have taken

local function update(b)
  hi:update(b.high)
  lo:update(b.low)
  atr:update(b.high, b.low, b.close)
  seen = b.time
end

-- The indicators start from the bars the engine keeps: history backfilled from the gateway
-- (it may still be loading when the file starts) and kept over reloads, so a reload starts warm.
local function catch_up(symbol, before)
  for _, b in ipairs(bot.bars(symbol, "1m")) do
    if b.time < before and (seen == nil or b.time > seen) then
      update(b)
    end
  end
end

function M.on_start(ctx)
  state.entries = state.entries or 0
  bot.log.info("breakout started", ctx.reason, "entries so far:", state.entries)
end

---@param b Bar
function M.on_bar(b)
  catch_up(b.symbol, b.time)
  local prev_hi, prev_lo = hi:value(), lo:value() -- the channel before this bar
  update(b)
  local range = atr:value()
  if prev_hi == nil or range == nil then return end -- still warming up
  if bot.position(b.symbol).size ~= 0 then return end
  local contract = bot.contract(b.symbol)
  if contract == nil then return end

  local stop_ticks = math.max(1, math.ceil(range * p.atr_mult / contract.tick_size))
  local order = {
    symbol = b.symbol,
    size = p.size,
    stop_loss_ticks = stop_ticks,
    take_profit_ticks = stop_ticks * p.reward,
    tag = "breakout",
  }
  local handle, reason
  if b.close > prev_hi then
    handle, reason = bot.buy(order)
  elseif b.close < prev_lo then
    handle, reason = bot.sell(order)
  else
    return
  end
  if handle then
    state.entries = state.entries + 1
    bot.log.info("entered", handle.side, handle.size, b.symbol, "on the", b.timeframe, "close",
      b.close, "stop", stop_ticks, "ticks")
  else
    bot.log.warn("entry refused:", reason)
  end
end

---@param f Fill
function M.on_fill(f)
  bot.log.info("fill", f.side, f.size, f.symbol, "@", f.price)
end

return M
