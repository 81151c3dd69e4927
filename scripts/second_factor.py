"""The first admin's second factor, for the scripts that sign in as them:
admins need one by default, and their first sign-in can only set one up.
Codes are computed as an authenticator app does (RFC 6238: SHA-1, six
digits, 30 s), with the standard library only.
"""

import base64
import hashlib
import hmac
import struct
import time


def totp(secret, at=None):
    """The six-digit code for a base32 `secret` at Unix time `at` (now)."""
    key = base64.b32decode(secret + "=" * (-len(secret) % 8))
    step = int((time.time() if at is None else at) // 30)
    digest = hmac.new(key, struct.pack(">Q", step), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    number = struct.unpack(">I", digest[offset:offset + 4])[0] & 0x7FFFFFFF
    return f"{number % 1_000_000:06d}"


def enrol(request, base, login):
    """Sets up an authenticator app for the session of `login` (the answer
    of POST /api/v1/auth/login) if it can only do that; its token."""
    token = login["token"]
    if login.get("mfa_enrolment_required"):
        secret = request("POST", f"{base}/api/v1/me/mfa/totp", {}, token=token)["secret"]
        request("POST", f"{base}/api/v1/me/mfa/totp/confirm", {"code": totp(secret)}, token=token)
    return token


if __name__ == "__main__":
    # RFC 6238 appendix B, SHA-1 (eight digits there; the last six here).
    secret = base64.b32encode(b"12345678901234567890").decode()
    assert totp(secret, 59) == "287082", totp(secret, 59)
    assert totp(secret, 1111111109) == "081804"
    print("ok")
