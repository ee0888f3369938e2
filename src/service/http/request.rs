//! Reading a request head: where it ends, what it says, and how long its body is.
//!
//! This is the first step of the HTTP data path. The reactor hands the service the bytes it has
//! read; [`head_may_be_complete`] is the cheap check ("is there an empty line yet?"), and
//! [`parse_head`] is the real parse, which runs `httparse` over the bytes into a stack array of
//! header slices and then applies the rules of RFC 9112 that decide the *framing*: whether a
//! body follows and how its end is found (§6.3), whether the connection persists (§9.3), and
//! which requests are too broken to answer with anything but an error and a close.
//!
//! `httparse` only tokenises (request line, header names and values, line endings). Limits,
//! framing and every judgement about field *values* are made here, in one place, so that a
//! reader can check them against the RFC.

use super::response::Status;

/// Most header fields a request may carry; one more is answered with 431. They are parsed into
/// an array of this size on the stack, so parsing allocates nothing.
pub(super) const MAX_HEADERS: usize = 64;

/// Limits that apply while reading one request.
#[derive(Debug, Clone, Copy)]
pub(super) struct Limits {
    pub max_head: usize,
    pub max_body: usize,
}

/// The request method, as far as routing cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Method {
    Get,
    Head,
    Post,
    Options,
    /// Another method HTTP defines (`PUT`, `DELETE`, `PATCH`, …): known, allowed on no
    /// resource here, so 405 with `Allow` (RFC 9110 §15.5.6).
    Other,
    /// A token that names no method we know: 501, as RFC 9110 §9.1 asks. Methods are
    /// case-sensitive, so `get` lands here too.
    Unknown,
}

impl Method {
    /// The method a request line's first token names (case-sensitive, RFC 9110 §9.1).
    pub(super) fn from_token(token: &[u8]) -> Method {
        match token {
            b"GET" => Method::Get,
            b"HEAD" => Method::Head,
            b"POST" => Method::Post,
            b"OPTIONS" => Method::Options,
            b"PUT" | b"DELETE" | b"PATCH" | b"CONNECT" | b"TRACE" => Method::Other,
            _ => Method::Unknown,
        }
    }

    /// As a request line spells it, for the log (the two catch-alls kept no token).
    pub(super) fn name(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Head => "HEAD",
            Method::Post => "POST",
            Method::Options => "OPTIONS",
            Method::Other => "(another method)",
            Method::Unknown => "(an unknown method)",
        }
    }
}

/// The protocol versions this server speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Version {
    Http10,
    Http11,
}

impl Version {
    /// As a request line spells it.
    pub(super) fn name(self) -> &'static str {
        match self {
            Version::Http10 => "HTTP/1.0",
            Version::Http11 => "HTTP/1.1",
        }
    }
}

/// How the end of the request body is found (RFC 9112 §6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Framing {
    /// No body: neither `Content-Length` nor `Transfer-Encoding` (§6.3 item 7), or length 0.
    None,
    /// Exactly this many bytes follow the head.
    Length(usize),
    /// The body is chunked (§7.1); see `chunked.rs`.
    Chunked,
}

/// A parsed and validated request head. Slices borrow from the input buffer.
#[derive(Debug, Clone, Copy)]
pub(super) struct Head<'b> {
    /// Bytes of input the head occupies, final empty line included.
    pub len: usize,
    pub method: Method,
    /// The path of the target, without query; always starts with `/` (or is `*`).
    pub path: &'b [u8],
    pub version: Version,
    /// Whether the connection may carry another request after this one (RFC 9112 §9.3).
    pub keep_alive: bool,
    pub framing: Framing,
    /// The client sent `Expect: 100-continue` and waits for our go-ahead (RFC 9110 §10.1.1).
    pub expect_continue: bool,
    pub content_type: Option<&'b [u8]>,
}

/// The cheap completeness check: could `buf` hold a whole head yet?
///
/// A head ends with an empty line: `\r\n\r\n`, or with bare line feeds, which RFC 9112 §2.2
/// allows a recipient to accept and `httparse` does. Both end in `\n` + (`\r`)`\n`, so the
/// search looks for a `\n` followed by either. Only bytes from `from` on are searched, so a
/// head that arrives a few bytes per read is scanned once, not once per read; the caller
/// passes the previous length minus two, since a terminator can straddle two reads.
pub(super) fn head_may_be_complete(buf: &[u8], from: usize) -> bool {
    let mut i = from;
    while let Some(offset) = buf.get(i..).and_then(|rest| rest.iter().position(|&b| b == b'\n')) {
        let nl = i + offset;
        match buf.get(nl + 1..) {
            Some([b'\n', ..]) | Some([b'\r', b'\n', ..]) => return true,
            _ => i = nl + 1,
        }
    }
    false
}

/// Parses the head at the start of `buf`.
///
/// `Ok(None)` means "not complete yet, wait for more bytes"; `Err(status)` means the request
/// is bad and the reply is `status` followed by closing the connection, because after a
/// framing error nothing that follows on the connection can be trusted to be a request.
pub(super) fn parse_head<'b>(buf: &'b [u8], limits: Limits) -> Result<Option<Head<'b>>, Status> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let len = match req.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err(Status::FieldsTooLarge),
        Err(httparse::Error::Version) => return version_error(buf),
        Err(_) => return Err(Status::BadRequest),
    };
    if len > limits.max_head {
        return Err(over_limit(buf, limits.max_head));
    }
    // A complete parse always fills these in; treat their absence as malformed, not a panic.
    let (Some(method), Some(target), Some(minor)) = (req.method, req.path, req.version) else {
        return Err(Status::BadRequest);
    };
    let version = if minor == 0 { Version::Http10 } else { Version::Http11 };
    let method = Method::from_token(method.as_bytes());
    let path = target_path(target.as_bytes()).ok_or(Status::BadRequest)?;
    // RFC 9112 §3.2.4: the asterisk-form is only for a server-wide OPTIONS.
    if path == b"*" && method != Method::Options {
        return Err(Status::BadRequest);
    }

    let mut fields = Fields::default();
    for h in req.headers.iter() {
        fields.add(h.name, h.value)?;
    }

    // RFC 9112 §3.2: "A server MUST respond with a 400 (Bad Request) status code to any
    // HTTP/1.1 request message that lacks a Host header field and to any request message that
    // contains more than one Host header field line or a Host header field with an invalid
    // field value."
    if fields.hosts > 1 || (version == Version::Http11 && fields.hosts == 0) || fields.bad_host {
        return Err(Status::BadRequest);
    }

    let framing = fields.framing(version, limits)?;

    // RFC 9110 §10.1.1: a 100-continue expectation in an HTTP/1.0 request MUST be ignored;
    // any other expectation may be answered with 417.
    if fields.expect_other {
        return Err(Status::ExpectationFailed);
    }
    let expect_continue = fields.expect_continue && version == Version::Http11;

    // RFC 9112 §9.3: "close" always ends the connection; otherwise HTTP/1.1 persists by
    // default and HTTP/1.0 persists only if the client sent the "keep-alive" option.
    let keep_alive = !fields.close && (version == Version::Http11 || fields.keep_alive);

    Ok(Some(Head {
        len,
        method,
        path,
        version,
        keep_alive,
        framing,
        expect_continue,
        content_type: fields.content_type,
    }))
}

/// The status for a head that does not fit in `max_head` bytes: 414 if the request line
/// alone is too long (RFC 9112 §3: a target longer than the server will parse), 431 if the
/// fields are (RFC 6585 §5). A first line that has run past the limit without a space is
/// no request line at all: 400.
pub(super) fn over_limit(buf: &[u8], max_head: usize) -> Status {
    let first = &buf[..buf.len().min(max_head)];
    match first.iter().position(|&b| b == b'\n') {
        Some(_) => Status::FieldsTooLarge,
        None if first.contains(&b' ') => Status::UriTooLong,
        None => Status::BadRequest,
    }
}

/// `httparse` rejected the version. Tell apart a well-formed version we do not speak (505,
/// RFC 9110 §15.6.6) from a request line that is not HTTP/1.x syntax at all (400).
fn version_error(buf: &[u8]) -> Result<Option<Head<'_>>, Status> {
    // The version token may still be arriving ("HTTP/2" of "HTTP/2.0"); judge whole lines only.
    let Some(end) = buf.iter().position(|&b| b == b'\n') else {
        return Ok(None);
    };
    let line = buf[..end].strip_suffix(b"\r").unwrap_or(&buf[..end]);
    // The HTTP/2 connection preface (RFC 9113 §3.4) from a client that assumed h2 without
    // negotiating it. It is not an HTTP/1 request with a strange version: it is another protocol.
    if line == b"PRI * HTTP/2.0" {
        return Err(Status::BadRequest);
    }
    let mut parts = line.split(|&b| b == b' ');
    let (Some(_method), Some(_target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(Status::BadRequest);
    };
    // RFC 9112 §2.3: HTTP-version = "HTTP/" DIGIT "." DIGIT
    match version {
        [b'H', b'T', b'T', b'P', b'/', major, b'.', minor]
            if major.is_ascii_digit() && minor.is_ascii_digit() =>
        {
            Err(Status::VersionNotSupported)
        }
        _ => Err(Status::BadRequest),
    }
}

/// The path of a request target (RFC 9112 §3.2), without its query.
///
/// Origin-form (`/where?q`) is the usual one. A server MUST also accept absolute-form
/// (`http://host/where`, §3.2.2), which proxies send. `*` (asterisk-form) is kept as is and
/// matches no route. Anything else (authority-form belongs to CONNECT, which we do not serve)
/// is not a target we can answer: `None`. Neither is a fragment (`#`: no form of target
/// has one, §3.2), nor an absolute-form whose authority is empty (RFC 9110 §4.2.1: MUST
/// reject) or not `host[:port]` (userinfo, `u@h`, is an error there too, §4.2.4): the same
/// test `Host` gets, so the two cannot disagree about what names a host.
fn target_path(target: &[u8]) -> Option<&[u8]> {
    if target.contains(&b'#') {
        return None;
    }
    let path = if target.starts_with(b"/") || target == b"*" {
        target
    } else {
        let scheme_len = if starts_with_ignore_case(target, b"http://") {
            7
        } else if starts_with_ignore_case(target, b"https://") {
            8
        } else {
            return None;
        };
        let after_scheme = &target[scheme_len..];
        let end = after_scheme.iter().position(|&b| b == b'/' || b == b'?').unwrap_or(after_scheme.len());
        let authority = &after_scheme[..end];
        // Not empty, and not a port alone (`http://:8080/`): `valid_host` refuses that.
        if authority.is_empty() || !valid_host(authority) {
            return None;
        }
        match after_scheme.get(end) {
            Some(b'/') => &after_scheme[end..],
            // "http://host" and "http://host?q" mean the path "/" (RFC 9112 §3.2.1).
            _ => b"/",
        }
    };
    Some(match path.iter().position(|&b| b == b'?') {
        Some(q) => &path[..q],
        None => path,
    })
}

fn starts_with_ignore_case(s: &[u8], prefix: &[u8]) -> bool {
    s.get(..prefix.len()).is_some_and(|head| head.eq_ignore_ascii_case(prefix))
}

/// What the header fields say, gathered in one pass.
#[derive(Debug, Default)]
struct Fields<'b> {
    hosts: usize,
    /// A `Host` value that is not `uri-host [ ":" port ]`.
    bad_host: bool,
    /// The agreed `Content-Length`, if any field carried one.
    content_length: Option<u64>,
    /// Some `Transfer-Encoding` field was present.
    transfer_encoding: bool,
    /// How many times `chunked` was listed.
    chunked: usize,
    /// A transfer coding other than `chunked` was listed.
    unknown_coding: bool,
    /// The last coding listed (over every field, in order) was `chunked`.
    chunked_last: bool,
    close: bool,
    keep_alive: bool,
    expect_continue: bool,
    expect_other: bool,
    content_type: Option<&'b [u8]>,
}

impl<'b> Fields<'b> {
    /// Takes one header field into account. Field names are case-insensitive (RFC 9110 §5.1).
    fn add(&mut self, name: &str, value: &'b [u8]) -> Result<(), Status> {
        let is = |n: &str| name.eq_ignore_ascii_case(n);
        if is("host") {
            self.hosts += 1;
            self.bad_host |= !valid_host(value);
        } else if is("content-length") {
            self.add_content_length(value)?;
        } else if is("transfer-encoding") {
            self.transfer_encoding = true;
            for coding in list(value) {
                self.chunked_last = coding.eq_ignore_ascii_case(b"chunked");
                if self.chunked_last {
                    self.chunked += 1;
                } else {
                    self.unknown_coding = true;
                }
            }
        } else if is("connection") {
            for option in list(value) {
                self.close |= option.eq_ignore_ascii_case(b"close");
                self.keep_alive |= option.eq_ignore_ascii_case(b"keep-alive");
            }
        } else if is("expect") {
            for expectation in list(value) {
                if expectation.eq_ignore_ascii_case(b"100-continue") {
                    self.expect_continue = true;
                } else {
                    self.expect_other = true;
                }
            }
        } else if is("content-type") {
            self.content_type = Some(value);
        }
        Ok(())
    }

    /// `Content-Length = 1*DIGIT` (RFC 9112 §6.2). Several fields, or a list in one field, are
    /// accepted only if every value is the same (§6.3 item 5 allows exactly that leniency);
    /// anything else is invalid framing and gets 400.
    fn add_content_length(&mut self, value: &[u8]) -> Result<(), Status> {
        for item in value.split(|&b| b == b',') {
            let digits = trim_ows(item);
            if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
                return Err(Status::BadRequest);
            }
            let n = digits
                .iter()
                .try_fold(0u64, |n, &d| n.checked_mul(10)?.checked_add(u64::from(d - b'0')))
                .ok_or(Status::BadRequest)?;
            match self.content_length {
                Some(previous) if previous != n => return Err(Status::BadRequest),
                _ => self.content_length = Some(n),
            }
        }
        Ok(())
    }

    /// Decides how the body is framed: RFC 9112 §6.1 and §6.3, in the order they apply.
    fn framing(&self, version: Version, limits: Limits) -> Result<Framing, Status> {
        if self.transfer_encoding {
            // §6.3 item 3: both fields at once "ought to be handled as an error"; it is the
            // classic request-smuggling shape, so we refuse rather than pick one.
            if self.content_length.is_some() {
                return Err(Status::BadRequest);
            }
            // §6.1: an HTTP/1.0 message with Transfer-Encoding MUST be treated as if the
            // framing is faulty (1.0 has no transfer codings).
            if version == Version::Http10 {
                return Err(Status::BadRequest);
            }
            // §6.3 item 4: chunked not the final coding (or no coding at all, an empty
            // field) leaves the body's end unknown: the server MUST answer 400 and close.
            if !self.chunked_last {
                return Err(Status::BadRequest);
            }
            // §6.1: "A server that receives a request message with a transfer coding it does
            // not understand SHOULD respond with 501 (Not Implemented)": `gzip, chunked`.
            if self.unknown_coding {
                return Err(Status::NotImplemented);
            }
            // Only `chunked` is left. It must be there exactly once (§6.1: chunked MUST NOT be
            // applied more than once).
            if self.chunked != 1 {
                return Err(Status::BadRequest);
            }
            return Ok(Framing::Chunked);
        }
        match self.content_length {
            None | Some(0) => Ok(Framing::None),
            Some(n) if n > limits.max_body as u64 => Err(Status::ContentTooLarge),
            // Fits in usize: it is at most max_body, which is a usize.
            Some(n) => Ok(Framing::Length(n as usize)),
        }
    }
}

/// `Host = uri-host [ ":" port ]` (RFC 9110 §7.2, RFC 3986 §3.2.2): a bracketed IP literal,
/// or a registered name or IPv4 address made of unreserved characters, percent-escapes and
/// sub-delims; then digits after a colon. Empty is valid (a target with no authority). What
/// this refuses: spaces, `/`, `@`, `?`, `#`, a second colon outside brackets, anything that
/// could make a cache or a proxy behind us read another host than we do.
fn valid_host(value: &[u8]) -> bool {
    let (host, port) = match value.first() {
        Some(b'[') => match value.iter().position(|&b| b == b']') {
            Some(end) => {
                let literal = &value[1..end];
                let ok = !literal.is_empty()
                    && literal.iter().all(|&b| b.is_ascii_hexdigit() || b == b':' || b == b'.');
                if !ok {
                    return false;
                }
                (&value[..0], &value[end + 1..])
            }
            None => return false,
        },
        _ => match value.iter().position(|&b| b == b':') {
            Some(colon) => (&value[..colon], &value[colon..]),
            None => (value, &value[value.len()..]),
        },
    };
    let reg_name = |b: &u8| b.is_ascii_alphanumeric() || b"-._~%!$&'()*+,;=".contains(b);
    let port_ok = match port {
        [] => true,
        [b':', digits @ ..] => digits.iter().all(u8::is_ascii_digit),
        _ => false,
    };
    // A port needs a host to belong to (`:8080` names none; RFC 9110 §4.2.1: an empty host
    // MUST be rejected). A bracketed literal is a host even though `host` is left empty.
    let has_host = !host.is_empty() || value.first() == Some(&b'[');
    host.iter().all(reg_name) && port_ok && (has_host || port.is_empty())
}

/// The elements of a comma-separated field value (RFC 9110 §5.6.1), trimmed, empty ones
/// skipped as the RFC asks of recipients.
fn list(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value.split(|&b| b == b',').map(trim_ows).filter(|item| !item.is_empty())
}

/// Strips optional whitespace (SP / HTAB, RFC 9110 §5.6.3) from both ends.
fn trim_ows(s: &[u8]) -> &[u8] {
    let is_ows = |b: &u8| *b == b' ' || *b == b'\t';
    let start = s.iter().position(|b| !is_ows(b)).unwrap_or(s.len());
    let end = s.iter().rposition(|b| !is_ows(b)).map_or(start, |i| i + 1);
    &s[start..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits { max_head: 8 * 1024, max_body: 1024 };

    #[test]
    fn completeness_check_finds_both_terminators_and_resumes() {
        assert!(!head_may_be_complete(b"GET / HTTP/1.1\r\nHost: a\r\n", 0));
        assert!(head_may_be_complete(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", 0));
        assert!(head_may_be_complete(b"GET / HTTP/1.1\nHost: a\n\n", 0));
        // Resuming two bytes before the old end still sees a terminator split across reads.
        let buf = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n";
        assert!(head_may_be_complete(buf, buf.len() - 3 - 2));
        assert!(!head_may_be_complete(buf, buf.len()));
    }

    #[test]
    fn parses_a_simple_head() {
        let head = parse_head(b"GET /x?y=1 HTTP/1.1\r\nHost: a\r\n\r\nrest", LIMITS).unwrap().unwrap();
        assert_eq!(head.len, 32);
        assert_eq!(head.method, Method::Get);
        assert_eq!(head.path, b"/x");
        assert!(head.keep_alive);
        assert_eq!(head.framing, Framing::None);
    }

    #[test]
    fn absolute_form_targets_route_by_path() {
        assert_eq!(target_path(b"http://a.example/echo?x"), Some(&b"/echo"[..]));
        assert_eq!(target_path(b"HTTPS://a.example"), Some(&b"/"[..]));
        assert_eq!(target_path(b"http://a.example?q"), Some(&b"/"[..]));
        assert_eq!(target_path(b"a.example:443"), None);
        assert_eq!(target_path(b"http://a.example:8080/"), Some(&b"/"[..]));
        assert_eq!(target_path(b"http://[::1]:8080/echo"), Some(&b"/echo"[..]));
    }

    #[test]
    fn targets_with_a_fragment_or_a_bad_authority_are_refused() {
        for target in [
            &b"http:///"[..],
            b"http://",
            b"http://:8080/",
            b"http://:/",
            b"http://h:x/",
            b"http://u@h/",
            b"http://a b/",
            b"/?x#frag",
            b"/#",
        ] {
            assert_eq!(target_path(target), None, "{}", String::from_utf8_lossy(target));
        }
    }

    #[test]
    fn lists_and_whitespace() {
        assert_eq!(trim_ows(b" \t a b \t"), b"a b");
        assert_eq!(trim_ows(b"   "), b"");
        let items: Vec<&[u8]> = list(b" , close ,,keep-alive").collect();
        assert_eq!(items, [&b"close"[..], b"keep-alive"]);
    }
}
