import assert from "node:assert/strict";
import type { AddressInfo } from "node:net";
import { test } from "node:test";

import express from "express";
import Fastify from "fastify";

import { DeliveryVerifier } from "../src/index.js";
import { client, eventually, server } from "./helpers.js";

/** Sends an http job to `url` and waits until it succeeds; returns what the route saw. */
async function deliveredThrough(url: string, seen: unknown[]): Promise<unknown> {
  const switchyard = client();
  const job = await switchyard.jobs.http({ url, body: { report: 7 } }, { max_attempts: 1 });
  const done = await eventually(() => switchyard.jobs.get(job.id), (j) => j?.state === "succeeded" || j?.state === "dead");
  assert.equal(done?.state, "succeeded", JSON.stringify(done));
  return seen.at(-1);
}

async function forged(url: string): Promise<{ status: number; type: string | null; code: unknown }> {
  const answer = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json", "webhook-id": "msg_x", "webhook-timestamp": "1", "webhook-signature": "v1,AAAA" },
    body: '{"report":7}',
  });
  return { status: answer.status, type: answer.headers.get("content-type"), code: (await answer.json()).code };
}

test("an http job delivered to an Express route passes verifier.express(), and a forged call is a 401 problem", async () => {
  const verifier = new DeliveryVerifier(server.signingSecret);
  const seen: unknown[] = [];
  const app = express();
  app.post("/hooks/report", express.raw({ type: "*/*" }), verifier.express(), (req, res) => {
    seen.push(req.body);
    res.sendStatus(204);
  });
  // Other routes keep Express's JSON parsing.
  app.post("/other", express.json(), (req, res) => res.json(req.body));
  const listener = app.listen(0, "127.0.0.1");
  await new Promise((resolve) => listener.once("listening", resolve));
  const base = `http://127.0.0.1:${(listener.address() as AddressInfo).port}`;
  try {
    assert.deepEqual(await deliveredThrough(`${base}/hooks/report`, seen), { report: 7 });
    const refused = await forged(`${base}/hooks/report`);
    assert.equal(refused.status, 401);
    assert.equal(refused.code, "invalid_signature");
    const other = await fetch(`${base}/other`, { method: "POST", headers: { "content-type": "application/json" }, body: '{"a":1}' });
    assert.deepEqual(await other.json(), { a: 1 });
  } finally {
    listener.close();
  }
});

test("an http job delivered to a Fastify route passes verifier.fastify(), and a forged call is a 401 problem", async () => {
  const verifier = new DeliveryVerifier(server.signingSecret);
  const seen: unknown[] = [];
  const app = Fastify();
  await app.register(async (hooks) => {
    verifier.fastify(hooks);
    hooks.post("/hooks/report", async (request, reply) => {
      seen.push(request.body);
      return reply.code(204).send();
    });
  });
  // Outside the encapsulated instance, Fastify parses JSON as usual.
  app.post("/other", async (request) => request.body);
  const base = await app.listen({ port: 0, host: "127.0.0.1" });
  try {
    assert.deepEqual(await deliveredThrough(`${base}/hooks/report`, seen), { report: 7 });
    const refused = await forged(`${base}/hooks/report`);
    assert.deepEqual(refused, { status: 401, type: "application/problem+json; charset=utf-8", code: "invalid_signature" });
    const other = await fetch(`${base}/other`, { method: "POST", headers: { "content-type": "application/json" }, body: '{"a":1}' });
    assert.deepEqual(await other.json(), { a: 1 });
  } finally {
    await app.close();
  }
});
