// The whole Switchyard project in Railway's Infrastructure as Code: Postgres, Redis, a
// bucket, and the four services that run the same image with different start commands.
//
// Preview with `railway config plan`, apply with `railway config apply`.
//
// Migrations: railway.json runs `app migrate` as a pre-deploy command. This file cannot
// count on a pre-deploy step, so the api runs `app serve --migrate`. That is safe with
// several replicas: migrations take a Postgres advisory lock, and each one runs in a
// transaction. Manage each service from this file or from railway.json, never both.
import { bucket, defineRailway, postgres, preserve, project, redis, ref, service } from "railway/iac";

export default defineRailway(() => {
  const db = postgres("postgres");
  const cache = redis("redis");
  const files = bucket("files");

  const build = { builder: "DOCKERFILE", dockerfilePath: "Dockerfile" };

  // What every service reads: the stores, the shared secrets and the bucket's variables
  // under the names Railway injects for buckets.
  const shared = {
    DATABASE_URL: db.env.DATABASE_URL,
    REDIS_URL: cache.env.REDIS_URL,
    ADMIN_TOKEN: preserve(),
    APP_SECRET: preserve(),
    BUCKET: ref(files, "BUCKET"),
    ACCESS_KEY_ID: ref(files, "ACCESS_KEY_ID"),
    SECRET_ACCESS_KEY: ref(files, "SECRET_ACCESS_KEY"),
    ENDPOINT: ref(files, "ENDPOINT"),
    REGION: ref(files, "REGION"),
  };

  // Every service runs the same image; only the start command, the drain time and the
  // platform's grace period around it differ.
  const appService = (name: string, start: string, drainSeconds: number, extraEnv = {}) =>
    service(name, {
      build,
      start,
      healthcheck: "/api/health",
      healthcheckTimeout: 120,
      deploy: {
        restartPolicyType: "ON_FAILURE",
        restartPolicyMaxRetries: 10,
        drainingSeconds: drainSeconds + 5,
      },
      env: { ...shared, SHUTDOWN_DRAIN_SECONDS: String(drainSeconds), ...extraEnv },
    });

  const api = appService("api", "app serve --migrate", 25);
  // http jobs are signed with OUTBOUND_SIGNING_SECRET (set it once: whsec_ + base64) and
  // may call the project's own services on the private network.
  const worker = appService("worker", "app worker --queues=webhooks,audits,deletes,mails,http", 55, {
    WORKER_CONCURRENCY: "16",
    OUTBOUND_SIGNING_SECRET: preserve(),
    OUTBOUND_ALLOW_HOSTS: "*.railway.internal",
  });
  const cron = appService("cron", "app scheduler", 10);
  const realtime = appService("realtime", "app realtime", 25);

  return project("switchyard", {
    resources: [db, cache, files, api, worker, cron, realtime],
  });
});
