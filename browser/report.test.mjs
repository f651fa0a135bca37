// A backtest's report.html in a real browser: headless Chromium (Debian's) opens the file with
// the network off, and the charts must have drawn (canvases with ink), with no script errors.
// run.sh makes the report; a screenshot goes to artifacts/.
import { test } from "node:test";
import assert from "node:assert/strict";
import { OUT, launch } from "./launch.mjs";

const REPORT = process.env.REPORT;

test("report.html draws its charts offline", { timeout: 60_000 }, async () => {
  assert.ok(REPORT, "REPORT is set by run.sh");
  const browser = await launch();
  try {
    const context = await browser.newContext({ viewport: { width: 1100, height: 1200 }, offline: true });
    const page = await context.newPage();
    const errors = [];
    const requests = [];
    page.on("pageerror", (e) => errors.push(String(e)));
    page.on("request", (r) => { if (!r.url().startsWith("file:")) requests.push(r.url()); });
    await page.goto("file://" + REPORT);
    await page.waitForFunction(() => window.reportReady === true, null, { timeout: 20_000 });
    const summary = await page.textContent("#summary");
    assert.match(summary, /net P&L/);
    assert.match(summary, /trades\s+[1-9]/, "the flip strategy traded");
    // Equity, drawdown and one price chart, each a canvas with something drawn on it.
    const inked = await page.evaluate(() => [...document.querySelectorAll("canvas")].map((c) => {
      const px = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
      let n = 0;
      for (let i = 3; i < px.length; i += 4) if (px[i] !== 0) n++;
      return n;
    }));
    assert.ok(inked.length >= 3, `canvases: ${inked.length}`);
    for (const n of inked) assert.ok(n > 100, `a blank chart: ${inked}`);
    await page.screenshot({ path: OUT + "report.png", fullPage: true });
    assert.deepEqual(errors, [], "no script errors");
    assert.deepEqual(requests, [], "no network requests");
  } finally {
    await browser.close();
  }
});
