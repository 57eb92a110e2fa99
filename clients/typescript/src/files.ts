import { orNull } from "./errors.js";
import { Transport, segment } from "./http.js";
import type { components } from "./generated/openapi.js";
import { openFile } from "./platform-node.js";

type Schemas = components["schemas"];
export type FileRecord = Schemas["FileRecord"];
export type FilePage = Schemas["FilePage"];
export type SignRequest = Schemas["SignRequest"];
export type SignedUrl = Schemas["SignedUrl"];
export type UploadTokenRequest = Schemas["UploadTokenRequest"];
export type UploadToken = Schemas["UploadToken"];

/** What an upload may say about the file. */
export interface UploadOptions {
  /** A bucket declared in `storage.buckets`; `default` when absent. */
  bucket?: string;
  /** The file's name, as it will be listed. */
  name: string;
  /** Sent as the request's content type; the server judges the type from the bytes. */
  contentType?: string;
  signal?: AbortSignal;
}

/** A download: the file's bytes as a stream, and what the server said of them. */
export interface Download {
  /** The bytes, read as they arrive: nothing is held whole. */
  body: ReadableStream<Uint8Array>;
  /** 200 for the whole file, 206 for a range. */
  status: number;
  /** Bytes in `body`. */
  size: number;
  contentType: string;
  /** `bytes start-end/total` for a range. */
  contentRange: string | undefined;
  etag: string | undefined;
}

/** Files: uploads streamed from any source, ranged downloads, signed URLs, upload tokens. */
export class Files {
  readonly #http: Transport;

  constructor(http: Transport) {
    this.#http = http;
  }

  /**
   * Uploads `source` as it is read: a web `ReadableStream` (a Node stream through
   * `Readable.toWeb`), a `Blob` or `File`, or bytes. A stream is sent in chunks and never
   * held whole. Not retried: a stream cannot be read twice.
   */
  async upload(
    source: ReadableStream<Uint8Array> | Blob | Uint8Array | string,
    options: UploadOptions,
  ): Promise<FileRecord> {
    const body = source instanceof Uint8Array ? new Blob([source as BlobPart]) : source;
    const response = await this.#http.send({
      method: "POST",
      path: "/api/v1/files",
      query: { bucket: options.bucket, name: options.name },
      body,
      headers: { "content-type": options.contentType ?? "application/octet-stream" },
      idempotent: false,
      signal: options.signal,
    });
    return (await response.json()) as FileRecord;
  }

  /** Uploads the file at `path`, streamed from disk (Node, Bun and Deno). */
  async uploadPath(path: string, options: Partial<UploadOptions> = {}): Promise<FileRecord> {
    const file = await openFile(path);
    return this.upload(file.stream, { ...options, name: options.name ?? file.name });
  }

  /** A file's metadata, or `null` when there is none. */
  async get(id: string): Promise<FileRecord | null> {
    return orNull(
      this.#http.json<FileRecord>({ method: "GET", path: `/api/v1/files/${segment(id)}`, idempotent: true }),
    );
  }

  /** A page of files, newest first; pass `next_cursor` back for the next. */
  async list(page: { bucket?: string; name_prefix?: string; limit?: number; cursor?: string } = {}): Promise<FilePage> {
    return this.#http.json<FilePage>({ method: "GET", path: "/api/v1/files", query: page, idempotent: true });
  }

  /**
   * The file's bytes as a stream; with `range`, only bytes `start` to `end` (inclusive;
   * to the end when `end` is absent), answered 206.
   */
  async download(
    id: string,
    options: { range?: { start: number; end?: number }; signal?: AbortSignal } = {},
  ): Promise<Download> {
    const headers: Record<string, string> = {};
    if (options.range) headers.range = `bytes=${options.range.start}-${options.range.end ?? ""}`;
    const response = await this.#http.send({
      method: "GET",
      path: `/api/v1/files/${segment(id)}/content`,
      headers,
      accept: "*/*",
      idempotent: true,
      signal: options.signal,
    });
    if (!response.body) throw new TypeError("the server answered without a body");
    return {
      body: response.body,
      status: response.status,
      size: Number(response.headers.get("content-length") ?? "0"),
      contentType: response.headers.get("content-type") ?? "application/octet-stream",
      contentRange: response.headers.get("content-range") ?? undefined,
      etag: response.headers.get("etag") ?? undefined,
    };
  }

  /** A URL that serves the file without credentials until it expires. */
  async signUrl(id: string, request: SignRequest = {}): Promise<SignedUrl> {
    return this.#http.json<SignedUrl>({
      method: "POST",
      path: `/api/v1/files/${segment(id)}/url`,
      json: request,
      idempotent: true,
    });
  }

  /**
   * An upload token for a browser: it can upload to one bucket, within its limits, and
   * nothing else. Hand `token` and `upload_url` to the page (see [`uploadWithToken`]).
   */
  async createUploadToken(request: UploadTokenRequest): Promise<UploadToken> {
    return this.#http.json<UploadToken>({
      method: "POST",
      path: "/api/v1/files/upload-tokens",
      json: request,
      idempotent: false,
    });
  }

  /** Deletes a file; false when there was none. */
  async delete(id: string): Promise<boolean> {
    const done = await orNull(
      this.#http.send({ method: "DELETE", path: `/api/v1/files/${segment(id)}`, idempotent: true }),
    );
    return done !== null;
  }
}

/**
 * Uploads a file from a browser with an upload token its backend asked for: no key in
 * the page. Returns the stored file's metadata; a refusal is a `SwitchyardError`.
 */
export async function uploadWithToken(
  token: Pick<UploadToken, "token" | "upload_url">,
  file: Blob,
  name?: string,
): Promise<FileRecord> {
  const url = new URL(token.upload_url);
  const http = new Transport({ baseUrl: url.origin, token: token.token, retries: 0 });
  const query: Record<string, string> = Object.fromEntries(url.searchParams);
  if (name) query.name = name;
  const form = new FormData();
  form.append("file", file, name ?? ((file as File).name || "file"));
  const response = await http.send({ method: "POST", path: url.pathname, query, body: form, idempotent: false });
  return (await response.json()) as FileRecord;
}
