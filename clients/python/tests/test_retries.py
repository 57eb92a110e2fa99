"""Retries against a proxy in front of the real server that answers 503 first."""

from __future__ import annotations

import http.server
import socket
import threading

import httpx
import pytest

from switchyard_client import Switchyard, SwitchyardError

from .conftest import TOKEN, URL


class Flaky:
    """A proxy answering the first ``failures`` calls 503, then passing calls on."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.seen: list[dict[str, str]] = []
        flaky = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def _any(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                flaky.seen.append({k.lower(): v for k, v in self.headers.items()})
                if len(flaky.seen) <= flaky.failures:
                    payload = b'{"type":"about:blank","title":"Service Unavailable","status":503,"code":"dependency_unavailable","detail":"redis is unavailable"}'
                    self.send_response(503)
                    self.send_header("content-type", "application/problem+json")
                    self.send_header("retry-after", "0")
                    self.send_header("content-length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                    return
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
                upstream = httpx.request(self.command, URL + self.path, headers=headers, content=body)
                self.send_response(upstream.status_code)
                self.send_header("content-type", upstream.headers.get("content-type", "text/plain"))
                self.send_header("content-length", str(len(upstream.content)))
                self.end_headers()
                self.wfile.write(upstream.content)

            do_GET = do_POST = do_DELETE = do_PATCH = _any

            def log_message(self, *_: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()


def test_an_enqueue_answered_503_is_retried_with_one_idempotency_key_and_made_once():
    front = Flaky(2)
    try:
        with Switchyard(front.url, TOKEN, max_retry_delay=0.1) as client:
            job = client.jobs.enqueue("noop", delay_seconds=600)
        keys = {seen.get("idempotency-key") for seen in front.seen}
        assert len(front.seen) == 3
        assert len(keys) == 1 and None not in keys
        with Switchyard(URL, TOKEN) as direct:
            assert direct.jobs.get(job.id).state == "scheduled"
    finally:
        front.close()


def test_retries_stop_at_the_bound_with_the_last_503_raised():
    front = Flaky(100)
    try:
        with Switchyard(front.url, TOKEN, retries=2, max_retry_delay=0.1) as client:
            with pytest.raises(SwitchyardError) as failed:
                client.jobs.get("x")
        assert failed.value.status == 503 and failed.value.code == "dependency_unavailable"
        assert failed.value.retry_after == 0
        assert len(front.seen) == 3
    finally:
        front.close()


def test_a_batch_without_idempotency_keys_is_not_retried():
    front = Flaky(1)
    try:
        with Switchyard(front.url, TOKEN, max_retry_delay=0.1) as client:
            with pytest.raises(SwitchyardError):
                client.jobs.enqueue_batch([{"kind": "noop"}])
        assert len(front.seen) == 1
    finally:
        front.close()


def test_an_unreachable_server_is_status_0_after_the_retries():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with Switchyard(f"http://127.0.0.1:{port}", TOKEN, retries=1, max_retry_delay=0.05) as client:
        with pytest.raises(SwitchyardError) as failed:
            client.jobs.get("x")
    assert failed.value.status == 0 and failed.value.code == "connection_error"
    assert failed.value.retryable
