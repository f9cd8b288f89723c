#!/usr/bin/env python3
"""A configuration change with 10,000 extensions, while calls run (issue 22.6).

Usage: config_change.py DATA_DIR SIP_ADDR:PORT CHANGES

Against a running pbxd: each change adds an extension with its SIP account over the
control socket (DATA_DIR/control.sock, as pbxctl does), then a phone registers with the
new account over UDP until the box accepts it. Two figures per change: "committed" (the
control socket's answer: the change checked, stored and published) and "in force" (the
first REGISTER the new account gets 200 for, so the exchange's own copy has it). The
change is then undone (the extension removed) so the configuration stays the size it
was. Prints the median and the largest of each, in milliseconds.
"""
import hashlib
import json
import os
import random
import re
import socket
import statistics
import sys
import time


def control(sock_path, req):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(30)
    s.connect(sock_path)
    s.sendall((json.dumps(req) + "\n").encode())
    answer = b""
    while not answer.endswith(b"\n"):
        chunk = s.recv(65536)
        if not chunk:
            break
        answer += chunk
    s.close()
    if not answer:
        return {"ok": False, "errors": ["pbxd closed the control socket without an answer"]}
    return json.loads(answer)


def md5(s):
    return hashlib.md5(s.encode()).hexdigest()


def register(sock, server, user, password, deadline):
    """REGISTERs until 200 (answers True) or the deadline (False). A 401's MD5
    challenge is answered with qop=auth; a 403/404 (the account not known yet) or no
    answer is tried again."""
    host, port = server
    local = sock.getsockname()
    call_id = "%016x@bench" % random.getrandbits(64)
    cseq = 0
    auth = ""
    while time.monotonic() < deadline:
        cseq += 1
        msg = (
            f"REGISTER sip:{host}:{port} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP {local[0]}:{local[1]};branch=z9hG4bK{random.getrandbits(48):x};rport\r\n"
            f"From: <sip:{user}@{host}:{port}>;tag={random.getrandbits(32):x}\r\n"
            f"To: <sip:{user}@{host}:{port}>\r\n"
            f"Call-ID: {call_id}\r\nCSeq: {cseq} REGISTER\r\n"
            f"Contact: <sip:{user}@{local[0]}:{local[1]}>\r\nMax-Forwards: 70\r\nExpires: 60\r\n"
            f"{auth}Content-Length: 0\r\n\r\n"
        )
        sock.sendto(msg.encode(), server)
        try:
            data, _ = sock.recvfrom(65536)
        except socket.timeout:
            continue
        text = data.decode(errors="replace")
        if not text.startswith("SIP/2.0 "):
            continue  # a request to the phone (OPTIONS, NOTIFY): not our answer
        try:
            status = int(text.split(" ", 2)[1])
        except (IndexError, ValueError):
            continue
        if status == 200:
            return True
        challenges = re.findall(r"(?im)^WWW-Authenticate:\s*Digest\s+(.*)$", text)
        if status == 401 and challenges:
            # MD5 when offered (RFC 8760 lists SHA-256 first), else SHA-256.
            chal = next((c for c in challenges if "SHA-256" not in c.upper()), challenges[0])
            p = dict(re.findall(r'(\w+)="?([^",]*)"?', chal))
            algorithm = "SHA-256" if "SHA-256" in chal.upper() else "MD5"
            h = (lambda s: hashlib.sha256(s.encode()).hexdigest()) if algorithm == "SHA-256" else md5
            uri = f"sip:{host}:{port}"
            ha1 = h(f"{user}:{p['realm']}:{password}")
            ha2 = h(f"REGISTER:{uri}")
            cnonce = "%08x" % random.getrandbits(32)
            resp = h(f"{ha1}:{p['nonce']}:00000001:{cnonce}:auth:{ha2}")
            auth = (
                f'Authorization: Digest username="{user}", realm="{p["realm"]}", '
                f'nonce="{p["nonce"]}", uri="{uri}", response="{resp}", algorithm={algorithm}, '
                f'qop=auth, nc=00000001, cnonce="{cnonce}"'
                + (f', opaque="{p["opaque"]}"' if "opaque" in p else "")
                + "\r\n"
            )
        else:
            # Not known yet: the exchange has not taken the change; ask again shortly.
            auth = ""
            time.sleep(0.001)
    return False


def main():
    data_dir, addr, changes = sys.argv[1], sys.argv[2], int(sys.argv[3])
    host, port = addr.rsplit(":", 1)
    server = (host, int(port))
    ctl = os.path.join(data_dir, "control.sock")
    committed, in_force, failed = [], [], 0
    for i in range(changes):
        number, password = str(90000 + i), f"Bench-Change-{i}x"
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind((host, 0))
        sock.settimeout(0.5)
        t0 = time.monotonic()
        answer = control(ctl, {"cmd": "extension_add", "number": number, "password": password})
        t1 = time.monotonic()
        if not answer.get("ok"):
            print(f"  change {i}: refused: {answer}", file=sys.stderr)
            failed += 1
            continue
        ok = register(sock, server, number, password, t1 + 10)
        t2 = time.monotonic()
        sock.close()
        if ok:
            committed.append((t1 - t0) * 1000)
            in_force.append((t2 - t0) * 1000)
        else:
            failed += 1
        removed = control(ctl, {"cmd": "extension_remove", "number": number})
        if not removed.get("ok"):
            print(f"  change {i}: not undone: {removed}", file=sys.stderr)
        time.sleep(0.2)

    def fig(v):
        return f"median {statistics.median(v):6.1f} ms, largest {max(v):6.1f} ms" if v else "none"

    print(f"  committed (control answer):   {fig(committed)}")
    print(f"  in force (REGISTER accepted): {fig(in_force)}  ({len(in_force)} of {changes}, {failed} failed)")
    if in_force:
        print(f"  goal: in force in under 50 ms: {'met' if max(in_force) < 50 else 'NOT met'}")


if __name__ == "__main__":
    main()
