//! Notifications against a local receiver: each kind of target gets its own body; a 500 or a
//! 429 is retried (the 429 after its `Retry-After`); a hung receiver neither holds up the event
//! bus nor the other targets, and its queue stays within its bound; a feed down longer than the
//! delay is announced and its return too, a short drop is not; no token or secret is ever
//! logged or sent.

mod common;
mod receiver;

use std::time::Duration;

use moontick::engine::{EngineEvent, EventBus};
use moontick::notify::{EventSet, Notifier, NotifyConfig, NotifyOptions, Target, TargetKind};
use moontick::secret::Secret;
use receiver::{Answer, Receiver};
use serde_json::{Value, json};

fn options() -> NotifyOptions {
    NotifyOptions {
        backoff: moontick::backoff::Backoff {
            initial: Duration::from_millis(50),
            max: Duration::from_millis(200),
            jitter: 0.0,
        },
        feed_down_after: Duration::from_millis(300),
        ..NotifyOptions::default()
    }
}

fn config(targets: Vec<Target>, events: EventSet) -> NotifyConfig {
    NotifyConfig { targets, events }
}

async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !check().await {
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn halted(reason: &str) -> EngineEvent {
    EngineEvent::Halted {
        reason: reason.into(),
    }
}

fn start(
    config: &NotifyConfig,
    options: NotifyOptions,
    secrets: Vec<Secret>,
) -> (EventBus, Notifier) {
    common::logs();
    let bus = EventBus::default();
    let notifier = Notifier::start(config, options, secrets, bus.subscribe())
        .unwrap()
        .expect("a notifier with targets");
    (bus, notifier)
}

#[tokio::test]
async fn discord_slack_telegram_and_generic_each_get_their_own_body() {
    let rx = Receiver::start(vec![]).await;
    let targets = vec![
        Target::new(TargetKind::Discord, format!("{}/discord", rx.url), 1),
        Target::new(TargetKind::Slack, format!("{}/slack", rx.url), 2),
        Target::new(
            TargetKind::Telegram {
                chat_id: "-10042".into(),
            },
            format!("{}/telegram", rx.url),
            3,
        ),
        Target::new(TargetKind::Generic, format!("{}/generic", rx.url), 4),
    ];
    let (bus, notifier) = start(&config(targets, EventSet::all()), options(), vec![]);
    bus.send(halted("daily loss limit 1000.00 reached <!channel>"));

    let discord = &rx.wait_for("/discord", 1).await[0].body;
    assert!(
        discord["content"]
            .as_str()
            .unwrap()
            .starts_with("moontick HALTED: daily loss limit 1000.00 reached"),
        "{discord}"
    );
    assert_eq!(discord["allowed_mentions"], json!({"parse": []}));
    let slack = &rx.wait_for("/slack", 1).await[0].body;
    assert!(
        slack["text"].as_str().unwrap().contains("&lt;!channel&gt;"),
        "{slack}"
    );
    let telegram = &rx.wait_for("/telegram", 1).await[0].body;
    assert_eq!(telegram["chat_id"], "-10042");
    assert!(telegram["text"].as_str().unwrap().contains("HALTED"));
    let generic = &rx.wait_for("/generic", 1).await[0].body;
    assert_eq!(generic["source"], "moontick");
    assert_eq!(generic["kind"], "halted");
    assert_eq!(
        generic["event"],
        json!({"type": "halted", "reason": "daily loss limit 1000.00 reached <!channel>"})
    );
    notifier.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn notify_events_chooses_what_is_sent() {
    let rx = Receiver::start(vec![]).await;
    let targets = vec![Target::new(TargetKind::Generic, format!("{}/g", rx.url), 1)];
    let events = EventSet::parse("reloads").unwrap();
    let (bus, notifier) = start(&config(targets, events), options(), vec![]);
    bus.send(halted("not wanted"));
    bus.send(EngineEvent::ReloadFailed {
        strategy: "breakout".into(),
        error: "strategies/breakout.lua:3: unexpected symbol near 'end'".into(),
    });
    let got = rx.wait_for("/g", 1).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(rx.got().len(), 1, "only the reload error: {:?}", rx.got());
    assert!(
        got[0].body["text"]
            .as_str()
            .unwrap()
            .contains("strategies/breakout.lua:3: unexpected symbol"),
        "{}",
        got[0].body
    );
    notifier.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn a_500_is_retried_with_backoff_until_delivered() {
    let rx = Receiver::start(vec![Answer::status(500), Answer::status(503)]).await;
    let targets = vec![Target::new(TargetKind::Generic, format!("{}/g", rx.url), 1)];
    let (bus, notifier) = start(&config(targets, EventSet::all()), options(), vec![]);
    bus.send(halted("retry me"));
    let got = rx.wait_for("/g", 3).await;
    assert!(got.iter().all(|g| g.body["kind"] == "halted"));
    // 50 ms, then 100 ms: the backoff, not a hot loop.
    assert!(got[1].at - got[0].at >= Duration::from_millis(45));
    assert!(got[2].at - got[1].at >= Duration::from_millis(95));
    eventually("delivered", || async {
        notifier
            .counters()
            .delivered
            .load(std::sync::atomic::Ordering::Relaxed)
            == 1
    })
    .await;
    assert_eq!(
        notifier
            .counters()
            .retries
            .load(std::sync::atomic::Ordering::Relaxed),
        2
    );
    notifier.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn a_429_waits_as_long_as_retry_after_says() {
    let rx = Receiver::start(vec![
        Answer {
            status: 429,
            retry_after: Some("1"),
            body: "",
        },
        // Discord's and Telegram's way: the wait in the body.
        Answer {
            status: 429,
            retry_after: None,
            body: r#"{"ok": false, "parameters": {"retry_after": 0.5}}"#,
        },
    ])
    .await;
    let targets = vec![Target::new(TargetKind::Generic, format!("{}/g", rx.url), 1)];
    let (bus, notifier) = start(&config(targets, EventSet::all()), options(), vec![]);
    bus.send(halted("slow down"));
    let got = rx.wait_for("/g", 3).await;
    assert!(
        got[1].at - got[0].at >= Duration::from_millis(990),
        "Retry-After: 1 honoured, not the 50 ms backoff"
    );
    assert!(got[2].at - got[1].at >= Duration::from_millis(490));
    notifier.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn a_4xx_other_than_429_is_not_retried_and_the_url_token_is_never_logged() {
    let rx = Receiver::start(vec![Answer::status(404)]).await;
    let url = format!("{}/api/webhooks/1/tok-SeCrEt-9f8e7d", rx.url);
    let targets = vec![Target::new(TargetKind::Discord, url, 1)];
    let (bus, notifier) = start(&config(targets, EventSet::all()), options(), vec![]);
    bus.send(halted("once"));
    rx.wait_for("/api/webhooks/1/tok-SeCrEt-9f8e7d", 1).await;
    eventually("given up", || async {
        notifier
            .counters()
            .failed
            .load(std::sync::atomic::Ordering::Relaxed)
            == 1
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(rx.got().len(), 1, "no retry after a 404");
    let logs = common::logs().text();
    assert!(
        logs.contains("NOTIFY_URL #1 (Discord)"),
        "the target is named"
    );
    common::assert_no_secret_logged(&["tok-SeCrEt-9f8e7d"]);
    notifier.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn a_notice_never_carries_a_secret() {
    let rx = Receiver::start(vec![]).await;
    let targets = vec![Target::new(TargetKind::Generic, format!("{}/g", rx.url), 1)];
    let secrets = vec![Secret::new("wh-secret-4242")];
    let (bus, notifier) = start(&config(targets, EventSet::all()), options(), secrets);
    bus.send(halted("operator pasted wh-secret-4242 into the reason"));
    let got = rx.wait_for("/g", 1).await;
    let text = got[0].body.to_string();
    assert!(!text.contains("wh-secret-4242"), "{text}");
    assert!(
        text.contains("operator pasted *** into the reason"),
        "{text}"
    );
    notifier.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn a_hung_receiver_holds_up_nothing_and_its_queue_keeps_its_bound() {
    let hung = Receiver::hung().await;
    let ok = Receiver::start(vec![]).await;
    let targets = vec![
        Target::new(TargetKind::Generic, format!("{}/hung", hung.url), 1),
        Target::new(TargetKind::Generic, format!("{}/ok", ok.url), 2),
    ];
    let options = NotifyOptions {
        queue: 5,
        timeout: Duration::from_secs(60),
        ..options()
    };
    let (bus, notifier) = start(&config(targets, EventSet::all()), options, vec![]);
    // Each event reaches the live receiver while the hung one holds its first POST forever.
    for i in 0..50 {
        bus.send(halted(&format!("event {i}")));
        let got = ok.wait_for("/ok", i + 1).await;
        assert_eq!(got[i].body["event"]["reason"], format!("event {i}"));
        if i == 0 {
            // The first is in flight to the hung receiver for good; the rest queue behind it.
            hung.wait_for("/hung", 1).await;
        }
    }
    // One in flight, five waiting: the other 44 dropped, counted.
    eventually("the hung queue drops the oldest", || async {
        notifier.dropped() == 44
    })
    .await;
    assert_eq!(
        hung.got().len(),
        1,
        "nothing more reached the hung receiver"
    );
    notifier.shutdown(Duration::from_millis(100)).await;
}

#[tokio::test]
async fn a_feed_down_past_the_delay_is_announced_and_a_short_drop_is_not() {
    let rx = Receiver::start(vec![]).await;
    let targets = vec![Target::new(TargetKind::Generic, format!("{}/g", rx.url), 1)];
    let (bus, notifier) = start(&config(targets, EventSet::all()), options(), vec![]);
    // Back within the delay (300 ms here, 30 s by default): no news.
    bus.send(EngineEvent::FeedDown {
        hub: "market",
        state: "reconnecting".into(),
    });
    bus.send(EngineEvent::FeedUp { hub: "market" });
    bus.send(EngineEvent::FeedDown {
        hub: "user",
        state: "reconnecting (attempt 3)".into(),
    });
    let got = rx.wait_for("/g", 1).await;
    assert_eq!(got[0].body["kind"], "feed_down");
    assert_eq!(got[0].body["event"]["hub"], "user");
    assert!(
        got[0].body["text"]
            .as_str()
            .unwrap()
            .starts_with("moontick: user feed down for 0 s (reconnecting (attempt 3))"),
        "{}",
        got[0].body
    );
    bus.send(EngineEvent::FeedUp { hub: "user" });
    let got = rx.wait_for("/g", 2).await;
    assert_eq!(got[1].body["kind"], "feed_up");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let kinds: Vec<Value> = rx.got().iter().map(|g| g.body["kind"].clone()).collect();
    assert_eq!(kinds, [json!("feed_down"), json!("feed_up")]);
    notifier.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn every_event_kind_is_sent_with_its_words() {
    use moontick::engine::{FillRecord, SessionSummary, StrategyTally};
    let rx = Receiver::start(vec![]).await;
    let targets = vec![Target::new(TargetKind::Generic, format!("{}/g", rx.url), 1)];
    let (bus, notifier) = start(&config(targets, EventSet::all()), options(), vec![]);
    let day = chrono::NaiveDate::from_ymd_opt(2026, 11, 27).unwrap();
    let events = [
        EngineEvent::Fill(FillRecord {
            time: chrono::Utc::now(),
            strategy: "breakout".into(),
            account_id: 10001,
            contract: "CON.F.US.MNQ.Z25".into(),
            symbol: "MNQ".into(),
            side: "buy",
            size: 2,
            price: 21000.5,
            tick_size: 0.25,
            pnl: None,
            fees: 0.74,
            commissions: 0.0,
            order_id: 99,
            fill_id: 7,
            tag: Some("long stop_loss".into()),
        }),
        EngineEvent::Strategy {
            name: "breakout".into(),
            state: "stuck",
            detail: Some("inside on_quote for 2100 ms".into()),
        },
        EngineEvent::Strategy {
            name: "breakout".into(),
            state: "crashed",
            detail: Some("thread panicked".into()),
        },
        EngineEvent::Resumed {
            was: Some("daily loss limit 1000.00 reached".into()),
        },
        EngineEvent::SessionClosed(SessionSummary {
            day,
            fills: 4,
            net_pnl: -12.5,
            fees: 1.48,
            balance: 49_987.5,
            strategies: vec![StrategyTally {
                strategy: "breakout".into(),
                fills: 4,
                net_pnl: -12.5,
            }],
        }),
    ];
    for e in &events {
        bus.send(e.clone());
    }
    let got = rx.wait_for("/g", events.len()).await;
    let texts: Vec<&str> = got
        .iter()
        .map(|g| g.body["text"].as_str().unwrap())
        .collect();
    assert_eq!(
        texts,
        [
            "moontick fill: breakout buy 2 MNQ @ 21000.50, fees 0.74 [long stop_loss]",
            "moontick strategy breakout is stuck: inside on_quote for 2100 ms",
            "moontick strategy breakout crashed: thread panicked",
            "moontick resumed trading (was halted: daily loss limit 1000.00 reached)",
            "moontick trading day 2026-11-27 closed: 4 fill(s), net P&L -12.50 (fees 1.48), \
             balance 49987.50; breakout 4 fill(s) -12.50",
        ]
    );
    let kinds: Vec<&str> = got
        .iter()
        .map(|g| g.body["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        ["fill", "strategy", "strategy", "resumed", "session_closed"]
    );
    assert_eq!(got[4].body["event"]["day"], "2026-11-27");
    notifier.shutdown(Duration::from_secs(1)).await;
}
