"""Enqueue throughput through switchyard-client (async) against raw httpx, 64 in flight.
Usage: python3 bench/clients/python.py raw|client N   (SWITCHYARD_URL, SWITCHYARD_TOKEN)"""

import asyncio
import json
import os
import sys
import time
import uuid

import httpx

from switchyard_client import AsyncSwitchyard

MODE, TOTAL = sys.argv[1], int(sys.argv[2])
URL, TOKEN = os.environ["SWITCHYARD_URL"], os.environ["SWITCHYARD_TOKEN"]
JOB = {"kind": "noop", "payload": {"n": 1}}


async def main() -> None:
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    raw_client = httpx.AsyncClient(base_url=URL, limits=limits,
                                   headers={"authorization": f"Bearer {TOKEN}", "accept": "application/json"})
    client = AsyncSwitchyard(URL, TOKEN, http_client=httpx.AsyncClient(
        base_url=URL, limits=limits, headers={"authorization": f"Bearer {TOKEN}", "accept": "application/json"}))

    async def raw() -> None:
        # The same request either way, idempotency key included (the client adds one).
        response = await raw_client.post("/api/v1/jobs", json=JOB, headers={"idempotency-key": str(uuid.uuid4())})
        if response.status_code != 202:
            raise RuntimeError(f"status {response.status_code}")
        response.json()

    async def through_client() -> None:
        await client.jobs.enqueue(JOB["kind"], JOB["payload"])

    once = raw if MODE == "raw" else through_client
    left = TOTAL

    async def worker() -> None:
        nonlocal left
        while left > 0:
            left -= 1
            await once()

    began = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(64)))
    seconds = time.perf_counter() - began
    print(json.dumps({"mode": MODE, "jobs": TOTAL, "jobs_per_s": round(TOTAL / seconds)}))
    await raw_client.aclose()
    await client.close()


asyncio.run(main())
