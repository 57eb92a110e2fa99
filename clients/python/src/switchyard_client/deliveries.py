"""Checking the calls Switchyard makes to your service (``http`` jobs, webhook
deliveries): each is signed by the Standard Webhooks scheme, and the check is the official
``standardwebhooks`` library's."""


from typing import Any, Mapping, Sequence

from standardwebhooks.webhooks import Webhook, WebhookVerificationError


class DeliveryRejected(Exception):
    """A delivery whose signature or timestamp did not check out."""


class DeliveryVerifier:
    """Checks deliveries against the ``whsec_`` secret: ``OUTBOUND_SIGNING_SECRET`` for
    ``http`` jobs, an endpoint's own for webhooks. During a rotation give both: a call
    signed with either passes."""

    def __init__(self, secrets: str | Sequence[str]) -> None:
        listed = [secrets] if isinstance(secrets, str) else list(secrets)
        if not listed or not all(listed):
            raise ValueError("DeliveryVerifier needs at least one whsec_ secret")
        self._keys = [Webhook(secret) for secret in listed]

    def verify(self, body: bytes | str, headers: Mapping[str, str]) -> Any:
        """The delivery's JSON body once its signature checks out against the raw body.
        Raises ``DeliveryRejected`` otherwise (a bad or missing signature, a timestamp
        more than five minutes off)."""
        wanted = {name: _header(headers, name) for name in ("webhook-id", "webhook-timestamp", "webhook-signature")}
        last: Exception | None = None
        for key in self._keys:
            try:
                return key.verify(body, wanted)
            except WebhookVerificationError as error:
                last = error
        raise DeliveryRejected(f"delivery rejected: {last or 'invalid signature'}")

    def fastapi(self) -> Any:
        """A FastAPI dependency giving the verified body, answering 401 otherwise:

        ``async def report(body = Depends(verifier.fastapi()))``"""
        from fastapi import HTTPException, Request

        async def verified(request: Request) -> Any:
            try:
                return self.verify(await request.body(), request.headers)
            except DeliveryRejected as error:
                raise HTTPException(status_code=401, detail=str(error)) from error

        return verified


def _header(headers: Mapping[str, str], name: str) -> str:
    value = headers.get(name)
    if value is None:
        value = next((v for k, v in headers.items() if k.lower() == name), "")
    return value or ""
