// The moontick dashboard: renders the status pushed on /events and sends the operator's
// actions. Everything is built with textContent: no server string is parsed as HTML.
"use strict";
(function () {
  const $ = (id) => document.getElementById(id);
  const money = (x) => (x == null ? "–" : (x < 0 ? "-$" : "$") + Math.abs(x).toFixed(2));
  const num = (x) => (x == null ? "–" : String(x));
  const signed = (el, x) => { el.textContent = money(x); el.className = x > 0 ? "good" : x < 0 ? "bad" : ""; };
  let status = null, serverSkew = 0, equity = [], chart = null;

  function cell(tr, text, cls) {
    const td = document.createElement("td");
    td.textContent = text == null ? "–" : String(text);
    if (cls) td.className = cls;
    tr.appendChild(td);
    return td;
  }
  // Rebuilds a table body only when its shape (`shape`, by default everything) changed;
  // otherwise updates the text of its cells in place, so a button is never replaced under a
  // finger between two pushes.
  function rows(tbody, items, fill, empty, shape) {
    const key = JSON.stringify(shape === undefined ? items : shape);
    if (tbody.dataset.key === key && !items.length) return;
    if (tbody.dataset.key === key && items.length === tbody.rows.length) {
      items.forEach((it, i) => {
        const fresh = document.createElement("tr");
        fill(fresh, it);
        const old = tbody.rows[i];
        for (let c = 0; c < fresh.cells.length; c++) {
          const a = old.cells[c], b = fresh.cells[c];
          if (!a || a.querySelector("button")) continue;
          if (a.textContent !== b.textContent) a.textContent = b.textContent;
          if (a.className !== b.className) a.className = b.className;
        }
      });
      return;
    }
    tbody.dataset.key = key;
    tbody.replaceChildren();
    if (!items.length) {
      const tr = document.createElement("tr");
      const td = cell(tr, empty, "empty");
      td.colSpan = tbody.parentElement.querySelectorAll("th").length;
      tbody.appendChild(tr);
      return;
    }
    for (const it of items) { const tr = document.createElement("tr"); fill(tr, it); tbody.appendChild(tr); }
  }
  const pnlCell = (tr, x) => cell(tr, money(x), x > 0 ? "good" : x < 0 ? "bad" : "");

  function renderStatus(s) {
    status = s;
    serverSkew = (s.now_ms || Date.now()) - Date.now();
    const risk = s.risk || {}, conn = s.connections || {};
    $("account-id").textContent = s.account != null ? "#" + s.account : "";
    $("balance").textContent = money(s.account_balance);
    signed($("realized"), risk.realized_pnl);
    signed($("open"), risk.open_pnl);
    const used = risk.loss_limit_used || 0;
    $("loss-used").textContent = (used * 100).toFixed(1) + "% of " + money(risk.daily_loss_limit);
    $("loss-meter").value = Math.min(used, 1);
    const halted = risk.halted;
    $("halted").hidden = !halted;
    $("halt-reason").hidden = !halted;
    $("halt-reason").textContent = halted ? "Halted: " + halted : "";
    document.body.classList.toggle("is-halted", !!halted);
    // A replay must never pass for live: a banner across the header, and the tab's title.
    const replay = s.mode === "replay" ? s.replay || {} : null;
    $("replay").hidden = !replay;
    document.body.classList.toggle("is-replay", !!replay);
    document.title = replay ? "REPLAY · moontick" : "moontick";
    if (replay) {
      if ($("conn").textContent === "live") $("conn").textContent = "replay";
      $("replay").textContent = "REPLAY of " + replay.data + " at " + replay.speed +
        (replay.finished ? " (ended)" : "") + " · " + new Date(replay.clock_ms).toISOString().replace("T", " ").slice(0, 19) +
        " UTC · simulated fills on recorded quotes, not live";
    }
    $("gateway").textContent = num(conn.gateway);
    $("market-hub").textContent = num(conn.market_hub);
    $("user-hub").textContent = num(conn.user_hub);
    $("ready").textContent = s.ready === true ? "yes" : (s.ready && s.ready.reason) || "no";
    const pnl = {};
    for (const p of s.strategy_pnl || []) pnl[p.strategy] = p;
    rows($("strategies").tBodies[0], s.strategies || [], (tr, st) => {
      const state = halted && st.state === "running" ? "halted" : st.state;
      tr.dataset.strategy = st.name;
      cell(tr, st.name);
      cell(tr, state, "state state-" + state);
      cell(tr, st.version);
      cell(tr, st.quotes_handled);
      cell(tr, st.quotes_coalesced);
      cell(tr, st.handled);
      const p = pnl[st.name] || {};
      pnlCell(tr, p.realized_pnl || 0);
      pnlCell(tr, p.open_pnl || 0);
      cell(tr, st.load_error || st.last_error || (st.stuck ? "stuck in " + st.stuck.handler : st.crash) || "", "error");
      const td = cell(tr, "");
      const b = document.createElement("button");
      const paused = st.state === "paused";
      b.textContent = paused ? "Resume" : "Pause";
      b.className = "small";
      b.addEventListener("click", () => act("/strategies/" + encodeURIComponent(st.name) + "/" + (paused ? "resume" : "pause")));
      td.appendChild(b);
    }, "no strategies", (s.strategies || []).map((st) => [st.name, st.state, !!halted]));
    rows($("positions").tBodies[0], s.positions || [], (tr, p) => {
      cell(tr, p.symbol);
      cell(tr, (p.size > 0 ? "+" : "") + p.size);
      cell(tr, p.avg_price);
      pnlCell(tr, p.open_pnl);
      cell(tr, p.stop_price);
      cell(tr, p.target_price);
      cell(tr, p.protected ? "yes" : "no", p.protected ? "good" : "bad");
    }, "flat");
    rows($("orders").tBodies[0], s.open_orders || [], (tr, o) => {
      cell(tr, o.id);
      cell(tr, o.strategy);
      cell(tr, o.kind + (o.parent ? " of " + o.parent : ""));
      cell(tr, o.symbol);
      cell(tr, o.side);
      cell(tr, o.size);
      cell(tr, o.filled);
      cell(tr, o.price);
      cell(tr, o.status + (o.protected === true ? " (protected)" : ""));
    }, "none");
    renderQuotes();
    drawEquity();
  }

  function renderQuotes() {
    if (!status) return;
    const now = Date.now() + serverSkew;
    rows($("quotes"), status.quotes || [], (tr, q) => {
      cell(tr, q.symbol);
      cell(tr, q.last);
      const age = Math.max(0, (now - q.time_ms) / 1000);
      cell(tr, age < 100 ? age.toFixed(1) + " s" : Math.round(age) + " s", age > 30 ? "bad" : age > 5 ? "warn" : "good");
    }, "no quotes yet", (status.quotes || []).map((q) => q.symbol));
  }

  function renderFills(fills) {
    rows($("fills").tBodies[0], fills.slice().reverse(), (tr, f) => {
      cell(tr, new Date(f.time_ms).toLocaleTimeString());
      cell(tr, f.strategy || "(not moontick)");
      cell(tr, f.symbol);
      cell(tr, f.side);
      cell(tr, f.size);
      cell(tr, f.price);
      f.pnl == null ? cell(tr, "") : pnlCell(tr, f.pnl);
      cell(tr, money(f.fees));
    }, "no fills today");
  }

  function drawEquity() {
    if (typeof uPlot === "undefined") return;
    const xs = equity.map((p) => p.time_ms / 1000), ys = equity.map((p) => p.pnl);
    if (status && status.risk) {
      xs.push((Date.now() + serverSkew) / 1000);
      ys.push((status.risk.realized_pnl || 0) + (status.risk.open_pnl || 0));
    }
    const el = $("equity"), width = Math.max(200, el.clientWidth || 300);
    if (!chart) {
      chart = new uPlot({
        width, height: 180, legend: { show: false }, cursor: { show: false },
        series: [{}, { label: "P&L", stroke: "#3b82f6", width: 2, fill: "rgba(59,130,246,0.12)" }],
        axes: [{ stroke: "#888" }, { stroke: "#888", size: 60 }],
      }, [xs, ys], el);
    } else {
      if (Math.abs(chart.width - width) > 2) chart.setSize({ width, height: 180 });
      chart.setData([xs, ys]);
    }
  }

  function say(text, bad) {
    const m = $("message");
    m.textContent = text;
    m.className = bad ? "bad" : "";
    m.hidden = !text;
  }

  async function act(path, confirmText) {
    if (confirmText && !window.confirm(confirmText)) return;
    try {
      const r = await fetch(path, { method: "POST", headers: { "content-type": "application/json" }, body: "{}", credentials: "same-origin" });
      if (r.status === 401) { location.reload(); return; }
      const body = await r.json().catch(() => ({}));
      say(r.ok ? path.replace(/^\//, "") + ": done" : "failed: " + (body.error || r.status), !r.ok);
    } catch (e) {
      say("failed: " + e, true);
    }
  }
  $("halt").addEventListener("click", () => act("/halt", "Halt trading? Working orders are cancelled and positions closed."));
  $("resume").addEventListener("click", () => act("/resume"));
  $("flatten").addEventListener("click", () => act("/flatten", "Cancel every working order and close every position? Strategies keep running."));

  function connect() {
    const es = new EventSource("/events");
    es.addEventListener("open", () => {
      $("conn").textContent = status && status.mode === "replay" ? "replay" : "live";
      $("conn").className = "badge good";
    });
    es.addEventListener("status", (e) => renderStatus(JSON.parse(e.data)));
    es.addEventListener("fills", (e) => renderFills(JSON.parse(e.data)));
    es.addEventListener("equity", (e) => { equity = JSON.parse(e.data); drawEquity(); });
    es.addEventListener("error", async () => {
      $("conn").textContent = "reconnecting";
      $("conn").className = "badge bad";
      // A lost session shows the login page; anything else, EventSource retries by itself.
      const r = await fetch("/status", { credentials: "same-origin" }).catch(() => null);
      if (r && r.status === 401) { es.close(); location.reload(); }
    });
  }
  setInterval(renderQuotes, 1000);
  window.addEventListener("resize", drawEquity);
  renderFills([]);
  connect();
})();
