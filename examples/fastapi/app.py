"""A FastAPI service using Switchyard through switchyard-client.

- ``POST /reports`` enqueues an ``http`` job that Switchyard delivers back to this
  service, signed, at ``POST /hooks/report``, which checks the signature before it
  accepts the call;
- ``POST /files`` streams an upload through to Switchyard's file storage;
- ``GET /realtime-token`` mints a socket token for the ``reports`` channel, for a page.

Run it with ``examples/fastapi/run.sh`` against ``cargo run -- dev``.
"""

import os
import uuid

from fastapi import Depends, FastAPI, Request

from switchyard_client import AsyncSwitchyard, DeliveryVerifier, mint_socket_token

SWITCHYARD_URL = os.environ.get("SWITCHYARD_URL", "http://127.0.0.1:8080")
# Where Switchyard reaches this service.
PUBLIC_URL = os.environ.get("PUBLIC_URL", "http://127.0.0.1:8000")

switchyard = AsyncSwitchyard(SWITCHYARD_URL, os.environ["SWITCHYARD_KEY"])
verifier = DeliveryVerifier(os.environ["OUTBOUND_SIGNING_SECRET"])
app = FastAPI(title="Switchyard example")

#: Reports whose job came back, verified: what a real service would store.
delivered: dict[str, dict] = {}


@app.post("/reports", status_code=202)
async def create_report() -> dict:
    report_id = str(uuid.uuid4())
    job = await switchyard.jobs.http(
        f"{PUBLIC_URL}/hooks/report", body={"report_id": report_id}, idempotency_key=f"report-{report_id}"
    )
    return {"report_id": report_id, "job_id": job.id}


@app.post("/hooks/report", status_code=204)
async def report_ready(body: dict = Depends(verifier.fastapi())) -> None:
    delivered[body["report_id"]] = body


@app.get("/reports/{report_id}")
async def report(report_id: str) -> dict:
    return {"report_id": report_id, "delivered": report_id in delivered}


@app.post("/files", status_code=201)
async def upload(request: Request, name: str) -> dict:
    record = await switchyard.files.upload(request.stream(), name)
    return record.model_dump(mode="json")


@app.get("/realtime-token")
async def realtime_token() -> dict:
    token = mint_socket_token(os.environ["APP_SECRET"], "example-page", ["reports"], ttl_seconds=600)
    return {"token": token, "url": SWITCHYARD_URL}
