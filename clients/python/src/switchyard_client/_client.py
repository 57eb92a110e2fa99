"""The clients: ``Switchyard`` (blocking) and ``AsyncSwitchyard`` (asyncio), each with the
same areas and calls, the async ones awaited."""

from __future__ import annotations

import asyncio
import contextlib
import os
from datetime import datetime
from typing import Any, AsyncIterator, Iterable, Iterator

import httpx

from . import _calls as calls
from . import models
from ._errors import SwitchyardError
from ._transport import AsyncTransport, Options, SyncTransport


def _options(base_url: str, token: str | None, retries: int, max_retry_delay: float, timeout: float) -> Options:
    if not base_url:
        raise ValueError("base_url is required")
    return Options(base_url, token, max(0, retries), max(0.0, max_retry_delay), timeout)


class _Area:
    def __init__(self, transport: Any) -> None:
        self._t = transport


# The blocking client.


class Jobs(_Area):
    def enqueue(self, kind: str, payload: dict[str, Any] | None = None, **options: Any) -> models.JobView:
        """Enqueues a job; ``idempotency_key`` makes a repeat return the first job."""
        return self._t.run(calls.enqueue({"kind": kind, "payload": payload, **options}))

    def enqueue_batch(self, jobs: Iterable[dict[str, Any]]) -> list[models.BatchEntry]:
        """Up to 1,000 jobs, all checked before any is queued."""
        return self._t.run(calls.enqueue_batch(jobs))

    def http(self, url: str, *, method: str = "POST", headers: dict[str, str] | None = None,
             body: Any = None, **options: Any) -> models.JobView:
        """An ``http`` job: Switchyard sends the request, signed, when it runs."""
        request = {"url": url, "method": method, "headers": headers or {}, "body": body}
        return self.enqueue("http", {k: v for k, v in request.items() if v is not None}, **options)

    def get(self, job_id: str) -> models.JobView | None:
        try:
            return self._t.run(calls.get_job(job_id))
        except SwitchyardError as error:
            return calls.not_found_is_none(error)

    def cancel(self, job_id: str) -> models.JobView:
        return self._t.run(calls.cancel_job(job_id))

    def retry(self, job_id: str) -> models.JobView:
        return self._t.run(calls.retry_job(job_id))

    def dead(self, queue: str, *, limit: int | None = None, cursor: str | None = None) -> models.DeadPage:
        return self._t.run(calls.dead_jobs(queue, limit, cursor))

    def all_dead(self, queue: str) -> Iterator[models.JobView]:
        cursor = None
        while True:
            page = self.dead(queue, limit=200, cursor=cursor)
            yield from page.jobs
            cursor = page.next_cursor
            if not cursor:
                return

    def retry_dead(self, queue: str) -> int:
        return self._t.run(calls.retry_dead(queue))


class Events(_Area):
    def send(self, type: str, data: Any, **fields: Any) -> str:
        """Sends one event; returns its id. A retry of it is a no-op on the server."""
        return self._t.run(calls.send_event({"type": type, "data": data, **fields}))

    def send_batch(self, events: Iterable[dict[str, Any]]) -> models.Accepted:
        return self._t.run(calls.send_events(events))

    def get(self, event_id: str) -> models.EventView | None:
        try:
            return self._t.run(calls.get_event(event_id))
        except SwitchyardError as error:
            return calls.not_found_is_none(error)


class Schedules(_Area):
    def list(self) -> list[models.ScheduleView]:
        return self._t.run(calls.list_schedules())

    def run_now(self, name: str) -> str:
        """Enqueues the schedule's job now; returns the job's id."""
        return self._t.run(calls.run_schedule(name))


class Webhooks(_Area):
    def create(self, url: str, event_types: list[str], **fields: Any) -> models.CreatedEndpoint:
        """Makes an endpoint; the answer's ``secret`` is shown this once."""
        return self._t.run(calls.create_endpoint({"url": url, "event_types": event_types, **fields}))

    def list(self) -> list[models.Endpoint]:
        return self._t.run(calls.list_endpoints())

    def update(self, endpoint_id: str, **change: Any) -> models.Endpoint:
        return self._t.run(calls.update_endpoint(endpoint_id, change))

    def delete(self, endpoint_id: str) -> None:
        self._t.run(calls.delete_endpoint(endpoint_id))

    def get(self, endpoint_id: str) -> models.Endpoint | None:
        try:
            return self._t.run(calls.get_endpoint(endpoint_id))
        except SwitchyardError as error:
            return calls.not_found_is_none(error)

    def rotate_secret(self, endpoint_id: str) -> models.RotatedSecret:
        """A new secret; the previous one keeps signing too until ``previous_secret_valid_until``.
        Deliveries carry the new signature within a second."""
        return self._t.run(calls.rotate_secret(endpoint_id))

    def test(self, endpoint_id: str) -> models.Delivery:
        """Sends the endpoint a ``webhook.test`` event."""
        return self._t.run(calls.test_endpoint(endpoint_id))

    def deliveries(self, endpoint_id: str, *, status: str | None = None, event_type: str | None = None,
                   limit: int | None = None, cursor: str | None = None) -> models.DeliveryPage:
        """A page of the endpoint's deliveries, newest first."""
        page = {"status": status, "event_type": event_type, "limit": limit, "cursor": cursor}
        return self._t.run(calls.endpoint_deliveries(endpoint_id, page))

    def delivery(self, endpoint_id: str, delivery_id: str) -> models.DeliveryDetail | None:
        """One delivery with every attempt."""
        try:
            return self._t.run(calls.get_delivery(endpoint_id, delivery_id))
        except SwitchyardError as error:
            return calls.not_found_is_none(error)

    def replay(self, endpoint_id: str, delivery_id: str) -> models.Delivery:
        """Sends a delivery again, with fresh attempts."""
        return self._t.run(calls.replay_delivery(endpoint_id, delivery_id))

    def recover(self, endpoint_id: str, since: datetime | str) -> int:
        """Sends again every delivery that failed since ``since``; returns how many."""
        return self._t.run(calls.recover_deliveries(endpoint_id, since))


class Files(_Area):
    def upload(self, content: bytes | Iterable[bytes], name: str, *, bucket: str | None = None,
               content_type: str | None = None) -> models.FileRecord:
        """Uploads bytes or an iterable of chunks, streamed as they are read. Not retried."""
        return self._t.run(calls.upload(content, name, bucket, content_type))

    def upload_path(self, path: str | os.PathLike[str], *, name: str | None = None,
                    bucket: str | None = None, content_type: str | None = None) -> models.FileRecord:
        """Uploads the file at ``path``, streamed from disk."""
        path = os.fspath(path)
        return self.upload(calls.chunks(path), name or os.path.basename(path), bucket=bucket,
                           content_type=content_type)

    def get(self, file_id: str) -> models.FileRecord | None:
        try:
            return self._t.run(calls.get_file(file_id))
        except SwitchyardError as error:
            return calls.not_found_is_none(error)

    def list(self, *, bucket: str | None = None, name_prefix: str | None = None, limit: int | None = None,
             cursor: str | None = None) -> models.FilePage:
        """A page of files, newest first; pass ``next_cursor`` back for the next."""
        page = {"bucket": bucket, "name_prefix": name_prefix, "limit": limit, "cursor": cursor}
        return self._t.run(calls.list_files(page))

    @contextlib.contextmanager
    def download(self, file_id: str, *, start: int | None = None, end: int | None = None) -> Iterator[httpx.Response]:
        """``with files.download(id) as answer:`` the answer with its body not yet read:
        ``answer.iter_bytes()`` streams it. With ``start`` (and ``end``, inclusive), a 206
        of that range."""
        response = self._t.run(calls.download(file_id, start, end))
        try:
            yield response
        finally:
            response.close()

    def sign_url(self, file_id: str, **request: Any) -> models.SignedUrl:
        return self._t.run(calls.sign_url(file_id, request))

    def create_upload_token(self, bucket: str, expires_in_seconds: int, **limits: Any) -> models.UploadToken:
        """An upload token for a browser: one bucket, within its limits, nothing else."""
        return self._t.run(calls.upload_token({"bucket": bucket, "expires_in_seconds": expires_in_seconds, **limits}))

    def delete(self, file_id: str) -> bool:
        try:
            self._t.run(calls.delete_file(file_id))
            return True
        except SwitchyardError as error:
            calls.not_found_is_none(error)
            return False


class Realtime(_Area):
    def token(self, sub: str, channels: list[str], ttl_seconds: int | None = None) -> models.MintedToken:
        """A socket token minted by the server; ``mint_socket_token`` signs one locally."""
        return self._t.run(calls.socket_token(sub, channels, ttl_seconds))

    def publish(self, channel: str, event: str, data: Any) -> models.Published:
        return self._t.run(calls.publish(channel, event, data))


class Switchyard:
    """The blocking client. Use it in a ``with`` block, or ``close()`` it."""

    def __init__(self, base_url: str, token: str | None = None, *, retries: int = 3,
                 max_retry_delay: float = 10.0, timeout: float = 30.0,
                 http_client: httpx.Client | None = None) -> None:
        self._transport = SyncTransport(_options(base_url, token, retries, max_retry_delay, timeout), http_client)
        self.jobs = Jobs(self._transport)
        self.events = Events(self._transport)
        self.webhooks = Webhooks(self._transport)
        self.files = Files(self._transport)
        self.schedules = Schedules(self._transport)
        self.realtime = Realtime(self._transport)

    def close(self) -> None:
        self._transport.close()

    def __enter__(self) -> Switchyard:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


# The asyncio client: the same calls, awaited.


class AsyncJobs(_Area):
    async def enqueue(self, kind: str, payload: dict[str, Any] | None = None, **options: Any) -> models.JobView:
        return await self._t.run(calls.enqueue({"kind": kind, "payload": payload, **options}))

    async def enqueue_batch(self, jobs: Iterable[dict[str, Any]]) -> list[models.BatchEntry]:
        return await self._t.run(calls.enqueue_batch(jobs))

    async def http(self, url: str, *, method: str = "POST", headers: dict[str, str] | None = None,
                   body: Any = None, **options: Any) -> models.JobView:
        request = {"url": url, "method": method, "headers": headers or {}, "body": body}
        return await self.enqueue("http", {k: v for k, v in request.items() if v is not None}, **options)

    async def get(self, job_id: str) -> models.JobView | None:
        try:
            return await self._t.run(calls.get_job(job_id))
        except SwitchyardError as error:
            return calls.not_found_is_none(error)

    async def cancel(self, job_id: str) -> models.JobView:
        return await self._t.run(calls.cancel_job(job_id))

    async def retry(self, job_id: str) -> models.JobView:
        return await self._t.run(calls.retry_job(job_id))

    async def dead(self, queue: str, *, limit: int | None = None, cursor: str | None = None) -> models.DeadPage:
        return await self._t.run(calls.dead_jobs(queue, limit, cursor))

    async def all_dead(self, queue: str) -> AsyncIterator[models.JobView]:
        """Every dead job of ``queue``, page after page: ``async for job in jobs.all_dead(q)``."""
        cursor = None
        while True:
            page = await self.dead(queue, limit=200, cursor=cursor)
            for job in page.jobs:
                yield job
            cursor = page.next_cursor
            if not cursor:
                return

    async def retry_dead(self, queue: str) -> int:
        return await self._t.run(calls.retry_dead(queue))


class AsyncEvents(_Area):
    async def send(self, type: str, data: Any, **fields: Any) -> str:
        return await self._t.run(calls.send_event({"type": type, "data": data, **fields}))

    async def send_batch(self, events: Iterable[dict[str, Any]]) -> models.Accepted:
        return await self._t.run(calls.send_events(events))

    async def get(self, event_id: str) -> models.EventView | None:
        try:
            return await self._t.run(calls.get_event(event_id))
        except SwitchyardError as error:
            return calls.not_found_is_none(error)


class AsyncFiles(_Area):
    async def upload(self, content: bytes | AsyncIterator[bytes], name: str, *, bucket: str | None = None,
                     content_type: str | None = None) -> models.FileRecord:
        return await self._t.run(calls.upload(content, name, bucket, content_type))

    async def upload_path(self, path: str | os.PathLike[str], *, name: str | None = None,
                          bucket: str | None = None, content_type: str | None = None) -> models.FileRecord:
        path = os.fspath(path)

        async def read() -> AsyncIterator[bytes]:
            blocks = calls.chunks(path)
            while block := await asyncio.to_thread(next, blocks, b""):
                yield block

        return await self.upload(read(), name or os.path.basename(path), bucket=bucket, content_type=content_type)

    async def get(self, file_id: str) -> models.FileRecord | None:
        try:
            return await self._t.run(calls.get_file(file_id))
        except SwitchyardError as error:
            return calls.not_found_is_none(error)

    async def list(self, *, bucket: str | None = None, name_prefix: str | None = None, limit: int | None = None,
                   cursor: str | None = None) -> models.FilePage:
        page = {"bucket": bucket, "name_prefix": name_prefix, "limit": limit, "cursor": cursor}
        return await self._t.run(calls.list_files(page))

    @contextlib.asynccontextmanager
    async def download(self, file_id: str, *, start: int | None = None,
                       end: int | None = None) -> AsyncIterator[httpx.Response]:
        """``async with files.download(id) as answer:`` ``answer.aiter_bytes()`` streams it."""
        response = await self._t.run(calls.download(file_id, start, end))
        try:
            yield response
        finally:
            await response.aclose()

    async def sign_url(self, file_id: str, **request: Any) -> models.SignedUrl:
        return await self._t.run(calls.sign_url(file_id, request))

    async def create_upload_token(self, bucket: str, expires_in_seconds: int, **limits: Any) -> models.UploadToken:
        return await self._t.run(
            calls.upload_token({"bucket": bucket, "expires_in_seconds": expires_in_seconds, **limits})
        )

    async def delete(self, file_id: str) -> bool:
        try:
            await self._t.run(calls.delete_file(file_id))
            return True
        except SwitchyardError as error:
            calls.not_found_is_none(error)
            return False


class AsyncSchedules(_Area):
    async def list(self) -> list[models.ScheduleView]:
        return await self._t.run(calls.list_schedules())

    async def run_now(self, name: str) -> str:
        return await self._t.run(calls.run_schedule(name))


class AsyncWebhooks(_Area):
    async def create(self, url: str, event_types: list[str], **fields: Any) -> models.CreatedEndpoint:
        return await self._t.run(calls.create_endpoint({"url": url, "event_types": event_types, **fields}))

    async def list(self) -> list[models.Endpoint]:
        return await self._t.run(calls.list_endpoints())

    async def update(self, endpoint_id: str, **change: Any) -> models.Endpoint:
        return await self._t.run(calls.update_endpoint(endpoint_id, change))

    async def delete(self, endpoint_id: str) -> None:
        await self._t.run(calls.delete_endpoint(endpoint_id))

    async def get(self, endpoint_id: str) -> models.Endpoint | None:
        try:
            return await self._t.run(calls.get_endpoint(endpoint_id))
        except SwitchyardError as error:
            return calls.not_found_is_none(error)

    async def rotate_secret(self, endpoint_id: str) -> models.RotatedSecret:
        return await self._t.run(calls.rotate_secret(endpoint_id))

    async def test(self, endpoint_id: str) -> models.Delivery:
        return await self._t.run(calls.test_endpoint(endpoint_id))

    async def deliveries(self, endpoint_id: str, *, status: str | None = None, event_type: str | None = None,
                         limit: int | None = None, cursor: str | None = None) -> models.DeliveryPage:
        page = {"status": status, "event_type": event_type, "limit": limit, "cursor": cursor}
        return await self._t.run(calls.endpoint_deliveries(endpoint_id, page))

    async def delivery(self, endpoint_id: str, delivery_id: str) -> models.DeliveryDetail | None:
        try:
            return await self._t.run(calls.get_delivery(endpoint_id, delivery_id))
        except SwitchyardError as error:
            return calls.not_found_is_none(error)

    async def replay(self, endpoint_id: str, delivery_id: str) -> models.Delivery:
        return await self._t.run(calls.replay_delivery(endpoint_id, delivery_id))

    async def recover(self, endpoint_id: str, since: datetime | str) -> int:
        return await self._t.run(calls.recover_deliveries(endpoint_id, since))


class AsyncRealtime(_Area):
    async def token(self, sub: str, channels: list[str], ttl_seconds: int | None = None) -> models.MintedToken:
        return await self._t.run(calls.socket_token(sub, channels, ttl_seconds))

    async def publish(self, channel: str, event: str, data: Any) -> models.Published:
        return await self._t.run(calls.publish(channel, event, data))


class AsyncSwitchyard:
    """The asyncio client. Use it in an ``async with`` block, or ``await close()``."""

    def __init__(self, base_url: str, token: str | None = None, *, retries: int = 3,
                 max_retry_delay: float = 10.0, timeout: float = 30.0,
                 http_client: httpx.AsyncClient | None = None) -> None:
        self._transport = AsyncTransport(_options(base_url, token, retries, max_retry_delay, timeout), http_client)
        self.jobs = AsyncJobs(self._transport)
        self.events = AsyncEvents(self._transport)
        self.webhooks = AsyncWebhooks(self._transport)
        self.files = AsyncFiles(self._transport)
        self.schedules = AsyncSchedules(self._transport)
        self.realtime = AsyncRealtime(self._transport)

    async def close(self) -> None:
        await self._transport.close()

    async def __aenter__(self) -> AsyncSwitchyard:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()
