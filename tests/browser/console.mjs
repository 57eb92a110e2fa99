// The console in a real browser (Debian's headless Chromium, driven by playwright-core),
// for tests/process/console.rs against `app dev`. It reads its plan from
// SWITCHYARD_BROWSER_PLAN (JSON), saves a screenshot of each page into plan.screenshots,
// and prints what it saw as one JSON object; the Rust test asserts on it.

import { launch } from "./chromium.mjs";

const plan = JSON.parse(process.env.SWITCHYARD_BROWSER_PLAN);
const browser = await launch();
const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
const seen = { problems: [], steps: {} };
// Refusals the test provokes on purpose (a wrong token, a change without CSRF): their
// responses are expected, and so is the one console line Chromium logs for each.
const provoked = [];
const consoleErrors = [];
page.on("console", (m) => {
  if (m.type() === "error") consoleErrors.push(m.text());
});
page.on("pageerror", (e) => seen.problems.push("page error: " + e.message));
page.on("requestfailed", (r) => {
  // A live stream cut by a navigation or sign-out is not a failed request.
  if (!r.url().endsWith("/console/live")) seen.problems.push("failed: " + r.url());
});
page.on("response", (r) => {
  if (r.status() < 400) return;
  if (plan.expected_refusals.some((p) => r.url().endsWith(p))) provoked.push(r.status());
  else seen.problems.push(r.status() + " " + r.url());
});
// Each page is photographed, and its text checked for an object drawn as text.
// Each page's controls are checked too: every field has a label and every button a name.
const shot = async (name) => {
  await page.screenshot({ path: `${plan.screenshots}/${name}.png`, fullPage: true });
  const text = await page.evaluate(() => document.body.innerText);
  if (/\[object |undefined|NaN/.test(text)) seen.problems.push(`${name}: the page shows ${text.match(/\[object [A-Za-z]+\]|undefined|NaN/)[0]}`);
  const unnamed = await page.evaluate(() => {
    const named = (el) => el.getAttribute("aria-label") || (el.id && document.querySelector(`label[for="${el.id}"]`)) || el.closest("label");
    return [
      ...[...document.querySelectorAll("#app input, #app select, #app textarea")].filter((el) => !named(el)).map((el) => el.outerHTML.slice(0, 80)),
      ...[...document.querySelectorAll("#app button")].filter((b) => !b.textContent.trim() && !b.getAttribute("aria-label")).map((b) => b.outerHTML.slice(0, 80)),
    ];
  });
  for (const control of unnamed) seen.problems.push(`${name}: no accessible name: ${control}`);
};
page.on("dialog", (dialog) => dialog.accept());
const admin = (method, path, body) =>
  fetch(plan.base + path, {
    method,
    headers: { Authorization: `Bearer ${plan.token}`, "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  }).then(async (r) => ({ status: r.status, body: await r.json().catch(() => null) }));

// Sign-in: a wrong token is refused on the page, the right one opens the console.
await page.goto(plan.base + "/console");
await page.waitForSelector("#token");
await shot("signin");
await page.fill("#token", "not-the-token");
await page.click("button[type=submit]");
await page.waitForSelector(".error:not(:empty)");
seen.steps.wrong_token = await page.textContent(".error");
await page.fill("#token", plan.token);
await page.click("button[type=submit]");
await page.waitForSelector("h1:text-is('Overview')");
seen.steps.stored = await page.evaluate(() => ({ local: localStorage.length, session: sessionStorage.length, cookie: document.cookie }));
await shot("overview");
seen.steps.chart = await page.getAttribute("figure.chart svg", "aria-label");

// The keyboard alone reaches the navigation and opens a page.
let reached = null;
for (let i = 0; i < 20 && reached !== "Queues"; i++) {
  await page.keyboard.press("Tab");
  reached = await page.evaluate(() => document.activeElement && document.activeElement.textContent);
}
await page.keyboard.press("Enter");
await page.waitForSelector("h1:text-is('Queues')");
seen.steps.keyboard = await page.evaluate(() => location.hash);

// Queues, then the http queue's dead jobs; a job that dies appears without a reload.
await shot("queues");
await page.goto(plan.base + "/console#/queues/http/dead");
await page.waitForSelector("h2:text-is('Dead jobs in http')");
await page.evaluate(() => (window.__not_reloaded = true));
const made = await admin("POST", "/api/v1/jobs", {
  kind: "http",
  payload: { url: plan.failing_url },
  max_attempts: 1,
});
seen.steps.enqueued = made.status;
const jobId = made.body && made.body.id;
await page.waitForSelector(`code:text-is('${jobId}')`, { timeout: 20_000 });
seen.steps.dead_appeared_live = await page.evaluate(() => window.__not_reloaded === true);
await shot("dead-jobs");

// Retried from the console: the target answers 200 this time, and the job leaves the list.
await page.click(`tr:has(code:text-is('${jobId}')) button:text-is('Retry')`);
await page.waitForSelector(`code:text-is('${jobId}')`, { state: "detached", timeout: 20_000 });
const job = await admin("GET", `/api/v1/jobs/${jobId}`);
for (let i = 0; i < 100 && job.body && job.body.state !== "succeeded"; i++) {
  await new Promise((r) => setTimeout(r, 100));
  Object.assign(job, await admin("GET", `/api/v1/jobs/${jobId}`));
}
seen.steps.retried_state = job.body && job.body.state;

// A delayed job is listed under its queue's scheduled jobs and leads to its page.
const delayed = await admin("POST", "/api/v1/jobs", { kind: "noop", delay_seconds: 600 });
await page.goto(plan.base + "/console#/queues/default/scheduled");
await page.waitForSelector(`a:has(code:text-is('${delayed.body.id}'))`);
await shot("scheduled-jobs");
await page.click(`a:has(code:text-is('${delayed.body.id}'))`);
await page.waitForSelector("ol.history");
seen.steps.delayed_history = await page.textContent("ol.history");

// Dead jobs deleted all at once, after the confirmation.
const doomed = await admin("POST", "/api/v1/jobs", { kind: "http", payload: { url: plan.refused_url }, max_attempts: 1 });
await page.goto(plan.base + "/console#/queues/http/dead");
await page.waitForSelector(`code:text-is('${doomed.body.id}')`, { timeout: 20_000 });
await page.click("button:text-is('Delete all')");
await page.waitForSelector("#flash:not(:empty)");
seen.steps.bulk_deleted = await page.textContent("#flash");
seen.steps.dead_after = (await admin("GET", "/api/v1/queues/http/dead")).body.jobs.length;

// The job's own page: its attempts and its state.
await page.goto(plan.base + "/console#/job/" + jobId);
await page.waitForSelector("dl.facts");
seen.steps.job_page_state = await page.textContent("dl.facts dd:nth-of-type(3)");
await shot("job");

// A file uploaded with the file input appears in the list.
await page.goto(plan.base + "/console#/files");
await page.waitForSelector("h1:text-is('Files')");
await page.setInputFiles("#file", { name: "hello.txt", mimeType: "text/plain", buffer: Buffer.from("hello from the console\n") });
await page.waitForSelector("td:text-is('hello.txt')", { timeout: 20_000 });
seen.steps.uploaded = await page.textContent("#flash");
const [download] = await Promise.all([
  page.waitForEvent("download"),
  page.click("tr:has-text('hello.txt') a:text-is('Download')"),
]);
seen.steps.downloaded = { name: download.suggestedFilename(), failure: await download.failure() };
await shot("files");

// A schedule run now makes a job, reachable from the page.
await page.goto(plan.base + "/console#/schedules");
await page.waitForSelector("h1:text-is('Schedules')");
await page.click("tr:has-text('maintenance.deletes') button:text-is('Pause')");
await page.waitForSelector("#flash:text-is('Paused maintenance.deletes.')");
seen.steps.paused = await page.textContent("tr:has-text('maintenance.deletes') td:nth-child(5)");
await page.click("tr:has-text('maintenance.deletes') button:text-is('Resume')");
await page.waitForSelector("#flash:text-is('Resumed maintenance.deletes.')");
await page.click("tr:has-text('maintenance.deletes') button:text-is('Run now')");
await page.click("a:text-is('its job')");
await page.waitForSelector("dl.facts");
seen.steps.scheduled_job_kind = await page.textContent("dl.facts dd:nth-of-type(2)");
await shot("schedules-job");

// Realtime: this process's hub is listed, and a test event is published from the form.
await page.goto(plan.base + "/console#/realtime");
await page.waitForSelector("h1:text-is('Realtime')");
await page.waitForFunction(() => document.querySelectorAll("main table")[1].querySelectorAll("tbody tr td.num").length > 0, null, { timeout: 20_000 });
await page.fill("#rt-channel", "console.test");
await page.fill("#rt-data", '{"n": 1}');
await page.click("button:text-is('Publish')");
await page.waitForSelector("p[role=status]:has-text('Published to console.test')");
seen.steps.published = await page.textContent("p[role=status]:has-text('Published')");
await page.fill("#rt-data", "{not json");
await page.click("button:text-is('Publish')");
await page.waitForSelector("p.error:has-text('not JSON')");
await shot("realtime");

// Webhooks: an endpoint, a test delivery to it, replayed from its delivery log.
const endpoint = await admin("POST", "/api/v1/webhooks", { url: plan.hook_url, event_types: ["*"] });
seen.steps.endpoint = endpoint.status;
const test = await admin("POST", `/api/v1/webhooks/${endpoint.body.id}/test`, {});
// Replay takes a finished delivery: wait for the test one to arrive.
for (let i = 0; i < 200; i++) {
  const log = await admin("GET", `/api/v1/webhooks/${endpoint.body.id}/deliveries`);
  const done = log.body.deliveries.find((d) => d.id === test.body.id);
  if (done && done.status === "succeeded") break;
  await new Promise((r) => setTimeout(r, 100));
}
await page.goto(plan.base + "/console#/webhooks/" + endpoint.body.id);
await page.waitForSelector("h2:has-text('Deliveries to')");
await page.waitForSelector("button:text-is('Replay')", { timeout: 20_000 });
await page.click("button:text-is('Replay')");
await page.waitForSelector("#flash:not(:empty)");
seen.steps.replayed = await page.textContent("#flash");
await shot("webhooks");

for (const name of ["audit", "keys"]) {
  await page.goto(plan.base + "/console#/" + name);
  await page.waitForSelector("main h1");
  await page.waitForLoadState("networkidle");
  await shot(name);
}

// The API reference renders every path of the OpenAPI document.
await page.goto(plan.base + "/docs");
await page.waitForFunction(() => {
  const doc = document.querySelector("rapi-doc");
  return doc && doc.shadowRoot && doc.shadowRoot.textContent.includes("/api/v1/jobs");
}, null, { timeout: 20_000 });
const spec = await (await fetch(plan.base + "/api/openapi.json")).json();
const rendered = await page.evaluate(() => document.querySelector("rapi-doc").shadowRoot.textContent);
seen.steps.docs_paths = Object.keys(spec.paths).length;
seen.steps.docs_missing = Object.keys(spec.paths).filter((path) => !rendered.includes(path));
await shot("docs");
await page.goto(plan.base + "/console#/overview");
await page.waitForSelector("h1:text-is('Overview')");

// On a phone, in the dark scheme: nothing runs off the side of the page.
await page.setViewportSize({ width: 390, height: 844 });
await page.emulateMedia({ colorScheme: "dark" });
for (const name of ["overview", "queues/http/dead", "realtime"]) {
  await page.goto(plan.base + "/console#/" + name);
  await page.waitForSelector("main h1");
  await page.waitForLoadState("networkidle");
  const wide = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  if (wide > 1) seen.problems.push(`${name} is ${wide}px wider than a phone`);
  await shot("phone-" + name.split("/")[0]);
}
seen.steps.dark_background = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
// Text against its background meets WCAG AA (4.5:1) in both schemes, for every pair the
// style sheet puts together.
const contrast = () => page.evaluate(() => {
  const css = getComputedStyle(document.documentElement);
  const rgb = (name) => {
    const probe = document.createElement("span");
    probe.style.color = css.getPropertyValue(name);
    document.body.append(probe);
    const parts = getComputedStyle(probe).color.match(/\d+/g).map(Number);
    probe.remove();
    return parts;
  };
  const lum = ([r, g, b]) => [r, g, b].map((c) => ((c /= 255) <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4))
    .reduce((sum, c, i) => sum + c * [0.2126, 0.7152, 0.0722][i], 0);
  const ratio = (a, b) => {
    const [x, y] = [lum(rgb(a)), lum(rgb(b))].sort((p, q) => q - p);
    return (x + 0.05) / (y + 0.05);
  };
  const pairs = [["--text", "--bg"], ["--text", "--panel"], ["--muted", "--panel"], ["--muted", "--bg"],
    ["--accent", "--panel"], ["--accent-text", "--accent"], ["--good", "--panel"], ["--bad", "--panel"], ["--warn", "--panel"]];
  return pairs.map(([a, b]) => [a + " on " + b, Math.round(ratio(a, b) * 10) / 10]).filter(([, r]) => r < 4.5);
});
seen.steps.low_contrast = { dark: await contrast() };
await page.setViewportSize({ width: 1280, height: 800 });
await page.emulateMedia({ colorScheme: "light" });
seen.steps.low_contrast.light = await contrast();

// A change without the CSRF token, from the signed-in page itself, is refused.
seen.steps.without_csrf = await page.evaluate(async () => {
  const r = await fetch("/api/v1/jobs", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ kind: "noop", payload: {} }),
  });
  return { status: r.status, body: await r.json() };
});

// Sign-out: back to the sign-in page, and the session is gone.
await page.click("button:text-is('Sign out')");
await page.waitForSelector("#token");
seen.steps.after_sign_out = await page.evaluate(async () => (await fetch("/console/session")).status);

await browser.close();
for (const text of consoleErrors) {
  const status = Number((text.match(/status of (\d+)/) || [])[1]);
  const at = provoked.indexOf(status);
  if (text.startsWith("Failed to load resource") && at >= 0) provoked.splice(at, 1);
  else seen.problems.push("console: " + text);
}
process.stdout.write(JSON.stringify(seen));
