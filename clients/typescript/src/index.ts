/**
 * Switchyard's client for Node, Bun, Deno and browsers: jobs, events and schedules over
 * the HTTP API with typed errors and safe retries, and the check of the signed calls
 * Switchyard makes back to your service.
 *
 * ```ts
 * import { Switchyard } from "@switchyard/client";
 * const switchyard = new Switchyard({ baseUrl: process.env.SWITCHYARD_URL!, token: process.env.SWITCHYARD_KEY });
 * const job = await switchyard.jobs.enqueue({ kind: "mails", payload: { to: "ada@example.com" } });
 * ```
 */
import { Events } from "./events.js";
import { type ClientOptions, Transport } from "./http.js";
import { Jobs } from "./jobs.js";
import { Schedules } from "./schedules.js";

export { DeliveryRejected, DeliveryVerifier, type HeaderSource } from "./deliveries.js";
export { SwitchyardError } from "./errors.js";
export type { ClientOptions } from "./http.js";
export type * from "./types.js";
export type { components, paths } from "./generated/openapi.js";
export { Events, Jobs, Schedules };

/** The API, by area. */
export class Switchyard {
  readonly jobs: Jobs;
  readonly events: Events;
  readonly schedules: Schedules;

  constructor(options: ClientOptions) {
    const http = new Transport(options);
    this.jobs = new Jobs(http);
    this.events = new Events(http);
    this.schedules = new Schedules(http);
  }
}
