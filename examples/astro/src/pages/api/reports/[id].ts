// GET /api/reports/:id: whether the report's job came back.
import type { APIRoute } from "astro";

import { delivered } from "../../../lib/switchyard";

export const GET: APIRoute = ({ params }) =>
  Response.json({ report_id: params.id, delivered: delivered.has(params.id ?? "") });
