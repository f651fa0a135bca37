-- Quote-driven breakout: when the last price leaves the range of the previous `lookback`
-- quotes, enter in that direction with a bracket (stop loss and take profit, in ticks).
-- The engine's risk guard has the last word: a refused order comes back as nil, reason.

local h = require("helpers")

local M = {
  symbols = { "MNQ" },
  params = { size = 1, lookback = 20, stop_ticks = 40, target_ticks = 80, cooldown = 60 },
  limits = { max_position = 2 },
}

local window

function M.on_start(ctx)
  window = h.window(M.params.lookback)
  state.entries = state.entries or 0
  state.last_entry = state.last_entry or 0
  bot.log.info("breakout started", ctx.reason, "entries so far:", state.entries)
end

---@param q Quote
function M.on_quote(q)
  if q.last == nil then return end -- no trade yet this session
  local hi, lo = window:range()
  local ready = window:full()
  window:push(q.last)
  if not ready then return end
  if bot.now() - state.last_entry < M.params.cooldown then return end
  if bot.position(q.symbol).size ~= 0 then return end

  local order = {
    symbol = q.symbol,
    size = M.params.size,
    stop_loss_ticks = M.params.stop_ticks,
    take_profit_ticks = M.params.target_ticks,
    tag = "breakout",
  }
  local handle, reason
  if q.last > hi then
    handle, reason = bot.buy(order)
  elseif q.last < lo then
    handle, reason = bot.sell(order)
  else
    return
  end
  state.last_entry = bot.now()
  if handle then
    state.entries = state.entries + 1
    bot.log.info("entered", handle.side, handle.size, q.symbol, "at ~", q.last, "id", handle.id)
  else
    bot.log.warn("entry refused:", reason)
  end
end

---@param f Fill
function M.on_fill(f)
  bot.log.info("fill", f.side, f.size, f.symbol, "@", f.price)
end

function M.on_stop(reason)
  bot.log.info("breakout stopping:", reason)
end

return M
