//! The key-value service through a real third-party client, the `redis` crate (redis-rs), and
//! through raw bytes where exact replies matter. Expiry with a controlled clock is tested in
//! memory (`src/service/kv/tests.rs`); here one short real expiry shows the reactor's ticks
//! drive it.

mod common;

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

use reactor::reactor::{Config, Reactor};
use reactor::service::kv::{Kv, KvConfig};
use redis::{Commands, RedisResult};

fn server(config: Config) -> (SocketAddr, common::Server) {
    let mut reactor = Reactor::new(config).unwrap();
    let addr = reactor.serve("127.0.0.1:0".parse().unwrap(), Kv::new(KvConfig::default())).unwrap();
    (addr, common::Server::run(reactor, addr))
}

fn client(addr: SocketAddr) -> redis::Connection {
    connect_url(&format!("redis://{addr}/")).unwrap()
}

/// A redis-rs connection for `url` (credentials, `?protocol=resp3`), within 5 s.
fn connect_url(url: &str) -> RedisResult<redis::Connection> {
    redis::Client::open(url)?.get_connection_with_timeout(Duration::from_secs(5))
}

#[test]
fn redis_rs_runs_every_string_and_keyspace_command() -> RedisResult<()> {
    let (addr, _s) = server(Config::default());
    let mut con = client(addr);
    let pong: String = redis::cmd("PING").query(&mut con)?;
    assert_eq!(pong, "PONG");
    let echoed: String = redis::cmd("PING").arg("hi").query(&mut con)?;
    assert_eq!(echoed, "hi");
    let echoed: Vec<u8> = redis::cmd("ECHO").arg(b"bin\0ary\r\n").query(&mut con)?;
    assert_eq!(echoed, b"bin\0ary\r\n");

    let () = con.set("k", "v")?;
    assert_eq!(con.get::<_, String>("k")?, "v");
    assert_eq!(con.get::<_, Option<String>>("missing")?, None);
    let nx: Option<String> = redis::cmd("SET").arg("k").arg("other").arg("NX").query(&mut con)?;
    assert_eq!(nx, None, "NX on an existing key does nothing");
    let xx: Option<String> = redis::cmd("SET").arg("new").arg("x").arg("XX").query(&mut con)?;
    assert_eq!(xx, None, "XX on a missing key does nothing");
    assert_eq!(con.exists::<_, i64>(&["k", "new", "k"])?, 2);

    assert_eq!(con.incr::<_, _, i64>("n", 1)?, 1);
    assert_eq!(redis::cmd("INCRBY").arg("n").arg(41).query::<i64>(&mut con)?, 42);
    assert_eq!(redis::cmd("DECR").arg("n").query::<i64>(&mut con)?, 41);
    let err = con.incr::<_, _, i64>("k", 1).unwrap_err();
    assert!(err.to_string().contains("value is not an integer or out of range"), "{err}");
    // redis-rs sends INCRBYFLOAT for a float increment. The stored text is Redis's long
    // double sum: "0.3", where f64 arithmetic would store 0.30000000000000004.
    assert_eq!(con.incr::<_, _, f64>("f", 0.1)?, 0.1);
    assert_eq!(con.incr::<_, _, f64>("f", 0.2)?, 0.3);
    assert_eq!(con.get::<_, String>("f")?, "0.3");
    let err = con.incr::<_, _, f64>("k", 1.5).unwrap_err();
    assert!(err.to_string().contains("value is not a valid float"), "{err}");
    assert_eq!(con.del::<_, i64>("f")?, 1);

    let () = con.mset(&[("a", "1"), ("b", "2")])?;
    let got: Vec<Option<String>> = con.mget(&["a", "b", "nope"])?;
    assert_eq!(got, vec![Some("1".into()), Some("2".into()), None]);
    let mut keys: Vec<String> = con.keys("*")?;
    keys.sort();
    assert_eq!(keys, ["a", "b", "k", "n"]);
    let keys: Vec<String> = con.keys("[ab]")?;
    assert_eq!(keys.len(), 2);
    assert_eq!(redis::cmd("DBSIZE").query::<i64>(&mut con)?, 4);
    assert_eq!(con.del::<_, i64>(&["a", "b", "zzz"])?, 2);

    assert_eq!(con.ttl::<_, i64>("k")?, -1);
    assert_eq!(con.ttl::<_, i64>("missing")?, -2);
    assert!(con.expire::<_, bool>("k", 100)?);
    let ttl: i64 = con.ttl("k")?;
    assert!((99..=100).contains(&ttl), "{ttl}");
    assert!(con.pexpire::<_, bool>("k", 50_000)?);
    let pttl: i64 = con.pttl("k")?;
    assert!((49_000..=50_000).contains(&pttl), "{pttl}");

    let () = redis::cmd("SELECT").arg(0).query(&mut con)?;
    assert!(redis::cmd("SELECT").arg(1).query::<()>(&mut con).is_err());
    let () = redis::cmd("CLIENT").arg("SETNAME").arg("tester").query(&mut con)?;
    assert_eq!(redis::cmd("CLIENT").arg("GETNAME").query::<String>(&mut con)?, "tester");
    let info: String = redis::cmd("INFO").query(&mut con)?;
    for field in
        ["redis_version:", "connected_clients:1", "total_commands_processed:", "used_memory:", "db0:keys=2"]
    {
        assert!(info.contains(field), "INFO lacks {field}:\n{info}");
    }
    let config: Vec<String> = redis::cmd("CONFIG").arg("GET").arg("save").query(&mut con)?;
    assert_eq!(config.first().map(String::as_str), Some("save"));
    let () = redis::cmd("FLUSHALL").query(&mut con)?;
    assert_eq!(redis::cmd("DBSIZE").query::<i64>(&mut con)?, 0);

    let err = redis::cmd("NOSUCH").arg("x").query::<()>(&mut con).unwrap_err();
    assert!(err.to_string().contains("unknown command 'NOSUCH'"), "{err}");
    let err = redis::cmd("GET").query::<()>(&mut con).unwrap_err();
    assert!(err.to_string().contains("wrong number of arguments for 'get' command"), "{err}");
    Ok(())
}

#[test]
fn a_client_configured_with_a_password_logs_in_as_with_redis_without_one() -> RedisResult<()> {
    let (addr, _s) = server(Config::default());
    // redis-rs sends AUTH (or HELLO ... AUTH) first when the URL carries credentials.
    let mut con = connect_url(&format!("redis://default:secret@{addr}/"))?;
    let _: () = con.set("k", "v")?;
    assert_eq!(con.get::<_, String>("k")?, "v");
    let refused = connect_url(&format!("redis://bob:secret@{addr}/"));
    let err = refused.err().expect("an unknown user must be refused");
    assert_eq!(err.kind(), redis::ErrorKind::AuthenticationFailed, "{err}");
    Ok(())
}

#[test]
fn a_resp3_client_gets_resp3_nulls_and_maps() -> RedisResult<()> {
    // redis-rs with `protocol=resp3` opens with HELLO 3, as redis-py 8 does by default.
    let (addr, _s) = server(Config::default());
    let mut con = connect_url(&format!("redis://{addr}/?protocol=resp3"))?;
    let () = con.set("k", "v")?;
    let values: Vec<Option<String>> = redis::cmd("MGET").arg("k").arg("nope").query(&mut con)?;
    assert_eq!(values, vec![Some("v".to_string()), None]);
    let missing: Option<String> = con.get("nope")?;
    assert_eq!(missing, None);
    let config: std::collections::HashMap<String, String> =
        redis::cmd("CONFIG").arg("GET").arg("hz").query(&mut con)?;
    assert_eq!(config.get("hz").map(String::as_str), Some("10"));
    Ok(())
}

#[test]
fn an_atomic_pipeline_runs_as_multi_exec() -> RedisResult<()> {
    // redis-rs's `pipe().atomic()` (like redis-py's default pipeline) wraps it in MULTI/EXEC.
    let (addr, _s) = server(Config::default());
    let mut con = client(addr);
    let (a, b, n): (String, String, i64) = redis::pipe()
        .atomic()
        .set("a", "1")
        .ignore()
        .set("b", "2")
        .ignore()
        .get("a")
        .get("b")
        .incr("n", 5)
        .query(&mut con)?;
    assert_eq!((a.as_str(), b.as_str(), n), ("1", "2", 5));
    Ok(())
}

#[test]
fn a_redis_rs_transaction_retries_when_a_watched_key_changes() -> RedisResult<()> {
    // redis-rs's `transaction` helper is the check-and-set loop: WATCH the keys, read, then
    // MULTI … EXEC, and all again while EXEC answers null because a watched key changed.
    let (addr, _s) = server(Config::default());
    let mut con = client(addr);
    let mut other = client(addr);
    let _: () = con.set("counter", 10)?;
    let mut attempts = 0;
    let (doubled,): (i64,) = redis::transaction(&mut con, &["counter"], |con, pipe| {
        attempts += 1;
        let old: i64 = con.get("counter")?;
        if attempts == 1 {
            // Another client writes between this read and the EXEC.
            let _: () = other.incr("counter", 100)?;
        }
        pipe.set("counter", old * 2).ignore().get("counter").query(con)
    })?;
    assert_eq!(attempts, 2, "the first EXEC must have been refused");
    assert_eq!(doubled, 220, "the retry read the other client's write");
    Ok(())
}

#[test]
fn a_pipeline_of_1000_commands_gets_1000_replies() -> RedisResult<()> {
    let (addr, _s) = server(Config::default());
    let mut con = client(addr);
    let mut pipe = redis::pipe();
    for i in 0..500 {
        pipe.set(format!("key:{i}"), format!("value:{i}")).ignore();
        pipe.get(format!("key:{i}"));
    }
    let values: Vec<String> = pipe.query(&mut con)?;
    assert_eq!(values.len(), 500);
    for (i, v) in values.iter().enumerate() {
        assert_eq!(v, &format!("value:{i}"));
    }
    Ok(())
}

#[test]
fn a_scan_walk_finds_every_key_while_another_client_writes() -> RedisResult<()> {
    let (addr, _s) = server(Config::default());
    let mut con = client(addr);
    let mut writer = client(addr);
    let mut pipe = redis::pipe();
    for i in 0..2000 {
        pipe.set(format!("user:{i}"), i).ignore();
    }
    pipe.set("other", 0).ignore();
    let () = pipe.query(&mut con)?;

    // redis-rs's own iterator, with MATCH.
    let mut found: Vec<String> = con.scan_match::<_, String>("user:1??")?.collect::<RedisResult<_>>()?;
    found.sort();
    found.dedup();
    assert_eq!(found, (100..200).map(|i| format!("user:{i}")).collect::<Vec<_>>());

    // By hand, while the second client deletes odd keys between steps (from low and high
    // positions, so that original keys, not only new ones, get moved into the holes) and now
    // and then adds a key: every even key was there for the whole walk, so each must be
    // returned.
    let (mut cursor, mut seen, mut steps) = (0u64, std::collections::HashSet::new(), 0);
    loop {
        let (next, keys): (u64, Vec<String>) =
            redis::cmd("SCAN").arg(cursor).arg("COUNT").arg(50).query(&mut con)?;
        seen.extend(keys);
        steps += 1;
        if next == 0 {
            break;
        }
        cursor = next;
        let () = writer.del(&[format!("user:{}", 2 * steps + 1), format!("user:{}", 1999 - 2 * steps)])?;
        if steps % 4 == 0 {
            let () = writer.set(format!("new:{steps}"), 1)?;
        }
    }
    // COUNT 50 over about 2,000 keys: about 40 steps (fewer as keys are deleted).
    assert!(steps >= 30, "COUNT 50 over 2,001 keys took {steps} steps");
    let missed: Vec<String> =
        (0..2000).step_by(2).map(|i| format!("user:{i}")).filter(|k| !seen.contains(k)).collect();
    assert!(missed.is_empty(), "missed {missed:?}");
    assert!(seen.contains("other"));
    Ok(())
}

#[test]
fn redis_rs_renames_swaps_and_expires_at_a_unix_time() -> RedisResult<()> {
    let (addr, _s) = server(Config::default());
    let mut con = client(addr);
    let () = con.set("a", "1")?;
    assert_eq!(con.getset::<_, _, String>("a", "2")?, "1");
    assert_eq!(con.get_del::<_, String>("a")?, "2");
    assert_eq!(con.get::<_, Option<String>>("a")?, None);
    let () = con.set("from", "v")?;
    let () = con.rename("from", "to")?;
    assert!(!con.rename_nx::<_, _, bool>("to", "to")?);
    assert!(con.rename::<_, _, ()>("nope", "x").is_err());
    let (secs, micros): (u64, u64) = redis::cmd("TIME").query(&mut con)?;
    let deadline = secs as i64 + 100;
    assert!(micros < 1_000_000);
    assert!(con.expire_at::<_, bool>("to", deadline)?);
    assert_eq!(con.expire_time::<_, i64>("to")?, deadline);
    assert!((98..=100).contains(&con.ttl::<_, i64>("to")?));
    assert_eq!(con.unlink::<_, i64>(&["to", "nope"])?, 1);
    Ok(())
}

/// redis-rs's OBJECT helpers, as a memory-analysis tool would call them key by key: the same
/// answers as redis-server 7.0.15 gives for these values, a missing key as `None`, and FREQ's
/// and IDLETIME's refusals as errors.
#[test]
fn redis_rs_asks_object_encoding_and_refcount() -> RedisResult<()> {
    let (addr, _s) = server(Config::default());
    let mut con = client(addr);
    let () = con.mset(&[("small", "12"), ("big", "12345"), ("text", "hello")])?;
    let () = con.set("long", "x".repeat(45))?;
    let _: usize = con.append("text", " world")?;
    for (key, encoding, refcount) in
        [("small", "int", 2_147_483_647), ("big", "int", 1), ("long", "raw", 1), ("text", "raw", 1)]
    {
        assert_eq!(con.object_encoding::<_, Option<String>>(key)?.as_deref(), Some(encoding), "{key}");
        assert_eq!(con.object_refcount::<_, Option<usize>>(key)?, Some(refcount), "{key}");
    }
    assert_eq!(con.object_encoding::<_, Option<String>>("missing")?, None);
    let err = con.object_freq::<_, Option<usize>>("small").unwrap_err();
    assert!(err.to_string().contains("An LFU maxmemory policy is not selected"), "{err}");
    let err = con.object_idletime::<_, Option<usize>>("small").unwrap_err();
    assert!(err.to_string().contains("idle time not tracked"), "{err}");
    Ok(())
}

#[test]
fn keys_expire_without_being_touched() -> RedisResult<()> {
    let (addr, _s) = server(Config::default());
    let mut con = client(addr);
    for i in 0..50 {
        let () = redis::cmd("SET").arg(format!("short:{i}")).arg("x").arg("PX").arg(100).query(&mut con)?;
    }
    let () = con.set("long", "stays")?;
    assert_eq!(redis::cmd("DBSIZE").query::<i64>(&mut con)?, 51);
    std::thread::sleep(Duration::from_millis(600));
    // DBSIZE does not look at keys one by one: only active expiry (the reactor's ticks) can
    // have removed them.
    assert_eq!(redis::cmd("DBSIZE").query::<i64>(&mut con)?, 1);
    assert_eq!(con.get::<_, String>("long")?, "stays");
    Ok(())
}

#[test]
fn raw_bytes_inline_and_split_requests_get_exact_replies() {
    let (addr, _s) = server(Config::default());
    let mut stream = common::connect(addr);
    let request = b"PING\r\n*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nhello\r\n*2\r\n$3\r\nGET\r\n$1\r\nk\r\n";
    for chunk in request.chunks(3) {
        stream.write_all(chunk).unwrap();
        std::thread::sleep(Duration::from_millis(1));
    }
    let want = b"+PONG\r\n+OK\r\n$5\r\nhello\r\n";
    assert_eq!(common::read_n(&mut stream, want.len()), want);
}

#[test]
fn protocol_error_is_answered_then_closed_and_others_are_unaffected() {
    let (addr, _s) = server(Config::default());
    let mut bystander = client(addr);
    let () = bystander.set("x", "1").unwrap();
    let mut bad = common::connect(addr);
    bad.write_all(b"*1\r\n$-5\r\n").unwrap();
    let mut reply = String::new();
    bad.read_to_string(&mut reply).unwrap();
    assert_eq!(reply, "-ERR Protocol error: invalid bulk length\r\n");
    assert_eq!(bystander.get::<_, String>("x").unwrap(), "1");
}

#[test]
fn over_max_conns_a_client_reads_the_redis_refusal() {
    let (addr, _s) = server(Config { max_conns: 1, ..Config::default() });
    let mut first = client(addr);
    let () = first.set("a", "b").unwrap();
    let mut second = common::connect(addr);
    let mut reply = String::new();
    second.read_to_string(&mut reply).unwrap();
    assert_eq!(reply, "-ERR max number of clients reached\r\n");
}

#[test]
fn a_pipeline_whose_replies_outgrow_the_output_limit_is_answered_in_full() {
    // 100 GETs of a 64 KiB value in one write: 6.4 MiB of replies against a 256 KiB output
    // limit. kv stops at the limit (`Cx::output_room`) and the reactor must offer the rest
    // again as the replies go out, or the client waits forever.
    let (addr, _s) = server(Config { max_output: 256 * 1024, ..Config::default() });
    let mut con = client(addr);
    let value = "v".repeat(64 * 1024);
    let () = con.set("big", &value).unwrap();
    let mut raw = common::connect(addr);
    raw.write_all(&b"*2\r\n$3\r\nGET\r\n$3\r\nbig\r\n".repeat(100)).unwrap();
    let reply = format!("$65536\r\n{value}\r\n");
    let all = common::read_n(&mut raw, reply.len() * 100);
    assert!(all == reply.repeat(100).into_bytes(), "replies differ");
}

#[test]
fn a_pipeline_ended_by_a_half_close_gets_every_reply() {
    // `nc -N` style: 40 GETs of a 64 KiB value, then FIN, then read. kv holds requests back
    // at the 1 MiB output limit; the FIN behind them must not cut them off.
    let (addr, _s) = server(Config::default());
    let mut con = client(addr);
    let value = "v".repeat(64 * 1024);
    let () = con.set("big", &value).unwrap();
    let mut raw = common::connect(addr);
    raw.write_all(&b"*2\r\n$3\r\nGET\r\n$3\r\nbig\r\n".repeat(40)).unwrap();
    raw.shutdown(std::net::Shutdown::Write).unwrap();
    let mut all = Vec::new();
    raw.read_to_end(&mut all).unwrap();
    let reply = format!("$65536\r\n{value}\r\n");
    assert_eq!(all.len() / reply.len(), 40, "replies before the close");
    assert!(all == reply.repeat(40).into_bytes(), "replies differ");
}

#[test]
fn a_deep_pipeline_that_reads_as_it_writes_is_never_cut_for_input_too_large() {
    // redis-benchmark -P 10000 -d 4096 GET against a small query limit: while kv is held at
    // the output limit, the reactor must stop reading, not pile the client's next requests up
    // until they pass `max_input` and the connection is reset.
    let mut reactor = Reactor::new(Config::default()).unwrap();
    let small = KvConfig { max_bulk: 64 * 1024, max_query: 128 * 1024, ..KvConfig::default() };
    let addr = reactor.serve("127.0.0.1:0".parse().unwrap(), Kv::new(small)).unwrap();
    let _s = common::Server::run(reactor, addr);
    let value = "w".repeat(4096);
    let mut raw = common::connect(addr);
    raw.write_all(&common::resp(&[b"SET", b"k", value.as_bytes()])).unwrap();
    assert_eq!(common::read_n(&mut raw, 5), b"+OK\r\n");
    const GETS: usize = 20_000;
    let mut writer = raw.try_clone().unwrap();
    let sending = std::thread::spawn(move || {
        let batch = b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n".repeat(1000);
        for _ in 0..GETS / 1000 {
            writer.write_all(&batch)?;
        }
        Ok::<_, std::io::Error>(())
    });
    let reply = format!("$4096\r\n{value}\r\n");
    let all = common::read_n(&mut raw, reply.len() * GETS);
    common::join_within(sending, Duration::from_secs(60)).unwrap();
    assert!(all == reply.repeat(GETS).into_bytes(), "replies differ");
}

/// Pub/sub with redis-rs: a subscriber to a channel and a pattern receives both messages of
/// one PUBLISH, in order, and the publisher is told how many it sent.
#[test]
fn pubsub_with_redis_rs() -> RedisResult<()> {
    let (addr, _s) = server(Config::default());
    let mut subscriber = client(addr);
    let mut publisher = client(addr);
    let mut pubsub = subscriber.as_pubsub();
    pubsub.set_read_timeout(Some(Duration::from_secs(5)))?;
    pubsub.subscribe("news")?;
    pubsub.psubscribe("n*")?;
    assert_eq!(publisher.publish::<_, _, i64>("news", "hello")?, 2);
    let first = pubsub.get_message()?;
    assert_eq!((first.get_channel_name(), first.get_payload::<String>()?), ("news", "hello".to_string()));
    assert!(!first.from_pattern());
    let second = pubsub.get_message()?;
    assert_eq!(second.get_pattern::<String>()?, "n*");
    assert_eq!(second.get_payload::<String>()?, "hello");
    pubsub.unsubscribe("news")?;
    pubsub.punsubscribe("n*")?;
    drop(pubsub);
    // Out of pub/sub mode, the connection runs commands again.
    assert_eq!(subscriber.get::<_, Option<String>>("k")?, None);
    assert_eq!(publisher.publish::<_, _, i64>("news", "nobody")?, 0);
    Ok(())
}

/// Sharded pub/sub with redis-rs. Its sync client takes shard messages as RESP3 pushes (its
/// RESP2 `PubSub` knows only `message` and `pmessage`), so the subscriber speaks RESP3: it gets
/// the `ssubscribe` confirmation and the `smessage`; a PUBLISH of the same name reaches nobody,
/// and PUBSUB SHARDNUMSUB and SHARDCHANNELS see it.
#[test]
fn sharded_pubsub_with_redis_rs() -> RedisResult<()> {
    let (addr, _s) = server(Config::default());
    let mut subscriber = connect_url(&format!("redis://{addr}/?protocol=resp3"))?;
    let (tx, rx) = std::sync::mpsc::channel();
    subscriber.set_push_sender(tx);
    redis::cmd("SSUBSCRIBE").arg("orders").set_no_response(true).exec(&mut subscriber)?;
    let mut publisher = client(addr);
    // The subscriber's own PING orders it: its SSUBSCRIBE has run when the PONG comes.
    let _: String = redis::cmd("PING").query(&mut subscriber)?;
    assert_eq!(publisher.spublish::<_, _, i64>("orders", "o1")?, 1);
    assert_eq!(publisher.publish::<_, _, i64>("orders", "not for shard subscribers")?, 0);
    let counts: Vec<(String, i64)> =
        redis::cmd("PUBSUB").arg("SHARDNUMSUB").arg("orders").arg("none").query(&mut publisher)?;
    assert_eq!(counts, [("orders".to_string(), 1), ("none".to_string(), 0)]);
    let channels: Vec<String> = redis::cmd("PUBSUB").arg("SHARDCHANNELS").query(&mut publisher)?;
    assert_eq!(channels, ["orders"]);
    // A command reads what came before its reply: here the message.
    let _: String = redis::cmd("PING").query(&mut subscriber)?;
    let pushes: Vec<redis::PushInfo> = rx.try_iter().collect();
    assert_eq!(pushes.len(), 2, "{pushes:?}");
    assert_eq!(pushes[0].kind, redis::PushKind::SSubscribe);
    assert_eq!(pushes[0].data, [redis::Value::BulkString(b"orders".to_vec()), redis::Value::Int(1)]);
    assert_eq!(pushes[1].kind, redis::PushKind::SMessage);
    let message = redis::Msg::from_push_info(pushes[1].clone()).expect("an smessage is a message");
    assert_eq!((message.get_channel_name(), message.get_payload::<String>()?), ("orders", "o1".to_string()));
    redis::cmd("SUNSUBSCRIBE").set_no_response(true).exec(&mut subscriber)?;
    let _: String = redis::cmd("PING").query(&mut subscriber)?;
    assert_eq!(publisher.spublish::<_, _, i64>("orders", "nobody")?, 0);
    Ok(())
}

/// A subscriber that never reads is disconnected once its output passes the limit, as Redis
/// drops a pub/sub client past its output buffer limit; the publisher is never slowed and
/// learns from PUBLISH's count that the subscriber is gone.
#[test]
fn a_subscriber_that_never_reads_is_dropped_and_publishing_goes_on() {
    never_reading_subscriber_is_dropped("SUBSCRIBE", "PUBLISH", "NUMSUB");
}

/// The same for a shard channel's subscriber, SSUBSCRIBE and SPUBLISH.
#[test]
fn a_shard_subscriber_that_never_reads_is_dropped_and_spublishing_goes_on() {
    never_reading_subscriber_is_dropped("SSUBSCRIBE", "SPUBLISH", "SHARDNUMSUB");
}

fn never_reading_subscriber_is_dropped(subscribe: &str, publish: &str, numsub: &str) {
    let (addr, _s) = server(Config { max_output: 64 * 1024, ..Config::default() });
    let mut sleeper = std::net::TcpStream::connect(addr).unwrap();
    sleeper.write_all(format!("{subscribe} news\r\n").as_bytes()).unwrap();
    let kind = subscribe.to_ascii_lowercase();
    let expected = format!("*3\r\n${}\r\n{kind}\r\n$4\r\nnews\r\n:1\r\n", kind.len());
    let mut confirmation = vec![0u8; expected.len()];
    sleeper.read_exact(&mut confirmation).unwrap();
    assert_eq!(confirmation, expected.as_bytes());
    let mut publisher = client(addr);
    let mut send = |message: &str| -> i64 {
        redis::cmd(publish).arg("news").arg(message).query(&mut publisher).unwrap()
    };
    // Give up only far beyond what can be buffered for the sleeper: its output limit, the
    // kernel's send buffer on the server's side and its receive buffer on ours.
    let buffer = |name: &str, i: usize| {
        std::fs::read_to_string(format!("/proc/sys/net/ipv4/{name}"))
            .ok()
            .and_then(|s| s.split_whitespace().nth(i).and_then(|v| v.parse::<usize>().ok()))
            .unwrap_or(16 << 20)
    };
    let most = 2 * (buffer("tcp_wmem", 2) + buffer("tcp_rmem", 1)) + 64 * 1024;
    let message = "m".repeat(1000);
    let mut published = 0;
    while send(&message) == 1 {
        published += 1;
        assert!(published < most / message.len(), "the sleeper was never dropped");
    }
    assert_eq!(send("anyone?"), 0);
    let subscribers: Vec<(String, i64)> =
        redis::cmd("PUBSUB").arg(numsub).arg("news").query(&mut publisher).unwrap();
    assert_eq!(subscribers, [("news".to_string(), 0)]);
}

/// A subscriber that reads promptly is not dropped because one message is larger than the
/// output limit (PUBLISH accepts up to max_bulk; Redis keeps such a subscriber too): the
/// reactor closes as too slow only a recipient that was already behind when a message came
/// (from the fourth review).
#[test]
fn a_prompt_subscriber_survives_one_message_larger_than_the_output_limit() {
    let wmem_max = std::fs::read_to_string("/proc/sys/net/ipv4/tcp_wmem")
        .ok()
        .and_then(|s| s.split_whitespace().nth(2).and_then(|v| v.parse::<usize>().ok()))
        .unwrap_or(4 << 20);
    let size = wmem_max + (2 << 20);
    if size > KvConfig::default().max_bulk {
        eprintln!("note: tcp_wmem's maximum lets the kernel take the whole message; skipping");
        return;
    }
    let (addr, _s) = server(Config { max_output: 64 * 1024, ..Config::default() });
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket.set_recv_buffer_size(64 * 1024).unwrap();
    socket.connect(&addr.into()).unwrap();
    let mut subscriber: std::net::TcpStream = socket.into();
    subscriber.write_all(b"SUBSCRIBE news\r\n").unwrap();
    let mut confirmation = [0u8; 33];
    subscriber.read_exact(&mut confirmation).unwrap();
    subscriber.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let header = format!("*3\r\n$7\r\nmessage\r\n$4\r\nnews\r\n${size}\r\n");
    let whole = header.len() + size + 2;
    let reader = std::thread::spawn(move || {
        let (mut all, mut buf) = (0usize, vec![0u8; 1 << 20]);
        while all < whole {
            match subscriber.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => all += n,
            }
        }
        (all, subscriber) // kept open: still subscribed
    });
    let mut publisher = client(addr);
    assert_eq!(publisher.publish::<_, _, i64>("news", vec![b'm'; size]).unwrap(), 1);
    let (received, _subscriber) = reader.join().unwrap();
    assert_eq!(received, whole, "the subscriber got a cut message");
    let subscribers: Vec<(String, i64)> =
        redis::cmd("PUBSUB").arg("NUMSUB").arg("news").query(&mut publisher).unwrap();
    assert_eq!(subscribers, [("news".to_string(), 1)]);
}

/// Protected mode, through a real socket: behind a PROXY-protocol listener (HAProxy's
/// `send-proxy`) a client the header says is at 10.1.2.3 is refused with `-DENIED` and closed,
/// while one at a loopback address is served; with a password, redis-rs logs in from the URL.
#[test]
fn protected_mode_refuses_a_remote_client_and_a_password_lets_it_in() {
    use reactor::reactor::ListenOptions;
    let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let proxied = ListenOptions { proxy_protocol: true, ..ListenOptions::default() };
    let mut reactor = Reactor::new(Config::default()).unwrap();
    let open = reactor.add_service(Kv::new(KvConfig::default()));
    let behind_proxy = reactor.listen_with(any, open, proxied).unwrap();
    let password = KvConfig { requirepass: Some("s3cret".into()), ..KvConfig::default() };
    let locked = reactor.add_service(Kv::new(password));
    let with_password = reactor.listen(any, locked).unwrap();
    let _s = common::Server::run(reactor, with_password);

    // Sends a PROXY header and a PING; returns the first line of the reply, and the stream.
    let ask = |header: &str| {
        let mut stream = common::connect(behind_proxy);
        stream.write_all(format!("{header}PING\r\n").as_bytes()).unwrap();
        let (mut reply, mut byte) = (Vec::new(), [0; 1]);
        while !reply.ends_with(b"\r\n") && matches!(stream.read(&mut byte), Ok(1)) {
            reply.push(byte[0]);
        }
        (String::from_utf8_lossy(&reply).into_owned(), stream)
    };
    let (remote, mut stream) = ask("PROXY TCP4 10.1.2.3 127.0.0.1 5000 6380\r\n");
    assert!(remote.starts_with("-DENIED Running in protected mode"), "{remote}");
    assert_eq!(stream.read(&mut [0; 16]).unwrap(), 0, "closed after the refusal");
    let (local, _stream) = ask("PROXY TCP4 127.0.0.2 127.0.0.1 5000 6380\r\n");
    assert_eq!(local, "+PONG\r\n", "a loopback client is served");

    let refused = connect_url(&format!("redis://{with_password}/"))
        .and_then(|mut con| redis::cmd("PING").query::<String>(&mut con));
    assert!(refused.is_err_and(|e| e.to_string().contains("NOAUTH")), "no password, no PING");
    let mut con = connect_url(&format!("redis://:s3cret@{with_password}/")).unwrap();
    let pong: String = redis::cmd("PING").query(&mut con).unwrap();
    assert_eq!(pong, "PONG");
}

#[test]
fn a_quiet_subscriber_outlives_the_idle_timeout_that_closes_a_quiet_client() -> RedisResult<()> {
    // Redis never times out a pub/sub client: a `pubsub.listen()` waiting five minutes for a
    // message must not find its connection gone. A client that is merely quiet still is.
    let (addr, _s) = server(Config { idle_timeout: Some(Duration::from_millis(300)), ..Config::default() });
    let mut subscriber = client(addr);
    let mut quiet = std::net::TcpStream::connect(addr).unwrap();
    let mut pubsub = subscriber.as_pubsub();
    pubsub.set_read_timeout(Some(Duration::from_secs(5)))?;
    pubsub.subscribe("news")?;
    // Exempt, it gets TCP keepalive instead (as Redis's tcp-keepalive 300), so that a peer
    // that vanished without a FIN is still found out: `ss` shows the timer on one socket.
    // (While a reply waits for its delayed ACK, `ss` shows the retransmission timer instead.)
    if common::have("ss") {
        let filter = format!("( sport = :{} )", addr.port());
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        loop {
            let out = common::output(Command::new("ss").args(["-tno", "state", "established", &filter]));
            let text = String::from_utf8_lossy(&out.stdout).into_owned();
            if !out.status.success() || !text.contains(&format!(":{}", addr.port())) {
                // An `ss` that cannot see sockets here (no sock_diag in some sandboxes).
                eprintln!("ss lists no socket of this server: keepalive not checked");
                break;
            }
            if text.matches("timer:(keepalive").count() == 1 && !text.contains("timer:(on") {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "no keepalive on the subscriber: {text}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    std::thread::sleep(Duration::from_millis(1200)); // four idle periods
    quiet.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    assert_eq!(quiet.read(&mut [0u8; 16]).unwrap(), 0, "the quiet client is closed");
    let mut publisher = client(addr);
    assert_eq!(publisher.publish::<_, _, i64>("news", "still here?")?, 1);
    assert_eq!(pubsub.get_message()?.get_payload::<String>()?, "still here?");
    // Out of pub/sub mode, it is an ordinary client again, and times out like one.
    pubsub.unsubscribe("news")?;
    drop(pubsub);
    std::thread::sleep(Duration::from_millis(1200));
    assert!(subscriber.get::<_, Option<String>>("k").is_err(), "closed once it stopped listening");
    Ok(())
}
