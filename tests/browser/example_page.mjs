// The Astro example's page in a real browser (Debian's headless Chromium, driven by
// playwright-core), for examples/astro/roundtrip.mjs --browser: the page's socket opens
// with a token from the example's backend, a click on "Start a report" runs a job that
// calls the example back, and the example's realtime event marks the report ready. Fails
// Then a file attached on the page goes straight to Switchyard with an upload token from
// the example's backend (uploadWithToken, bundled for the browser), and one over the
// token's limit is refused with the server's reason. Fails
// (exit 1) on a page error or when any step times out. With a second argument, it saves a
// screenshot of the page there.
//
//   node tests/browser/example_page.mjs <example url> [screenshot.png]
import { launch } from "./chromium.mjs";

const [url, screenshot] = process.argv.slice(2);
const browser = await launch();
try {
  const page = await browser.newPage({ viewport: { width: 900, height: 560 } });
  const problems = [];
  page.on("pageerror", (error) => problems.push(error.message));
  page.on("console", (message) => message.type() === "error" && problems.push(message.text()));
  await page.goto(url);
  await page.waitForSelector('#state[data-state="open"]', { timeout: 20_000 });
  for (let i = 0; i < 2; i++) await page.click("#start");
  await page.setInputFiles("#file", { name: "notes.txt", mimeType: "text/plain", buffer: Buffer.from("attached on the page") });
  await page.waitForSelector("li.stored", { timeout: 20_000 });
  await page.setInputFiles("#file", { name: "big.bin", mimeType: "application/octet-stream", buffer: Buffer.alloc(6 << 20) });
  try {
    await page.waitForFunction(
      () => document.querySelectorAll("li.ready").length === 2 && document.querySelector("li.refused"),
      null,
      { timeout: 30_000 },
    );
  } catch (error) {
    const text = await page.evaluate(() => document.body.innerText);
    throw new Error(`${error.message}\nthe page showed:\n${text}\nand reported: ${problems.join("; ")}`);
  } finally {
    if (screenshot) await page.screenshot({ path: screenshot });
  }
  const stored = await page.textContent("li.stored strong");
  if (stored !== "Stored example-page-notes.txt (20 bytes)") throw new Error(`the upload showed ${stored}`);
  // The refused upload's 413 is the one failed load the page may report.
  const unexpected = problems.filter((p) => !p.includes("413"));
  if (unexpected.length) throw new Error(`the page reported: ${unexpected.join("; ")}`);
  console.log(
    "astro example page: the socket opened with the backend's token, two reports arrived live, " +
      `a file was stored from the page and one too big was refused (${await page.textContent("li.refused strong")})`,
  );
} finally {
  await browser.close();
}
