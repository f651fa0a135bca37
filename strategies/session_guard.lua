-- Timer-driven: every 30 seconds, log the position and flatten everything shortly before the
-- CME daily close. Times are UTC (20:55 UTC is 15:55 Chicago in summer; adjust in winter).

local M = {
  symbols = { "MNQ" },
  params = { check_every = 30, flatten_at_utc = { hour = 20, min = 55 } },
}

local function minutes_utc(t)
  local d = os.date("!*t", math.floor(t))
  return d.hour * 60 + d.min
end

local function check()
  local p = bot.position("MNQ")
  bot.log.debug("position", p.size, "open P&L", p.open_pnl)
  local at = M.params.flatten_at_utc
  local now = minutes_utc(bot.now())
  local cutoff = at.hour * 60 + at.min
  local today = os.date("!%Y-%m-%d", math.floor(bot.now()))
  if now >= cutoff and state.flattened_on ~= today then
    local ok, reason = bot.flatten()
    state.flattened_on = today
    bot.log.warn("end of session: flatten", ok and "sent" or ("refused: " .. tostring(reason)))
  end
end

function M.on_start(ctx)
  bot.every(M.params.check_every, check)
  bot.log.info("session guard armed", ctx.reason)
end

return M
