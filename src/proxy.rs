//! The PROXY protocol, versions 1 and 2: the real client's address, from behind a TCP load
//! balancer.
//!
//! A load balancer in TCP mode (HAProxy `mode tcp`, a cloud network load balancer, stunnel)
//! opens its *own* connection to us, so `accept(2)` reports the balancer's address, not the
//! client's. With the PROXY protocol the balancer prepends one short header to the connection
//! that says who the client was, and then relays the client's bytes unchanged. This module
//! reads that header. It follows HAProxy's specification, "The PROXY protocol, Versions 1 & 2"
//! (`doc/proxy-protocol.txt` in the HAProxy sources, revision 2020/03/05); "§" below means a
//! section of that document.
//!
//! ## Where it sits in the data path
//!
//! ```text
//!   socket ──bytes──▶ Conn input ──▶ proxy::parse(input)
//!                                      │
//!        Ok(Incomplete) ◀──────────────┤  wait for more bytes (under a deadline, see below)
//!                                      │
//!        Ok(Done { header_len, source, destination })
//!                                      │  drop header_len bytes; the client is `source`
//!                                      ▼
//!                    Service::open, then Service::input(the bytes after the header)
//!
//!        Err(e) ── log "no valid PROXY protocol header: {e}", close the connection
//! ```
//!
//! The header is read only on listeners configured with `--proxy-protocol`. A listener
//! without the flag treats the same bytes as ordinary data (a `PROXY TCP4 …` line is then just
//! a bad HTTP request), and a listener *with* the flag never falls back to treating a
//! connection without a header as ordinary data. That is not pedantry: §5 says the receiver
//! "must only rely on a configuration parameter" and must not guess, because a client allowed
//! to send the header itself could claim any address it likes. Put listeners with the flag
//! where only the balancer can reach them.
//!
//! ## For the caller
//!
//! * [`parse`] is *sans-I/O*: it looks at the bytes received so far and never blocks, reads a
//!   clock or allocates. Call it again with more bytes after [`Parsed::Incomplete`]; it
//!   re-parses from the start, which costs nothing worth saving for a header of at most
//!   [`MAX_HEADER_LEN`] bytes.
//! * §2: "The receiver MUST NOT start processing the connection before it receives a complete
//!   and valid PROXY protocol header." So a service that speaks first (a chat greeting) must
//!   not be opened before [`Parsed::Done`].
//! * §2 suggests a deadline for the header: "at least 3 seconds to cover a TCP retransmit".
//! * [`Parsed::Done`] with no addresses (v1 `UNKNOWN`, v2 `LOCAL`, or a v2 family we do not
//!   decode) means "use the connection's real endpoints". HAProxy's health checks arrive
//!   as v2 `LOCAL`.
//!
//! ## How strict, and how early
//!
//! Every check a byte makes possible is made as soon as that byte arrives: [`parse`] answers
//! `Incomplete` only while the bytes so far are the start of some valid header. A client
//! that sends `GET / HTTP/1.1` is rejected at its first byte ([`ProxyError::NotProxy`]), not
//! after a timeout. (One approximation: an IPv6 address that is still arriving is checked for
//! its characters and length only; its syntax is checked once its field is complete.)
//!
//! ## Limits
//!
//! A v1 line is at most [`V1_MAX_LEN`] (107) bytes including CRLF (§2.1). A v2 header is
//! `16 + length` bytes, and the 16-bit length could announce 65,551; we accept at most
//! [`V2_MAX_LEN`] (4 KiB). §2 designs headers to fit in 536 bytes (the smallest TCP segment a
//! host must accept), but the TLVs a balancer may append (an SNI authority of up to 255 bytes,
//! a unique id of up to 128, TLS details) can pass that in practice, so we allow some room and
//! still bound what one connection can make us hold before it has proved anything.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

#[cfg(test)]
mod tests;

/// Longest v1 header, CRLF included (§2.1: "PROXY UNKNOWN" with two full IPv6 addresses and
/// two 5-digit ports). A line without CRLF by then is rejected.
pub const V1_MAX_LEN: usize = 107;

/// Longest v2 header we accept: the 16-byte fixed part plus up to 4,080 bytes of addresses and
/// TLVs. See the module docs for why not 536 and why not 65,551.
pub const V2_MAX_LEN: usize = 4096;

/// The most bytes [`parse`] can need to see before it answers `Done` or an error.
pub const MAX_HEADER_LEN: usize = if V1_MAX_LEN > V2_MAX_LEN { V1_MAX_LEN } else { V2_MAX_LEN };

/// The start of every v1 header: "PROXY" and exactly one space (§2.1).
const V1_PREFIX: &[u8; 6] = b"PROXY ";

/// The 12 bytes that start every v2 header (§2.2): `\r\n\r\n\0\r\nQUIT\n`. Chosen so that
/// HTTP, TLS, SMTP, FTP and POP servers reject it at once (§5, §6).
pub const V2_SIGNATURE: [u8; 12] = *b"\r\n\r\n\0\r\nQUIT\n";

/// What [`parse`] found at the start of a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parsed {
    /// The bytes so far are the start of a valid header; call again with more.
    Incomplete,
    /// A complete, valid header.
    Done {
        /// Bytes the header occupies at the start of the input. Everything after them is the
        /// client's own data, for the service.
        header_len: usize,
        /// The client's address, if the header carries one.
        source: Option<SocketAddr>,
        /// The address the client connected to (the balancer's frontend), if carried.
        destination: Option<SocketAddr>,
    },
}

/// Why the start of a connection is not a valid PROXY header. Every variant means "close the
/// connection" (§2.1: "Any sequence which does not exactly match the protocol must be
/// discarded and cause the receiver to abort the connection").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyError {
    /// Neither `PROXY ` nor the v2 signature: the peer does not speak the protocol at all (a
    /// client that bypassed the balancer, or a balancer configured without `send-proxy`).
    NotProxy,
    /// It started like a header and then broke a rule; the message names the rule.
    Malformed(&'static str),
    /// A v1 line without CRLF within [`V1_MAX_LEN`] bytes, or a v2 header announcing more than
    /// [`V2_MAX_LEN`] bytes.
    TooLong,
    /// A v2 version nibble other than 2 (§2.2: "the receiver must only accept this value").
    Version(u8),
    /// A v2 command nibble other than LOCAL (0) and PROXY (1) (§2.2: "Receivers must drop
    /// connections presenting unexpected values here").
    Command(u8),
    /// A v2 family/transport byte with an undefined family (> 3) or transport (> 2) (§2.2:
    /// "must be rejected as invalid by receivers").
    AddressFamily(u8),
    /// A v2 header whose `PP2_TYPE_CRC32C` TLV does not match its bytes (§2.2.3).
    Checksum,
}

impl fmt::Display for ProxyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProxyError::NotProxy => f.write_str(
                "not a PROXY protocol header (starts with neither \"PROXY \" nor the v2 signature)",
            ),
            ProxyError::Malformed(why) => write!(f, "malformed PROXY header: {why}"),
            ProxyError::TooLong => write!(
                f,
                "PROXY header too long (v1: no CRLF within {V1_MAX_LEN} bytes; v2: over {V2_MAX_LEN} bytes)"
            ),
            ProxyError::Version(v) => {
                write!(f, "PROXY v2 header with unsupported version {v} (only 2 exists)")
            }
            ProxyError::Command(c) => {
                write!(f, "PROXY v2 header with unassigned command {c:#x} (LOCAL is 0x0, PROXY is 0x1)")
            }
            ProxyError::AddressFamily(b) => {
                write!(f, "PROXY v2 header with undefined address family/transport byte {b:#04x}")
            }
            ProxyError::Checksum => f.write_str("PROXY v2 header fails its CRC32C checksum"),
        }
    }
}

impl std::error::Error for ProxyError {}

/// Parses the PROXY header at the start of `input`, version 1 or 2.
///
/// The first byte decides the version (§2.2, "Identifying the protocol version is easy"): `P`
/// can only start a v1 line, `\r` only the v2 signature. Anything else is
/// [`ProxyError::NotProxy`] at once.
pub fn parse(input: &[u8]) -> Result<Parsed, ProxyError> {
    match input.first() {
        None => Ok(Parsed::Incomplete),
        Some(b'P') => parse_v1(input),
        Some(b'\r') => parse_v2(input),
        Some(_) => Err(ProxyError::NotProxy),
    }
}

// ─── Version 1: one line of text (§2.1) ─────────────────────────────────────────────────────
//
//   PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n
//   PROXY TCP6 2001:db8::1 2001:db8::2 56324 443\r\n
//   PROXY UNKNOWN\r\n                                   (anything may precede the CRLF)

/// The families a v1 line can announce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum V1Family {
    Tcp4,
    Tcp6,
}

const V1_PROTOCOLS: [&[u8]; 3] = [b"TCP4", b"TCP6", b"UNKNOWN"];

fn parse_v1(input: &[u8]) -> Result<Parsed, ProxyError> {
    // §2.1: "PROXY", then "exactly one space". Lowercase `proxy` is not the protocol.
    if !b"PROXY".starts_with(&input[..input.len().min(5)]) {
        return Err(ProxyError::NotProxy);
    }
    match input.get(5) {
        None => return Ok(Parsed::Incomplete),
        Some(b' ') => {}
        Some(_) => return Err(ProxyError::Malformed("v1: \"PROXY\" must be followed by exactly one space")),
    }

    // §2.1: "If the CRLF sequence is not found in the first 107 characters, the receiver should
    // declare the line invalid."
    let window = &input[..input.len().min(V1_MAX_LEN)];
    match find_crlf(window)? {
        Some(cr) => {
            let (source, destination) = v1_line(&window[V1_PREFIX.len()..cr])?;
            Ok(Parsed::Done { header_len: cr + 2, source, destination })
        }
        None if input.len() >= V1_MAX_LEN => Err(ProxyError::TooLong),
        None => {
            v1_partial_line(&window[V1_PREFIX.len()..])?;
            Ok(Parsed::Incomplete)
        }
    }
}

/// The index of the CR of the first CRLF, or `None` if there is none yet.
///
/// §2.1: "The receiver must not tolerate a single CR or LF character to end the line when a
/// complete CRLF sequence is expected." A CR as the last byte may still be followed by its LF.
fn find_crlf(bytes: &[u8]) -> Result<Option<usize>, ProxyError> {
    let Some(i) = bytes.iter().position(|&b| b == b'\r' || b == b'\n') else {
        return Ok(None);
    };
    match (bytes[i], bytes.get(i + 1)) {
        (b'\r', Some(b'\n')) => Ok(Some(i)),
        (b'\r', None) => Ok(None),
        (b'\r', Some(_)) => Err(ProxyError::Malformed("v1: CR not followed by LF")),
        _ => Err(ProxyError::Malformed("v1: line ends with a bare LF; CRLF is required")),
    }
}

/// A complete line after `PROXY ` and before CRLF: the protocol, then for TCP4/TCP6 exactly
/// four fields, each after exactly one space.
fn v1_line(line: &[u8]) -> Result<(Option<SocketAddr>, Option<SocketAddr>), ProxyError> {
    let mut fields = line.split(|&b| b == b' ');
    let family = match v1_protocol(fields.next().unwrap_or_default())? {
        // §2.1: for UNKNOWN "the receiver must ignore anything presented before the CRLF",
        // and (later) "use the real connection's parameters".
        None => return Ok((None, None)),
        Some(family) => family,
    };
    let mut next = |what: &'static str| -> Result<&[u8], ProxyError> {
        let field = fields.next().ok_or(ProxyError::Malformed(what))?;
        if field.is_empty() {
            return Err(ProxyError::Malformed("v1: fields must be separated by exactly one space"));
        }
        Ok(field)
    };
    let missing = "v1: TCP4/TCP6 needs source address, destination address, source port, destination port";
    let src_ip = v1_address(family, next(missing)?)?;
    let dst_ip = v1_address(family, next(missing)?)?;
    let src_port = v1_port(next(missing)?)?;
    let dst_port = v1_port(next(missing)?)?;
    if fields.next().is_some() {
        return Err(ProxyError::Malformed("v1: unexpected text after the destination port"));
    }
    Ok((Some(SocketAddr::new(src_ip, src_port)), Some(SocketAddr::new(dst_ip, dst_port))))
}

/// The bytes after `PROXY ` of a line whose CRLF has not arrived: is it the start of a valid
/// line? Complete fields get the full check; the last field may still be growing, so it only
/// has to be the start of a valid field.
fn v1_partial_line(partial: &[u8]) -> Result<(), ProxyError> {
    // A trailing CR may be the start of the CRLF, so everything before it must be a whole line.
    if let Some(line) = partial.strip_suffix(b"\r") {
        return v1_line(line).map(drop);
    }
    let Some(space) = partial.iter().position(|&b| b == b' ') else {
        // Still inside the protocol name.
        return match V1_PROTOCOLS.iter().any(|p| p.starts_with(partial)) {
            true => Ok(()),
            false => Err(ProxyError::Malformed("v1: protocol must be TCP4, TCP6 or UNKNOWN")),
        };
    };
    let Some(family) = v1_protocol(&partial[..space])? else {
        return Ok(()); // UNKNOWN: anything may follow until CRLF.
    };
    let rest = &partial[space + 1..];
    let count = rest.split(|&b| b == b' ').count();
    for (i, field) in rest.split(|&b| b == b' ').enumerate() {
        let complete = i + 1 < count;
        if complete && field.is_empty() {
            return Err(ProxyError::Malformed("v1: fields must be separated by exactly one space"));
        }
        match (i, complete) {
            (0 | 1, true) => v1_address(family, field).map(drop)?,
            (0 | 1, false) if !v1_address_prefix(family, field) => {
                return Err(v1_bad_address(family));
            }
            (2 | 3, true) => v1_port(field).map(drop)?,
            (2 | 3, false) if !field.is_empty() => v1_port(field).map(drop)?,
            (0..=3, _) => {}
            _ => return Err(ProxyError::Malformed("v1: unexpected text after the destination port")),
        }
    }
    Ok(())
}

/// `Some(family)` for TCP4/TCP6, `None` for UNKNOWN (§2.1: "only TCP4 … and TCP6 … are
/// allowed. Other, unsupported, or unknown protocols must be reported with the name UNKNOWN").
fn v1_protocol(name: &[u8]) -> Result<Option<V1Family>, ProxyError> {
    match name {
        b"TCP4" => Ok(Some(V1Family::Tcp4)),
        b"TCP6" => Ok(Some(V1Family::Tcp6)),
        b"UNKNOWN" => Ok(None),
        b"" => Err(ProxyError::Malformed("v1: fields must be separated by exactly one space")),
        _ => Err(ProxyError::Malformed("v1: protocol must be TCP4, TCP6 or UNKNOWN")),
    }
}

fn v1_bad_address(family: V1Family) -> ProxyError {
    match family {
        V1Family::Tcp4 => {
            ProxyError::Malformed("v1: bad IPv4 address (four decimal octets, no leading zeros)")
        }
        V1Family::Tcp6 => ProxyError::Malformed("v1: bad IPv6 address"),
    }
}

/// §2.1: "The advertised protocol family dictates what format to use."
fn v1_address(family: V1Family, field: &[u8]) -> Result<IpAddr, ProxyError> {
    let ip = match family {
        V1Family::Tcp4 => parse_ipv4(field).map(IpAddr::V4),
        V1Family::Tcp6 => parse_ipv6(field).map(IpAddr::V6),
    };
    ip.ok_or(v1_bad_address(family))
}

/// Could `field` grow into a valid address of `family`? Exact for IPv4; for IPv6 only the
/// characters and the length are checked until the field is complete.
fn v1_address_prefix(family: V1Family, field: &[u8]) -> bool {
    match family {
        V1Family::Tcp4 => {
            // Every start of a valid octet is itself a valid octet ("2", "25" of "255"), so: at
            // most four parts, the finished ones valid, the last one empty or valid.
            let parts = field.split(|&b| b == b'.').count();
            parts <= 4
                && field.split(|&b| b == b'.').enumerate().all(|(i, part)| {
                    (i + 1 == parts && part.is_empty()) || decimal(part, u8::MAX.into()).is_some()
                })
        }
        V1Family::Tcp6 => {
            // The longest textual IPv6 address, with an embedded IPv4 tail, is 45 characters.
            field.len() <= 45
                && field.iter().all(|&b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
                && !field.windows(3).any(|w| w == b":::")
        }
    }
}

/// §2.1: "a decimal integer in the range [0..65535] inclusive. Heading zeroes are not
/// permitted". No sign either: `+80` is not a port.
fn v1_port(field: &[u8]) -> Result<u16, ProxyError> {
    decimal(field, u16::MAX.into())
        .map(|n| n as u16)
        .ok_or(ProxyError::Malformed("v1: bad port (decimal 0-65535, no sign, no leading zeros)"))
}

/// §2.1: IPv4 is "exactly 4 integers in the range [0..255] … separated by exactly one dot",
/// without leading zeros ("to avoid any possible confusion with octal numbers").
fn parse_ipv4(field: &[u8]) -> Option<Ipv4Addr> {
    let mut octets = [0u8; 4];
    let mut parts = field.split(|&b| b == b'.');
    for octet in &mut octets {
        *octet = decimal(parts.next()?, u8::MAX.into())? as u8;
    }
    parts.next().is_none().then_some(Ipv4Addr::from(octets))
}

/// §2.1 describes IPv6 as hexadecimal groups with at most one `::`, 128 bits in all: the
/// textual form the standard library parses (which also rejects zone ids and brackets).
fn parse_ipv6(field: &[u8]) -> Option<Ipv6Addr> {
    std::str::from_utf8(field).ok()?.parse().ok()
}

/// A decimal number of at most `max`: ASCII digits only, and no leading zero unless the number
/// is `0` itself.
fn decimal(digits: &[u8], max: u32) -> Option<u32> {
    let well_formed = !digits.is_empty()
        && digits.len() <= 5
        && digits.iter().all(u8::is_ascii_digit)
        && (digits[0] != b'0' || digits.len() == 1);
    if !well_formed {
        return None;
    }
    let n = digits.iter().fold(0u32, |n, &d| n * 10 + u32::from(d - b'0'));
    (n <= max).then_some(n)
}

// ─── Version 2: binary (§2.2) ───────────────────────────────────────────────────────────────
//
//    0                   12        13        14        16
//   ┌────────────────────┬─────────┬─────────┬─────────┬─────────────────────────────────┐
//   │ signature (12)     │ ver|cmd │ fam|tr  │ len (BE)│ addresses, then TLVs (len bytes) │
//   └────────────────────┴─────────┴─────────┴─────────┴─────────────────────────────────┘

/// Byte offsets of `struct proxy_hdr_v2` (§2.2), in the style of smoltcp's `field` modules:
/// the layout is written down once, and the code below names fields, not numbers.
mod field {
    use std::ops::Range;

    pub const SIGNATURE: Range<usize> = 0..12;
    /// High nibble: version (always 2). Low nibble: command.
    pub const VER_CMD: usize = 12;
    /// High nibble: address family. Low nibble: transport protocol.
    pub const FAM: usize = 13;
    /// Length of everything after the fixed part, big-endian.
    pub const LEN: Range<usize> = 14..16;
    /// Where the address block (and after it, the TLVs) starts.
    pub const ADDRESSES: usize = 16;
}

/// The v2 commands (§2.2, low nibble of the 13th byte).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Command {
    /// "the connection was established on purpose by the proxy without being relayed" (health
    /// checks): use the real endpoints and ignore the address block.
    Local,
    /// "the connection was established on behalf of another node".
    Proxy,
}

/// What the family/transport byte says about the address block (§2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AddressBlock {
    /// `0x11` TCP or `0x12` UDP over IPv4: 2×4 address bytes and 2×2 port bytes.
    Inet,
    /// `0x21` TCP or `0x22` UDP over IPv6: 2×16 address bytes and 2×2 port bytes.
    Inet6,
    /// `0x31`/`0x32`, AF_UNIX: 2×108 path bytes. Not an IP endpoint, so no addresses come out;
    /// §2.2 allows a receiver that does not implement a family to fall back to UNSPEC.
    Unix,
    /// AF_UNSPEC or an UNSPEC transport: "The receiver should ignore address information."
    /// We cannot tell where addresses end and TLVs begin, so the whole block is skipped.
    Unspec,
}

impl AddressBlock {
    /// Decodes the family/transport byte; an undefined family or transport is an error.
    fn from_byte(fam: u8) -> Result<AddressBlock, ProxyError> {
        let (family, transport) = (fam >> 4, fam & 0x0f);
        if family > 3 || transport > 2 {
            return Err(ProxyError::AddressFamily(fam));
        }
        Ok(match (family, transport) {
            (0, _) | (_, 0) => AddressBlock::Unspec,
            (1, _) => AddressBlock::Inet,
            (2, _) => AddressBlock::Inet6,
            _ => AddressBlock::Unix,
        })
    }

    /// Bytes of the address block: the least the header's length field may announce.
    fn len(self) -> usize {
        match self {
            AddressBlock::Inet => 12,
            AddressBlock::Inet6 => 36,
            AddressBlock::Unix => 216,
            AddressBlock::Unspec => 0,
        }
    }
}

/// The TLV type whose value is a CRC32c of the whole header (§2.2.3).
const PP2_TYPE_CRC32C: u8 = 0x03;

fn parse_v2(input: &[u8]) -> Result<Parsed, ProxyError> {
    // The signature, compared byte by byte so that a stranger is turned away at its first
    // wrong byte rather than after 12.
    let seen = input.len().min(field::SIGNATURE.end);
    if input[..seen] != V2_SIGNATURE[..seen] {
        return Err(ProxyError::NotProxy);
    }

    // §2.2: "The highest four bits contains the version … it must always be sent as \x2 and
    // the receiver must only accept this value." "The lowest four bits represents the
    // command"; "Receivers must drop connections presenting unexpected values here."
    let Some(&ver_cmd) = input.get(field::VER_CMD) else { return Ok(Parsed::Incomplete) };
    if ver_cmd >> 4 != 2 {
        return Err(ProxyError::Version(ver_cmd >> 4));
    }
    let command = match ver_cmd & 0x0f {
        0x0 => Command::Local,
        0x1 => Command::Proxy,
        other => return Err(ProxyError::Command(other)),
    };

    // §2.2 on LOCAL: the receiver "must use the real connection endpoints and discard the
    // protocol block including the family which is ignored". So the family byte is checked
    // only for PROXY.
    let Some(&fam) = input.get(field::FAM) else { return Ok(Parsed::Incomplete) };
    let block = match command {
        Command::Local => AddressBlock::Unspec,
        Command::Proxy => AddressBlock::from_byte(fam)?,
    };

    // §2.2: "the length of the protocol header in bytes is always exactly 16 + this value",
    // and "Receivers MUST always consider this field to skip the appropriate number of bytes".
    let Some(&[hi, lo]) = input.get(field::LEN) else { return Ok(Parsed::Incomplete) };
    let header_len = field::ADDRESSES + usize::from(u16::from_be_bytes([hi, lo]));
    if header_len > V2_MAX_LEN {
        return Err(ProxyError::TooLong);
    }
    if header_len - field::ADDRESSES < block.len() {
        return Err(ProxyError::Malformed("v2: length too short for the address family"));
    }
    // §2.2: "The receiver must not start to parse an address before the whole address block
    // is received."
    let Some(header) = input.get(..header_len) else { return Ok(Parsed::Incomplete) };

    let addresses = &header[field::ADDRESSES..];
    let (source, destination) = match block {
        AddressBlock::Inet => {
            let ip = |at: usize| Ipv4Addr::from(array::<4>(addresses, at));
            let port = |at: usize| u16::from_be_bytes(array::<2>(addresses, at));
            (
                Some(SocketAddr::V4(SocketAddrV4::new(ip(0), port(8)))),
                Some(SocketAddr::V4(SocketAddrV4::new(ip(4), port(10)))),
            )
        }
        AddressBlock::Inet6 => {
            let ip = |at: usize| Ipv6Addr::from(array::<16>(addresses, at));
            let port = |at: usize| u16::from_be_bytes(array::<2>(addresses, at));
            (
                Some(SocketAddr::V6(SocketAddrV6::new(ip(0), port(32), 0, 0))),
                Some(SocketAddr::V6(SocketAddrV6::new(ip(16), port(34), 0, 0))),
            )
        }
        AddressBlock::Unix | AddressBlock::Unspec => (None, None),
    };
    if block != AddressBlock::Unspec {
        check_tlvs(header, field::ADDRESSES + block.len())?;
    }
    Ok(Parsed::Done { header_len, source, destination })
}

/// `N` bytes of `bytes` from `at`, as an array. Callers have checked the length (the address
/// block is at least [`AddressBlock::len`] long); should that ever be wrong, missing bytes
/// read as zero rather than panicking.
fn array<const N: usize>(bytes: &[u8], at: usize) -> [u8; N] {
    let mut array = [0; N];
    for (to, from) in array.iter_mut().zip(bytes.iter().skip(at)) {
        *to = *from;
    }
    array
}

/// Walks the TLVs from `start` to the end of `header` (§2.2: "The first byte is the Type of the
/// vector. The second two bytes represent the length in bytes of the value"). They must tile
/// the rest of the header exactly. Their contents are skipped ("A receiver may choose to skip
/// over and ignore the TLVs it is not interested in"), except a CRC32c, which we verify, as
/// §2.2.3 requires of a receiver that supports it.
fn check_tlvs(header: &[u8], start: usize) -> Result<(), ProxyError> {
    let mut at = start;
    while at < header.len() {
        let Some(&[kind, hi, lo]) = header.get(at..at + 3) else {
            return Err(ProxyError::Malformed("v2: truncated TLV (fewer than 3 bytes left)"));
        };
        let value = at + 3..at + 3 + usize::from(u16::from_be_bytes([hi, lo]));
        if value.end > header.len() {
            return Err(ProxyError::Malformed("v2: TLV runs past the end of the header"));
        }
        if kind == PP2_TYPE_CRC32C {
            check_crc32c(header, value.clone())?;
        }
        at = value.end;
    }
    Ok(())
}

/// §2.2.3: "replace the 32 bits of the checksum field in the received PROXY header with all
/// '0's and calculate a CRC32c checksum value of the whole PROXY header", then compare.
fn check_crc32c(header: &[u8], value: std::ops::Range<usize>) -> Result<(), ProxyError> {
    let received = header.get(value.clone()).and_then(|v| <[u8; 4]>::try_from(v).ok());
    let Some(received) = received else {
        return Err(ProxyError::Malformed("v2: CRC32C TLV value must be 4 bytes"));
    };
    let mut crc = Crc32c::new();
    crc.update(&header[..value.start]);
    crc.update(&[0; 4]);
    crc.update(&header[value.end..]);
    match crc.finish() == u32::from_be_bytes(received) {
        true => Ok(()),
        false => Err(ProxyError::Checksum),
    }
}

/// CRC-32C (Castagnoli), the checksum of RFC 4960 Appendix B that §2.2.3 names. Bit by bit:
/// a header is at most a few kilobytes, read once per connection, so a lookup table would be
/// speed nobody notices.
struct Crc32c(u32);

impl Crc32c {
    /// The reflected Castagnoli polynomial.
    const POLY: u32 = 0x82f6_3b78;

    fn new() -> Crc32c {
        Crc32c(!0)
    }

    fn update(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 ^= u32::from(byte);
            for _ in 0..8 {
                let mask = (self.0 & 1).wrapping_neg();
                self.0 = (self.0 >> 1) ^ (Crc32c::POLY & mask);
            }
        }
    }

    fn finish(&self) -> u32 {
        !self.0
    }
}

// ─── Encoding (for tests and the load generator) ────────────────────────────────────────────

/// A v1 header line announcing a TCP connection from `source` to `destination`.
///
/// Both IPv4: `TCP4`. Otherwise `TCP6`, with an IPv4 address written as IPv4-mapped IPv6
/// (`::ffff:a.b.c.d`), since one line has one family.
pub fn encode_v1(source: SocketAddr, destination: SocketAddr) -> String {
    match (source, destination) {
        (SocketAddr::V4(s), SocketAddr::V4(d)) => {
            format!("PROXY TCP4 {} {} {} {}\r\n", s.ip(), d.ip(), s.port(), d.port())
        }
        _ => {
            let (s, d) = (as_v6(source), as_v6(destination));
            format!("PROXY TCP6 {} {} {} {}\r\n", s.ip(), d.ip(), s.port(), d.port())
        }
    }
}

/// A v2 header with the PROXY command for a TCP connection from `source` to `destination`, no
/// TLVs. Families are unified as in [`encode_v1`].
pub fn encode_v2(source: SocketAddr, destination: SocketAddr) -> Vec<u8> {
    let mut out = Vec::with_capacity(field::ADDRESSES + AddressBlock::Inet6.len());
    out.extend_from_slice(&V2_SIGNATURE);
    out.push(0x21); // version 2, command PROXY
    match (source, destination) {
        (SocketAddr::V4(s), SocketAddr::V4(d)) => {
            out.push(0x11); // AF_INET, STREAM
            out.extend_from_slice(&(AddressBlock::Inet.len() as u16).to_be_bytes());
            out.extend_from_slice(&s.ip().octets());
            out.extend_from_slice(&d.ip().octets());
        }
        _ => {
            out.push(0x21); // AF_INET6, STREAM
            out.extend_from_slice(&(AddressBlock::Inet6.len() as u16).to_be_bytes());
            out.extend_from_slice(&as_v6(source).ip().octets());
            out.extend_from_slice(&as_v6(destination).ip().octets());
        }
    }
    out.extend_from_slice(&source.port().to_be_bytes());
    out.extend_from_slice(&destination.port().to_be_bytes());
    out
}

fn as_v6(addr: SocketAddr) -> SocketAddrV6 {
    match addr {
        SocketAddr::V4(a) => SocketAddrV6::new(a.ip().to_ipv6_mapped(), a.port(), 0, 0),
        SocketAddr::V6(a) => a,
    }
}
