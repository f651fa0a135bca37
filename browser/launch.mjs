// What every browser test shares: Debian's Chromium launched headless as the tests need it
// (no sandbox in a container, no GPU, nothing fetched in the background), and where
// screenshots go.
import { mkdirSync } from "node:fs";
import { chromium } from "playwright-core";

export const OUT = new URL("./artifacts/", import.meta.url).pathname;

export async function launch() {
  mkdirSync(OUT, { recursive: true });
  return chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
}
