//! A notification's words and its body for each kind of target: one line of text for people,
//! the event itself for generic JSON receivers; secrets redacted from both.

use std::fmt::Write as _;
use std::time::Duration;

use serde_json::{Value, json};

use super::target::TargetKind;
use crate::engine::EngineEvent;
use crate::money::{Money, Price};
use crate::secret::Secret;

/// One notification, ready for any target.
#[derive(Debug, Clone, PartialEq)]
pub struct Notice {
    /// `fill`, `halted`, `feed_down`, ... (the event's kind).
    pub kind: &'static str,
    pub text: String,
    /// The event as JSON, for generic receivers.
    pub data: Value,
}

impl Notice {
    pub fn new(kind: &'static str, text: String, data: Value) -> Self {
        Self { kind, text, data }
    }
}

/// The words for an event, one line.
pub fn text(event: &EngineEvent) -> String {
    match event {
        EngineEvent::Fill(f) => {
            let who = if f.strategy.is_empty() {
                "(not a moontick order)".to_string()
            } else {
                f.strategy.clone()
            };
            let mut s = format!(
                "moontick fill: {who} {} {} {} @ {}",
                f.side,
                f.size,
                f.symbol,
                Price::new(f.price, f.tick_size)
            );
            if let Some(p) = f.pnl {
                let _ = write!(s, ", P&L {}", Money(p));
            }
            let _ = write!(s, ", fees {}", Money(f.fees + f.commissions));
            if let Some(tag) = &f.tag {
                let _ = write!(s, " [{tag}]");
            }
            s
        }
        EngineEvent::Halted { reason } => format!(
            "moontick HALTED: {reason}. New orders are refused, working orders cancelled and \
             positions closed until POST /resume or the next trading day"
        ),
        EngineEvent::Resumed { was: Some(was) } => {
            format!("moontick resumed trading (was halted: {was})")
        }
        EngineEvent::Resumed { was: None } => {
            "moontick: resume requested (it was not halted)".into()
        }
        EngineEvent::Strategy {
            name,
            state,
            detail,
        } => {
            let is = match *state {
                "crashed" => "crashed".to_string(),
                "running" => "is running again".to_string(),
                other => format!("is {other}"),
            };
            let mut s = format!("moontick strategy {name} {is}");
            if let Some(d) = detail {
                let _ = write!(s, ": {d}");
            }
            s
        }
        EngineEvent::ReloadFailed { strategy, error } => format!(
            "moontick strategy {strategy} did not load (the last good version keeps running): {error}"
        ),
        EngineEvent::FeedDown { hub, state } => format!("moontick: {hub} feed down ({state})"),
        EngineEvent::FeedUp { hub } => format!("moontick: {hub} feed is back"),
        EngineEvent::SessionClosed(s) => {
            let mut t = format!(
                "moontick trading day {} closed: {} fill(s), net P&L {} (fees {}), balance {}",
                s.day,
                s.fills,
                Money(s.net_pnl),
                Money(s.fees),
                Money(s.balance)
            );
            for st in &s.strategies {
                let _ = write!(
                    t,
                    "; {} {} fill(s) {}",
                    st.strategy,
                    st.fills,
                    Money(st.net_pnl)
                );
            }
            t
        }
    }
}

/// `1 min 05 s`, `45 s`.
pub fn duration(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 60 {
        format!("{} min {:02} s", s / 60, s % 60)
    } else {
        format!("{s} s")
    }
}

/// Replaces every secret in `s` with `***`.
pub fn redact(mut s: String, secrets: &[Secret]) -> String {
    for secret in secrets.iter().filter(|x| x.expose().len() >= 4) {
        if s.contains(secret.expose()) {
            s = s.replace(secret.expose(), "***");
        }
    }
    s
}

/// Discord allows 2000 characters, Telegram 4096; cut on a character boundary.
fn cut(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut t: String = s.chars().take(max - 1).collect();
    t.push('…');
    t
}

/// Slack reads `<...>` as links and mentions (`<!channel>`): strategy text must not ping.
fn slack_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The JSON body a target of `kind` takes, as text with every secret redacted.
pub fn body(kind: &TargetKind, notice: &Notice, secrets: &[Secret]) -> String {
    let v = match kind {
        // No mention in a tag or an error may ping anyone.
        TargetKind::Discord => json!({
            "content": cut(&notice.text, 2000),
            "allowed_mentions": { "parse": [] },
        }),
        TargetKind::Slack => json!({ "text": slack_escape(&notice.text) }),
        TargetKind::Telegram { chat_id } => json!({
            "chat_id": chat_id,
            "text": cut(&notice.text, 4096),
            "disable_web_page_preview": true,
        }),
        TargetKind::Generic => json!({
            "source": "moontick",
            "kind": notice.kind,
            "text": notice.text,
            "event": notice.data,
        }),
    };
    redact(v.to_string(), secrets)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{FillRecord, SessionSummary, StrategyTally};
    use chrono::{NaiveDate, TimeZone, Utc};

    fn fill() -> EngineEvent {
        EngineEvent::Fill(FillRecord {
            time: Utc.with_ymd_and_hms(2026, 11, 27, 15, 30, 3).unwrap(),
            strategy: "breakout".into(),
            account_id: 10001,
            contract: "CON.F.US.MNQ.Z25".into(),
            symbol: "MNQ".into(),
            side: "sell",
            size: 1,
            price: 21000.250000000004,
            tick_size: 0.25,
            pnl: Some(12.5),
            fees: 0.37,
            commissions: 0.0,
            order_id: 99,
            fill_id: 7,
            tag: Some("<!channel> @everyone".into()),
        })
    }

    #[test]
    fn each_event_reads_as_one_line() {
        assert_eq!(
            text(&fill()),
            "moontick fill: breakout sell 1 MNQ @ 21000.25, P&L 12.50, fees 0.37 [<!channel> @everyone]"
        );
        let summary = EngineEvent::SessionClosed(SessionSummary {
            day: NaiveDate::from_ymd_opt(2026, 11, 27).unwrap(),
            fills: 3,
            net_pnl: 20.0,
            fees: 2.5,
            balance: 50_020.0,
            strategies: vec![StrategyTally {
                strategy: "breakout".into(),
                fills: 2,
                net_pnl: 15.0,
            }],
        });
        assert_eq!(
            text(&summary),
            "moontick trading day 2026-11-27 closed: 3 fill(s), net P&L 20.00 (fees 2.50), \
             balance 50020.00; breakout 2 fill(s) 15.00"
        );
        assert_eq!(duration(Duration::from_secs(65)), "1 min 05 s");
    }

    #[test]
    fn each_kind_gets_its_own_body_and_nobody_is_pinged() {
        let n = Notice::new("fill", text(&fill()), serde_json::to_value(fill()).unwrap());
        let discord: Value = serde_json::from_str(&body(&TargetKind::Discord, &n, &[])).unwrap();
        assert_eq!(discord["allowed_mentions"]["parse"], json!([]));
        assert!(
            discord["content"]
                .as_str()
                .unwrap()
                .starts_with("moontick fill")
        );
        let slack: Value = serde_json::from_str(&body(&TargetKind::Slack, &n, &[])).unwrap();
        assert!(
            slack["text"]
                .as_str()
                .unwrap()
                .contains("[&lt;!channel&gt; @everyone]")
        );
        let tg = TargetKind::Telegram {
            chat_id: "-10042".into(),
        };
        let telegram: Value = serde_json::from_str(&body(&tg, &n, &[])).unwrap();
        assert_eq!(telegram["chat_id"], "-10042");
        let generic: Value = serde_json::from_str(&body(&TargetKind::Generic, &n, &[])).unwrap();
        assert_eq!(generic["kind"], "fill");
        assert_eq!(generic["event"]["type"], "fill");
        assert_eq!(generic["event"]["order_id"], 99);
    }

    #[test]
    fn secrets_never_leave_in_a_body() {
        let n = Notice::new(
            "halted",
            "moontick HALTED: pasted hunter2-secret by mistake".into(),
            json!({"reason": "hunter2-secret"}),
        );
        let secrets = [Secret::new("hunter2-secret")];
        for kind in [TargetKind::Discord, TargetKind::Slack, TargetKind::Generic] {
            let b = body(&kind, &n, &secrets);
            assert!(!b.contains("hunter2"), "{b}");
            assert!(b.contains("***"));
        }
        assert_eq!(cut("abcdef", 4), "abc…");
    }
}
