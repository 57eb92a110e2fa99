// Cross-origin use of Switchyard from a real browser (Debian's headless Chromium, driven
// by playwright-core), for tests/process/browser.rs. It reads the plan from the
// SWITCHYARD_BROWSER_PLAN environment variable (JSON) and prints what each page saw as one
// JSON object; the Rust test asserts on it. It asserts nothing itself.
//
// From each page's origin it:
// - uploads a file with the upload token (a multipart fetch with an Authorization header,
//   so the browser sends a CORS preflight first), and reads the exposed X-Request-Id;
// - opens a realtime socket with the realtime token, subscribes, and waits for the event
//   this script publishes through the API once the page says it is subscribed.

import { launch } from "./chromium.mjs";

const plan = JSON.parse(process.env.SWITCHYARD_BROWSER_PLAN);

const browser = await launch();

/** What one page at `origin` saw. */
async function visit(origin) {
  const page = await browser.newPage();
  const console = [];
  page.on("console", (message) => console.push(message.text()));
  await page.goto(origin);

  const upload = await page.evaluate(async ({ api, token }) => {
    // A one-pixel PNG.
    const png = Uint8Array.from(
      atob(
        "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGP4z8AAAAMBAQDJ/pLvAAAAAElFTkSuQmCC",
      ),
      (c) => c.charCodeAt(0),
    );
    const body = new FormData();
    body.append("file", new Blob([png], { type: "image/png" }), "pixel.png");
    try {
      const response = await fetch(`${api}/api/v1/files`, {
        method: "POST",
        body,
        headers: { Authorization: `Bearer ${token}` },
      });
      return {
        status: response.status,
        body: await response.json(),
        request_id: response.headers.get("x-request-id"),
      };
    } catch (error) {
      return { error: String(error) };
    }
  }, { api: plan.api, token: plan.upload_token });

  // The socket runs in the page; this script publishes once the page is subscribed.
  const subscribed = page.evaluate(({ ws, token, channel }) => {
    return new Promise((resolve) => {
      const seen = [];
      const socket = new WebSocket(`${ws}/api/v1/realtime?token=${token}`);
      window.__events = seen;
      socket.onmessage = (message) => {
        const frame = JSON.parse(message.data);
        seen.push(frame);
        if (frame.type === "connected") {
          socket.send(JSON.stringify({ type: "subscribe", channels: [channel] }));
        }
        if (frame.type === "subscribed") resolve({ subscribed: true });
      };
      socket.onerror = () => resolve({ subscribed: false, error: "the socket failed" });
      socket.onclose = (event) =>
        resolve({ subscribed: false, error: `closed with ${event.code}` });
      setTimeout(() => resolve({ subscribed: false, error: "timed out" }), 10_000);
    });
  }, { ws: plan.realtime_ws, token: plan.realtime_token, channel: plan.channel });
  const realtime = await subscribed;

  if (realtime.subscribed) {
    const published = await fetch(`${plan.realtime_api}/api/v1/realtime/publish`, {
      method: "POST",
      headers: {
        Authorization: `Bearer ${plan.admin_token}`,
        "Content-Type": "application/json",
      },
      body: JSON.stringify({ channel: plan.channel, event: "greeting", data: { from: origin } }),
    });
    realtime.published = published.status;
    realtime.event = await page.evaluate(async () => {
      for (let i = 0; i < 100; i++) {
        const event = window.__events.find((f) => f.type === "event");
        if (event) return event;
        await new Promise((r) => setTimeout(r, 100));
      }
      return null;
    });
  }
  await page.close();
  return { upload, realtime, console };
}

const result = {
  allowed: await visit(plan.allowed_origin),
  blocked: await visit(plan.blocked_origin),
};
await browser.close();
process.stdout.write(JSON.stringify(result));
