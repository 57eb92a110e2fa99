import assert from "node:assert/strict";
import { test } from "node:test";

import { DeliveryVerifier, SwitchyardError } from "../src/index.js";
import { Receiver, client, eventually } from "./helpers.js";

test("an endpoint receives the events it subscribes to, signed with its own secret", async () => {
  const receiver = await Receiver.start();
  const switchyard = client();
  const type = `invoices.${crypto.randomUUID().slice(0, 8)}`;
  const endpoint = await switchyard.webhooks.create({ url: receiver.url, event_types: [type] });
  receiver.verifier = new DeliveryVerifier(endpoint.secret);
  try {
    await switchyard.events.send({ type, data: { invoice: 9 } });
    await eventually(async () => receiver.received.length, (n) => n > 0);
    const page = await eventually(() => switchyard.webhooks.deliveries(endpoint.id), (p) => p.deliveries.length > 0);

    const body = receiver.received[0] as { type: string; data: unknown };
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

test("a failed delivery is recovered and replayed, and a rotated secret signs beside the old one", async () => {
  const switchyard = client();
  const receiver = await Receiver.start(undefined, 500);
  const type = `invoices.${crypto.randomUUID().slice(0, 8)}`;
  const endpoint = await switchyard.webhooks.create({ url: receiver.url, event_types: [type] });
  receiver.verifier = new DeliveryVerifier(endpoint.secret);
  const since = new Date(Date.now() - 5_000);
  try {
    // The test server retries once after 200 ms, so the delivery fails at once.
    await switchyard.events.send({ type, data: { invoice: 9 } });
    const [failed] = (
      await eventually(
        () => switchyard.webhooks.deliveries(endpoint.id, { status: "failed" }),
        (page) => page.deliveries.length === 1,
      )
    ).deliveries;
    assert.ok(failed);
    const detail = await switchyard.webhooks.delivery(endpoint.id, failed.id);

    receiver.status = 204;
    const recovered = await switchyard.webhooks.recover(endpoint.id, since);
    await eventually(
      () => switchyard.webhooks.delivery(endpoint.id, failed.id),
      (d) => d?.status === "succeeded",
    );
    await switchyard.webhooks.replay(endpoint.id, failed.id);
    await eventually(async () => receiver.received.length, (n) => n === 2);

    const rotated = await switchyard.webhooks.rotateSecret(endpoint.id);
    receiver.verifier = new DeliveryVerifier(rotated.secret);
    // Workers read an endpoint again after at most a second.
    await new Promise((r) => setTimeout(r, 1_100));
    const sent = await switchyard.webhooks.test(endpoint.id);
    await eventually(async () => receiver.received.length, (n) => n === 3);
    const last = receiver.calls.at(-1)!;

    assert.equal(failed.event_type, type);
    assert.deepEqual(
      detail?.attempts.map((a) => a.status),
      [500, 500],
    );
    assert.equal(recovered, 1);
    assert.deepEqual(receiver.received[0], receiver.received[1]);
    assert.equal(receiver.calls.at(-2)!.headers["webhook-id"], receiver.calls.at(-3)!.headers["webhook-id"]);
    assert.equal(sent.trigger, "test");
    assert.equal((receiver.received[2] as { type: string }).type, "webhook.test");
    // During the overlap each call carries both signatures.
    assert.equal((new DeliveryVerifier(endpoint.secret).verify(last.body, last.headers) as { type: string }).type, "webhook.test");
    assert.ok(new Date(rotated.previous_secret_valid_until) > new Date());
  } finally {
    receiver.close();
    await switchyard.webhooks.delete(endpoint.id);
  }
});

test("recover refuses a time that is not RFC 3339, and unknown deliveries are null or 404", async () => {
  const switchyard = client();
  const endpoint = await switchyard.webhooks.create({ url: "http://127.0.0.1:9/hooks", event_types: ["reports.*"] });
  try {
    const badTime = await switchyard.webhooks.recover(endpoint.id, "yesterday").catch((e: unknown) => e);
    const badStatus = await switchyard.webhooks.deliveries(endpoint.id, { status: "lost" }).catch((e: unknown) => e);
    const unknown = await switchyard.webhooks.replay(endpoint.id, crypto.randomUUID()).catch((e: unknown) => e);

    assert.ok(badTime instanceof SwitchyardError && badStatus instanceof SwitchyardError);
    assert.deepEqual([badTime.status, badTime.field], [422, "since"]);
    assert.deepEqual([badStatus.status, badStatus.field], [422, "status"]);
    assert.ok(unknown instanceof SwitchyardError && unknown.status === 404);
    assert.equal(await switchyard.webhooks.delivery(endpoint.id, crypto.randomUUID()), null);
    const invalid = await switchyard.webhooks.recover(endpoint.id, new Date(Number.NaN)).catch((e: unknown) => e);
    assert.ok(invalid instanceof SwitchyardError);
    assert.deepEqual([invalid.status, invalid.field], [422, "since"]);
  } finally {
    await switchyard.webhooks.delete(endpoint.id);
  }
});
