import assert from "node:assert/strict";
import { test } from "node:test";

import { SwitchyardError } from "../src/index.js";
import { client, eventually } from "./helpers.js";

test("an enqueued job can be read back and a repeated idempotency key returns it", async () => {
  const switchyard = client();
  const key = `order-${crypto.randomUUID()}`;
  const job = await switchyard.jobs.enqueue({
    kind: "noop",
    payload: { n: 1 },
    delay_seconds: 3600,
    idempotency_key: key,
  });
  const again = await switchyard.jobs.enqueue({ kind: "noop", payload: { n: 2 }, idempotency_key: key });
  const read = await switchyard.jobs.get(job.id);

  assert.equal(job.state, "scheduled");
  assert.equal(job.created, true);
  assert.equal(again.id, job.id);
  assert.equal(again.created, false);
  assert.deepEqual(read?.payload, { n: 1 });
  assert.equal(await switchyard.jobs.get(crypto.randomUUID()), null);
});

test("a delayed job is cancelled, and cancelling it again is a typed 409", async () => {
  const switchyard = client();
  const job = await switchyard.jobs.enqueue({ kind: "noop", delay_seconds: 600 });
  const cancelled = await switchyard.jobs.cancel(job.id);
  const again = await switchyard.jobs.cancel(job.id).catch((e: unknown) => e);

  assert.equal(cancelled.state, "cancelled");
  assert.ok(again instanceof SwitchyardError);
  assert.equal(again.status, 409);
  assert.equal(again.code, "conflict");
});

test("a batch is enqueued in order, and one bad job refuses the batch naming its field", async () => {
  const switchyard = client();
  const made = await switchyard.jobs.enqueueBatch([
    { kind: "noop", delay_seconds: 600 },
    { kind: "noop", delay_seconds: 600, idempotency_key: `b-${crypto.randomUUID()}` },
  ]);
  const refused = await switchyard.jobs
    .enqueueBatch([{ kind: "noop" }, { kind: "noop", queue: "no-such-queue" }])
    .catch((e: unknown) => e);

  assert.equal(made.length, 2);
  assert.ok(made.every((entry) => entry.created));
  assert.ok(refused instanceof SwitchyardError);
  assert.equal(refused.status, 422);
  assert.equal(refused.code, "validation_failed");
  assert.match(refused.field ?? "", /jobs\[1\]\.queue/);
  assert.ok(refused.requestId, "the problem names the request");
});

test("bad input to enqueue is a 422 SwitchyardError that names the field", async () => {
  const switchyard = client();
  const error = await switchyard.jobs
    .enqueue({ kind: "noop", max_attempts: 0 })
    .catch((e: unknown) => e);

  assert.ok(error instanceof SwitchyardError);
  assert.equal(error.status, 422);
  assert.equal(error.field, "max_attempts");
  assert.ok(error.detail.length > 0);
  assert.equal(error.retryable, false);
});

test("a dead job is retried by id, and an unknown id is a typed 404", async () => {
  const switchyard = client();
  // Nothing listens on port 9: the call is refused at once.
  const job = await switchyard.jobs.http({ url: "http://127.0.0.1:9/x" }, { max_attempts: 1 });
  await eventually(() => switchyard.jobs.get(job.id), (j) => j?.state === "dead");
  const revived = await switchyard.jobs.retry(job.id);
  const diedAgain = await eventually(
    () => switchyard.jobs.get(job.id),
    (j) => j?.state === "dead" && j.errors.length === 2,
  );
  const unknown = await switchyard.jobs.retry(crypto.randomUUID()).catch((e: unknown) => e);

  assert.equal(revived.id, job.id);
  assert.notEqual(revived.state, "dead");
  assert.match(diedAgain?.errors[0]?.error ?? "", /did not answer/);
  assert.ok(unknown instanceof SwitchyardError && unknown.status === 404);
});
