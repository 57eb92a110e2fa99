/**
 * What only a server runtime (Node, Bun, Deno) does: streaming a request body through
 * Node's own `http` module, and reading a file from disk. Bundlers for browsers take
 * `platform-web.ts` in its place (the `browser` field of package.json), so a page's bundle
 * carries no `node:` import.
 *
 * Streams a request body through Node's own `http` module. Node's `fetch` (undici) keeps
 * every chunk of a streamed request body in memory until the request ends
 * (nodejs/undici#4058), so a 100 MB upload would hold 100 MB; `http` with a pipeline
 * holds about one chunk. Used only on Node; elsewhere `fetch` streams.
 */
export function onNode(): boolean {
  const versions = (globalThis as { process?: { versions?: Record<string, string> } }).process?.versions;
  return !!versions?.node && !versions.bun && !versions.deno;
}

/** Sends `body` to `url` with `init`'s method and headers; the answer as a web `Response`. */
export async function sendStreamed(
  url: string,
  init: { method: string; headers: Headers; signal?: AbortSignal | undefined },
  body: ReadableStream<Uint8Array>,
): Promise<Response> {
  const { Readable } = await import("node:stream");
  const { pipeline } = await import("node:stream/promises");
  const transport = url.startsWith("https:") ? await import("node:https") : await import("node:http");
  const headers: Record<string, string> = {};
  init.headers.forEach((value, name) => {
    headers[name] = value;
  });
  return new Promise<Response>((resolve, reject) => {
    const request = transport.request(url, { method: init.method, headers, signal: init.signal }, (answer) => {
      const status = answer.statusCode ?? 502;
      const answerHeaders = new Headers();
      for (const [name, value] of Object.entries(answer.headers)) {
        if (typeof value === "string") answerHeaders.set(name, value);
        else if (Array.isArray(value)) for (const v of value) answerHeaders.append(name, v);
      }
      const empty = status === 204 || status === 304;
      if (empty) answer.resume();
      resolve(
        new Response(empty ? null : (Readable.toWeb(answer) as ReadableStream<Uint8Array>), {
          status,
          statusText: answer.statusMessage ?? "",
          headers: answerHeaders,
        }),
      );
    });
    request.on("error", reject);
    // The server may answer (and close) before taking the whole body, e.g. with a 413:
    // that answer is what counts, so a broken pipe after it is not an error here.
    pipeline(Readable.fromWeb(body as import("node:stream/web").ReadableStream<Uint8Array>), request).catch(
      (error: unknown) => {
        if (!request.headersSent || !request.writableEnded) request.destroy(error as Error);
      },
    );
  });
}

/** The file at `path` as a stream read while it is sent, and its name. */
export async function openFile(path: string): Promise<{ stream: ReadableStream<Uint8Array>; name: string }> {
  const fs = await import("node:fs");
  const nodePath = await import("node:path");
  const { Readable } = await import("node:stream");
  return {
    stream: Readable.toWeb(fs.createReadStream(path)) as ReadableStream<Uint8Array>,
    name: nodePath.basename(path),
  };
}
