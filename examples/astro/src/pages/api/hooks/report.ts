// POST /api/hooks/report: the job's call back. The verifier checks the Standard Webhooks
// signature against the raw body (401 when it fails); the handler runs only for a call
// Switchyard signed, then tells the page over realtime.
import type { APIRoute } from "astro";

import { delivered, switchyard, verifier } from "../../../lib/switchyard";

export const POST: APIRoute = ({ request }) =>
  verifier.route(async (body) => {
    const { report_id } = body as { report_id: string };
    delivered.set(report_id, body);
    await switchyard.realtime.publish("reports", "report.ready", { report_id });
  })(request);
