// GET /api/upload-token: a token that lets the page upload one file of up to 5 MB to the
// `default` bucket straight to Switchyard, and nothing else. A real service would check
// its own session first and name the files under the user.
import type { APIRoute } from "astro";

import { switchyard } from "../../lib/switchyard";

export const GET: APIRoute = async () => {
  const token = await switchyard.files.createUploadToken({
    bucket: "default",
    expires_in_seconds: 300,
    max_size: 5 * 1024 * 1024,
    single_use: true,
    name_prefix: "example-page-",
  });
  return Response.json(
    { token: token.token, upload_url: token.upload_url },
    { headers: { "cache-control": "no-store" } },
  );
};
