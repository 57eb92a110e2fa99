import { type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse, createServer } from "node:http";
import type { AddressInfo } from "node:net";

import { type DeliveryVerifier, Switchyard } from "../src/index.js";

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

/**
 * A local endpoint for signed calls. Each call is kept whole in `calls`. The answer is 401
 * when `verifier` rejects a call, else `status`; the payloads of calls answered 2xx go to
 * `received`. Both can change between calls.
 */
export class Receiver {
  verifier: DeliveryVerifier | undefined;
  status: number;
  readonly calls: { body: Buffer; headers: IncomingHttpHeaders }[] = [];
  readonly received: unknown[] = [];
  readonly #server: Server;

  private constructor(server: Server, verifier: DeliveryVerifier | undefined, status: number) {
    this.#server = server;
    this.verifier = verifier;
    this.status = status;
  }

  static async start(verifier?: DeliveryVerifier, status = 204): Promise<Receiver & { url: string }> {
    const server = createServer();
    const receiver = new Receiver(server, verifier, status);
    server.on("request", async (req: IncomingMessage, res: ServerResponse) => {
      const chunks: Buffer[] = [];
      for await (const chunk of req) chunks.push(chunk as Buffer);
      const body = Buffer.concat(chunks);
      receiver.calls.push({ body, headers: req.headers });
      let code = receiver.status;
      try {
        const payload = receiver.verifier?.verify(body, req.headers);
        if (receiver.verifier && code < 300) receiver.received.push(payload);
      } catch {
        code = 401;
      }
      res.writeHead(code).end();
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const { port } = server.address() as AddressInfo;
    return Object.assign(receiver, { url: `http://127.0.0.1:${port}/hooks` });
  }

  close(): void {
    this.#server.close();
  }
}
