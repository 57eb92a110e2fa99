from __future__ import annotations

import asyncio
import uuid
from urllib.parse import urlparse

from switchyard_client import RealtimeClient, Switchyard, mint_socket_token

from .conftest import APP_SECRET, TOKEN, URL


class Cuttable:
    """A TCP proxy to the server whose connections the test can cut."""

    def __init__(self) -> None:
        self.writers: list[asyncio.StreamWriter] = []

    async def start(self) -> str:
        target = urlparse(URL)

        async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                while data := await reader.read(65536):
                    writer.write(data)
                    await writer.drain()
            except (ConnectionError, asyncio.CancelledError):
                pass
            finally:
                writer.close()

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            up_reader, up_writer = await asyncio.open_connection(target.hostname, target.port)
            self.writers += [writer, up_writer]
            await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

        self.server = await asyncio.start_server(handle, "127.0.0.1", 0)
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"

    def cut(self) -> None:
        for writer in self.writers:
            writer.transport.abort()
        self.writers.clear()


async def test_a_socket_cut_mid_stream_reconnects_and_gets_what_it_missed_once_each():
    channel = f"orders.{uuid.uuid4().hex[:8]}"
    proxy = Cuttable()
    url = await proxy.start()
    with Switchyard(URL, TOKEN) as server:
        token = server.realtime.token("tester", [channel]).token
        client = RealtimeClient(url, token, min_backoff=0.05, max_backoff=0.2)
        seen: list[int] = []

        async def listen() -> None:
            async for event in client.events([channel]):
                seen.append(event.data["n"])
                if len(seen) == 6:
                    return

        task = asyncio.create_task(listen())
        while client.connections == 0:
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.2)
        for n in (1, 2, 3):
            await asyncio.to_thread(server.realtime.publish, channel, "order.placed", {"n": n})
        while len(seen) < 3:
            await asyncio.sleep(0.05)
        proxy.cut()
        for n in (4, 5, 6):
            await asyncio.to_thread(server.realtime.publish, channel, "order.placed", {"n": n})
        await asyncio.wait_for(task, 20)

    assert seen == [1, 2, 3, 4, 5, 6]
    assert client.connections >= 2


async def test_a_locally_minted_token_is_accepted_and_a_gap_past_history_is_reported():
    channel = f"feed.{uuid.uuid4().hex[:8]}"
    token = mint_socket_token(APP_SECRET, "local", ["feed.*"], ttl_seconds=60)
    gaps: list[str] = []
    client = RealtimeClient(URL, token, on_gap=gaps.append, since={channel: 1})
    with Switchyard(URL, TOKEN) as server:
        server.realtime.publish(channel, "tick", {"n": 1})

        async def first() -> int:
            async for event in client.events([channel]):
                return event.data["n"]
            return -1

        task = asyncio.create_task(first())
        while not gaps:
            await asyncio.sleep(0.05)
        await asyncio.to_thread(server.realtime.publish, channel, "tick", {"n": 2})
        assert await asyncio.wait_for(task, 20) == 2
    assert gaps == [channel]
