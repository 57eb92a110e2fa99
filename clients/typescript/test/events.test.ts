import assert from "node:assert/strict";
import { test } from "node:test";

import { SwitchyardError } from "../src/index.js";
import { client, eventually } from "./helpers.js";

test("a sent event is stored once, however often it is sent", async () => {
  const switchyard = client();
  const id = await switchyard.events.send({ type: "orders.created", data: { order: 7 } });
  const again = await switchyard.events.sendBatch([{ id, type: "orders.created", data: { order: 7 } }]);
  const stored = await eventually(() => switchyard.events.get(id), (e) => e !== null);

  assert.equal(again.duplicates, 1);
  assert.deepEqual(again.ids, [id]);
  assert.equal(stored?.type, "orders.created");
  assert.deepEqual(stored?.data, { order: 7 });
});

test("an event with a bad type is a 422 naming the field", async () => {
  const error = await client()
    .events.send({ type: "no spaces allowed", data: {} })
    .catch((e: unknown) => e);

  assert.ok(error instanceof SwitchyardError);
  assert.equal(error.status, 422);
  assert.equal(error.field, "type");
});
