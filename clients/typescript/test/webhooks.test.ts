import assert from "node:assert/strict";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { test } from "node:test";

import { DeliveryVerifier, SwitchyardError } from "../src/index.js";
import { client, eventually } from "./helpers.js";

test("an endpoint receives the events it subscribes to, signed with its own secret", async () => {
  const received: unknown[] = [];
  let verifier: DeliveryVerifier | undefined;
  const receiver = createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    try {
      received.push(verifier?.verify(Buffer.concat(chunks), req.headers));
      res.writeHead(204).end();
    } catch {
      res.writeHead(401).end();
    }
  });
  await new Promise<void>((resolve) => receiver.listen(0, "127.0.0.1", resolve));
  const { port } = receiver.address() as AddressInfo;
  const switchyard = client();
  const type = `invoices.${crypto.randomUUID().slice(0, 8)}`;
  const endpoint = await switchyard.webhooks.create({
    url: `http://127.0.0.1:${port}/hooks`,
    event_types: [type],
  });
  verifier = new DeliveryVerifier(endpoint.secret);
  try {
    await switchyard.events.send({ type, data: { invoice: 9 } });
    await eventually(async () => received.length, (n) => n > 0);
    const page = await eventually(() => switchyard.webhooks.deliveries(endpoint.id), (p) => p.deliveries.length > 0);

    const body = received[0] as { type: string; data: unknown };
    assert.equal(body.type, type);
    assert.deepEqual(body.data, { invoice: 9 });
    assert.equal(page.deliveries[0]?.event_type, type);
    assert.ok((await switchyard.webhooks.list()).some((e) => e.id === endpoint.id));
    assert.equal((await switchyard.webhooks.update(endpoint.id, { enabled: false })).enabled, false);
  } finally {
    await switchyard.webhooks.delete(endpoint.id);
    receiver.close();
  }
  assert.equal(await switchyard.webhooks.get(endpoint.id), null);
});

test("an endpoint with a bad URL is a 422 naming the field", async () => {
  const error = await client()
    .webhooks.create({ url: "not a url", event_types: ["*"] })
    .catch((e: unknown) => e);

  assert.ok(error instanceof SwitchyardError);
  assert.equal(error.status, 422);
  assert.equal(error.field, "url");
});
