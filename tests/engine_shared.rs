//! Two strategies on one contract, over loopback against the simulator: the log lines say whose
//! each fill is and what each strategy holds of the account's net position, with prices on the
//! contract's tick grid and money in cents.

mod common;
mod engine_support;

use common::*;
use engine_support::*;

/// Buys 1 on its first quote.
const FIRST: &str = r#"
local M = { symbols = { "MNQ" } }
function M.on_quote(q)
  if state.bought then return end
  state.bought = true
  bot.buy{ symbol = "MNQ", size = 1 }
end
return M
"#;

/// Buys 1 on its second quote; once the account holds +2 (both strategies' buys), sells 2, so
/// the account is flat while the two strategies hold +1 and -1.
const SECOND: &str = r#"
local M = { symbols = { "MNQ" } }
function M.on_quote(q)
  state.n = (state.n or 0) + 1
  if state.n == 2 then bot.buy{ symbol = "MNQ", size = 1 } end
end
function M.on_position(p)
  if p.size == 2 and not state.sold then
    state.sold = true
    bot.sell{ symbol = "MNQ", size = 2 }
  end
end
return M
"#;

/// Engine lines (not the simulator's) that contain `needle`.
fn lines_with(needle: &str) -> Vec<String> {
    logs()
        .text()
        .lines()
        .filter(|l| l.contains("moontick::engine") && l.contains(needle))
        .map(str::to_string)
        .collect()
}

/// Every number after an `@ ` or `P&L ` has exactly the two decimals of MNQ's 0.25 tick grid
/// (or of cents), and none is `-0.00`.
fn assert_numbers_read_well(line: &str) {
    for marker in ["@ ", "P&L "] {
        for part in line.split(marker).skip(1) {
            let number: String = part
                .chars()
                .take_while(|c| c.is_ascii_digit() || *c == '.' || *c == '-')
                .collect();
            let decimals = number.split('.').nth(1).map_or(0, str::len);
            assert_eq!(decimals, 2, "{number:?} in {line}");
            assert_ne!(number, "-0.00", "{line}");
            let value: f64 = number.parse().unwrap();
            if marker == "@ " {
                assert_eq!(
                    (value * 4.0).fract(),
                    0.0,
                    "{number} is off the grid: {line}"
                );
            }
        }
    }
}

#[tokio::test]
async fn two_strategies_on_one_contract_log_whose_fill_and_position_it_is() {
    let sim = start_sim(|c| c.quote_rate = 0.0).await;
    let dir = tempfile::tempdir().unwrap();
    let strategies = dir.path().join("strategies");
    std::fs::create_dir_all(&strategies).unwrap();
    std::fs::write(strategies.join("second.lua"), SECOND).unwrap();
    let run = start_engine(&sim, dir.path(), FIRST, fast_options()).await;
    let _dump = DumpLogsOnPanic;

    // The first quote makes probe buy, the second makes second buy; more change nothing.
    eventually(
        "the account to hold +2, then be flat by second's sell",
        || {
            sim.step_quotes(1);
            async { !lines_with("position MNQ: flat").is_empty() }
        },
    )
    .await;

    let probe_fill = lines_with("fill for probe: buy 1 MNQ @ ");
    assert_eq!(probe_fill.len(), 1, "{probe_fill:#?}");
    assert!(
        probe_fill[0].contains("probe now +1 @ "),
        "{}",
        probe_fill[0]
    );
    assert!(
        probe_fill[0].contains("strategy=probe"),
        "{}",
        probe_fill[0]
    );
    let second_buy = lines_with("fill for second: buy 1 MNQ @ ");
    assert_eq!(second_buy.len(), 1, "{second_buy:#?}");
    assert!(
        second_buy[0].contains("second now +1 @ "),
        "{}",
        second_buy[0]
    );
    let second_sell = lines_with("fill for second: sell 2 MNQ @ ");
    assert_eq!(second_sell.len(), 1, "{second_sell:#?}");
    assert!(
        second_sell[0].contains("second now -1 @ "),
        "{}",
        second_sell[0]
    );

    let both = lines_with("position MNQ: +2 @ ");
    assert!(!both.is_empty(), "no +2 position line");
    assert!(
        both.iter()
            .any(|l| l.contains("(probe +1, second +1)") || l.contains("(second +1, probe +1)")),
        "{both:#?}"
    );
    let netted = lines_with("position MNQ: flat");
    assert!(
        netted
            .iter()
            .any(|l| l.contains("(probe +1, second -1)") || l.contains("(second -1, probe +1)")),
        "the account is flat but each strategy still holds its side: {netted:#?}"
    );

    for line in lines_with("fill for ")
        .iter()
        .chain(lines_with("position MNQ:").iter())
    {
        assert_numbers_read_well(line);
    }
    stop(run).await;
}

/// Prints the captured INFO and above lines when the test fails: they are the evidence.
struct DumpLogsOnPanic;

impl Drop for DumpLogsOnPanic {
    fn drop(&mut self) {
        if std::thread::panicking() {
            for l in logs()
                .text()
                .lines()
                .filter(|l| !l.contains("TRACE") && !l.contains("DEBUG"))
            {
                eprintln!("{l}");
            }
        }
    }
}
