"""Sending calls: auth, JSON, problem documents as SwitchyardError, and bounded retries of
calls that cannot take effect twice. One description of each call (``Call``) serves the
sync and the async client alike."""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Generic, TypeVar

import httpx

from ._errors import SwitchyardError, error_from

T = TypeVar("T")


@dataclass
class Call(Generic[T]):
    """One request and how to read its answer."""

    method: str
    path: str
    parse: Callable[[httpx.Response], T]
    #: Whether repeating it cannot do twice what it asks: reads, deletes, and writes with an
    #: idempotency key. Only these are retried.
    idempotent: bool
    query: dict[str, Any] = field(default_factory=dict)
    json: Any = None
    content: Any = None
    files: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    #: Leave the answer's body unread, for a streamed download.
    stream: bool = False


@dataclass
class Options:
    base_url: str
    token: str | None = None
    retries: int = 3
    max_retry_delay: float = 10.0
    timeout: float = 30.0

    def headers(self) -> dict[str, str]:
        headers = {"accept": "application/json", "user-agent": "switchyard-client-python/0.1.0"}
        if self.token:
            headers["authorization"] = f"Bearer {self.token}"
        return headers

    def delay(self, attempt: int, retry_after: float | None) -> float:
        """The wait before the next try: the server's ``Retry-After``, else jittered backoff."""
        if retry_after is not None:
            return min(retry_after, self.max_retry_delay)
        backoff = min(0.1 * 2**attempt, self.max_retry_delay)
        return backoff / 2 + random.random() * backoff / 2


def _request(client: httpx.Client | httpx.AsyncClient, call: Call) -> httpx.Request:
    return client.build_request(
        call.method,
        call.path,
        # None rather than an empty dict: httpx parses the URL once more for any params.
        params={k: v for k, v in call.query.items() if v is not None} or None,
        json=call.json,
        content=call.content,
        files=call.files,
        headers=call.headers,
    )


def _unreachable(options: Options, cause: Exception) -> SwitchyardError:
    error = SwitchyardError(
        0, "connection_error", f"could not reach Switchyard at {options.base_url}: {cause}"
    )
    error.__cause__ = cause
    return error


class SyncTransport:
    def __init__(self, options: Options, client: httpx.Client | None = None) -> None:
        self.options = options
        self.client = client or httpx.Client(
            base_url=options.base_url.rstrip("/"),
            headers=options.headers(),
            timeout=options.timeout,
        )

    def run(self, call: Call[T]) -> T:
        attempt = 0
        while True:
            try:
                response = self.client.send(_request(self.client, call), stream=call.stream)
                if response.is_success:
                    return call.parse(response)
                failure = error_from(response, response.read().decode("utf-8", "replace"))
                response.close()
            except httpx.TransportError as cause:
                failure = _unreachable(self.options, cause)
            if not (failure.retryable and call.idempotent and attempt < self.options.retries):
                raise failure
            time.sleep(self.options.delay(attempt, failure.retry_after))
            attempt += 1

    def close(self) -> None:
        self.client.close()


class AsyncTransport:
    def __init__(self, options: Options, client: httpx.AsyncClient | None = None) -> None:
        self.options = options
        self.client = client or httpx.AsyncClient(
            base_url=options.base_url.rstrip("/"),
            headers=options.headers(),
            timeout=options.timeout,
        )

    async def run(self, call: Call[T]) -> T:
        attempt = 0
        while True:
            try:
                response = await self.client.send(_request(self.client, call), stream=call.stream)
                if response.is_success:
                    return call.parse(response)
                failure = error_from(response, (await response.aread()).decode("utf-8", "replace"))
                await response.aclose()
            except httpx.TransportError as cause:
                failure = _unreachable(self.options, cause)
            if not (failure.retryable and call.idempotent and attempt < self.options.retries):
                raise failure
            await asyncio.sleep(self.options.delay(attempt, failure.retry_after))
            attempt += 1

    async def close(self) -> None:
        await self.client.aclose()
