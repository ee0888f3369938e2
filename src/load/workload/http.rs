//! HTTP/1.1: `GET /` (or `--path`) over keep-alive connections; each reply is framed by its
//! `Content-Length` or chunked coding (RFC 9112 §6.3), and its body checked: for `/`, the
//! project's benchmark route, it must be [`HELLO`]; for another path, whose content we cannot
//! know, the framing must hold and the status be 2xx.
//!
//! With `--post`, each request carries a body of `--size` bytes, made as echo's messages are
//! (a tag naming the connection and the request, then a pattern computed from it:
//! [`super::echo`]). To `/echo`, the project's echo route, the reply's body must be that
//! message, byte for byte, and it names the request it answers ([`Answer::Request`]), so a
//! reply to the wrong request is caught as well as a corrupt one.
//!
//! Requests are pipelined when `--depth` is above 1 (RFC 9112 §9.3.2 lets a client do so;
//! replies come back in request order), so a reply answers the oldest request in flight
//! ([`Answer::Oldest`]). A reply body is framed by `Content-Length` or by chunked transfer
//! coding (RFC 9112 §7.1: the chunks are joined before the body is checked). A 2xx reply
//! framed by the connection's close is a mismatch: its end, and so its body, cannot be known
//! while the connection lives. A non-2xx reply framed so (an overloaded server's `503` with
//! `Connection: close`) is waited out: the server's close then ends the connection, which is
//! counted as a read error, not as a wrong reply. A reply that announces the close
//! (`Connection: close`, or HTTP/1.0 without `Connection: keep-alive`) makes the generator
//! close and reopen the connection itself, so the close is no error.

use super::{Answer, Verdict, Workload};

/// The body the project's HTTP service answers `GET /` with.
pub const HELLO: &[u8] = b"Hello, World!\n";

/// Largest header block accepted before calling the reply a mismatch.
const MAX_HEAD: usize = 16 * 1024;

/// Largest reply body accepted (`Content-Length`, chunked, or until close) before calling
/// the reply a mismatch: the body is held in memory until it is whole. A `POST`'s reply may
/// be as large as its body (`/echo` sends it back), which `--size` bounds instead.
const MAX_BODY: usize = 16 * 1024 * 1024;

/// The HTTP workload.
#[derive(Debug, Clone)]
pub struct HttpLoad {
    /// A `GET`'s whole request; a `POST`'s head, up to its body.
    request: Vec<u8>,
    /// The body every reply must carry (`None`: any body, if it is framed right).
    expect_body: Option<Vec<u8>>,
    /// `POST`: the size of each request's body.
    post: Option<usize>,
    /// `POST /echo`: each reply's body must be its request's (see the module docs).
    echoed: bool,
    /// Largest reply body accepted: [`MAX_BODY`], or a `POST`'s body size if larger.
    max_body: usize,
    /// Connections whose last reply announced the close: `Connection: close`, or an HTTP/1.0
    /// reply without `Connection: keep-alive` (RFC 9112 §9.3).
    closing: std::collections::BTreeSet<usize>,
}

impl HttpLoad {
    /// `GET path` for `host`, expecting [`HELLO`] when the path is `/`. The path must be a
    /// valid origin-form target (see [`valid_path`]).
    pub fn new(host: &str, path: &str) -> Self {
        let request =
            format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: reactor-load\r\n\r\n").into_bytes();
        let expect_body = (path == "/").then(|| HELLO.to_vec());
        HttpLoad {
            request,
            expect_body,
            post: None,
            echoed: false,
            max_body: MAX_BODY,
            closing: Default::default(),
        }
    }

    /// `POST path` for `host`, each with a body of `size` bytes (at least
    /// [`super::echo::TAG_LEN`]; smaller sizes are raised to it), which `/echo` must send back.
    pub fn post(host: &str, path: &str, size: usize) -> Self {
        let size = size.max(super::echo::TAG_LEN);
        let request = format!(
            "POST {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: reactor-load\r\n\
             Content-Type: application/octet-stream\r\nContent-Length: {size}\r\n\r\n"
        )
        .into_bytes();
        HttpLoad {
            request,
            expect_body: None,
            post: Some(size),
            echoed: path == "/echo",
            max_body: MAX_BODY.max(size),
            closing: Default::default(),
        }
    }
}

impl Workload for HttpLoad {
    fn name(&self) -> &'static str {
        "http"
    }

    fn encode(&mut self, conn: usize, k: u64, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.request);
        if let Some(size) = self.post {
            super::echo::message(conn, k, size, out);
        }
    }

    fn take_close(&mut self, conn: usize) -> bool {
        self.closing.remove(&conn)
    }

    fn parse(&mut self, conn: usize, input: &[u8]) -> Verdict {
        let Some(head_end) = input.windows(4).position(|w| w == b"\r\n\r\n") else {
            if input.len() > MAX_HEAD {
                return Verdict::Mismatch(format!("no end of headers in {MAX_HEAD} bytes"));
            }
            return Verdict::Incomplete;
        };
        let Ok(head) = std::str::from_utf8(&input[..head_end]) else {
            return Verdict::Mismatch("reply headers are not UTF-8".into());
        };
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap_or("");
        let mut parts = status_line.splitn(3, ' ');
        let (version, code) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
        let Some(status) = code.parse::<u16>().ok().filter(|_| version.starts_with("HTTP/1.")) else {
            return Verdict::Mismatch(format!("not an HTTP/1.x status line: {status_line:?}"));
        };
        // An interim response (`100 Continue`, `103 Early Hints`) comes before the real one and
        // has no body (RFC 9110 §15.2): skip it. (Not `101`, which would switch protocols: a
        // GET never asked for that, and it is waited out as any other refusal without a length.)
        if (100..200).contains(&status) && status != 101 {
            return Verdict::Skip(head_end + 4);
        }
        let mut length = None;
        let mut chunked = false;
        // HTTP/1.0 closes after each reply unless it says otherwise (RFC 9112 §9.3), as a
        // simple server (Python's http.server) does: announced, so not a read error.
        let mut close = false;
        let mut keep_alive = false;
        for line in lines {
            let Some((name, value)) = line.split_once(':') else {
                return Verdict::Mismatch(format!("malformed header line {line:?}"));
            };
            if name.eq_ignore_ascii_case("content-length") {
                match value.trim().parse::<usize>() {
                    Ok(n) if n <= self.max_body => length = Some(n),
                    _ => return Verdict::Mismatch(format!("bad or too large Content-Length {value:?}")),
                }
            } else if name.eq_ignore_ascii_case("connection") {
                for token in value.split(',').map(str::trim) {
                    close |= token.eq_ignore_ascii_case("close");
                    keep_alive |= token.eq_ignore_ascii_case("keep-alive");
                }
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                // Chunked must be the last coding (RFC 9112 §6.3); anything else is not ours to
                // decode, and would leave the body's end unknown.
                let last = value.rsplit(',').next().unwrap_or("").trim();
                if !last.eq_ignore_ascii_case("chunked") {
                    return Verdict::Mismatch(format!(
                        "Transfer-Encoding {value:?}: the body's end is unknown"
                    ));
                }
                chunked = true;
            }
        }
        close |= version == "HTTP/1.0" && !keep_alive;
        let body_start = head_end + 4;
        let joined;
        // RFC 9112 §6.3: 204 and 304 end at their head, whatever length they declare.
        let (len, body) = if status == 204 || status == 304 {
            (body_start, &input[body_start..body_start])
        } else if chunked {
            match dechunk(&input[body_start..], self.max_body) {
                Ok(Some((used, body))) => {
                    joined = body;
                    (body_start + used, joined.as_slice())
                }
                Ok(None) => return Verdict::Incomplete,
                Err(what) => return Verdict::Mismatch(what),
            }
        } else if let Some(length) = length {
            let len = body_start + length;
            if input.len() < len {
                return Verdict::Incomplete;
            }
            (len, &input[body_start..len])
        } else if !(200..300).contains(&status) && input.len() - body_start <= self.max_body {
            return Verdict::Incomplete; // framed by the close that will follow; see the module docs
        } else {
            return Verdict::Mismatch(format!(
                "reply {status} has neither Content-Length nor chunked coding"
            ));
        };
        if close {
            self.closing.insert(conn);
        }
        if !(200..300).contains(&status) {
            return Verdict::Refused { len, answers: Answer::Oldest, why: status_line.to_string() };
        }
        if let Some(size) = self.post.filter(|_| self.echoed) {
            return match super::echo::check(body, size) {
                Ok((conn, k)) => Verdict::Ok { len, answers: Answer::Request { conn, k } },
                Err(what) => Verdict::Mismatch(format!("POST /echo answered a body of {what}")),
            };
        }
        if let Some(expected) = &self.expect_body
            && body != expected.as_slice()
        {
            return Verdict::Mismatch(format!(
                "body {:?}, expected {:?}",
                String::from_utf8_lossy(body),
                String::from_utf8_lossy(expected)
            ));
        }
        Verdict::Ok { len, answers: Answer::Oldest }
    }
}

/// Whether `path` can be sent as an origin-form request target (RFC 9112 §3.2.1): it starts
/// with `/` and holds only visible ASCII (no space or control byte could end the request line
/// early or smuggle a header in), at most 8 KiB.
pub fn valid_path(path: &str) -> bool {
    path.starts_with('/') && path.len() <= 8 * 1024 && path.bytes().all(|b| b.is_ascii_graphic())
}

/// Decodes a chunked body at the front of `input`: `Some((bytes used, the joined chunks))`
/// once the last chunk and the trailer section have arrived, `None` while they have not. The
/// joined chunks may hold at most `max_body` bytes.
fn dechunk(input: &[u8], max_body: usize) -> Result<Option<(usize, Vec<u8>)>, String> {
    // Bounds what is buffered, not only what is decoded: long chunk extensions, many tiny
    // chunks or endless trailers must not grow the input without end either.
    if input.len() > max_body + MAX_HEAD {
        return Err(format!("a chunked body over {} bytes on the wire", max_body + MAX_HEAD));
    }
    // The chunks are only located until the last one is in (no copy): this runs again on
    // every read of a reply still arriving, so copying each time would be quadratic in the
    // body's size. They are joined once, when the body is whole.
    let mut pos = 0;
    let mut chunks = Vec::new();
    let mut total = 0usize;
    loop {
        let Some(line_len) = input[pos..].windows(2).position(|w| w == b"\r\n") else {
            return if input.len() - pos > 1024 { Err("chunk-size line too long".into()) } else { Ok(None) };
        };
        let line = &input[pos..pos + line_len];
        // The size, then optional `;extensions`.
        let digits = line.split(|&b| b == b';').next().unwrap_or_default();
        let size = std::str::from_utf8(digits)
            .ok()
            .and_then(|d| usize::from_str_radix(d.trim(), 16).ok())
            .ok_or_else(|| format!("bad chunk-size line {:?}", String::from_utf8_lossy(line)))?;
        pos += line_len + 2;
        if size == 0 {
            // Trailer fields, then an empty line.
            loop {
                let Some(end) = input[pos..].windows(2).position(|w| w == b"\r\n") else {
                    return if input.len() - pos > MAX_HEAD {
                        Err("trailers too long".into())
                    } else {
                        Ok(None)
                    };
                };
                pos += end + 2;
                if end == 0 {
                    let mut body = Vec::with_capacity(total);
                    for (start, len) in chunks {
                        body.extend_from_slice(&input[start..start + len]);
                    }
                    return Ok(Some((pos, body)));
                }
            }
        }
        total = match total.checked_add(size) {
            Some(total) if total <= max_body => total,
            _ => return Err(format!("chunked body over {max_body} bytes")),
        };
        if input.len() < pos + size + 2 {
            return Ok(None);
        }
        if &input[pos + size..pos + size + 2] != b"\r\n" {
            return Err("chunk data not followed by CRLF".into());
        }
        chunks.push((pos, size));
        pos += size + 2;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_by_content_length_and_checks_the_body() {
        let mut w = HttpLoad::new("127.0.0.1:8080", "/");
        let reply = b"HTTP/1.1 200 OK\r\nContent-Length: 14\r\n\r\nHello, World!\n";
        assert_eq!(w.parse(0, &reply[..reply.len() - 1]), Verdict::Incomplete);
        assert_eq!(w.parse(0, reply), Verdict::Ok { len: reply.len(), answers: Answer::Oldest });
        let missing = b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n";
        assert!(matches!(w.parse(0, missing), Verdict::Refused { len: 45, .. }));
        let wrong = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nhey";
        assert!(matches!(w.parse(0, wrong), Verdict::Mismatch(_)));
    }

    #[test]
    fn an_http_1_0_reply_closes_unless_it_keeps_alive() {
        let mut w = HttpLoad::new("h", "/");
        let plain = b"HTTP/1.0 200 OK\r\nContent-Length: 14\r\n\r\nHello, World!\n";
        assert!(matches!(w.parse(0, plain), Verdict::Ok { .. }));
        assert!(w.take_close(0), "HTTP/1.0 without keep-alive announces the close");
        let kept = b"HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 14\r\n\r\nHello, World!\n";
        assert!(matches!(w.parse(1, kept), Verdict::Ok { .. }));
        assert!(!w.take_close(1));
        let eleven = b"HTTP/1.1 200 OK\r\nContent-Length: 14\r\n\r\nHello, World!\n";
        assert!(matches!(w.parse(2, eleven), Verdict::Ok { .. }));
        assert!(!w.take_close(2), "HTTP/1.1 keeps the connection by default");
    }

    #[test]
    fn interim_responses_are_skipped_and_304_has_no_body() {
        let mut w = HttpLoad::new("127.0.0.1:8080", "/");
        let hints = b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n";
        assert_eq!(w.parse(0, hints), Verdict::Skip(hints.len()));
        let not_modified = b"HTTP/1.1 304 Not Modified\r\nContent-Length: 14\r\n\r\nHTTP/1.1 200";
        assert!(matches!(w.parse(0, not_modified), Verdict::Refused { len: 49, .. }));
    }

    #[test]
    fn a_chunked_body_is_joined_before_it_is_checked() {
        let mut w = HttpLoad::new("127.0.0.1:8080", "/");
        let reply = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n7;ext=1\r\nHello, \r\n7\r\nWorld!\n\r\n0\r\nX-T: 1\r\n\r\n";
        // Every cut before the last byte is incomplete, never wrong.
        for cut in 0..reply.len() {
            assert_eq!(w.parse(0, &reply[..cut]), Verdict::Incomplete, "cut at {cut}");
        }
        let mut two = reply.to_vec();
        two.extend_from_slice(reply);
        assert_eq!(w.parse(0, &two), Verdict::Ok { len: reply.len(), answers: Answer::Oldest });
        let wrong = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nhey\r\n0\r\n\r\n";
        assert!(matches!(w.parse(0, wrong), Verdict::Mismatch(_)));
        let huge = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\nffffffffffffffff\r\n";
        assert!(
            matches!(w.parse(0, huge), Verdict::Mismatch(_)),
            "a size that overflows is wrong, not a panic"
        );
        let garbled = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n";
        assert!(matches!(w.parse(0, garbled), Verdict::Mismatch(_)));
        let gzip = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n";
        assert!(matches!(w.parse(0, gzip), Verdict::Mismatch(_)));
        // A 503 with a chunked body is refused, not wrong.
        let busy = b"HTTP/1.1 503 Busy\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nbusy\r\n0\r\n\r\n";
        assert!(matches!(w.parse(0, busy), Verdict::Refused { len, .. } if len == busy.len()));
    }

    #[test]
    fn an_unframed_reply_is_waited_out_if_refused_and_wrong_if_a_success() {
        let mut w = HttpLoad::new("127.0.0.1:8080", "/");
        let busy = b"HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\n\r\nbusy";
        assert_eq!(w.parse(0, busy), Verdict::Incomplete);
        let ok = b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nHello, World!\n";
        assert!(matches!(w.parse(0, ok), Verdict::Mismatch(_)));
    }

    #[test]
    fn a_post_to_echo_must_get_its_own_body_back() {
        let mut w = HttpLoad::post("127.0.0.1:8080", "/echo", 40);
        let mut request = Vec::new();
        w.encode(2, 7, &mut request);
        let text = String::from_utf8_lossy(&request);
        assert!(
            text.starts_with("POST /echo HTTP/1.1\r\n") && text.contains("Content-Length: 40\r\n"),
            "{text}"
        );
        let head_end = request.windows(4).position(|x| x == b"\r\n\r\n").unwrap() + 4;
        let body = &request[head_end..];
        assert_eq!(body.len(), 40);

        let reply = |body: &[u8]| {
            let mut r = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len()).into_bytes();
            r.extend_from_slice(body);
            r
        };
        // Its own body names the request it answers.
        let ok = reply(body);
        assert_eq!(
            w.parse(2, &ok),
            Verdict::Ok { len: ok.len(), answers: Answer::Request { conn: 2, k: 7 } }
        );
        // One byte changed, or one missing: wrong.
        let mut flipped = body.to_vec();
        flipped[20] ^= 1;
        assert!(matches!(w.parse(2, &reply(&flipped)), Verdict::Mismatch(m) if m.contains("byte 20")));
        assert!(matches!(w.parse(2, &reply(&body[..39])), Verdict::Mismatch(m) if m.contains("39 bytes")));
        // Another request's body is a correct message: the loop, told which request it
        // answers, catches it if that one is not due (tests/load.rs).
        let mut other = Vec::new();
        super::super::echo::message(2, 8, 40, &mut other);
        let swapped = reply(&other);
        assert_eq!(
            w.parse(2, &swapped),
            Verdict::Ok { len: swapped.len(), answers: Answer::Request { conn: 2, k: 8 } }
        );

        // POST elsewhere: the body cannot be known, only the framing and the status.
        let mut elsewhere = HttpLoad::post("127.0.0.1:8080", "/upload", 40);
        let any = reply(b"stored");
        assert_eq!(elsewhere.parse(0, &any), Verdict::Ok { len: any.len(), answers: Answer::Oldest });
    }

    #[test]
    fn a_post_body_over_the_reply_limit_is_still_checked_when_echoed() {
        // `--size` is bounded by what the requests in flight hold, not by MAX_BODY: the echo of
        // a body the client was allowed to send must be judged, not refused as too large.
        let size = MAX_BODY + 1;
        let mut w = HttpLoad::post("127.0.0.1:8080", "/echo", size);
        let mut body = Vec::new();
        super::super::echo::message(0, 0, size, &mut body);
        let mut framed = format!("HTTP/1.1 200 OK\r\nContent-Length: {size}\r\n\r\n").into_bytes();
        framed.extend_from_slice(&body);
        let ok = Verdict::Ok { len: framed.len(), answers: Answer::Request { conn: 0, k: 0 } };
        assert_eq!(w.parse(0, &framed), ok);
        let mut chunked =
            format!("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n{size:x}\r\n").into_bytes();
        chunked.extend_from_slice(&body);
        chunked.extend_from_slice(b"\r\n0\r\n\r\n");
        let ok = Verdict::Ok { len: chunked.len(), answers: Answer::Request { conn: 0, k: 0 } };
        assert_eq!(w.parse(0, &chunked), ok);
        // Beyond what was sent, the limit holds as before.
        let mut get = HttpLoad::new("127.0.0.1:8080", "/");
        assert!(matches!(get.parse(0, &framed), Verdict::Mismatch(m) if m.contains("too large")));
    }
}
