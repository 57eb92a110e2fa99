from __future__ import annotations

import tracemalloc
import uuid
from datetime import datetime, timedelta, timezone

import pytest
from standardwebhooks.webhooks import Webhook

from switchyard_client import DeliveryRejected, DeliveryVerifier, SwitchyardError

from .conftest import SIGNING_SECRET, Receiver, eventually

MiB = 1 << 20


def test_a_file_streamed_up_reads_back_whole_and_by_range(switchyard, tmp_path):
    path = tmp_path / "fox.txt"
    path.write_bytes(b"the quick brown fox jumps over the lazy dog")
    record = switchyard.files.upload_path(path, content_type="text/plain")

    with switchyard.files.download(str(record.id)) as whole:
        assert b"".join(whole.iter_bytes()) == path.read_bytes()
    with switchyard.files.download(str(record.id), start=4, end=8) as part:
        assert part.status_code == 206 and part.read() == b"quick"
    assert record.name == "fox.txt" and record.size == 43


def test_100_mb_streamed_up_from_a_generator_keeps_memory_flat(switchyard):
    def generated():
        for _ in range(100):
            yield bytes(MiB)

    tracemalloc.start()
    try:
        record = switchyard.files.upload(generated(), "big.bin", bucket="large")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert record.size == 100 * MiB
    assert peak < 16 * MiB, f"the client held {peak / MiB:.1f} MiB at once"


def test_signed_urls_and_upload_tokens(switchyard):
    import httpx

    record = switchyard.files.upload(b"signed", "s.txt")
    signed = switchyard.files.sign_url(str(record.id), expires_in_seconds=60)
    token = switchyard.files.create_upload_token("default", 60, max_size=16)
    made = httpx.post(token.upload_url, headers={"authorization": f"Bearer {token.token}"},
                      files={"file": ("page.txt", b"small")})
    refused = httpx.post(token.upload_url, headers={"authorization": f"Bearer {token.token}"},
                         files={"file": ("big.txt", b"x" * 64)})

    assert httpx.get(signed.url).content == b"signed"
    assert made.status_code == 201 and refused.status_code == 413
    assert switchyard.files.get(str(uuid.uuid4())) is None
    assert switchyard.files.delete(str(uuid.uuid4())) is False


def test_an_http_job_comes_back_signed_is_verified_and_succeeds(switchyard):
    receiver = Receiver(DeliveryVerifier(SIGNING_SECRET))
    try:
        job = switchyard.jobs.http(receiver.url, body={"report": 42}, max_attempts=1)
        done = eventually(lambda: switchyard.jobs.get(job.id), lambda j: j is not None and j.state == "succeeded")
        assert done.state == "succeeded"
        assert receiver.received == [{"report": 42}]
    finally:
        receiver.close()


def test_a_failing_job_dies_is_listed_and_retried(switchyard):
    receiver = Receiver(None, status=500)
    try:
        job = switchyard.jobs.http(receiver.url, max_attempts=1, queue="http")
        listed = eventually(lambda: [j.id for j in switchyard.jobs.all_dead("http")], lambda ids: job.id in ids)
        assert job.id in listed
        assert switchyard.jobs.retry_dead("http") >= 1
    finally:
        receiver.close()


def test_the_verifier_rejects_tampering_wrong_secrets_and_old_calls_and_serves_fastapi():
    from fastapi import Depends, FastAPI
    from fastapi.testclient import TestClient

    body = b'{"ok":true}'

    def signed(secret: str, at: datetime) -> dict[str, str]:
        return {
            "webhook-id": "msg_1",
            "webhook-timestamp": str(int(at.timestamp())),
            "webhook-signature": Webhook(secret).sign("msg_1", at, body.decode()),
        }

    now = datetime.now(timezone.utc)
    other = "whsec_" + "bmJubmJubmJubmJubmJubmJubmJubmJubmJubmJubmI="
    verifier = DeliveryVerifier(SIGNING_SECRET)
    assert verifier.verify(body, signed(SIGNING_SECRET, now)) == {"ok": True}
    for bad_body, headers in [
        (b'{"ok":false}', signed(SIGNING_SECRET, now)),
        (body, signed(other, now)),
        (body, signed(SIGNING_SECRET, now - timedelta(minutes=10))),
        (body, {}),
    ]:
        with pytest.raises(DeliveryRejected):
            verifier.verify(bad_body, headers)
    assert DeliveryVerifier([other, SIGNING_SECRET]).verify(body, signed(SIGNING_SECRET, now)) == {"ok": True}

    app = FastAPI()

    @app.post("/hooks")
    async def hook(verified=Depends(verifier.fastapi())):
        return {"verified": verified}

    client = TestClient(app)
    assert client.post("/hooks", content=body, headers=signed(SIGNING_SECRET, now)).json() == {"verified": {"ok": True}}
    assert client.post("/hooks", content=body, headers=signed(other, now)).status_code == 401


def test_files_are_listed_newest_first_by_name_prefix_page_after_page(switchyard):
    prefix = f"list-{uuid.uuid4().hex[:8]}-"
    for n in (1, 2, 3):
        switchyard.files.upload(bytes([n]), f"{prefix}{n}.bin")
    first = switchyard.files.list(name_prefix=prefix, limit=2)
    second = switchyard.files.list(name_prefix=prefix, limit=2, cursor=first.next_cursor)
    with pytest.raises(SwitchyardError) as bad:
        switchyard.files.list(limit=0)

    assert [f.name for f in first.files + second.files] == [f"{prefix}{n}.bin" for n in (3, 2, 1)]
    assert second.next_cursor is None
    assert (bad.value.status, bad.value.field) == (422, "limit")
