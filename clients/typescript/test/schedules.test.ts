import assert from "node:assert/strict";
import { test } from "node:test";

import { SwitchyardError } from "../src/index.js";
import { client } from "./helpers.js";

test("the declared schedules are listed and one runs now as a job", async () => {
  const switchyard = client();
  const schedules = await switchyard.schedules.list();
  const first = schedules[0];
  assert.ok(first, "app dev declares schedules");

  const jobId = await switchyard.schedules.runNow(first.name);
  const job = await switchyard.jobs.get(jobId);

  assert.equal(job?.kind, first.kind);
  assert.ok(first.next_runs.length > 0);
});

test("running a schedule that does not exist is a typed 404", async () => {
  const error = await client()
    .schedules.runNow("no-such-schedule")
    .catch((e: unknown) => e);

  assert.ok(error instanceof SwitchyardError);
  assert.equal(error.status, 404);
});
