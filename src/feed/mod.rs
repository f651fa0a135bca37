//! The ProjectX market and user feeds: hub subscriptions, and the hub events turned — inside each
//! hub's connection task — into the engine's own typed events, on bounded queues with counted
//! overflow policies.
//!
//! - [`market`]: [`MarketFeed`]: quotes merged once into [`crate::market::Quote`], trades and
//!   depth as domain values, stale/resumed reports; queued on a [`MarketQueue`] that conflates
//!   quotes per contract only past its bound.
//! - [`bars`]: the backfill of a bar series from `History/retrieveBars` (the engine keeps it
//!   current from trades, with [`crate::bars`]).
//! - [`events`]: [`MarketEvent`], what the market feed reports.
//! - [`market_data`]: the market hub's wire shapes, their decoders and the one quote merge.
//! - [`queue`]: [`MarketQueue`], the bounded market queue and its overflow policy.
//! - [`stale`]: the stale-quote clock.
//! - [`user`]: [`UserFeed`]: accounts, orders, positions and fills, never dropped (the hub
//!   connection waits for room instead).
//! - [`token`]: [`SessionTokens`], the gateway session as the hubs' token source.
//! - [`record`]: recording what the market feed receives (a tap on its quote path, written on a
//!   thread of its own), and reading recordings back.

pub mod bars;
pub mod events;
pub mod market;
pub mod market_data;
pub mod queue;
pub mod record;
pub mod stale;
pub mod token;
pub mod user;

pub use market::{DEFAULT_QUEUE_BOUND, MarketEvent, MarketEvents, MarketFeed, MarketFeedConfig};
pub use queue::{MarketQueue, QueueCounters};
pub use token::SessionTokens;
pub use user::{DEFAULT_USER_BOUND, UserEvent, UserFeed, UserFeedConfig};

/// A hub connection's state, as the engine and `/status` see it.
pub use crate::signalr::ConnectionState;
