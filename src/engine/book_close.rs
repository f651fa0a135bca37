//! Fills of the gateway's close-position call (the kill switch) shared out to the strategies
//! that held the contract, so each strategy's own position and realised P&L follow the account.

use std::sync::Arc;

use super::{AttributedFill, Book, ContractInfo};
use crate::gateway::wire::Trade;

impl Book {
    /// Shares a fill that no order of ours made, on a contract we closed with the gateway's
    /// close-position call, among the strategies holding that contract against the fill's side.
    ///
    /// Pro rata: each strategy takes the part of the fill its position is of all the strategies'
    /// positions there (largest remainders get the odd contracts, ties by strategy name), never
    /// more than it holds. The close takes the whole account position, so once every fill of it
    /// is in, every strategy is flat however the pieces fell. Each share is a [`Trade`] of the
    /// share's size carrying the same part of the fill's P&L, fees and commissions.
    pub fn share_close(
        &mut self,
        trade: &Trade,
        contract: &Arc<ContractInfo>,
    ) -> Vec<AttributedFill> {
        let signed = trade.side.sign() * trade.size;
        let mut holders: Vec<(String, i32)> = self
            .holders(&contract.id)
            .into_iter()
            .filter(|(_, p)| p.size.signum() == -signed.signum())
            .map(|(s, p)| (s.to_owned(), p.size.abs()))
            .collect();
        holders.sort();
        let held: Vec<i32> = holders.iter().map(|h| h.1).collect();
        let total: i32 = held.iter().sum();
        if total == 0 || signed == 0 {
            return Vec::new();
        }
        let shares = pro_rata(signed.abs().min(total), &held);
        let mut out = Vec::new();
        for ((strategy, _), share) in holders.into_iter().zip(shares) {
            if share == 0 {
                continue;
            }
            let part = f64::from(share) / f64::from(trade.size);
            let mut t = trade.clone();
            t.size = share;
            t.fees *= part;
            t.commissions = t.commissions.map(|c| c * part);
            t.profit_and_loss = t.profit_and_loss.map(|p| p * part);
            let key = (strategy.clone(), contract.id.clone());
            let position = self.strategy_positions.entry(key).or_default();
            let before = position.size;
            position.apply(signed.signum() * share, trade.price);
            out.push(AttributedFill {
                strategy,
                local_id: 0,
                leg: None,
                contract: contract.clone(),
                trade: t,
                before,
                after: position.size,
            });
        }
        out
    }
}

/// `qty` split in proportion to `held` (`qty` at most their sum), by largest remainders.
fn pro_rata(qty: i32, held: &[i32]) -> Vec<i32> {
    let total: i64 = held.iter().map(|&h| i64::from(h)).sum();
    let exact = |h: i32| i64::from(qty) * i64::from(h);
    let mut out: Vec<i32> = held.iter().map(|&h| (exact(h) / total) as i32).collect();
    let mut left = qty - out.iter().sum::<i32>();
    let mut order: Vec<usize> = (0..held.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(exact(held[i]) % total));
    for i in order {
        if left == 0 {
            break;
        }
        if out[i] < held[i] {
            out[i] += 1;
            left -= 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::pro_rata;

    #[test]
    fn pro_rata_splits_in_proportion_and_never_beyond_what_is_held() {
        assert_eq!(pro_rata(3, &[2, 1]), vec![2, 1]);
        assert_eq!(pro_rata(1, &[2, 1]), vec![1, 0]);
        assert_eq!(pro_rata(2, &[1, 1, 1]), vec![1, 1, 0]);
        assert_eq!(pro_rata(5, &[3, 2]), vec![3, 2]);
        assert_eq!(pro_rata(4, &[5, 3]), vec![3, 1]);
        for qty in 0..=6 {
            let s = pro_rata(qty, &[1, 2, 3]);
            assert_eq!(s.iter().sum::<i32>(), qty);
            assert!(s.iter().zip([1, 2, 3]).all(|(a, h)| *a <= h));
        }
    }
}
