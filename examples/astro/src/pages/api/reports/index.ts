// POST /api/reports: starts a report. The work runs as an `http` job: Switchyard calls
// /api/hooks/report back, signed, when a worker takes it, and retries it on failure.
import type { APIRoute } from "astro";

import { publicUrl, switchyard } from "../../../lib/switchyard";

export const POST: APIRoute = async () => {
  const reportId = crypto.randomUUID();
  const job = await switchyard.jobs.http(
    { url: `${publicUrl}/api/hooks/report`, body: { report_id: reportId } },
    // A repeat of this request (a retry after a lost answer) cannot enqueue it twice.
    { idempotency_key: `report-${reportId}` },
  );
  return Response.json({ report_id: reportId, job_id: job.id }, { status: 202 });
};
