"""The one error the client raises: the API's problem document as fields."""

from __future__ import annotations

import email.utils
import json
import time

import httpx


class SwitchyardError(Exception):
    """A refused or failed call: the problem+json document's fields, or, when no answer
    came (the server could not be reached), ``status`` 0 and ``code`` ``connection_error``."""

    def __init__(
        self,
        status: int,
        code: str,
        detail: str,
        *,
        field: str | None = None,
        request_id: str | None = None,
        required_scope: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(f"{detail} ({field})" if field else detail)
        self.status = status
        self.code = code
        self.detail = detail
        self.field = field
        self.request_id = request_id
        self.required_scope = required_scope
        self.retry_after = retry_after

    @property
    def retryable(self) -> bool:
        """Whether asking again later may succeed: unreachable or unavailable."""
        return self.status in (0, 503)

    def __repr__(self) -> str:
        return f"SwitchyardError(status={self.status}, code={self.code!r}, field={self.field!r})"


def error_from(response: httpx.Response, text: str) -> SwitchyardError:
    """Reads an error answer: a problem document when it is one."""
    problem: dict = {}
    try:
        parsed = json.loads(text)
        if isinstance(parsed, dict):
            problem = parsed
    except ValueError:
        pass

    def string(key: str) -> str | None:
        value = problem.get(key)
        return value if isinstance(value, str) else None

    return SwitchyardError(
        response.status_code,
        string("code") or f"http_{response.status_code}",
        string("detail") or (text[:200] or response.reason_phrase or f"HTTP {response.status_code}"),
        field=string("field"),
        request_id=string("request_id") or response.headers.get("x-request-id"),
        required_scope=string("required_scope"),
        retry_after=parse_retry_after(response.headers.get("retry-after")),
    )


def parse_retry_after(value: str | None) -> float | None:
    """``Retry-After`` in seconds: a number, or an HTTP date."""
    if value is None or not value.strip():
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        at = email.utils.parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError):
        return None
    return max(0.0, at - time.time())
