"""Realtime from Python: socket tokens signed with ``APP_SECRET``, and a socket that stays
up (``websockets``), reconnecting with jittered backoff and subscribing again with
``since`` so no event is missed or repeated."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import random
import time
from dataclasses import dataclass
from typing import Any, AsyncIterator, Awaitable, Callable


def mint_socket_token(app_secret: str, sub: str, channels: list[str], ttl_seconds: int = 3600) -> str:
    """An HS256 JWT the hub accepts: ``sub``, ``channels`` (names, ``prefix.*`` or ``*``), ``exp``."""

    def part(value: Any) -> str:
        raw = json.dumps(value, separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    claims = {"sub": sub, "channels": channels, "exp": int(time.time()) + ttl_seconds}
    signed = f"{part({'alg': 'HS256', 'typ': 'JWT'})}.{part(claims)}"
    signature = hmac.new(app_secret.encode(), signed.encode(), hashlib.sha256).digest()
    return f"{signed}.{base64.urlsafe_b64encode(signature).rstrip(b'=').decode()}"


@dataclass
class RealtimeEvent:
    channel: str
    event: str
    data: Any
    offset: int
    ts: int


class RealtimeClient:
    """A socket to the hub. ``async for event in client.events(["orders"])`` yields every
    event, across reconnects, each once and in order. ``token`` is a string or an async
    function that fetches a fresh one (called again after a 4001 or 4002 close).
    ``on_gap(channel)`` runs when missed events are older than the channel's history."""

    def __init__(
        self,
        url: str,
        token: str | Callable[[], Awaitable[str]],
        *,
        on_gap: Callable[[str], None] | None = None,
        since: dict[str, int] | None = None,
        min_backoff: float = 0.25,
        max_backoff: float = 10.0,
    ) -> None:
        base = url.rstrip("/")
        base = base.replace("https://", "wss://", 1).replace("http://", "ws://", 1)
        self.url = base if base.endswith("/api/v1/realtime") else f"{base}/api/v1/realtime"
        self._token = token
        self._on_gap = on_gap
        self.offsets: dict[str, int] = dict(since or {})
        self._min, self._max = min_backoff, max_backoff
        #: Each time a socket opened: for tests and logs.
        self.connections = 0

    async def _fresh_token(self) -> str:
        return self._token if isinstance(self._token, str) else await self._token()

    async def events(self, channels: list[str]) -> AsyncIterator[RealtimeEvent]:
        import websockets

        attempt = 0
        token = await self._fresh_token()
        while True:
            try:
                async with websockets.connect(self.url) as socket:
                    await socket.send(json.dumps({"type": "auth", "token": token}))
                    async for raw in socket:
                        message = json.loads(raw)
                        kind = message.get("type")
                        if kind == "connected":
                            attempt = 0
                            self.connections += 1
                            since = {c: self.offsets[c] for c in channels if c in self.offsets}
                            request: dict[str, Any] = {"type": "subscribe", "channels": channels}
                            if since:
                                request["since"] = since
                            await socket.send(json.dumps(request))
                        elif kind == "subscribed":
                            for channel in message.get("channels", []):
                                had = self.offsets.get(channel)
                                if message.get("recovered") is False and had is not None and self._on_gap:
                                    self._on_gap(channel)
                                latest = message.get("offsets", {}).get(channel)
                                if latest is not None and (message.get("recovered") is False or had is None):
                                    self.offsets[channel] = latest
                        elif kind == "event":
                            channel, offset = message["channel"], message["offset"]
                            if offset <= self.offsets.get(channel, -1):
                                continue
                            self.offsets[channel] = offset
                            yield RealtimeEvent(channel, message["event"], message.get("data"), offset, message["ts"])
            except asyncio.CancelledError:
                raise
            except Exception as error:  # a dropped connection, or the server's close
                code = getattr(getattr(error, "rcvd", None), "code", None)
            else:
                code = None
            if code in (4001, 4002) and not isinstance(self._token, str):
                token = await self._fresh_token()
            ceiling = min(self._max, self._min * 2**attempt)
            attempt += 1
            await asyncio.sleep(random.random() * ceiling)
