//! moontick: a trading engine for the ProjectX Gateway API, with strategies written in Lua.
//!
//! # Layout
//!
//! - [`backoff`]: retry delays with a cap and jitter (hub reconnects, lookups of unknown orders).
//! - [`backtest`]: `moontick backtest`: strategies through the same engine core on a simulated
//!   clock over a recording, filled by the simulator's matching engine; the report.
//! - [`bars`]: bar timeframes in exchange time, the aggregator (trades → bars, clock-free) and
//!   the store strategies read `bot.bars` from.
//! - [`cme`]: the CME Globex calendar in exchange time: the trading day rolling at 17:00 Chicago,
//!   the weekly session with its daily break, daily wall-clock times (no exchange holidays).
//! - [`commands`]: the one-shot CLI commands (`sim`, `check`, `token`, `quote`).
//! - [`config`]: typed configuration from the environment and `.env`.
//! - [`engine`]: the engine loop: quotes → strategies → risk guard → orders, reconciliation;
//!   bar series kept current from trades (`on_bar`); its events ([`engine::EngineEvent`]) on a broadcast that never blocks it.
//! - [`feed`]: the ProjectX market and user feeds: hub events → merged quotes and typed
//!   order/fill/position events, on bounded queues to the engine; [`feed::record`] records the
//!   market data to `RECORD_DIR` on a thread of its own and reads recordings back; the backfill of bar series.
//! - [`gateway`]: ProjectX wire model (REST payloads, hub method and event names), endpoints,
//!   session (token refresh by a `Clock`), REST client with its request budgets, and symbol
//!   resolution.
//! - [`http`]: the HTTP server: webhook relay into strategies, health, readiness, status,
//!   metrics, the operator's actions (`/halt`, `/resume`, `/flatten`, pausing a strategy), the
//!   dashboard (`/`, its assets, `/events`) behind a login, the journal download; graceful shutdown.
//! - [`journal`]: the trade journal: every fill appended to a CSV file per CME trading day,
//!   in columns trade-journal tools import; read back by `GET /journal`.
//! - [`logging`]: log output, pretty or JSON.
//! - [`market`]: the market vocabulary every part shares: `Side`, `Quote`, trades, depth.
//! - [`money`]: numbers a trader reads: money in cents, prices on the contract's tick grid.
//! - [`notify`]: notifications (Discord, Slack, Telegram, any JSON webhook) of the engine's
//!   events, on bounded queues with retries that never hold up the engine.
//! - [`metrics`]: the Prometheus counters and histograms every module increments.
//! - [`rate`]: the sliding-window rate limit the risk guard and the REST budget share.
//! - [`replay`]: `moontick replay`: a backtest paced in scaled real time with the HTTP server
//!   up (status page, dashboard, `/status`), marked as a replay everywhere; never a gateway.
//! - [`risk`]: the risk guard: limits, order rate, daily loss, kill switch; `RiskApproved` is
//!   the only thing the gateway client will place or modify.
//! - [`run`]: `moontick run` as [`run::run`]`(config, listener, shutdown)`: session or
//!   simulator, engine, HTTP server, shutdown; `run::state_dir` locks `STATE_DIR` and keeps state per gateway and
//!   account; [`run::record`] is `moontick record`: the same connection and recorder, no engine.
//! - [`script`]: the Lua strategy host: sandboxed VM per strategy, the `bot` API, hot reload,
//!   state, and `moontick check`.
//! - [`secret`]: the `Secret` string that never prints itself.
//! - [`signalr`]: the SignalR JSON hub protocol: codec, connection task (reconnecting with
//!   [`backoff`]), state, token source. Knows nothing of ProjectX.
//! - [`sim`]: the built-in ProjectX gateway simulator (REST and both SignalR hubs) and its
//!   matching engine.
//! - [`tls`]: the process-wide TLS crypto provider every client installs before it is built.

pub mod backoff;
pub mod backtest;
pub mod bars;
pub mod cme;
pub mod commands;
pub mod config;
pub mod engine;
pub mod feed;
pub mod gateway;
pub mod http;
pub mod journal;
pub mod logging;
pub mod market;
pub mod metrics;
pub mod money;
pub mod notify;
pub mod rate;
pub mod replay;
pub mod risk;
pub mod run;
pub mod script;
pub mod secret;
pub mod signalr;
pub mod sim;
pub mod tls;
