// The whole Switchyard project in Railway's Infrastructure as Code: Postgres, Redis, a
// bucket, and the services that run the same image with different start commands.
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

// One service or four. "split" runs the api, worker, scheduler and realtime as services of
// their own, each scaled and restarted on its own: what a growing app wants. "one" runs
// every part in a single `app all` service (config/railway/all.json): the cheapest start
// for a small app, one replica's memory instead of four. The README's "One service or
// four" says when to move from one to the other. To switch, change LAYOUT and preview
// with `railway config plan`; the stores and secrets stay as they are.
export type Layout = "split" | "one";
const LAYOUT: Layout = "split";

export const switchyard = (layout: Layout) => defineRailway(() => {
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
  // webhook URLs and registered databases there, the worker delivers there. http jobs are
  // signed with OUTBOUND_SIGNING_SECRET (set it once: whsec_ + base64).
  const apiEnv = { ENCRYPTION_KEY: preserve(), OUTBOUND_ALLOW_HOSTS: "*.railway.internal" };
  const workerEnv = { ...apiEnv, OUTBOUND_SIGNING_SECRET: preserve() };
  const split = () => [
    appService("api", "app serve", 30, { preDeploy: "app migrate", env: apiEnv }),
    appService("worker", "app worker --queues=default,webhooks,audits,deletes,mails,http", 60, {
      env: workerEnv,
    }),
    appService("scheduler", "app scheduler", 30),
    appService("realtime", "app realtime", 30),
  ];
  // Every part in one process, on every declared queue: it needs what the api and the
  // worker need, and its grace period covers the worker's drain.
  const one = () => [appService("all", "app all", 60, { preDeploy: "app migrate", env: workerEnv })];

  return project("switchyard", {
    resources: [db, cache, files, ...(layout === "one" ? one() : split())],
  });
});

export default switchyard(LAYOUT);
