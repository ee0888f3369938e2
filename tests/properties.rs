//! Properties of every parser, checked on generated input (proptest).
//!
//! For each service's input path — HTTP request framing (`request.rs`, `chunked.rs`), RESP
//! (`kv/resp.rs`), chat lines — two properties, both checked by `reactor::fuzzing::check`
//! (the same function the fuzz targets call; see `src/fuzzing.rs`):
//!
//! * **Any split of a valid byte stream gives the same replies.** Proptest builds a stream
//!   of valid requests and a list of read sizes; the stream fed in those reads must produce
//!   byte-for-byte the output of the stream fed whole, and keep the connection open.
//! * **Random bytes never panic and never leave more unconsumed input than
//!   `Service::max_input`.** Both fully random bytes and valid streams with a few bytes
//!   mutated (which get much further into a parser than noise does).
//!
//! Case counts are modest so the file runs in a few seconds; `PROPTEST_CASES=10000 cargo test
//! --test properties` searches harder. A failure prints the shrunk stream and splits.

mod common;

use proptest::collection::vec;
use proptest::prelude::*;
use reactor::fuzzing::{Target, check};

fn config() -> ProptestConfig {
    ProptestConfig { cases: 128, ..ProptestConfig::default() }
}

/// Read sizes: mostly small (splits inside tokens), sometimes large.
fn splits() -> impl Strategy<Value = Vec<usize>> {
    vec(prop_oneof![4 => 1usize..8, 2 => 8usize..64, 1 => 64usize..2048], 0..6)
}

/// Bytes that mean something to one of the parsers, so random input is not all noise.
fn protocol_byte() -> impl Strategy<Value = u8> {
    prop_oneof![
        any::<u8>(),
        proptest::sample::select(b"*$+-:0123456789\r\n\r\n \t/GETPOSTHTP.1:;\"'\\".to_vec()),
    ]
}

/// A valid stream with a few bytes overwritten.
fn mutated(valid: impl Strategy<Value = Vec<u8>>) -> impl Strategy<Value = Vec<u8>> {
    (valid, vec((any::<prop::sample::Index>(), protocol_byte()), 1..4)).prop_map(|(mut bytes, edits)| {
        if !bytes.is_empty() {
            for (at, b) in edits {
                let i = at.index(bytes.len());
                bytes[i] = b;
            }
        }
        bytes
    })
}

// ─── HTTP ────────────────────────────────────────────────────────────────────────────────

/// One valid request within `reactor::fuzzing::http_config` (512-byte heads, 1 KiB bodies).
fn http_request() -> impl Strategy<Value = Vec<u8>> {
    let body = vec(any::<u8>(), 0..300);
    prop_oneof![
        Just(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec()),
        Just(b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec()),
        Just(b"GET /missing HTTP/1.1\r\nHost: x\r\nAccept: */*\r\n\r\n".to_vec()),
        Just(b"DELETE / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec()),
        Just(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n".to_vec()),
        (body.clone(), any::<bool>()).prop_map(|(body, expect)| {
            let expect = if expect { "Expect: 100-continue\r\n" } else { "" };
            let mut r = format!(
                "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: a/b\r\n{expect}Content-Length: {}\r\n\r\n",
                body.len()
            )
            .into_bytes();
            r.extend_from_slice(&body);
            r
        }),
        (vec(body, 0..4), any::<bool>()).prop_map(|(chunks, trailer)| {
            let mut r = b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
            for chunk in chunks.iter().filter(|c| !c.is_empty()).take(3) {
                r.extend_from_slice(format!("{:x};ext=1\r\n", chunk.len()).as_bytes());
                r.extend_from_slice(chunk);
                r.extend_from_slice(b"\r\n");
            }
            r.extend_from_slice(if trailer { b"0\r\nX-Trailer: t\r\n\r\n" } else { b"0\r\n\r\n" });
            r
        }),
    ]
}

fn http_stream() -> impl Strategy<Value = Vec<u8>> {
    vec(http_request(), 1..6).prop_map(|requests| requests.concat())
}

// ─── RESP (kv) ───────────────────────────────────────────────────────────────────────────

/// One valid command within `reactor::fuzzing::kv_config` (256-byte bulks, 16 arguments).
fn kv_command() -> impl Strategy<Value = Vec<u8>> {
    let key = proptest::sample::select(vec![&b"a"[..], b"b", b"counter", b"k\r\n\0"]);
    let value = vec(any::<u8>(), 0..200);
    prop_oneof![
        (key.clone(), value.clone()).prop_map(|(k, v)| common::resp(&[b"SET", k, &v])),
        key.clone().prop_map(|k| common::resp(&[b"GET", k])),
        key.clone().prop_map(|k| common::resp(&[b"INCR", k])),
        (key.clone(), value.clone()).prop_map(|(k, v)| common::resp(&[b"INCRBYFLOAT", k, &v])),
        key.clone().prop_map(|k| common::resp(&[b"INCRBYFLOAT", k, b"-0.1e1"])),
        key.clone().prop_map(|k| common::resp(&[b"SUBSCRIBE", k])),
        key.clone().prop_map(|k| common::resp(&[b"PSUBSCRIBE", b"*", k])),
        (key.clone(), value.clone()).prop_map(|(k, v)| common::resp(&[b"PUBLISH", k, &v])),
        Just(common::resp(&[b"UNSUBSCRIBE"])),
        Just(common::resp(&[b"RESET"])),
        (key.clone(), 0u16..300).prop_map(|(k, o)| common::resp(&[
            b"SETBIT",
            k,
            o.to_string().as_bytes(),
            b"1"
        ])),
        key.clone().prop_map(|k| common::resp(&[b"BITCOUNT", k, b"1", b"-2", b"BIT"])),
        key.clone().prop_map(|k| common::resp(&[b"BITPOS", k, b"0", b"1"])),
        (key.clone(), key.clone()).prop_map(|(a, b)| common::resp(&[b"BITOP", b"XOR", a, a, b])),
        (key.clone(), 0u8..40).prop_map(|(k, o)| {
            let offset = o.to_string();
            common::resp(&[b"BITFIELD", k, b"INCRBY", b"i5", offset.as_bytes(), b"7", b"GET", b"u3", b"#2"])
        }),
        key.clone().prop_map(|k| common::resp(&[b"DEL", k])),
        (key.clone(), value.clone()).prop_map(|(k, v)| common::resp(&[b"APPEND", k, &v])),
        (key.clone(), key.clone()).prop_map(|(a, b)| common::resp(&[b"EXISTS", a, b])),
        value.clone().prop_map(|v| common::resp(&[b"ECHO", &v])),
        Just(common::resp(&[b"PING"])),
        Just(common::resp(&[b"DBSIZE"])),
        Just(common::resp(&[b"NOSUCH", b"x"])),
        Just(common::resp(&[b"MULTI"])),
        Just(common::resp(&[b"EXEC"])),
        Just(common::resp(&[b"DISCARD"])),
        (key.clone(), key.clone()).prop_map(|(a, b)| common::resp(&[b"RENAME", a, b])),
        (key.clone(), value.clone()).prop_map(|(k, v)| common::resp(&[b"GETSET", k, &v])),
        key.clone().prop_map(|k| common::resp(&[b"GETDEL", k])),
        key.clone().prop_map(|k| common::resp(&[b"GETEX", k, b"PX", b"50000"])),
        key.clone().prop_map(|k| common::resp(&[b"EXPIREAT", k, b"1"])),
        key.clone().prop_map(|k| common::resp(&[b"PEXPIRETIME", k])),
        (0u8..4).prop_map(|c| common::resp(&[b"SCAN", &[b'0' + c], b"COUNT", b"2"])),
        Just(common::resp(&[b"RANDOMKEY"])),
        (key.clone(), value.clone()).prop_map(|(k, v)| common::resp(&[b"SETRANGE", k, b"3", &v])),
        key.clone().prop_map(|k| common::resp(&[b"GETRANGE", k, b"-5", b"-1"])),
        Just(common::resp(&[b"TIME"])),
        Just(b"PING\r\n".to_vec()),
        Just(b"SET inline \"quoted value\"\r\n".to_vec()),
        Just(b"GET inline\n".to_vec()),
        Just(b"*0\r\n".to_vec()),
    ]
}

fn kv_stream() -> impl Strategy<Value = Vec<u8>> {
    vec(kv_command(), 1..12).prop_map(|commands| commands.concat())
}

// ─── chat ────────────────────────────────────────────────────────────────────────────────

/// One line: text (sometimes over the 128-byte limit, sometimes not UTF-8) or a command.
fn chat_line() -> impl Strategy<Value = Vec<u8>> {
    let text = prop_oneof![
        4 => "[ -~]{0,100}".prop_map(String::into_bytes),
        1 => vec(any::<u8>().prop_filter("no newline", |b| *b != b'\n'), 0..300),
    ];
    let body = prop_oneof![
        6 => text,
        1 => "[a-z]{1,10}".prop_map(|n| format!("/nick {n}").into_bytes()),
        1 => Just(b"/who".to_vec()),
        1 => Just(b"/me waves".to_vec()),
        1 => Just(b"/help".to_vec()),
    ];
    (body, any::<bool>()).prop_map(|(mut line, crlf)| {
        line.extend_from_slice(if crlf { b"\r\n" } else { b"\n" });
        line
    })
}

fn chat_stream() -> impl Strategy<Value = Vec<u8>> {
    vec(chat_line(), 1..10).prop_map(|lines| lines.concat())
}

// ─── the properties ──────────────────────────────────────────────────────────────────────

proptest! {
    #![proptest_config(config())]

    #[test]
    fn http_any_split_of_valid_requests_gives_the_same_responses(stream in http_stream(), sizes in splits()) {
        prop_assert!(check(Target::Http, &stream, &sizes), "a valid stream closed the connection");
    }

    #[test]
    fn kv_any_split_of_valid_commands_gives_the_same_replies(stream in kv_stream(), sizes in splits()) {
        prop_assert!(check(Target::Kv, &stream, &sizes), "a valid stream closed the connection");
    }

    #[test]
    fn chat_any_split_of_lines_gives_the_same_output(stream in chat_stream(), sizes in splits()) {
        prop_assert!(check(Target::Chat, &stream, &sizes), "a valid stream closed the connection");
    }

    #[test]
    fn echo_any_split_returns_the_stream(stream in vec(any::<u8>(), 0..4096), sizes in splits()) {
        prop_assert!(check(Target::Echo, &stream, &sizes));
    }

    #[test]
    fn random_bytes_never_panic_nor_overfill(
        stream in vec(protocol_byte(), 0..3000),
        sizes in splits(),
    ) {
        for target in Target::ALL {
            check(target, &stream, &sizes);
        }
    }

    #[test]
    fn http_mutated_requests_never_panic_nor_overfill(stream in mutated(http_stream()), sizes in splits()) {
        check(Target::Http, &stream, &sizes);
    }

    #[test]
    fn kv_mutated_commands_never_panic_nor_overfill(stream in mutated(kv_stream()), sizes in splits()) {
        check(Target::Kv, &stream, &sizes);
    }

    #[test]
    fn chat_mutated_lines_never_panic_nor_overfill(stream in mutated(chat_stream()), sizes in splits()) {
        check(Target::Chat, &stream, &sizes);
    }
}
