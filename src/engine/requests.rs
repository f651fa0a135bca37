//! The engine's answers to `bot.*` calls: orders through the risk guard, cancels, modifies,
//! flatten, and the read-only views (position, orders, quote, account).

use std::sync::Arc;

use super::book::ContractInfo;
use super::core::Core;
use super::gateway_calls as calls;

use crate::gateway::requests::ModifyOrderRequest;
use crate::risk::{Exposure, ProposedOrder, RiskApproved, StrategyLimits};
use crate::script::{
    AccountView, BotCall, BotReply, ContractView, OrderHandle, OrderIntent, OrderView,
    PositionView, Refusal, Side,
};

impl Core {
    pub(super) fn on_bot_call(&mut self, strategy: &str, call: BotCall) -> BotReply {
        let done = |r: Result<(), Refusal>| r.map_or_else(BotReply::Refused, |()| BotReply::Done);
        match call {
            BotCall::Submit(intent) => self
                .submit(strategy, intent)
                .map_or_else(BotReply::Refused, BotReply::Placed),
            BotCall::Cancel { id } => done(self.cancel(strategy, id)),
            BotCall::Modify { id, change } => done(self.modify(strategy, id, change)),
            BotCall::Flatten { symbol } => done(self.flatten(strategy, symbol.as_deref())),
            BotCall::FlattenAll => done(self.flatten_all(strategy)),
            BotCall::Halt { reason } => {
                self.halt(&format!("{strategy}: {reason}"));
                BotReply::Done
            }
            BotCall::Position { symbol } => {
                BotReply::Position(self.position_view(strategy, &symbol))
            }
            BotCall::Orders { symbol } => {
                BotReply::Orders(self.order_views(strategy, symbol.as_deref()))
            }
            BotCall::Quote { symbol } => BotReply::Quote(
                self.contract_for(&symbol)
                    .and_then(|c| self.quotes.get(&c.id).cloned()),
            ),
            BotCall::Account => BotReply::Account(Some(AccountView {
                id: i64::from(self.account.id),
                name: self.account.name.clone(),
                balance: self.account.balance,
                can_trade: self.account.can_trade,
            })),
            BotCall::Contract { symbol } => self
                .contract_view(strategy, &symbol)
                .map_or_else(BotReply::Refused, BotReply::Contract),
        }
    }

    /// `bot.contract`: the resolved facts of a symbol the strategy declared.
    fn contract_view(&self, strategy: &str, symbol: &str) -> Result<ContractView, Refusal> {
        let declared = self
            .host
            .as_ref()
            .is_some_and(|h| h.declares(strategy, symbol));
        if !declared {
            return Err(Refusal::new(format!(
                "{symbol} is not among this strategy's symbols (declare it in `symbols`)"
            )));
        }
        let c = self.contract_for(symbol).ok_or_else(|| {
            Refusal::new(format!(
                "{symbol} is not resolved yet (the gateway has not answered); try again shortly"
            ))
        })?;
        Ok(ContractView {
            id: c.id.to_string(),
            symbol: symbol.to_string(),
            name: c.name.to_string(),
            description: c.description.to_string(),
            tick_size: c.tick_size,
            tick_value: c.tick_value,
        })
    }

    pub(super) fn submit(
        &mut self,
        strategy: &str,
        intent: OrderIntent,
    ) -> Result<OrderHandle, Refusal> {
        let refused = |reason: String| {
            tracing::warn!(
                strategy,
                "order refused: {} {} {}: {reason}",
                intent.side.as_str(),
                intent.size,
                intent.symbol
            );
            Refusal::new(reason)
        };
        let Some(contract) = self.contract_for(&intent.symbol) else {
            self.metrics.order_refused(strategy);
            return Err(refused(format!(
                "unknown symbol {} (list it in the strategy's `symbols`)",
                intent.symbol
            )));
        };
        // Refused, not snapped: a price the strategy did not write is not one it decided on.
        let prices = [
            ("price", intent.price),
            ("stop_price", intent.stop_price),
            ("trail_price", intent.trail_price),
        ];
        if let Err(reason) = on_grid(&contract, &prices) {
            self.metrics.order_refused(strategy);
            return Err(refused(reason));
        }
        let (side, size) = (intent.side, u32::try_from(intent.size).unwrap_or(0));
        let proposed = self.proposed(strategy, &contract.id, side, size, intent);
        let (limits, exposure, open_pnl) = self.risk_inputs(strategy, &contract.id);
        let approved = self
            .guard
            .check(proposed, limits, exposure, open_pnl, self.now_instant())
            .map_err(|e| {
                self.metrics.order_refused(strategy);
                tracing::warn!(strategy, "order refused: {e}");
                Refusal::new(e.to_string())
            })?;
        Ok(self.send_approved(approved, contract))
    }

    fn proposed<T>(
        &self,
        strategy: &str,
        contract_id: &str,
        side: Side,
        size: u32,
        payload: T,
    ) -> ProposedOrder<T> {
        ProposedOrder {
            strategy: strategy.to_string(),
            contract_id: contract_id.to_string(),
            side,
            size,
            payload,
        }
    }

    /// What the guard weighs an order (or the growth of one) against: the strategy's own
    /// limits, what the book holds and has working on the contract, and the open P&L.
    fn risk_inputs(&self, strategy: &str, contract_id: &str) -> (StrategyLimits, Exposure, f64) {
        let limits = self
            .host
            .as_ref()
            .and_then(|h| h.limits(strategy))
            .unwrap_or_default();
        let exposure = self.book.exposure(strategy, contract_id);
        (limits, exposure, self.open_pnl())
    }

    /// Books an approved order and sends it: the approval travels with the request to the
    /// gateway client, which places nothing else.
    pub(super) fn send_approved(
        &mut self,
        approved: RiskApproved<OrderIntent>,
        contract: Arc<ContractInfo>,
    ) -> OrderHandle {
        let strategy = approved.order().strategy.clone();
        let account_id = self.account.id;
        let book = &mut self.book;
        let mut local_id = 0;
        let approved = approved.map(|intent| {
            let local = book.insert(&strategy, contract, intent);
            local_id = local.local_id;
            tracing::info!(
                strategy = %local.strategy,
                "order {} {}: sending {} {} {} {}",
                local.local_id,
                local.custom_tag,
                local.intent.side.as_str(),
                local.intent.size,
                local.contract.symbol,
                local.intent.order_type.as_str()
            );
            calls::order_terms(account_id, local)
        });
        self.metrics.order_sent(&strategy);
        calls::spawn_place(self.exchange.clone(), self.tx.clone(), local_id, approved);
        OrderHandle { id: local_id }
    }

    pub(super) fn owned_broker_id(&self, strategy: &str, id: u64) -> Result<i64, Refusal> {
        let o = self
            .book
            .get(id)
            .filter(|o| o.strategy == strategy)
            .ok_or_else(|| Refusal::new(format!("no order {id} of this strategy")))?;
        if o.state.is_terminal() {
            return Err(Refusal::new(format!("order {id} is {}", o.state.label())));
        }
        o.broker_id.ok_or_else(|| {
            Refusal::new(format!(
                "order {id} is still being placed; try again once it is open"
            ))
        })
    }

    pub(super) fn cancel(&mut self, strategy: &str, id: u64) -> Result<(), Refusal> {
        // A cancel right after `bot.buy` is normal: it waits for the gateway's id rather than
        // being refused (a script that ignores the refusal would leave the order working).
        if let Some(o) = self.book.get_mut(id).filter(|o| o.strategy == strategy)
            && o.broker_id.is_none()
            && !o.state.is_terminal()
        {
            o.cancel_pending = true;
            return Ok(());
        }
        let broker_id = self.owned_broker_id(strategy, id)?;
        calls::spawn_cancel(
            self.exchange.clone(),
            self.tx.clone(),
            self.account.id,
            broker_id,
        );
        Ok(())
    }

    /// Changes a working order. Every change goes through the guard (a bigger size is checked
    /// like a new order of the growth), and only its approval reaches the gateway.
    pub(super) fn modify(
        &mut self,
        strategy: &str,
        id: u64,
        change: crate::script::OrderChange,
    ) -> Result<(), Refusal> {
        let broker_id = self.owned_broker_id(strategy, id)?;
        let o = self.book.get(id).expect("owned order exists");
        let (contract_id, side) = (o.contract.id.clone(), o.intent.side);
        let prices = [("price", change.price), ("stop_price", change.stop_price)];
        on_grid(&o.contract, &prices).map_err(|reason| {
            tracing::warn!(strategy, "modify of order {id} refused: {reason}");
            Refusal::new(reason)
        })?;
        let growth = change.size.map_or(0, |new| new - o.intent.size).max(0);
        let request = ModifyOrderRequest {
            account_id: self.account.id,
            order_id: broker_id,
            size: change.size.map(|s| i32::try_from(s).unwrap_or(i32::MAX)),
            limit_price: change.price,
            stop_price: change.stop_price,
            trail_price: None,
        };
        let growth = u32::try_from(growth).unwrap_or(u32::MAX);
        let proposed = self.proposed(strategy, &contract_id, side, growth, request);
        let (limits, exposure, open_pnl) = self.risk_inputs(strategy, &contract_id);
        let approved = self
            .guard
            .check_modify(proposed, limits, exposure, open_pnl, self.now_instant())
            .map_err(|e| {
                tracing::warn!(strategy, "modify of order {id} refused: {e}");
                Refusal::new(e.to_string())
            })?;
        if let Some(o) = self.book.get_mut(id) {
            o.intent.size = change.size.unwrap_or(o.intent.size);
            o.intent.price = change.price.or(o.intent.price);
            o.intent.stop_price = change.stop_price.or(o.intent.stop_price);
        }
        calls::spawn_modify(self.exchange.clone(), self.tx.clone(), approved);
        Ok(())
    }

    pub(super) fn position_view(&self, strategy: &str, symbol: &str) -> PositionView {
        let Some(c) = self.contract_for(symbol) else {
            return PositionView::default();
        };
        let p = self.book.strategy_position(strategy, &c.id);
        let open_pnl = self
            .quotes
            .get(&c.id)
            .and_then(|q| q.mark())
            .map_or(0.0, |mark| {
                (mark - p.avg_price) * f64::from(p.size) * c.point_value()
            });
        PositionView {
            size: i64::from(p.size),
            avg_price: p.avg_price,
            open_pnl: if p.size == 0 { 0.0 } else { open_pnl },
        }
    }

    /// The strategy's working orders: entries, then their working bracket legs.
    pub(super) fn order_views(&self, strategy: &str, symbol: Option<&str>) -> Vec<OrderView> {
        let contract = symbol
            .and_then(|s| self.contract_for(s))
            .map(|c| c.id.clone());
        let mut views: Vec<OrderView> = self
            .book
            .working_for(strategy, contract.as_deref())
            .into_iter()
            .filter_map(|id| self.book.get(id))
            .map(|o| OrderView {
                id: o.local_id,
                symbol: o.contract.symbol.to_string(),
                side: o.intent.side,
                size: o.intent.size,
                order_type: o.intent.order_type,
                price: o.intent.price,
                stop_price: o.intent.stop_price,
                status: o.state.label().to_string(),
                tag: o.intent.tag.clone(),
                kind: "entry",
                parent: None,
            })
            .collect();
        views.extend(self.leg_views(strategy, contract.as_deref()));
        views
    }
}

/// Every given price on the contract's tick grid, or why not (naming the field, the price, the
/// grid and the way out).
fn on_grid(contract: &ContractInfo, prices: &[(&str, Option<f64>)]) -> Result<(), String> {
    for &(field, price) in prices {
        if let Some(p) = price
            && !crate::money::is_on_grid(p, contract.tick_size)
        {
            return Err(format!(
                "{field} {p} is not on {}'s {} tick grid; use bot.round_price",
                contract.symbol, contract.tick_size
            ));
        }
    }
    Ok(())
}
