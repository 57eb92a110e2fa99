// Launches Debian's headless Chromium (CHROMIUM_PATH, else /usr/bin/chromium) through
// playwright-core, which never downloads a browser. The flags keep it off the network
// this machine does not have: no background fetches, no QUIC, no first-run work.
import { chromium } from "playwright-core";

export function launch() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM_PATH || "/usr/bin/chromium",
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
}
