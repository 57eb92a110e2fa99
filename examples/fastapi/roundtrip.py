"""The example's round trip, as CI runs it: starts the example, asks it for a report, and
checks that the job Switchyard ran came back signed, was verified by the example, and
succeeded; then streams a file through it. Exits 1 on any failure.

Needs the environment scripts/test-clients.sh sets: SWITCHYARD_URL, SWITCHYARD_TOKEN,
SWITCHYARD_SIGNING_SECRET, SWITCHYARD_APP_SECRET."""

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from switchyard_client import Switchyard


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> int:
    port = free_port()
    example = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "SWITCHYARD_KEY": os.environ["SWITCHYARD_TOKEN"],
        "OUTBOUND_SIGNING_SECRET": os.environ["SWITCHYARD_SIGNING_SECRET"],
        "APP_SECRET": os.environ["SWITCHYARD_APP_SECRET"],
        "PUBLIC_URL": example,
    }
    server = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "app:app", "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"],
        cwd=Path(__file__).parent,
        env=env,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"{example}/reports/x")
                break
            except httpx.TransportError:
                if time.monotonic() > deadline or server.poll() is not None:
                    print("the example did not start", file=sys.stderr)
                    return 1
                time.sleep(0.2)
        made = httpx.post(f"{example}/reports").json()
        with Switchyard(os.environ["SWITCHYARD_URL"], os.environ["SWITCHYARD_TOKEN"]) as switchyard:
            deadline = time.monotonic() + 30
            while True:
                job = switchyard.jobs.get(made["job_id"])
                seen = httpx.get(f"{example}/reports/{made['report_id']}").json()
                if job is not None and job.state == "succeeded" and seen["delivered"]:
                    break
                if time.monotonic() > deadline:
                    print(f"no verified delivery: job {job and job.state}, example saw {seen}", file=sys.stderr)
                    return 1
                time.sleep(0.2)
            stored = httpx.post(f"{example}/files", params={"name": "notes.txt"}, content=b"streamed through")
            record = switchyard.files.get(stored.json()["id"])
            if stored.status_code != 201 or record is None or record.size != 16:
                print(f"the upload through the example failed: {stored.status_code} {stored.text}", file=sys.stderr)
                return 1
            token = httpx.get(f"{example}/realtime-token").json()["token"]
            if token.count(".") != 2:
                print("the example minted no token", file=sys.stderr)
                return 1
        print(f"example round trip: job {made['job_id']} delivered, verified and succeeded; a file streamed through")
        return 0
    finally:
        server.terminate()
        server.wait(10)


if __name__ == "__main__":
    sys.exit(main())
