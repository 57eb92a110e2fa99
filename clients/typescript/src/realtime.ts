import type { Transport } from "./http.js";
import type { components } from "./generated/openapi.js";

type Schemas = components["schemas"];
export type SocketTokenRequest = Schemas["SocketTokenRequest"];
export type MintedToken = Schemas["MintedToken"];
export type Published = Schemas["Published"];

/** The server side of realtime: tokens for sockets, and publishing. */
export class Realtime {
  readonly #http: Transport;

  constructor(http: Transport) {
    this.#http = http;
  }

  /** Mints a socket token through the API (admin token); see [`mintSocketToken`] to sign one yourself. */
  async token(request: SocketTokenRequest): Promise<MintedToken> {
    return this.#http.json<MintedToken>({
      method: "POST",
      path: "/api/v1/realtime/token",
      json: request,
      idempotent: true,
    });
  }

  /** Publishes an event on a channel; returns its offset there. */
  async publish(channel: string, event: string, data: unknown): Promise<Published> {
    return this.#http.json<Published>({
      method: "POST",
      path: "/api/v1/realtime/publish",
      json: { channel, event, data },
      idempotent: false,
    });
  }
}

/**
 * Signs a socket token with `APP_SECRET`, as the hub checks it: an HS256 JWT with `sub`,
 * `channels` (names, `prefix.*` patterns, or `*`) and `exp`. For a backend that holds the
 * secret; a browser asks its backend for one.
 */
export async function mintSocketToken(
  appSecret: string,
  claims: { sub: string; channels: string[]; ttlSeconds?: number },
): Promise<string> {
  const encoder = new TextEncoder();
  const exp = Math.floor(Date.now() / 1000) + (claims.ttlSeconds ?? 3600);
  const part = (value: unknown) => base64url(encoder.encode(JSON.stringify(value)));
  const signed = `${part({ alg: "HS256", typ: "JWT" })}.${part({ sub: claims.sub, channels: claims.channels, exp })}`;
  const key = await crypto.subtle.importKey(
    "raw",
    encoder.encode(appSecret),
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"],
  );
  const signature = new Uint8Array(await crypto.subtle.sign("HMAC", key, encoder.encode(signed)));
  return `${signed}.${base64url(signature)}`;
}

function base64url(bytes: Uint8Array): string {
  let text = "";
  for (const byte of bytes) text += String.fromCharCode(byte);
  return btoa(text).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

/** One event as a subscriber receives it. */
export interface RealtimeEvent {
  channel: string;
  event: string;
  data: unknown;
  /** Rises by one per event on the channel. */
  offset: number;
  /** Unix milliseconds. */
  ts: number;
}

/** What a socket's life looks like from outside. */
export type SocketState = "connecting" | "open" | "reconnecting" | "closed";

export interface RealtimeClientOptions {
  /**
   * Where the hub is: its base URL (`https://realtime.example.com`, as for the API) or
   * the socket URL itself (`wss://…/api/v1/realtime`).
   */
  url: string;
  /**
   * The socket token, or a function that fetches a fresh one (from your backend). It is
   * called again after the server refuses a token (4001) or finds it expired (4002).
   */
  token: string | (() => Promise<string>);
  /**
   * Called when a channel was subscribed again with `since` and its gap is older than the
   * history kept: the missed events are gone, so refetch your state. Events carry on
   * from the latest offset.
   */
  onGap?: (channel: string) => void;
  /** Called on each change of the socket's state. */
  onState?: (state: SocketState, detail?: { code?: number; reason?: string }) => void;
  /** Called with `error` messages from the hub (a refused channel, say). */
  onError?: (error: { code: string; message: string }) => void;
  /** The first and the longest wait before reconnecting, in ms: 250 and 10,000 by default. */
  backoff?: { minMs?: number; maxMs?: number };
  /** The WebSocket constructor; the global one (browsers, Node 22+, Bun, Deno) by default. */
  WebSocket?: typeof WebSocket;
}

type Handler = (event: RealtimeEvent) => void;

/**
 * A socket to the realtime hub that stays up: it reconnects with backoff and jitter,
 * subscribes again to every channel with `since` set to the last offset it saw, so no
 * event is missed or repeated across reconnects and deploys, and reports a gap it could
 * not fill through `onGap`.
 */
export class RealtimeClient {
  readonly #options: RealtimeClientOptions;
  readonly #url: string;
  readonly #handlers = new Map<string, Set<Handler>>();
  /** The last offset seen per channel: where a resubscription starts. */
  readonly #offsets = new Map<string, number>();
  #socket: WebSocket | undefined;
  #token: string | undefined;
  #attempt = 0;
  #closed = false;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #authenticated = false;

  constructor(options: RealtimeClientOptions) {
    this.#options = options;
    const url = new URL(options.url);
    if (url.protocol === "http:") url.protocol = "ws:";
    if (url.protocol === "https:") url.protocol = "wss:";
    if (!url.pathname.endsWith("/api/v1/realtime")) {
      url.pathname = `${url.pathname.replace(/\/+$/, "")}/api/v1/realtime`;
    }
    this.#url = url.toString();
    if (typeof options.token === "string") this.#token = options.token;
    void this.#connect();
  }

  /**
   * Listens to `channel`; `since` resumes after an offset kept from an earlier session.
   * Returns a function that stops listening (and leaves the channel when no one else
   * listens).
   */
  subscribe(channel: string, handler: Handler, options: { since?: number } = {}): () => void {
    let handlers = this.#handlers.get(channel);
    const joining = !handlers;
    if (!handlers) {
      handlers = new Set();
      this.#handlers.set(channel, handlers);
    }
    handlers.add(handler);
    if (options.since !== undefined && !this.#offsets.has(channel)) this.#offsets.set(channel, options.since);
    if (joining) this.#send({ type: "subscribe", ...this.#join([channel]) });
    return () => {
      const current = this.#handlers.get(channel);
      current?.delete(handler);
      if (current && current.size === 0) {
        this.#handlers.delete(channel);
        this.#offsets.delete(channel);
        this.#send({ type: "unsubscribe", channels: [channel] });
      }
    };
  }

  /** The last offset seen on `channel`, to keep for a later session's `since`. */
  offset(channel: string): number | undefined {
    return this.#offsets.get(channel);
  }

  /** Closes the socket for good. */
  close(): void {
    this.#closed = true;
    clearTimeout(this.#timer);
    this.#socket?.close(1000, "closed by the client");
    this.#options.onState?.("closed");
  }

  #join(channels: string[]): { channels: string[]; since?: Record<string, number> } {
    const since: Record<string, number> = {};
    for (const channel of channels) {
      const offset = this.#offsets.get(channel);
      if (offset !== undefined) since[channel] = offset;
    }
    return Object.keys(since).length ? { channels, since } : { channels };
  }

  #send(message: unknown): void {
    // Before authentication, the subscription is sent on `connected` with the rest.
    if (this.#socket?.readyState === 1 && this.#authenticated) this.#socket.send(JSON.stringify(message));
  }

  async #connect(): Promise<void> {
    if (this.#closed) return;
    this.#options.onState?.(this.#attempt === 0 ? "connecting" : "reconnecting");
    try {
      if (this.#token === undefined && typeof this.#options.token === "function") {
        this.#token = await this.#options.token();
      }
    } catch {
      this.#retry();
      return;
    }
    const Socket = this.#options.WebSocket ?? globalThis.WebSocket;
    if (!Socket) throw new TypeError("no WebSocket: pass options.WebSocket (Node before 22)");
    const socket = new Socket(this.#url);
    this.#socket = socket;
    this.#authenticated = false;
    socket.onopen = () => socket.send(JSON.stringify({ type: "auth", token: this.#token }));
    socket.onmessage = (message: MessageEvent) => this.#receive(String(message.data));
    socket.onclose = (close: CloseEvent) => {
      if (this.#socket !== socket) return;
      this.#authenticated = false;
      // A refused or expired token: fetch a fresh one before the next try.
      if ((close.code === 4001 || close.code === 4002) && typeof this.#options.token === "function") {
        this.#token = undefined;
      }
      this.#options.onState?.(this.#closed ? "closed" : "reconnecting", { code: close.code, reason: close.reason });
      this.#retry();
    };
  }

  #retry(): void {
    if (this.#closed) return;
    const min = this.#options.backoff?.minMs ?? 250;
    const max = this.#options.backoff?.maxMs ?? 10_000;
    // Full jitter: a deploy that drops every socket does not bring them back in step.
    const ceiling = Math.min(max, min * 2 ** this.#attempt);
    this.#attempt += 1;
    this.#timer = setTimeout(() => void this.#connect(), Math.random() * ceiling);
  }

  #receive(text: string): void {
    let message: Record<string, unknown>;
    try {
      message = JSON.parse(text) as Record<string, unknown>;
    } catch {
      return;
    }
    switch (message.type) {
      case "connected": {
        this.#authenticated = true;
        this.#attempt = 0;
        this.#options.onState?.("open");
        const channels = [...this.#handlers.keys()];
        if (channels.length) this.#send({ type: "subscribe", ...this.#join(channels) });
        break;
      }
      case "subscribed": {
        const channels = (message.channels as string[]) ?? [];
        const offsets = (message.offsets as Record<string, number>) ?? {};
        for (const channel of channels) {
          const had = this.#offsets.get(channel);
          if (message.recovered === false && had !== undefined) this.#options.onGap?.(channel);
          // Missed events follow this message and move the offset on; without recovery
          // the latest offset is where live events continue.
          if (message.recovered === false || had === undefined) {
            const latest = offsets[channel];
            if (latest !== undefined) this.#offsets.set(channel, latest);
          }
        }
        break;
      }
      case "event": {
        const event = message as unknown as RealtimeEvent;
        const last = this.#offsets.get(event.channel);
        if (last !== undefined && event.offset <= last) return;
        this.#offsets.set(event.channel, event.offset);
        for (const handler of this.#handlers.get(event.channel) ?? []) handler(event);
        break;
      }
      case "error":
        this.#options.onError?.({ code: String(message.code), message: String(message.message) });
        break;
      default:
        break;
    }
  }
}
