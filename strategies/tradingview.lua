-- TradingView webhook router for TradersPost-style alerts. Point the alert at
-- POST /webhook/tradingview with a JSON body such as
--   {"ticker": "{{ticker}}", "action": "buy", "sentiment": "long", "quantity": 1}
-- action: "buy" | "sell" | "exit"; sentiment "flat" (or action "exit") closes the position.

local h = require("helpers")

local M = {
  symbols = { "MNQ", "MES" },
  params = { default_quantity = 1 },
}

---@param req WebhookRequest
function M.on_webhook(req)
  local alert = req.body
  if type(alert) ~= "table" then
    return { ok = false, error = "expected a JSON body" }
  end
  if type(alert.ticker) ~= "string" then
    return { ok = false, error = "ticker is required" }
  end
  local symbol = h.root_of(alert.ticker)
  local action = alert.action
  state.alerts = (state.alerts or 0) + 1

  if action == "exit" or alert.sentiment == "flat" then
    local ok, reason = bot.flatten(symbol)
    return { ok = ok == true, action = "flatten", symbol = symbol, error = reason }
  end

  local qty = h.quantity(alert.quantity, M.params.default_quantity)
  if qty == nil then
    return { ok = false, error = "quantity must be a whole number >= 1" }
  end
  local place
  if action == "buy" then place = bot.buy
  elseif action == "sell" then place = bot.sell
  else return { ok = false, error = "action must be buy, sell or exit" } end

  local handle, reason = place({ symbol = symbol, size = qty, tag = "tv" })
  if not handle then
    return { ok = false, error = reason }
  end
  return { ok = true, id = handle.id, symbol = symbol, side = handle.side, size = qty }
end

return M
