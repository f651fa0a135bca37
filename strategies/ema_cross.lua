-- EMA crossover on 5-minute bars with a bracket sized from the contract's tick value: each
-- trade risks about `risk_usd` dollars at its stop, whatever the contract.

local M = {
  symbols = { "MES" },
  bars = { "5m" },
  params = { fast = 9, slow = 21, stop_ticks = 16, reward = 2, risk_usd = 100, max_size = 3 },
  limits = { max_position = 3 },
}

local p = M.params
local fast, slow = ta.ema(p.fast), ta.ema(p.slow)
local seen -- open time of the newest bar the averages have taken

-- Contracts at the stop for about `risk_usd`: one contract loses stop_ticks × tick_value there.
local function size_for(symbol)
  local c, why = bot.contract(symbol)
  if c == nil then return nil, why end
  return math.max(1, math.min(p.max_size, math.floor(p.risk_usd / (p.stop_ticks * c.tick_value))))
end

---@param b Bar
function M.on_bar(b)
  -- History first (backfilled by the engine, kept over reloads), then this bar.
  for _, old in ipairs(bot.bars(b.symbol, "5m")) do
    if old.time < b.time and (seen == nil or old.time > seen) then
      fast:update(old.close)
      slow:update(old.close)
    end
  end
  local f0, s0 = fast:value(), slow:value()
  local f1, s1 = fast:update(b.close), slow:update(b.close)
  seen = b.time

  local up, down = ta.crossed_above(f0, f1, s0, s1), ta.crossed_below(f0, f1, s0, s1)
  if not (up or down) then return end
  local size, why = size_for(b.symbol)
  if size == nil then
    bot.log.warn("no contract facts yet:", why)
    return
  end
  local pos = bot.position(b.symbol).size
  if (up and pos > 0) or (down and pos < 0) then return end -- already on that side
  if pos ~= 0 then bot.flatten(b.symbol) end
  local order = {
    symbol = b.symbol,
    size = size,
    stop_loss_ticks = p.stop_ticks,
    take_profit_ticks = p.stop_ticks * p.reward,
    tag = "ema_cross",
  }
  local h, reason = (up and bot.buy or bot.sell)(order)
  if h then
    bot.log.info(up and "long" or "short", size, b.symbol, "at the", b.timeframe, "close", b.close)
  else
    bot.log.warn("entry refused:", reason)
  end
end

return M
