//! Closing out: `bot.flatten` and `bot.flatten_all`, bracket legs cancelled with the position
//! they protect (flatten, a reversal, the kill switch, a removed strategy), and a leg that fills
//! after its position was closed, which is closed at once and reported.

use std::sync::Arc;

use super::book::{AttributedFill, ContractInfo, OrderState};
use super::core::Core;
use super::gateway_calls as calls;
use crate::risk::ProposedOrder;
use crate::script::{OrderIntent, OrderType, OrderView, Refusal, Side};

/// Who owns the market orders `bot.flatten_all` sends for positions no strategy holds (placed by
/// hand, or by an earlier run): not a strategy, so no script is told about them.
const ACCOUNT_OWNER: &str = "(account)";

impl Core {
    /// Cancels the strategy's working orders and bracket legs and closes its own position (on
    /// one symbol or all) with market orders, which the guard lets through even when halted.
    pub(super) fn flatten(&mut self, strategy: &str, symbol: Option<&str>) -> Result<(), Refusal> {
        let contracts: Vec<Arc<ContractInfo>> = match symbol {
            Some(s) => vec![
                self.contract_for(s)
                    .ok_or_else(|| Refusal::new(format!("unknown symbol {s}")))?,
            ],
            None => {
                let mut ids = self.book.strategy_contracts(strategy);
                ids.extend(
                    self.book
                        .working_for(strategy, None)
                        .into_iter()
                        .filter_map(|id| Some(self.book.get(id)?.contract.id.clone())),
                );
                ids.extend(
                    self.book
                        .legs()
                        .filter(|(o, _, l)| o.strategy == strategy && l.is_working())
                        .map(|(o, _, _)| o.contract.id.clone()),
                );
                ids.sort();
                ids.dedup();
                ids.iter()
                    .filter_map(|id| self.contracts.get(id).cloned())
                    .collect()
            }
        };
        for contract in contracts {
            for id in self.book.working_for(strategy, Some(&contract.id)) {
                match self.book.get_mut(id) {
                    Some(o) if o.broker_id.is_none() => o.cancel_pending = true,
                    Some(o) => {
                        let broker_id = o.broker_id.unwrap_or_default();
                        self.send_cancel(broker_id);
                    }
                    None => {}
                }
            }
            self.book.mark_legs_unwanted(strategy, &contract.id);
            self.cancel_legs(Some(strategy), Some(&contract.id), None);
            self.close_strategy_position(strategy, &contract)?;
        }
        Ok(())
    }

    /// Closes every position and cancels every working order on the account: each strategy's
    /// position with its own market order (so every fill is still attributed), then what no
    /// strategy holds.
    pub(super) fn flatten_all(&mut self, caller: &str) -> Result<(), Refusal> {
        tracing::warn!(
            strategy = caller,
            "flatten_all: cancelling every working order and closing every position on the account"
        );
        let mut cancels = self.book.working_broker_ids();
        cancels.extend(self.book.take_legs_to_cancel(None, None, None));
        cancels.sort_unstable();
        cancels.dedup();
        for id in cancels {
            self.send_cancel(id);
        }
        let in_flight: Vec<u64> = self
            .book
            .orders()
            .filter(|o| o.broker_id.is_none() && !o.state.is_terminal())
            .map(|o| o.local_id)
            .collect();
        for id in in_flight {
            if let Some(o) = self.book.get_mut(id) {
                o.cancel_pending = true;
            }
        }
        let mut first_refusal = None;
        for strategy in self.book.strategies() {
            for contract_id in self.book.strategy_contracts(&strategy) {
                self.book.mark_legs_unwanted(&strategy, &contract_id);
                let Some(contract) = self.contracts.get(&contract_id).cloned() else {
                    continue;
                };
                if let Err(e) = self.close_strategy_position(&strategy, &contract) {
                    first_refusal.get_or_insert(e);
                }
            }
        }
        self.close_unowned_positions();
        first_refusal.map_or(Ok(()), Err)
    }

    /// Positions (or parts of them) that no strategy's fills explain: closed with a market order
    /// of their own. Only the part that is on the same side as the account's position is closed,
    /// so a position update that lags a strategy's fill never makes it open a new one.
    fn close_unowned_positions(&mut self) {
        let held: Vec<(String, i32)> = self
            .book
            .positions()
            .map(|p| (p.contract_id.clone(), p.net_size()))
            .collect();
        for (contract_id, account) in held {
            let owned = self.held_by_strategies(&contract_id);
            let rest = account - owned;
            if rest == 0 || rest.signum() != account.signum() || rest.abs() > account.abs() {
                continue;
            }
            match self.contracts.get(contract_id.as_str()).cloned() {
                Some(contract) => {
                    if let Err(e) = self.close_strategy_position(ACCOUNT_OWNER, &contract) {
                        tracing::error!("flatten_all: closing {contract_id}: {e}");
                    }
                }
                None if owned == 0 => calls::spawn_close(
                    self.exchange.clone(),
                    self.tx.clone(),
                    self.account.id,
                    contract_id,
                ),
                None => tracing::error!(
                    "flatten_all: {rest:+} of {contract_id} is held by no strategy and the contract is unknown; close it by hand"
                ),
            }
        }
    }

    /// Closes the account's whole position on a contract with the gateway's close-position
    /// call (the kill switch: one call, whatever the strategies think they hold). Its fills
    /// belong to no order of ours; they are shared out to the strategies holding the contract
    /// ([`on_close_fill`](Self::on_close_fill)).
    pub(super) fn close_account_position(&mut self, contract_id: String) {
        if !self.book.holders(&contract_id).is_empty() {
            self.closing.insert(contract_id.as_str().into());
        }
        calls::spawn_close(
            self.exchange.clone(),
            self.tx.clone(),
            self.account.id,
            contract_id,
        );
    }

    /// A fill of the close-position call: each holding strategy's share reduces its own
    /// position and books its part of the realised P&L, and the strategy hears it as an
    /// `on_fill` with `order_id` 0 (no order of its own made it). Its `on_position` follows
    /// from the account's position update, as for any fill.
    pub(super) fn on_close_fill(&mut self, trade: &crate::gateway::wire::Trade) {
        let Some(contract) = self.contracts.get(trade.contract_id.as_str()).cloned() else {
            return;
        };
        for share in self.book.share_close(trade, &contract) {
            tracing::warn!(
                strategy = %share.strategy,
                "position {:+} → {:+} on {}: closed by the account close (kill switch)",
                share.before,
                share.after,
                contract.symbol
            );
            self.day.attributed_late(&share.trade, &share.strategy);
            self.emit_fill(&share);
            self.after_fill(&share);
        }
        if self.book.holders(&contract.id).is_empty() {
            self.closing.remove(&contract.id);
        }
    }

    /// Sends the market order that closes what `owner` holds on `contract` (for
    /// [`ACCOUNT_OWNER`]: the account's position minus every strategy's).
    fn close_strategy_position(
        &mut self,
        owner: &str,
        contract: &Arc<ContractInfo>,
    ) -> Result<(), Refusal> {
        let held = if owner == ACCOUNT_OWNER {
            self.book.position(&contract.id).0 - self.held_by_strategies(&contract.id)
        } else {
            self.book.strategy_position(owner, &contract.id).size
        };
        if held == 0 {
            return Ok(());
        }
        let intent = OrderIntent {
            symbol: contract.symbol.to_string(),
            side: if held > 0 { Side::Sell } else { Side::Buy },
            size: i64::from(held.abs()),
            order_type: OrderType::Market,
            price: None,
            stop_price: None,
            trail_price: None,
            stop_loss_ticks: None,
            take_profit_ticks: None,
            tag: Some("flatten".into()),
        };
        let proposed = ProposedOrder {
            strategy: owner.to_string(),
            contract_id: contract.id.to_string(),
            side: intent.side,
            size: held.unsigned_abs(),
            payload: intent,
        };
        let approved = self
            .guard
            .check_exit(proposed, held)
            .map_err(|e| Refusal::new(e.to_string()))?;
        self.send_approved(approved, Arc::clone(contract));
        Ok(())
    }

    /// What the strategies' own fills say they hold on a contract (the account's earlier
    /// closes of unowned positions not counted: what they closed is gone from the account too).
    fn held_by_strategies(&self, contract_id: &str) -> i32 {
        self.book
            .strategies()
            .iter()
            .filter(|s| *s != ACCOUNT_OWNER)
            .map(|s| self.book.strategy_position(s, contract_id).size)
            .sum()
    }

    pub(super) fn send_cancel(&self, broker_id: i64) {
        calls::spawn_cancel(
            self.exchange.clone(),
            self.tx.clone(),
            self.account.id,
            broker_id,
        );
    }

    /// Cancels working legs (of one strategy and contract, or all), except those of `keep`.
    pub(super) fn cancel_legs(
        &mut self,
        strategy: Option<&str>,
        contract: Option<&str>,
        keep: Option<u64>,
    ) {
        for id in self.book.take_legs_to_cancel(strategy, contract, keep) {
            tracing::info!(
                strategy = strategy.unwrap_or("*"),
                "cancelling bracket leg {id}: its position is closed"
            );
            self.send_cancel(id);
        }
    }

    /// A leg reported working for an entry whose legs are no longer wanted (its position was
    /// flattened, the kill switch fired) is cancelled on sight.
    pub(super) fn on_leg_update(&mut self, parent: u64) {
        let Some(o) = self.book.get(parent) else {
            return;
        };
        if o.legs_unwanted || self.guard.halted().is_some() {
            for id in self.book.take_legs_of(parent) {
                tracing::info!("cancelling bracket leg {id} of order {parent}: not wanted");
                self.send_cancel(id);
            }
        }
    }

    /// After a fill: a position that went flat no longer needs its legs; one that flipped
    /// needs none of the legs placed for the old side; a leg that opened a position is closed.
    pub(super) fn after_fill(&mut self, fill: &AttributedFill) {
        let (strategy, contract) = (fill.strategy.as_str(), fill.contract.id.clone());
        if fill.is_orphan_leg() {
            self.close_orphan_leg_fill(fill);
            return;
        }
        let flipped = fill.before != 0 && fill.after.signum() == -fill.before.signum();
        if fill.after == 0 {
            self.cancel_legs(Some(strategy), Some(&contract), None);
        } else if flipped {
            let keep = fill.leg.is_none().then_some(fill.local_id);
            self.cancel_legs(Some(strategy), Some(&contract), keep);
        }
    }

    /// A leg filled after its position was already closed: the account now holds a position
    /// nobody asked for. Close it at once and tell the strategy why.
    fn close_orphan_leg_fill(&mut self, fill: &AttributedFill) {
        let kind = fill.leg.map_or("bracket", |k| k.as_str());
        let side = Side::from(fill.trade.side).as_str();
        let reason = format!(
            "{kind} leg of order {} filled ({side} {} @ {}) after its position was closed; closing the {:+} it opened",
            fill.local_id,
            fill.trade.size,
            crate::money::Price::new(fill.trade.price, fill.contract.tick_size),
            fill.after
        );
        tracing::error!(strategy = %fill.strategy, "{reason}");
        if let Some(o) = self.book.get_mut(fill.local_id) {
            o.reason = Some(reason);
            o.legs_unwanted = true;
        }
        self.emit_order(fill.local_id);
        self.cancel_legs(Some(&fill.strategy), Some(&fill.contract.id), None);
        if let Err(e) = self.close_strategy_position(&fill.strategy, &fill.contract) {
            tracing::error!(strategy = %fill.strategy, "closing after an orphaned leg fill: {e}");
        }
    }

    /// A strategy the host no longer runs (its file was removed) is flattened once: its
    /// working orders and legs cancelled, its position closed. Nothing else would ever manage
    /// them.
    pub(super) fn flatten_removed(&mut self) {
        let Some(host) = &self.host else { return };
        let running: Vec<String> = host.status().into_iter().map(|s| s.name).collect();
        self.removed.retain(|s| !running.contains(s));
        for strategy in self.book.strategies() {
            if strategy == ACCOUNT_OWNER
                || running.contains(&strategy)
                || self.removed.contains(&strategy)
                || !self.book.has_exposure(&strategy)
            {
                continue;
            }
            self.removed.insert(strategy.clone());
            tracing::warn!(
                strategy = %strategy,
                "strategy removed: cancelling its orders and bracket legs, closing its positions"
            );
            if let Err(e) = self.flatten(&strategy, None) {
                tracing::error!(strategy = %strategy, "flattening the removed strategy: {e}");
            }
        }
    }

    /// The strategy's working bracket legs, for `bot.orders()`.
    pub(super) fn leg_views(&self, strategy: &str, contract: Option<&str>) -> Vec<OrderView> {
        let mut views: Vec<OrderView> = self
            .book
            .legs()
            .filter(|(o, _, l)| {
                o.strategy == strategy
                    && l.is_working()
                    && contract.is_none_or(|c| c == &*o.contract.id)
            })
            .map(|(o, kind, l)| OrderView {
                id: l.local_id,
                symbol: o.contract.symbol.to_string(),
                side: l.side.into(),
                size: i64::from(l.size),
                order_type: match kind {
                    super::book::LegKind::StopLoss => OrderType::Stop,
                    super::book::LegKind::TakeProfit => OrderType::Limit,
                },
                price: l.price,
                stop_price: (kind == super::book::LegKind::StopLoss)
                    .then_some(l.price)
                    .flatten(),
                status: OrderState::Broker(l.status).label().to_string(),
                tag: o.intent.tag.clone(),
                kind: kind.as_str(),
                parent: Some(o.local_id),
            })
            .collect();
        views.sort_by_key(|v| v.id);
        views
    }
}
