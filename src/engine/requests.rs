//! The engine's answers to `bot.*` calls: orders through the risk guard, cancels, modifies,
//! flatten, and the read-only views (position, orders, quote, account).

use std::sync::Arc;

use super::book::ContractInfo;
use super::broker::{Reply, Request};
use super::core::Core;
use super::gateway_calls as calls;
use crate::risk::{ProposedOrder, RiskApproved};
use crate::script::{
    AccountView, OrderHandle, OrderIntent, OrderView, PositionView, Refusal, Side,
};

impl Core {
    pub(super) fn on_request(&mut self, request: Request) -> Reply {
        match request {
            Request::Submit { strategy, intent } => Reply::Handle(self.submit(&strategy, intent)),
            Request::Cancel { strategy, id } => Reply::Done(self.cancel(&strategy, id)),
            Request::Modify {
                strategy,
                id,
                change,
            } => Reply::Done(self.modify(&strategy, id, change)),
            Request::Flatten { strategy, symbol } => {
                Reply::Done(self.flatten(&strategy, symbol.as_deref()))
            }
            Request::FlattenAll { strategy } => Reply::Done(self.flatten_all(&strategy)),
            Request::Halt { strategy, reason } => {
                self.halt(&format!("{strategy}: {reason}"));
                Reply::Done(Ok(()))
            }
            Request::Position { strategy, symbol } => {
                Reply::Position(self.position_view(&strategy, &symbol))
            }
            Request::Orders { strategy, symbol } => {
                Reply::Orders(self.order_views(&strategy, symbol.as_deref()))
            }
            Request::Quote { symbol } => Reply::Quote(
                self.contract_for(&symbol)
                    .and_then(|c| self.quotes.get(&c.id).cloned()),
            ),
            Request::Account => Reply::Account(Some(AccountView {
                id: i64::from(self.account.id),
                name: self.account.name.clone(),
                balance: self.account.balance,
                can_trade: self.account.can_trade,
            })),
        }
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
        let (side, size) = (intent.side, intent.size);
        let approved = self
            .check_risk(strategy, &contract.id, side, size, intent)
            .inspect_err(|e| {
                self.metrics.order_refused(strategy);
                tracing::warn!(strategy, "order refused: {e}");
            })?;
        Ok(self.send_approved(approved, contract))
    }

    /// Puts an order (or the growth of one) to the risk guard, with the strategy's own limits
    /// and what the book holds and has working on the contract.
    fn check_risk<T>(
        &mut self,
        strategy: &str,
        contract_id: &str,
        side: Side,
        size: i64,
        payload: T,
    ) -> Result<RiskApproved<T>, Refusal> {
        let limits = self
            .host
            .as_ref()
            .and_then(|h| h.limits(strategy))
            .unwrap_or_default();
        let exposure = self.book.exposure(strategy, contract_id);
        let proposed = ProposedOrder {
            strategy: strategy.to_string(),
            contract_id: contract_id.to_string(),
            side: if side == Side::Buy { 1 } else { -1 },
            size: u32::try_from(size).unwrap_or(0),
            payload,
        };
        let open_pnl = self.open_pnl();
        self.guard
            .check(
                proposed,
                limits,
                exposure,
                open_pnl,
                tokio::time::Instant::now(),
            )
            .map_err(|e| Refusal::new(e.reason))
    }

    pub(super) fn send_approved(
        &mut self,
        approved: RiskApproved<OrderIntent>,
        contract: Arc<ContractInfo>,
    ) -> OrderHandle {
        let order = approved.into_inner();
        let local = self.book.insert(&order.strategy, contract, order.payload);
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
        self.metrics.order_sent(&local.strategy);
        let request = calls::place_request(self.account.id, local);
        let local_id = local.local_id;
        calls::spawn_place(self.client.clone(), self.tx.clone(), local_id, request);
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
            self.client.clone(),
            self.tx.clone(),
            self.account.id,
            broker_id,
        );
        Ok(())
    }

    pub(super) fn modify(
        &mut self,
        strategy: &str,
        id: u64,
        change: crate::script::OrderChange,
    ) -> Result<(), Refusal> {
        let broker_id = self.owned_broker_id(strategy, id)?;
        if let Some(new_size) = change.size {
            let o = self.book.get(id).expect("owned order exists");
            let growth = new_size - o.intent.size;
            if growth > 0 {
                let (contract, side) = (o.contract.id.clone(), o.intent.side);
                self.check_risk(strategy, &contract, side, growth, ())?;
            }
            if let Some(o) = self.book.get_mut(id) {
                o.intent.size = new_size;
            }
        }
        if let Some(o) = self.book.get_mut(id) {
            o.intent.price = change.price.or(o.intent.price);
            o.intent.stop_price = change.stop_price.or(o.intent.stop_price);
        }
        calls::spawn_modify(
            self.client.clone(),
            self.tx.clone(),
            self.account.id,
            broker_id,
            change,
        );
        Ok(())
    }

    pub(super) fn position_view(&self, strategy: &str, symbol: &str) -> PositionView {
        let Some(c) = self.contract_for(symbol) else {
            return PositionView::default();
        };
        let p = self.book.strategy_position(strategy, &c.id);
        let open_pnl = self.quotes.get(&c.id).map_or(0.0, |q| {
            (q.last - p.avg_price) * f64::from(p.size) * c.point_value()
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
