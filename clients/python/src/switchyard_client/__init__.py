"""Switchyard's Python client: jobs, events, webhook endpoints, files, schedules and
realtime over the HTTP API, sync (``Switchyard``) and async (``AsyncSwitchyard``) on
httpx, with typed errors and safe retries; a realtime socket that recovers what it
missed; and the check of the signed calls Switchyard makes back to your service.

    from switchyard_client import Switchyard

    with Switchyard(os.environ["SWITCHYARD_URL"], os.environ["SWITCHYARD_KEY"]) as switchyard:
        job = switchyard.jobs.enqueue("mails", {"to": "ada@example.com"})
"""

from . import models
from ._client import AsyncSwitchyard, Switchyard
from ._errors import SwitchyardError
from .deliveries import DeliveryRejected, DeliveryVerifier
from .realtime import RealtimeClient, RealtimeEvent, mint_socket_token

__all__ = [
    "AsyncSwitchyard",
    "DeliveryRejected",
    "DeliveryVerifier",
    "RealtimeClient",
    "RealtimeEvent",
    "Switchyard",
    "SwitchyardError",
    "mint_socket_token",
    "models",
]
__version__ = "0.1.0"
