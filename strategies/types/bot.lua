---@meta
-- LuaLS type stubs for moontick strategies. Not loaded by the engine: point your editor's Lua
-- language server at strategies/ (see .luarc.json) and `bot.`, handlers and event fields complete.

---@class Quote
---@field contract string  full contract id, e.g. "CON.F.US.MNQ.Z25"
---@field symbol string    root, e.g. "MNQ"
---@field bid number|nil     nil until the gateway has sent one (never 0)
---@field ask number|nil
---@field last number|nil
---@field volume integer|nil contracts traded in the session
---@field open number|nil
---@field high number|nil
---@field low number|nil
---@field change number|nil  change on the day
---@field time number        seconds since the Unix epoch
--- The quote table is reused for every quote: copy the fields you want to keep. A field the
--- gateway has not sent is nil, never 0.

---@class Trade
---@field contract string
---@field symbol string
---@field price number
---@field size number
---@field side "buy"|"sell"|nil
---@field time number

---@alias Timeframe "1s"|"2s"|"3s"|"4s"|"5s"|"6s"|"10s"|"12s"|"15s"|"20s"|"30s"|"1m"|"2m"|"3m"|"4m"|"5m"|"6m"|"10m"|"12m"|"15m"|"20m"|"30m"|"1h"|"2h"|"3h"|"4h"|"6h"|"8h"|"12h"|"1d"

--- A closed bar, as on_bar receives it. `time` is the bar's open time; minute and hour bars
--- start on the clock, daily bars (and 2h..12h) follow the CME trading day (17:00 Chicago).
---@class Bar
---@field symbol string     as the strategy lists it in symbols (quotes carry the same name)
---@field contract string   full contract id
---@field timeframe Timeframe
---@field time number       open time, seconds since the Unix epoch
---@field open number
---@field high number
---@field low number
---@field close number
---@field volume integer    contracts traded in the bar

--- A bar from bot.bars: the same numbers as Bar, without the names (the caller knows them).
--- Read-only (shared between calls): reading fields and pairs work, assigning one is an error.
---@class HistoryBar
---@field time number
---@field open number
---@field high number
---@field low number
---@field close number
---@field volume integer

---@class DepthLevel
---@field side "buy"|"sell"
---@field price number
---@field size number

---@class Depth
---@field contract string
---@field symbol string
---@field levels DepthLevel[]
---@field time number

---@class OrderEvent
---@field id integer        the id bot.buy/bot.sell returned
---@field contract string
---@field symbol string
---@field side "buy"|"sell"
---@field size integer
---@field filled integer
---@field status string     "pending" | "open" | "filled" | "cancelled" | "rejected" | ...
---@field price number|nil
---@field stop_price number|nil
---@field tag string|nil
---@field reason string|nil   why the gateway rejected it (e.g. "OrderRejected: ..."), when it did
---@field time number

---@class Fill
---@field order_id integer
---@field contract string
---@field symbol string
---@field side "buy"|"sell"
---@field size integer
---@field price number
---@field fee number
---@field time number

---@class PositionEvent
---@field contract string
---@field symbol string
---@field size integer      signed: > 0 long, < 0 short
---@field avg_price number

---@class WebhookRequest
---@field body table|string  decoded JSON, or the raw text when it is not JSON
---@field headers table<string, string>  lower-case names
---@field query table<string, string>

---@class StartContext
---@field reason "start"|"reload"|"restart"

---@class OrderRequest
---@field symbol? string     root or contract id; default: the strategy's first symbol
---@field size integer       positive
---@field type? "market"|"limit"|"stop"|"trailing"|"join_bid"|"join_ask"  default "market"
---@field price? number      required for "limit"; on the tick grid (see bot.round_price)
---@field stop_price? number required for "stop"; on the tick grid
---@field trail_price? number required for "trailing"; on the tick grid
---@field stop_loss_ticks? integer   bracket stop, in ticks from the fill
---@field take_profit_ticks? integer bracket target, in ticks from the fill
---@field tag? string

---@class OrderHandle
---@field id integer
---@field symbol string
---@field side "buy"|"sell"
---@field size integer
---@field type string
---@field tag string|nil

---@class OrderChange
---@field price? number      on the tick grid
---@field stop_price? number on the tick grid
---@field size? integer

---@class Position
---@field size integer
---@field avg_price number
---@field open_pnl number

---@class WorkingOrder
---@field id integer
---@field symbol string
---@field side "buy"|"sell"
---@field size integer
---@field type string
---@field price number|nil
---@field stop_price number|nil
---@field status string   "pending" | "unknown" | "open" | "suspended" | ...
---@field tag string|nil
---@field kind "entry"|"stop_loss"|"take_profit"  a bracket's legs are listed too
---@field parent integer|nil  for a bracket leg: the entry's id

--- The exchange's wall clock (America/Chicago) and the CME Globex session of the equity index
--- futures. Exchange holidays are not known: on one, session still says "open".
---@class ExchangeTime
---@field year integer
---@field month integer
---@field day integer
---@field hour integer
---@field min integer
---@field sec integer
---@field wday integer  1 = Sunday
---@field dst boolean   daylight saving (CDT) in effect
---@field trading_day string  "YYYY-MM-DD": rolls at 17:00; Friday 17:00 to Sunday 17:00 is Monday's
---@field session "open"|"break"|"closed"  open Sun 17:00 to Fri 16:00; break 16:00-17:00 Mon-Thu
---@field minutes_to_close integer|nil  whole minutes left (rounded down) to 16:00 of the trading day: 5 at 15:55:00, 4 at 15:55:30; nil in the break and the weekend

---@alias ChicagoTime ExchangeTime

---@class Contract
---@field id string           the gateway's contract id, e.g. "CON.F.US.MNQ.Z26"
---@field symbol string       as the strategy declared it, e.g. "MNQ"
---@field name string         exchange code, e.g. "MNQZ6"
---@field description string
---@field tick_size number    e.g. 0.25
---@field tick_value number   dollars per tick per contract, e.g. 0.5
---@field point_value number  dollars per point per contract (tick_value / tick_size)

---@class Account
---@field id integer
---@field name string
---@field balance number
---@field can_trade boolean

---@class Strategy
---@field symbols? string[]  roots (front month) or contract ids to receive quotes for
---@field params? table
---@field limits? table<string, number>  may only tighten the global limits
---@field trades? boolean    deliver market trades to on_trade
---@field depth? boolean     deliver depth to on_depth
---@field bars? Timeframe[]|table<string, Timeframe[]>  bars for every symbol ({ "1m", "5m" }) and/or per symbol ({ MNQ = { "1m" } })
---@field bars_history? integer  bars backfilled and kept per series (default 500, at most 20000)
---@field on_start? fun(ctx: StartContext)
---@field on_quote? fun(q: Quote)
---@field on_trade? fun(t: Trade)
---@field on_depth? fun(d: Depth)
---@field on_bar? fun(b: Bar)  every closed bar of a declared series, in order
---@field on_order? fun(o: OrderEvent)
---@field on_fill? fun(f: Fill)
---@field on_position? fun(p: PositionEvent)
---@field on_webhook? fun(req: WebhookRequest): table|nil
---@field on_feed? fun(status: "live"|"stale"|"reconnecting")
---@field on_stop? fun(reason: string)

--- Survives reloads; its JSON-encodable part also survives restarts.
---@type table
state = {}

---@class BotLog
---@field debug fun(...: any)
---@field info fun(...: any)
---@field warn fun(...: any)
---@field error fun(...: any)

---@class Bot
---@field name string  this strategy's name (its file name without .lua)
---@field log BotLog
bot = {}

--- Sends a buy order. Returns the handle, or nil and the reason it was refused.
---@param order OrderRequest
---@return OrderHandle|nil handle
---@return string|nil reason
function bot.buy(order) end

--- Sends a sell order. Returns the handle, or nil and the reason it was refused.
---@param order OrderRequest
---@return OrderHandle|nil handle
---@return string|nil reason
function bot.sell(order) end

---@param id integer|OrderHandle
---@return true|nil ok
---@return string|nil reason
function bot.cancel(id) end

---@param id integer|OrderHandle
---@param change OrderChange
---@return true|nil ok
---@return string|nil reason
function bot.modify(id, change) end

--- Closes this strategy's positions and cancels its working orders and bracket legs (on one
--- symbol, or all).
---@param symbol? string
---@return true|nil ok
---@return string|nil reason
function bot.flatten(symbol) end

--- Closes every position and cancels every working order on the account, whoever placed it.
---@return true|nil ok
---@return string|nil reason
function bot.flatten_all() end

--- The exchange's wall clock (America/Chicago, daylight saving applied) and Globex session at
--- engine time (simulated when the clock is).
---@return ExchangeTime
function bot.exchange_time() end

--- The older name of bot.exchange_time (same table).
---@return ExchangeTime
function bot.chicago_time() end

--- The resolved contract of a symbol this strategy declared; nil and the reason for any other
--- symbol, or before the gateway has answered.
---@param symbol? string default: the strategy's first symbol
---@return Contract|nil contract
---@return string|nil reason
function bot.contract(symbol) end

--- `price` snapped to the nearest tick of `symbol`'s grid (orders off the grid are refused, not
--- snapped). nil and the reason for a symbol bot.contract does not know.
---@param symbol string
---@param price number
---@return number|nil price
---@return string|nil reason
function bot.round_price(symbol, price) end

--- The kill switch: no new orders, working orders cancelled, positions flattened.
---@param reason string
function bot.halt(reason) end

---@param symbol? string default: the strategy's first symbol
---@return Position
function bot.position(symbol) end

---@param symbol? string
---@return WorkingOrder[]
function bot.orders(symbol) end

---@param symbol string
---@return Quote|nil
function bot.quote(symbol) end

---@return Account|nil
function bot.account() end

--- The last `n` closed bars of a declared series, oldest first (fewer while history is still
--- loading; all that are kept when `n` is nil). The list is fresh; the bars in it are
--- read-only tables shared between calls (copy a field to change it).
--- Raises an error for a timeframe or symbol not declared in `bars`.
---@param symbol string
---@param timeframe Timeframe
---@param n? integer
---@return HistoryBar[]
function bot.bars(symbol, timeframe, n) end

--- Engine time in seconds since the Unix epoch (simulated time during replay).
---@return number
function bot.now() end

--- Calls fn every `seconds`; the timer dies with this version of the file.
---@param seconds number
---@param fn fun()
---@return integer timer_id
function bot.every(seconds, fn) end

--- Calls fn once after `seconds`.
---@param seconds number
---@param fn fun()
---@return integer timer_id
function bot.after(seconds, fn) end

--- Calls fn every day when the exchange's wall clock (America/Chicago, daylight saving applied)
--- reads `time`, on the engine clock; weekends included (check bot.exchange_time().session).
--- A time the spring-forward skips fires at 03:00; one the fall-back repeats fires once.
---@param time string "HH:MM" or "HH:MM:SS", e.g. "15:55"
---@param fn fun()
---@return integer timer_id
function bot.at(time, fn) end

---@param timer_id integer
---@return boolean cancelled
function bot.cancel_timer(timer_id) end
