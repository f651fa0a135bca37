-- Timer-driven: every 30 seconds, log the position and, shortly before the CME daily close,
-- close every position and cancel every working order on the account (whoever placed them).
-- The cutoff is exchange time (America/Chicago), so it follows daylight saving by itself.

local M = {
  symbols = { "MNQ" },
  params = { check_every = 30, flatten_at = { hour = 15, min = 55 } },
}

local function check()
  local p = bot.position("MNQ")
  bot.log.debug("position", p.size, "open P&L", p.open_pnl)
  local t = bot.chicago_time()
  local at = M.params.flatten_at
  local today = string.format("%04d-%02d-%02d", t.year, t.month, t.day)
  -- CME futures trade Sunday evening to Friday; the daily close is on weekdays only.
  local weekday = t.wday >= 2 and t.wday <= 6
  local past_cutoff = t.hour * 60 + t.min >= at.hour * 60 + at.min
  if weekday and past_cutoff and t.hour < 17 and state.flattened_on ~= today then
    local ok, reason = bot.flatten_all()
    state.flattened_on = today
    bot.log.warn("end of session: flatten_all", ok and "sent" or ("refused: " .. tostring(reason)))
  end
end

function M.on_start(ctx)
  bot.every(M.params.check_every, check)
  bot.log.info("session guard armed", ctx.reason)
end

return M
