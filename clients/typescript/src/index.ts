/**
 * Switchyard's client for Node, Bun, Deno and browsers: jobs, events, webhook endpoints,
 * files, schedules and realtime over the HTTP API with typed errors and safe retries, a
 * realtime socket that recovers what it missed, and the check of the signed calls
 * Switchyard makes back to your service.
 *
 * ```ts
 * import { Switchyard } from "@switchyard/client";
 * const switchyard = new Switchyard({ baseUrl: process.env.SWITCHYARD_URL!, token: process.env.SWITCHYARD_KEY });
 * const job = await switchyard.jobs.enqueue({ kind: "mails", payload: { to: "ada@example.com" } });
 * ```
 */
import { Events } from "./events.js";
import { Files } from "./files.js";
import { type ClientOptions, Transport } from "./http.js";
import { Jobs } from "./jobs.js";
import { Realtime } from "./realtime.js";
import { Schedules } from "./schedules.js";
import { Webhooks } from "./webhooks.js";

export { DeliveryRejected, DeliveryVerifier, type FastifyLike, type HeaderSource } from "./deliveries.js";
export { SwitchyardError } from "./errors.js";
export type { ClientOptions } from "./http.js";
export type * from "./types.js";
export type { components, paths } from "./generated/openapi.js";
export {
  type Download,
  type FilePage,
  type FileRecord,
  type SignedUrl,
  type SignRequest,
  type UploadOptions,
  type UploadToken,
  type UploadTokenRequest,
  uploadWithToken,
} from "./files.js";
export {
  type MintedToken,
  type Published,
  RealtimeClient,
  type RealtimeClientOptions,
  type RealtimeEvent,
  type SocketState,
  type SocketTokenRequest,
  mintSocketToken,
} from "./realtime.js";
export type {
  CreatedEndpoint,
  Delivery,
  DeliveryDetail,
  DeliveryPage,
  Endpoint,
  EndpointInput,
  RotatedSecret,
} from "./webhooks.js";
export { Events, Files, Jobs, Realtime, Schedules, Webhooks };

/** The API, by area. */
export class Switchyard {
  readonly jobs: Jobs;
  readonly events: Events;
  readonly webhooks: Webhooks;
  readonly files: Files;
  readonly schedules: Schedules;
  readonly realtime: Realtime;

  constructor(options: ClientOptions) {
    const http = new Transport(options);
    this.jobs = new Jobs(http);
    this.events = new Events(http);
    this.webhooks = new Webhooks(http);
    this.files = new Files(http);
    this.schedules = new Schedules(http);
    this.realtime = new Realtime(http);
  }
}
