//! The simulator's contract catalog: MNQ, MES, NQ and ES with their real roots, tick sizes and
//! tick values, the front month computed from the date, and the view the matching engine gets.

use std::sync::Arc;

use chrono::{Datelike, Duration as ChronoDuration, NaiveDate, Weekday};

use crate::gateway::wire::Contract;

/// A product the simulator lists. Roots differ from tickers (gateway §7): ES trades as `EP`, NQ as
/// `ENQ`.
struct Product {
    ticker: &'static str,
    root: &'static str,
    description: &'static str,
    tick_value: f64,
    /// Exchange + clearing fee per contract per side, roughly what TopstepX charges.
    fee: f64,
    /// Where the walk starts, in index points.
    anchor: f64,
}

const PRODUCTS: [Product; 4] = [
    Product {
        ticker: "MNQ",
        root: "MNQ",
        description: "Micro E-mini Nasdaq-100",
        tick_value: 0.5,
        fee: 0.37,
        anchor: 21_000.0,
    },
    Product {
        ticker: "MES",
        root: "MES",
        description: "Micro E-mini S&P 500",
        tick_value: 1.25,
        fee: 0.37,
        anchor: 6_000.0,
    },
    Product {
        ticker: "NQ",
        root: "ENQ",
        description: "E-mini NASDAQ-100",
        tick_value: 5.0,
        fee: 1.40,
        anchor: 21_000.0,
    },
    Product {
        ticker: "ES",
        root: "EP",
        description: "E-mini S&P 500",
        tick_value: 12.5,
        fee: 1.40,
        anchor: 6_000.0,
    },
];

const TICK_SIZE: f64 = 0.25;
const MONTH_CODES: [char; 12] = ['F', 'G', 'H', 'J', 'K', 'M', 'N', 'Q', 'U', 'V', 'X', 'Z'];
const MONTH_NAMES: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

/// Where a product's price walk starts, in index points.
pub(crate) fn anchor_price(ticker: &str) -> f64 {
    PRODUCTS
        .iter()
        .find(|p| p.ticker == ticker)
        .map_or(10_000.0, |p| p.anchor)
}

/// Everything the simulator knows about one listed contract.
#[derive(Debug, Clone)]
pub struct ContractSpec {
    pub id: Arc<str>,
    pub symbol_id: Arc<str>,
    /// Exchange code with a one-digit year, e.g. `MNQZ5`.
    pub name: String,
    pub ticker: &'static str,
    pub description: String,
    pub tick_size: f64,
    pub tick_value: f64,
    pub active: bool,
    pub fee_per_contract: f64,
}

impl ContractSpec {
    pub fn to_wire(&self) -> Contract {
        Contract {
            id: self.id.to_string(),
            name: self.name.clone(),
            description: self.description.clone(),
            tick_size: self.tick_size,
            tick_value: self.tick_value,
            active_contract: self.active,
            symbol_id: self.symbol_id.to_string(),
        }
    }

    /// The nearest tick to a price.
    pub fn ticks(&self, price: f64) -> i64 {
        (price / self.tick_size).round() as i64
    }

    pub fn price(&self, ticks: i64) -> f64 {
        ticks as f64 * self.tick_size
    }

    /// Whether a price lies on the tick grid (within float noise).
    pub fn on_grid(&self, price: f64) -> bool {
        price.is_finite()
            && (price / self.tick_size - (price / self.tick_size).round()).abs() < 1e-6
    }
}

/// The best bid, best ask and last trade of a contract.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Touch {
    pub bid: f64,
    pub ask: f64,
    pub last: f64,
}

/// Lets the matching engine see contracts and prices without owning the market (and lets its
/// unit tests supply fixed ones).
pub trait MarketView {
    fn spec(&self, contract_id: &str) -> Option<&ContractSpec>;
    fn touch(&self, contract_id: &str) -> Option<Touch>;
}

/// The front month on `date`: the next quarterly month (H M U Z) whose roll date has not passed.
/// Equity index futures roll eight days before expiry (the third Friday), as volume moves then.
pub fn front_month(date: NaiveDate) -> (i32, u32) {
    let mut year = date.year();
    loop {
        for month in [3, 6, 9, 12] {
            if date < third_friday(year, month) - ChronoDuration::days(8) {
                return (year, month);
            }
        }
        year += 1;
    }
}

fn third_friday(year: i32, month: u32) -> NaiveDate {
    NaiveDate::from_weekday_of_month_opt(year, month, Weekday::Fri, 3)
        .expect("every month has a third Friday")
}

fn previous_quarter((year, month): (i32, u32)) -> (i32, u32) {
    if month == 3 {
        (year - 1, 12)
    } else {
        (year, month - 3)
    }
}

/// The catalog on `date`: each product's front month (active) and the quarter before it (expired).
pub fn catalog(date: NaiveDate) -> Vec<ContractSpec> {
    let front = front_month(date);
    let mut specs = Vec::with_capacity(PRODUCTS.len() * 2);
    for (ym, active) in [(front, true), (previous_quarter(front), false)] {
        for p in &PRODUCTS {
            let (year, month) = ym;
            let code = MONTH_CODES[month as usize - 1];
            specs.push(ContractSpec {
                id: format!("CON.F.US.{}.{code}{:02}", p.root, year % 100).into(),
                symbol_id: format!("F.US.{}", p.root).into(),
                name: format!("{}{code}{}", p.ticker, year % 10),
                ticker: p.ticker,
                description: format!(
                    "{}: {} {year}",
                    p.description,
                    MONTH_NAMES[month as usize - 1]
                ),
                tick_size: TICK_SIZE,
                tick_value: p.tick_value,
                active,
                fee_per_contract: p.fee,
            });
        }
    }
    specs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn front_month_rolls_eight_days_before_the_third_friday() {
        let d = |s| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        assert_eq!(front_month(d("2025-07-01")), (2025, 9));
        // Third Friday of Sep 2025 is the 19th; the roll is the 11th.
        assert_eq!(front_month(d("2025-09-10")), (2025, 9));
        assert_eq!(front_month(d("2025-09-11")), (2025, 12));
        assert_eq!(front_month(d("2025-12-30")), (2026, 3));
    }

    #[test]
    fn catalog_uses_real_roots_and_tick_values() {
        let specs = catalog(NaiveDate::from_ymd_opt(2025, 10, 1).unwrap());
        let es = specs.iter().find(|s| s.ticker == "ES" && s.active).unwrap();
        assert_eq!(&*es.id, "CON.F.US.EP.Z25");
        assert_eq!(&*es.symbol_id, "F.US.EP");
        assert_eq!(es.name, "ESZ5");
        assert_eq!(es.tick_value, 12.5);
        let nq_old = specs
            .iter()
            .find(|s| s.ticker == "NQ" && !s.active)
            .unwrap();
        assert_eq!(&*nq_old.id, "CON.F.US.ENQ.U25");
        let mnq = specs
            .iter()
            .find(|s| s.ticker == "MNQ" && s.active)
            .unwrap();
        assert_eq!((mnq.tick_size, mnq.tick_value), (0.25, 0.5));
    }
}
