// The dashboard in a real browser: headless Chromium (Debian's, never a downloaded one) against
// `moontick run` on the simulator, started by run.sh. Logs in, sees the strategy, sees a
// position appear without reloading, pauses and resumes the strategy, halts, sees it halted. Screenshots go to artifacts/.
import { test } from "node:test";
import assert from "node:assert/strict";
import { OUT, launch } from "./launch.mjs";

const BASE = process.env.BASE_URL;
const SECRET = process.env.SECRET;

test("log in, watch a position appear live, halt", { timeout: 120_000 }, async () => {
  assert.ok(BASE && SECRET, "BASE_URL and SECRET are set by run.sh");
  const browser = await launch();
  try {
    const page = await browser.newPage({ viewport: { width: 1100, height: 900 } });
    const errors = [];
    page.on("pageerror", (e) => errors.push(String(e)));
    page.on("dialog", (d) => d.accept());

    // Without a session: the login form, and no data.
    await page.goto(BASE + "/");
    await page.waitForSelector("form[action='/login']");
    assert.equal(await page.locator("#positions").count(), 0, "no dashboard before login");

    await page.fill("#secret", "wrong");
    await page.click("button[type=submit]");
    await page.waitForSelector("text=Wrong secret.");
    await page.fill("#secret", SECRET);
    await page.click("button[type=submit]");

    // The strategy appears, live.
    const row = page.locator("#strategies tr[data-strategy='buyer']");
    await row.waitFor({ timeout: 20_000 });
    await page.waitForFunction(() => document.querySelector("#conn").textContent === "live");
    assert.match(await row.locator("td.state").textContent(), /running/);
    assert.match(await page.locator("#positions tbody").textContent(), /flat/);
    const cookies = await page.context().cookies();
    const session = cookies.find((c) => c.name === "moontick_session");
    assert.ok(session && session.httpOnly && session.sameSite === "Strict", JSON.stringify(cookies));
    assert.notEqual(session.value, SECRET);

    // A webhook makes the strategy buy: the position and the fill appear without a reload.
    const navigations = [];
    page.on("framenavigated", (f) => { if (f === page.mainFrame()) navigations.push(f.url()); });
    const r = await fetch(BASE + "/webhook/buyer", {
      method: "POST",
      headers: { "content-type": "application/json", "x-webhook-secret": SECRET },
      body: JSON.stringify({ id: "browser-test-buy" }),
    });
    assert.equal(r.status, 200, await r.text());
    await page.waitForFunction(() => {
      const t = document.querySelector("#positions tbody").textContent;
      return t.includes("MNQ") && t.includes("+1");
    }, null, { timeout: 20_000 });
    await page.waitForFunction(() => document.querySelector("#fills tbody").textContent.includes("buyer"));
    // The bracket's legs are working orders, and they protect the position.
    await page.waitForFunction(() => {
      const o = document.querySelector("#orders tbody").textContent;
      return o.includes("stop_loss") && o.includes("take_profit");
    }, null, { timeout: 20_000 });
    await page.waitForFunction(() => document.querySelector("#positions tbody").textContent.includes("yes"), null, { timeout: 20_000 });
    await page.waitForTimeout(1500); // a few more pushes: the curve and quote ages fill in
    assert.deepEqual(navigations, [], "the page was not reloaded");
    await page.screenshot({ path: OUT + "dashboard.png", fullPage: true });

    // Pause and resume the strategy from its row.
    await row.locator("button", { hasText: "Pause" }).click();
    await page.waitForFunction(() => document.querySelector("#strategies td.state").textContent === "paused", null, { timeout: 20_000 });
    await row.locator("button", { hasText: "Resume" }).click();
    await page.waitForFunction(() => document.querySelector("#strategies td.state").textContent === "running", null, { timeout: 20_000 });

    // Halt from the page: the account and the strategy show halted, the position is closed.
    await page.click("#halt");
    await page.waitForSelector("#halted:not([hidden])", { timeout: 20_000 });
    await page.waitForFunction(() => document.querySelector("#strategies td.state").textContent === "halted");
    assert.match(await page.locator("#halt-reason").textContent(), /Halted: /);
    await page.waitForFunction(() => document.querySelector("#positions tbody").textContent.includes("flat"), null, { timeout: 20_000 });
    await page.waitForFunction(() => document.querySelector("#orders tbody").textContent.includes("none"), null, { timeout: 20_000 });
    await page.screenshot({ path: OUT + "dashboard-halted.png", fullPage: true });

    // On a phone: one column, nothing wider than the screen.
    await page.setViewportSize({ width: 390, height: 844 });
    await page.waitForTimeout(300);
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 1, `the page is ${overflow}px wider than a phone`);
    await page.screenshot({ path: OUT + "dashboard-phone.png", fullPage: true });

    assert.deepEqual(errors, [], "no script errors on the page");
  } finally {
    await browser.close();
  }
});
