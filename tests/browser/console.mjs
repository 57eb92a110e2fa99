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
const shot = async (name) => {
  await page.screenshot({ path: `${plan.screenshots}/${name}.png`, fullPage: true });
  const text = await page.evaluate(() => document.body.innerText);
  if (/\[object |undefined|NaN/.test(text)) seen.problems.push(`${name}: the page shows ${text.match(/\[object [A-Za-z]+\]|undefined|NaN/)[0]}`);
};
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

// Queues, then the http queue's dead jobs; a job that dies appears without a reload.
await page.click("nav a[href='#/queues']");
await page.waitForSelector("h1:text-is('Queues')");
await shot("queues");
await page.goto(plan.base + "/console#/queues/http");
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
