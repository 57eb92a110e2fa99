/**
 * The server side's one Switchyard client, and what it needs from the environment. Read at
 * run time (not inlined at build time), so one build runs anywhere.
 */
import { DeliveryVerifier, Switchyard } from "@switchyard/client";

function required(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set (see examples/astro/README.md)`);
  return value;
}

/** Where this service and the browser reach Switchyard. */
export const switchyardUrl = process.env.SWITCHYARD_URL ?? "http://127.0.0.1:8080";
/** Where Switchyard reaches this service. */
export const publicUrl = process.env.PUBLIC_URL ?? `http://127.0.0.1:${process.env.PORT ?? "4321"}`;
/** Signs realtime tokens for the page; never sent to it. */
export const appSecret = required("APP_SECRET");

export const switchyard = new Switchyard({ baseUrl: switchyardUrl, token: required("SWITCHYARD_KEY") });
export const verifier = new DeliveryVerifier(required("OUTBOUND_SIGNING_SECRET"));

/** Reports whose job came back, verified: what a real service would store. */
export const delivered = new Map<string, unknown>();
