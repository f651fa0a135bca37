//! Unit tests of the simulator's market: the quote walk, its bar history and partial bars, contract listing.

use super::*;
use chrono::Duration as ChronoDuration;

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

#[test]
fn walk_is_deterministic_per_seed_and_stays_on_the_grid() {
    let now = at("2025-10-01T14:00:00Z");
    let (mut a, mut b) = (Market::new(7, now), Market::new(7, now));
    for _ in 0..1000 {
        let (qa, qb) = (a.step(0, now), b.step(0, now));
        assert_eq!((qa.bid, qa.last), (qb.bid, qb.last));
        assert_eq!(qa.ask - qa.bid, 0.25);
        assert!(a.specs[0].on_grid(qa.last));
    }
}

#[test]
fn bars_are_newest_first_and_contain_the_live_quotes() {
    let start = at("2025-10-01T14:00:00Z");
    let mut m = Market::new(1, start);
    let id = m.specs[0].id.clone();
    let mut lasts = Vec::new();
    for s in 0..180 {
        let q = m.step(0, start + ChronoDuration::seconds(s));
        lasts.push((s, q.last));
    }
    let now = start + ChronoDuration::seconds(180);
    let q = BarsQuery {
        contract_id: &id,
        unit: BarUnit::Minute,
        unit_number: 1,
        start: start - ChronoDuration::hours(1),
        end: now,
        limit: 100,
        include_partial: false,
    };
    let bars = m.bars(&q, now).unwrap();
    assert_eq!(bars.len(), 63);
    assert!(bars.windows(2).all(|w| w[0].t > w[1].t));
    for (s, last) in lasts {
        let t = start + ChronoDuration::seconds(s);
        let bar = bars
            .iter()
            .find(|b| b.t.0 <= t && t < b.t.0 + ChronoDuration::minutes(1))
            .unwrap();
        assert!(bar.l <= last && last <= bar.h, "{last} outside {bar:?}");
    }
    for bar in &bars {
        for p in [bar.o, bar.h, bar.l, bar.c] {
            assert!(m.specs[0].on_grid(p));
        }
    }
}

#[test]
fn a_partial_bar_holds_exactly_the_trades_before_the_end_of_the_window() {
    let start = at("2025-10-01T14:00:00Z");
    let mut m = Market::new(3, start);
    let id = m.specs[0].id.clone();
    let mut trades = Vec::new();
    for s in 0..90 {
        let q = m.step(0, start + ChronoDuration::seconds(s));
        trades.push((s, q.last, q.last_size));
    }
    let cut = start + ChronoDuration::seconds(75);
    let q = BarsQuery {
        contract_id: &id,
        unit: BarUnit::Minute,
        unit_number: 1,
        start: start - ChronoDuration::minutes(1),
        end: cut,
        limit: 10,
        include_partial: true,
    };
    let now = start + ChronoDuration::seconds(90);
    let bars = m.bars(&q, now).unwrap();
    let partial = &bars[0];
    assert_eq!(partial.t.0, start + ChronoDuration::minutes(1));
    let before: Vec<_> = trades.iter().filter(|t| (60..75).contains(&t.0)).collect();
    assert_eq!(partial.v, before.iter().map(|t| t.2).sum::<i64>());
    assert_eq!(partial.o, before[0].1);
    assert_eq!(partial.c, before.last().unwrap().1);
    let without = m
        .bars(
            &BarsQuery {
                include_partial: false,
                ..q
            },
            now,
        )
        .unwrap();
    assert_eq!(
        without[0].t.0, start,
        "the cut bucket is partial, so left out"
    );
}

#[test]
fn bars_validate_unit_number_and_limit() {
    let now = at("2025-10-01T14:00:00Z");
    let m = Market::new(1, now);
    let id = m.specs[0].id.clone();
    let mut q = BarsQuery {
        contract_id: &id,
        unit: BarUnit::Day,
        unit_number: 1,
        start: now - ChronoDuration::days(30),
        end: now,
        limit: 5,
        include_partial: true,
    };
    assert_eq!(m.bars(&q, now).unwrap().len(), 5);
    q.limit = 0;
    assert_eq!(m.bars(&q, now), Err(BarsError::LimitInvalid));
    q.limit = 5;
    q.unit_number = 0;
    assert_eq!(m.bars(&q, now), Err(BarsError::UnitNumberInvalid));
    q.unit_number = 1;
    q.unit = BarUnit::Tick;
    assert_eq!(m.bars(&q, now), Err(BarsError::UnitInvalid));
    q.unit = BarUnit::Month;
    assert_eq!(m.bars(&q, now).unwrap()[0].t.0, at("2025-10-01T00:00:00Z"));
    q.contract_id = "CON.F.US.NOPE.Z25";
    assert_eq!(m.bars(&q, now), Err(BarsError::ContractNotFound));
}
