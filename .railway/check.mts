// Evaluates railway.ts with Railway's own SDK, as `railway config plan` would, and checks
// that it describes what the config-as-code files and the defaults describe: the same
// services, start and pre-deploy commands and health checks, and a draining period longer
// than the drain time each service gets, for both layouts (four services, or one `app all`).
// Run by scripts/check-railway.sh.
import { readFileSync } from "node:fs";
import { createRailwayContext, project } from "railway/iac";
import * as definition from "./railway.ts";

type Deploy = {
  startCommand?: string | null;
  preDeployCommand?: string[] | null;
  healthcheckPath?: string | null;
  drainingSeconds?: number | null;
};
type Resource = { type: string; name: string; deploy?: Deploy; variables?: Record<string, unknown> };

const root = new URL("..", import.meta.url);
const read = (path: string) => readFileSync(new URL(path, root), "utf8");
// tsx hands a CommonJS-compiled module's exports one level down.
const module: any = definition;
const exports = module.default?.switchyard ? module.default : module;
const context = () => createRailwayContext({ environment: "production" });
// Each layout's services, by name, as the SDK evaluates them.
const evaluate = async (program: any) => {
  const graph = await program(context(), project);
  return new Map<string, Deploy>(
    (graph.resources as Resource[])
      .filter((r) => r.type === "service")
      .map((r) => [r.name, r.deploy ?? {}]),
  );
};

const drain = Number(/^drain_seconds\s*=\s*(\d+)/m.exec(read("config/default.toml"))?.[1]);
const layouts: Record<string, Record<string, string>> = {
  split: {
    api: "railway.json",
    worker: "config/railway/worker.json",
    scheduler: "config/railway/scheduler.json",
    realtime: "config/railway/realtime.json",
  },
  one: { all: "config/railway/all.json" },
};
const problems: string[] = [];
const expect = (ok: boolean, problem: string) => ok || problems.push(problem);

for (const [layout, files] of Object.entries(layouts)) {
  const services = await evaluate(exports.switchyard(layout));
  expect(
    [...services.keys()].sort().join() === Object.keys(files).sort().join(),
    `layout ${layout}: services are ${[...services.keys()].join(", ")}, not ${Object.keys(files).join(", ")}`,
  );
  for (const [name, file] of Object.entries(files)) {
    const fromFile: Deploy = JSON.parse(read(file)).deploy;
    const fromCode = services.get(name) ?? {};
    for (const key of ["startCommand", "healthcheckPath", "drainingSeconds"] as const) {
      expect(
        fromCode[key] === fromFile[key],
        `${name}: ${key} is ${fromCode[key]} in railway.ts but ${fromFile[key]} in ${file}`,
      );
    }
    expect(
      JSON.stringify(fromCode.preDeployCommand ?? null) === JSON.stringify(fromFile.preDeployCommand ?? null),
      `${name}: the pre-deploy command differs between railway.ts and ${file}`,
    );
    expect(
      (fromFile.drainingSeconds ?? 0) > drain,
      `${name}: drainingSeconds ${fromFile.drainingSeconds} in ${file} must exceed the ${drain} s drain`,
    );
  }
}
// What `railway config apply` reads is the split layout, which railway.json describes.
const services = await evaluate(exports.default);
expect(
  [...services.keys()].sort().join() === Object.keys(layouts.split).sort().join(),
  "the default export must be the split layout, as railway.json describes",
);
expect(
  services.get("worker")?.startCommand?.includes("default") ?? false,
  "the worker must consume the default queue, where the README's first job goes",
);

if (problems.length > 0) {
  console.error(problems.map((p) => `railway.ts: ${p}`).join("\n"));
  process.exit(1);
}
console.log(`railway.ts: both layouts agree with the config-as-code files`);
