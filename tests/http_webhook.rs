//! The webhook relay over real HTTP: a real `Host` on temp strategy files, a `MemoryBroker`,
//! the server on `127.0.0.1:0`.

mod http_support;

use std::time::Duration;

use http_support::{Options, SECRET, start, wait_until};
use serde_json::json;

/// Echoes what it received, places an order when asked, fails when asked.
const ECHO: &str = r#"
local M = {}
function M.on_webhook(req)
  state.calls = (state.calls or 0) + 1
  local b = req.body
  if type(b) == "table" and b.action == "buy" then
    bot.buy{ symbol = "MNQ", size = 1, tag = b.id and tostring(b.id) or "x" }
  end
  if type(b) == "table" and b.fail then error("boom in handler") end
  if type(b) == "table" and b.nothing then return nil end
  return {
    body = b,
    kind = type(b),
    header = req.headers["x-test"],
    secret_header = req.headers["x-webhook-secret"],
    query = req.query.x,
    calls = state.calls,
    status = type(b) == "table" and b.status or nil,
  }
end
return M
"#;

#[tokio::test]
async fn webhook_reaches_the_script_and_its_return_value_comes_back() {
    let s = start(&[("echo", ECHO)], Options::default()).await;
    let r = s
        .client
        .post(format!("{}/webhook/echo?x=1%202", s.url))
        .header("content-type", "application/json")
        .header("X-Webhook-Secret", SECRET)
        .header("X-Test", "hello")
        .body(r#"{"n": 7, "status": 201}"#)
        .send()
        .await
        .unwrap();
    let (status, v) = http_support::read(r).await;
    assert_eq!(status, 201, "{v}");
    assert_eq!(v["body"]["n"], 7);
    assert_eq!(v["header"], "hello", "header names are lower-case");
    assert_eq!(v["query"], "1 2");
    assert!(
        v["secret_header"].is_null(),
        "the secret header is hidden from scripts"
    );

    let (status, v) = s.hook("echo", &json!({"nothing": true})).await;
    assert_eq!((status, v), (200, json!({"ok": true})));
}

#[tokio::test]
async fn text_plain_json_is_decoded_and_other_text_stays_a_string() {
    let s = start(&[("echo", ECHO)], Options::default()).await;
    let path = format!("/webhook/echo/{SECRET}");
    let (status, v) = s.post(&path, "text/plain", r#"{"ticker":"MNQ1!"}"#).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["kind"], "table");
    assert_eq!(v["body"]["ticker"], "MNQ1!");
    let (status, v) = s.post(&path, "text/plain", "buy MNQ now").await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["kind"], "string");
    assert_eq!(v["body"], "buy MNQ now");
}

#[tokio::test]
async fn secret_is_accepted_in_header_body_and_path_and_removed_from_the_body() {
    let s = start(&[("echo", ECHO)], Options::default()).await;
    for field in ["secret", "passphrase"] {
        let body = json!({ field: SECRET, "n": 1 }).to_string();
        let (status, v) = s.post("/webhook/echo", "application/json", body).await;
        assert_eq!(status, 200, "{v}");
        assert_eq!(
            v["body"],
            json!({"n": 1}),
            "{field} removed before the script"
        );
    }
    let (status, _) = s
        .post(
            &format!("/webhook/echo/{SECRET}"),
            "application/json",
            r#"{"n":2}"#,
        )
        .await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn a_missing_or_wrong_secret_is_401_without_detail_and_runs_nothing() {
    let s = start(&[("echo", ECHO)], Options::default()).await;
    let buy = json!({"action": "buy"}).to_string();
    let wrong = json!({"action": "buy", "secret": "nope"}).to_string();
    for (path, body) in [
        ("/webhook/echo".to_string(), buy.clone()),
        ("/webhook/echo/wrong-secret".to_string(), buy.clone()),
        ("/webhook/echo".to_string(), wrong),
        // Auth comes before the strategy lookup: no probing for names.
        ("/webhook/nosuch".to_string(), buy.clone()),
    ] {
        let (status, v) = s.post(&path, "application/json", body).await;
        assert_eq!(status, 401, "{path}: {v}");
        assert_eq!(v, json!({"ok": false}));
    }
    let r = s
        .client
        .post(format!("{}/halt", s.url))
        .header("x-webhook-secret", "wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    assert_eq!(s.orders(), 0, "no handler ran");
    assert!(s.ops.halted().is_none());
}

#[tokio::test]
async fn unknown_strategy_is_404() {
    let s = start(&[("echo", ECHO)], Options::default()).await;
    let (status, v) = s.hook("nosuch", &json!({"action": "buy"})).await;
    assert_eq!(status, 404, "{v}");
    let (status, _) = s.get("/nothing/here").await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn a_body_over_64_kib_is_413_and_runs_nothing() {
    let s = start(&[("echo", ECHO)], Options::default()).await;
    let big = format!(r#"{{"action":"buy","pad":"{}"}}"#, "x".repeat(64 * 1024));
    let r = s
        .client
        .post(format!("{}/webhook/echo", s.url))
        .header("content-type", "application/json")
        .header("x-webhook-secret", SECRET)
        .body(big.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 413);
    // Without a Content-Length (chunked), the limit is enforced while reading.
    let mut req = format!(
        "POST /webhook/echo HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n\
         x-webhook-secret: {SECRET}\r\ntransfer-encoding: chunked\r\n\r\n"
    );
    for chunk in big.as_bytes().chunks(8192) {
        req.push_str(&format!(
            "{:x}\r\n{}\r\n",
            chunk.len(),
            std::str::from_utf8(chunk).unwrap()
        ));
    }
    req.push_str("0\r\n\r\n");
    let answer = http_support::raw(s.addr, req.as_bytes()).await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert_eq!(s.orders(), 0);
}

#[tokio::test]
async fn malformed_json_with_a_json_content_type_is_400_and_runs_nothing() {
    let s = start(&[("echo", ECHO)], Options::default()).await;
    let r = s
        .client
        .post(format!("{}/webhook/echo", s.url))
        .header("content-type", "application/json; charset=utf-8")
        .header("x-webhook-secret", SECRET)
        .body(r#"{"action": "buy""#)
        .send()
        .await
        .unwrap();
    let (status, v) = http_support::read(r).await;
    assert_eq!(status, 400, "{v}");
    assert_eq!(s.orders(), 0);
    assert!(s.host.strategy("echo").unwrap().handled == 0);
}

#[tokio::test]
async fn a_handler_error_is_500_with_a_short_message_and_no_paths() {
    let s = start(&[("echo", ECHO)], Options::default()).await;
    let (status, v) = s.hook("echo", &json!({"fail": true})).await;
    assert_eq!(status, 500, "{v}");
    let text = v.to_string();
    assert!(
        !text.contains(".lua") && !text.contains("boom") && !text.contains("/tmp"),
        "{text}"
    );
    assert!(text.len() < 120, "{text}");
    // TradingView would resend after a 5xx: a failure that placed no order may run again.
    let (status, _) = s.hook("echo", &json!({"fail": true})).await;
    assert_eq!(status, 500);
}

#[tokio::test]
async fn once_an_order_is_placed_the_answer_is_never_5xx() {
    let s = start(&[("echo", ECHO)], Options::default()).await;
    let (status, v) = s
        .hook("echo", &json!({"action": "buy", "fail": true, "id": "a"}))
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["orders_placed"], true);
    let (status, v) = s
        .hook("echo", &json!({"action": "buy", "status": 503, "id": "b"}))
        .await;
    assert_eq!(status, 200, "{v}");
    // And the resend TradingView would not make is not run either.
    let (status, v) = s
        .hook("echo", &json!({"action": "buy", "fail": true, "id": "a"}))
        .await;
    assert_eq!(status, 200);
    assert_eq!(v["duplicate"], true);
    assert_eq!(s.orders(), 2);
}

#[tokio::test]
async fn a_repeated_alert_is_acknowledged_once_and_handled_once() {
    let s = start(&[("echo", ECHO)], Options::default()).await;
    let alert = json!({"action": "buy", "id": "alert-1"});
    let (status, first) = s.hook("echo", &alert).await;
    assert_eq!(status, 200, "{first}");
    assert!(first.get("duplicate").is_none());
    let (status, again) = s
        .hook("echo", &json!({"action": "buy", "id": "alert-1", "x": 1}))
        .await;
    assert_eq!(status, 200);
    assert_eq!(again["duplicate"], true, "same id, different body");
    // Without an id, the body is the key.
    let plain = json!({"action": "buy"});
    assert!(s.hook("echo", &plain).await.1.get("duplicate").is_none());
    assert_eq!(s.hook("echo", &plain).await.1["duplicate"], true);
    assert_eq!(s.orders(), 2);
    assert_eq!(s.host.strategy("echo").unwrap().handled, 2);
}

#[tokio::test]
async fn a_slow_handler_is_answered_202_and_runs_exactly_once() {
    let opts = Options {
        submit_delay: Duration::from_millis(600),
        tweak: |c| c.reply_within = Duration::from_millis(150),
        ..Options::default()
    };
    let s = start(&[("echo", ECHO)], opts).await;
    let alert = json!({"action": "buy", "id": "slow-1"});
    let (status, v) = s.hook("echo", &alert).await;
    assert_eq!((status, &v), (202, &json!({"ok": true, "queued": true})));
    // TradingView's resend while it runs is not queued again.
    let (status, v) = s.hook("echo", &alert).await;
    assert_eq!(status, 200);
    assert_eq!(v["duplicate"], true);
    wait_until("the slow handler ran", || s.orders() == 1).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(s.orders(), 1);
    assert_eq!(s.host.strategy("echo").unwrap().handled, 1);
}

#[tokio::test]
async fn without_a_secret_configured_loopback_webhooks_need_none() {
    let opts = Options {
        secret: None,
        ..Options::default()
    };
    let s = start(&[("echo", ECHO)], opts).await;
    let (status, v) = s
        .post("/webhook/echo", "application/json", r#"{"n":3}"#)
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["body"]["n"], 3);
}
