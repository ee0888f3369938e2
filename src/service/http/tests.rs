//! Tests of the whole HTTP service, driven through [`Harness`]: raw request bytes in, exact
//! reply bytes out, no sockets.

use std::time::{Duration, UNIX_EPOCH};

use super::response::imf_fixdate;
use super::{Http, HttpConfig};
use crate::service::ConnId;
use crate::service::testing::Harness;

fn harness() -> Harness<Http> {
    Harness::new(Http::new(HttpConfig::default()))
}

/// The `Date` value the harness's clock should produce.
fn expected_date(h: &Harness<Http>) -> String {
    let secs = h.wall().duration_since(UNIX_EPOCH).unwrap().as_secs();
    String::from_utf8(imf_fixdate(secs).to_vec()).unwrap()
}

/// Checks the shape of an IMF-fixdate (RFC 9110 §5.6.7) character by character.
fn assert_imf_fixdate(value: &str) {
    let shape = "Aaa, 00 Aaa 0000 00:00:00 GMT";
    assert_eq!(value.len(), shape.len(), "date {value:?}");
    for (c, s) in value.chars().zip(shape.chars()) {
        let ok = match s {
            'A' => c.is_ascii_uppercase(),
            'a' => c.is_ascii_lowercase(),
            '0' => c.is_ascii_digit(),
            _ => c == s,
        };
        assert!(ok, "date {value:?} does not fit {shape:?}");
    }
    assert!(["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"].contains(&&value[..3]));
    let months = "JanFebMarAprMayJunJulAugSepOctNovDec";
    assert!(months.contains(&value[8..11]));
}

/// One response split out of an output stream.
#[derive(Debug, Clone, PartialEq)]
struct Resp {
    status_line: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Resp {
    fn status(&self) -> u16 {
        self.status_line[9..12].parse().unwrap()
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// Splits `out` into responses, using `Content-Length` (and no body for 1xx or, if
/// `head_only`, for any reply).
fn parse_responses(mut out: &[u8], head_only: bool) -> Vec<Resp> {
    let mut all = Vec::new();
    while !out.is_empty() {
        let end = out.windows(4).position(|w| w == b"\r\n\r\n").expect("a complete head");
        let head = std::str::from_utf8(&out[..end]).unwrap();
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap().to_string();
        let headers: Vec<(String, String)> = lines
            .map(|l| {
                let (n, v) = l.split_once(": ").expect("name: value");
                (n.to_string(), v.to_string())
            })
            .collect();
        let mut r = Resp { status_line, headers, body: Vec::new() };
        out = &out[end + 4..];
        if r.status() >= 200 && !head_only {
            let len: usize = r.header("Content-Length").unwrap().parse().unwrap();
            r.body = out[..len].to_vec();
            out = &out[len..];
        }
        all.push(r);
    }
    all
}

/// Sends `bytes` on a fresh connection in one read; returns the connection and the replies.
fn exchange(h: &mut Harness<Http>, bytes: &[u8]) -> (ConnId, Vec<Resp>) {
    let c = h.open();
    h.input(c, bytes);
    let out = h.take_output(c);
    (c, parse_responses(&out, false))
}

#[test]
fn get_root_is_exact_bytes_with_a_wellformed_date() {
    let mut h = harness();
    let c = h.open();
    h.input(c, b"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n");
    let date = expected_date(&h);
    assert_imf_fixdate(&date);
    let expected = format!(
        "HTTP/1.1 200 OK\r\nDate: {date}\r\nServer: reactor\r\nContent-Type: text/plain\r\n\
         Content-Length: 14\r\n\r\nHello, World!\n"
    );
    assert_eq!(h.take_text(c), expected);
    assert_eq!(h.unconsumed(c), 0);
    assert!(!h.is_closing(c));
    assert_eq!(h.timer(c), None, "a whole request arms no timer");
}

#[test]
fn date_follows_the_clock() {
    let mut h = harness();
    let c = h.open();
    h.input(c, b"GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    let first = parse_responses(&h.take_output(c), false);
    h.advance(Duration::from_secs(2));
    h.input(c, b"GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    let second = parse_responses(&h.take_output(c), false);
    assert_ne!(first[0].header("Date"), second[0].header("Date"));
    assert_eq!(second[0].header("Date"), Some(expected_date(&h).as_str()));
}

#[test]
fn keep_alive_connection_is_reused() {
    let mut h = harness();
    let c = h.open();
    for _ in 0..5 {
        h.input(c, b"GET / HTTP/1.1\r\nHost: a\r\n\r\n");
        let r = parse_responses(&h.take_output(c), false);
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].body, b"Hello, World!\n");
        assert_eq!(r[0].header("Connection"), None);
        assert!(!h.is_closing(c));
    }
}

#[test]
fn http10_closes_by_default() {
    let mut h = harness();
    let (c, r) = exchange(&mut h, b"GET / HTTP/1.0\r\n\r\n");
    assert_eq!(r[0].status(), 200);
    assert_eq!(r[0].header("Connection"), Some("close"));
    assert!(h.is_closing(c));
}

#[test]
fn http10_keep_alive_is_opt_in_and_echoed() {
    let mut h = harness();
    let c = h.open();
    for _ in 0..2 {
        h.input(c, b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n");
        let r = parse_responses(&h.take_output(c), false);
        assert_eq!(r[0].status(), 200);
        assert_eq!(r[0].header("Connection"), Some("keep-alive"));
        assert!(!h.is_closing(c));
    }
}

#[test]
fn connection_close_is_honoured() {
    let mut h = harness();
    let (c, r) = exchange(
        &mut h,
        b"GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, close\r\n\r\nGET / HTTP/1.1\r\n",
    );
    assert_eq!(r.len(), 1, "nothing after the closing request is answered");
    assert_eq!(r[0].header("Connection"), Some("close"));
    assert!(h.is_closing(c));
}

#[test]
fn ten_pipelined_requests_answered_in_order_in_one_call() {
    let mut h = harness();
    let mut wire = Vec::new();
    let mut expected = Vec::new();
    for i in 0..10 {
        match i % 4 {
            0 => {
                wire.extend_from_slice(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n");
                expected.push((200, b"Hello, World!\n".to_vec()));
            }
            1 => {
                let body = format!("body number {i}");
                wire.extend_from_slice(
                    format!("POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: {}\r\n\r\n{body}", body.len())
                        .as_bytes(),
                );
                expected.push((200, body.into_bytes()));
            }
            2 => {
                wire.extend_from_slice(format!("GET /missing/{i} HTTP/1.1\r\nHost: a\r\n\r\n").as_bytes());
                expected.push((404, b"Not Found\n".to_vec()));
            }
            _ => {
                wire.extend_from_slice(
                    b"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n\
                      3\r\nabc\r\n0\r\n\r\n",
                );
                expected.push((200, b"abc".to_vec()));
            }
        }
    }
    let c = h.open();
    let consumed = h.input(c, &wire);
    assert_eq!(consumed, wire.len());
    let r = parse_responses(&h.take_output(c), false);
    let got: Vec<(u16, Vec<u8>)> = r.iter().map(|r| (r.status(), r.body.clone())).collect();
    assert_eq!(got, expected);
    assert!(!h.is_closing(c));
}

/// Feeds `wire` split in two at every offset, and byte by byte; every way must produce the
/// same bytes as the whole input at once.
/// Each run gets a fresh harness, so `/stats` counts the same in all of them; their clocks
/// may straddle a second, so dates are blanked before comparing.
fn assert_split_invariant(wire: &[u8]) {
    let mut h = harness();
    let c = h.open();
    h.input(c, wire);
    let whole = without_dates(&h.take_output(c));
    assert!(!whole.is_empty());
    for split in 0..=wire.len() {
        let mut h = harness();
        let c = h.open();
        h.input(c, &wire[..split]);
        h.input(c, &wire[split..]);
        assert_eq!(without_dates(&h.take_output(c)), whole, "split at {split}");
        assert_eq!(h.unconsumed(c), 0);
    }
    let mut h = harness();
    let c = h.open();
    h.input_bytewise(c, wire);
    assert_eq!(without_dates(&h.take_output(c)), whole, "byte by byte");
}

fn without_dates(out: &[u8]) -> String {
    let mut text = String::from_utf8_lossy(out).into_owned();
    let mut from = 0;
    while let Some(at) = text[from..].find("\r\nDate: ") {
        let start = from + at + "\r\nDate: ".len();
        text.replace_range(start..start + 29, "<date>");
        from = start;
    }
    text
}

#[test]
fn a_request_split_anywhere_gets_the_same_reply() {
    assert_split_invariant(b"GET / HTTP/1.1\r\nHost: a\r\nUser-Agent: t\r\n\r\n");
    assert_split_invariant(
        b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Type: text/x\r\nContent-Length: 5\r\n\r\nhello\
          GET /stats HTTP/1.1\r\nHost: a\r\n\r\n",
    );
    assert_split_invariant(
        b"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n\
          4;ext=1\r\nwiki\r\n5\r\npedia\r\n0\r\nX-Trailer: t\r\n\r\n",
    );
}

#[test]
fn echo_with_content_length_echoes_body_and_type() {
    let mut h = harness();
    let (c, r) = exchange(
        &mut h,
        b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Type: text/plain; charset=utf-8\r\n\
          Content-Length: 11\r\n\r\nhello world",
    );
    assert_eq!(r[0].status(), 200);
    assert_eq!(r[0].body, b"hello world");
    assert_eq!(r[0].header("Content-Type"), Some("text/plain; charset=utf-8"));
    assert!(!h.is_closing(c));

    let (_, r) = exchange(&mut h, b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\n\x00\xff\x01");
    assert_eq!(r[0].body, b"\x00\xff\x01");
    assert_eq!(r[0].header("Content-Type"), Some("application/octet-stream"));

    // An empty body is echoed with its type too (it once came back with an empty field).
    let (_, r) = exchange(&mut h, b"POST /echo HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_eq!((r[0].status(), r[0].body.len()), (200, 0));
    assert_eq!(r[0].header("Content-Type"), Some("application/octet-stream"));
    let (_, r) = exchange(
        &mut h,
        b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Type: text/x\r\nContent-Length: 0\r\n\r\n",
    );
    assert_eq!(r[0].header("Content-Type"), Some("text/x"));
}

#[test]
fn echo_body_waits_unconsumed_until_whole() {
    let mut h = harness();
    let c = h.open();
    h.input(c, b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\n01234");
    assert!(h.take_output(c).is_empty());
    assert_eq!(h.unconsumed(c), 5, "the partial body stays in the reactor's buffer");
    h.input(c, b"56789");
    let r = parse_responses(&h.take_output(c), false);
    assert_eq!(r[0].body, b"0123456789");
    assert_eq!(h.unconsumed(c), 0);
}

#[test]
fn echo_with_chunked_body_extensions_and_trailers() {
    let mut h = harness();
    let (c, r) = exchange(
        &mut h,
        b"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Type: a/b\r\n\r\n\
          7;name=\"quoted value\";flag\r\nchunked\r\n1 ; spaced\r\n \r\nA\r\n0123456789\r\n\
          000;last\r\nExpires: never\r\nX-Checksum: 42\r\n\r\n",
    );
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].status(), 200);
    assert_eq!(r[0].body, b"chunked 0123456789");
    assert_eq!(r[0].header("Content-Type"), Some("a/b"));
    assert_eq!(r[0].header("Transfer-Encoding"), None);
    assert!(!h.is_closing(c));
}

#[test]
fn expect_100_continue_before_the_body() {
    let mut h = harness();
    let c = h.open();
    h.input(c, b"POST /echo HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n");
    assert_eq!(h.take_text(c), "HTTP/1.1 100 Continue\r\n\r\n");
    h.input(c, b"ping");
    let r = parse_responses(&h.take_output(c), false);
    assert_eq!((r[0].status(), r[0].body.as_slice()), (200, &b"ping"[..]));

    // The body came with the head: no 100 needed (RFC 9110 §10.1.1 allows omitting it).
    let (_, r) = exchange(
        &mut h,
        b"POST /echo HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\npong",
    );
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].status(), 200);

    // Chunked, too.
    let c = h.open();
    h.input(
        c,
        b"POST /echo HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nTransfer-Encoding: chunked\r\n\r\n",
    );
    assert_eq!(h.take_text(c), "HTTP/1.1 100 Continue\r\n\r\n");
    h.input(c, b"2\r\nok\r\n0\r\n\r\n");
    assert_eq!(parse_responses(&h.take_output(c), false)[0].body, b"ok");

    // Too large: refused instead of invited.
    let (c, r) = exchange(
        &mut h,
        b"POST /echo HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 2000000\r\n\r\n",
    );
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].status(), 413);
    assert!(h.is_closing(c));

    // HTTP/1.0 expectations are ignored (RFC 9110 §10.1.1).
    let c = h.open();
    h.input(c, b"POST /echo HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n");
    assert!(h.take_output(c).is_empty());
}

#[test]
fn head_has_get_fields_and_no_body() {
    let mut h = harness();
    let c = h.open();
    h.input(c, b"HEAD / HTTP/1.1\r\nHost: a\r\n\r\nHEAD /stats HTTP/1.1\r\nHost: a\r\n\r\n");
    let out = h.take_output(c);
    let r = parse_responses(&out, true);
    assert_eq!(r.len(), 2);
    assert_eq!(r[0].status(), 200);
    assert_eq!(r[0].header("Content-Length"), Some("14"));
    assert_eq!(r[0].header("Content-Type"), Some("text/plain"));
    assert!(r[1].header("Content-Length").unwrap().parse::<usize>().unwrap() > 10);
    assert_eq!(r[1].header("Content-Type"), Some("application/json"));
    assert!(!h.is_closing(c));
}

#[test]
fn unknown_path_is_404_and_keeps_the_connection() {
    let mut h = harness();
    let (c, r) = exchange(&mut h, b"GET /nowhere?x=1 HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_eq!(r[0].status_line, "HTTP/1.1 404 Not Found");
    assert!(!h.is_closing(c));
}

#[test]
fn wrong_method_is_405_with_allow() {
    let mut h = harness();
    let (_, r) = exchange(&mut h, b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\n\r\nx");
    assert_eq!(r[0].status_line, "HTTP/1.1 405 Method Not Allowed");
    assert_eq!(r[0].header("Allow"), Some("GET, HEAD, OPTIONS"));
    let (c, r) = exchange(&mut h, b"GET /echo HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_eq!(r[0].status(), 405);
    assert_eq!(r[0].header("Allow"), Some("POST, OPTIONS"));
    assert!(!h.is_closing(c));
    let (_, r) = exchange(&mut h, b"DELETE /metrics HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_eq!(r[0].header("Allow"), Some("GET, HEAD, OPTIONS"));
}

#[test]
fn unknown_methods_are_501_and_options_lists_what_is_allowed() {
    let mut h = harness();
    // RFC 9110 §9.1: a method the server does not know at all is 501, on any path; the
    // connection goes on (the request was well framed).
    for wire in [&b"FOO / HTTP/1.1\r\nHost: a\r\n\r\n"[..], b"get / HTTP/1.1\r\nHost: a\r\n\r\n"] {
        let (c, r) = exchange(&mut h, wire);
        assert_eq!(r[0].status_line, "HTTP/1.1 501 Not Implemented");
        assert!(!h.is_closing(c));
    }
    // RFC 9110 §9.3.7: OPTIONS answers 200, no content, with `Allow`; `*` is the server.
    let (c, r) = exchange(&mut h, b"OPTIONS /echo HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_eq!((r[0].status(), r[0].header("Allow")), (200, Some("POST, OPTIONS")));
    assert_eq!((r[0].header("Content-Length"), r[0].body.len()), (Some("0"), 0));
    assert!(!h.is_closing(c));
    let (_, r) = exchange(&mut h, b"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_eq!((r[0].status(), r[0].header("Allow")), (200, Some("GET, HEAD, POST, OPTIONS")));
    let (_, r) = exchange(&mut h, b"OPTIONS /nowhere HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_eq!(r[0].status(), 404);
    // RFC 9112 §3.2.4: `*` is for OPTIONS only.
    let (c, r) = exchange(&mut h, b"GET * HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_eq!(r[0].status(), 400);
    assert!(h.is_closing(c));
}

#[test]
fn an_error_answering_head_has_no_content() {
    let mut h = harness();
    let c = h.open();
    h.input(c, b"HEAD / HTTP/1.1\r\nHost: a\r\nExpect: something\r\n\r\n");
    let out = h.take_output(c);
    let r = parse_responses(&out, true);
    assert_eq!(r.len(), 1, "{}", String::from_utf8_lossy(&out));
    assert_eq!(r[0].status(), 417);
    assert_eq!(r[0].header("Content-Length"), Some("19"));
    assert!(out.ends_with(b"\r\n\r\n"), "no content after the head");
    assert!(h.is_closing(c));
}

#[test]
fn expect_100_continue_on_a_route_that_reads_no_body_gets_the_final_status_at_once() {
    let mut h = harness();
    for (wire, status) in [
        (
            &b"POST /nowhere HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 100000\r\n\r\n"[..],
            404,
        ),
        (b"PUT / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 100000\r\n\r\n", 405),
        // The same when the body came with the head: how the bytes were split must not matter.
        (b"POST /nowhere HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\nhello", 404),
    ] {
        let (c, r) = exchange(&mut h, wire);
        // No 100 (Continue): the client is not invited to send a body nobody reads.
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].status(), status);
        assert_eq!(r[0].header("Connection"), Some("close"));
        assert!(h.is_closing(c));
    }
}

#[test]
fn host_values_are_checked() {
    let mut h = harness();
    for good in ["a", "example.com:8080", "[::1]:8080", "127.0.0.1", "", "a-b_c.~x:"] {
        let wire = format!("GET / HTTP/1.1\r\nHost: {good}\r\n\r\n");
        let (_, r) = exchange(&mut h, wire.as_bytes());
        assert_eq!(r[0].status(), 200, "Host: {good}");
    }
    // RFC 9112 §3.2: an invalid Host value is 400.
    for bad in ["a b", "a/b", "u@a", "a:b", "a:1:2", "[zz]", "[::1", "a?b", "a#b"] {
        let wire = format!("GET / HTTP/1.1\r\nHost: {bad}\r\n\r\n");
        let (c, r) = exchange(&mut h, wire.as_bytes());
        assert_eq!(r[0].status(), 400, "Host: {bad}");
        assert!(h.is_closing(c));
    }
}

#[test]
fn a_pipeline_of_big_replies_stops_at_the_output_limit_and_resumes() {
    let mut h = harness();
    h.set_output_limit(8 * 1024);
    let request = b"GET /metrics HTTP/1.1\r\nHost: a\r\n\r\n";
    let pipeline = request.repeat(200);
    let c = h.open();
    let first = h.input(c, &pipeline);
    // Each reply is about a kilobyte and a half: the call stops between requests once the
    // output is at the limit, instead of formatting all 200 at once.
    assert!(first > 0 && first < pipeline.len(), "consumed {first}");
    assert_eq!(first % request.len(), 0);
    let out = h.take_output(c);
    assert!(out.len() < 16 * 1024, "{} bytes queued", out.len());
    let mut answered = parse_responses(&out, false).len();
    assert_eq!(answered, first / request.len());
    // The peer reads; offered the rest again (as the reactor does), it goes on, in order.
    while h.unconsumed(c) > 0 {
        assert!(h.input(c, b"") > 0);
        answered += parse_responses(&h.take_output(c), false).len();
    }
    assert_eq!(answered, 200);
}

#[test]
fn absolute_form_target_is_routed_by_path() {
    let mut h = harness();
    let (_, r) = exchange(&mut h, b"GET http://example.com/ HTTP/1.1\r\nHost: example.com\r\n\r\n");
    assert_eq!(r[0].body, b"Hello, World!\n");
}

#[test]
fn bare_lf_heads_are_accepted() {
    // RFC 9112 §2.2: a recipient MAY recognise a single LF as a line terminator.
    let mut h = harness();
    let (_, r) = exchange(&mut h, b"GET / HTTP/1.1\nHost: a\n\n");
    assert_eq!(r[0].status(), 200);
}

#[test]
fn stats_is_json_with_reactor_and_http_counters() {
    let mut h = harness();
    h.stats.bytes_in = 1234;
    let c = h.open();
    h.input(c, b"GET / HTTP/1.1\r\nHost: a\r\n\r\nGET /nope HTTP/1.1\r\nHost: a\r\n\r\n");
    h.take_output(c);
    h.advance(Duration::from_secs(3));
    h.input(c, b"GET /stats HTTP/1.1\r\nHost: a\r\n\r\n");
    let r = parse_responses(&h.take_output(c), false);
    assert_eq!(r[0].header("Content-Type"), Some("application/json"));
    let v: serde_json::Value = serde_json::from_slice(&r[0].body).unwrap();
    assert_eq!(v["reactor"]["bytes_in"], 1234);
    assert_eq!(v["reactor"]["conns_open"], 1);
    assert_eq!(v["reactor"]["uptime_seconds"], 3);
    assert_eq!(v["http"]["requests"], 3);
    assert_eq!(v["http"]["responses"]["2xx"], 1);
    assert_eq!(v["http"]["responses"]["4xx"], 1);
    for key in ["conns_total", "conns_refused", "bytes_out", "reads", "accept_pauses"] {
        assert!(v["reactor"][key].is_u64(), "{key}");
    }
}

#[test]
fn metrics_is_prometheus_text() {
    let mut h = harness();
    h.stats.bytes_out = 99;
    let (_, r) = exchange(&mut h, b"GET /metrics HTTP/1.1\r\nHost: a\r\n\r\n");
    assert!(r[0].header("Content-Type").unwrap().starts_with("text/plain; version=0.0.4"));
    let text = String::from_utf8(r[0].body.clone()).unwrap();
    let mut described = Vec::new();
    let mut samples = 0;
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            described.push(rest.split(' ').next().unwrap().to_string());
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap();
            assert_eq!(Some(&name.to_string()), described.last(), "TYPE after HELP");
            assert!(kind == "counter" || kind == "gauge");
        } else {
            let (series, value) = line.rsplit_once(' ').unwrap();
            value.parse::<u64>().unwrap();
            let name = series.split('{').next().unwrap();
            assert_eq!(Some(&name.to_string()), described.last(), "{line}");
            assert!(name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'));
            samples += 1;
        }
    }
    assert!(text.contains("\nreactor_written_bytes_total 99\n"));
    assert!(text.contains("\nhttp_responses_total{class=\"2xx\"} 0\n"));
    assert!(text.contains("\nhttp_requests_total 1\n"));
    assert_eq!(samples, 15 + 1 + 5);
}

#[test]
fn slow_head_times_out_with_408() {
    let mut h = harness();
    let c = h.open();
    h.input(c, b"GET / HTTP/1.1\r\n");
    h.advance(Duration::from_secs(5));
    h.input(c, b"X-Slow: 1\r\n"); // dribbling does not restart the clock
    h.advance(Duration::from_secs(4));
    assert!(h.take_output(c).is_empty());
    assert!(!h.is_closing(c));
    h.advance(Duration::from_secs(2));
    let r = parse_responses(&h.take_output(c), false);
    assert_eq!(r[0].status_line, "HTTP/1.1 408 Request Timeout");
    assert_eq!(r[0].header("Connection"), Some("close"));
    assert!(h.is_closing(c));

    // A HEAD that times out gets the fields and no content, like every reply to HEAD; the
    // method is known only once its bytes have come, here two reads in.
    let c = h.open();
    h.input(c, b"HE");
    h.input(c, b"AD / HTTP/1.1\r\nHost: a\r\n");
    h.advance(Duration::from_secs(11));
    let out = h.take_output(c);
    assert!(
        out.starts_with(b"HTTP/1.1 408") && out.ends_with(b"\r\n\r\n"),
        "{}",
        String::from_utf8_lossy(&out)
    );
}

#[test]
fn head_timeout_starts_at_each_heads_first_byte_and_not_while_idle() {
    let mut h = harness();
    let c = h.open();
    h.input(c, b"GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    h.take_output(c);
    // Idle keep-alive is the reactor's business: no 408 however long we wait.
    h.advance(Duration::from_secs(60));
    assert!(h.take_output(c).is_empty());
    assert!(!h.is_closing(c));
    // A head completed in time: its timer later fires harmlessly.
    h.input(c, b"GET / HTTP/1.1\r\n");
    h.advance(Duration::from_secs(9));
    h.input(c, b"Host: a\r\n\r\n");
    h.take_output(c);
    h.advance(Duration::from_secs(5));
    assert!(h.take_output(c).is_empty());
    assert!(!h.is_closing(c));
}

/// A body that stops arriving is cut off with 408 after `body_timeout` without a byte; one
/// that keeps arriving, however slowly, is not, and neither is a connection whose body came
/// whole long ago.
#[test]
fn body_timeout_counts_from_the_last_byte_of_the_body() {
    let mut h = harness();
    let timeout = HttpConfig::default().body_timeout;
    let steady = h.open();
    let stalled = h.open();
    let chunked = h.open();
    h.input(steady, b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\n");
    h.input(stalled, b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\na");
    h.input(chunked, b"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n");
    for body_byte in [&b"x"[..], b"y"] {
        h.advance(timeout - Duration::from_secs(1));
        h.input(steady, body_byte);
    }
    // The stalled and the chunked one have now been silent for twice the timeout less 2 s.
    for c in [stalled, chunked] {
        let out = h.take_output(c);
        assert!(out.starts_with(b"HTTP/1.1 408 "), "{}", String::from_utf8_lossy(&out));
        assert!(h.is_closing(c));
    }
    assert!(h.take_output(steady).is_empty() && !h.is_closing(steady), "a steady body is not cut off");
    h.input(steady, b"z");
    let r = parse_responses(&h.take_output(steady), false);
    assert_eq!((r[0].status(), r[0].body.as_slice()), (200, &b"xyz"[..]));
    // Its body timer fires later, into a connection back at idle: nothing happens.
    h.advance(timeout * 2);
    assert!(h.take_output(steady).is_empty() && !h.is_closing(steady));
}

#[test]
fn shutdown_closes_idle_keep_alive_and_ends_requests_in_progress_with_close() {
    let mut h = harness();
    let idle = h.open();
    h.input(idle, b"GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    h.take_output(idle);
    let heading = h.open();
    h.input(heading, b"GET / HTTP/1.1\r\nHo");
    let posting = h.open();
    h.input(posting, b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n\r\nab");
    let untouched = h.open();

    h.begin_shutdown();
    assert!(h.is_closing(idle), "an idle keep-alive connection closes at once");
    assert!(h.is_closing(untouched), "so does one that never sent a byte");
    assert!(h.take_output(idle).is_empty());
    assert!(!h.is_closing(heading) && !h.is_closing(posting), "requests in progress finish");

    h.input(heading, b"st: a\r\n\r\n");
    let r = parse_responses(&h.take_output(heading), false);
    assert_eq!((r[0].status(), r[0].header("Connection")), (200, Some("close")));
    assert!(h.is_closing(heading));
    h.input(posting, b"cd");
    let r = parse_responses(&h.take_output(posting), false);
    assert_eq!((r[0].body.as_slice(), r[0].header("Connection")), (&b"abcd"[..], Some("close")));
    assert!(h.is_closing(posting));
}

#[test]
fn a_head_is_not_timed_out_while_the_peer_has_replies_to_read() {
    // A pipelining client that reads slowly: the reactor stops reading it (backpressure),
    // so the rest of a head it sent long ago waits on our side. That is no slowloris.
    let mut h = harness();
    let c = h.open();
    h.input(c, b"GET / HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.1\r\nHo");
    h.set_reads_paused(c, true); // the peer does not read its replies: backpressure
    h.advance(Duration::from_secs(11));
    assert!(!h.is_closing(c), "408 while the reactor was not reading the peer");
    let first = h.take_output(c);
    assert!(first.starts_with(b"HTTP/1.1 200 OK"));
    h.set_reads_paused(c, false);
    h.input(c, b"st: a\r\n\r\n");
    assert!(h.take_output(c).starts_with(b"HTTP/1.1 200 OK"));
    // Owed output alone changes nothing: while we still read the peer, a dribbled head is a
    // slowloris whether or not it reads its replies.
    h.input(c, b"GET / HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.1\r\n");
    h.advance(Duration::from_secs(11));
    assert!(h.take_text(c).contains("HTTP/1.1 408"));
    assert!(h.is_closing(c));
    let c = h.open();
    // With nothing owed the timeout is as strict as before.
    h.input(c, b"GET / HTTP/1.1\r\n");
    h.advance(Duration::from_secs(11));
    assert!(h.take_text(c).starts_with("HTTP/1.1 408"));
    assert!(h.is_closing(c));
}

#[test]
fn garbage_is_answered_at_once_not_after_the_timeout() {
    let mut h = harness();
    let (c, r) = exchange(&mut h, b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03");
    assert_eq!(r[0].status(), 400);
    assert!(h.is_closing(c));
}

#[test]
fn max_input_allows_a_full_head_and_body() {
    use crate::service::Service;
    let http = Http::default();
    assert!(http.max_input() >= 8 * 1024 + 1024 * 1024);
}

#[test]
fn max_size_body_is_accepted() {
    let mut h = harness();
    let body = vec![b'x'; 1024 * 1024];
    let mut wire =
        format!("POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: {}\r\n\r\n", body.len()).into_bytes();
    wire.extend_from_slice(&body);
    let (_, r) = exchange(&mut h, &wire);
    assert_eq!(r[0].body.len(), body.len());
}

/// Bad requests, the status each must get, and in every case a closing connection.
fn malformed_corpus() -> Vec<(&'static str, Vec<u8>, u16)> {
    let big_header = format!("GET / HTTP/1.1\r\nHost: a\r\nX-Big: {}\r\n\r\n", "a".repeat(9000));
    let long_target = format!("GET /{} HTTP/1.1\r\nHost: a\r\n\r\n", "p".repeat(9000));
    let many_headers = format!(
        "GET / HTTP/1.1\r\nHost: a\r\n{}\r\n",
        (0..70).map(|i| format!("X-{i}: v\r\n")).collect::<String>()
    );
    let endless_newlines = "\r\n".repeat(5000);
    let long_chunk_line = format!(
        "POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n1;{}\r\nx\r\n0\r\n\r\n",
        "e".repeat(5000)
    );
    let big_trailer = format!(
        "POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX-T: {}\r\n\r\n",
        "t".repeat(9000)
    );
    let chunked =
        |body: &str| format!("POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n{body}");
    let cl = |value: &str| format!("POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: {value}\r\n\r\n");
    let te = |value: &str| format!("POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: {value}\r\n\r\n");
    let s = |t: &str| t.as_bytes().to_vec();
    vec![
        // Request line (RFC 9112 §3).
        ("no version (HTTP/0.9 style)", s("GET /\r\n\r\n"), 400),
        ("double space", s("GET  / HTTP/1.1\r\nHost: a\r\n\r\n"), 400),
        ("space in target", s("GET /a b HTTP/1.1\r\nHost: a\r\n\r\n"), 400),
        ("extra token", s("GET / HTTP/1.1 x\r\nHost: a\r\n\r\n"), 400),
        ("bad method char", s("G@T / HTTP/1.1\r\nHost: a\r\n\r\n"), 400),
        ("tab separator", s("GET\t/ HTTP/1.1\r\nHost: a\r\n\r\n"), 400),
        ("lowercase protocol", s("GET / http/1.1\r\nHost: a\r\n\r\n"), 400),
        ("version without minor", s("GET / HTTP/1\r\nHost: a\r\n\r\n"), 400),
        ("two-digit minor", s("GET / HTTP/1.10\r\nHost: a\r\n\r\n"), 400),
        ("relative target", s("GET foo HTTP/1.1\r\nHost: a\r\n\r\n"), 400),
        ("authority-form target", s("CONNECT a.example:443 HTTP/1.1\r\nHost: a\r\n\r\n"), 400),
        ("control byte in target", s("GET /\x01 HTTP/1.1\r\nHost: a\r\n\r\n"), 400),
        ("missing target", s("GET HTTP/1.1\r\nHost: a\r\n\r\n"), 400),
        ("CR alone ends the line", s("GET / HTTP/1.1\rHost: a\r\n\r\n"), 400),
        ("HTTP/2 preface", s("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"), 400),
        ("TLS client hello", b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03\r\n\r\n".to_vec(), 400),
        ("binary garbage", b"\x00\x01\x02\x03\r\n\r\n".to_vec(), 400),
        ("a response, not a request", s("HTTP/1.1 200 OK\r\n\r\n"), 400),
        // Header fields (RFC 9112 §5, RFC 9110 §5).
        ("no colon", s("GET / HTTP/1.1\r\nHost: a\r\nNoColon\r\n\r\n"), 400),
        ("space before colon", s("GET / HTTP/1.1\r\nHost : a\r\n\r\n"), 400),
        ("obs-fold", s("GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n  folded\r\n\r\n"), 400),
        ("empty field name", s("GET / HTTP/1.1\r\nHost: a\r\n: v\r\n\r\n"), 400),
        ("NUL in value", s("GET / HTTP/1.1\r\nHost: a\r\nX: a\0b\r\n\r\n"), 400),
        ("control byte in name", s("GET / HTTP/1.1\r\nHost: a\r\nX\x01Y: v\r\n\r\n"), 400),
        ("HTTP/1.1 without Host", s("GET / HTTP/1.1\r\n\r\n"), 400),
        ("two Host fields", s("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"), 400),
        ("Host with a space", s("GET / HTTP/1.1\r\nHost: a b\r\n\r\n"), 400),
        ("Host with userinfo", s("GET / HTTP/1.1\r\nHost: user@a\r\n\r\n"), 400),
        ("asterisk-form GET", s("GET * HTTP/1.1\r\nHost: a\r\n\r\n"), 400),
        // Content-Length (RFC 9112 §6.2, §6.3).
        ("non-numeric length", s(&cl("abc")), 400),
        ("negative length", s(&cl("-1")), 400),
        ("plus sign", s(&cl("+5")), 400),
        ("hex length", s(&cl("0x10")), 400),
        ("inner space", s(&cl("1 0")), 400),
        ("empty length", s(&cl("")), 400),
        ("conflicting list", s(&cl("5, 6")), 400),
        ("trailing empty element", s(&cl("5,")), 400),
        ("overflowing length", s(&cl("99999999999999999999999")), 400),
        (
            "conflicting fields",
            s("POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nxx"),
            400,
        ),
        // Transfer-Encoding (RFC 9112 §6.1).
        (
            "both CL and TE",
            s("POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"),
            400,
        ),
        ("TE in HTTP/1.0", s("POST /echo HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"), 400),
        ("chunked twice", s(&te("chunked, chunked")), 400),
        ("empty TE", s(&te("")), 400),
        // Chunked not the final coding: the body's end is unknown (§6.3 item 4), 400.
        ("gzip", s(&te("gzip")), 400),
        ("chunked not final", s(&te("chunked, gzip")), 400),
        ("identity", s(&te("identity")), 400),
        ("unknown coding", s(&te("x-custom")), 400),
        // A coding we do not know, under a final chunked: 501 (§6.1).
        ("gzip then chunked", s(&te("gzip, chunked")), 501),
        ("unknown then chunked", s(&te("x-custom, chunked")), 501),
        // Chunked body (RFC 9112 §7.1).
        ("chunk size not hex", s(&chunked("zz\r\n")), 400),
        ("chunk size with junk", s(&chunked("5 x\r\nhello\r\n0\r\n\r\n")), 400),
        ("chunk size then a space", s(&chunked("5 \r\nhello\r\n0\r\n\r\n")), 400),
        ("chunk data too long", s(&chunked("3\r\nabcd\r\n0\r\n\r\n")), 400),
        ("bare LF after chunk size", s(&chunked("3\nabc\r\n0\r\n\r\n")), 400),
        ("empty chunk size", s(&chunked("\r\n")), 400),
        ("trailer without colon", s(&chunked("0\r\nnot a field\r\n\r\n")), 400),
        ("chunk line too long", s(&long_chunk_line), 400),
        ("chunks exceed max body", s(&chunked("100001\r\n")), 413),
        ("chunk size overflows", s(&chunked("fffffffffffffffffffff\r\n")), 413),
        ("trailers too large", s(&big_trailer), 431),
        // Limits.
        ("length over max body", s(&cl("1048577")), 413),
        ("huge length", s(&cl("18446744073709551615")), 413),
        ("header over 8 KiB", s(&big_header), 431),
        ("target over 8 KiB", s(&long_target), 414),
        ("too many headers", s(&many_headers), 431),
        ("endless empty lines", s(&endless_newlines), 431),
        // Expectations (RFC 9110 §10.1.1).
        (
            "unknown expectation",
            s("POST /echo HTTP/1.1\r\nHost: a\r\nExpect: 200-ok\r\nContent-Length: 1\r\n\r\nx"),
            417,
        ),
        // Versions (RFC 9110 §2.5, §15.6.6).
        ("HTTP/2.0", s("GET / HTTP/2.0\r\nHost: a\r\n\r\n"), 505),
        ("HTTP/3.0", s("GET / HTTP/3.0\r\nHost: a\r\n\r\n"), 505),
        ("HTTP/0.9", s("GET / HTTP/0.9\r\n\r\n"), 505),
        ("HTTP/1.2", s("GET / HTTP/1.2\r\nHost: a\r\n\r\n"), 505),
        ("HTTP/9.9", s("GET / HTTP/9.9\r\n\r\n"), 505),
    ]
}

#[test]
fn malformed_requests_get_the_right_status_and_a_close() {
    let corpus = malformed_corpus();
    assert!(corpus.len() >= 50, "corpus has {} cases", corpus.len());
    for (name, wire, status) in corpus {
        for bytewise in [false, true] {
            let mut h = harness();
            let c = h.open();
            if bytewise {
                h.input_bytewise(c, &wire);
            } else {
                h.input(c, &wire);
            }
            let out = h.take_output(c);
            let r = parse_responses(&out, false);
            let how = if bytewise { "byte by byte" } else { "at once" };
            let last = r.last().unwrap_or_else(|| panic!("{name} ({how}): no reply"));
            assert_eq!(last.status(), status, "{name} ({how}): {}", last.status_line);
            assert_eq!(last.header("Connection"), Some("close"), "{name} ({how})");
            assert!(h.is_closing(c), "{name} ({how}): not closing");
            assert!(h.unconsumed(c) == 0, "{name} ({how}): input left");
        }
    }
}

/// Mangles valid requests in many pseudo-random ways: the service must never panic, and after
/// all input is in, it either is closing or holds less than its input limit.
#[test]
fn mutated_requests_never_panic_or_hang() {
    let seeds: [&[u8]; 3] = [
        b"GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive\r\n\r\n",
        b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello",
        b"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    ];
    let mut rng = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let mut h = harness();
    for i in 0..3000 {
        let mut wire = seeds[i % seeds.len()].to_vec();
        for _ in 0..1 + next() % 4 {
            if wire.is_empty() {
                break;
            }
            let at = (next() as usize) % wire.len();
            match next() % 4 {
                0 => wire[at] = next() as u8,
                1 => {
                    wire.remove(at);
                }
                2 => wire.insert(at, b"\r\n:; 0aZ\t,\x00\xff"[(next() % 12) as usize]),
                _ => wire.truncate(at.max(1)),
            }
        }
        let c = h.open();
        let split = (next() as usize) % (wire.len() + 1);
        h.input(c, &wire[..split]);
        h.input(c, &wire[split..]);
        h.advance(Duration::from_secs(11)); // any partial head now times out
        assert!(h.is_closing(c) || h.unconsumed(c) < 8 * 1024 + 1024 * 1024);
        h.take_output(c);
        h.close(c, crate::service::CloseReason::PeerClosed);
    }
}
