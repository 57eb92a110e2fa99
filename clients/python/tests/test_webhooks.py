import asyncio
import time
import uuid
from datetime import datetime, timedelta, timezone

import pytest

from switchyard_client import DeliveryRejected, DeliveryVerifier, SwitchyardError

from .conftest import Receiver, eventually


def test_a_failed_delivery_is_recovered_replayed_and_a_rotated_secret_signs_beside_the_old(switchyard):
    receiver = Receiver(None, status=500)
    kind = f"invoices.{uuid.uuid4().hex[:8]}"
    endpoint = switchyard.webhooks.create(receiver.url, [kind])
    receiver.verifier = DeliveryVerifier(endpoint.secret)
    since = datetime.now(timezone.utc) - timedelta(seconds=5)
    try:
        # The test server retries once after 200 ms, so the delivery fails at once.
        switchyard.events.send(kind, {"invoice": 9})
        failed = eventually(
            lambda: switchyard.webhooks.deliveries(endpoint.id, status="failed").deliveries, lambda d: len(d) == 1
        )[0]
        detail = switchyard.webhooks.delivery(endpoint.id, failed.id)

        receiver.status = 204
        recovered = switchyard.webhooks.recover(endpoint.id, since)
        eventually(lambda: switchyard.webhooks.delivery(endpoint.id, failed.id).status, lambda s: s == "succeeded")
        switchyard.webhooks.replay(endpoint.id, failed.id)
        eventually(lambda: len(receiver.received), lambda n: n == 2)

        rotated = switchyard.webhooks.rotate_secret(endpoint.id)
        receiver.verifier = DeliveryVerifier(rotated.secret)
        # Workers read an endpoint again after at most a second.
        time.sleep(1.1)
        test = switchyard.webhooks.test(endpoint.id)
        eventually(lambda: len(receiver.received), lambda n: n == 3)
        body, headers = receiver.calls[-1]
    finally:
        receiver.close()
        switchyard.webhooks.delete(endpoint.id)

    assert failed.event_type == kind and failed.attempts == 2 and failed.last_status == 500
    assert detail is not None and [a.status for a in detail.attempts] == [500, 500]
    assert recovered == 1
    # The replay is the same message: same id, same payload.
    assert receiver.received[0] == receiver.received[1] == {**receiver.received[0], "data": {"invoice": 9}}
    assert receiver.calls[-2][1]["webhook-id"] == receiver.calls[-3][1]["webhook-id"]
    assert test.trigger == "test" and receiver.received[2]["type"] == "webhook.test"
    assert rotated.previous_secret_valid_until > datetime.now(timezone.utc)
    # During the overlap each call carries both signatures.
    assert DeliveryVerifier(endpoint.secret).verify(body, headers)["type"] == "webhook.test"
    assert switchyard.webhooks.get(endpoint.id) is None


def test_recover_refuses_a_time_without_a_zone_and_unknown_deliveries_are_none_or_404(switchyard):
    endpoint = switchyard.webhooks.create("http://127.0.0.1:9/hooks", ["reports.*"])
    try:
        with pytest.raises(SwitchyardError) as naive:
            switchyard.webhooks.recover(endpoint.id, datetime.now())
        with pytest.raises(SwitchyardError) as bad_time:
            switchyard.webhooks.recover(endpoint.id, "yesterday")
        with pytest.raises(SwitchyardError) as bad_status:
            switchyard.webhooks.deliveries(endpoint.id, status="lost")
        with pytest.raises(SwitchyardError) as unknown:
            switchyard.webhooks.replay(endpoint.id, str(uuid.uuid4()))
        missing = switchyard.webhooks.delivery(endpoint.id, str(uuid.uuid4()))
    finally:
        switchyard.webhooks.delete(endpoint.id)

    assert (naive.value.status, naive.value.field) == (422, "since")
    assert (bad_time.value.status, bad_time.value.field) == (422, "since")
    assert (bad_status.value.status, bad_status.value.field) == (422, "status")
    assert unknown.value.status == 404 and missing is None


async def test_the_async_client_covers_files_dead_jobs_and_the_webhook_tools(async_switchyard):
    import httpx

    record = await async_switchyard.files.upload(b"the quick brown fox", "fox.txt")
    async with async_switchyard.files.download(record.id, start=4, end=8) as part:
        ranged = (part.status_code, await part.aread())
    signed = await async_switchyard.files.sign_url(record.id, expires_in_seconds=60)
    token = await async_switchyard.files.create_upload_token("default", 60, max_size=16)
    deleted = (await async_switchyard.files.delete(record.id), await async_switchyard.files.delete(record.id))

    receiver = Receiver(None, status=500)
    try:
        job = await async_switchyard.jobs.http(receiver.url, max_attempts=1, queue="http")
        for _ in range(200):
            dead = [j.id async for j in async_switchyard.jobs.all_dead("http")]
            if job.id in dead:
                break
            await asyncio.sleep(0.1)
        endpoint = await async_switchyard.webhooks.create(receiver.url, ["reports.*"])
        receiver.verifier = DeliveryVerifier(endpoint.secret)
        receiver.status = 204
        test = await async_switchyard.webhooks.test(endpoint.id)
        rotated = await async_switchyard.webhooks.rotate_secret(endpoint.id)
        read = await async_switchyard.webhooks.get(endpoint.id)
        page = await async_switchyard.webhooks.deliveries(endpoint.id, event_type="webhook.test")
        detail = await async_switchyard.webhooks.delivery(endpoint.id, test.id)
        recovered = await async_switchyard.webhooks.recover(endpoint.id, datetime.now(timezone.utc))
        await async_switchyard.webhooks.delete(endpoint.id)
    finally:
        receiver.close()

    assert ranged == (206, b"quick") and deleted == (True, False)
    async with httpx.AsyncClient() as plain:
        assert (await plain.get(signed.url)).status_code == 404
    assert token.token and "/api/v1/files?bucket=default" in token.upload_url
    assert job.id in dead
    assert read is not None and read.id == endpoint.id and rotated.secret != endpoint.secret
    assert [d.id for d in page.deliveries] == [test.id] and detail is not None and recovered == 0
    with pytest.raises(DeliveryRejected):
        DeliveryVerifier(rotated.secret).verify(b"{}", {})
