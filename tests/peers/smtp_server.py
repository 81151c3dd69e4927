"""A real SMTP server for the test suite (aiosmtpd), one per test.

Stores every accepted message as an .eml file in --maildir and answers
`250 2.0.0 Ok: queued as <id>`. Security: `none`, `starttls` (the
connection must be upgraded before MAIL) or `tls` (implicit TLS). With
--user/--password, AUTH PLAIN/LOGIN is required and checked. TLS uses a
throw-away CA from `trustme`, whose certificate is written to --ca-out so the
client can trust it. Prints READY once listening; stops on SIGTERM.
"""

import argparse
import asyncio
import os
import signal
import ssl
import sys
import uuid

import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


class Store:
    def __init__(self, maildir):
        self.maildir = maildir

    async def handle_DATA(self, server, session, envelope):
        queue_id = uuid.uuid4().hex[:12].upper()
        path = os.path.join(self.maildir, f"{queue_id}.eml")
        with open(path + ".part", "wb") as f:
            f.write(envelope.original_content or envelope.content)
        os.rename(path + ".part", path)
        return f"250 2.0.0 Ok: queued as {queue_id}"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--security", choices=["none", "starttls", "tls"], default="none")
    parser.add_argument("--maildir", required=True)
    parser.add_argument("--ca-out")
    parser.add_argument("--user")
    parser.add_argument("--password")
    args = parser.parse_args()
    os.makedirs(args.maildir, exist_ok=True)

    server_ctx = None
    if args.security != "none":
        ca = trustme.CA()
        cert = ca.issue_cert("localhost", "127.0.0.1")
        server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        cert.configure_cert(server_ctx)
        if args.ca_out:
            ca.cert_pem.write_to_path(args.ca_out)

    def authenticator(server, session, envelope, mechanism, auth_data):
        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login.decode() == args.user
            and auth_data.password.decode() == args.password
        )
        return AuthResult(success=ok, handled=False)

    server_kwargs = {}
    if args.user:
        server_kwargs.update(
            authenticator=authenticator,
            auth_required=True,
            # Implicit TLS is TLS from the first byte, which aiosmtpd does not
            # count as "TLS" for AUTH; STARTTLS must come before AUTH.
            auth_require_tls=args.security == "starttls",
        )
    if args.security == "starttls":
        server_kwargs.update(tls_context=server_ctx, require_starttls=True)

    controller = Controller(
        Store(args.maildir),
        hostname="127.0.0.1",
        port=args.port,
        ssl_context=server_ctx if args.security == "tls" else None,
        server_hostname="localhost",
        server_kwargs=server_kwargs,
    )
    controller.start()
    print("READY", flush=True)

    stop = asyncio.Event()
    loop = asyncio.new_event_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    loop.run_until_complete(stop.wait())
    controller.stop()


if __name__ == "__main__":
    sys.exit(main())
