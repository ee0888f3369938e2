//! Writing a response: status lines, header fields, the cached `Date`, and the precomputed
//! benchmark reply.
//!
//! This is the last step of the HTTP data path: a route (`routes.rs`) has decided *what* to
//! answer, and the code here turns it into bytes in the reactor's output buffer ([`Cx::out`]).
//! Every response has the same shape (RFC 9112 §4 status line, then fields, then an empty line,
//! then content), and one writer, [`Reply::write_to`], produces all of them. Even the
//! precomputed `GET /` reply ([`Canned`]) is built by that writer once, so there is a single
//! place where the wire format lives.
//!
//! [`Cx::out`]: crate::service::Cx::out

use std::time::{SystemTime, UNIX_EPOCH};

/// The status codes this server sends (RFC 9110 §15), each with its reason phrase.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Status {
    Continue,
    Ok,
    BadRequest,
    NotFound,
    MethodNotAllowed,
    RequestTimeout,
    ContentTooLarge,
    UriTooLong,
    ExpectationFailed,
    FieldsTooLarge,
    NotImplemented,
    VersionNotSupported,
}

impl Status {
    /// The three-digit code.
    pub(super) fn code(self) -> u16 {
        match self {
            Status::Continue => 100,
            Status::Ok => 200,
            Status::BadRequest => 400,
            Status::NotFound => 404,
            Status::MethodNotAllowed => 405,
            Status::RequestTimeout => 408,
            Status::ContentTooLarge => 413,
            Status::UriTooLong => 414,
            Status::ExpectationFailed => 417,
            Status::FieldsTooLarge => 431,
            Status::NotImplemented => 501,
            Status::VersionNotSupported => 505,
        }
    }

    /// The whole status line, CRLF included. Constant strings: nothing is formatted per reply.
    fn line(self) -> &'static [u8] {
        match self {
            Status::Continue => b"HTTP/1.1 100 Continue\r\n",
            Status::Ok => b"HTTP/1.1 200 OK\r\n",
            Status::BadRequest => b"HTTP/1.1 400 Bad Request\r\n",
            Status::NotFound => b"HTTP/1.1 404 Not Found\r\n",
            Status::MethodNotAllowed => b"HTTP/1.1 405 Method Not Allowed\r\n",
            Status::RequestTimeout => b"HTTP/1.1 408 Request Timeout\r\n",
            // RFC 9110 §15.5.14 renamed "Payload Too Large" to "Content Too Large".
            Status::ContentTooLarge => b"HTTP/1.1 413 Content Too Large\r\n",
            Status::UriTooLong => b"HTTP/1.1 414 URI Too Long\r\n",
            Status::ExpectationFailed => b"HTTP/1.1 417 Expectation Failed\r\n",
            Status::FieldsTooLarge => b"HTTP/1.1 431 Request Header Fields Too Large\r\n",
            Status::NotImplemented => b"HTTP/1.1 501 Not Implemented\r\n",
            Status::VersionNotSupported => b"HTTP/1.1 505 HTTP Version Not Supported\r\n",
        }
    }

    /// A short plain-text body for error replies, so a person using curl sees what happened.
    pub(super) fn text(self) -> &'static [u8] {
        match self {
            Status::Continue | Status::Ok => b"",
            Status::BadRequest => b"Bad Request\n",
            Status::NotFound => b"Not Found\n",
            Status::MethodNotAllowed => b"Method Not Allowed\n",
            Status::RequestTimeout => b"Request Timeout\n",
            Status::ContentTooLarge => b"Content Too Large\n",
            Status::UriTooLong => b"URI Too Long\n",
            Status::ExpectationFailed => b"Expectation Failed\n",
            Status::FieldsTooLarge => b"Request Header Fields Too Large\n",
            Status::NotImplemented => b"Not Implemented\n",
            Status::VersionNotSupported => b"HTTP Version Not Supported\n",
        }
    }
}

/// The interim response that tells a client waiting on `Expect: 100-continue` to send its body
/// (RFC 9110 §10.1.1, §15.2.1). It has no fields, not even `Date`.
pub(super) const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

/// What the reply says about the connection's future (RFC 9112 §9.3, §9.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ConnectionField {
    /// HTTP/1.1 persistence is the default: no field needed.
    None,
    /// An HTTP/1.0 client asked to keep the connection; we agree by echoing the option.
    KeepAlive,
    /// This is the last response on the connection.
    Close,
}

/// Everything that varies between responses. [`Reply::write_to`] adds the rest.
#[derive(Debug, Clone, Copy)]
pub(super) struct Reply<'a> {
    pub status: Status,
    pub connection: ConnectionField,
    pub content_type: &'a [u8],
    /// The `Allow` field a 405 must carry (RFC 9110 §15.5.6).
    pub allow: Option<&'static str>,
    pub body: &'a [u8],
    /// A reply to `HEAD` carries the fields of the `GET` reply, `Content-Length` included, but
    /// no content (RFC 9110 §9.3.2).
    pub head_only: bool,
}

/// The `Date` field comes right after the status line, so its offset in a reply is known.
const DATE_NAME: &[u8] = b"Date: ";

impl Reply<'_> {
    /// Appends the serialised reply to `out`.
    pub(super) fn write_to(&self, out: &mut Vec<u8>, date: &[u8; DATE_LEN]) {
        out.extend_from_slice(self.status.line());
        out.extend_from_slice(DATE_NAME);
        out.extend_from_slice(date);
        out.extend_from_slice(b"\r\nServer: reactor\r\n");
        match self.connection {
            ConnectionField::None => {}
            ConnectionField::KeepAlive => out.extend_from_slice(b"Connection: keep-alive\r\n"),
            ConnectionField::Close => out.extend_from_slice(b"Connection: close\r\n"),
        }
        if let Some(allow) = self.allow {
            out.extend_from_slice(b"Allow: ");
            out.extend_from_slice(allow.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"Content-Type: ");
        out.extend_from_slice(self.content_type);
        // Content-Length always: it is what lets the client find the end of this reply and
        // reuse the connection (RFC 9112 §6.3), and HEAD reports the GET length (§9.3.2).
        out.extend_from_slice(b"\r\nContent-Length: ");
        push_decimal(out, self.body.len() as u64);
        out.extend_from_slice(b"\r\n\r\n");
        if !self.head_only {
            out.extend_from_slice(self.body);
        }
    }
}

/// Appends `n` in decimal without going through `fmt` (and so without any allocation).
pub(super) fn push_decimal(out: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20]; // u64::MAX has 20 digits
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[at..]);
}

/// A whole reply serialised once, whose `Date` is patched in place when the second changes.
///
/// This is the benchmark path: answering `GET /` is one `memcpy` of these bytes.
#[derive(Debug, Clone)]
pub(super) struct Canned {
    bytes: Vec<u8>,
    date_at: usize,
    body_len: usize,
}

impl Canned {
    /// Serialises `reply` with a placeholder date.
    pub(super) fn new(reply: &Reply<'_>) -> Self {
        let mut bytes = Vec::new();
        reply.write_to(&mut bytes, &[b'?'; DATE_LEN]);
        Canned { bytes, date_at: reply.status.line().len() + DATE_NAME.len(), body_len: reply.body.len() }
    }

    /// Puts the current date into the stored bytes.
    pub(super) fn stamp(&mut self, date: &[u8; DATE_LEN]) {
        if let Some(slot) = self.bytes.get_mut(self.date_at..self.date_at + DATE_LEN) {
            slot.copy_from_slice(date);
        }
    }

    /// The reply, or only its head for `HEAD`.
    pub(super) fn bytes(&self, head_only: bool) -> &[u8] {
        if head_only { &self.bytes[..self.bytes.len() - self.body_len] } else { &self.bytes }
    }
}

/// Length of an IMF-fixdate: `Sun, 06 Nov 1994 08:49:37 GMT`.
pub(super) const DATE_LEN: usize = 29;

/// The `Date` field value, formatted at most once per second (RFC 9110 §6.6.1: an origin server
/// with a clock MUST send `Date`; its resolution is one second, so formatting it for every
/// reply would be wasted work).
#[derive(Debug, Clone)]
pub(super) struct DateCache {
    secs: Option<u64>,
    text: [u8; DATE_LEN],
}

impl DateCache {
    pub(super) fn new() -> Self {
        DateCache { secs: None, text: imf_fixdate(0) }
    }

    /// Brings the cached text up to `wall`; returns true if it changed.
    pub(super) fn refresh(&mut self, wall: SystemTime) -> bool {
        // A clock set before 1970 is a broken clock; 1970 is as good an answer as any.
        let secs = wall.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        if self.secs == Some(secs) {
            return false;
        }
        self.secs = Some(secs);
        self.text = imf_fixdate(secs);
        true
    }

    pub(super) fn text(&self) -> &[u8; DATE_LEN] {
        &self.text
    }
}

/// Formats seconds since the Unix epoch as an IMF-fixdate (RFC 9110 §5.6.7), always in GMT.
pub(super) fn imf_fixdate(secs: u64) -> [u8; DATE_LEN] {
    const DAYS: [&[u8; 3]; 7] = [b"Thu", b"Fri", b"Sat", b"Sun", b"Mon", b"Tue", b"Wed"];
    const MONTHS: [&[u8; 3]; 12] =
        [b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec"];
    // The format has room for four year digits; clamp to 9999-12-31T23:59:59.
    let secs = secs.min(253_402_300_799);
    let days = secs / 86_400;
    let in_day = secs % 86_400;
    let (year, month, day) = civil_from_days(days);

    let mut t = *b"Thu, 01 Jan 1970 00:00:00 GMT";
    t[..3].copy_from_slice(DAYS[(days % 7) as usize]); // 1970-01-01 was a Thursday
    two_digits(&mut t[5..7], u64::from(day));
    t[8..11].copy_from_slice(MONTHS[(month - 1) as usize]);
    two_digits(&mut t[12..14], year / 100);
    two_digits(&mut t[14..16], year % 100);
    two_digits(&mut t[17..19], in_day / 3600);
    two_digits(&mut t[20..22], in_day / 60 % 60);
    two_digits(&mut t[23..25], in_day % 60);
    t
}

fn two_digits(slot: &mut [u8], n: u64) {
    slot[0] = b'0' + (n / 10 % 10) as u8;
    slot[1] = b'0' + (n % 10) as u8;
}

/// Days since 1970-01-01 to (year, month 1..=12, day 1..=31) in the proleptic Gregorian
/// calendar. Howard Hinnant's `civil_from_days`, restricted to dates after the epoch: it counts
/// in 400-year eras (146 097 days each) whose years start on 1 March, so the leap day falls at
/// the end of a year.
fn civil_from_days(days: u64) -> (u64, u32, u32) {
    let z = days + 719_468; // days from 0000-03-01 to 1970-01-01
    let era = z / 146_097;
    let doe = z - era * 146_097; // day of era, 0..=146_096
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // year of era, 0..=399
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // day of (March-based) year, 0..=365
    let mp = (5 * doy + 2) / 153; // March-based month, 0..=11
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn imf_fixdate_matches_rfc_example_and_edges() {
        // The example in RFC 9110 §5.6.7.
        assert_eq!(&imf_fixdate(784_111_777), b"Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(&imf_fixdate(0), b"Thu, 01 Jan 1970 00:00:00 GMT");
        // A leap day, and the last second of a leap year.
        assert_eq!(&imf_fixdate(951_782_400), b"Tue, 29 Feb 2000 00:00:00 GMT");
        assert_eq!(&imf_fixdate(1_735_689_599), b"Tue, 31 Dec 2024 23:59:59 GMT");
        assert_eq!(&imf_fixdate(u64::MAX), b"Fri, 31 Dec 9999 23:59:59 GMT");
    }

    #[test]
    fn push_decimal_edges() {
        for n in [0, 9, 10, 1_048_576, u64::MAX] {
            let mut out = Vec::new();
            push_decimal(&mut out, n);
            assert_eq!(out, n.to_string().as_bytes());
        }
    }

    #[test]
    fn canned_stamps_date_in_place_and_cuts_body_for_head() {
        let mut c = Canned::new(&Reply {
            status: Status::Ok,
            connection: ConnectionField::None,
            content_type: b"text/plain",
            allow: None,
            body: b"hi\n",
            head_only: false,
        });
        c.stamp(&imf_fixdate(0));
        let text = String::from_utf8(c.bytes(false).to_vec()).unwrap();
        assert!(text.starts_with("HTTP/1.1 200 OK\r\nDate: Thu, 01 Jan 1970 00:00:00 GMT\r\n"));
        assert!(text.ends_with("Content-Length: 3\r\n\r\nhi\n"));
        assert!(c.bytes(true).ends_with(b"Content-Length: 3\r\n\r\n"));
    }
}
