/** The API's shapes, named, from the OpenAPI document the server publishes. */
import type { components } from "./generated/openapi.js";

type Schemas = components["schemas"];

export type EnqueueRequest = Schemas["EnqueueRequest"];
export type Job = Schemas["JobView"];
export type BatchEntry = Schemas["BatchEntry"];
export type DeadPage = Schemas["DeadPage"];
export type Retried = Schemas["Retried"];
export type NewEvent = Schemas["NewEvent"];
export type Accepted = Schemas["Accepted"];
export type Event = Schemas["EventView"];
export type Schedule = Schemas["ScheduleView"];
export type Triggered = Schemas["Triggered"];
export type Problem = Schemas["Problem"];

/** The payload of an `http` job: the request Switchyard makes, signed, when it runs. */
export interface HttpJobPayload {
  /** Where to send it; private addresses are refused unless the server allows them. */
  url: string;
  /** `POST` when absent. */
  method?: "GET" | "POST" | "PUT" | "PATCH" | "DELETE";
  headers?: Record<string, string>;
  /** Sent as JSON. */
  body?: unknown;
}
