import { SwitchyardError, errorFrom } from "./errors.js";
import { onNode, sendStreamed } from "./platform-node.js";

/** How to reach the server. */
export interface ClientOptions {
  /** Where Switchyard serves, e.g. `http://switchyard.railway.internal:8080`. */
  baseUrl: string;
  /** An API key (`sk_...`) or the admin token, sent as a bearer token. */
  token?: string;
  /** Retries of a request that is safe to repeat, after a 503 or a connection error. 3 by default. */
  retries?: number;
  /** The longest wait between two tries, in milliseconds; a longer `Retry-After` is cut to it. 10,000 by default. */
  maxRetryDelayMs?: number;
  /** A bound on each try, in milliseconds. 30,000 by default; 0 for none. */
  timeoutMs?: number;
  /** The `fetch` to use; the global one by default. */
  fetch?: typeof fetch;
}

/** One request. */
export interface Call {
  method: "GET" | "POST" | "PATCH" | "DELETE";
  path: string;
  query?: Record<string, string | number | undefined>;
  json?: unknown;
  /** A body sent as it is (a stream is streamed); `json` wins when both are given. */
  body?: ReadableStream<Uint8Array> | Blob | FormData | string;
  headers?: Record<string, string>;
  /** What to accept; JSON (and problem documents) by default. */
  accept?: string;
  /**
   * Whether repeating the request cannot do twice what it asks: reads and deletes are, and
   * so is a request that carries an idempotency key. Only these are retried.
   */
  idempotent: boolean;
  signal?: AbortSignal;
}

/** Sends requests: auth, JSON, problem documents as [`SwitchyardError`], bounded retries. */
export class Transport {
  readonly baseUrl: string;
  readonly #token: string | undefined;
  readonly #retries: number;
  readonly #maxDelay: number;
  readonly #timeout: number;
  readonly #fetch: typeof fetch;
  readonly #globalFetch: typeof fetch;

  constructor(options: ClientOptions) {
    if (!options.baseUrl) throw new TypeError("baseUrl is required");
    this.baseUrl = options.baseUrl.replace(/\/+$/, "");
    this.#token = options.token;
    this.#retries = Math.max(0, options.retries ?? 3);
    this.#maxDelay = Math.max(0, options.maxRetryDelayMs ?? 10_000);
    this.#timeout = Math.max(0, options.timeoutMs ?? 30_000);
    this.#globalFetch = globalThis.fetch.bind(globalThis);
    this.#fetch = options.fetch ?? this.#globalFetch;
  }

  /** The response's JSON, or `undefined` for a 204. */
  async json<T>(call: Call): Promise<T> {
    const response = await this.send(call);
    if (response.status === 204) return undefined as T;
    return (await response.json()) as T;
  }

  /** The successful response as it is (for streams). Errors become [`SwitchyardError`]. */
  async send(call: Call): Promise<Response> {
    const url = this.url(call.path, call.query);
    const headers = new Headers(call.headers);
    if (this.#token) headers.set("authorization", `Bearer ${this.#token}`);
    let body: ReadableStream<Uint8Array> | Blob | FormData | string | undefined = call.body;
    if (call.json !== undefined) {
      headers.set("content-type", "application/json");
      body = JSON.stringify(call.json);
    }
    headers.set("accept", call.accept ?? "application/json");
    const streamed = typeof ReadableStream !== "undefined" && body instanceof ReadableStream;
    for (let attempt = 0; ; attempt++) {
      let failure: SwitchyardError;
      try {
        const init: RequestInit & { duplex?: "half" } = {
          method: call.method,
          headers,
          body: body ?? null,
          signal: this.signal(call.signal),
        };
        // A streamed body goes out as it is read (fetch's half duplex); on Node through
        // its own http module, as Node's fetch holds a streamed body whole.
        if (streamed) init.duplex = "half";
        const response =
          streamed && onNode() && this.#fetch === this.#globalFetch
            ? await sendStreamed(url, { method: call.method, headers, signal: init.signal ?? undefined }, body as ReadableStream<Uint8Array>)
            : await this.#fetch(url, init);
        if (response.ok) return response;
        failure = await errorFrom(response);
      } catch (cause) {
        if (call.signal?.aborted) throw cause;
        failure = new SwitchyardError({
          status: 0,
          code: "connection_error",
          detail: `could not reach Switchyard at ${this.baseUrl}: ${describe(cause)}`,
          cause,
        });
      }
      if (!failure.retryable || !call.idempotent || attempt >= this.#retries) throw failure;
      await sleep(this.delay(attempt, failure.retryAfter), call.signal);
    }
  }

  /** The wait before try `attempt + 2`: the server's `Retry-After`, else backoff with jitter. */
  delay(attempt: number, retryAfter: number | undefined): number {
    if (retryAfter !== undefined) return Math.min(retryAfter * 1000, this.#maxDelay);
    const backoff = Math.min(100 * 2 ** attempt, this.#maxDelay);
    return backoff / 2 + Math.random() * (backoff / 2);
  }

  url(path: string, query?: Record<string, string | number | undefined>): string {
    const url = new URL(this.baseUrl + path);
    for (const [key, value] of Object.entries(query ?? {})) {
      if (value !== undefined) url.searchParams.set(key, String(value));
    }
    return url.toString();
  }

  private signal(caller: AbortSignal | undefined): AbortSignal | undefined {
    if (this.#timeout === 0) return caller;
    const timeout = AbortSignal.timeout(this.#timeout);
    return caller ? AbortSignal.any([caller, timeout]) : timeout;
  }
}

/** A path segment, escaped. */
export function segment(value: string): string {
  return encodeURIComponent(value);
}

function describe(cause: unknown): string {
  if (cause instanceof Error) {
    const inner = (cause as { cause?: unknown }).cause;
    return inner instanceof Error ? `${cause.message} (${inner.message})` : cause.message;
  }
  return String(cause);
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener(
      "abort",
      () => {
        clearTimeout(timer);
        reject(signal.reason);
      },
      { once: true },
    );
  });
}
