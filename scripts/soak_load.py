#!/usr/bin/env python3
"""The soak's own load for what wrk and redis-benchmark do not cover: echo with verification,
chat members, UDP echo, and slowloris. Standard library only; every mode is bounded by
--secs and talks only to the address it is given.

    soak_load.py echo      ADDR --secs N [--conns 20]   ping-pong, every byte checked
    soak_load.py chat      ADDR --secs N [--conns 20]   members talking and listening
    soak_load.py udp       ADDR --secs N                datagrams of 0..65,507 bytes
    soak_load.py slowloris ADDR --secs N [--conns 1000] HTTP heads dribbled 1 byte/second

Prints one summary line; exits 1 if an echo came back wrong or a mode could not run at all.
"""

import argparse
import random
import resource
import selectors
import socket
import sys
import threading
import time


def addr(text):
    host, port = text.rsplit(":", 1)
    return host, int(port)


def raise_fd_limit():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def recv_exact(sock, n):
    chunks = []
    while n > 0:
        chunk = sock.recv(min(n, 65536))
        if not chunk:
            raise ConnectionError("closed by the server")
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


def echo(target, secs, conns):
    """Each connection sends random-sized messages and checks each echo byte for byte."""
    deadline = time.monotonic() + secs
    counts = {"messages": 0, "bytes": 0, "wrong": 0, "errors": 0}
    lock = threading.Lock()

    def client(seed):
        rng = random.Random(seed)
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(target, timeout=10) as s:
                    # Reconnect now and then, so accept and close are soaked too.
                    for _ in range(rng.randint(10, 200)):
                        if time.monotonic() >= deadline:
                            break
                        msg = rng.randbytes(rng.randint(1, 32 * 1024))
                        s.sendall(msg)
                        back = recv_exact(s, len(msg))
                        with lock:
                            counts["messages"] += 1
                            counts["bytes"] += len(msg)
                            if back != msg:
                                counts["wrong"] += 1
                        time.sleep(rng.random() * 0.01)
            except OSError:
                with lock:
                    counts["errors"] += 1
                time.sleep(0.1)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(conns)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print(f"echo: {counts['messages']} messages, {counts['bytes']} bytes, "
          f"{counts['wrong']} wrong, {counts['errors']} connection errors")
    return counts["wrong"] == 0 and counts["messages"] > 0


def chat(target, secs, conns):
    """Members say a line every ~100 ms and read everything the room sends them."""
    deadline = time.monotonic() + secs
    sel = selectors.DefaultSelector()
    members = []
    for _ in range(conns):
        s = socket.create_connection(target, timeout=10)
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ)
        members.append(s)
    said = heard = 0
    rng = random.Random(1)
    next_line = time.monotonic()
    while time.monotonic() < deadline:
        if time.monotonic() >= next_line:
            s = rng.choice(members)
            try:
                s.send(f"line {said} from a soak member\n".encode())
                said += 1
            except BlockingIOError:
                pass
            next_line += 0.1 / max(1, conns // 10)
        for key, _ in sel.select(timeout=0.01):
            try:
                data = key.fileobj.recv(65536)
            except BlockingIOError:
                continue
            if not data:
                sel.unregister(key.fileobj)
                members.remove(key.fileobj)
                if not members:
                    print("chat: every member was disconnected")
                    return False
                continue
            heard += data.count(b"\n")
    for s in members:
        s.close()
    print(f"chat: {conns} members said {said} lines, heard {heard} lines")
    return said > 0


def udp(target, secs):
    """One datagram at a time, sizes from 0 to the IPv4 maximum, each reply checked."""
    deadline = time.monotonic() + secs
    rng = random.Random(2)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(1.0)
    s.connect(target)
    sent = ok = lost = wrong = 0
    while time.monotonic() < deadline:
        size = rng.choice([0, 1, 512, 1472, 9000, 65507])
        msg = rng.randbytes(size)
        s.send(msg)
        sent += 1
        try:
            back = s.recv(65536)
            if back == msg:
                ok += 1
            else:
                wrong += 1
        except socket.timeout:
            lost += 1
        time.sleep(0.005)
    print(f"udp: {sent} datagrams, {ok} echoed, {lost} lost (UDP may drop), {wrong} wrong")
    return wrong == 0 and ok > 0


def slowloris(target, secs, conns):
    """`conns` connections each send one byte of an endless HTTP head per second. The server
    answers 408 after its head timeout and closes; the dribbler then reconnects, so about
    `conns` are always open."""
    raise_fd_limit()
    deadline = time.monotonic() + secs
    socks = {}
    opened = closed_by_server = 0

    def open_one(i):
        nonlocal opened
        try:
            s = socket.create_connection(target, timeout=5)
            s.setblocking(False)
            s.send(b"GET / HTTP/1.1\r\nHost: soak\r\nX-Slow: ")
            socks[i] = s
            opened += 1
        except OSError:
            socks.pop(i, None)

    for i in range(conns):
        open_one(i)
    while time.monotonic() < deadline:
        tick = time.monotonic()
        for i in range(conns):
            s = socks.get(i)
            if s is None:
                open_one(i)
                continue
            try:
                s.send(b"a")
                try:
                    if s.recv(4096) == b"":
                        raise ConnectionError
                except BlockingIOError:
                    pass
            except OSError:
                # A 408 and FIN, or a reset once the server stopped lingering.
                closed_by_server += 1
                s.close()
                open_one(i)
        time.sleep(max(0.0, 1.0 - (time.monotonic() - tick)))
    for s in socks.values():
        s.close()
    print(f"slowloris: {conns} dribblers, {opened} connections opened, "
          f"{closed_by_server} cut off by the server")
    return opened > 0


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("mode", choices=["echo", "chat", "udp", "slowloris"])
    p.add_argument("addr", type=addr)
    p.add_argument("--secs", type=float, required=True)
    p.add_argument("--conns", type=int)
    a = p.parse_args()
    if a.addr[0] not in ("127.0.0.1", "localhost"):
        sys.exit("soak_load.py only talks to 127.0.0.1")
    if a.mode == "echo":
        ok = echo(a.addr, a.secs, a.conns or 20)
    elif a.mode == "chat":
        ok = chat(a.addr, a.secs, a.conns or 20)
    elif a.mode == "udp":
        ok = udp(a.addr, a.secs)
    else:
        ok = slowloris(a.addr, a.secs, a.conns or 1000)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
