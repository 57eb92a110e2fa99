"""The server scripts/test-clients.sh started, and helpers the tests share."""

from __future__ import annotations

import http.server
import os
import threading
import time
from typing import Callable, TypeVar

import pytest

from switchyard_client import AsyncSwitchyard, DeliveryRejected, DeliveryVerifier, Switchyard

T = TypeVar("T")


def _required(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        raise RuntimeError(f"{name} is not set: run the suite through scripts/test-clients.sh")
    return value


URL = _required("SWITCHYARD_URL")
TOKEN = _required("SWITCHYARD_TOKEN")
SIGNING_SECRET = _required("SWITCHYARD_SIGNING_SECRET")
APP_SECRET = _required("SWITCHYARD_APP_SECRET")


@pytest.fixture
def switchyard() -> Switchyard:
    with Switchyard(URL, TOKEN, max_retry_delay=0.2) as client:
        yield client


@pytest.fixture
async def async_switchyard() -> AsyncSwitchyard:
    async with AsyncSwitchyard(URL, TOKEN, max_retry_delay=0.2) as client:
        yield client


def eventually(read: Callable[[], T], done: Callable[[T], bool], seconds: float = 20) -> T:
    deadline = time.monotonic() + seconds
    while True:
        value = read()
        if done(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out; last value: {value!r}")
        time.sleep(0.1)


class Receiver:
    """A local endpoint for signed calls. Each call is kept whole in ``calls`` (body and
    headers). The answer is 401 when ``verifier`` rejects it, else ``status``; the payloads
    of calls answered 2xx go to ``received``. Both can change between calls."""

    def __init__(self, verifier: DeliveryVerifier | None, status: int = 204) -> None:
        self.verifier = verifier
        self.status = status
        self.received: list[object] = []
        self.calls: list[tuple[bytes, dict[str, str]]] = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                headers = dict(self.headers.items())
                outer.calls.append((body, headers))
                code = outer.status
                if outer.verifier is not None:
                    try:
                        payload = outer.verifier.verify(body, headers)
                        if code < 300:
                            outer.received.append(payload)
                    except DeliveryRejected:
                        code = 401
                self.send_response(code)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *_: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks"

    def close(self) -> None:
        self.server.shutdown()
