// GET /api/realtime-token: a socket token for the page, for the `reports` channel only,
// signed here with APP_SECRET (no call to Switchyard). A real service would check its
// own session first and put the user's id in `sub`.
import type { APIRoute } from "astro";

import { mintSocketToken } from "@switchyard/client";

import { appSecret, switchyardUrl } from "../../lib/switchyard";

export const GET: APIRoute = async () => {
  const token = await mintSocketToken(appSecret, { sub: "example-page", channels: ["reports"], ttlSeconds: 600 });
  return Response.json({ token, url: switchyardUrl }, { headers: { "cache-control": "no-store" } });
};
