// The BullMQ side of the job benchmark (bench/jobs.sh): the same no-op workload as
// driver.rs, with removeOnComplete on, against the same Redis. Prints one JSON object.
//
// node bullmq.mjs reset
// node bullmq.mjs enqueue <n> single|batch
// node bullmq.mjs drain <n> <concurrency>        run a worker until n jobs completed
// node bullmq.mjs latency <n> <concurrency>      worker reporting start minus enqueue
// node bullmq.mjs steady <rate> <seconds>        enqueue at a steady rate
import { Queue, Worker } from "bullmq";

const url = new URL(process.env.REDIS_URL ?? "redis://127.0.0.1:6379");
const connection = { host: url.hostname, port: Number(url.port || 6379), maxRetriesPerRequest: null };
const NAME = "switchyard-bench";
const opts = { removeOnComplete: true, removeOnFail: true };
const [phase, a, b] = process.argv.slice(2);
const print = (o) => console.log(JSON.stringify(o));

if (phase === "reset") {
  const queue = new Queue(NAME, { connection });
  await queue.obliterate({ force: true });
  await queue.close();
  print({ reset: true });
} else if (phase === "enqueue") {
  const n = Number(a);
  const queue = new Queue(NAME, { connection });
  await queue.waitUntilReady();
  const began = performance.now();
  if (b === "batch") {
    for (let done = 0; done < n; done += 1000) {
      const take = Math.min(1000, n - done);
      await queue.addBulk(Array.from({ length: take }, () => ({ name: "noop", data: {}, opts })));
    }
  } else {
    // One add per job, 64 in flight, as driver.rs does.
    let next = 0;
    await Promise.all(Array.from({ length: 64 }, async () => {
      while (next < n) { next++; await queue.add("noop", {}, opts); }
    }));
  }
  const seconds = (performance.now() - began) / 1000;
  await queue.close();
  print({ jobs: n, seconds, jobs_per_s: n / seconds });
} else if (phase === "drain" || phase === "latency") {
  const n = Number(a);
  const waits = [];
  let first = Infinity, last = 0, completed = 0;
  let finish;
  const finished = new Promise((resolve) => (finish = resolve));
  const worker = new Worker(NAME, async (job) => {
    if (phase === "latency") waits.push(Date.now() - job.timestamp);
  }, { connection, concurrency: Number(b), removeOnComplete: { count: 0 } });
  worker.on("completed", (job) => {
    first = Math.min(first, job.processedOn);
    last = Math.max(last, job.finishedOn ?? Date.now());
    if (++completed === n) finish();
  });
  if (phase === "latency") print({ ready: true });
  await finished;
  await worker.close();
  const rss_kib = process.resourceUsage().maxRSS;
  if (phase === "drain") {
    const seconds = Math.max(1, last - first) / 1000;
    print({ jobs: n, seconds, jobs_per_s: n / seconds, rss_kib });
  } else {
    waits.sort((x, y) => x - y);
    const at = (q) => waits[Math.min(waits.length - 1, Math.floor(waits.length * q))];
    print({ jobs: waits.length, p50_ms: at(0.5), p99_ms: at(0.99), max_ms: waits[waits.length - 1], rss_kib });
  }
} else if (phase === "steady") {
  const rate = Number(a), seconds = Number(b);
  const queue = new Queue(NAME, { connection });
  await queue.waitUntilReady();
  const began = performance.now();
  for (let i = 0; i < rate * seconds; i++) {
    const due = began + (i * 1000) / rate;
    const wait = due - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    await queue.add("noop", {}, opts);
  }
  await queue.close();
  print({ jobs: rate * seconds });
} else {
  console.error("usage: see the comment at the top of bench/jobs/bullmq.mjs");
  process.exit(2);
}
process.exit(0);
