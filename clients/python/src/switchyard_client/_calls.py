"""Every API call the clients make, described once: path, body, how to read the answer,
and whether it may be repeated. The sync and async clients run the same descriptions."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Iterable, Iterator
from urllib.parse import quote

import httpx
import pydantic

from . import models
from ._errors import SwitchyardError
from ._transport import Call


def _model(model: type) -> Any:
    return lambda response: model.model_validate_json(response.content)


def _field(model: type, name: str) -> Any:
    return lambda response: getattr(model.model_validate_json(response.content), name)


def _none(_: httpx.Response) -> None:
    return None


def _seg(value: object) -> str:
    """A path segment: ids may come as the models' UUIDs or as strings."""
    return quote(str(value), safe="")


def _body(model: type, values: dict[str, Any]) -> Any:
    """Checks a request body against the API's model, and sends only what was given. A
    value the API would refuse is refused here the way the API refuses it, a 422
    ``SwitchyardError`` naming the field, and nothing is sent."""
    try:
        return model.model_validate(values).model_dump(mode="json", exclude_none=True)
    except pydantic.ValidationError as invalid:
        first = invalid.errors()[0]
        raise _refused(".".join(str(part) for part in first["loc"]), first["msg"]) from None


def _refused(field: str, detail: str) -> SwitchyardError:
    return SwitchyardError(422, "validation_failed", f"{detail} (checked before sending)", field=field or None)


# Jobs.


def enqueue(job: dict[str, Any]) -> Call[models.JobView]:
    body = _body(models.EnqueueRequest, job)
    # A key of the client's own when none is given: a retry after a lost answer cannot
    # enqueue the job twice.
    headers = {} if body.get("idempotency_key") else {"idempotency-key": str(uuid.uuid4())}
    return Call("POST", "/api/v1/jobs", _model(models.JobView), True, json=body, headers=headers)


def enqueue_batch(jobs: Iterable[dict[str, Any]]) -> Call[list[models.BatchEntry]]:
    body = [_body(models.EnqueueRequest, job) for job in jobs]
    return Call(
        "POST",
        "/api/v1/jobs/batch",
        _field(models.BatchResponse, "jobs"),
        # Repeatable only when each job carries its key.
        all(job.get("idempotency_key") for job in body),
        json={"jobs": body},
    )


def get_job(job_id: str) -> Call[models.JobView]:
    return Call("GET", f"/api/v1/jobs/{_seg(job_id)}", _model(models.JobView), True)


def cancel_job(job_id: str) -> Call[models.JobView]:
    return Call("DELETE", f"/api/v1/jobs/{_seg(job_id)}", _model(models.JobView), True)


def retry_job(job_id: str) -> Call[models.JobView]:
    return Call("POST", f"/api/v1/jobs/{_seg(job_id)}/retry", _model(models.JobView), True)


def dead_jobs(queue: str, limit: int | None, cursor: str | None) -> Call[models.DeadPage]:
    return Call(
        "GET",
        f"/api/v1/queues/{_seg(queue)}/dead",
        _model(models.DeadPage),
        True,
        query={"limit": limit, "cursor": cursor},
    )


def retry_dead(queue: str) -> Call[int]:
    return Call(
        "POST", f"/api/v1/queues/{_seg(queue)}/dead/retry", _field(models.Retried, "retried"), True
    )


# Events.


def send_event(event: dict[str, Any]) -> Call[str]:
    body = _body(models.NewEvent, {"id": str(uuid.uuid4()), **event})
    return Call(
        "POST", "/api/v1/events", lambda r: models.Accepted.model_validate_json(r.content).ids[0], True, json=body
    )


def send_events(events: Iterable[dict[str, Any]]) -> Call[models.Accepted]:
    body = [_body(models.NewEvent, {"id": str(uuid.uuid4()), **event}) for event in events]
    return Call("POST", "/api/v1/events/batch", _model(models.Accepted), True, json={"events": body})


def get_event(event_id: str) -> Call[models.EventView]:
    return Call("GET", f"/api/v1/events/{_seg(event_id)}", _model(models.EventView), True)


# Schedules.


def list_schedules() -> Call[list[models.ScheduleView]]:
    return Call("GET", "/api/v1/schedules", _field(models.ScheduleList, "schedules"), True)


def run_schedule(name: str) -> Call[str]:
    return Call("POST", f"/api/v1/schedules/{_seg(name)}/run", _field(models.Triggered, "job_id"), False)


# Webhook endpoints.


def create_endpoint(endpoint: dict[str, Any]) -> Call[models.CreatedEndpoint]:
    return Call(
        "POST", "/api/v1/webhooks", _model(models.CreatedEndpoint), False,
        json=_body(models.EndpointInput, endpoint),
    )


def list_endpoints() -> Call[list[models.Endpoint]]:
    return Call("GET", "/api/v1/webhooks", _field(models.EndpointList, "endpoints"), True)


def update_endpoint(endpoint_id: str, change: dict[str, Any]) -> Call[models.Endpoint]:
    return Call(
        "PATCH", f"/api/v1/webhooks/{_seg(endpoint_id)}", _model(models.Endpoint), True,
        json=_body(models.EndpointInput, change),
    )


def delete_endpoint(endpoint_id: str) -> Call[None]:
    return Call("DELETE", f"/api/v1/webhooks/{_seg(endpoint_id)}", _none, True)


def get_endpoint(endpoint_id: str) -> Call[models.Endpoint]:
    return Call("GET", f"/api/v1/webhooks/{_seg(endpoint_id)}", _model(models.Endpoint), True)


def rotate_secret(endpoint_id: str) -> Call[models.RotatedSecret]:
    return Call("POST", f"/api/v1/webhooks/{_seg(endpoint_id)}/rotate-secret", _model(models.RotatedSecret), False)


def test_endpoint(endpoint_id: str) -> Call[models.Delivery]:
    return Call("POST", f"/api/v1/webhooks/{_seg(endpoint_id)}/test", _model(models.Delivery), False)


def endpoint_deliveries(endpoint_id: str, page: dict[str, Any]) -> Call[models.DeliveryPage]:
    return Call(
        "GET", f"/api/v1/webhooks/{_seg(endpoint_id)}/deliveries", _model(models.DeliveryPage), True,
        query=page,
    )


def get_delivery(endpoint_id: str, delivery_id: str) -> Call[models.DeliveryDetail]:
    return Call(
        "GET", f"/api/v1/webhooks/{_seg(endpoint_id)}/deliveries/{_seg(delivery_id)}",
        _model(models.DeliveryDetail), True,
    )


def replay_delivery(endpoint_id: str, delivery_id: str) -> Call[models.Delivery]:
    return Call(
        "POST", f"/api/v1/webhooks/{_seg(endpoint_id)}/deliveries/{_seg(delivery_id)}/replay",
        _model(models.Delivery), False,
    )


def recover_deliveries(endpoint_id: str, since: datetime | str) -> Call[int]:
    if isinstance(since, datetime):
        if since.tzinfo is None:
            raise _refused("since", "a datetime without a time zone is ambiguous")
        since = since.isoformat()
    # Repeatable: a second call finds the deliveries the first one sent again pending.
    return Call(
        "POST", f"/api/v1/webhooks/{_seg(endpoint_id)}/recover", _field(models.Recovered, "recovered"), True,
        query={"since": since},
    )


# Files.


def upload(content: Any, name: str, bucket: str | None, content_type: str | None) -> Call[models.FileRecord]:
    return Call(
        "POST",
        "/api/v1/files",
        _model(models.FileRecord),
        False,
        query={"bucket": bucket, "name": name},
        content=content,
        headers={"content-type": content_type or "application/octet-stream"},
    )


def get_file(file_id: str) -> Call[models.FileRecord]:
    return Call("GET", f"/api/v1/files/{_seg(file_id)}", _model(models.FileRecord), True)


def list_files(page: dict[str, Any]) -> Call[models.FilePage]:
    return Call("GET", "/api/v1/files", _model(models.FilePage), True, query=page)


def delete_file(file_id: str) -> Call[None]:
    return Call("DELETE", f"/api/v1/files/{_seg(file_id)}", _none, True)


def download(file_id: str, start: int | None, end: int | None) -> Call[httpx.Response]:
    headers = {"accept": "*/*"}
    if start is not None:
        headers["range"] = f"bytes={start}-{'' if end is None else end}"
    return Call(
        "GET", f"/api/v1/files/{_seg(file_id)}/content", lambda r: r, True, headers=headers, stream=True
    )


def sign_url(file_id: str, request: dict[str, Any]) -> Call[models.SignedUrl]:
    return Call(
        "POST", f"/api/v1/files/{_seg(file_id)}/url", _model(models.SignedUrl), True,
        json=_body(models.SignRequest, request),
    )


def upload_token(request: dict[str, Any]) -> Call[models.UploadToken]:
    return Call(
        "POST", "/api/v1/files/upload-tokens", _model(models.UploadToken), False,
        json=_body(models.UploadTokenRequest, request),
    )


# Realtime.


def socket_token(sub: str, channels: list[str], ttl_seconds: int | None) -> Call[models.MintedToken]:
    body = _body(models.SocketTokenRequest, {"sub": sub, "channels": channels, "ttl_seconds": ttl_seconds})
    return Call("POST", "/api/v1/realtime/token", _model(models.MintedToken), True, json=body)


def publish(channel: str, event: str, data: Any) -> Call[models.Published]:
    return Call(
        "POST", "/api/v1/realtime/publish", _model(models.Published), False,
        json={"channel": channel, "event": event, "data": data},
    )


def not_found_is_none(error: SwitchyardError) -> None:
    """For the lookups that answer ``None`` rather than raise on a 404."""
    if error.status != 404:
        raise error


def chunks(path: str, size: int = 1 << 20) -> Iterator[bytes]:
    """A file's bytes, read as they are sent."""
    with open(path, "rb") as file:
        while block := file.read(size):
            yield block
