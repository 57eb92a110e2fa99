// The whole Switchyard project in Railway's Infrastructure as Code: Postgres, Redis, a
// bucket, and the four services that run the same image with different start commands.
//
// Preview with `railway config plan`, apply with `railway config apply`. `.ci/run`
// type-checks this file against the SDK (npm `railway@3`) and evaluates it
// (`scripts/check-railway.sh`), comparing it with the config-as-code files.
//
// Migrations run as the api's pre-deploy command, as in railway.json; `app serve` never
// touches the schema. Manage each service from this file or from its JSON file, never
// both.
//
// Secrets: set ADMIN_TOKEN, APP_SECRET, ENCRYPTION_KEY and OUTBOUND_SIGNING_SECRET once by hand;
// `preserve()` keeps them across applies. The SDK's `ctx.randomString(label)` is a hash
// of the environment's name and the label, which anyone can recompute, so it is not
// used for them.
import { bucket, defineRailway, postgres, preserve, project, redis, ref, service } from "railway/iac";

export default defineRailway(() => {
  const db = postgres("postgres");
  const cache = redis("redis");
  const files = bucket("files");

  const build = { builder: "DOCKERFILE", dockerfilePath: "Dockerfile" } as const;

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

  // Every service runs the same image; only the start command and the platform's grace
  // period differ. Each grace period outlasts the 25 s drain the services get by default
  // (shutdown.drain_seconds), as in the JSON files.
  const appService = (
    name: string,
    start: string,
    drainingSeconds: number,
    extra: { preDeploy?: string; env?: Record<string, string | ReturnType<typeof preserve>> } = {},
  ) =>
    service(name, {
      build,
      start,
      preDeploy: extra.preDeploy,
      healthcheck: "/api/health",
      healthcheckTimeout: 120,
      deploy: {
        restartPolicyType: "ON_FAILURE",
        restartPolicyMaxRetries: 10,
        drainingSeconds,
      },
      env: { ...shared, ...extra.env },
    });

  // ENCRYPTION_KEY (openssl rand -base64 32) seals webhook secrets and registered
  // database passwords: the api stores them and the worker signs deliveries with them.
  // Both may reach the project's own services on the private network: the api checks
  // webhook URLs and registered databases there, the worker delivers there.
  const api = appService("api", "app serve", 30, {
    preDeploy: "app migrate",
    env: {
      ENCRYPTION_KEY: preserve(),
      OUTBOUND_ALLOW_HOSTS: "*.railway.internal",
    },
  });
  // http jobs are signed with OUTBOUND_SIGNING_SECRET (set it once: whsec_ + base64).
  const worker = appService("worker", "app worker --queues=default,webhooks,audits,deletes,mails,http", 60, {
    env: {
      ENCRYPTION_KEY: preserve(),
      OUTBOUND_SIGNING_SECRET: preserve(),
      OUTBOUND_ALLOW_HOSTS: "*.railway.internal",
    },
  });
  const scheduler = appService("scheduler", "app scheduler", 30);
  const realtime = appService("realtime", "app realtime", 30);

  return project("switchyard", {
    resources: [db, cache, files, api, worker, scheduler, realtime],
  });
});
