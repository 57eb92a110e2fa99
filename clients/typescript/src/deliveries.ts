import { Webhook } from "standardwebhooks";

/**
 * Checks the calls Switchyard makes to your service (`http` jobs, webhook deliveries):
 * each is signed by the Standard Webhooks scheme, and this delegates the check to the
 * official `standardwebhooks` library. It rejects a bad or missing signature and a
 * timestamp more than five minutes off.
 *
 * Give it the `whsec_...` secret (`OUTBOUND_SIGNING_SECRET` for `http` jobs, the
 * endpoint's secret for webhooks). While a secret is being rotated, give both: a call
 * signed with either passes.
 */
export class DeliveryVerifier {
  readonly #keys: Webhook[];

  constructor(secrets: string | string[]) {
    const list = Array.isArray(secrets) ? secrets : [secrets];
    if (list.length === 0 || list.some((s) => !s)) {
      throw new TypeError("DeliveryVerifier needs at least one whsec_ secret");
    }
    this.#keys = list.map((secret) => new Webhook(secret));
  }

  /**
   * The delivery's JSON body, once its signature checks out against the raw body as it
   * arrived. Throws [`DeliveryRejected`] otherwise.
   */
  verify(rawBody: string | Uint8Array, headers: HeaderSource): unknown {
    const wanted = readHeaders(headers);
    const text = typeof rawBody === "string" ? rawBody : new TextDecoder().decode(rawBody);
    let last: unknown;
    for (const key of this.#keys) {
      try {
        return key.verify(text, wanted);
      } catch (error) {
        last = error;
      }
    }
    throw new DeliveryRejected(last instanceof Error ? last.message : "invalid signature");
  }

  /** [`verify`] for a web `Request` (Astro, Next.js route handlers, Bun, Deno, workers). */
  async verifyRequest(request: Request): Promise<unknown> {
    return this.verify(await request.text(), request.headers);
  }

  /**
   * A handler for a web-standard route (`export const POST = ...` in Astro or Next.js):
   * answers 401 to a call that fails the check, else runs `handle` with the verified body
   * and answers what it returns (204 when nothing).
   */
  route(handle: (body: unknown, request: Request) => Promise<Response | void> | Response | void) {
    return async (request: Request): Promise<Response> => {
      let body: unknown;
      try {
        body = await this.verifyRequest(request);
      } catch (error) {
        if (error instanceof DeliveryRejected) return rejected(error);
        throw error;
      }
      return (await handle(body, request)) ?? new Response(null, { status: 204 });
    };
  }

  /**
   * Express (or any Connect-style) middleware, mounted after `express.raw({ type: "*\/*" })`
   * so that it sees the body as it arrived: answers 401 to a call that fails the check,
   * else puts the verified body on `req.body` and calls `next()`.
   */
  express() {
    return (
      req: { body?: unknown; headers: Record<string, string | string[] | undefined> },
      res: { status(code: number): { json(body: unknown): unknown } },
      next: (error?: unknown) => void,
    ): void => {
      const raw = req.body;
      if (typeof raw !== "string" && !(raw instanceof Uint8Array)) {
        next(new TypeError("mount express.raw() before the delivery check: the body is parsed already"));
        return;
      }
      try {
        req.body = this.verify(raw, req.headers);
      } catch (error) {
        if (error instanceof DeliveryRejected) {
          res.status(401).json(problem(error));
          return;
        }
        next(error);
        return;
      }
      next();
    };
  }

  /**
   * Sets up a Fastify instance so that every route on it checks the call: bodies are kept
   * as they arrived, a call that fails the check is answered 401, and a handler sees the
   * verified JSON as `request.body`. Use an encapsulated instance, so that your other
   * routes keep Fastify's own body parsing:
   *
   * ```ts
   * app.register(async (hooks) => {
   *   verifier.fastify(hooks);
   *   hooks.post("/hooks/report", async (request, reply) => reply.code(204).send());
   * });
   * ```
   */
  fastify(instance: FastifyLike): void {
    instance.removeAllContentTypeParsers();
    instance.addContentTypeParser("*", { parseAs: "buffer" }, (_request, body, done) => done(null, body));
    instance.addHook("preHandler", async (request, reply) => {
      const raw = request.body ?? new Uint8Array();
      if (typeof raw !== "string" && !(raw instanceof Uint8Array)) {
        throw new TypeError("the delivery check needs the raw body: another parser ran first");
      }
      try {
        request.body = this.verify(raw, request.headers);
      } catch (error) {
        if (error instanceof DeliveryRejected) {
          return reply.code(401).type("application/problem+json").send(problem(error));
        }
        throw error;
      }
    });
  }
}

/** The part of a Fastify instance `fastify()` uses (no dependency on Fastify's types). */
export interface FastifyLike {
  removeAllContentTypeParsers(): void;
  addContentTypeParser(
    contentType: string,
    options: { parseAs: "buffer" },
    parser: (request: unknown, body: Buffer | string, done: (error: Error | null, body?: unknown) => void) => void,
  ): void;
  addHook(
    name: "preHandler",
    hook: (
      request: { body?: unknown; headers: Record<string, string | string[] | undefined> },
      reply: FastifyReplyLike,
    ) => Promise<unknown>,
  ): unknown;
}

interface FastifyReplyLike {
  code(status: number): FastifyReplyLike;
  type(contentType: string): FastifyReplyLike;
  send(body: unknown): FastifyReplyLike;
}

/** A delivery whose signature or timestamp did not check out. */
export class DeliveryRejected extends Error {
  constructor(message: string) {
    super(`delivery rejected: ${message}`);
    this.name = "DeliveryRejected";
  }
}

/** Headers as a web `Headers`, or Node's `IncomingHttpHeaders`-like record. */
export type HeaderSource = Headers | Record<string, string | string[] | undefined>;

function readHeaders(headers: HeaderSource): Record<string, string> {
  const get = (name: string): string => {
    if (headers instanceof Headers) return headers.get(name) ?? "";
    const value = headers[name] ?? headers[name.toLowerCase()];
    return Array.isArray(value) ? (value[0] ?? "") : (value ?? "");
  };
  return {
    "webhook-id": get("webhook-id"),
    "webhook-timestamp": get("webhook-timestamp"),
    "webhook-signature": get("webhook-signature"),
  };
}

function problem(error: DeliveryRejected) {
  return {
    type: "about:blank",
    title: "Unauthorized",
    status: 401,
    code: "invalid_signature",
    detail: error.message,
  };
}

function rejected(error: DeliveryRejected): Response {
  return new Response(JSON.stringify(problem(error)), {
    status: 401,
    headers: { "content-type": "application/problem+json" },
  });
}
