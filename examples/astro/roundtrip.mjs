// The example's round trip, as CI runs it: starts the built example, asks it for a report,
// and checks that the job Switchyard ran came back signed, was verified by the example's
// route, and succeeded. With `--browser`, it then has headless Chromium open the page
// (tests/browser/example_page.mjs): the socket opens with a token from this backend, a
// click starts a report, and its event arrives. Exits 1 on any failure.
//
// Needs `npm run build` first, and the environment scripts/test-clients.sh sets:
// SWITCHYARD_URL, SWITCHYARD_TOKEN, SWITCHYARD_SIGNING_SECRET, SWITCHYARD_APP_SECRET.
import { spawn } from "node:child_process";
import { createServer } from "node:net";
import { fileURLToPath } from "node:url";

import { Switchyard } from "@switchyard/client";

const here = fileURLToPath(new URL(".", import.meta.url));

async function freePort() {
  const probe = createServer();
  await new Promise((resolve) => probe.listen(0, "127.0.0.1", resolve));
  const { port } = probe.address();
  await new Promise((resolve) => probe.close(resolve));
  return port;
}

async function until(what, check, ms = 30_000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const last = await check().catch((error) => ({ error: String(error) }));
    if (last === true) return;
    if (Date.now() > deadline) throw new Error(`${what}: timed out; last: ${JSON.stringify(last)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

function run(command, args, env) {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { env, stdio: "inherit" });
    child.on("error", reject);
    child.on("exit", (code) => (code === 0 ? resolve() : reject(new Error(`${args.join(" ")} exited with ${code}`))));
  });
}

const port = await freePort();
const example = `http://127.0.0.1:${port}`;
const env = {
  ...process.env,
  HOST: "127.0.0.1",
  PORT: String(port),
  PUBLIC_URL: example,
  SWITCHYARD_KEY: process.env.SWITCHYARD_TOKEN,
  OUTBOUND_SIGNING_SECRET: process.env.SWITCHYARD_SIGNING_SECRET,
  APP_SECRET: process.env.SWITCHYARD_APP_SECRET,
};
const server = spawn(process.execPath, ["dist/server/entry.mjs"], { cwd: here, env, stdio: ["ignore", "ignore", "inherit"] });
try {
  await until("the example starting", async () => (await fetch(`${example}/api/reports/x`)).ok);

  const json = { "content-type": "application/json" };
  const made = await (await fetch(`${example}/api/reports`, { method: "POST", headers: json, body: "{}" })).json();
  const switchyard = new Switchyard({ baseUrl: process.env.SWITCHYARD_URL, token: process.env.SWITCHYARD_TOKEN });
  await until("a verified delivery", async () => {
    const job = await switchyard.jobs.get(made.job_id);
    const seen = await (await fetch(`${example}/api/reports/${made.report_id}`)).json();
    return (job?.state === "succeeded" && seen.delivered) || { job: job?.state, seen };
  });
  // An unsigned call to the same route is refused.
  const forged = await fetch(`${example}/api/hooks/report`, { method: "POST", headers: json, body: '{"report_id":"forged"}' });
  if (forged.status !== 401) throw new Error(`an unsigned call got ${forged.status}, not 401`);
  const { token } = await (await fetch(`${example}/api/realtime-token`)).json();
  if (token.split(".").length !== 3) throw new Error("the example minted no token");
  console.log(`astro example round trip: job ${made.job_id} delivered, verified and succeeded; a forged call got 401`);

  if (process.argv.includes("--browser")) {
    await run(process.execPath, [fileURLToPath(new URL("../../tests/browser/example_page.mjs", import.meta.url)), example, ...(process.env.EXAMPLE_SCREENSHOT ? [process.env.EXAMPLE_SCREENSHOT] : [])], env);
  }
} finally {
  server.kill("SIGTERM");
}
