"""The server scripts/test-clients.sh started, and helpers the tests share."""

from __future__ import annotations

import os
import time
from typing import Callable, TypeVar

import pytest

from switchyard_client import AsyncSwitchyard, Switchyard

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
