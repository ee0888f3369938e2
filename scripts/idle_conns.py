#!/usr/bin/env python3
"""Open N idle TCP connections to 127.0.0.1:PORT and hold them.

    idle_conns.py PORT N HOLD_SECS READY_FILE

Used by scripts/compare.sh for the memory rows: the server's RSS is read while these
connections are open. Nothing is ever sent: an idle connection is the cheapest state a
server can keep, so what it costs is the server's per-connection overhead and nothing else.

Connections are opened one after another with a blocking connect. The kernel completes the
handshake from the listen backlog whether or not the server has called accept yet, so this
runs far ahead of the server; compare.sh waits for the server's own descriptor count to know
when everything has been accepted. When the opening stops (all N open, or the first
failure, which is printed), READY_FILE is written with the number open; then the script
sleeps HOLD_SECS (bounded, so it cannot outlive the benchmark) and exits, closing
everything: 0 if all N opened, 1 if not.
"""

import socket
import sys
import time


def main() -> int:
    port, n, hold, ready = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
    socks = []
    for i in range(n):
        try:
            socks.append(socket.create_connection(("127.0.0.1", port), timeout=10))
        except OSError as e:
            # Say which limit we hit (EMFILE: our fd limit; ECONNREFUSED/timeout: the server).
            print(f"connection {i + 1} of {n} failed: {e}", file=sys.stderr)
            break
    print(f"{len(socks)} connections open", file=sys.stderr)
    with open(ready, "w") as f:
        f.write(f"{len(socks)}\n")
    time.sleep(hold)
    for s in socks:
        s.close()
    return 0 if len(socks) == n else 1


if __name__ == "__main__":
    sys.exit(main())
