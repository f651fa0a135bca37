//! The simulator's books: positions per account and contract (average price, realised P&L by
//! tick value) and the half-turn trade log. Pure; the matching engine feeds it fills.

use super::contracts::ContractSpec;
use super::rules::round_cents;
use crate::gateway::wire::{Order, Position, PositionType, Timestamp, Trade};

#[derive(Debug, Clone)]
struct PositionSlot {
    id: i32,
    account_id: i32,
    contract_id: String,
    net: i32,
    average: f64,
    created: Timestamp,
}

impl PositionSlot {
    fn to_wire(&self) -> Position {
        Position {
            id: self.id,
            account_id: self.account_id,
            contract_id: self.contract_id.clone(),
            creation_timestamp: self.created,
            position_type: match self.net.signum() {
                1 => PositionType::Long,
                -1 => PositionType::Short,
                _ => PositionType::Undefined,
            },
            size: self.net.abs(),
            average_price: if self.net == 0 { 0.0 } else { self.average },
            contract_display_name: None,
        }
    }
}

const FIRST_TRADE_ID: i64 = 5_000_001;
const FIRST_POSITION_ID: i32 = 7001;

#[derive(Debug, Default)]
pub(super) struct Ledger {
    /// One row per account and contract; a flat row is kept and gets a new id when reopened.
    positions: Vec<PositionSlot>,
    trades: Vec<Trade>,
    opened: i32,
}

impl Ledger {
    /// Open positions of an account, one row per contract.
    pub fn positions(&self, account_id: i32) -> Vec<Position> {
        self.positions
            .iter()
            .filter(|p| p.account_id == account_id && p.net != 0)
            .map(PositionSlot::to_wire)
            .collect()
    }

    pub fn trades(&self, account_id: i32) -> impl Iterator<Item = &Trade> {
        self.trades
            .iter()
            .filter(move |t| t.account_id == account_id)
    }

    /// Signed size: positive long, negative short, 0 flat.
    pub fn net(&self, account_id: i32, contract_id: &str) -> i32 {
        self.positions
            .iter()
            .find(|p| p.account_id == account_id && p.contract_id == contract_id)
            .map_or(0, |p| p.net)
    }

    /// Books one fill of `order` at `price`: the half-turn trade (P&L only on the closing part,
    /// `None` when it only opens or adds) and the position after it.
    pub fn book(
        &mut self,
        order: &Order,
        price: f64,
        spec: &ContractSpec,
        ts: Timestamp,
    ) -> (Trade, Position) {
        let signed = order.side.sign() * order.size;
        let idx =
            match self.positions.iter().position(|p| {
                p.account_id == order.account_id && p.contract_id == order.contract_id
            }) {
                Some(i) => i,
                None => {
                    self.positions.push(PositionSlot {
                        id: 0,
                        account_id: order.account_id,
                        contract_id: order.contract_id.clone(),
                        net: 0,
                        average: 0.0,
                        created: ts,
                    });
                    self.positions.len() - 1
                }
            };
        let next_id = FIRST_POSITION_ID + self.opened;
        let pos = &mut self.positions[idx];
        let mut pnl = None;
        let mut reopened = false;
        if pos.net == 0 || pos.net.signum() == signed.signum() {
            if pos.net == 0 {
                reopened = true;
            } else {
                let (old, add) = (f64::from(pos.net.abs()), f64::from(order.size));
                pos.average = (pos.average * old + price * add) / (old + add);
            }
            pos.net += signed;
        } else {
            let closing = signed.abs().min(pos.net.abs());
            let points = (price - pos.average) * f64::from(pos.net.signum()) * f64::from(closing);
            pnl = Some(round_cents(points / spec.tick_size * spec.tick_value));
            pos.net += signed;
            // Reversed through flat: the rest opens a new position at the fill price.
            reopened = pos.net.signum() == signed.signum();
        }
        if reopened {
            pos.id = next_id;
            pos.created = ts;
            pos.average = price;
            self.opened += 1;
        }
        let position = pos.to_wire();
        let trade = Trade {
            id: FIRST_TRADE_ID + self.trades.len() as i64,
            account_id: order.account_id,
            contract_id: order.contract_id.clone(),
            creation_timestamp: ts,
            price,
            profit_and_loss: pnl,
            fees: round_cents(spec.fee_per_contract * f64::from(order.size)),
            side: order.side,
            size: order.size,
            voided: false,
            order_id: order.id,
            commissions: None,
        };
        self.trades.push(trade.clone());
        (trade, position)
    }
}
