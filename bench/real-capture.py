#!/usr/bin/env python3
"""Clients of bench/real-capture.sh that the standard tools cannot be: run
inside the lab's conn namespace only (every address is a lab address).

  real-capture.py abort   N   TLS handshake to a broker address, then a reset
                              from the client (SO_LINGER 0), half of them after
                              part of a request
  real-capture.py refused N   SYN to 198.18.4.6:443, refused by the broker's
                              kernel (nothing listens behind that address)
  real-capture.py forged  N   TLS with SNI forged.lab1.test from source ports
                              40000+: r2 answers the ClientHello with a reset
  real-capture.py synrej  N   SYN to the broker's port 7443: r2 answers it
                              with a reset
  real-capture.py holder      (broker) listens on 5443 and never accepts

Prints one JSON line of counts.
"""
import json
import socket
import ssl
import struct
import sys
import threading
import time

EC, RSA, REFUSER = "198.18.4.2", "198.18.4.3", "198.18.4.6"
LINGER0 = struct.pack("ii", 1, 0)


def ctx(version):
    c = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    c.check_hostname = False
    c.verify_mode = ssl.CERT_NONE
    c.minimum_version = version
    c.maximum_version = version
    return c


VERSIONS = [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3]


def run_threads(n, fn, par=8):
    counts = {}
    lock = threading.Lock()
    idx = iter(range(n))

    def worker():
        while True:
            with lock:
                i = next(idx, None)
            if i is None:
                return
            try:
                r = fn(i)
            except OSError as e:
                r = type(e).__name__
            with lock:
                counts[r] = counts.get(r, 0) + 1

    ts = [threading.Thread(target=worker) for _ in range(par)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return counts


def abort(i):
    addr = EC if i % 2 == 0 else RSA
    s = socket.create_connection((addr, 443), timeout=5)
    t = ctx(VERSIONS[(i // 2) % 2]).wrap_socket(s, server_hostname="broker1a.lab1.test")
    if i % 4 >= 2:
        t.sendall(b"GET / HTTP/1.0\r\nHost: broker1a.lab1.te")
        time.sleep(0.01)
    t.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER0)
    t.close()
    return "client-reset"


def syn_refused(addr, label):
    """A SYN to addr; label when a reset refuses it (counted by the caller)."""
    s = socket.socket()
    s.settimeout(3)
    try:
        s.connect(addr)
        return "connected?"
    except ConnectionRefusedError:
        return label
    finally:
        s.close()


def refused(i):
    return syn_refused((REFUSER, 443), "refused")


def forged(i):
    s = socket.socket()
    s.settimeout(3)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", 20000 + i))
    s.connect((EC if i % 2 == 0 else RSA, 443))
    try:
        ctx(VERSIONS[(i // 2) % 2]).wrap_socket(s, server_hostname="forged.lab1.test")
        return "handshake?"
    except (ConnectionResetError, ssl.SSLError):
        return "reset"
    finally:
        s.close()


def synrej(i):
    return syn_refused(("198.18.4.2", 7443), "reset")


def holder():
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", 5443))
    s.listen(4096)
    while True:
        time.sleep(3600)


def main():
    mode = sys.argv[1]
    if mode == "holder":
        holder()
        return
    n = int(sys.argv[2])
    fn = {"abort": abort, "refused": refused, "forged": forged, "synrej": synrej}[mode]
    print(json.dumps({mode: run_threads(n, fn, par=1 if mode == "forged" else 8)}))


if __name__ == "__main__":
    main()
