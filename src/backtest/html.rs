//! `report.html`: one self-contained page (no network) with the summary, the equity curve, the
//! drawdown and each contract's price with the entries and exits, drawn by the vendored uPlot.

use serde_json::json;

use super::report::Report;

const UPLOT_JS: &str = include_str!("../http/assets/uPlot.iife.min.js");
const UPLOT_CSS: &str = include_str!("../http/assets/uPlot.min.css");

/// The page; the same report gives the same bytes.
pub fn report_html(report: &Report) -> String {
    let equity: Vec<_> = report
        .equity
        .points
        .iter()
        .map(|&(ms, e)| json!([ms as f64 / 1000.0, crate::money::cents(e)]))
        .collect();
    let prices: serde_json::Map<String, serde_json::Value> = report
        .prices
        .iter()
        .map(|(c, pts)| {
            let pts: Vec<_> = pts
                .iter()
                .map(|&(ms, p)| json!([ms as f64 / 1000.0, p]))
                .collect();
            (c.clone(), json!(pts))
        })
        .collect();
    let trips: Vec<_> = report
        .trips
        .iter()
        .map(|t| {
            json!({
                "contract": t.contract, "side": t.side, "size": t.size,
                "entry": t.entry_ms as f64 / 1000.0, "exit": t.exit_ms as f64 / 1000.0,
                "entry_price": t.entry_price, "exit_price": t.exit_price,
                "net": crate::money::cents(t.net()),
            })
        })
        .collect();
    let data = json!({ "equity": equity, "prices": prices, "trips": trips });
    // `</` would end the script element early; JSON allows `<\/`.
    let data = data.to_string().replace("</", "<\\/");
    let summary = escape(&report.summary());
    format!(
        r##"<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>moontick backtest</title>
<style>{UPLOT_CSS}
body {{ font: 14px system-ui, sans-serif; margin: 16px; color: #222; }}
pre {{ background: #f6f6f6; padding: 12px; border-radius: 6px; }}
h2 {{ font-size: 16px; margin: 20px 0 6px; }}
.chart {{ margin-bottom: 12px; }}
</style></head>
<body>
<h1>Backtest</h1>
<pre id="summary">{summary}</pre>
<h2>Equity (net P&amp;L)</h2><div class="chart" id="equity"></div>
<h2>Drawdown</h2><div class="chart" id="drawdown"></div>
<div id="prices"></div>
<script id="data" type="application/json">{data}</script>
<script>{UPLOT_JS}</script>
<script>
(function () {{
  const d = JSON.parse(document.getElementById("data").textContent);
  const width = Math.min(1100, document.body.clientWidth - 8);
  const cols = (pts) => [pts.map((p) => p[0]), pts.map((p) => p[1])];
  const [t, eq] = cols(d.equity);
  let peak = -Infinity;
  const dd = eq.map((e) => {{ peak = Math.max(peak, e); return e - peak; }});
  new uPlot({{ width, height: 240, series: [{{}}, {{ label: "equity", stroke: "#2563eb", fill: "rgba(37,99,235,0.1)" }}] }},
    [t, eq], document.getElementById("equity"));
  new uPlot({{ width, height: 160, series: [{{}}, {{ label: "drawdown", stroke: "#dc2626", fill: "rgba(220,38,38,0.1)" }}] }},
    [t, dd], document.getElementById("drawdown"));
  const holder = document.getElementById("prices");
  for (const [contract, pts] of Object.entries(d.prices)) {{
    const h = document.createElement("h2");
    h.textContent = contract + ": price, entries (green) and exits (purple)";
    const div = document.createElement("div");
    div.className = "chart";
    holder.append(h, div);
    const [pt, px] = cols(pts);
    // Entries and exits as point-only series on the price's time axis (nearest second).
    const entries = new Array(pt.length).fill(null), exits = new Array(pt.length).fill(null);
    const at = (s) => {{ let i = pt.findIndex((x) => x >= s); return i < 0 ? pt.length - 1 : i; }};
    for (const tr of d.trips.filter((x) => x.contract === contract)) {{
      entries[at(tr.entry)] = tr.entry_price;
      exits[at(tr.exit)] = tr.exit_price;
    }}
    const dots = (label, color) => ({{ label, stroke: color, width: 0, paths: () => null,
      points: {{ show: true, size: 9, fill: color, stroke: color }} }});
    new uPlot({{ width, height: 300, series: [{{}}, {{ label: "mid", stroke: "#555" }},
      dots("entry", "#16a34a"), dots("exit", "#9333ea")] }}, [pt, px, entries, exits], div);
  }}
  window.reportReady = true;
}})();
</script>
</body></html>
"##
    )
}

/// Text for HTML element content.
fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}
