-- Flattens the account shortly before the CME daily close: at 15:55 exchange time
-- (America/Chicago, daylight saving followed by the engine) every trading day, it closes every
-- position and cancels every working order on the account, whoever placed them.

local M = {
  symbols = { "MNQ" },
  params = { flatten_at = "15:55" },
}

local function flatten()
  local t = bot.exchange_time()
  -- bot.at fires every day; the weekend has nothing to flatten. (Holidays are not known to the
  -- engine: on one, this still fires and finds nothing to do.)
  if t.session ~= "open" or state.flattened_for == t.trading_day then
    return
  end
  local ok, reason = bot.flatten_all()
  state.flattened_for = t.trading_day
  bot.log.warn("end of session", t.trading_day, t.minutes_to_close, "min to close: flatten_all",
    ok and "sent" or ("refused: " .. tostring(reason)))
end

function M.on_start(ctx)
  bot.at(M.params.flatten_at, flatten)
  local t = bot.exchange_time()
  bot.log.info("session guard armed for", M.params.flatten_at, "Chicago;", ctx.reason, "; now",
    t.session, t.trading_day)
end

return M
