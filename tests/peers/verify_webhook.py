"""Checks webhook signatures with the Standard Webhooks reference library.

Reads a JSON list of cases on stdin — {"secret", "id", "timestamp", "body",
"signature"} — and prints one JSON list of booleans: whether the library
accepts each. Used by the HTTP suite (tests/api/webhooks.rs).
"""
import json
import sys

from standardwebhooks.webhooks import Webhook, WebhookVerificationError


def accepts(case):
    headers = {
        "webhook-id": case["id"],
        "webhook-timestamp": str(case["timestamp"]),
        "webhook-signature": case["signature"],
    }
    try:
        Webhook(case["secret"]).verify(case["body"], headers)
        return True
    except WebhookVerificationError:
        return False


print(json.dumps([accepts(case) for case in json.load(sys.stdin)]))
