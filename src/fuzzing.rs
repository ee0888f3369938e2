//! What must hold for any input to any service, whatever pieces it arrives in — one
//! definition shared by three callers:
//!
//! * the `cargo fuzz` targets in `fuzz/fuzz_targets/` (nightly, libFuzzer chooses the bytes),
//! * their stable replay, `tests/fuzz_corpus.rs` (every file of `fuzz/corpus/<target>/`),
//! * the property tests, `tests/properties.rs` (proptest generates valid streams and splits).
//!
//! A peer decides where its bytes are cut: TCP delivers a stream, and one `read` may return a
//! request and a half, or one byte. [`check`] feeds a stream to a service through
//! [`Harness`] twice — once whole, once in the given read sizes — and asserts:
//!
//! 1. **No panic**, whatever the bytes.
//! 2. **Bounded input.** After every read, the unconsumed tail the reactor would keep is at
//!    most [`Service::max_input`], unless the service has asked to close.
//! 3. **Splits do not matter.** If the stream read whole leaves the connection open (it held
//!    no error), the split run stays open too and writes exactly the same bytes, to every
//!    connection. When the whole stream *is* an error, a split run may legitimately answer at
//!    a different moment (HTTP parses a head lazily), so only 1 and 2 are checked.
//!
//! Both runs share one clock (so kv's `TIME` and `EXPIRETIME` agree). Two differences are
//! normalised before comparing: HTTP's `Date` value and HTTP's interim `100 Continue`, which
//! RFC 9110 §10.1.1 sends only when the body has not arrived yet — that is, depending on
//! where the read ended.
//!
//! The services run with small limits ([`http_config`], [`kv_config`], [`chat_config`]) so
//! that short inputs reach every limit.
//!
//! Not part of the public API: hidden from the docs, free to change with the tests.

use std::time::{Instant, SystemTime};

use crate::service::Service;
use crate::service::chat::{Chat, ChatConfig};
use crate::service::echo::Echo;
use crate::service::http::{Http, HttpConfig};
use crate::service::kv::{Kv, KvConfig};
use crate::service::testing::Harness;

/// A service input path that is fuzzed: one `cargo fuzz` target and one corpus folder each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// TCP echo.
    Echo,
    /// The chat room (one speaker and one member who listens).
    Chat,
    /// HTTP/1.1.
    Http,
    /// The RESP2 key-value store.
    Kv,
}

impl Target {
    /// Every target, in the order the corpus replay runs them.
    pub const ALL: [Target; 4] = [Target::Echo, Target::Chat, Target::Http, Target::Kv];

    /// The name of the fuzz target and of its corpus folder, `fuzz/corpus/<name>/`.
    pub fn name(self) -> &'static str {
        match self {
            Target::Echo => "echo",
            Target::Chat => "chat",
            Target::Http => "http",
            Target::Kv => "kv",
        }
    }
}

/// HTTP with a 512-byte head and a 1 KiB body limit.
pub fn http_config() -> HttpConfig {
    HttpConfig { max_head: 512, max_body: 1024, ..HttpConfig::default() }
}

/// kv with 256-byte bulk strings, 1 KiB requests and 16 arguments at most.
pub fn kv_config() -> KvConfig {
    KvConfig { max_bulk: 256, max_query: 1024, max_args: 16, ..KvConfig::default() }
}

/// Chat with 128-byte lines.
pub fn chat_config() -> ChatConfig {
    ChatConfig { max_line: 128, max_members: None }
}

/// Cuts raw fuzz input into read sizes and a stream. The first byte, modulo 16, says how many
/// of the following bytes are read sizes (each 1–256); everything after them is the stream.
/// Zero sizes means "one byte per read". The fuzzer thus controls the splits as directly as
/// the bytes, and every input is valid.
pub fn split_input(data: &[u8]) -> (Vec<usize>, &[u8]) {
    let Some((&first, rest)) = data.split_first() else {
        return (Vec::new(), data);
    };
    let n = usize::from(first % 16).min(rest.len());
    let (sizes, stream) = rest.split_at(n);
    (sizes.iter().map(|&b| usize::from(b) + 1).collect(), stream)
}

/// The fuzz entry point: [`split_input`], then [`check`].
pub fn run(target: Target, data: &[u8]) {
    let (sizes, stream) = split_input(data);
    check(target, stream, &sizes);
}

/// Feeds `stream` to `target` whole and in reads of `sizes` (cycled; empty means one byte per
/// read), asserts the properties in the module docs, and returns whether the whole-stream run
/// left the connection open (callers that generate valid streams assert it did).
pub fn check(target: Target, stream: &[u8], sizes: &[usize]) -> bool {
    match target {
        Target::Echo => {
            let open = compare(|| Echo, 1, stream, sizes, |b| b);
            let whole = drive(Echo, (Instant::now(), SystemTime::now()), 1, std::iter::once(stream));
            assert_eq!(whole.outputs[0], stream, "echo changed the bytes");
            open
        }
        // Two connections: what the speaker types reaches the other member.
        Target::Chat => compare(|| Chat::new(chat_config()), 2, stream, sizes, |b| b),
        Target::Http => compare(|| Http::new(http_config()), 1, stream, sizes, normalise_http),
        Target::Kv => compare(|| Kv::new(kv_config()), 1, stream, sizes, |b| b),
    }
}

/// What one run produced: each connection's output, and whether the speaker is closing.
struct Run {
    outputs: Vec<Vec<u8>>,
    closing: bool,
}

fn compare<S: Service>(
    make: impl Fn() -> S,
    conns: usize,
    stream: &[u8],
    sizes: &[usize],
    normalise: fn(Vec<u8>) -> Vec<u8>,
) -> bool {
    // One clock for both runs, so that replies that tell the time agree.
    let clock = (Instant::now(), SystemTime::now());
    let whole = drive(make(), clock, conns, std::iter::once(stream));
    let split = drive(make(), clock, conns, Reads { rest: stream, sizes, next: 0 });
    if !whole.closing {
        assert!(!split.closing, "the split stream closed the connection, the whole one did not");
        for (i, (w, s)) in whole.outputs.into_iter().zip(split.outputs).enumerate() {
            let (w, s) = (normalise(w), normalise(s));
            assert!(
                w == s,
                "connection {i}: output differs when split\nwhole: {:?}\nsplit: {:?}",
                String::from_utf8_lossy(&w),
                String::from_utf8_lossy(&s)
            );
        }
    }
    !whole.closing
}

/// Opens `conns` connections, sends every read on the first, and checks the input bound
/// after each.
fn drive<'a, S: Service>(
    service: S,
    (now, wall): (Instant, SystemTime),
    conns: usize,
    reads: impl Iterator<Item = &'a [u8]>,
) -> Run {
    let mut h = Harness::with_clock(service, now, wall);
    let ids: Vec<_> = (0..conns.max(1)).map(|_| h.open()).collect();
    let speaker = ids[0];
    for read in reads {
        h.input(speaker, read);
        let held = h.unconsumed(speaker);
        let limit = h.service.max_input();
        assert!(
            h.is_closing(speaker) || held <= limit,
            "{held} bytes of unconsumed input, more than the service's limit of {limit}"
        );
    }
    Run { closing: h.is_closing(speaker), outputs: ids.iter().map(|&id| h.take_output(id)).collect() }
}

/// The stream in reads of the given sizes, cycled.
struct Reads<'a> {
    rest: &'a [u8],
    sizes: &'a [usize],
    next: usize,
}

impl<'a> Iterator for Reads<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        if self.rest.is_empty() {
            return None;
        }
        let size = if self.sizes.is_empty() { 1 } else { self.sizes[self.next % self.sizes.len()].max(1) };
        self.next += 1;
        let (read, rest) = self.rest.split_at(size.min(self.rest.len()));
        self.rest = rest;
        Some(read)
    }
}

/// Drops interim `100 Continue` responses and blanks every `Date` value.
fn normalise_http(bytes: Vec<u8>) -> Vec<u8> {
    const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";
    const DATE: &[u8] = b"\r\nDate: ";
    const DATE_LEN: usize = "Sun, 06 Nov 1994 08:49:37 GMT".len();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let rest = &bytes[i..];
        if rest.starts_with(CONTINUE) {
            i += CONTINUE.len();
        } else if rest.starts_with(DATE) && rest.len() >= DATE.len() + DATE_LEN {
            out.extend_from_slice(DATE);
            out.extend(std::iter::repeat_n(b'X', DATE_LEN));
            i += DATE.len() + DATE_LEN;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_input_takes_sizes_from_the_front() {
        assert_eq!(split_input(b""), (vec![], &b""[..]));
        assert_eq!(split_input(b"\x02\x00\x09hello"), (vec![1, 10], &b"hello"[..]));
        // A count beyond the data takes what there is.
        assert_eq!(split_input(b"\x0f\x01"), (vec![2], &b""[..]));
    }

    #[test]
    fn reads_cycle_through_the_sizes() {
        let reads: Vec<&[u8]> = Reads { rest: b"abcdefg", sizes: &[1, 2], next: 0 }.collect();
        assert_eq!(reads, [&b"a"[..], b"bc", b"d", b"ef", b"g"]);
    }

    #[test]
    fn http_normalisation_ignores_date_and_interim_responses() {
        let a =
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\n\r\n";
        let b = b"HTTP/1.1 200 OK\r\nDate: Mon, 07 Nov 1994 08:49:38 GMT\r\n\r\n";
        assert_eq!(normalise_http(a.to_vec()), normalise_http(b.to_vec()));
    }
}
