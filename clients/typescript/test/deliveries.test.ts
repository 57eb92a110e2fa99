import assert from "node:assert/strict";
import { test } from "node:test";

import { Webhook } from "standardwebhooks";

import { DeliveryRejected, DeliveryVerifier } from "../src/index.js";
import { Receiver, client, eventually, server } from "./helpers.js";

test("an http job comes back as a signed call the verifier accepts, and then succeeds", async () => {
  const receiver = await Receiver.start(new DeliveryVerifier(server.signingSecret));
  try {
    const switchyard = client();
    const job = await switchyard.jobs.http({ url: `${receiver.url}/report`, body: { report: 42 } }, { max_attempts: 1 });
    const done = await eventually(() => switchyard.jobs.get(job.id), (j) => j?.state === "succeeded");

    assert.equal(done?.state, "succeeded");
    assert.deepEqual(receiver.received, [{ report: 42 }]);
  } finally {
    receiver.close();
  }
});

test("a job whose call fails dies, is listed as dead, and is queued again by retryDead", async () => {
  const receiver = await Receiver.start(undefined, 500);
  try {
    const switchyard = client();
    const job = await switchyard.jobs.http({ url: `${receiver.url}/fails` }, { max_attempts: 1, queue: "http" });
    const listed = await eventually(
      async () => {
        const dead: string[] = [];
        for await (const j of switchyard.jobs.allDead("http")) dead.push(j.id);
        return dead;
      },
      (dead) => dead.includes(job.id),
    );
    const retried = await switchyard.jobs.retryDead("http");

    assert.ok(listed.includes(job.id));
    assert.ok(retried >= 1);
  } finally {
    receiver.close();
  }
});

test("a tampered body, a wrong secret or an old timestamp is rejected", () => {
  const secret = server.signingSecret;
  const signer = new Webhook(secret);
  const body = JSON.stringify({ ok: true });
  const sign = (at: Date) => ({
    "webhook-id": "msg_1",
    "webhook-timestamp": String(Math.floor(at.getTime() / 1000)),
    "webhook-signature": signer.sign("msg_1", at, body),
  });
  const verifier = new DeliveryVerifier(secret);
  const other = new DeliveryVerifier(`whsec_${Buffer.from("x".repeat(32)).toString("base64")}`);

  assert.deepEqual(verifier.verify(body, sign(new Date())), { ok: true });
  assert.throws(() => verifier.verify(body.replace("true", "false"), sign(new Date())), DeliveryRejected);
  assert.throws(() => other.verify(body, sign(new Date())), DeliveryRejected);
  assert.throws(() => verifier.verify(body, sign(new Date(Date.now() - 10 * 60_000))), DeliveryRejected);
  assert.throws(() => verifier.verify(body, {}), DeliveryRejected);
});

test("during a rotation a call signed with either secret passes, and route() answers 401 otherwise", async () => {
  const previous = server.signingSecret;
  const next = `whsec_${Buffer.from("n".repeat(32)).toString("base64")}`;
  const verifier = new DeliveryVerifier([next, previous]);
  const body = JSON.stringify({ n: 1 });
  const at = new Date();
  const headers = (secret: string) => ({
    "webhook-id": "msg_2",
    "webhook-timestamp": String(Math.floor(at.getTime() / 1000)),
    "webhook-signature": new Webhook(secret).sign("msg_2", at, body),
  });
  const handler = verifier.route((verified) => Response.json({ verified }));
  const good = await handler(new Request("http://x/", { method: "POST", body, headers: headers(previous) }));
  const bad = await handler(new Request("http://x/", { method: "POST", body: `${body} `, headers: headers(next) }));

  assert.deepEqual(verifier.verify(body, headers(next)), { n: 1 });
  assert.deepEqual(await good.json(), { verified: { n: 1 } });
  assert.equal(bad.status, 401);
  assert.equal((await bad.json()).code, "invalid_signature");
});
