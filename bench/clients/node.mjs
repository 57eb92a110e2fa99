// Enqueue throughput through @switchyard/client against raw fetch, 64 calls in flight.
// Usage: node bench/clients/node.mjs raw|client N   (SWITCHYARD_URL, SWITCHYARD_TOKEN)
import { Switchyard } from "../../clients/typescript/dist/index.js";

const [mode, total] = [process.argv[2], Number(process.argv[3])];
const url = process.env.SWITCHYARD_URL;
const token = process.env.SWITCHYARD_TOKEN;
const client = new Switchyard({ baseUrl: url, token });
const job = { kind: "noop", payload: { n: 1 } };

// The same request either way, idempotency key included (the client adds one).
async function raw() {
  const response = await fetch(`${url}/api/v1/jobs`, {
    method: "POST",
    headers: {
      authorization: `Bearer ${token}`,
      "content-type": "application/json",
      accept: "application/json",
      "idempotency-key": crypto.randomUUID(),
    },
    body: JSON.stringify(job),
  });
  if (response.status !== 202) throw new Error(`status ${response.status}`);
  return response.json();
}
const once = mode === "raw" ? raw : () => client.jobs.enqueue(job);

let next = 0;
const began = performance.now();
await Promise.all(
  Array.from({ length: 64 }, async () => {
    while (next++ < total) await once();
  }),
);
const seconds = (performance.now() - began) / 1000;
console.log(JSON.stringify({ mode, jobs: total, jobs_per_s: Math.round(total / seconds) }));
