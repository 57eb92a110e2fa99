import { Switchyard } from "../src/index.js";

/** The server scripts/test-clients.sh started. */
export const server = {
  url: required("SWITCHYARD_URL"),
  token: required("SWITCHYARD_TOKEN"),
  signingSecret: required("SWITCHYARD_SIGNING_SECRET"),
};

export function client(options: { baseUrl?: string; retries?: number } = {}): Switchyard {
  return new Switchyard({
    baseUrl: options.baseUrl ?? server.url,
    token: server.token,
    retries: options.retries ?? 3,
    maxRetryDelayMs: 200,
  });
}

/** Polls `read` until `done` holds, for at most `ms`. */
export async function eventually<T>(read: () => Promise<T>, done: (value: T) => boolean, ms = 20_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await read();
    if (done(value)) return value;
    if (Date.now() > deadline) throw new Error(`timed out; last value: ${JSON.stringify(value)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function required(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: run the suite through scripts/test-clients.sh`);
  return value;
}
