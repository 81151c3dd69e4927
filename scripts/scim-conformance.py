#!/usr/bin/env python3
"""SCIM 2.0 conformance: the protocol suite scim2-tester (PyPI) against the
real `secureai serve` (debug build, embedded SQLite defaults, a fresh data
folder) with a service token that has the `scim` scope. Prints every
check that did not pass and the counts by status; exits non-zero when a
check ends in ERROR or CRITICAL.

Usage: scripts/scim-conformance.py BINARY
"""

import collections
import os
import pathlib
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from fuzz import free_port, request  # noqa: E402  (the same server set-up)
import second_factor  # noqa: E402


def main():
    binary = sys.argv[1]
    from httpx2 import Client
    from scim2_client.engines.httpx2 import SyncSCIMClient
    from scim2_tester import Status, check_server

    data = pathlib.Path(tempfile.mkdtemp(prefix="secureai-scim-"))
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = dict(os.environ)
    env.update({
        "SECUREAI_DATA_DIR": str(data),
        "SECUREAI_LISTEN": f"127.0.0.1:{port}",
        "SECUREAI_PUBLIC_URL": base,
        "SECUREAI_LOG": "warn",
    })
    server = subprocess.Popen([binary, "serve"], env=env, stdout=subprocess.PIPE, text=True)
    try:
        link = None
        deadline = time.time() + 60
        while time.time() < deadline and link is None:
            line = server.stdout.readline()
            if "/setup?token=" in line:
                link = line.strip()
        if link is None:
            sys.exit("scim: the server printed no setup link")
        password = "a long conformance passphrase"
        request("POST", f"{base}/setup", {
            "token": link.split("token=")[1], "email": "root@example.com", "name": "Root",
            "password": password, "password_confirm": password,
        }, form=True)
        admin = second_factor.enrol(request, base, request(
            "POST", f"{base}/api/v1/auth/login", {"email": "root@example.com", "password": password}))
        token = request("POST", f"{base}/api/v1/service-tokens",
                        {"name": "scim2-tester", "scopes": ["scim"]}, token=admin)["secret"]

        client = SyncSCIMClient(Client(base_url=f"{base}/scim/v2/",
                                       headers={"Authorization": f"Bearer {token}"}))
        results = check_server(client)
        counts = collections.Counter()
        bad = False
        for result in results:
            status = result.status
            counts[status.name] += 1
            if status not in (Status.SUCCESS, Status.COMPLIANT):
                print(f"{status.name}: {result.title}: {result.reason}")
                for key in ("data",):
                    if getattr(result, key, None):
                        print(f"    {key}: {str(getattr(result, key))[:400]}")
            if status in (Status.ERROR, Status.CRITICAL):
                bad = True
        summary = ", ".join(f"{n} {name}" for name, n in sorted(counts.items()))
        print(f"\nscim2-tester: {sum(counts.values())} checks: {summary}")
        return 1 if bad else 0
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    sys.exit(main())
