#!/usr/bin/env python3
"""The API contract under fuzzing: schemathesis (PyPI) against the real
`secureai serve` (debug build, embedded SQLite defaults, a fresh data
folder), every check, a fixed seed, once with an admin's token and once
with a user's. Exits non-zero on any failure; prints the case counts.

Usage: scripts/fuzz.py BINARY [--max-examples N] [--seed S]
"""

import argparse
import json
import os
import pathlib
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request

import second_factor


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def request(method, url, body=None, token=None, form=False):
    data = None
    headers = {}
    if body is not None:
        if form:
            data = urllib.parse.urlencode(body).encode()
            headers["content-type"] = "application/x-www-form-urlencoded"
        else:
            data = json.dumps(body).encode()
            headers["content-type"] = "application/json"
    if token:
        headers["authorization"] = f"Bearer {token}"
    req = urllib.request.Request(url, data=data, headers=headers, method=method)
    with urllib.request.urlopen(req, timeout=30) as answer:
        text = answer.read().decode()
        return json.loads(text) if answer.headers.get_content_type() == "application/json" else text


def wait_for_mail(folder, email, needle, seconds=30):
    deadline = time.time() + seconds
    while time.time() < deadline:
        for path in pathlib.Path(folder).glob("*.eml"):
            text = path.read_text(errors="replace").replace("=\n", "").replace("=3D", "=")
            if email in text:
                match = re.search(re.escape(needle) + r"([A-Za-z0-9_-]{43})", text)
                if match:
                    return match.group(1)
        time.sleep(0.1)
    sys.exit(f"fuzz: no mail to {email} arrived")


def run(location, token, seed, examples, label, report_dir):
    command = [
        "schemathesis", "run", location,
        "--checks", "all",
        "--seed", str(seed),
        "--max-examples", str(examples),
        "--header", f"Authorization: Bearer {token}",
        "--workers", "1",
        "--request-timeout", "20",
        "--report", "json",
        "--report-json-path", str(report_dir / f"{label}.json"),
        "--suppress-health-check", "all",
        "--warnings", "off",
    ]
    print(f"\n== schemathesis as {label}: seed {seed}, {examples} examples per operation", flush=True)
    # Its cache (replayed crashes) stays out of the repository: run in the data folder.
    done = subprocess.run(command, check=False, capture_output=True, text=True, cwd=report_dir)
    sys.stdout.write(done.stdout)
    sys.stderr.write(done.stderr)
    generated = re.findall(r"(\d+) generated", done.stdout)
    return done.returncode, int(generated[-1]) if generated else 0


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("binary")
    parser.add_argument("--max-examples", type=int, default=20)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()

    data = pathlib.Path(tempfile.mkdtemp(prefix="secureai-fuzz-"))
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = dict(os.environ)
    env.update({
        "SECUREAI_DATA_DIR": str(data),
        "SECUREAI_LISTEN": f"127.0.0.1:{port}",
        "SECUREAI_MAIL__POLL_INTERVAL_MS": "100",
        "SECUREAI_LOG": "warn",
    })
    server = subprocess.Popen([args.binary, "serve"], env=env, stdout=subprocess.PIPE, text=True)
    try:
        link = None
        deadline = time.time() + 60
        while time.time() < deadline and link is None:
            line = server.stdout.readline()
            if "/setup?token=" in line:
                link = line.strip()
        if link is None:
            sys.exit("fuzz: the server printed no setup link")
        token = link.split("token=")[1]
        password = "a long fuzzing passphrase"
        request("POST", f"{base}/setup", {
            "token": token, "email": "root@example.com", "name": "Root",
            "password": password, "password_confirm": password,
        }, form=True)
        admin = second_factor.enrol(request, base, request(
            "POST", f"{base}/api/v1/auth/login", {"email": "root@example.com", "password": password}))
        request("POST", f"{base}/api/v1/users",
                {"email": "user@example.com", "name": "User", "role": "user"}, token=admin)
        invitation = wait_for_mail(data / "mail", "user@example.com", "token=")
        request("POST", f"{base}/api/v1/invitations/accept",
                {"token": invitation, "password": password})
        user = request("POST", f"{base}/api/v1/auth/login",
                       {"email": "user@example.com", "password": password})["token"]

        reports = data / "reports"
        reports.mkdir()
        failed, cases = 0, 0
        for label, bearer in [("user", user), ("admin", admin)]:
            code, generated = run(f"{base}/api/openapi.json", bearer, args.seed, args.max_examples, label, reports)
            failed += code
            cases += generated
            print(f"schemathesis as {label}: {generated} cases, exit code {code}")
        print(f"\nschemathesis: {cases} cases in all (user and admin); {'FAILED' if failed else 'no failures'}")
        return 1 if failed else 0
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    sys.exit(main())
