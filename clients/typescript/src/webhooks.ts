import { type Transport, segment } from "./http.js";
import { SwitchyardError, orNull } from "./errors.js";
import type { components } from "./generated/openapi.js";

type Schemas = components["schemas"];
export type EndpointInput = Schemas["EndpointInput"];
export type Endpoint = Schemas["Endpoint"];
export type CreatedEndpoint = Schemas["CreatedEndpoint"];
export type Delivery = Schemas["Delivery"];
export type DeliveryPage = Schemas["DeliveryPage"];
export type DeliveryDetail = Schemas["DeliveryDetail"];
export type RotatedSecret = Schemas["RotatedSecret"];

/** Webhook endpoints: where events are delivered, and the log of each delivery. */
export class Webhooks {
  readonly #http: Transport;

  constructor(http: Transport) {
    this.#http = http;
  }

  /** Makes an endpoint; the answer carries its `whsec_` secret, shown this once. */
  async create(input: EndpointInput): Promise<CreatedEndpoint> {
    return this.#http.json<CreatedEndpoint>({ method: "POST", path: "/api/v1/webhooks", json: input, idempotent: false });
  }

  async list(): Promise<Endpoint[]> {
    const reply = await this.#http.json<{ endpoints: Endpoint[] }>({
      method: "GET",
      path: "/api/v1/webhooks",
      idempotent: true,
    });
    return reply.endpoints;
  }

  /** An endpoint, or `null` when there is none. */
  async get(id: string): Promise<Endpoint | null> {
    return orNull(this.#http.json<Endpoint>({ method: "GET", path: this.#path(id), idempotent: true }));
  }

  /** Changes the fields given; the others stay. */
  async update(id: string, change: EndpointInput): Promise<Endpoint> {
    return this.#http.json<Endpoint>({ method: "PATCH", path: this.#path(id), json: change, idempotent: true });
  }

  /** Deletes an endpoint; false when there was none. */
  async delete(id: string): Promise<boolean> {
    return (await orNull(this.#http.send({ method: "DELETE", path: this.#path(id), idempotent: true }))) !== null;
  }

  /**
   * A new secret; the previous one keeps signing too until `previous_secret_valid_until`.
   * Deliveries carry the new signature within a second.
   */
  async rotateSecret(id: string): Promise<RotatedSecret> {
    return this.#http.json<RotatedSecret>({
      method: "POST",
      path: `${this.#path(id)}/rotate-secret`,
      idempotent: false,
    });
  }

  /** Sends the endpoint a `webhooks.test` event. */
  async test(id: string): Promise<Delivery> {
    return this.#http.json<Delivery>({ method: "POST", path: `${this.#path(id)}/test`, idempotent: false });
  }

  /** A page of the endpoint's deliveries, newest first. */
  async deliveries(
    id: string,
    page: { status?: string; event_type?: string; limit?: number; cursor?: string } = {},
  ): Promise<DeliveryPage> {
    return this.#http.json<DeliveryPage>({
      method: "GET",
      path: `${this.#path(id)}/deliveries`,
      query: page,
      idempotent: true,
    });
  }

  /** One delivery with every attempt. */
  async delivery(id: string, deliveryId: string): Promise<DeliveryDetail | null> {
    return orNull(
      this.#http.json<DeliveryDetail>({
        method: "GET",
        path: `${this.#path(id)}/deliveries/${segment(deliveryId)}`,
        idempotent: true,
      }),
    );
  }

  /** Sends a delivery again. */
  async replay(id: string, deliveryId: string): Promise<Delivery> {
    return this.#http.json<Delivery>({
      method: "POST",
      path: `${this.#path(id)}/deliveries/${segment(deliveryId)}/replay`,
      idempotent: false,
    });
  }

  /**
   * Sends again every delivery that failed since `since` (a `Date`, or RFC 3339 text);
   * returns how many. Repeatable: a second call finds the first one's deliveries pending.
   */
  async recover(id: string, since: Date | string): Promise<number> {
    if (typeof since !== "string" && Number.isNaN(since.getTime())) {
      throw new SwitchyardError({
        status: 422,
        code: "validation_failed",
        detail: "an invalid Date (checked before sending)",
        field: "since",
      });
    }
    const reply = await this.#http.json<{ recovered: number }>({
      method: "POST",
      path: `${this.#path(id)}/recover`,
      query: { since: typeof since === "string" ? since : since.toISOString() },
      idempotent: true,
    });
    return reply.recovered;
  }

  #path(id: string): string {
    return `/api/v1/webhooks/${segment(id)}`;
  }
}
