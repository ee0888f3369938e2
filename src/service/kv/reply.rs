//! RESP reply encoders: the bytes that leave the key-value service. RESP2, plus the two RESP3
//! types a connection gets after `HELLO 3` ([`null`]'s `_` and [`map`]'s `%`).
//!
//! Every command ends here: it calls one of these functions with `cx.out()`, the reactor's
//! reply buffer, and the bytes are appended in place. Nothing is allocated per reply; numbers
//! are formatted into a stack buffer.
//!
//! The five RESP2 types, as the spec (<https://redis.io/docs/latest/develop/reference/protocol-spec/>)
//! names them:
//!
//! | type          | first byte | example                 |
//! |---------------|------------|-------------------------|
//! | simple string | `+`        | `+OK\r\n`               |
//! | error         | `-`        | `-ERR syntax error\r\n` |
//! | integer       | `:`        | `:42\r\n`               |
//! | bulk string   | `$`        | `$3\r\nfoo\r\n`, null: `$-1\r\n` |
//! | array         | `*`        | `*2\r\n…` (then two replies), null: `*-1\r\n` |

/// `+OK\r\n`, the most common reply of all.
pub const OK: &[u8] = b"+OK\r\n";
/// The null bulk string: RESP2's "no value" (a missing key, a SET NX that did not set).
pub const NULL: &[u8] = b"$-1\r\n";

/// A RESP3 map header, `%pairs\r\n`, then a key and a value reply per pair. Only sent on a
/// connection that asked for RESP3 (`HELLO 3`); RESP2 spells the same as a flat array.
pub fn map(out: &mut Vec<u8>, pairs: usize) {
    prefixed(out, b'%', pairs as i64);
}

/// A simple string: `+text\r\n`. `text` must not contain CR or LF (ours are all constants).
pub fn simple(out: &mut Vec<u8>, text: &str) {
    out.push(b'+');
    out.extend_from_slice(text.as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// An error reply with the generic `ERR` code: `-ERR message\r\n`.
pub fn err(out: &mut Vec<u8>, message: &str) {
    out.extend_from_slice(b"-ERR ");
    out.extend_from_slice(message.as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// An error reply whose text may contain peer bytes (an unknown command name, a bad option).
/// `text` must already start with its code (`ERR …`, `NOPROTO …`). CR and LF would end the
/// line early and desynchronise the client, so, as Redis's `addReplyErrorFormat` does, they
/// become spaces.
pub fn error_bytes(out: &mut Vec<u8>, text: &[u8]) {
    out.push(b'-');
    out.extend(text.iter().map(|&b| if b == b'\r' || b == b'\n' { b' ' } else { b }));
    out.extend_from_slice(b"\r\n");
}

/// An integer: `:n\r\n`.
pub fn int(out: &mut Vec<u8>, n: i64) {
    prefixed(out, b':', n);
}

/// The header of an array of `len` replies: `*len\r\n`. The caller writes the elements.
pub fn array(out: &mut Vec<u8>, len: usize) {
    prefixed(out, b'*', len as i64);
}

/// A bulk string: `$len\r\nbytes\r\n`. Binary-safe: any bytes, CR and LF included.
pub fn bulk(out: &mut Vec<u8>, bytes: &[u8]) {
    prefixed(out, b'$', bytes.len() as i64);
    out.extend_from_slice(bytes);
    out.extend_from_slice(b"\r\n");
}

/// Text meant for people (`INFO`, `CLIENT INFO`, `CLIENT LIST`): a bulk string in RESP2; in
/// RESP3 a verbatim string, `=<len>\r\ntxt:<text>\r\n`, the length counting the `txt:`, as
/// Redis 7 sends it.
pub fn verbatim(out: &mut Vec<u8>, resp3: bool, text: &[u8]) {
    if !resp3 {
        return bulk(out, text);
    }
    prefixed(out, b'=', text.len() as i64 + 4);
    out.extend_from_slice(b"txt:");
    out.extend_from_slice(text);
    out.extend_from_slice(b"\r\n");
}

/// "No value": RESP2's null bulk string `$-1`, or RESP3's null `_` on a connection that
/// switched with `HELLO 3` (a RESP3 parser need not read `$-1`, and redis-py's does not).
pub fn null(out: &mut Vec<u8>, resp3: bool) {
    out.extend_from_slice(if resp3 { b"_\r\n" } else { NULL });
}

/// "No array": RESP2's null array `*-1` (an `EXEC` whose watched keys changed), or RESP3's
/// null `_`.
pub fn null_array(out: &mut Vec<u8>, resp3: bool) {
    out.extend_from_slice(if resp3 { b"_\r\n" } else { b"*-1\r\n" });
}

/// A bulk string, or the null for `None` (see [`null`]).
pub fn bulk_or_null(out: &mut Vec<u8>, bytes: Option<&[u8]>, resp3: bool) {
    match bytes {
        Some(bytes) => bulk(out, bytes),
        None => null(out, resp3),
    }
}

/// Writes `n` in decimal, as ASCII, without allocating.
pub fn decimal(out: &mut Vec<u8>, n: i64) {
    // 20 digits hold u64::MAX; i64::MIN's magnitude (9223372036854775808) has 19.
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    let mut rest = n.unsigned_abs();
    loop {
        at -= 1;
        digits[at] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    if n < 0 {
        out.push(b'-');
    }
    out.extend_from_slice(&digits[at..]);
}

/// The header of an out-of-band message of `len` parts (pub/sub's messages and
/// confirmations): a RESP3 push, `>len\r\n`, which RESP3 clients tell apart from replies; in
/// RESP2, which has no pushes, an array.
pub fn push(out: &mut Vec<u8>, resp3: bool, len: usize) {
    if resp3 {
        prefixed(out, b'>', len as i64);
    } else {
        array(out, len);
    }
}

fn prefixed(out: &mut Vec<u8>, prefix: u8, n: i64) {
    out.push(prefix);
    decimal(out, n);
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_each_type() {
        let mut out = Vec::new();
        simple(&mut out, "PONG");
        err(&mut out, "syntax error");
        int(&mut out, -42);
        int(&mut out, i64::MIN);
        bulk(&mut out, b"a\r\nb");
        bulk(&mut out, b"");
        bulk_or_null(&mut out, None, false);
        array(&mut out, 0);
        error_bytes(&mut out, b"ERR bad\r\nname");
        assert_eq!(
            out,
            b"+PONG\r\n-ERR syntax error\r\n:-42\r\n:-9223372036854775808\r\n\
              $4\r\na\r\nb\r\n$0\r\n\r\n$-1\r\n*0\r\n-ERR bad  name\r\n"
        );
    }
}
