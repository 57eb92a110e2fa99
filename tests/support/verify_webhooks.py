"""Checks Switchyard's webhook deliveries with the official Standard Webhooks library for
Python (PyPI `standardwebhooks`), an implementation independent of the code under test.

Reads JSON from stdin: {"cases": [{"secret": "whsec_...", "headers": {...}, "body": "..."}]}
and prints one line of JSON: {"vector": true|false, "verified": [true|false, ...]}.
`vector` says whether the library reproduces the signature published with the
specification's reference libraries, so a broken verifier cannot pass a broken signer.
"""

import json
import sys
from datetime import datetime, timezone

from standardwebhooks.webhooks import Webhook, WebhookVerificationError


def published_vector() -> bool:
    hook = Webhook("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
    signed = hook.sign(
        "msg_p5jXN8AQM9LWM0D4loKWxJek",
        datetime.fromtimestamp(1614265330, tz=timezone.utc),
        '{"test": 2432232314}',
    )
    return signed == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def verifies(case: dict) -> bool:
    try:
        Webhook(case["secret"]).verify(case["body"].encode(), case["headers"])
        return True
    except WebhookVerificationError:
        return False


def main() -> None:
    request = json.load(sys.stdin)
    print(json.dumps({
        "vector": published_vector(),
        "verified": [verifies(case) for case in request["cases"]],
    }))


if __name__ == "__main__":
    main()
