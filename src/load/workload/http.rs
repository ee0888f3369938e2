//! HTTP/1.1: `GET /` over keep-alive connections; each reply is framed by its
//! `Content-Length` (RFC 9112 §6.3) and its body checked.
//!
//! Requests are pipelined when `--depth` is above 1 (RFC 9112 §9.3.2 lets a client do so;
//! replies come back in request order), so a reply answers the oldest request in flight
//! ([`Answer::Oldest`]). Only what a plain origin server needs is understood: a status line,
//! headers, and a `Content-Length` body. A reply framed any other way (chunked, or until
//! close) is a mismatch: the load generator cannot tell where it ends, so it cannot be fair.

use super::{Answer, Verdict, Workload};

/// The body the project's HTTP service answers `GET /` with.
pub const HELLO: &[u8] = b"Hello, World!\n";

/// Largest header block accepted before calling the reply a mismatch.
const MAX_HEAD: usize = 16 * 1024;

/// The HTTP workload.
#[derive(Debug, Clone)]
pub struct HttpLoad {
    request: Vec<u8>,
    expect_body: Vec<u8>,
}

impl HttpLoad {
    /// `GET /` for `host`, expecting [`HELLO`].
    pub fn new(host: &str) -> Self {
        let request =
            format!("GET / HTTP/1.1\r\nHost: {host}\r\nUser-Agent: reactor-load\r\n\r\n").into_bytes();
        HttpLoad { request, expect_body: HELLO.to_vec() }
    }
}

impl Workload for HttpLoad {
    fn name(&self) -> &'static str {
        "http"
    }

    fn encode(&mut self, _conn: usize, _k: u64, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.request);
    }

    fn parse(&mut self, _conn: usize, input: &[u8]) -> Verdict {
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
        let mut length = None;
        for line in lines {
            let Some((name, value)) = line.split_once(':') else {
                return Verdict::Mismatch(format!("malformed header line {line:?}"));
            };
            if name.eq_ignore_ascii_case("content-length") {
                match value.trim().parse::<usize>() {
                    Ok(n) => length = Some(n),
                    Err(_) => return Verdict::Mismatch(format!("bad Content-Length {value:?}")),
                }
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                return Verdict::Mismatch("Transfer-Encoding is not supported; send Content-Length".into());
            }
        }
        let Some(length) = length else {
            return Verdict::Mismatch(format!("reply {status} has no Content-Length"));
        };
        let body_start = head_end + 4;
        let Some(len) = body_start.checked_add(length) else {
            return Verdict::Mismatch("Content-Length overflows".into());
        };
        if input.len() < len {
            return Verdict::Incomplete;
        }
        if !(200..300).contains(&status) {
            return Verdict::Refused { len, answers: Answer::Oldest, why: status_line.to_string() };
        }
        let body = &input[body_start..len];
        if body != self.expect_body.as_slice() {
            return Verdict::Mismatch(format!(
                "body {:?}, expected {:?}",
                String::from_utf8_lossy(body),
                HELLO
            ));
        }
        Verdict::Ok { len, answers: Answer::Oldest }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_by_content_length_and_checks_the_body() {
        let mut w = HttpLoad::new("127.0.0.1:8080");
        let reply = b"HTTP/1.1 200 OK\r\nContent-Length: 14\r\n\r\nHello, World!\n";
        assert_eq!(w.parse(0, &reply[..reply.len() - 1]), Verdict::Incomplete);
        assert_eq!(w.parse(0, reply), Verdict::Ok { len: reply.len(), answers: Answer::Oldest });
        let missing = b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n";
        assert!(matches!(w.parse(0, missing), Verdict::Refused { len: 45, .. }));
        let wrong = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nhey";
        assert!(matches!(w.parse(0, wrong), Verdict::Mismatch(_)));
    }
}
