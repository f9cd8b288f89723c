#!/usr/bin/env python3
"""A mail server for the end-to-end tests (aiosmtpd from PyPI).

Listens on 127.0.0.1:<port>, offers STARTTLS with the given certificate and refuses
mail before it (require_starttls), takes AUTH PLAIN/LOGIN for one user only after TLS,
and writes each message it accepts into --out as <n>.eml (as received) and <n>.json:
the envelope, whether TLS and which user were in force, the headers the tests check,
and each attachment saved beside it. Prints READY when it listens; ends after
--lifetime seconds or when stdin closes.
"""

import argparse
import email
import email.policy
import json
import os
import ssl
import sys
import threading

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


class Sink:
    def __init__(self, out, user, password):
        self.out = out
        self.user = user.encode()
        self.password = password.encode()
        self.n = 0

    def authenticate(self, server, session, envelope, mechanism, auth_data):
        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login == self.user
            and auth_data.password == self.password
        )
        if ok:
            session.pbx_user = auth_data.login.decode()
        return AuthResult(success=ok)

    async def handle_DATA(self, server, session, envelope):
        self.n += 1
        base = os.path.join(self.out, f"{self.n:03}")
        raw = envelope.original_content or envelope.content
        with open(base + ".eml", "wb") as f:
            f.write(raw)
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        attachments = []
        for i, part in enumerate(msg.iter_attachments()):
            name = os.path.basename(part.get_filename() or f"part{i}")
            path = f"{base}-{name}"
            with open(path, "wb") as f:
                f.write(part.get_payload(decode=True) or b"")
            attachments.append(
                {"filename": name, "content_type": part.get_content_type(), "path": path}
            )
        body = msg.get_body(preferencelist=("plain",))
        info = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "tls": session.ssl is not None,
            "auth_user": getattr(session, "pbx_user", None) if session.authenticated else None,
            "from": str(msg["From"]),
            "to": str(msg["To"]),
            "subject": str(msg["Subject"]),
            "date": str(msg["Date"]),
            "text": body.get_content() if body is not None else "",
            "attachments": attachments,
        }
        # The JSON last: a test that sees it finds everything else in place.
        tmp = base + ".json.part"
        with open(tmp, "w") as f:
            json.dump(info, f)
        os.rename(tmp, base + ".json")
        return "250 OK"


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--cert", required=True)
    p.add_argument("--key", required=True)
    p.add_argument("--user", required=True)
    p.add_argument("--password", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--lifetime", type=float, default=300)
    a = p.parse_args()
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(a.cert, a.key)
    sink = Sink(a.out, a.user, a.password)
    c = Controller(
        sink,
        hostname="127.0.0.1",
        port=a.port,
        tls_context=ctx,
        require_starttls=True,
        authenticator=sink.authenticate,
        auth_required=True,
        auth_require_tls=True,
        data_size_limit=16 << 20,
    )
    c.start()
    print("READY", flush=True)
    done = threading.Event()

    def stdin_closed():
        sys.stdin.read()
        done.set()

    threading.Thread(target=stdin_closed, daemon=True).start()
    done.wait(a.lifetime)
    c.stop()


if __name__ == "__main__":
    main()
