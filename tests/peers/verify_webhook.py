"""Checks webhook signatures with the Standard Webhooks reference library.

Reads a JSON list of cases on stdin — {"secret", "id", "timestamp", "body",
"signature"}, and optionally "now" (seconds: the receiver's clock when
the delivery arrived, for services running on a test's fake clock) — and
prints one JSON list of booleans: whether the library
accepts each. Used by the HTTP suite (tests/api/webhooks.rs).
"""
import json
import sys
from datetime import datetime, timezone

import standardwebhooks.webhooks as library
from standardwebhooks.webhooks import Webhook, WebhookVerificationError


class _Clock(datetime):
    """`datetime` whose now() is the case's receiving time, if it has one."""

    at = None

    @classmethod
    def now(cls, tz=None):
        if cls.at is None:
            return datetime.now(tz)
        return datetime.fromtimestamp(cls.at, tz=timezone.utc)


library.datetime = _Clock


def accepts(case):
    headers = {
        "webhook-id": case["id"],
        "webhook-timestamp": str(case["timestamp"]),
        "webhook-signature": case["signature"],
    }
    _Clock.at = case.get("now")
    try:
        Webhook(case["secret"]).verify(case["body"], headers)
        return True
    except WebhookVerificationError:
        return False


print(json.dumps([accepts(case) for case in json.load(sys.stdin)]))
