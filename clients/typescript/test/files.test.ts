import assert from "node:assert/strict";
import { test } from "node:test";

import { SwitchyardError } from "../src/index.js";
import { client } from "./helpers.js";

const MiB = 1024 * 1024;

/** `total` bytes made as they are read, 1 MiB at a time: never held whole. */
function generated(total: number): ReadableStream<Uint8Array> {
  let sent = 0;
  return new ReadableStream<Uint8Array>({
    pull(controller) {
      if (sent >= total) return controller.close();
      const chunk = new Uint8Array(Math.min(MiB, total - sent));
      for (let i = 0; i < chunk.length; i += 4096) chunk[i] = (sent + i) % 251;
      sent += chunk.length;
      controller.enqueue(chunk);
    },
  });
}

test("a file uploaded from a stream is read back whole and by range", async () => {
  const switchyard = client();
  const text = "the quick brown fox jumps over the lazy dog";
  const file = await switchyard.files.upload(new Blob([text]).stream(), { name: "fox.txt", contentType: "text/plain" });
  const whole = await switchyard.files.download(file.id);
  const part = await switchyard.files.download(file.id, { range: { start: 4, end: 8 } });

  assert.equal(file.size, text.length);
  assert.equal(await new Response(whole.body).text(), text);
  assert.equal(part.status, 206);
  assert.equal(await new Response(part.body).text(), "quick");
  assert.equal(part.contentRange, `bytes 4-8/${text.length}`);
});

test("100 MB uploaded from a stream leaves the client's memory flat", async () => {
  const switchyard = client();
  global.gc?.();
  const live = () => {
    const usage = process.memoryUsage();
    return usage.heapUsed + usage.arrayBuffers;
  };
  const before = live();
  let peak = before;
  // Collected before each sample: what the upload holds, not garbage not yet collected
  // (each chunk is garbage once sent).
  const sampler = setInterval(() => {
    global.gc?.();
    peak = Math.max(peak, live());
  }, 50);
  try {
    const file = await switchyard.files.upload(generated(100 * MiB), { name: "big.bin", bucket: "large" });
    assert.equal(file.size, 100 * MiB);
  } finally {
    clearInterval(sampler);
  }
  const grown = (peak - before) / MiB;
  assert.ok(grown < 40, `the client grew by ${grown.toFixed(1)} MiB for a 100 MiB upload`);
});

test("a signed URL serves the file without credentials", async () => {
  const switchyard = client();
  const file = await switchyard.files.upload(new Blob(["signed"]), { name: "s.txt" });
  const signed = await switchyard.files.signUrl(file.id, { expires_in_seconds: 60 });
  const fetched = await fetch(signed.url);

  assert.equal(fetched.status, 200);
  assert.equal(await fetched.text(), "signed");
});

test("an upload token lets a key-less page upload within its limits, and refuses past them", async () => {
  const switchyard = client();
  const { uploadWithToken } = await import("../src/index.js");
  const token = await switchyard.files.createUploadToken({
    bucket: "default",
    expires_in_seconds: 60,
    max_size: 16,
  });
  const made = await uploadWithToken(token, new Blob(["small"]), "page.txt");
  const refused = await uploadWithToken(token, new Blob(["x".repeat(64)]), "big.txt").catch((e: unknown) => e);

  assert.equal(made.size, 5);
  assert.ok(refused instanceof SwitchyardError);
  assert.equal(refused.status, 413);
});

test("a file that does not exist is null, and deleting it is false", async () => {
  const switchyard = client();
  assert.equal(await switchyard.files.get(crypto.randomUUID()), null);
  assert.equal(await switchyard.files.delete(crypto.randomUUID()), false);
});

test("files are listed newest first by name prefix, page after page", async () => {
  const switchyard = client();
  const prefix = `list-${crypto.randomUUID().slice(0, 8)}-`;
  for (const n of [1, 2, 3]) await switchyard.files.upload(new Uint8Array([n]), { name: `${prefix}${n}.bin` });
  const first = await switchyard.files.list({ name_prefix: prefix, limit: 2 });
  const second = await switchyard.files.list({ name_prefix: prefix, limit: 2, cursor: first.next_cursor ?? "" });
  const bad = await switchyard.files.list({ limit: 0 }).catch((e: unknown) => e);

  assert.deepEqual(
    [...first.files, ...second.files].map((f) => f.name),
    [3, 2, 1].map((n) => `${prefix}${n}.bin`),
  );
  assert.equal(second.next_cursor ?? null, null);
  assert.ok(bad instanceof SwitchyardError && bad.status === 422 && bad.field === "limit");
});
