//! The simulator's market: each contract's seeded price walk on the tick grid, its per-second
//! history, and bars built from both (the catalog lives in `contracts`).

use chrono::{DateTime, Datelike, TimeZone, Utc};

use super::contracts::anchor_price;
pub use super::contracts::{ContractSpec, MarketView, Touch, catalog, front_month};

use super::events::{QuoteChange, QuoteEvent};
use crate::gateway::wire::{Bar, BarUnit, OrderSide, Timestamp};

/// The deterministic walk's generator: splitmix64, tiny and allocation-free, so a quote costs a
/// few nanoseconds.
fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    hash(*state)
}

fn hash(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A uniform value in [-1, 1] for a key.
fn unit(key: u64) -> f64 {
    (hash(key) >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
}

/// Octaves of the synthetic history before the start: (period in seconds, amplitude in ticks).
const OCTAVES: [(i64, f64); 5] = [
    (60, 6.0),
    (900, 20.0),
    (4 * 3600, 60.0),
    (3 * 86_400, 200.0),
    (30 * 86_400, 500.0),
];

/// One second of recorded trading: OHLC in ticks, volume, and how many quotes fell in it
/// (`n == 0` means nothing traded and the second has no bar).
#[derive(Debug, Clone, Copy, Default)]
struct SecBar {
    o: i32,
    h: i32,
    l: i32,
    c: i32,
    v: u32,
    n: u32,
}

/// The live state of one contract.
struct Book {
    spec: ContractSpec,
    /// Seed of this contract's synthetic history.
    seed: u64,
    rng: u64,
    anchor: i64,
    bid: i64,
    last: i64,
    volume: i64,
    open: i64,
    high: i64,
    low: i64,
    /// One entry per second since the start (about 8 MB a day for four contracts; a simulator
    /// run is hours, so it is never trimmed).
    secs: Vec<SecBar>,
}

/// Bars could not be built; the name is `History/retrieveBars`'s error-code name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BarsError {
    ContractNotFound,
    UnitInvalid,
    UnitNumberInvalid,
    LimitInvalid,
}

impl BarsError {
    pub fn name(self) -> &'static str {
        match self {
            Self::ContractNotFound => "ContractNotFound",
            Self::UnitInvalid => "UnitInvalid",
            Self::UnitNumberInvalid => "UnitNumberInvalid",
            Self::LimitInvalid => "LimitInvalid",
        }
    }
}

/// A `History/retrieveBars` query, already decoded.
#[derive(Debug, Clone, Copy)]
pub struct BarsQuery<'a> {
    pub contract_id: &'a str,
    pub unit: BarUnit,
    pub unit_number: i32,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub limit: i32,
    pub include_partial: bool,
}

pub struct Market {
    specs: Vec<ContractSpec>,
    /// Books of every listed contract; only active ones get quotes.
    books: Vec<Book>,
    start_sec: i64,
}

impl Market {
    pub fn new(seed: u64, now: DateTime<Utc>) -> Self {
        let specs = catalog(now.date_naive());
        let books = specs
            .iter()
            .enumerate()
            .map(|(i, spec)| {
                let contract_seed = hash(seed ^ hash(i as u64 + 1));
                let anchor =
                    spec.ticks(anchor_price(spec.ticker)) + (contract_seed % 200) as i64 - 100;
                Book {
                    spec: spec.clone(),
                    seed: contract_seed,
                    rng: contract_seed,
                    anchor,
                    bid: anchor,
                    last: anchor,
                    volume: 0,
                    open: anchor,
                    high: anchor,
                    low: anchor,
                    secs: Vec::new(),
                }
            })
            .collect();
        Self {
            specs,
            books,
            start_sec: now.timestamp(),
        }
    }

    pub fn contracts(&self) -> &[ContractSpec] {
        &self.specs
    }

    /// Indexes of the contracts that quote (the active ones).
    pub fn quoting(&self) -> impl Iterator<Item = usize> + '_ {
        self.books
            .iter()
            .enumerate()
            .filter(|(_, b)| b.spec.active)
            .map(|(i, _)| i)
    }

    pub fn index_of(&self, contract_id: &str) -> Option<usize> {
        self.specs.iter().position(|s| &*s.id == contract_id)
    }

    /// One step of contract `i`'s walk: the bid moves at most one tick, a trade prints at the bid
    /// or the ask. Allocation-free.
    pub fn step(&mut self, i: usize, now: DateTime<Utc>) -> QuoteEvent {
        let b = &mut self.books[i];
        let r = splitmix(&mut b.rng);
        let mut delta = match r % 4 {
            0 => -1,
            1 => 1,
            _ => 0,
        };
        // Pull back toward the anchor once far away, so a long benchmark run stays plausible.
        let dev = b.bid - b.anchor;
        if dev.abs() > 400 && (r >> 8).is_multiple_of(4) {
            delta = -dev.signum();
        }
        b.bid += delta;
        let buyer = (r >> 16) & 1 == 1;
        let last = if buyer { b.bid + 1 } else { b.bid };
        let size = 1 + ((r >> 20) & 3) as i64;
        let mut changed = QuoteChange::VOLUME;
        if delta != 0 {
            changed |= QuoteChange::BID | QuoteChange::ASK;
        }
        let aggressor = if buyer {
            OrderSide::Bid
        } else {
            OrderSide::Ask
        };
        Self::trade(b, self.start_sec, last, size, now, changed, aggressor)
    }

    /// The current state of an active contract as one full quote (`changed` = all), without
    /// moving it: what a new quote subscriber gets first.
    pub fn snapshot(&self, contract_id: &str, now: DateTime<Utc>) -> Option<QuoteEvent> {
        let b = self
            .books
            .iter()
            .find(|b| b.spec.active && &*b.spec.id == contract_id)?;
        let tick = b.spec.tick_size;
        Some(QuoteEvent {
            contract_id: b.spec.id.clone(),
            symbol_id: b.spec.symbol_id.clone(),
            bid: b.bid as f64 * tick,
            ask: (b.bid + 1) as f64 * tick,
            last: b.last as f64 * tick,
            last_size: 0,
            aggressor: OrderSide::Bid,
            volume: b.volume,
            open: b.open as f64 * tick,
            high: b.high as f64 * tick,
            low: b.low as f64 * tick,
            time: now,
            changed: QuoteChange::ALL,
        })
    }

    /// Moves contract `i` so the bid is `price` (snapped to the grid), the ask one tick above and
    /// the last trade at the bid.
    pub fn set_price(&mut self, i: usize, price: f64, now: DateTime<Utc>) -> QuoteEvent {
        let b = &mut self.books[i];
        b.bid = b.spec.ticks(price);
        let last = b.bid;
        Self::trade(
            b,
            self.start_sec,
            last,
            1,
            now,
            QuoteChange::BID | QuoteChange::ASK,
            OrderSide::Ask,
        )
    }

    fn trade(
        b: &mut Book,
        start_sec: i64,
        last: i64,
        size: i64,
        now: DateTime<Utc>,
        mut changed: QuoteChange,
        aggressor: OrderSide,
    ) -> QuoteEvent {
        if last != b.last {
            changed |= QuoteChange::LAST;
        }
        if b.volume == 0 {
            // The first trade of the run opens the session.
            b.open = last;
            b.high = last;
            b.low = last;
            changed = QuoteChange::ALL;
        }
        if last > b.high {
            b.high = last;
            changed |= QuoteChange::HIGH;
        }
        if last < b.low {
            b.low = last;
            changed |= QuoteChange::LOW;
        }
        b.last = last;
        b.volume += size;
        Self::record(b, start_sec, now.timestamp(), last, size);
        let tick = b.spec.tick_size;
        QuoteEvent {
            contract_id: b.spec.id.clone(),
            symbol_id: b.spec.symbol_id.clone(),
            bid: b.bid as f64 * tick,
            ask: (b.bid + 1) as f64 * tick,
            last: last as f64 * tick,
            last_size: size,
            aggressor,
            volume: b.volume,
            open: b.open as f64 * tick,
            high: b.high as f64 * tick,
            low: b.low as f64 * tick,
            time: now,
            changed,
        }
    }

    fn record(b: &mut Book, start_sec: i64, sec: i64, price: i64, size: i64) {
        let Ok(idx) = usize::try_from(sec - start_sec) else {
            return;
        };
        if b.secs.len() <= idx {
            b.secs.resize(idx + 1, SecBar::default());
        }
        let bar = &mut b.secs[idx];
        let p = price as i32;
        if bar.n == 0 {
            *bar = SecBar {
                o: p,
                h: p,
                l: p,
                c: p,
                v: 0,
                n: 0,
            };
        }
        bar.h = bar.h.max(p);
        bar.l = bar.l.min(p);
        bar.c = p;
        bar.v += size as u32;
        bar.n += 1;
    }

    /// The synthetic price before the start: smooth value noise over several periods plus a
    /// one-tick jitter, shifted so it meets the anchor at the start. A pure function of the seed
    /// and the second, so every query sees the same history.
    fn synthetic(&self, b: &Book, sec: i64) -> i64 {
        let noise = |s: i64| -> f64 {
            let mut sum = 0.0;
            for (k, &(period, amp)) in OCTAVES.iter().enumerate() {
                let cell = s.div_euclid(period);
                let frac = s.rem_euclid(period) as f64 / period as f64;
                let key = b.seed ^ ((k as u64) << 56);
                let a = unit(key ^ hash(cell as u64));
                let c = unit(key ^ hash(cell as u64 + 1));
                sum += (a + (c - a) * frac) * amp;
            }
            sum + (hash(b.seed ^ s as u64) % 3) as f64 - 1.0
        };
        b.anchor + (noise(sec) - noise(self.start_sec)).round() as i64
    }

    /// Bars newest first, built from the synthetic history before the start and the recorded
    /// seconds after it, so every quote the simulator sent lies inside its bar.
    ///
    /// # Errors
    /// The `History/retrieveBars` error for an unknown contract or an invalid unit, unit number or
    /// limit.
    pub fn bars(&self, q: &BarsQuery<'_>, now: DateTime<Utc>) -> Result<Vec<Bar>, BarsError> {
        let Some(i) = self.index_of(q.contract_id) else {
            return Err(BarsError::ContractNotFound);
        };
        let unit = match q.unit {
            BarUnit::Second
            | BarUnit::Minute
            | BarUnit::Hour
            | BarUnit::Day
            | BarUnit::Week
            | BarUnit::Month => q.unit,
            _ => return Err(BarsError::UnitInvalid),
        };
        if q.unit_number < 1 {
            return Err(BarsError::UnitNumberInvalid);
        }
        if !(1..=20_000).contains(&q.limit) {
            return Err(BarsError::LimitInvalid);
        }
        let b = &self.books[i];
        let n = i64::from(q.unit_number);
        let now_sec = now.timestamp();
        let (start, end) = (q.start.timestamp(), q.end.timestamp().min(now_sec + 1));
        let mut bars = Vec::new();
        if end <= start {
            return Ok(bars);
        }
        let mut t = bucket_start(unit, n, end - 1);
        while t >= start && bars.len() < q.limit as usize {
            let next = bucket_end(unit, n, t);
            // A bucket the window's end cuts is partial, and holds only the seconds before the
            // end: a client that backfills up to a cut and takes live trades from it then
            // counts every trade once.
            if (next <= end || q.include_partial)
                && let Some(bar) = self.bar(b, t, next.min(end))
            {
                bars.push(bar);
            }
            t = bucket_start(unit, n, t - 1);
        }
        Ok(bars)
    }

    /// The bar over seconds `[from, to)`, or `None` when nothing traded in it.
    fn bar(&self, b: &Book, from: i64, to: i64) -> Option<Bar> {
        let mut acc: Option<(i64, i64, i64, i64, i64)> = None;
        let mut add = |o: i64, h: i64, l: i64, c: i64, v: i64| {
            acc = Some(match acc {
                None => (o, h, l, c, v),
                Some((ao, ah, al, _, av)) => (ao, ah.max(h), al.min(l), c, av + v),
            });
        };
        let synth_to = to.min(self.start_sec);
        if from < synth_to {
            // Sample long buckets sparsely so a 20,000-bar request stays cheap; the last sample
            // is the bucket's final second, so a bar closes where the next one opens.
            let step = ((synth_to - from) / 60).max(1);
            let mut s = from;
            while s < synth_to {
                let p = self.synthetic(b, s);
                add(
                    p,
                    p,
                    p,
                    p,
                    (1 + hash(b.seed ^ 0x5eed ^ s as u64) % 8) as i64 * step,
                );
                s = if s + step >= synth_to && s != synth_to - 1 {
                    synth_to - 1
                } else {
                    s + step
                };
            }
        }
        let live_from = usize::try_from(from.max(self.start_sec) - self.start_sec).unwrap_or(0);
        let live_to = usize::try_from(to - self.start_sec)
            .unwrap_or(0)
            .min(b.secs.len());
        for s in b.secs.get(live_from..live_to).unwrap_or(&[]) {
            if s.n > 0 {
                add(s.o.into(), s.h.into(), s.l.into(), s.c.into(), s.v.into());
            }
        }
        let (o, h, l, c, v) = acc?;
        let tick = b.spec.tick_size;
        Some(Bar {
            t: Timestamp(Utc.timestamp_opt(from, 0).single()?),
            o: o as f64 * tick,
            h: h as f64 * tick,
            l: l as f64 * tick,
            c: c as f64 * tick,
            v,
        })
    }
}

impl MarketView for Market {
    fn spec(&self, contract_id: &str) -> Option<&ContractSpec> {
        self.specs.iter().find(|s| &*s.id == contract_id)
    }

    fn touch(&self, contract_id: &str) -> Option<Touch> {
        let b = self
            .books
            .iter()
            .find(|b| &*b.spec.id == contract_id && b.spec.active)?;
        let tick = b.spec.tick_size;
        Some(Touch {
            bid: b.bid as f64 * tick,
            ask: (b.bid + 1) as f64 * tick,
            last: b.last as f64 * tick,
        })
    }
}

/// Weeks start on Monday; the Unix epoch was a Thursday, so Monday 1970-01-05 is the origin.
const FIRST_MONDAY: i64 = 4 * 86_400;

fn fixed_len(unit: BarUnit) -> Option<i64> {
    match unit {
        BarUnit::Second => Some(1),
        BarUnit::Minute => Some(60),
        BarUnit::Hour => Some(3600),
        BarUnit::Day => Some(86_400),
        BarUnit::Week => Some(7 * 86_400),
        _ => None,
    }
}

/// The start of the `n`-unit bucket holding second `t` (UTC; months by calendar).
fn bucket_start(unit: BarUnit, n: i64, t: i64) -> i64 {
    let origin = if unit == BarUnit::Week {
        FIRST_MONDAY
    } else {
        0
    };
    if let Some(len) = fixed_len(unit) {
        let len = len * n;
        return (t - origin).div_euclid(len) * len + origin;
    }
    let date = Utc.timestamp_opt(t, 0).single().unwrap_or_default();
    let months = i64::from(date.year()) * 12 + i64::from(date.month0());
    month_start(months - months.rem_euclid(n))
}

fn bucket_end(unit: BarUnit, n: i64, start: i64) -> i64 {
    if let Some(len) = fixed_len(unit) {
        return start + len * n;
    }
    let date = Utc.timestamp_opt(start, 0).single().unwrap_or_default();
    month_start(i64::from(date.year()) * 12 + i64::from(date.month0()) + n)
}

fn month_start(months: i64) -> i64 {
    let (year, month0) = (months.div_euclid(12) as i32, months.rem_euclid(12) as u32);
    Utc.with_ymd_and_hms(year, month0 + 1, 1, 0, 0, 0)
        .single()
        .map_or(0, |d| d.timestamp())
}

#[cfg(test)]
#[path = "market_tests.rs"]
mod tests;
