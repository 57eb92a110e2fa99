// Measures the console's first load in headless Chromium (bench/console.sh): the bytes
// transferred for /console and its assets with an empty cache (compressed, as on the
// wire), the time until the sign-in page is drawn, and, signed in, the time from
// navigation until the Overview is fully drawn (its figures and tables filled), as the
// page itself marks them (performance marks, since navigation start). Prints one JSON
// object per round.
// The browser as the tests launch it (playwright-core is installed in tests/browser).
import { launch } from "../../tests/browser/chromium.mjs";

const [base, token, rounds] = [process.argv[2], process.argv[3], Number(process.argv[4] || 5)];
const browser = await launch();
for (let round = 0; round < rounds; round++) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await context.newPage();
  const cdp = await context.newCDPSession(page);
  await cdp.send("Network.enable");
  await cdp.send("Network.setCacheDisabled", { cacheDisabled: true });
  let bytes = 0;
  cdp.on("Network.loadingFinished", (e) => (bytes += e.encodedDataLength));
  await page.goto(base + "/console");
  await page.waitForSelector("#token");
  // The page marks when it has drawn: time since navigation start, no driver overhead.
  const mark = (name) => page.evaluate((n) => performance.getEntriesByName(n)[0].startTime, name);
  const signinMs = await mark("console:signin");
  const firstLoadBytes = bytes;
  await page.fill("#token", token);
  await page.click("button[type=submit]");
  await page.waitForSelector("h1:text-is('Overview')");
  // Signed in now; a fresh navigation draws the Overview from scratch.
  await cdp.send("Network.setCacheDisabled", { cacheDisabled: false });
  await page.reload();
  await page.waitForFunction(() => performance.getEntriesByName("console:drawn").length > 0);
  const overviewMs = await mark("console:drawn");
  console.log(JSON.stringify({ round, first_load_bytes: firstLoadBytes, signin_ms: signinMs, overview_ms: overviewMs }));
  await context.close();
}
await browser.close();
