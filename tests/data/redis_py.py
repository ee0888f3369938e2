"""redis-py, the most used Python client, against the kv service: run by tests/third_party.rs.

Usage: python3 redis_py.py PORT. Prints one line per protocol and exits 0 when every check
passed; any failure raises, so the exit status is non-zero and the traceback says which.
redis-py 5+ speaks RESP3 when asked (protocol=3, the default from 8.0 on): it opens every
connection with HELLO 3, and its RESP3 parser does not accept RESP2's $-1 null.
"""
import sys

import redis

port = int(sys.argv[1])

for protocol in (3, 2):
    r = redis.Redis(host="127.0.0.1", port=port, protocol=protocol, socket_timeout=10,
                    username="default", password="any", client_name=f"py-resp{protocol}")
    assert r.ping() is True
    r.flushall()
    assert r.set("greeting", "Hello, Server!") is True
    assert r.get("greeting") == b"Hello, Server!"
    assert r.get("missing") is None
    assert r.mget("greeting", "missing") == [b"Hello, Server!", None]
    assert r.set("greeting", "x", nx=True) is None
    assert r.set("counter", 0, ex=100) is True
    assert r.incrby("counter", 41) == 41 and r.incr("counter") == 42
    assert 0 < r.ttl("counter") <= 100
    name = r.client_getname()  # redis-py decodes it under RESP2 only
    assert (name.decode() if isinstance(name, bytes) else name) == f"py-resp{protocol}"

    # The default pipeline is a MULTI/EXEC transaction; a plain one is 1,000 commands in a row.
    with r.pipeline() as p:
        p.set("a", 1).incr("a").get("a")
        assert p.execute() == [True, 2, b"2"]
    with r.pipeline(transaction=False) as p:
        for i in range(500):
            p.set(f"key:{i}", i)
            p.get(f"key:{i}")
        replies = p.execute()
    assert replies[1::2] == [str(i).encode() for i in range(500)]

    # Check-and-set with WATCH: redis-py's transaction helper retries until it wins.
    def double(pipe):
        value = int(pipe.get("a"))
        pipe.multi()
        pipe.set("a", value * 2)
    r.transaction(double, "a")
    assert r.get("a") == b"4"

    # SCAN through redis-py's iterator, with MATCH and COUNT.
    found = {k for k in r.scan_iter(match="key:1??", count=37)}
    assert found == {f"key:{i}".encode() for i in range(100, 200)}, sorted(found)
    assert r.dbsize() == 503
    assert r.memory_usage("greeting") > len("greeting") + len("Hello, Server!")

    # COMMAND in Redis 7's ten-field form: redis-py's RESP3 parser reads the seventh field
    # (ACL categories) unconditionally, so the six-field form of Redis 6 raised IndexError.
    commands = r.command()
    assert commands["get"]["arity"] == 2 and commands["set"]["first_key_pos"] == 1
    assert {str(c) if isinstance(c, str) else c.decode() for c in commands["get"]["acl_categories"]} \
        == {"@read", "@string", "@fast"}, commands["get"]

    # COMMAND LIST and GETKEYS as redis-py wraps them (Redis lists in its hash order, which
    # changes from run to run, so sets), and OBJECT ENCODING as memory tools ask it.
    def texts(items):
        return {i.decode() if isinstance(i, bytes) else i for i in items}
    assert {"config", "config|get", "config|help"} <= texts(r.command_list(pattern="CONFIG*"))
    assert {"get", "set", "append"} <= texts(r.command_list(category="string"))
    assert texts(r.command_getkeys("MSET", "a", "1", "b", "2")) == {"a", "b"}
    assert texts(r.command_getkeys("OBJECT", "ENCODING", "k")) == {"k"}
    assert texts([r.object("encoding", "counter"), r.object("encoding", "greeting")]) == {"int", "embstr"}

    info = r.info()
    assert info["redis_version"] and info["connected_clients"] >= 1
    assert r.config_get("maxmemory") == {"maxmemory": "0"}
    try:
        r.execute_command("NOSUCHCOMMAND")
        raise AssertionError("an unknown command must be an error")
    except redis.ResponseError as e:
        assert "unknown command" in str(e)

    # INFO commandstats as monitoring tools read it: redis-py parses each line into a dict.
    # An increment of a non-integer (redis-py's incr sends INCRBY) is a failed call.
    try:
        r.incr("greeting")
        raise AssertionError("INCR of a string must be an error")
    except redis.ResponseError as e:
        assert "not an integer" in str(e)
    stats = r.info("commandstats")
    assert stats["cmdstat_get"]["calls"] >= 1 and "usec_per_call" in stats["cmdstat_get"], stats
    assert stats["cmdstat_incrby"]["failed_calls"] >= 1 and stats["cmdstat_incrby"]["rejected_calls"] == 0, stats

    # Sharded pub/sub as redis-py drives it outside a cluster: SPUBLISH reaches the shard
    # subscriber only (PUBLISH to the same name reaches nobody), confirmations count shard
    # channels.
    p = r.pubsub()
    p.ssubscribe("shard")
    assert p.get_sharded_message(timeout=5) == {"type": "ssubscribe", "pattern": None, "channel": b"shard", "data": 1}
    assert r.spublish("shard", "hi") == 1 and r.publish("shard", "no") == 0
    assert p.get_sharded_message(timeout=5) == {"type": "smessage", "pattern": None, "channel": b"shard", "data": b"hi"}
    assert r.pubsub_shardnumsub("shard") == [(b"shard", 1)] and r.pubsub_shardchannels() == [b"shard"]
    p.sunsubscribe("shard")
    assert p.get_sharded_message(timeout=5)["type"] == "sunsubscribe"
    p.close()
    r.close()
    print(f"redis-py {redis.__version__} RESP{protocol}: ok")
