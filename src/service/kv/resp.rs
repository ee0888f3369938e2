//! The RESP2 request parser: bytes from the socket in, one command's arguments out.
//!
//! This is the first stop in the key-value data path:
//!
//! ```text
//!   reactor read ─▶ Kv::input ─▶ Parser::parse ─▶ Args ─▶ cmd::execute ─▶ reply ─▶ cx.out()
//! ```
//!
//! Clients send requests in one of two framings (RESP2 spec, "Sending commands to a Redis
//! server" and "Inline commands"):
//!
//! * **multibulk**: an array of bulk strings, `*2\r\n$3\r\nGET\r\n$1\r\nk\r\n`. Every real
//!   client (redis-cli, redis-benchmark, client libraries) uses it. Binary-safe.
//! * **inline**: a line of space-separated words, `GET k\r\n`, for people typing into telnet
//!   (and redis-benchmark's `PING_INLINE` test). Double and single quotes group words, as in
//!   Redis's `sdssplitargs`.
//!
//! # Incremental and zero-copy
//!
//! A request may arrive split at any byte. The reactor keeps the bytes this parser has not
//! consumed and offers them again, followed by new ones, so the parser only has to remember
//! *how far it got* into the current request (the `State` plus two offsets). It never
//! re-reads an argument it has already parsed and never rescans a line it has already searched
//! for its end, so a request trickled in one byte at a time costs the same as one arriving
//! whole.
//!
//! A multibulk argument is not copied: the parser records its range within the input, and the
//! command reads it in place through [`Args`]. The range vector is reused across requests, so
//! the GET/SET path allocates nothing here. (Inline requests are unescaped into a reused
//! scratch buffer instead, because quoting means the argument bytes differ from the wire
//! bytes.)
//!
//! # Errors
//!
//! Malformed input gets the error text Redis's `networking.c` sends (see [`ProtocolError`]),
//! after which the connection is closed: once framing is lost there is no way to find the start
//! of the next request. Every limit is enforced here, in one place, before any byte of an
//! oversized argument is buffered.

use std::ops::Range;

/// Longest inline request, and longest `*<count>` / `$<len>` header line (Redis's
/// `PROTO_INLINE_MAX_SIZE`).
pub const INLINE_MAX: usize = 64 * 1024;

/// Most arguments in a multibulk request from a client that has yet to give the password
/// (Redis's bound since CVE-2021-32675: one who cannot run a command may not make the server
/// buffer a large one).
pub const UNAUTHENTICATED_MAX_ARGS: i64 = 10;

/// Largest bulk string from a client that has yet to give the password (Redis's, as above).
pub const UNAUTHENTICATED_MAX_BULK: i64 = 16 * 1024;

/// Redis's default `proto-max-bulk-len` (512 MiB): a longer bulk header is an invalid bulk
/// length there even before the password, so it is here too.
const REDIS_MAX_BULK: i64 = 512 * 1024 * 1024;

/// The limits the parser enforces (copied from [`super::KvConfig`]).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest bulk string argument, in bytes.
    pub max_bulk: usize,
    /// Most arguments in one multibulk request.
    pub max_args: usize,
    /// Largest whole request (all headers and arguments), in bytes.
    pub max_query: usize,
}

/// Why a request could not be parsed. Each maps to the reply Redis sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProtocolError {
    /// An inline line longer than [`INLINE_MAX`].
    TooBigInline,
    /// An inline line with an unterminated quote, or a closing quote not followed by a space.
    UnbalancedQuotes,
    /// A `*<count>` line longer than [`INLINE_MAX`].
    TooBigMultibulkCount,
    /// `*<count>` that is not an integer, or more than `max_args`.
    InvalidMultibulkLength,
    /// A `$<len>` line longer than [`INLINE_MAX`].
    TooBigBulkCount,
    /// An array element that is not a bulk string (the byte found instead of `$`).
    ExpectedDollar(u8),
    /// `$<len>` that is not an integer, negative, or more than `max_bulk`.
    InvalidBulkLength,
    /// A bulk string's bytes not followed by CRLF. (Redis skips the two bytes unchecked; we
    /// refuse, because a wrong terminator means the length was wrong and framing is lost.)
    BulkNotTerminated,
    /// `*<count>` over [`UNAUTHENTICATED_MAX_ARGS`] from a client that has not authenticated.
    UnauthenticatedMultibulkLength,
    /// `$<len>` over [`UNAUTHENTICATED_MAX_BULK`] from a client that has not authenticated.
    UnauthenticatedBulkLength,
    /// The request as a whole would exceed `max_query`. (Redis closes such a client silently
    /// when its query buffer passes `client-query-buffer-limit`; we say why first.)
    QueryTooBig,
}

impl ProtocolError {
    /// Writes the error reply, `-ERR Protocol error: …\r\n`.
    pub fn write_reply(self, out: &mut Vec<u8>) {
        let text: &str = match self {
            ProtocolError::TooBigInline => "too big inline request",
            ProtocolError::UnbalancedQuotes => "unbalanced quotes in request",
            ProtocolError::TooBigMultibulkCount => "too big mbulk count string",
            ProtocolError::InvalidMultibulkLength => "invalid multibulk length",
            ProtocolError::TooBigBulkCount => "too big bulk count string",
            ProtocolError::ExpectedDollar(byte) => {
                // Redis formats this with `%c`: the raw byte, CR/LF turned into spaces.
                let shown = if byte == b'\r' || byte == b'\n' { b' ' } else { byte };
                out.extend_from_slice(b"-ERR Protocol error: expected '$', got '");
                out.push(shown);
                out.extend_from_slice(b"'\r\n");
                return;
            }
            ProtocolError::InvalidBulkLength => "invalid bulk length",
            ProtocolError::BulkNotTerminated => "bulk string not terminated by CRLF",
            ProtocolError::UnauthenticatedMultibulkLength => "unauthenticated multibulk length",
            ProtocolError::UnauthenticatedBulkLength => "unauthenticated bulk length",
            ProtocolError::QueryTooBig => "request exceeds the query buffer limit",
        };
        out.extend_from_slice(b"-ERR Protocol error: ");
        out.extend_from_slice(text.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
}

/// What one call to [`Parser::parse`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parsed {
    /// The input ends inside a request: offer the same bytes again, with more after them.
    Incomplete,
    /// A whole request of this many bytes. Its arguments are in [`Parser::args`] until the next
    /// call; there may be none (an empty inline line, `*0\r\n`), which Redis ignores silently.
    Request(usize),
}

/// Where the parser is inside the current request. Positions are offsets from the start of
/// the request, which is also the start of the `input` slice on every call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Nothing of the request parsed yet; its first byte picks the framing.
    Start,
    /// Multibulk: `left` arguments to go; next comes a `$<len>\r\n` header.
    BulkHeader { left: usize },
    /// Multibulk: inside an argument of `len` bytes, then CRLF; `left` includes this one.
    BulkBody { left: usize, len: usize },
}

/// The incremental parser; one per connection.
#[derive(Debug)]
pub struct Parser {
    limits: Limits,
    state: State,
    /// Bytes of the current request parsed so far.
    pos: usize,
    /// Where the search for the end of the current line resumes (bytes before it were already
    /// searched). Zero when no search is under way.
    scan: usize,
    /// Argument ranges of the request parsed last, into the input or into `inline`.
    args: Vec<Range<usize>>,
    /// True when `args` index `inline` rather than the input.
    is_inline: bool,
    /// Unescaped inline arguments, reused across requests.
    inline: Vec<u8>,
    /// The client has yet to give the password: the `UNAUTHENTICATED_*` bounds apply.
    unauthenticated: bool,
}

impl Parser {
    /// A parser waiting for the first request.
    pub fn new(limits: Limits) -> Self {
        Parser {
            limits,
            state: State::Start,
            pos: 0,
            scan: 0,
            args: Vec::new(),
            is_inline: false,
            inline: Vec::new(),
            unauthenticated: false,
        }
    }

    /// Whether the client has yet to authenticate, which bounds its requests far tighter
    /// ([`UNAUTHENTICATED_MAX_ARGS`], [`UNAUTHENTICATED_MAX_BULK`]). Checked at each header.
    pub fn set_unauthenticated(&mut self, unauthenticated: bool) {
        self.unauthenticated = unauthenticated;
    }

    /// Parses from the start of `input`, which begins with the current request. Call again with
    /// the bytes after a [`Parsed::Request`], or with the same bytes plus more after
    /// [`Parsed::Incomplete`]. After an error the connection must be closed.
    pub fn parse(&mut self, input: &[u8]) -> Result<Parsed, ProtocolError> {
        loop {
            match self.state {
                State::Start => {
                    let Some(&first) = input.first() else {
                        return Ok(Parsed::Incomplete);
                    };
                    if first != b'*' {
                        return self.parse_inline(input);
                    }
                    // Multibulk: `*<count>\r\n`.
                    let Some(cr) = self.find_line_end(input, ProtocolError::TooBigMultibulkCount)? else {
                        return Ok(Parsed::Incomplete);
                    };
                    self.args.clear();
                    self.is_inline = false;
                    let count =
                        input.get(1..cr).and_then(parse_int).ok_or(ProtocolError::InvalidMultibulkLength)?;
                    // Before our own limit, as Redis checks it before everything but INT_MAX.
                    if self.unauthenticated && count > UNAUTHENTICATED_MAX_ARGS && count <= i32::MAX.into() {
                        return Err(ProtocolError::UnauthenticatedMultibulkLength);
                    }
                    if count > self.limits.max_args as i64 {
                        return Err(ProtocolError::InvalidMultibulkLength);
                    }
                    self.pos = cr + 2;
                    if count <= 0 {
                        // RESP2: `*0` is an empty array and `*-1` the null array. Redis treats
                        // both, and any other negative count, as a request with no command.
                        return Ok(self.finish());
                    }
                    self.state = State::BulkHeader { left: count as usize };
                }
                State::BulkHeader { left } => {
                    // Each element must be a bulk string (RESP2: "a client sends a RESP Array
                    // consisting of only Bulk Strings"). Checking the type byte as soon as it
                    // arrives fails garbage at once instead of waiting for a line end.
                    let Some(&kind) = input.get(self.pos) else {
                        return Ok(Parsed::Incomplete);
                    };
                    if kind != b'$' {
                        return Err(ProtocolError::ExpectedDollar(kind));
                    }
                    let Some(cr) = self.find_line_end(input, ProtocolError::TooBigBulkCount)? else {
                        return Ok(Parsed::Incomplete);
                    };
                    let len = input
                        .get(self.pos + 1..cr)
                        .and_then(parse_int)
                        .ok_or(ProtocolError::InvalidBulkLength)?;
                    // Before our own limit, as Redis checks it before everything but its
                    // default proto-max-bulk-len.
                    if self.unauthenticated && len > UNAUTHENTICATED_MAX_BULK && len <= REDIS_MAX_BULK {
                        return Err(ProtocolError::UnauthenticatedBulkLength);
                    }
                    if !(0..=self.limits.max_bulk as i64).contains(&len) {
                        return Err(ProtocolError::InvalidBulkLength);
                    }
                    let len = len as usize;
                    self.pos = cr + 2;
                    // Refuse an oversized request before buffering its bytes.
                    if self.pos + len + 2 > self.limits.max_query {
                        return Err(ProtocolError::QueryTooBig);
                    }
                    self.state = State::BulkBody { left, len };
                }
                State::BulkBody { left, len } => {
                    let end = self.pos + len;
                    let Some(terminator) = input.get(end..end + 2) else {
                        return Ok(Parsed::Incomplete);
                    };
                    if terminator != b"\r\n" {
                        return Err(ProtocolError::BulkNotTerminated);
                    }
                    self.args.push(self.pos..end);
                    self.pos = end + 2;
                    if left == 1 {
                        return Ok(self.finish());
                    }
                    self.state = State::BulkHeader { left: left - 1 };
                }
            }
        }
    }

    /// The arguments of the request the last [`Parsed::Request`] reported. `input` must be the
    /// slice that call was given.
    pub fn args<'a>(&'a self, input: &'a [u8]) -> Args<'a> {
        let source = if self.is_inline { &self.inline } else { input };
        Args { source, ranges: &self.args }
    }

    /// Ends the request: reports its length and resets for the next one.
    fn finish(&mut self) -> Parsed {
        let len = self.pos;
        self.state = State::Start;
        self.pos = 0;
        self.scan = 0;
        Parsed::Request(len)
    }

    /// Finds the CRLF that ends the header line starting at `self.pos`, resuming the search
    /// where the last call stopped. Returns the index of its `\r`, or `None` when the line is
    /// not complete yet.
    fn find_line_end(
        &mut self,
        input: &[u8],
        too_long: ProtocolError,
    ) -> Result<Option<usize>, ProtocolError> {
        let from = self.scan.max(self.pos);
        let found =
            input.get(from..).and_then(|rest| rest.iter().position(|&b| b == b'\r')).map(|i| from + i);
        // The limit is on the line, not on how much of it has arrived, so the outcome does
        // not depend on how the request was split into reads.
        let line_len = found.unwrap_or(input.len()) - self.pos;
        if line_len > INLINE_MAX {
            return Err(too_long);
        }
        let Some(cr) = found else {
            self.scan = input.len();
            return Ok(None);
        };
        match input.get(cr + 1) {
            None => {
                self.scan = cr;
                Ok(None)
            }
            Some(b'\n') => {
                self.scan = 0;
                Ok(Some(cr))
            }
            // A header line is digits then CRLF; a lone CR means the number is malformed.
            Some(_) if too_long == ProtocolError::TooBigMultibulkCount => {
                Err(ProtocolError::InvalidMultibulkLength)
            }
            Some(_) => Err(ProtocolError::InvalidBulkLength),
        }
    }

    /// An inline request: one line ending in LF (a CR before it is dropped), split into
    /// words. See Redis's `processInlineBuffer`.
    fn parse_inline(&mut self, input: &[u8]) -> Result<Parsed, ProtocolError> {
        let from = self.scan;
        let newline =
            input.get(from..).and_then(|rest| rest.iter().position(|&b| b == b'\n')).map(|i| from + i);
        if newline.unwrap_or(input.len()) > INLINE_MAX {
            return Err(ProtocolError::TooBigInline);
        }
        let Some(newline) = newline else {
            self.scan = input.len();
            return Ok(Parsed::Incomplete);
        };
        let mut line = input.get(..newline).unwrap_or_default();
        if let Some(stripped) = line.strip_suffix(b"\r") {
            line = stripped;
        }
        self.is_inline = true;
        split_inline(line, &mut self.inline, &mut self.args).map_err(|()| ProtocolError::UnbalancedQuotes)?;
        self.pos = newline + 1;
        Ok(self.finish())
    }
}

/// The arguments of one request, borrowed in place. `get(0)` is the command name.
#[derive(Debug, Clone, Copy)]
pub struct Args<'a> {
    source: &'a [u8],
    ranges: &'a [Range<usize>],
}

impl<'a> Args<'a> {
    /// Number of arguments, the command name included (Redis's `argc`).
    pub fn len(&self) -> usize {
        self.ranges.len()
    }

    /// True for a request with no arguments at all.
    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    /// Argument `i`, if there is one.
    pub fn get(&self, i: usize) -> Option<&'a [u8]> {
        self.ranges.get(i).and_then(|range| self.source.get(range.clone()))
    }

    /// Argument `i`, or the empty string when missing. For commands, after the arity check
    /// has guaranteed it exists: a missing argument can never panic.
    pub fn arg(&self, i: usize) -> &'a [u8] {
        self.get(i).unwrap_or_default()
    }

    /// Arguments kept elsewhere: each range indexes `source` (a command queued by `MULTI`).
    pub fn from_parts(source: &'a [u8], ranges: &'a [Range<usize>]) -> Self {
        Args { source, ranges }
    }

    /// Arguments from `start` on.
    pub fn iter_from(&self, start: usize) -> impl Iterator<Item = &'a [u8]> + 'a {
        let source = self.source;
        self.ranges
            .get(start..)
            .unwrap_or_default()
            .iter()
            .map(move |range| source.get(range.clone()).unwrap_or_default())
    }
}

/// Parses a decimal integer exactly as Redis's `string2ll`: optional `-`, no `+`, no spaces,
/// no leading zeros (`"0"` itself is fine), and it must fit in an `i64`. Redis uses the same
/// function for protocol lengths and for `INCR`'s values, so this is the one integer syntax of
/// the whole service.
pub fn parse_int(text: &[u8]) -> Option<i64> {
    let (negative, digits) = match text.strip_prefix(b"-") {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    match digits {
        [b'0'] if !negative => return Some(0),
        [b'1'..=b'9', ..] => {}
        _ => return None,
    }
    let mut magnitude: u64 = 0;
    for &b in digits {
        if !b.is_ascii_digit() {
            return None;
        }
        magnitude = magnitude.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
    }
    if negative {
        // i64::MIN's magnitude is one more than i64::MAX.
        0i64.checked_sub_unsigned(magnitude)
    } else {
        i64::try_from(magnitude).ok()
    }
}

/// `isspace` in the C locale, which Redis's `sdssplitargs` uses to separate inline words.
fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c)
}

fn hex_value(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

/// Splits an inline line into words the way Redis's `sdssplitargs` does: words separated by
/// spaces; `"…"` with C escapes (`\n \r \t \b \a \xHH`, `\<any>` for the character itself);
/// `'…'` with only `\'`; a closing quote must be followed by a space or the end of the line.
/// The line is a C string there, so a NUL byte ends it.
fn split_inline(line: &[u8], out: &mut Vec<u8>, args: &mut Vec<Range<usize>>) -> Result<(), ()> {
    out.clear();
    args.clear();
    let line = match line.iter().position(|&b| b == 0) {
        Some(nul) => line.get(..nul).unwrap_or_default(),
        None => line,
    };
    let at = |i: usize| line.get(i).copied();
    let mut i = 0;
    loop {
        while at(i).is_some_and(is_space) {
            i += 1;
        }
        if at(i).is_none() {
            return Ok(());
        }
        let start = out.len();
        let mut quote: Option<u8> = None;
        loop {
            match (quote, at(i)) {
                // End of line inside quotes: unbalanced.
                (Some(_), None) => return Err(()),
                (Some(b'"'), Some(b'\\')) => {
                    let hex = at(i + 2).and_then(hex_value).zip(at(i + 3).and_then(hex_value));
                    match (at(i + 1), hex) {
                        (Some(b'x'), Some((high, low))) => {
                            out.push(high * 16 + low);
                            i += 4;
                        }
                        (Some(escaped), _) => {
                            out.push(match escaped {
                                b'n' => b'\n',
                                b'r' => b'\r',
                                b't' => b'\t',
                                b'b' => 0x08,
                                b'a' => 0x07,
                                other => other,
                            });
                            i += 2;
                        }
                        (None, _) => return Err(()),
                    }
                }
                (Some(b'\''), Some(b'\\')) if at(i + 1) == Some(b'\'') => {
                    out.push(b'\'');
                    i += 2;
                }
                (Some(q), Some(c)) if c == q => {
                    if at(i + 1).is_some_and(|next| !is_space(next)) {
                        return Err(());
                    }
                    i += 1;
                    break;
                }
                (Some(_), Some(c)) => {
                    out.push(c);
                    i += 1;
                }
                (None, None) => break,
                (None, Some(c)) if is_space(c) => {
                    i += 1;
                    break;
                }
                (None, Some(c @ (b'"' | b'\''))) => {
                    quote = Some(c);
                    i += 1;
                }
                (None, Some(c)) => {
                    out.push(c);
                    i += 1;
                }
            }
        }
        args.push(start..out.len());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits { max_bulk: 1024, max_args: 16, max_query: 4096 }
    }

    /// Parses one complete request and returns (length, args).
    fn parse_all(input: &[u8]) -> Result<(usize, Vec<Vec<u8>>), ProtocolError> {
        let mut p = Parser::new(limits());
        match p.parse(input)? {
            Parsed::Request(n) => Ok((n, p.args(input).iter_from(0).map(<[u8]>::to_vec).collect())),
            Parsed::Incomplete => panic!("incomplete: {input:?}"),
        }
    }

    #[test]
    fn multibulk_and_inline() {
        let (n, args) = parse_all(b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\nrest").unwrap();
        assert_eq!(n, 20);
        assert_eq!(args, [b"GET".to_vec(), b"k".to_vec()]);
        let (n, args) = parse_all(b"SET  k \"a b\\x41\\n\" 'it\\'s'\r\n").unwrap();
        assert_eq!(n, 28);
        assert_eq!(args, [b"SET".to_vec(), b"k".to_vec(), b"a bA\n".to_vec(), b"it's".to_vec()]);
        let (_, args) = parse_all(b"PING\n").unwrap();
        assert_eq!(args, [b"PING".to_vec()]);
        let (_, args) = parse_all(b"\r\n").unwrap();
        assert!(args.is_empty());
        let (_, args) = parse_all(b"*0\r\n").unwrap();
        assert!(args.is_empty());
        let (_, args) = parse_all(b"*1\r\n$0\r\n\r\n").unwrap();
        assert_eq!(args, [Vec::<u8>::new()]);
    }

    #[test]
    fn every_split_parses_the_same() {
        let request: &[u8] = b"*3\r\n$3\r\nSET\r\n$5\r\nk\r\ney\r\n$0\r\n\r\n";
        let whole = parse_all(request).unwrap();
        for split in 0..request.len() {
            let mut p = Parser::new(limits());
            let first = p.parse(&request[..split]).unwrap();
            assert_eq!(first, Parsed::Incomplete, "split at {split}");
            let Parsed::Request(n) = p.parse(request).unwrap() else {
                panic!("split at {split} did not complete");
            };
            let args: Vec<Vec<u8>> = p.args(request).iter_from(0).map(<[u8]>::to_vec).collect();
            assert_eq!((n, args), whole, "split at {split}");
        }
    }

    #[test]
    fn integers_follow_string2ll() {
        assert_eq!(parse_int(b"0"), Some(0));
        assert_eq!(parse_int(b"-1"), Some(-1));
        assert_eq!(parse_int(b"9223372036854775807"), Some(i64::MAX));
        assert_eq!(parse_int(b"-9223372036854775808"), Some(i64::MIN));
        for bad in [
            &b""[..],
            b"-",
            b"+1",
            b"01",
            b"-0",
            b" 1",
            b"1 ",
            b"1x",
            b"9223372036854775808",
            b"-9223372036854775809",
            b"99999999999999999999999",
        ] {
            assert_eq!(parse_int(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn unbalanced_quotes() {
        for bad in [&b"GET \"k\r\n"[..], b"GET 'k\r\n", b"GET \"k\"x\r\n", b"GET 'k'x\n", b"GET \"k\\"] {
            let mut p = Parser::new(limits());
            let mut input = bad.to_vec();
            if !input.ends_with(b"\n") {
                input.push(b'\n');
            }
            assert_eq!(p.parse(&input), Err(ProtocolError::UnbalancedQuotes), "{bad:?}");
        }
    }
}
