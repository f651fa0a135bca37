//! What a backtest reports: round-trip trades from the fills, the equity curve (marked to the
//! recorded mid at every event), and the summary statistics, as text and CSV. Pure: the same
//! fills and marks give the same bytes.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use chrono::{DateTime, NaiveDate, Utc};

use crate::gateway::wire::{OrderSide, Trade};

/// One round trip: from flat back to flat (a reversal closes one and opens the next).
#[derive(Debug, Clone, PartialEq)]
pub struct RoundTrip {
    pub contract: String,
    /// `long` or `short`.
    pub side: &'static str,
    /// The largest size held.
    pub size: i32,
    pub entry_ms: i64,
    pub exit_ms: i64,
    pub entry_price: f64,
    pub exit_price: f64,
    pub gross: f64,
    pub commission: f64,
}

impl RoundTrip {
    pub fn net(&self) -> f64 {
        self.gross - self.commission
    }
}

/// A trip being built per contract.
struct Open {
    trip: RoundTrip,
    net: i32,
    /// Sum of price × size on each side, for the average entry and exit prices.
    entry_value: f64,
    entry_size: i32,
    exit_value: f64,
    exit_size: i32,
}

/// The fills paired into round trips; commissions of the fills are charged to their trip.
pub fn round_trips(fills: &[Trade]) -> Vec<RoundTrip> {
    let mut open: BTreeMap<String, Open> = BTreeMap::new();
    let mut done = Vec::new();
    for f in fills.iter().filter(|f| !f.voided) {
        let signed = if f.side == OrderSide::Bid {
            f.size
        } else {
            -f.size
        };
        let ms = f.creation_timestamp.0.timestamp_millis();
        let fee = f.fees + f.commissions.unwrap_or(0.0);
        let o = open.entry(f.contract_id.clone()).or_insert_with(|| Open {
            trip: RoundTrip {
                contract: f.contract_id.clone(),
                side: if signed > 0 { "long" } else { "short" },
                size: 0,
                entry_ms: ms,
                exit_ms: ms,
                entry_price: f.price,
                exit_price: f.price,
                gross: 0.0,
                commission: 0.0,
            },
            net: 0,
            entry_value: 0.0,
            entry_size: 0,
            exit_value: 0.0,
            exit_size: 0,
        });
        let before = o.net;
        let after = before + signed;
        o.trip.commission += fee;
        o.trip.gross += f.profit_and_loss.unwrap_or(0.0);
        let opening = before == 0 || before.signum() == signed.signum();
        if opening {
            o.entry_value += f.price * f64::from(f.size);
            o.entry_size += f.size;
        } else {
            let closed = f.size.min(before.abs());
            o.exit_value += f.price * f64::from(closed);
            o.exit_size += closed;
        }
        o.net = after;
        o.trip.size = o.trip.size.max(after.abs());
        if after == 0 || after.signum() == -before.signum() && before != 0 {
            let mut o = open.remove(&f.contract_id).expect("just used");
            o.trip.exit_ms = ms;
            o.trip.entry_price = o.entry_value / f64::from(o.entry_size.max(1));
            o.trip.exit_price = o.exit_value / f64::from(o.exit_size.max(1));
            o.trip.size = o.trip.size.max(before.abs());
            done.push(o.trip);
            if after != 0 {
                // A reversal: the rest opens the next trip at this fill's price.
                open.insert(
                    f.contract_id.clone(),
                    Open {
                        trip: RoundTrip {
                            contract: f.contract_id.clone(),
                            side: if after > 0 { "long" } else { "short" },
                            size: after.abs(),
                            entry_ms: ms,
                            exit_ms: ms,
                            entry_price: f.price,
                            exit_price: f.price,
                            gross: 0.0,
                            commission: 0.0,
                        },
                        net: after,
                        entry_value: f.price * f64::from(after.abs()),
                        entry_size: after.abs(),
                        exit_value: 0.0,
                        exit_size: 0,
                    },
                );
            }
        }
    }
    done
}

/// The equity curve as it is marked: net P&L (realised minus commissions, plus open P&L)
/// after every event, kept as one point per minute, with the drawdown and the daily closes.
#[derive(Debug, Default)]
pub struct Equity {
    /// (time, equity) at the last event of each minute.
    pub points: Vec<(i64, f64)>,
    peak: f64,
    pub max_drawdown: f64,
    /// Equity at the end of each CME trading day.
    pub daily: BTreeMap<NaiveDate, f64>,
    first_ms: Option<i64>,
    last_ms: i64,
    in_market_ms: i64,
    was_in: bool,
    /// The trading day of the last mark and the instants (ms) it spans: working it out takes
    /// a time zone conversion, too dear for every event.
    day: Option<(i64, i64, NaiveDate)>,
}

impl Equity {
    /// The state after an event at `ms`.
    pub fn mark(&mut self, ms: i64, equity: f64, in_market: bool) {
        if self.first_ms.is_none() {
            self.first_ms = Some(ms);
        }
        if self.was_in {
            self.in_market_ms += ms - self.last_ms;
        }
        self.last_ms = ms;
        self.was_in = in_market;
        self.peak = self.peak.max(equity);
        self.max_drawdown = self.max_drawdown.max(self.peak - equity);
        let minute = ms.div_euclid(60_000);
        match self.points.last_mut() {
            Some(last) if last.0.div_euclid(60_000) == minute => *last = (ms, equity),
            _ => self.points.push((ms, equity)),
        }
        let day = match self.day {
            Some((from, to, day)) if (from..to).contains(&ms) => Some(day),
            _ => DateTime::<Utc>::from_timestamp_millis(ms).map(|t| {
                let (from, to) = crate::cme::trading_day_span(t);
                let day = crate::cme::trading_day(t);
                self.day = Some((from.timestamp_millis(), to.timestamp_millis(), day));
                day
            }),
        };
        if let Some(day) = day {
            self.daily.insert(day, equity);
        }
    }

    /// Share of the recording's span with a position open.
    pub fn time_in_market(&self) -> f64 {
        let span = self.last_ms - self.first_ms.unwrap_or(self.last_ms);
        if span <= 0 {
            0.0
        } else {
            self.in_market_ms as f64 / span as f64
        }
    }

    /// Annualised (252 days) Sharpe ratio of daily P&L; `None` under two days or no variance.
    pub fn sharpe(&self) -> Option<f64> {
        let mut prev = 0.0;
        let days: Vec<f64> = self
            .daily
            .values()
            .map(|&e| {
                let d = e - prev;
                prev = e;
                d
            })
            .collect();
        if days.len() < 2 {
            return None;
        }
        let n = days.len() as f64;
        let mean = days.iter().sum::<f64>() / n;
        let var = days.iter().map(|d| (d - mean).powi(2)).sum::<f64>() / (n - 1.0);
        (var > 0.0).then(|| mean / var.sqrt() * 252f64.sqrt())
    }
}

/// What a backtest found.
#[derive(Debug)]
pub struct Report {
    pub trips: Vec<RoundTrip>,
    pub fills: usize,
    pub equity: Equity,
    /// Open P&L of what was still held at the end (in the equity, not in the trips).
    pub open_pnl: f64,
    pub events: u64,
    pub quotes: u64,
    /// Per contract, the mid at the last quote of each second (for the report's price chart).
    pub prices: BTreeMap<String, Vec<(i64, f64)>>,
}

/// Keeps the last mid of each second per contract.
pub fn sample_price(
    prices: &mut BTreeMap<String, Vec<(i64, f64)>>,
    contract: &str,
    ms: i64,
    mid: f64,
) {
    let series = match prices.get_mut(contract) {
        Some(s) => s,
        None => prices.entry(contract.to_owned()).or_default(),
    };
    match series.last_mut() {
        Some(last) if last.0.div_euclid(1000) == ms.div_euclid(1000) => *last = (ms, mid),
        _ => series.push((ms, mid)),
    }
}

fn time(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
        .unwrap_or_default()
}

impl Report {
    pub fn gross(&self) -> f64 {
        self.trips.iter().map(|t| t.gross).sum()
    }

    pub fn commissions(&self) -> f64 {
        self.trips.iter().map(|t| t.commission).sum()
    }

    /// The terminal summary.
    pub fn summary(&self) -> String {
        let wins: Vec<f64> = self
            .trips
            .iter()
            .map(RoundTrip::net)
            .filter(|n| *n > 0.0)
            .collect();
        let losses: Vec<f64> = self
            .trips
            .iter()
            .map(RoundTrip::net)
            .filter(|n| *n <= 0.0)
            .collect();
        let avg = |v: &[f64]| {
            if v.is_empty() {
                0.0
            } else {
                v.iter().sum::<f64>() / v.len() as f64
            }
        };
        let won: f64 = wins.iter().sum();
        let lost: f64 = -losses.iter().sum::<f64>();
        let n = self.trips.len();
        let mut s = String::new();
        let money = |v: f64| format!("{:.2}", crate::money::cents(v));
        let _ = writeln!(
            s,
            "events {} (quotes {}), fills {}",
            self.events, self.quotes, self.fills
        );
        let _ = writeln!(
            s,
            "net P&L          {}",
            money(self.gross() - self.commissions())
        );
        let _ = writeln!(s, "gross P&L        {}", money(self.gross()));
        let _ = writeln!(s, "commissions      {}", money(self.commissions()));
        if self.open_pnl != 0.0 {
            let _ = writeln!(s, "open at the end  {}", money(self.open_pnl));
        }
        let _ = writeln!(s, "trades           {n}");
        let rate = if n == 0 {
            "n/a".to_string()
        } else {
            format!("{:.1}%", wins.len() as f64 * 100.0 / n as f64)
        };
        let _ = writeln!(s, "win rate         {rate}");
        let _ = writeln!(s, "average win      {}", money(avg(&wins)));
        let _ = writeln!(s, "average loss     {}", money(-avg(&losses)));
        let pf = if lost > 0.0 {
            format!("{:.2}", crate::money::cents(won / lost))
        } else if won > 0.0 {
            "inf".into()
        } else {
            "n/a".into()
        };
        let _ = writeln!(s, "profit factor    {pf}");
        let _ = writeln!(s, "max drawdown     {}", money(self.equity.max_drawdown));
        let sharpe = self
            .equity
            .sharpe()
            .map_or("n/a (under two days)".to_string(), |v| format!("{v:.2}"));
        let _ = writeln!(s, "Sharpe (daily)   {sharpe}");
        let _ = writeln!(
            s,
            "time in market   {:.1}%",
            self.equity.time_in_market() * 100.0
        );
        s
    }

    /// `trades.csv`: one row per round trip.
    pub fn trades_csv(&self) -> String {
        let mut s = String::from(
            "entry_time,exit_time,contract,side,size,entry_price,exit_price,gross_pnl,commission,net_pnl\n",
        );
        for t in &self.trips {
            let _ = writeln!(
                s,
                "{},{},{},{},{},{},{},{:.2},{:.2},{:.2}",
                time(t.entry_ms),
                time(t.exit_ms),
                t.contract,
                t.side,
                t.size,
                t.entry_price,
                t.exit_price,
                crate::money::cents(t.gross),
                crate::money::cents(t.commission),
                crate::money::cents(t.net())
            );
        }
        s
    }

    /// `equity.csv`: net equity and drawdown at the last event of each minute.
    pub fn equity_csv(&self) -> String {
        let mut s = String::from("time,equity,drawdown\n");
        let mut peak = 0.0f64;
        for &(ms, e) in &self.equity.points {
            peak = peak.max(e);
            let _ = writeln!(
                s,
                "{},{:.2},{:.2}",
                time(ms),
                crate::money::cents(e),
                crate::money::cents(peak - e)
            );
        }
        s
    }
}
