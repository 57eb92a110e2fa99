/**
 * `platform-node.ts` for browsers, which bundlers take in its place (the `browser` field
 * of package.json): `fetch` streams there, and there is no file system.
 */
export function onNode(): boolean {
  return false;
}

export async function sendStreamed(): Promise<Response> {
  throw new TypeError("streaming through node:http is for Node only");
}

export async function openFile(): Promise<{ stream: ReadableStream<Uint8Array>; name: string }> {
  throw new TypeError("uploadPath reads a file from disk: use upload() with a File or Blob in a browser");
}
