#!/usr/bin/env python3
"""A deliberately broken ssh-agent, to check that the e2e checks can fail.

    MUTANT=NAME tests/e2e/ssh_add.sh tests/e2e/selftest/mutant_agent.py

It takes the e2e agent command line (`-D [-d] -a SOCKET`), runs the real
/usr/bin/ssh-agent on a private socket and relays every request/reply pair,
breaking one behaviour chosen by $MUTANT:

  none               relay only (the suite must pass)
  lock_noop          LOCK/UNLOCK answer SUCCESS and do nothing
  remove_noop        REMOVE_IDENTITY answers SUCCESS and does nothing
  rsa_sha1           SIGN_REQUEST flags forced to 0 (RSA signs as ssh-rsa)
  strip_constraints  ADD_ID_CONSTRAINED becomes ADD_IDENTITY (no -t, no -c)
  reverse_list       IDENTITIES_ANSWER in reverse order
  drop_last_key      IDENTITIES_ANSWER without its last key
  close_on_ext_fail  close the connection after a failed extension, as the
                     Windows port does (the seed defect; OpenSSH's own tools
                     never reuse such a connection, so the suite passes)
  trace              relay only, and log every request to $TRACE_FILE
                     (type, key type, sign flags, session-bind
                     is_forwarding, constraint bytes)

Expected with OpenSSH 9.2: every mutant except none, trace and
close_on_ext_fail makes at least one test fail.
"""
import os
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

MUT = os.environ.get("MUTANT", "none")
TRACE = os.environ.get("TRACE_FILE", "/dev/stderr")
SUCCESS = b"\x06"

# Number of SSH strings/mpints after the key type in an ADD_IDENTITY body,
# before the comment (PROTOCOL.agent / sshkey_private_serialize).
NFIELDS = {
    b"ssh-ed25519": 2,
    b"ssh-rsa": 6,
    b"ecdsa-sha2-nistp256": 3,
    b"ecdsa-sha2-nistp384": 3,
    b"ecdsa-sha2-nistp521": 3,
    b"ssh-ed25519-cert-v01@openssh.com": 3,
}


def recv_exact(s, n):
    b = b""
    while len(b) < n:
        c = s.recv(n - len(b))
        if not c:
            return None
        b += c
    return b


def recv_frame(s):
    h = recv_exact(s, 4)
    if h is None:
        return None
    (n,) = struct.unpack(">I", h)
    return recv_exact(s, n)


def frame(b):
    return struct.pack(">I", len(b)) + b


def get_str(b, o):
    (n,) = struct.unpack(">I", b[o:o + 4])
    return b[o + 4:o + 4 + n], o + 4 + n


def key_end(body):
    """Offset just past the comment of an ADD_IDENTITY body (type byte off)."""
    t, o = get_str(body, 0)
    for _ in range(NFIELDS[t]):
        _, o = get_str(body, o)
    _, o = get_str(body, o)  # comment
    return t, o


def describe(req):
    t = req[0]
    info = ""
    try:
        if t == 13:
            k, o = get_str(req, 1)
            kt, _ = get_str(k, 0)
            d, o = get_str(req, o)
            (fl,) = struct.unpack(">I", req[o:o + 4])
            info = f"key={kt.decode()} datalen={len(d)} flags={fl}"
        elif t == 27:
            n, o = get_str(req, 1)
            info = f"ext={n.decode()}"
            if n == b"session-bind@openssh.com":
                _, o = get_str(req, o)
                sid, o = get_str(req, o)
                _, o = get_str(req, o)
                info += f" sidlen={len(sid)} is_forwarding={req[o]}"
        elif t in (17, 25):
            kt, o = key_end(req[1:])
            info = f"key={kt.decode()} constraints={req[1 + o:].hex()}"
        elif t == 18:
            k, _ = get_str(req, 1)
            kt, _ = get_str(k, 0)
            info = f"key={kt.decode()}"
    except Exception as e:  # a trace must never break the relay
        info = f"(unparsed: {e})"
    return f"type={t} {info}".rstrip()


def handle(c, inner_path, conn_id):
    u = socket.socket(socket.AF_UNIX)
    u.connect(inner_path)
    try:
        while True:
            req = recv_frame(c)
            if not req:
                return
            t = req[0]
            if MUT == "trace":
                with open(TRACE, "a") as f:
                    f.write(f"conn={conn_id} {describe(req)}\n")
            if MUT == "lock_noop" and t in (22, 23):
                c.sendall(frame(SUCCESS))
                continue
            if MUT == "remove_noop" and t == 18:
                c.sendall(frame(SUCCESS))
                continue
            if MUT == "rsa_sha1" and t == 13:
                req = req[:-4] + b"\0\0\0\0"
            if MUT == "strip_constraints" and t == 25:
                _, o = key_end(req[1:])
                req = bytes([17]) + req[1:1 + o]
            u.sendall(frame(req))
            rep = recv_frame(u)
            if rep is None:
                return
            if MUT == "close_on_ext_fail" and t == 27 and rep[:1] != SUCCESS:
                return
            if MUT in ("reverse_list", "drop_last_key") and t == 11 and rep[0] == 12:
                (n,) = struct.unpack(">I", rep[1:5])
                o = 5
                items = []
                for _ in range(n):
                    start = o
                    _, o = get_str(rep, o)
                    _, o = get_str(rep, o)
                    items.append(rep[start:o])
                if MUT == "reverse_list":
                    items.reverse()
                elif items:
                    items.pop()
                rep = bytes([12]) + struct.pack(">I", len(items)) + b"".join(items)
            c.sendall(frame(rep))
    finally:
        c.close()
        u.close()


def main():
    args = sys.argv[1:]
    sock = args[args.index("-a") + 1]
    d = tempfile.mkdtemp(prefix="mutant-agent.")
    inner = os.path.join(d, "inner.sock")
    p = subprocess.Popen(["/usr/bin/ssh-agent", "-D", "-a", inner],
                         stdout=subprocess.DEVNULL)
    for _ in range(100):
        if os.path.exists(inner):
            break
        time.sleep(0.05)

    def bye(*_):
        p.terminate()
        p.wait()
        for f in (inner, sock):
            try:
                os.unlink(f)
            except OSError:
                pass
        os.rmdir(d)
        os._exit(0)

    signal.signal(signal.SIGTERM, bye)
    signal.signal(signal.SIGINT, bye)
    ls = socket.socket(socket.AF_UNIX)
    ls.bind(sock)
    ls.listen(16)
    print(f"mutant agent ({MUT}) on {sock}", file=sys.stderr, flush=True)
    n = 0
    while True:
        c, _ = ls.accept()
        n += 1
        threading.Thread(target=handle, args=(c, inner, n), daemon=True).start()


main()
