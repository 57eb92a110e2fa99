import uuid

import pytest

from switchyard_client import SwitchyardError


def test_an_enqueued_job_reads_back_and_a_repeated_idempotency_key_returns_it(switchyard):
    key = f"order-{uuid.uuid4()}"
    job = switchyard.jobs.enqueue("noop", {"n": 1}, delay_seconds=3600, idempotency_key=key)
    again = switchyard.jobs.enqueue("noop", {"n": 2}, idempotency_key=key)
    read = switchyard.jobs.get(job.id)

    assert job.state == "scheduled" and job.created is True
    assert again.id == job.id and again.created is False
    assert read is not None and read.payload == {"n": 1}
    assert switchyard.jobs.get(str(uuid.uuid4())) is None


def test_a_delayed_job_is_cancelled_and_cancelling_it_again_is_a_typed_409(switchyard):
    job = switchyard.jobs.enqueue("noop", delay_seconds=600)
    assert switchyard.jobs.cancel(job.id).state == "cancelled"
    with pytest.raises(SwitchyardError) as refused:
        switchyard.jobs.cancel(job.id)
    assert refused.value.status == 409 and refused.value.code == "conflict"


def test_one_bad_job_refuses_a_batch_naming_its_field(switchyard):
    made = switchyard.jobs.enqueue_batch([{"kind": "noop", "delay_seconds": 600}] * 2)
    with pytest.raises(SwitchyardError) as refused:
        switchyard.jobs.enqueue_batch([{"kind": "noop"}, {"kind": "noop", "queue": "no-such-queue"}])

    assert len(made) == 2 and all(entry.created for entry in made)
    assert refused.value.status == 422
    assert refused.value.code == "validation_failed"
    assert refused.value.field == "jobs[1].queue"
    assert refused.value.request_id


def test_bad_input_is_a_422_that_names_the_field(switchyard):
    with pytest.raises(SwitchyardError) as refused:
        switchyard.jobs.enqueue("noop", max_attempts=0)
    # Refused by the client's model before anything is sent, as the server would.
    with pytest.raises(SwitchyardError) as wrong_type:
        switchyard.jobs.enqueue("noop", max_attempts="lots")
    with pytest.raises(SwitchyardError) as misspelt:
        switchyard.jobs.enqueue("noop", delay_second=5)

    assert refused.value.status == 422 and refused.value.field == "max_attempts"
    assert not refused.value.retryable
    assert (wrong_type.value.status, wrong_type.value.field, wrong_type.value.code) == (
        422, "max_attempts", "validation_failed")
    assert (misspelt.value.status, misspelt.value.field) == (422, "delay_second")


async def test_the_async_client_enqueues_and_reads_back(async_switchyard):
    job = await async_switchyard.jobs.enqueue("noop", {"async": True}, delay_seconds=600)
    read = await async_switchyard.jobs.get(job.id)
    assert read is not None and read.payload == {"async": True}
    assert (await async_switchyard.jobs.cancel(job.id)).state == "cancelled"


def test_events_are_stored_once_and_schedules_run_now(switchyard):
    event_id = switchyard.events.send("orders.created", {"order": 7})
    repeated = switchyard.events.send_batch([{"id": event_id, "type": "orders.created", "data": {"order": 7}}])
    schedules = switchyard.schedules.list()
    job_id = switchyard.schedules.run_now(schedules[0].name)

    assert repeated.duplicates == 1 and repeated.ids == [event_id]
    assert switchyard.jobs.get(job_id) is not None
    with pytest.raises(SwitchyardError) as missing:
        switchyard.schedules.run_now("no-such-schedule")
    assert missing.value.status == 404


async def test_the_async_client_covers_schedules_webhooks_and_realtime(async_switchyard):
    schedules = await async_switchyard.schedules.list()
    job_id = await async_switchyard.schedules.run_now(schedules[0].name)
    endpoint = await async_switchyard.webhooks.create("http://127.0.0.1:9/hooks", ["reports.*"])
    changed = await async_switchyard.webhooks.update(endpoint.id, enabled=False)
    listed = await async_switchyard.webhooks.list()
    await async_switchyard.webhooks.delete(endpoint.id)
    minted = await async_switchyard.realtime.token("async", ["reports"])
    published = await async_switchyard.realtime.publish("reports", "report.ready", {"n": 1})

    assert (await async_switchyard.jobs.get(job_id)) is not None
    assert endpoint.secret.startswith("whsec_") and changed.enabled is False
    assert any(e.id == endpoint.id for e in listed)
    assert minted.token.count(".") == 2 and published.offset > 0


def test_a_dead_job_is_retried_by_id_and_a_sent_event_reads_back(switchyard):
    from .conftest import eventually

    # Nothing listens on port 9: the call is refused at once.
    job = switchyard.jobs.http("http://127.0.0.1:9/x", max_attempts=1)
    eventually(lambda: switchyard.jobs.get(job.id), lambda j: j is not None and j.state == "dead")
    revived = switchyard.jobs.retry(job.id)
    died_again = eventually(lambda: switchyard.jobs.get(job.id), lambda j: j.state == "dead" and len(j.errors) == 2)
    with pytest.raises(SwitchyardError) as unknown:
        switchyard.jobs.retry(str(uuid.uuid4()))

    event_id = switchyard.events.send("orders.shipped", {"order": 8})
    event = switchyard.events.get(event_id)

    assert revived.id == job.id and revived.state != "dead"
    assert "did not answer" in died_again.errors[0].error
    assert unknown.value.status == 404
    assert event is not None and event.type == "orders.shipped" and event.data == {"order": 8}
    assert switchyard.events.get(f"evt_{uuid.uuid4().hex}") is None
