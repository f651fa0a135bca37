// `moontick replay`'s dashboard in a real browser (Debian's Chromium): run.sh replays what its
// run recorded; the page must say REPLAY across the header and in the tab's title, never pass
// for live, and show the strategy's fills. A screenshot goes to artifacts/.
import { test } from "node:test";
import assert from "node:assert/strict";
import { OUT, launch } from "./launch.mjs";

const BASE = process.env.BASE_URL;

test("a replay's dashboard says REPLAY", { timeout: 90_000 }, async () => {
  assert.ok(BASE, "BASE_URL is set by run.sh");
  const browser = await launch();
  try {
    const page = await browser.newPage({ viewport: { width: 1100, height: 900 } });
    const errors = [];
    page.on("pageerror", (e) => errors.push(String(e)));
    // Loopback without a secret: the page opens directly.
    await page.goto(BASE + "/");
    await page.waitForSelector("#replay:not([hidden])", { timeout: 20_000 });
    const banner = await page.textContent("#replay");
    assert.match(banner, /^REPLAY of data at 4x/);
    assert.match(banner, /not live/);
    assert.match(await page.title(), /^REPLAY/);
    // The stream's badge, which says "live" on a run, says what this is.
    await page.waitForFunction(() => document.querySelector("#conn").textContent === "replay");
    assert.equal(await page.textContent("#gateway"), "replay (simulated exchange)");
    // The flip strategy's fills, as they happen or once it has ended.
    await page.waitForSelector("#fills tbody tr td:nth-child(2):text('flip')", { timeout: 60_000 });
    await page.screenshot({ path: OUT + "replay.png", fullPage: true });
    assert.deepEqual(errors, [], "no script errors");
  } finally {
    await browser.close();
  }
});
