//! Decoding a chunked request body (RFC 9112 §7.1), incrementally.
//!
//! This sits between the head parser and the routes: once a head says
//! `Transfer-Encoding: chunked`, every byte the reactor delivers goes through
//! [`ChunkedDecoder::decode`] until the last chunk and its trailer section are through. The
//! decoder *consumes* what it decodes, copying chunk data into a body buffer, so a chunked body
//! never has to sit whole in the reactor's input buffer and the wire overhead of chunking does
//! not count against any limit but the body's own.
//!
//! ```text
//!   chunked-body = *chunk last-chunk trailer-section CRLF
//!   chunk        = chunk-size [ chunk-ext ] CRLF chunk-data CRLF
//!   last-chunk   = 1*("0") [ chunk-ext ] CRLF
//! ```
//!
//! Unlike a head, the framing lines of a chunked body must end in CRLF: accepting a bare LF
//! here is how some proxy/server pairs came to disagree about where a body ends (request
//! smuggling), and the RFC's leniency for bare LF (§2.2) covers the start line and fields only.

use super::response::Status;

/// Longest chunk-size line (size, extensions, CRLF) we wait for, unless the head limit is
/// smaller (see [`ChunkedDecoder::decode`]). Extensions carry nothing we use; a longer line is
/// an attack or a mistake, either way a 400.
const MAX_CHUNK_LINE: usize = 4 * 1024;

/// Where the decoder is within the chunked body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    /// Expecting `chunk-size [ chunk-ext ] CRLF`.
    Size,
    /// Inside chunk data, with this many bytes of it still to come.
    Data { left: usize },
    /// Expecting the CRLF that closes a chunk's data.
    DataEnd,
    /// After the last chunk: trailer field lines until an empty line.
    Trailers,
}

/// The decoder's state, kept in the connection's session between reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct ChunkedDecoder {
    part: Part,
    /// Bytes of trailer section seen so far; trailers are limited like a head.
    trailer_bytes: usize,
}

/// How far a call to [`ChunkedDecoder::decode`] got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Progress {
    /// Used this many bytes; the body continues in bytes not yet received.
    More(usize),
    /// Used this many bytes, and the body (trailers included) is complete.
    Done(usize),
}

impl ChunkedDecoder {
    pub(super) fn new() -> Self {
        ChunkedDecoder { part: Part::Size, trailer_bytes: 0 }
    }

    /// Decodes from the front of `input`, appending chunk data to `body`.
    ///
    /// A body growing past `max_body` is 413; trailers past `max_trailers` are 431 (they are
    /// header fields, just late ones); broken framing is 400. A chunk-size line may be as long
    /// as [`MAX_CHUNK_LINE`] or `max_trailers` (the head limit), whichever is less: the
    /// unfinished line is input the service holds unconsumed, and that must stay within the
    /// service's `max_input` (head + body) even when the limits are configured small. The
    /// fuzzer found the case: a 1.5 KiB line held against a 1.5 KiB `max_input`.
    pub(super) fn decode(
        &mut self,
        input: &[u8],
        body: &mut Vec<u8>,
        max_body: usize,
        max_trailers: usize,
    ) -> Result<Progress, Status> {
        let mut at = 0;
        loop {
            let rest = &input[at..];
            match self.part {
                Part::Size => {
                    let longest = MAX_CHUNK_LINE.min(max_trailers);
                    let Some(line) = crlf_line(rest, longest, Status::BadRequest)? else {
                        return Ok(Progress::More(at));
                    };
                    at += line.len() + 2;
                    let size = chunk_size(line)?;
                    if size == 0 {
                        self.part = Part::Trailers;
                    } else if size > max_body.saturating_sub(body.len()) {
                        return Err(Status::ContentTooLarge);
                    } else {
                        self.part = Part::Data { left: size };
                    }
                }
                Part::Data { left } => {
                    if rest.is_empty() {
                        return Ok(Progress::More(at));
                    }
                    let n = left.min(rest.len());
                    body.extend_from_slice(&rest[..n]);
                    at += n;
                    self.part = if n == left { Part::DataEnd } else { Part::Data { left: left - n } };
                }
                Part::DataEnd => match rest {
                    [b'\r', b'\n', ..] => {
                        at += 2;
                        self.part = Part::Size;
                    }
                    [] | [b'\r'] => return Ok(Progress::More(at)),
                    _ => return Err(Status::BadRequest),
                },
                Part::Trailers => {
                    let room = max_trailers.saturating_sub(self.trailer_bytes);
                    let Some(line) = crlf_line(rest, room, Status::FieldsTooLarge)? else {
                        return Ok(Progress::More(at));
                    };
                    at += line.len() + 2;
                    self.trailer_bytes += line.len() + 2;
                    if line.is_empty() {
                        return Ok(Progress::Done(at));
                    }
                    // RFC 9112 §7.1.2: a recipient may discard trailer fields it does not
                    // need (we need none), but each must still be a field line.
                    if !is_field_line(line) {
                        return Err(Status::BadRequest);
                    }
                }
            }
        }
    }
}

/// The line at the front of `buf`, without its CRLF; `None` if it has not all arrived.
/// A line longer than `max` (CRLF included) is `too_long`; one ended by a bare LF is 400.
fn crlf_line(buf: &[u8], max: usize, too_long: Status) -> Result<Option<&[u8]>, Status> {
    match buf.iter().position(|&b| b == b'\n') {
        Some(nl) if nl + 1 > max => Err(too_long),
        Some(0) => Err(Status::BadRequest),
        Some(nl) if buf[nl - 1] == b'\r' => Ok(Some(&buf[..nl - 1])),
        Some(_) => Err(Status::BadRequest),
        None if buf.len() >= max => Err(too_long),
        None => Ok(None),
    }
}

/// Parses `chunk-size [ chunk-ext ]` (RFC 9112 §7.1, §7.1.1): hex digits, then optional
/// extensions, which we check for stray control bytes and otherwise ignore, as a recipient
/// MUST ignore extensions it does not understand.
fn chunk_size(line: &[u8]) -> Result<usize, Status> {
    let digits = line.iter().take_while(|b| b.is_ascii_hexdigit()).count();
    if digits == 0 {
        return Err(Status::BadRequest);
    }
    let size = line[..digits]
        .iter()
        .try_fold(0usize, |n, &d| {
            let v = (d as char).to_digit(16)? as usize;
            n.checked_mul(16)?.checked_add(v)
        })
        // More digits than a usize holds is certainly more than max_body.
        .ok_or(Status::ContentTooLarge)?;
    // chunk-ext = *( BWS ";" BWS chunk-ext-name [ BWS "=" BWS chunk-ext-val ] ): whitespace
    // after the digits only ever comes before a `;`. (`5 ` alone is refused: a front end
    // that reads it differently from us is how requests get smuggled.)
    let after = &line[digits..];
    let ext = &after[after.iter().take_while(|&&b| b == b' ' || b == b'\t').count()..];
    let printable = |b: &u8| *b == b'\t' || (b' '..=b'~').contains(b) || *b >= 0x80;
    if !(after.is_empty() || ext.first() == Some(&b';') && ext.iter().all(printable)) {
        return Err(Status::BadRequest);
    }
    Ok(size)
}

/// `field-name ":" field-value` with a token for a name (RFC 9110 §5.1, §5.5); the value is
/// only checked for control bytes, as it is discarded.
fn is_field_line(line: &[u8]) -> bool {
    let Some(colon) = line.iter().position(|&b| b == b':') else {
        return false;
    };
    let tchar = |b: &u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(b);
    let value_ok = |b: &u8| *b == b'\t' || (b' '..=b'~').contains(b) || *b >= 0x80;
    colon > 0 && line[..colon].iter().all(tchar) && line[colon + 1..].iter().all(value_ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(wire: &[u8]) -> Result<(Progress, Vec<u8>), Status> {
        let mut body = Vec::new();
        let p = ChunkedDecoder::new().decode(wire, &mut body, 1024, 1024)?;
        Ok((p, body))
    }

    #[test]
    fn decodes_chunks_extensions_and_trailers() {
        let wire = b"5;name=value\r\nhello\r\n6 ; x\r\n world\r\n0\r\nX-Sum: 1\r\n\r\nNEXT";
        let (p, body) = decode_all(wire).unwrap();
        assert_eq!(p, Progress::Done(wire.len() - 4));
        assert_eq!(body, b"hello world");
    }

    #[test]
    fn waits_for_more_and_resumes_at_any_split() {
        let wire = b"3\r\nabc\r\n10\r\n0123456789abcdef\r\n0\r\n\r\n";
        for split in 0..wire.len() {
            let mut d = ChunkedDecoder::new();
            let mut body = Vec::new();
            let first = match d.decode(&wire[..split], &mut body, 1024, 1024).unwrap() {
                Progress::More(n) => n,
                Progress::Done(_) => panic!("done early at {split}"),
            };
            let p = d.decode(&wire[first..], &mut body, 1024, 1024).unwrap();
            assert_eq!(p, Progress::Done(wire.len() - first), "split {split}");
            assert_eq!(body, b"abc0123456789abcdef");
        }
    }

    #[test]
    fn a_small_head_limit_bounds_the_chunk_line_too() {
        // With a 100-byte head limit, an unfinished 200-byte size line is refused at once
        // instead of being held (the fuzzer's case); a 50-byte one is waited for.
        let line = [b'0'; 200];
        let mut d = ChunkedDecoder::new();
        assert_eq!(d.decode(&line, &mut Vec::new(), 1024, 100), Err(Status::BadRequest));
        let mut d = ChunkedDecoder::new();
        assert_eq!(d.decode(&line[..50], &mut Vec::new(), 1024, 100), Ok(Progress::More(0)));
    }

    #[test]
    fn rejects_bad_framing_and_limits() {
        assert_eq!(decode_all(b"x\r\n"), Err(Status::BadRequest));
        assert_eq!(decode_all(b"3\nabc\r\n"), Err(Status::BadRequest));
        assert_eq!(decode_all(b"3\r\nabcX\r\n"), Err(Status::BadRequest));
        assert_eq!(decode_all(b"3 junk\r\n"), Err(Status::BadRequest));
        assert_eq!(decode_all(b"401\r\n"), Err(Status::ContentTooLarge));
        assert_eq!(decode_all(b"fffffffffffffffffffffff\r\n"), Err(Status::ContentTooLarge));
        assert_eq!(decode_all(b"0\r\nno colon\r\n\r\n"), Err(Status::BadRequest));
        let long_trailer = [b"0\r\nX: ".as_slice(), &[b'a'; 2000], b"\r\n\r\n"].concat();
        assert_eq!(decode_all(&long_trailer), Err(Status::FieldsTooLarge));
    }
}
