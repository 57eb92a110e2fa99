import { orNull } from "./errors.js";
import { type Transport, segment } from "./http.js";
import type { Accepted, Event, NewEvent } from "./types.js";

/** Application events: stored, delivered to subscribed webhook endpoints, audited. */
export class Events {
  readonly #http: Transport;

  constructor(http: Transport) {
    this.#http = http;
  }

  /**
   * Sends one event; returns its id. An event without an `id` gets one here, so that a
   * retry after a lost answer is a no-op on the server rather than a second event.
   */
  async send(event: NewEvent): Promise<string> {
    const reply = await this.#http.json<Accepted>({
      method: "POST",
      path: "/api/v1/events",
      json: { ...event, id: event.id ?? crypto.randomUUID() },
      idempotent: true,
    });
    return reply.ids[0] as string;
  }

  /** Sends up to 1,000 events, all checked before any is stored. */
  async sendBatch(events: NewEvent[]): Promise<Accepted> {
    return this.#http.json<Accepted>({
      method: "POST",
      path: "/api/v1/events/batch",
      json: { events: events.map((event) => ({ ...event, id: event.id ?? crypto.randomUUID() })) },
      idempotent: true,
    });
  }

  /** An event, or `null` when there is none (or it is past its retention). */
  async get(id: string): Promise<Event | null> {
    return orNull(
      this.#http.json<Event>({ method: "GET", path: `/api/v1/events/${segment(id)}`, idempotent: true }),
    );
  }
}
