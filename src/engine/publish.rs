//! Building and republishing the engine's [`EngineStatus`] from the loop's state, and turning the
//! host's per-strategy counters into metric increments.

use std::collections::BTreeMap;

use super::book::{Leg, LegKind, OrderState};
use super::core::Core;
use super::status::{EngineStatus, OrderStatusView, PositionStatus, QuoteSeen, StrategyPnl};
use crate::gateway::wire::{OrderSide, OrderStatus};
use crate::market::Side;
use crate::money::{cents, on_grid};

impl Core {
    /// Republishes the status snapshot when it changed.
    pub(super) fn publish(&mut self) {
        self.count_strategy_changes();
        let declared = self.host.as_ref().map(|h| h.symbols()).unwrap_or_default();
        let status = EngineStatus {
            strategies_loaded: self.host.is_some(),
            symbols_pending: declared
                .into_iter()
                .filter(|s| {
                    !self
                        .contract_for(s)
                        .is_some_and(|c| self.subscribed.contains(&c.id))
                })
                .collect(),
            market_hub: self.market_state.clone(),
            user_hub: self.user_state.clone(),
            halted: self.guard.halted().map(str::to_string),
            realized_pnl: cents(self.guard.realized_pnl()),
            open_pnl: cents(self.open_pnl()),
            positions: self.position_statuses(),
            open_orders: self.order_statuses(),
            balance: self.account.balance,
            daily_loss_limit: self.guard.limits().daily_loss_limit,
            strategy_pnl: self.strategy_pnl(),
            quotes: self.quotes_seen(),
            fills: self.day.fills(),
            equity: self.day.equity(),
        };
        self.status.send_if_modified(|old| {
            let changed = *old != status;
            if changed {
                *old = status;
            }
            changed
        });
    }

    /// Each strategy's realised P&L today and open P&L on what it holds, by name.
    fn strategy_pnl(&self) -> Vec<StrategyPnl> {
        let mut open: BTreeMap<&str, f64> = BTreeMap::new();
        for (strategy, contract, p) in self.book.strategy_positions() {
            let entry = open.entry(strategy).or_default();
            let Some(c) = self.contracts.get(contract) else {
                continue;
            };
            // A strategy's position on a contract the account is flat on is stale (closed by
            // an order that was not the strategy's: the kill switch, a manual close): no open
            // P&L is made up for it.
            let held = self.book.position(contract).0 != 0;
            if let Some(mark) = self.quotes.get(contract).and_then(|q| q.mark())
                && p.size != 0
                && held
            {
                *entry += (mark - p.avg_price) * f64::from(p.size) * c.point_value();
            }
        }
        for s in self.day.strategies() {
            open.entry(s).or_default();
        }
        open.into_iter()
            .map(|(strategy, open)| StrategyPnl {
                strategy: strategy.to_owned(),
                realized_pnl: cents(self.day.realized(strategy)),
                open_pnl: cents(open),
            })
            .collect()
    }

    /// The latest quote of each contract, by symbol.
    fn quotes_seen(&self) -> Vec<QuoteSeen> {
        let mut out: Vec<QuoteSeen> = self
            .quotes
            .values()
            .map(|q| QuoteSeen {
                symbol: q.symbol.to_string(),
                contract: q.contract.to_string(),
                time_ms: q.time_ms,
                last: q.mark(),
            })
            .collect();
        out.sort_by(|a, b| a.symbol.cmp(&b.symbol));
        out
    }

    /// Every account position with its open P&L and the legs that protect it.
    fn position_statuses(&self) -> Vec<PositionStatus> {
        let mut out: Vec<PositionStatus> = self
            .book
            .positions()
            .map(|p| {
                let size = p.net_size();
                let contract = self.contracts.get(p.contract_id.as_str());
                let mark = contract
                    .and_then(|c| self.quotes.get(&c.id))
                    .and_then(|q| q.mark());
                let open_pnl = match (contract, mark) {
                    (Some(c), Some(m)) => {
                        cents((m - p.average_price) * f64::from(size) * c.point_value())
                    }
                    _ => 0.0,
                };
                // Prices on the contract's grid (an average too: the nearest tick).
                let tick = contract.map_or(0.0, |c| c.tick_size);
                // Legs that close this position sell a long, buy a short.
                let closing = if size > 0 {
                    OrderSide::Ask
                } else {
                    OrderSide::Bid
                };
                let legs: Vec<(LegKind, Leg)> = self
                    .book
                    .legs()
                    .filter(|(o, _, l)| {
                        *o.contract.id == *p.contract_id
                            && l.status == OrderStatus::Open
                            && !l.cancel_sent
                            && l.side == closing
                    })
                    .map(|(_, k, l)| (k, *l))
                    .collect();
                let nearest = |kind: LegKind| {
                    let prices = legs
                        .iter()
                        .filter(|(k, _)| *k == kind)
                        .filter_map(|(_, l)| l.price);
                    // The stop or target a long meets first is the highest stop and lowest target.
                    if (size > 0) == (kind == LegKind::StopLoss) {
                        prices.reduce(f64::max)
                    } else {
                        prices.reduce(f64::min)
                    }
                };
                let stop_cover: i32 = legs
                    .iter()
                    .filter(|(k, _)| *k == LegKind::StopLoss)
                    .map(|(_, l)| l.size)
                    .sum();
                PositionStatus {
                    contract: p.contract_id.clone(),
                    symbol: contract
                        .map_or_else(|| p.contract_id.clone(), |c| c.symbol.to_string()),
                    size,
                    avg_price: on_grid(p.average_price, tick),
                    open_pnl,
                    stop_price: nearest(LegKind::StopLoss).map(|x| on_grid(x, tick)),
                    target_price: nearest(LegKind::TakeProfit).map(|x| on_grid(x, tick)),
                    protected: size != 0 && stop_cover >= size.abs(),
                }
            })
            .collect();
        out.sort_by(|a, b| a.contract.cmp(&b.contract));
        out
    }

    /// Every working order: our entries (including `unknown` ones), their legs, sorted by id.
    fn order_statuses(&self) -> Vec<OrderStatusView> {
        let mut out: Vec<OrderStatusView> = self
            .book
            .orders()
            .filter(|o| !o.state.is_terminal())
            .map(|o| OrderStatusView {
                id: o.local_id,
                strategy: o.strategy.clone(),
                kind: "entry",
                parent: None,
                custom_tag: o.custom_tag.clone(),
                broker_id: o.broker_id,
                symbol: o.contract.symbol.to_string(),
                side: o.intent.side.as_str(),
                size: o.intent.size,
                filled: o.filled,
                price: o
                    .intent
                    .price
                    .or(o.intent.stop_price)
                    .map(|x| on_grid(x, o.contract.tick_size)),
                status: o.state.label(),
                protected: o.bracket.as_ref().map(|b| b.protects()),
            })
            .collect();
        out.extend(
            self.book
                .legs()
                .filter(|(_, _, l)| l.is_working())
                .map(|(o, kind, l)| OrderStatusView {
                    id: l.local_id,
                    strategy: o.strategy.clone(),
                    kind: kind.as_str(),
                    parent: Some(o.local_id),
                    custom_tag: format!(
                        "{}-{}",
                        o.custom_tag,
                        if kind == LegKind::StopLoss {
                            "SL"
                        } else {
                            "TP"
                        }
                    ),
                    broker_id: Some(l.broker_id),
                    symbol: o.contract.symbol.to_string(),
                    side: Side::from(l.side).as_str(),
                    size: i64::from(l.size),
                    filled: 0,
                    price: l.price.map(|x| on_grid(x, o.contract.tick_size)),
                    status: OrderState::Broker(l.status).label(),
                    protected: None,
                }),
        );
        out.sort_by_key(|o| o.id);
        out
    }

    /// Turns the host's per-strategy counters into metric increments.
    fn count_strategy_changes(&mut self) {
        let Some(host) = self.host.clone() else {
            return;
        };
        for s in host.status() {
            let seen =
                self.seen_strategies
                    .entry(s.name.clone())
                    .or_insert((s.generation, None, 0));
            if s.generation > seen.0 {
                for _ in seen.0..s.generation {
                    self.metrics.reload(&s.name, true);
                }
            }
            let new_load_error = s.load_error.is_some() && s.load_error != seen.1;
            if new_load_error {
                self.metrics.reload(&s.name, false);
            }
            if s.quotes_coalesced > seen.2 {
                self.metrics
                    .quotes_coalesced(&s.name, s.quotes_coalesced - seen.2);
            }
            *seen = (s.generation, s.load_error.clone(), s.quotes_coalesced);
            self.announce_strategy(&s, new_load_error);
        }
    }
}
