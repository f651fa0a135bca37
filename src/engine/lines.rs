//! The log lines a trader reads about fills and positions: prices on the tick grid, money in
//! cents, and, when several strategies share a contract, whose fill it was and what each holds.

use std::fmt::Write as _;

use super::book::{AttributedFill, StrategyPosition};
use super::core::Core;
use crate::market::Side;
use crate::money::{Money, Price};

impl Core {
    /// Logs a fill with whose it is; and, when the strategies' fills now account for the
    /// account's position, the position line too: the gateway may report the position before
    /// the fill (live does), and that line could not say yet whose it was.
    pub(super) fn log_fill(&self, fill: &AttributedFill) {
        let id = &fill.contract.id;
        let now = self.book.strategy_position(&fill.strategy, id);
        tracing::info!(strategy = %fill.strategy, "{}", fill_line(fill, now));
        let held: i32 = self.book.holders(id).iter().map(|(_, p)| p.size).sum();
        if held == self.book.position(id).0 {
            self.log_position(id);
        }
    }

    /// The account's position on a contract and what each strategy holds of it.
    pub(super) fn log_position(&self, contract_id: &str) {
        let Some(c) = self.contracts.get(contract_id) else {
            return;
        };
        let (size, avg) = self.book.position(contract_id);
        let holders = self.book.holders(contract_id);
        tracing::info!(
            "{}",
            position_line(&c.symbol, size, avg, c.tick_size, &holders)
        );
    }
}

/// `fill for breakout: buy 1 MNQ @ 21000.25 (order 3), P&L -5.60; breakout now +1 @ 21000.25`.
pub(super) fn fill_line(fill: &AttributedFill, now: StrategyPosition) -> String {
    let t = &fill.trade;
    let tick = fill.contract.tick_size;
    let side = Side::from(t.side).as_str();
    let what = match fill.leg {
        Some(kind) => format!("{} of order {}", kind.as_str(), fill.local_id),
        None => format!("order {}", fill.local_id),
    };
    let mut line = format!(
        "fill for {}: {side} {} {} @ {} ({what})",
        fill.strategy,
        t.size,
        fill.contract.symbol,
        Price::new(t.price, tick)
    );
    if let Some(pnl) = t.profit_and_loss {
        let _ = write!(line, ", P&L {}", Money(pnl));
    }
    let _ = write!(
        line,
        "; {} now {}",
        fill.strategy,
        holding(now.size, now.avg_price, tick)
    );
    line
}

/// `position MNQ: +2 @ 21000.25 (breakout +1, tradingview +1)`: the account's net position and
/// what each strategy holds of it; what no strategy accounts for (a manual trade, or a fill not
/// reported yet) shows as `unattributed`.
pub(super) fn position_line(
    symbol: &str,
    size: i32,
    avg: f64,
    tick: f64,
    holders: &[(&str, StrategyPosition)],
) -> String {
    let mut line = format!("position {symbol}: {}", holding(size, avg, tick));
    if holders.is_empty() {
        return line;
    }
    let mut parts: Vec<String> = holders
        .iter()
        .map(|(name, p)| format!("{name} {:+}", p.size))
        .collect();
    let rest = size - holders.iter().map(|(_, p)| p.size).sum::<i32>();
    if rest != 0 {
        parts.push(format!("unattributed {rest:+}"));
    }
    let _ = write!(line, " ({})", parts.join(", "));
    line
}

/// `+2 @ 21000.25`, or `flat`.
fn holding(size: i32, avg: f64, tick: f64) -> String {
    if size == 0 {
        "flat".into()
    } else {
        format!("{size:+} @ {}", Price::new(avg, tick))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::engine::book::{ContractInfo, LegKind};
    use crate::gateway::wire::{OrderSide, Trade};

    fn held(size: i32, avg_price: f64) -> StrategyPosition {
        StrategyPosition { size, avg_price }
    }

    fn fill(leg: Option<LegKind>, side: OrderSide, price: f64, pnl: Option<f64>) -> AttributedFill {
        let trade: Trade = serde_json::from_value(serde_json::json!({
            "id": 1, "accountId": 7, "contractId": "CON.F.US.MNQ.Z25",
            "creationTimestamp": "2025-12-01T15:30:03.5+00:00", "price": price,
            "profitAndLoss": pnl, "fees": 0.37, "side": if side == OrderSide::Ask { 1 } else { 0 },
            "size": 1, "voided": false, "orderId": 99
        }))
        .unwrap();
        AttributedFill {
            strategy: "breakout".into(),
            local_id: 3,
            leg,
            contract: Arc::new(ContractInfo {
                id: "CON.F.US.MNQ.Z25".into(),
                symbol: "MNQ".into(),
                tick_size: 0.25,
                tick_value: 0.5,
                ..ContractInfo::default()
            }),
            trade,
            before: 0,
            after: 1,
        }
    }

    #[test]
    fn a_fill_names_its_strategy_and_what_it_holds_now() {
        let f = fill(None, OrderSide::Bid, 21000.250000000004, None);
        assert_eq!(
            fill_line(&f, held(1, 21000.250000000004)),
            "fill for breakout: buy 1 MNQ @ 21000.25 (order 3); breakout now +1 @ 21000.25"
        );
        let f = fill(
            Some(LegKind::StopLoss),
            OrderSide::Ask,
            20989.0,
            Some(-5.6000000000000005),
        );
        assert_eq!(
            fill_line(&f, held(0, 0.0)),
            "fill for breakout: sell 1 MNQ @ 20989.00 (stop_loss of order 3), P&L -5.60; \
             breakout now flat"
        );
    }

    #[test]
    fn a_position_says_what_each_strategy_holds() {
        let holders = [
            ("breakout", held(1, 21000.25)),
            ("tradingview", held(1, 21000.5)),
        ];
        assert_eq!(
            position_line("MNQ", 2, 21000.375, 0.25, &holders),
            "position MNQ: +2 @ 21000.50 (breakout +1, tradingview +1)"
        );
        let netted = [
            ("breakout", held(1, 21000.25)),
            ("tradingview", held(-1, 21000.5)),
        ];
        assert_eq!(
            position_line("MNQ", 0, 0.0, 0.25, &netted),
            "position MNQ: flat (breakout +1, tradingview -1)"
        );
    }

    #[test]
    fn what_no_strategy_holds_is_unattributed() {
        let holders = [("breakout", held(1, 21000.25))];
        assert_eq!(
            position_line("MNQ", 3, 20996.916666666668, 0.25, &holders),
            "position MNQ: +3 @ 20997.00 (breakout +1, unattributed +2)"
        );
        assert_eq!(
            position_line("MNQ", -1, 21000.25, 0.25, &[]),
            "position MNQ: -1 @ 21000.25"
        );
    }
}
