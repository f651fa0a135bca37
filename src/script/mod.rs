//! The Lua strategy host: a sandboxed VM per strategy file, the `bot` API, delivery of engine
//! events, hot reload with state carried over, and `moontick check`.
//!
//! The engine drives it through [`Host`]: [`Host::start`] loads every strategy in the
//! directory, [`Host::watch`] turns file saves into reloads, [`Host::dispatch`] routes market
//! events, [`Host::send`] delivers one strategy's orders and fills, [`Host::webhook`] runs
//! `on_webhook`. Every `bot.*` call reaches the engine as one [`BotCall`], answered by a
//! [`BotReply`] through the [`Broker`] the host was started with. A watchdog marks a strategy
//! whose callback overruns `stuck`; a panic in its thread marks it `crashed` ([`RunState`]).

mod api;
mod bars_decl;
pub mod broker;
pub mod check;
pub mod events;
mod exchange_time;
mod host;
mod mailbox;
mod runner;
pub mod sandbox;
mod spec;
mod state;
mod status;
pub mod ta;
mod tables;
mod version;
mod watch;
mod watchdog;

pub use broker::{
    AccountView, BotCall, BotReply, Broker, Clock, ContractView, ManualClock, MemoryBroker,
    OrderChange, OrderHandle, OrderIntent, OrderType, OrderView, PositionView, Refusal,
    SystemClock,
};
pub use events::{
    Depth, DepthLevel, Event, FeedStatus, Fill, OrderEvent, PositionEvent, Quote, Side, Trade,
    WebhookBody, WebhookOutcome, WebhookReply, WebhookRequest,
};
pub use host::{Host, HostConfig, HostError};
pub use sandbox::Limits;
pub use status::{RunState, Stall, StrategyStatus};
