//! `bot.at` and `bot.exchange_time` on a stepped engine clock: a daily exchange-time timer fires
//! at its Chicago wall-clock instant across both 2026 daylight-saving switches, not a second
//! early, once after a jump over missed days, and sees the session it fires in.

mod common;

use std::sync::Arc;

use common::fixture::*;
use moontick::script::{BotCall, Host, ManualClock};

const AT: &str = r#"
local M = { symbols = { 'MNQ' } }
local n, q = 0, 0
function M.on_start()
  bot.at('15:55', function()
    n = n + 1
    local t = bot.exchange_time()
    bot.buy{ size = 1, tag = string.format('at%d %s %02d:%02d:%02d w%d %s %s', n, t.trading_day,
      t.hour, t.min, t.sec, t.wday, t.session, tostring(t.minutes_to_close)) }
  end)
end
function M.on_quote() q = q + 1; bot.buy{ size = 1, tag = 'q' .. q } end
return M
"#;

fn ms(utc: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(utc)
        .unwrap()
        .timestamp_millis()
}

struct Stepper {
    fx: Fixture,
    clock: Arc<ManualClock>,
    host: Host,
    quotes: u32,
}

impl Stepper {
    /// Moves the clock, then has the strategy handle two quotes: once the second is handled,
    /// the runner has checked its timers against the new time at least once.
    fn step(&mut self, utc: &str) {
        self.clock.set_ms(ms(utc));
        for _ in 0..2 {
            self.quotes += 1;
            self.host.dispatch(quote("CON.F.US.MNQ.H26", 1.0));
            let tag = format!("q{}", self.quotes);
            wait_until(&tag, || self.fx.has_tag(&tag));
        }
    }

    fn fired(&self) -> Vec<String> {
        self.fx
            .tags()
            .into_iter()
            .filter(|t| t.starts_with("at"))
            .collect()
    }

    /// Steps to `utc` and waits for the `n`th firing, which must read `want`.
    fn fires(&mut self, utc: &str, want: &str) {
        self.clock.set_ms(ms(utc));
        wait_until(want, || self.fired().iter().any(|t| t == want));
        self.step(utc);
        let n = want[2..]
            .split(' ')
            .next()
            .unwrap()
            .parse::<usize>()
            .unwrap();
        assert_eq!(self.fired().len(), n, "{:?}", self.fired());
    }

    fn quiet(&mut self, utc: &str, fired_so_far: usize) {
        self.step(utc);
        assert_eq!(
            self.fired().len(),
            fired_so_far,
            "fired early: {:?}",
            self.fired()
        );
    }
}

#[test]
fn bot_at_fires_at_chicago_wall_clock_time_across_both_switches() {
    let fx = Fixture::new();
    fx.write("at", AT);
    // Friday March 6, 15:54:59 CST.
    let clock = Arc::new(ManualClock::new(ms("2026-03-06T21:54:59Z")));
    let host = Host::start(fx.config(), fx.broker.clone(), clock.clone()).unwrap();
    let mut s = Stepper {
        fx,
        clock,
        host,
        quotes: 0,
    };
    s.quiet("2026-03-06T21:54:59Z", 0);
    s.fires("2026-03-06T21:55:00Z", "at1 2026-03-06 15:55:00 w6 open 5");
    // Saturday: the weekend belongs to Monday's trading day.
    s.fires(
        "2026-03-07T21:55:00Z",
        "at2 2026-03-09 15:55:00 w7 closed nil",
    );
    // Sunday March 8 is on CDT: 15:55 is 20:55 UTC, an hour earlier than on Saturday.
    s.quiet("2026-03-08T20:54:59Z", 2);
    s.fires(
        "2026-03-08T20:55:00Z",
        "at3 2026-03-09 15:55:00 w1 closed nil",
    );
    // A jump over months fires once, at the time it lands on, and skips what it missed.
    s.fires(
        "2026-10-31T20:55:00Z",
        "at4 2026-11-02 15:55:00 w7 closed nil",
    );
    // Sunday November 1 is on CST again: 20:55 UTC is 14:55, 21:55 UTC is 15:55.
    s.quiet("2026-11-01T20:55:00Z", 4);
    s.quiet("2026-11-01T21:54:59Z", 4);
    s.fires(
        "2026-11-01T21:55:00Z",
        "at5 2026-11-02 15:55:00 w1 closed nil",
    );
    // Monday: five minutes before the daily break.
    s.fires("2026-11-02T21:55:00Z", "at6 2026-11-02 15:55:00 w2 open 5");
    s.host.shutdown();
}

/// The shipped session guard flattens the account at 15:55 Chicago on a trading day, once, and
/// not at the same UTC time after the clocks change nor on a Saturday.
#[test]
fn the_shipped_session_guard_flattens_at_five_to_four_chicago() {
    let fx = Fixture::new();
    fx.write(
        "session_guard",
        include_str!("../strategies/session_guard.lua"),
    );
    // Friday October 30, 15:54:59 CDT.
    let clock = Arc::new(ManualClock::new(ms("2026-10-30T20:54:59Z")));
    let host = Host::start(fx.config(), fx.broker.clone(), clock.clone()).unwrap();
    let flattens = || {
        fx.broker
            .calls()
            .iter()
            .filter(|(_, c)| matches!(c, BotCall::FlattenAll))
            .count()
    };
    let settle = || std::thread::sleep(std::time::Duration::from_millis(1300));
    settle();
    assert_eq!(flattens(), 0, "not before 15:55");
    clock.set_ms(ms("2026-10-30T20:55:00Z"));
    wait_until("the 15:55 flatten", || flattens() == 1);
    // Saturday and Sunday 15:55: closed, nothing to flatten (Sunday is on CST already).
    clock.set_ms(ms("2026-10-31T20:55:00Z"));
    settle();
    clock.set_ms(ms("2026-11-01T21:55:00Z"));
    settle();
    // Monday November 2 (CST): 20:55 UTC is 14:55, too early; 21:55 UTC is 15:55.
    clock.set_ms(ms("2026-11-02T20:55:00Z"));
    settle();
    assert_eq!(flattens(), 1, "{:?}", fx.broker.calls());
    clock.set_ms(ms("2026-11-02T21:55:00Z"));
    wait_until("Monday's flatten", || flattens() == 2);
    assert_eq!(status(&host, "session_guard").errors, 0);
    host.shutdown();
}

/// A daily timer belongs to the version of the file that made it, as `bot.every` does.
#[test]
fn an_old_versions_daily_timer_dies_with_it() {
    let fx = Fixture::new();
    let src = |v: &str| {
        format!(
            "local M = {{ symbols = {{ 'MNQ' }} }}\nfunction M.on_start()\n  bot.buy{{ size = 1, tag = '{v}-start' }}\n  bot.at('15:55:00', function() bot.buy{{ size = 1, tag = '{v}-at' }} end)\nend\nreturn M\n"
        )
    };
    fx.write("t", &src("v1"));
    // Wednesday July 15, 15:54:59 CDT.
    let clock = Arc::new(ManualClock::new(ms("2026-07-15T20:54:59Z")));
    let host = Host::start(fx.config(), fx.broker.clone(), clock.clone()).unwrap();
    host.watch().unwrap();
    wait_until("v1 started", || fx.has_tag("v1-start"));
    fx.write("t", &src("v2"));
    wait_until("v2 started", || fx.has_tag("v2-start"));
    clock.set_ms(ms("2026-07-15T20:55:00Z"));
    wait_until("v2's timer fires", || fx.has_tag("v2-at"));
    std::thread::sleep(std::time::Duration::from_millis(1300));
    assert!(!fx.has_tag("v1-at"), "{:?}", fx.tags());
    host.shutdown();
}
