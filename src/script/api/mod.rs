//! The `bot` global, registered by concern: [`orders`] (buy, sell, cancel, modify, flatten,
//! halt), [`views`] (position, orders, quote, account, now, exchange_time), [`contract`]
//! (contract, round_price), [`bars`] (`bot.bars`), [`timers`] (every, after, at, cancel_timer) and [`log`]. Every argument is checked ([`args`]), so bad input is a Lua error
//! that names the call and the strategy line, never a panic.

mod args;
mod bars;
mod contract;
mod ctx;
mod log;
mod orders;
mod timers;
mod views;

use std::sync::Arc;

use mlua::Lua;

pub use ctx::{Ctx, new_timers};
pub use views::quote_table;

/// Installs the `bot` global, and `ta` (the indicators) beside it.
///
/// # Errors
/// Only if the VM is out of memory.
pub fn register(lua: &Lua, ctx: Arc<Ctx>) -> mlua::Result<()> {
    let bot = lua.create_table()?;
    bot.raw_set("name", ctx.name.as_str())?;
    orders::register(lua, &bot, &ctx)?;
    views::register(lua, &bot, &ctx)?;
    contract::register(lua, &bot, &ctx)?;
    bars::register(lua, &bot, &ctx)?;
    timers::register(lua, &bot, &ctx)?;
    log::register(lua, &bot, &ctx)?;
    lua.globals().raw_set("bot", bot)?;
    crate::script::ta::register(lua)
}

#[cfg(test)]
mod tests;
