//! The trade journal on `moontick run` against the simulator: fills a strategy makes land in
//! `STATE_DIR/<gateway>-<account>/journal/<trading day>.csv` with every column (a hostile tag
//! escaped and defused), and `GET /journal` serves it behind the secret, refusing bad days.
//! Notifications from the same run reach a local receiver while a hung one holds nothing up.

mod common;
mod receiver;
mod run_support;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use moontick::journal::{HEADER, cells};
use receiver::Receiver;
use run_support::{Running, SECRET, start, state, strategy, vars};
use serde_json::json;

/// Buys or sells one MNQ with the webhook's `tag`.
const TRADER: &str = r#"
local M = { symbols = { "MNQ" } }
function M.on_webhook(req)
  local b = req.body
  local order, why = bot[b.side]{
    symbol = 'MNQ', size = 1, tag = b.tag, stop_loss_ticks = b.ticks, take_profit_ticks = b.ticks
  }
  return { ok = order ~= nil, why = why }
end
return M
"#;

const EVIL_TAG: &str = "=HYPERLINK(\"http://x\",\"a, b\")";

fn journal_dir(dir: &Path) -> PathBuf {
    state(dir).join("simulator-10001").join("journal")
}

async fn trade(run: &Running, side: &str, tag: &str) {
    // A distinct id each: a repeated body would be answered as a duplicate, not run.
    static ID: AtomicU64 = AtomicU64::new(1);
    let id = ID.fetch_add(1, Ordering::Relaxed);
    let (status, body) = run
        .post(
            "/webhook/trader",
            &json!({"id": id, "side": side, "tag": tag}),
            true,
        )
        .await;
    assert_eq!((status, &body["ok"]), (200, &json!(true)), "{body}");
    assert!(body.get("duplicate").is_none(), "{body}");
}

/// The journal's rows (without the header) once it has `n`, from whichever file the trading
/// day gave them (a test running across 17:00 Chicago sees two days).
async fn rows(dir: &Path, n: usize) -> (String, Vec<Vec<String>>) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let day = moontick::cme::trading_day(chrono::Utc::now());
        let name = format!("{day}.csv");
        let text = std::fs::read_to_string(journal_dir(dir).join(&name)).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        if lines.len() > n {
            assert_eq!(lines[0], HEADER);
            let rows = lines[1..].iter().map(|l| cells(l)).collect();
            return (day.to_string(), rows);
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the journal {name} never had {n} rows: {text:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fills_land_in_the_journal_and_get_journal_serves_it_behind_the_secret() {
    common::logs();
    let tmp = tempfile::tempdir().unwrap();
    strategy(tmp.path(), "trader", TRADER);
    let run = start(&vars(tmp.path(), &[])).await;

    trade(&run, "buy", EVIL_TAG).await;
    trade(&run, "sell", "exit").await;
    let (day, mut rows) = rows(tmp.path(), 2).await;
    let header: Vec<&str> = HEADER.split(',').collect();
    let col = |row: &Vec<String>, name: &str| -> String {
        row[header.iter().position(|h| *h == name).unwrap()].clone()
    };
    // Rows come in the order fills were attributed (a fill reported before its order's id is
    // written once the id is known): the fill ids give the order they happened in.
    rows.sort_by_key(|r| col(r, "FillId").parse::<i64>().unwrap());
    assert_eq!(rows.len(), 2, "{rows:?}");
    let (buy, sell) = (&rows[0], &rows[1]);
    for row in [buy, sell] {
        assert_eq!(row.len(), header.len(), "{row:?}");
        assert_eq!(col(row, "Strategy"), "trader");
        assert_eq!(col(row, "Account"), "10001");
        let contract = col(row, "Contract");
        assert!(contract.starts_with("CON.F.US.MNQ."), "{row:?}");
        let month = contract.rsplit('.').next().unwrap();
        assert_eq!(
            col(row, "Symbol"),
            format!("MNQ{month}"),
            "as journals name futures"
        );
        assert_eq!(col(row, "Quantity"), "1");
        assert!(col(row, "Price").parse::<f64>().unwrap() > 0.0);
        assert!(col(row, "TransFee").parse::<f64>().is_ok());
        assert!(col(row, "OrderId").parse::<i64>().unwrap() > 0);
        assert!(col(row, "FillId").parse::<i64>().unwrap() > 0);
        assert_eq!(col(row, "Time").len(), 8);
    }
    assert_eq!(col(buy, "Side"), "Buy");
    assert_eq!(col(sell, "Side"), "Sell");
    assert_eq!(col(buy, "PnL"), "", "an opening fill realises nothing");
    assert!(col(sell, "PnL").parse::<f64>().is_ok(), "{sell:?}");
    // The strategy's tag, its comma and quotes intact, never a formula.
    assert_eq!(col(buy, "Tag"), format!("'{EVIL_TAG}"));
    assert_eq!(col(sell, "Tag"), "exit");

    // The download: behind the secret, exactly the file, bad days refused.
    let url = |q: &str| format!("{}/journal{q}", run.url);
    let r = run
        .http
        .get(url(&format!("?day={day}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = run
        .http
        .get(url(&format!("?day={day}")))
        .header("x-webhook-secret", SECRET)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "text/csv; charset=utf-8");
    assert!(
        r.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .contains(&format!("moontick-journal-{day}.csv"))
    );
    let text = r.text().await.unwrap();
    assert_eq!(
        text,
        std::fs::read_to_string(journal_dir(tmp.path()).join(format!("{day}.csv"))).unwrap()
    );
    for (q, status) in [
        ("", 400),
        ("?day=", 400),
        ("?day=2026-13-01", 400),
        ("?day=..%2F..%2Fmoontick.lock", 400),
        ("?day=../../etc/passwd", 400),
        ("?day=2001-01-01", 404),
    ] {
        let r = run
            .http
            .get(url(q))
            .header("x-webhook-secret", SECRET)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), status, "GET /journal{q}");
    }
    let r = run
        .http
        .post(url(&format!("?day={day}")))
        .header("x-webhook-secret", SECRET)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 405);
    run.stop().await.expect("run returns Ok");
    common::assert_no_secret_logged(&[SECRET]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bracket_legs_fill_is_journaled_for_its_strategy_with_the_leg_named() {
    common::logs();
    let tmp = tempfile::tempdir().unwrap();
    strategy(tmp.path(), "trader", TRADER);
    let run = start(&vars(tmp.path(), &[])).await;
    // One tick either way: the simulator's random walk soon fills one leg.
    let (status, body) = run
        .post(
            "/webhook/trader",
            &json!({"id": "bracket", "side": "buy", "tag": "brk", "ticks": 1}),
            true,
        )
        .await;
    assert_eq!((status, &body["ok"]), (200, &json!(true)), "{body}");
    let (_, mut rows) = rows(tmp.path(), 2).await;
    let header: Vec<&str> = HEADER.split(',').collect();
    let col = |row: &Vec<String>, name: &str| -> String {
        row[header.iter().position(|h| *h == name).unwrap()].clone()
    };
    rows.sort_by_key(|r| col(r, "FillId").parse::<i64>().unwrap());
    assert_eq!(col(&rows[0], "Tag"), "brk");
    assert_eq!(col(&rows[0], "Side"), "Buy");
    let leg = &rows[1];
    assert_eq!(col(leg, "Strategy"), "trader");
    assert_eq!(col(leg, "Side"), "Sell");
    assert!(
        ["brk stop_loss", "brk take_profit"].contains(&col(leg, "Tag").as_str()),
        "{leg:?}"
    );
    assert!(
        col(leg, "PnL").parse::<f64>().is_ok(),
        "a closing fill: {leg:?}"
    );
    assert_ne!(col(leg, "OrderId"), col(&rows[0], "OrderId"));
    run.stop().await.expect("run returns Ok");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_notifies_fills_and_halts_while_a_hung_receiver_holds_nothing_up() {
    common::logs();
    let hung = Receiver::hung().await;
    let ok = Receiver::start(vec![]).await;
    let tmp = tempfile::tempdir().unwrap();
    strategy(tmp.path(), "trader", TRADER);
    let run = start(&vars(
        tmp.path(),
        &[
            (
                "NOTIFY_URL",
                format!("{}/hung-tok-77aa, {}/ok", hung.url, ok.url),
            ),
            ("NOTIFY_EVENTS", "fills,halts".into()),
        ],
    ))
    .await;

    // Each trade's webhook answers (and fills) while the first receiver never answers.
    for _ in 0..3 {
        trade(&run, "buy", "in").await;
    }
    let fills = ok.wait_for("/ok", 3).await;
    for f in &fills {
        assert_eq!(f.body["kind"], "fill");
        assert_eq!(f.body["event"]["strategy"], "trader");
        assert_eq!(f.body["event"]["tag"], "in");
    }
    rows(tmp.path(), 3).await;
    let (status, _) = run
        .post("/halt", &json!({"reason": "test halt"}), true)
        .await;
    assert_eq!(status, 200);
    let got = ok.wait_for("/ok", 4).await;
    let halt = got
        .iter()
        .find(|g| g.body["kind"] == "halted")
        .expect("the halt was notified");
    assert!(
        halt.body["text"]
            .as_str()
            .unwrap()
            .starts_with("moontick HALTED: test halt")
    );
    assert_eq!(
        hung.got().len(),
        1,
        "the hung receiver holds its first POST"
    );
    run.stop().await.expect("run returns Ok");
    common::assert_no_secret_logged(&[SECRET, "hung-tok-77aa"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fills_missing_from_the_journal_are_added_at_the_next_start() {
    let sim = common::start_sim(|_| {}).await;
    let tmp = tempfile::tempdir().unwrap();
    strategy(tmp.path(), "trader", TRADER);
    let live = vars(
        tmp.path(),
        &[
            ("PROJECT_X_API_URL", sim.url()),
            ("PROJECT_X_USERNAME", common::USER.to_string()),
            ("PROJECT_X_API_KEY", common::KEY.to_string()),
            ("PROJECT_X_ACCOUNT_ID", sim.account_id().to_string()),
        ],
    );
    let run = start(&live).await;
    trade(&run, "buy", "one").await;
    trade(&run, "buy", "two").await;
    let account_dir = std::fs::read_dir(state(tmp.path()))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.is_dir())
        .expect("the account's state directory");
    let journal = account_dir.join("journal");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let file = loop {
        let day = moontick::cme::trading_day(chrono::Utc::now());
        let file = journal.join(format!("{day}.csv"));
        if std::fs::read_to_string(&file)
            .unwrap_or_default()
            .lines()
            .count()
            == 3
        {
            break file;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "two fills journaled"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    run.stop().await.expect("run returns Ok");

    // A crash lost the second line.
    let text = std::fs::read_to_string(&file).unwrap();
    let kept: Vec<&str> = text.lines().take(2).collect();
    let lost = text.lines().nth(2).unwrap().to_string();
    std::fs::write(&file, format!("{}\n", kept.join("\n"))).unwrap();

    let run = start(&live).await;
    let text = std::fs::read_to_string(&file).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    let restored = cells(lines[2]);
    let before = cells(&lost);
    assert_eq!(
        restored[9], "trader",
        "attributed by its customTag: {restored:?}"
    );
    // The same fill, the same columns, but for the tag (not in the customTag).
    assert_eq!(restored[..14], before[..14]);
    run.stop().await.expect("run returns Ok");
}
