import assert from "node:assert/strict";
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { test } from "node:test";

import { SwitchyardError } from "../src/index.js";
import { client, server } from "./helpers.js";

/** A proxy in front of the real server that answers the first `failures` calls with 503. */
async function flaky(failures: number): Promise<{ url: string; seen: IncomingMessage[]; close(): void }> {
  const seen: IncomingMessage[] = [];
  const proxy: Server = createServer(async (req, res) => {
    seen.push(req);
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    if (seen.length <= failures) {
      res.writeHead(503, { "content-type": "application/problem+json", "retry-after": "0" });
      res.end(
        JSON.stringify({
          type: "about:blank",
          title: "Service Unavailable",
          status: 503,
          code: "dependency_unavailable",
          detail: "redis is unavailable",
        }),
      );
      return;
    }
    const headers = new Headers();
    for (const [name, value] of Object.entries(req.headers)) {
      if (typeof value === "string" && name !== "host" && name !== "content-length") headers.set(name, value);
    }
    const upstream = await fetch(server.url + (req.url ?? "/"), {
      method: req.method,
      headers,
      body: chunks.length ? Buffer.concat(chunks) : null,
    });
    res.writeHead(upstream.status, { "content-type": upstream.headers.get("content-type") ?? "text/plain" });
    res.end(Buffer.from(await upstream.arrayBuffer()));
  });
  await new Promise<void>((resolve) => proxy.listen(0, "127.0.0.1", resolve));
  const { port } = proxy.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}`, seen, close: () => proxy.close() };
}

test("an enqueue answered 503 is retried with the same idempotency key and made once", async () => {
  const front = await flaky(2);
  try {
    const job = await client({ baseUrl: front.url }).jobs.enqueue({ kind: "noop", delay_seconds: 600 });
    const keys = front.seen.map((req) => req.headers["idempotency-key"]);

    assert.equal(front.seen.length, 3);
    assert.ok(keys[0]);
    assert.deepEqual(new Set(keys).size, 1, "every try carries the one key");
    assert.equal((await client().jobs.get(job.id))?.state, "scheduled");
  } finally {
    front.close();
  }
});

test("retries stop at the bound and the last 503 is thrown as a typed error", async () => {
  const front = await flaky(100);
  try {
    const error = await client({ baseUrl: front.url, retries: 2 })
      .jobs.get("x")
      .catch((e: unknown) => e);

    assert.ok(error instanceof SwitchyardError);
    assert.equal(error.status, 503);
    assert.equal(error.code, "dependency_unavailable");
    assert.equal(error.retryAfter, 0);
    assert.equal(front.seen.length, 3, "one try and two retries");
  } finally {
    front.close();
  }
});

test("a batch without idempotency keys is not retried: a repeat could enqueue it twice", async () => {
  const front = await flaky(1);
  try {
    const error = await client({ baseUrl: front.url })
      .jobs.enqueueBatch([{ kind: "noop" }])
      .catch((e: unknown) => e);

    assert.ok(error instanceof SwitchyardError);
    assert.equal(error.status, 503);
    assert.equal(front.seen.length, 1);
  } finally {
    front.close();
  }
});

test("a server that cannot be reached is a typed error with status 0 after the retries", async () => {
  const closed = createServer();
  await new Promise<void>((resolve) => closed.listen(0, "127.0.0.1", resolve));
  const { port } = closed.address() as AddressInfo;
  closed.close();

  const error = await client({ baseUrl: `http://127.0.0.1:${port}`, retries: 1 })
    .jobs.get("x")
    .catch((e: unknown) => e);

  assert.ok(error instanceof SwitchyardError);
  assert.equal(error.status, 0);
  assert.equal(error.code, "connection_error");
  assert.ok(error.retryable);
});
