#!/usr/bin/env python3
"""The kv service against real Redis, reply for reply: random command sequences sent to two
servers, every reply compared byte for byte. Traffic goes to loopback only, a bounded number of
commands.

    redis-server --port 27999 --save '' --appendonly no &
    cargo run --release -- serve --kv 127.0.0.1:27998 &
    scripts/kv_diff.py float SEED OURS_PORT REDIS_PORT [CASES]    # e.g. float 1 27998 27999 5000
    scripts/kv_diff.py bits  SEED OURS_PORT REDIS_PORT [CASES]
    scripts/kv_diff.py bitfield SEED OURS_PORT REDIS_PORT [CASES]
    scripts/kv_diff.py lcs   SEED OURS_PORT REDIS_PORT [CASES]
    scripts/kv_diff.py shard SEED OURS_PORT REDIS_PORT [CASES]

float: chains of SET + 1-4 INCRBYFLOATs + GET. The inputs mix plain decimals (to 25 digits
  either side of the point), exponents up to +-4960 (past the long double's range both ways),
  small fractions, hexadecimal floats with binary exponents to the subnormal range, 64-bit
  integers and the special texts (inf, nan, '', ' 1', '1e', '1.19e4932', '3.6e-4951', ...).
bits: SETBIT, GETBIT, BITCOUNT, BITPOS (every argument form, negative and out-of-range
  offsets, BYTE/BIT and bad units, bad integers), BITOP of every kind, over four keys that SET
  and DEL also change (values of 0x00, 0xff and random bytes).
bitfield: BITFIELD and BITFIELD_RO with 1-5 operations each: GET, SET and INCRBY on signed and
  unsigned fields of every width (and bad ones), plain and #n offsets, values at and past each
  range's edges, OVERFLOW WRAP/SAT/FAIL (and a bad one), over keys that SET and DEL change.
lcs: LCS of random strings over alphabets of 2 to 26 letters (0 to 60 bytes, missing keys
  too) with LEN, IDX, MINMATCHLEN (negative, bad), WITHMATCHLEN and bad options, in RESP2 and
  (every other case) RESP3.
shard: three clients on each server take random steps of pub/sub, sharded and not: SSUBSCRIBE,
  SUNSUBSCRIBE (with and without channels), SPUBLISH, SUBSCRIBE, PSUBSCRIBE, their UN forms,
  PUBLISH, PUBSUB SHARDCHANNELS/SHARDNUMSUB/CHANNELS/NUMSUB/NUMPAT, GET and PING (RESP2's
  pub/sub mode), MULTI/EXEC around SSUBSCRIBE and SPUBLISH, RESET, HELLO 2/3, arity errors, and
  a client closed and reopened. After each step every client's output (replies, messages) is
  read and compared. Three orders Redis takes from its hash tables are sorted before
  comparing: the names an argument-less (S|P)UNSUBSCRIBE confirms (counts stay in place), the
  lists of (SHARD)CHANNELS, and one PUBLISH's pattern messages (in pattern order here). HELLO's
  reply (version, id) is not compared. KV_DIFF_TRANSCRIPT=FILE writes every step with both
  servers' raw output.

Exit status 1 if any reply differs; the first ten differences are printed. Both servers
should start empty (FLUSHALL both first).
"""
import os
import random
import socket
import sys


def enc(*args):
    out = b"*%d\r\n" % len(args)
    for a in args:
        if isinstance(a, int):
            a = str(a)
        if isinstance(a, str):
            a = a.encode()
        out += b"$%d\r\n%s\r\n" % (len(a), a)
    return out


def read_reply(f):
    line = f.readline()
    if line[:1] == b"$":
        n = int(line[1:])
        return line if n < 0 else line + f.read(n + 2)
    if line[:1] in (b"*", b"~", b">"):
        n = int(line[1:])
        return line + b"".join(read_reply(f) for _ in range(max(n, 0)))
    if line[:1] == b"%":
        n = int(line[1:])
        return line + b"".join(read_reply(f) for _ in range(2 * max(n, 0)))
    return line


class Client:
    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.file = self.sock.makefile("rb")

    def ask(self, *args):
        self.sock.sendall(enc(*args))
        return read_reply(self.file)


def rfloat(rnd):
    k = rnd.random()
    sign = rnd.choice(["", "", "-", "+"])
    if k < 0.3:
        ip = str(rnd.randint(0, 10 ** rnd.randint(0, 25)))
        fp = "".join(rnd.choice("0123456789") for _ in range(rnd.randint(0, 25)))
        return sign + ip + ("." + fp if fp or rnd.random() < 0.2 else "")
    if k < 0.55:
        m = str(rnd.randint(1, 10 ** rnd.randint(1, 22)))
        if rnd.random() < 0.5:
            m = m[:1] + "." + m[1:]
        e = str(rnd.randint(0, rnd.choice([5, 30, 400, 4940, 4960])))
        return sign + m + rnd.choice("eE") + rnd.choice(["", "-", "+"]) + e
    if k < 0.7:
        return sign + "0." + "0" * rnd.randint(0, 20) + str(rnd.randint(1, 999999))
    if k < 0.8:
        h = "".join(rnd.choice("0123456789abcdefABCDEF") for _ in range(rnd.randint(1, 20)))
        if rnd.random() < 0.5:
            p = rnd.randint(0, len(h))
            h = h[:p] + "." + h[p:]
        e = rnd.choice(["", "p" + str(rnd.randint(-100, 100)), "P-" + str(rnd.randint(0, 16500)),
                        "p+" + str(rnd.randint(0, 16400))])
        return sign + rnd.choice(["0x", "0X"]) + h + e
    if k < 0.9:
        return sign + str(rnd.randint(-10 ** 18, 10 ** 18))
    return rnd.choice(["inf", "-inf", "nan", "1e", "1e+", ".", "", "0x", "1.5.5", "  1", "1 ", "-0",
                       "0.0", "1e-4951", "3.6e-4951", "1.18e4932", "1.19e4932", "0.1", "0.2", "1e-18",
                       "5e-18", "0.5e-17"])


def float_cases(rnd):
    start = rfloat(rnd)
    yield ["SET", "k", start]
    for _ in range(rnd.randint(1, 4)):
        yield ["INCRBYFLOAT", "k", rfloat(rnd)]
    yield ["GET", "k"]


def bits_cases(rnd):
    keys = ["k1", "k2", "k3", "none"]
    rint = lambda: rnd.choice([0, 1, 2, 3, 7, 8, 9, 15, 16, -1, -2, -3, -7, -8, -9, -16, -17, 100, -100,
                               rnd.randint(-70, 70)])
    unit = lambda: rnd.choice([[], [], ["BIT"], ["BYTE"], ["bit"], ["bad"]])
    k, r = rnd.choice(keys), rnd.random()
    if r < 0.2:
        offset = rnd.choice([rnd.randint(0, 120), rnd.randint(0, 2000), -1, "x", "01", "1.0"])
        yield ["SETBIT", k, offset, rnd.choice(["0", "1", "1", "2", "-1", "x"])]
    elif r < 0.3:
        yield ["GETBIT", k, rnd.choice([rnd.randint(0, 150), -1, "x"])]
    elif r < 0.5:
        yield ["BITCOUNT", k] + rnd.choice([[], [rint()], [rint(), rint()], [rint(), rint()] + unit(),
                                            [rint(), "x"], [rint(), rint(), "BIT", "extra"]])
    elif r < 0.7:
        yield ["BITPOS", k, rnd.choice(["0", "1", "1", "0", "2", "x"])] + rnd.choice(
            [[], [rint()], [rint(), rint()], [rint(), rint()] + unit(), ["x"], [rint(), "x"]])
    elif r < 0.8:
        yield ["BITOP", rnd.choice(["AND", "or", "XOR", "NOT", "bad"]), rnd.choice(keys)] + [
            rnd.choice(keys) for _ in range(rnd.randint(1, 3))]
    elif r < 0.9:
        value = bytes(rnd.choice([0, 255, rnd.randint(0, 255)]) for _ in range(rnd.randint(0, 12)))
        yield ["SET", k, value]
    elif r < 0.95:
        yield ["GET", k]
    else:
        yield ["DEL", k]


def bitfield_cases(rnd):
    keys = ["f1", "f2", "none"]
    k, r = rnd.choice(keys), rnd.random()
    if r < 0.1:
        yield ["SET", k, bytes(rnd.randint(0, 255) for _ in range(rnd.randint(0, 10)))]
        return
    if r < 0.13:
        yield ["DEL", k]
        return
    command = [rnd.choice(["BITFIELD", "BITFIELD", "BITFIELD", "BITFIELD_RO", "bitfield"]), k]
    for _ in range(rnd.randint(0, 5)):
        width = rnd.choice([1, 2, 3, 7, 8, 9, 15, 16, 31, 32, 33, 62, 63, 64, rnd.randint(1, 64)])
        sign = rnd.choice(["i", "u"])
        ftype = rnd.choice([sign + str(width)] * 12 + ["u64", "i65", "i0", "x8", "I8", "u-1", "i"])
        offset = rnd.choice([str(rnd.randint(0, 100)), "#" + str(rnd.randint(0, 12)), str(rnd.randint(0, 20)),
                             "-1", "#-1", "#", "x"])
        lim = 1 << min(width, 63)
        value = rnd.choice([0, 1, -1, lim - 1, lim, -lim, lim // 2, -(lim // 2) - 1, lim // 2 - 1,
                            rnd.randint(-lim, lim), 2 ** 63 - 1, -(2 ** 63), "x"])
        op = rnd.random()
        if op < 0.35:
            command += ["GET", ftype, offset]
        elif op < 0.6:
            command += ["SET", ftype, offset, value]
        elif op < 0.85:
            command += ["INCRBY", ftype, offset, value]
        elif op < 0.97:
            command += ["OVERFLOW", rnd.choice(["WRAP", "SAT", "FAIL", "sat", "bad"])]
        else:
            command += [rnd.choice(["GET", "SET", "NOPE"])]
    yield command


def lcs_cases(rnd):
    letters = "abcdefghijklmnopqrstuvwxyz"[: rnd.choice([2, 3, 4, 26])]
    for key in ["s1", "s2"]:
        if rnd.random() < 0.1:
            yield ["DEL", key]
        else:
            yield ["SET", key, "".join(rnd.choice(letters) for _ in range(rnd.randint(0, 60)))]
    yield ["HELLO", rnd.choice(["2", "3"])]
    options = []
    for _ in range(rnd.randint(0, 3)):
        options += rnd.choice([["LEN"], ["IDX"], ["IDX"], ["WITHMATCHLEN"], ["MINMATCHLEN", rnd.randint(-1, 6)],
                               ["MINMATCHLEN", "x"], ["MINMATCHLEN"], ["BAD"]])
    yield ["LCS", rnd.choice(["s1", "s2", "none"]), rnd.choice(["s1", "s2", "none"])] + options


SHARD_CHANNELS = ["a", "b", "s1", "s2", ""]


def shard_cases(rnd):
    """Yields (client index, command) steps for the shard mode."""
    ch = lambda: rnd.choice(SHARD_CHANNELS)
    some = lambda lo, hi: [ch() for _ in range(rnd.randint(lo, hi))]
    who, r = rnd.randrange(3), rnd.random()
    if r < 0.16:
        yield who, ["SSUBSCRIBE"] + some(0 if rnd.random() < 0.05 else 1, 3)
    elif r < 0.26:
        yield who, ["SUNSUBSCRIBE"] + some(0, 2)
    elif r < 0.40:
        yield who, ["SPUBLISH", ch(), "m%d" % rnd.randint(0, 99)] + (["x"] if rnd.random() < 0.03 else [])
    elif r < 0.46:
        yield who, [rnd.choice(["SUBSCRIBE", "UNSUBSCRIBE"])] + some(0, 2)
    elif r < 0.50:
        yield who, [rnd.choice(["PSUBSCRIBE", "PUNSUBSCRIBE"])] + [rnd.choice(["*", "s*", "a"])]
    elif r < 0.56:
        yield who, ["PUBLISH", ch(), "p%d" % rnd.randint(0, 99)]
    elif r < 0.66:
        yield who, rnd.choice([["PUBSUB", "SHARDCHANNELS"], ["PUBSUB", "SHARDCHANNELS", rnd.choice(["s*", "*", "a"])],
                               ["PUBSUB", "SHARDNUMSUB"] + some(0, 3), ["PUBSUB", "NUMSUB"] + some(1, 2),
                               ["PUBSUB", "CHANNELS"], ["PUBSUB", "NUMPAT"], ["PUBSUB", "shardchannels", "a", "b"]])
    elif r < 0.74:
        yield who, rnd.choice([["GET", "k"], ["PING"], ["PING", "hi"], ["ECHO", "e"], ["INFO", "nothing"]])
    elif r < 0.80:
        yield who, ["MULTI"]
        for _ in range(rnd.randint(0, 2)):
            yield who, rnd.choice([["SSUBSCRIBE", ch()], ["SPUBLISH", ch(), "t"], ["SUNSUBSCRIBE", ch()],
                                   ["SUBSCRIBE", ch()], ["GET", "k"]])
        yield who, [rnd.choice(["EXEC", "EXEC", "DISCARD"])]
    elif r < 0.85:
        yield who, ["RESET"]
    elif r < 0.92:
        yield who, ["HELLO", rnd.choice(["2", "3"])]
    elif r < 0.96:
        yield who, "reconnect"
    else:
        yield who, rnd.choice([["SSUBSCRIBE"], ["SPUBLISH", "a"], ["PUBSUB", "SHARDNUMSUB", "a"]])


def frames(data):
    """Splits a byte stream of whole replies into them."""
    import io
    f, out = io.BytesIO(data), []
    while f.tell() < len(data):
        out.append(read_reply(f))
    return out


def normalized(command, data):
    """The orders Redis takes from its hash tables, sorted (see the module docs)."""
    parts = frames(data)
    if command[0] in ("SUNSUBSCRIBE", "UNSUBSCRIBE", "PUNSUBSCRIBE") and len(command) == 1 and len(parts) > 1:
        # [kind, name, count] each: sort the names, keep the counts where they were.
        split = [p.split(b"\r\n") for p in parts]
        names = sorted((s[3], s[4]) for s in split)
        parts = [b"\r\n".join(s[:3] + list(n) + s[5:]) for s, n in zip(split, names)]
    if command[:2] in (["PUBSUB", "SHARDCHANNELS"], ["PUBSUB", "CHANNELS"]) and parts and parts[0][:1] == b"*":
        head, _, rest = parts[0].partition(b"\r\n")
        items = sorted(frames(rest))
        parts[0] = head + b"\r\n" + b"".join(items)
    if command[0] == "PUBLISH":
        # One PUBLISH's pattern messages, in pattern order here, in dict order in Redis.
        runs, out = [], []
        for part in parts + [b""]:
            if b"\r\n$8\r\npmessage\r\n" in part[:20]:
                runs.append(part)
                continue
            out += sorted(runs) + [part]
            runs = []
        parts = out
    return b"".join(parts)


def drain(clients, waiting=None, quiet=0.005):
    """Everything each client has been sent: once client `waiting` has a reply (up to 5 s),
    until the server has been quiet a while."""
    import select
    got = [b"" for _ in clients]
    while True:
        wait = 5 if waiting is not None and not got[waiting] else quiet
        ready, _, _ = select.select([c.sock for c in clients], [], [], wait)
        if not ready:
            return got
        for i, c in enumerate(clients):
            if c.sock in ready:
                data = c.sock.recv(1 << 16)
                if not data:
                    raise SystemExit("server closed client %d" % i)
                got[i] += data


def shard_main(seed, ours, redis, cases):
    rnd = random.Random(seed)
    servers = [[Client(port) for _ in range(3)] for port in (ours, redis)]
    bad = steps = 0
    # KV_DIFF_TRANSCRIPT=file keeps every step and both servers' output, for the record.
    path = os.environ.get("KV_DIFF_TRANSCRIPT")
    transcript = open(path, "w") if path else None
    for _ in range(cases):
        for who, command in shard_cases(rnd):
            steps += 1
            outputs = []
            for port, clients in zip((ours, redis), servers):
                if command == "reconnect":
                    clients[who].sock.close()
                    clients[who] = Client(port)
                else:
                    clients[who].sock.sendall(enc(*command))
                outputs.append(drain(clients, None if command == "reconnect" else who))
            if transcript:
                print("C%d> %r" % (who, command), file=transcript)
                for i in range(3):
                    if outputs[0][i] or outputs[1][i]:
                        print("  C%d< ours  %r\n  C%d< redis %r" % (i, outputs[0][i], i, outputs[1][i]), file=transcript)
            for i in range(3):
                got, want = outputs[0][i], outputs[1][i]
                if i == who and command != "reconnect":
                    if command[0] == "HELLO":
                        continue
                    got, want = normalized(command, got), normalized(command, want)
                elif command != "reconnect" and command[0] == "PUBLISH":
                    got, want = normalized(command, got), normalized(command, want)
                if got != want:
                    bad += 1
                    if bad <= 10:
                        print("DIFF client %d after client %d's %r\n  ours  %r\n  redis %r"
                              % (i, who, command, got[:300], want[:300]))
    print("mode shard cases", cases, "steps", steps, "diffs", bad)
    sys.exit(1 if bad else 0)


def main():
    mode, seed, ours, redis = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    cases = int(sys.argv[5]) if len(sys.argv) > 5 else 2000
    if mode == "shard":
        return shard_main(seed, ours, redis, cases)
    generate = {"float": float_cases, "bits": bits_cases, "bitfield": bitfield_cases, "lcs": lcs_cases}[mode]
    rnd = random.Random(seed)
    a, b = Client(ours), Client(redis)
    bad = 0
    for _ in range(cases):
        for command in generate(rnd):
            got, want = a.ask(*command), b.ask(*command)
            # HELLO names the server's version and the client's id: not ours to match.
            if got != want and command[0] != "HELLO":
                bad += 1
                if bad <= 10:
                    print("DIFF %r\n  ours  %r\n  redis %r" % (command, got[:200], want[:200]))
    print("mode", mode, "cases", cases, "diffs", bad)
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
