import assert from "node:assert/strict";
import { type AddressInfo, type Socket, connect, createServer } from "node:net";
import { test } from "node:test";

import { WebSocket as UndiciWebSocket } from "undici";

import { RealtimeClient, type RealtimeEvent, mintSocketToken } from "../src/index.js";
import { client, eventually, server } from "./helpers.js";

// The runtime's own WebSocket where it has one (Node 22+, Bun, Deno), so the client's
// default path is what runs there; Node 20 gets undici's.
const builtInOrUndici = globalThis.WebSocket
  ? {}
  : { WebSocket: UndiciWebSocket as unknown as typeof globalThis.WebSocket };

/** A TCP proxy to the server whose connections the test can cut. */
async function cuttable(): Promise<{ url: string; cut(): void; close(): void }> {
  const target = new URL(server.url);
  const sockets = new Set<Socket>();
  const proxy = createServer((inbound) => {
    const outbound = connect(Number(target.port), target.hostname);
    inbound.pipe(outbound).pipe(inbound);
    const drop = () => {
      inbound.destroy();
      outbound.destroy();
    };
    inbound.on("error", drop).on("close", drop);
    outbound.on("error", drop).on("close", drop);
    sockets.add(inbound).add(outbound);
  });
  await new Promise<void>((resolve) => proxy.listen(0, "127.0.0.1", resolve));
  const { port } = proxy.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    cut: () => {
      for (const socket of sockets) socket.destroy();
      sockets.clear();
    },
    close: () => proxy.close(),
  };
}

test("a socket cut mid-stream reconnects and receives, once each, the events it missed", async () => {
  const switchyard = client();
  const channel = `orders.${crypto.randomUUID().slice(0, 8)}`;
  const minted = await switchyard.realtime.token({ sub: "tester", channels: [channel] });
  const front = await cuttable();
  const seen: RealtimeEvent[] = [];
  const states: string[] = [];
  const socket = new RealtimeClient({
    url: front.url,
    token: async () => minted.token,
    ...builtInOrUndici,
    backoff: { minMs: 50, maxMs: 200 },
    onState: (state) => states.push(state),
  });
  try {
    socket.subscribe(channel, (event) => seen.push(event));
    await eventually(async () => states.includes("open"), Boolean);
    await new Promise((r) => setTimeout(r, 200));
    for (let n = 1; n <= 3; n++) await switchyard.realtime.publish(channel, "order.placed", { n });
    await eventually(async () => seen.length, (n) => n >= 3);

    front.cut();
    for (let n = 4; n <= 6; n++) await switchyard.realtime.publish(channel, "order.placed", { n });
    await eventually(async () => seen.length, (n) => n >= 6);
    await switchyard.realtime.publish(channel, "order.placed", { n: 7 });
    await eventually(async () => seen.length, (n) => n >= 7);

    assert.deepEqual(
      seen.map((e) => (e.data as { n: number }).n),
      [1, 2, 3, 4, 5, 6, 7],
    );
    assert.ok(states.includes("reconnecting"));
    const offsets = seen.map((e) => e.offset);
    assert.ok(offsets.every((o, i) => i === 0 || o === (offsets[i - 1] as number) + 1));
  } finally {
    socket.close();
    front.close();
  }
});

test("a token minted with APP_SECRET locally is one the hub accepts, and a gap past history is reported", async () => {
  const switchyard = client();
  const channel = `feed.${crypto.randomUUID().slice(0, 8)}`;
  const appSecret = process.env.SWITCHYARD_APP_SECRET as string;
  const token = await mintSocketToken(appSecret, { sub: "local", channels: ["feed.*"], ttlSeconds: 60 });
  await switchyard.realtime.publish(channel, "tick", { n: 1 });
  const gaps: string[] = [];
  const seen: RealtimeEvent[] = [];
  // An offset from long ago: older than anything the channel's history could hold.
  const socket = new RealtimeClient({
    url: server.url,
    token,
    ...builtInOrUndici,
    onGap: (c) => gaps.push(c),
  });
  try {
    socket.subscribe(channel, (event) => seen.push(event), { since: 1 });
    await eventually(async () => gaps.length, (n) => n > 0);
    await switchyard.realtime.publish(channel, "tick", { n: 2 });
    await eventually(async () => seen.length, (n) => n > 0);

    assert.deepEqual(gaps, [channel]);
    assert.deepEqual(
      seen.map((e) => (e.data as { n: number }).n),
      [2],
    );
  } finally {
    socket.close();
  }
});
