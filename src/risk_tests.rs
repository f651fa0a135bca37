//! Unit tests of the risk guard: each limit, the exit rule, the daily tally across restarts and days.

use super::*;
use chrono::TimeZone;

fn limits() -> RiskLimits {
    RiskLimits {
        max_order_size: 3,
        max_position: 4,
        daily_loss_limit: 500.0,
        max_orders_per_minute: 5,
    }
}

/// An order of `size` on contract `C`: a buy for a positive `side`, a sell otherwise.
fn order(side: i32, size: u32) -> ProposedOrder<()> {
    ProposedOrder {
        strategy: "s".into(),
        contract_id: "C".into(),
        side: if side > 0 { Side::Buy } else { Side::Sell },
        size,
        payload: (),
    }
}

fn guard() -> RiskGuard {
    RiskGuard::open(limits(), None, Utc::now()).unwrap()
}

/// Wednesday July 15 2026, 10:00 CDT: a weekday, so the next day is the next trading day.
fn wednesday() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 7, 15, 15, 0, 0).unwrap()
}

fn kind(r: Result<RiskApproved<()>, RiskRefused>) -> Option<RefusalKind> {
    r.err().map(|e| e.kind())
}

#[test]
fn order_size_is_capped_globally_and_by_the_strategy() {
    let mut g = guard();
    let now = Instant::now();
    let none = StrategyLimits::default();
    assert_eq!(
        kind(g.check(order(1, 4), none, Exposure::default(), 0.0, now)),
        Some(RefusalKind::OrderSize)
    );
    assert_eq!(
        kind(g.check(order(1, 0), none, Exposure::default(), 0.0, now)),
        Some(RefusalKind::OrderSize)
    );
    let tight = StrategyLimits {
        max_order_size: Some(1),
        ..none
    };
    assert_eq!(
        kind(g.check(order(1, 2), tight, Exposure::default(), 0.0, now)),
        Some(RefusalKind::OrderSize)
    );
    // A strategy cannot loosen the global limit.
    let loose = StrategyLimits {
        max_order_size: Some(100),
        ..none
    };
    assert_eq!(
        kind(g.check(order(1, 4), loose, Exposure::default(), 0.0, now)),
        Some(RefusalKind::OrderSize)
    );
    assert!(
        g.check(order(1, 3), loose, Exposure::default(), 0.0, now)
            .is_ok()
    );
}

#[test]
fn position_limit_counts_working_orders_and_lets_exits_through() {
    let mut g = guard();
    let now = Instant::now();
    let none = StrategyLimits::default();
    let held = Exposure {
        account_position: 3,
        account_working_buy: 1,
        ..Exposure::default()
    };
    let e = g.check(order(1, 1), none, held, 0.0, now).unwrap_err();
    assert_eq!(e.kind(), RefusalKind::Position);
    assert!(e.to_string().contains("max position 4"), "{e}");
    assert!(
        g.check(order(-1, 3), none, held, 0.0, now).is_ok(),
        "selling reduces the position"
    );
    let strategy = StrategyLimits {
        max_position: Some(1),
        ..none
    };
    let mine = Exposure {
        strategy_position: 1,
        ..Exposure::default()
    };
    assert_eq!(
        kind(g.check(order(1, 1), strategy, mine, 0.0, now)),
        Some(RefusalKind::Position)
    );
}

#[test]
fn daily_loss_counts_open_pnl_and_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    // A weekday: from a Saturday, "tomorrow" is still Monday's trading day.
    let now = wednesday();
    let mut g = RiskGuard::open(limits(), Some(dir.path()), now).unwrap();
    g.record_realized(-300.0, now).unwrap();
    let none = StrategyLimits::default();
    assert!(
        g.check(
            order(1, 1),
            none,
            Exposure::default(),
            -100.0,
            Instant::now()
        )
        .is_ok()
    );
    assert!(!g.loss_limit_reached(-199.0));
    assert!(g.loss_limit_reached(-200.0));
    let e = g
        .check(
            order(1, 1),
            none,
            Exposure::default(),
            -200.0,
            Instant::now(),
        )
        .unwrap_err();
    assert_eq!(e.kind(), RefusalKind::DailyLoss);
    drop(g);
    let g = RiskGuard::open(limits(), Some(dir.path()), now).unwrap();
    assert_eq!(g.realized_pnl(), -300.0, "a restart keeps the day's losses");
    let tomorrow = now + chrono::Duration::days(1);
    let g = RiskGuard::open(limits(), Some(dir.path()), tomorrow).unwrap();
    assert_eq!(g.realized_pnl(), 0.0, "a new trading day starts from zero");
}

#[test]
fn halt_refuses_everything_and_persists() {
    let dir = tempfile::tempdir().unwrap();
    let mut g = RiskGuard::open(limits(), Some(dir.path()), wednesday()).unwrap();
    g.halt("operator").unwrap();
    let e = g
        .check(
            order(1, 1),
            StrategyLimits::default(),
            Exposure::default(),
            0.0,
            Instant::now(),
        )
        .unwrap_err();
    assert_eq!(e, RiskRefused::Halted("operator".into()));
    assert_eq!(e.to_string(), "trading is halted: operator");
    let mut g = RiskGuard::open(limits(), Some(dir.path()), wednesday()).unwrap();
    assert_eq!(g.halted(), Some("operator"));
    let tomorrow = RiskGuard::open(
        limits(),
        Some(dir.path()),
        wednesday() + chrono::Duration::days(1),
    )
    .unwrap();
    assert_eq!(tomorrow.halted(), None, "a new trading day lifts the halt");
    g.resume().unwrap();
    assert!(
        g.check(
            order(1, 1),
            StrategyLimits::default(),
            Exposure::default(),
            0.0,
            Instant::now()
        )
        .is_ok()
    );
}

#[test]
fn exits_pass_when_halted_but_cannot_grow_a_position() {
    let mut g = guard();
    g.halt("test").unwrap();
    assert!(g.check_exit(order(-1, 2), 2).is_ok());
    assert!(g.check_exit(order(1, 1), -3).is_ok());
    assert!(
        g.check_exit(order(-1, 3), 2).is_err(),
        "would flip the position"
    );
    assert!(g.check_exit(order(1, 1), 2).is_err(), "would grow it");
    assert!(g.check_exit(order(-1, 1), 0).is_err());
}

#[test]
fn order_rate_is_a_rolling_minute() {
    let mut g = guard();
    let t0 = Instant::now();
    let none = StrategyLimits::default();
    for _ in 0..5 {
        assert!(
            g.check(order(1, 1), none, Exposure::default(), 0.0, t0)
                .is_ok()
        );
    }
    assert_eq!(
        kind(g.check(order(1, 1), none, Exposure::default(), 0.0, t0)),
        Some(RefusalKind::OrderRate)
    );
    assert!(
        g.check(
            order(1, 1),
            none,
            Exposure::default(),
            0.0,
            t0 + Duration::from_secs(60)
        )
        .is_ok()
    );
}

#[test]
fn trading_day_rolls_at_five_pm_chicago() {
    // 21:59 UTC in July is 16:59 CDT: still Monday's session.
    let before = Utc.with_ymd_and_hms(2026, 7, 6, 21, 59, 0).unwrap();
    let after = Utc.with_ymd_and_hms(2026, 7, 6, 22, 0, 0).unwrap();
    assert_eq!(
        trading_day(before),
        NaiveDate::from_ymd_opt(2026, 7, 6).unwrap()
    );
    assert_eq!(
        trading_day(after),
        NaiveDate::from_ymd_opt(2026, 7, 7).unwrap()
    );
    // In January (CST) the roll is at 23:00 UTC.
    let winter = Utc.with_ymd_and_hms(2026, 1, 6, 22, 30, 0).unwrap();
    assert_eq!(
        trading_day(winter),
        NaiveDate::from_ymd_opt(2026, 1, 6).unwrap()
    );
}

/// The weekend belongs to Monday's trading day: Friday's loss is forgotten at Friday 17:00,
/// and Sunday's open (the same trading day) does not roll again.
#[test]
fn the_daily_loss_rolls_once_over_the_weekend() {
    let mut g = guard();
    let t = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc);
    g.record_realized(-100.0, t("2026-03-06T21:00:00Z"))
        .unwrap(); // Fri 15:00 CST
    g.record_realized(0.0, t("2026-03-06T22:30:00Z")).unwrap(); // Fri 16:30: still Friday
    assert_eq!(g.realized_pnl(), -100.0);
    g.record_realized(-10.0, t("2026-03-07T12:00:00Z")).unwrap(); // Saturday: Monday's day
    assert_eq!(g.realized_pnl(), -10.0);
    g.record_realized(-5.0, t("2026-03-08T22:30:00Z")).unwrap(); // Sun 17:30 CDT: same day
    assert_eq!(g.realized_pnl(), -15.0);
    g.record_realized(0.0, t("2026-03-09T22:00:00Z")).unwrap(); // Mon 17:00 CDT: Tuesday
    assert_eq!(g.realized_pnl(), 0.0);
}

#[test]
fn a_modify_that_grows_an_order_is_checked_like_a_new_order_of_the_growth() {
    let mut g = guard();
    let now = Instant::now();
    let none = StrategyLimits::default();
    let held = Exposure {
        account_position: 2,
        account_working_buy: 2,
        ..Exposure::default()
    };
    // Growing the working buy by 1 would allow a position of 5 (max 4).
    let e = g
        .check_modify(order(1, 1), none, held, 0.0, now)
        .unwrap_err();
    assert_eq!(
        e,
        RiskRefused::AccountPosition {
            contract_id: "C".into(),
            worst: 5,
            max: 4
        }
    );
    assert_eq!(
        kind(g.check_modify(order(1, 4), none, Exposure::default(), 0.0, now)),
        Some(RefusalKind::OrderSize),
        "growth beyond the max order size"
    );
    // A new price or a smaller size adds nothing: approved, and not counted as an order.
    for _ in 0..20 {
        assert!(g.check_modify(order(1, 0), none, held, 0.0, now).is_ok());
    }
    for _ in 0..5 {
        assert!(
            g.check(order(-1, 1), none, Exposure::default(), 0.0, now)
                .is_ok()
        );
    }
    g.halt("operator").unwrap();
    assert_eq!(
        kind(g.check_modify(order(1, 0), none, held, 0.0, now)),
        Some(RefusalKind::Halted)
    );
}

#[test]
fn an_approval_keeps_its_checked_fields_when_its_payload_is_mapped() {
    let mut g = guard();
    let approved = g
        .check(
            order(-1, 2),
            StrategyLimits::default(),
            Exposure::default(),
            0.0,
            Instant::now(),
        )
        .unwrap()
        .map(|()| "wire request");
    assert_eq!(
        (approved.contract_id(), approved.side(), approved.size()),
        ("C", Side::Sell, 2)
    );
    assert_eq!(*approved.payload(), "wire request");
}

#[test]
fn an_unreadable_state_file_is_a_typed_error_naming_the_path() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("risk.json"), "{not json").unwrap();
    let e = RiskGuard::open(limits(), Some(dir.path()), Utc::now()).unwrap_err();
    assert!(matches!(e, RiskStateError::Parse { .. }), "{e:?}");
    assert!(e.to_string().contains("risk.json"), "{e}");
}
