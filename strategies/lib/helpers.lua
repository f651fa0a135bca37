-- Shared helpers for strategies: `local h = require("helpers")`.
-- Modules live in strategies/lib/ and are loaded once per strategy VM.

local M = {}

--- A fixed-size window of numbers that keeps its high and low.
---@class Window
---@field size integer
---@field values number[]
local Window = {}
Window.__index = Window

---@param size integer
---@return Window
function M.window(size)
  return setmetatable({ size = size, values = {} }, Window)
end

---@param x number
function Window:push(x)
  local v = self.values
  v[#v + 1] = x
  if #v > self.size then table.remove(v, 1) end
end

function Window:full() return #self.values >= self.size end

---@return number high, number low
function Window:range()
  local hi, lo = -math.huge, math.huge
  for _, x in ipairs(self.values) do
    if x > hi then hi = x end
    if x < lo then lo = x end
  end
  return hi, lo
end

--- TradingView continuous tickers ("MNQ1!", "CME_MINI:MNQ1!") to a ProjectX root ("MNQ").
---@param ticker string
---@return string
function M.root_of(ticker)
  local t = ticker:gsub("^.*:", "")
  t = t:gsub("%d+!$", "")
  return t:upper()
end

--- A whole number >= 1 from a webhook field (TradingView sends numbers as strings).
---@param v any
---@param default integer
---@return integer|nil
function M.quantity(v, default)
  if v == nil or v == "" then return default end
  local n = math.tointeger(tonumber(v))
  if n == nil or n < 1 then return nil end
  return n
end

return M
