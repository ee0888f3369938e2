//! Tests for the PROXY protocol parser: valid headers of every kind, every prefix of them, the
//! bytes after them, and a corpus of broken ones, each with the error it must produce.

use super::*;
use std::mem::discriminant;

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn done(header_len: usize, source: Option<&str>, destination: Option<&str>) -> Parsed {
    Parsed::Done { header_len, source: source.map(addr), destination: destination.map(addr) }
}

/// A v2 header from its parts: signature, version/command byte, family byte, the length
/// field computed from `body`, then `body` (addresses and TLVs).
fn v2(ver_cmd: u8, fam: u8, body: &[u8]) -> Vec<u8> {
    let mut out = V2_SIGNATURE.to_vec();
    out.push(ver_cmd);
    out.push(fam);
    out.extend_from_slice(&(body.len() as u16).to_be_bytes());
    out.extend_from_slice(body);
    out
}

/// The v2 address block for TCP over IPv4 192.0.2.1:56324 → 198.51.100.7:443.
const INET_BLOCK: [u8; 12] = [192, 0, 2, 1, 198, 51, 100, 7, 0xdc, 0x04, 0x01, 0xbb];

fn inet6_block() -> Vec<u8> {
    let mut block = Vec::new();
    block.extend_from_slice(&"2001:db8::1".parse::<Ipv6Addr>().unwrap().octets());
    block.extend_from_slice(&"2001:db8::2".parse::<Ipv6Addr>().unwrap().octets());
    block.extend_from_slice(&56324u16.to_be_bytes());
    block.extend_from_slice(&443u16.to_be_bytes());
    block
}

/// A TLV: type, 2-byte big-endian length, value.
fn tlv(kind: u8, value: &[u8]) -> Vec<u8> {
    let mut out = vec![kind];
    out.extend_from_slice(&(value.len() as u16).to_be_bytes());
    out.extend_from_slice(value);
    out
}

/// Valid headers of every kind, with what they must parse to.
fn valid() -> Vec<(&'static str, Vec<u8>, Parsed)> {
    let tlvs = [tlv(0x02, b"example.com"), tlv(0x04, b""), tlv(0x05, &[7; 16])].concat();
    let inet_tlvs = [&INET_BLOCK[..], &tlvs].concat();
    let inet6_tlvs = [inet6_block(), tlvs.clone()].concat();
    let v4 = (Some("192.0.2.1:56324"), Some("198.51.100.7:443"));
    let v6 = (Some("[2001:db8::1]:56324"), Some("[2001:db8::2]:443"));
    let v1_v6 = b"PROXY TCP6 2001:db8::1 2001:db8::2 56324 443\r\n".to_vec();
    let v1_max = format!("PROXY UNKNOWN {0} {0} 65535 65535\r\n", "ffff:".repeat(7) + "ffff");
    vec![
        ("v1 TCP4", b"PROXY TCP4 192.0.2.1 198.51.100.7 56324 443\r\n".to_vec(), done(45, v4.0, v4.1)),
        ("v1 TCP4 extremes", b"PROXY TCP4 0.0.0.0 255.255.255.255 0 65535\r\n".to_vec(), {
            done(44, Some("0.0.0.0:0"), Some("255.255.255.255:65535"))
        }),
        ("v1 TCP6", v1_v6.clone(), done(v1_v6.len(), v6.0, v6.1)),
        ("v1 TCP6 v4-mapped", b"PROXY TCP6 ::ffff:192.0.2.1 ::1 1 2\r\n".to_vec(), {
            done(37, Some("[::ffff:192.0.2.1]:1"), Some("[::1]:2"))
        }),
        ("v1 UNKNOWN short", b"PROXY UNKNOWN\r\n".to_vec(), done(15, None, None)),
        (
            "v1 UNKNOWN with addresses",
            b"PROXY UNKNOWN 1.2.3.4 5.6.7.8 1 2\r\n".to_vec(),
            done(35, None, None),
        ),
        ("v1 UNKNOWN at 107 bytes", v1_max.clone().into_bytes(), done(V1_MAX_LEN, None, None)),
        ("v2 PROXY TCP4", v2(0x21, 0x11, &INET_BLOCK), done(28, v4.0, v4.1)),
        ("v2 PROXY UDP4", v2(0x21, 0x12, &INET_BLOCK), done(28, v4.0, v4.1)),
        ("v2 PROXY TCP4 + TLVs", v2(0x21, 0x11, &inet_tlvs), done(16 + inet_tlvs.len(), v4.0, v4.1)),
        ("v2 PROXY TCP6", v2(0x21, 0x21, &inet6_block()), done(52, v6.0, v6.1)),
        ("v2 PROXY TCP6 + TLVs", v2(0x21, 0x21, &inet6_tlvs), done(16 + inet6_tlvs.len(), v6.0, v6.1)),
        ("v2 PROXY UNIX stream", v2(0x21, 0x31, &[0; 216]), done(232, None, None)),
        ("v2 PROXY UNSPEC", v2(0x21, 0x00, &[]), done(16, None, None)),
        ("v2 PROXY UNSPEC with a block", v2(0x21, 0x00, &[1, 2, 3]), done(19, None, None)),
        ("v2 LOCAL", v2(0x20, 0x00, &[]), done(16, None, None)),
        // §2.2: "must not assume zero is presented for LOCAL connections", and the family "is
        // ignored": a LOCAL header with a block (even one that would not parse) is skipped.
        ("v2 LOCAL with a block", v2(0x20, 0x11, &INET_BLOCK), done(28, None, None)),
        ("v2 LOCAL, family ignored", v2(0x20, 0xff, &[0xff; 5]), done(21, None, None)),
    ]
}

#[test]
fn valid_headers_parse() {
    for (name, header, expected) in valid() {
        assert_eq!(parse(&header), Ok(expected), "{name}");
    }
}

#[test]
fn every_prefix_of_a_valid_header_is_incomplete() {
    for (name, header, _) in valid() {
        for end in 0..header.len() {
            assert_eq!(parse(&header[..end]), Ok(Parsed::Incomplete), "{name}, first {end} bytes");
        }
    }
}

#[test]
fn bytes_after_the_header_are_not_part_of_it() {
    for (name, header, expected) in valid() {
        let mut input = header.clone();
        input.extend_from_slice(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
        assert_eq!(parse(&input), Ok(expected), "{name}");
        let Ok(Parsed::Done { header_len, .. }) = parse(&input) else { unreachable!() };
        assert_eq!(&input[header_len..header_len + 3], b"GET", "{name}");
    }
}

#[test]
fn v1_header_followed_by_a_long_payload() {
    // The 107-byte window must not make a short header followed by data look too long.
    let mut input = b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n".to_vec();
    input.extend_from_slice(&[b'x'; 500]);
    assert_eq!(parse(&input), Ok(done(32, Some("1.2.3.4:1"), Some("5.6.7.8:2"))));
}

#[test]
fn http_is_rejected_at_its_first_byte() {
    // A client that bypassed the balancer: no need to wait for a timeout to know.
    for input in [&b"G"[..], b"GET / HTTP/1.1\r\n", b"\x16\x03\x01", b"*1\r\n$4\r\nPING\r\n", b"hello"] {
        assert_eq!(parse(input), Err(ProxyError::NotProxy), "{:?}", String::from_utf8_lossy(input));
    }
    // "PUT" shares the first byte with "PROXY", and is turned away at its second.
    assert_eq!(parse(b"P"), Ok(Parsed::Incomplete));
    assert_eq!(parse(b"PU"), Err(ProxyError::NotProxy));
    // A blank line and then HTTP shares four bytes with the v2 signature.
    assert_eq!(parse(b"\r\n\r\n"), Ok(Parsed::Incomplete));
    assert_eq!(parse(b"\r\n\r\nG"), Err(ProxyError::NotProxy));
}

/// Broken headers, complete as far as the sender is concerned, and the error each must get.
fn malformed() -> Vec<(&'static str, Vec<u8>, ProxyError)> {
    let m = ProxyError::Malformed("");
    let v1 = |s: &str| s.as_bytes().to_vec();
    let mut bad_sig = v2(0x21, 0x11, &INET_BLOCK);
    bad_sig[11] = b'\r';
    let mut crc_header = v2(0x21, 0x11, &[&INET_BLOCK[..], &tlv(PP2_TYPE_CRC32C, &[0; 4])].concat());
    let crc_at = crc_header.len() - 4;
    crc_header[crc_at..].copy_from_slice(&0xdead_beefu32.to_be_bytes());
    let mut too_long = v2(0x21, 0x11, &INET_BLOCK);
    too_long[14..16].copy_from_slice(&((V2_MAX_LEN - 16 + 1) as u16).to_be_bytes());
    vec![
        // v1: the prefix and the protocol name
        ("lowercase proxy", v1("proxy TCP4 1.2.3.4 5.6.7.8 1 2\r\n"), ProxyError::NotProxy),
        ("PROXY without its space", v1("PROXY\tTCP4 1.2.3.4 5.6.7.8 1 2\r\n"), m),
        ("two spaces after PROXY", v1("PROXY  TCP4 1.2.3.4 5.6.7.8 1 2\r\n"), m),
        ("unknown protocol", v1("PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n"), m),
        ("lowercase protocol", v1("PROXY tcp4 1.2.3.4 5.6.7.8 1 2\r\n"), m),
        ("UNKNOWN run on", v1("PROXY UNKNOWNX\r\n"), m),
        ("no protocol", v1("PROXY \r\n"), m),
        // v1: line endings and length
        ("bare LF", v1("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n"), m),
        ("CR without LF", v1("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\rX"), m),
        ("CR CR LF", v1("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\r\n"), m),
        ("no CRLF within 107 bytes", [v1("PROXY UNKNOWN "), vec![b'a'; 200]].concat(), ProxyError::TooLong),
        ("CRLF at bytes 108-109", [v1("PROXY UNKNOWN "), vec![b'a'; 92], v1("\r\n")].concat(), {
            ProxyError::TooLong
        }),
        // v1: fields
        ("double space between fields", v1("PROXY TCP4 1.2.3.4  5.6.7.8 1 2\r\n"), m),
        ("trailing space", v1("PROXY TCP4 1.2.3.4 5.6.7.8 1 2 \r\n"), m),
        ("TCP4 without fields", v1("PROXY TCP4\r\n"), m),
        ("missing destination port", v1("PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n"), m),
        ("extra field", v1("PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n"), m),
        ("tab separator", v1("PROXY TCP4 1.2.3.4\t5.6.7.8 1 2\r\n"), m),
        // v1: ports
        ("port 65536", v1("PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n"), m),
        ("port with +", v1("PROXY TCP4 1.2.3.4 5.6.7.8 +80 2\r\n"), m),
        ("port with -", v1("PROXY TCP4 1.2.3.4 5.6.7.8 -1 2\r\n"), m),
        ("port with a leading zero", v1("PROXY TCP4 1.2.3.4 5.6.7.8 080 2\r\n"), m),
        ("port in hex", v1("PROXY TCP4 1.2.3.4 5.6.7.8 1 0x50\r\n"), m),
        ("port of 100000", v1("PROXY TCP4 1.2.3.4 5.6.7.8 1 100000\r\n"), m),
        // v1: addresses
        ("octet 256", v1("PROXY TCP4 256.2.3.4 5.6.7.8 1 2\r\n"), m),
        ("octet with a leading zero", v1("PROXY TCP4 01.2.3.4 5.6.7.8 1 2\r\n"), m),
        ("three octets", v1("PROXY TCP4 1.2.3 5.6.7.8 1 2\r\n"), m),
        ("five octets", v1("PROXY TCP4 1.2.3.4.5 5.6.7.8 1 2\r\n"), m),
        ("empty octet", v1("PROXY TCP4 1..3.4 5.6.7.8 1 2\r\n"), m),
        ("host name", v1("PROXY TCP4 localhost 5.6.7.8 1 2\r\n"), m),
        ("IPv6 under TCP4", v1("PROXY TCP4 ::1 5.6.7.8 1 2\r\n"), m),
        ("IPv4 under TCP6", v1("PROXY TCP6 1.2.3.4 ::1 1 2\r\n"), m),
        ("two ::", v1("PROXY TCP6 2001::db8::1 ::1 1 2\r\n"), m),
        ("IPv6 in brackets", v1("PROXY TCP6 [::1] ::1 1 2\r\n"), m),
        ("IPv6 with a zone", v1("PROXY TCP6 fe80::1%eth0 ::1 1 2\r\n"), m),
        // v2: signature, version, command
        ("v2 signature off by one byte", bad_sig, ProxyError::NotProxy),
        ("v2 signature then HTTP", b"\r\n\r\nGET / HTTP/1.1\r\n".to_vec(), ProxyError::NotProxy),
        ("v2 version 1", v2(0x11, 0x11, &INET_BLOCK), ProxyError::Version(1)),
        ("v2 version 3", v2(0x31, 0x11, &INET_BLOCK), ProxyError::Version(3)),
        ("v2 command 2", v2(0x22, 0x11, &INET_BLOCK), ProxyError::Command(2)),
        ("v2 command 15", v2(0x2f, 0x11, &INET_BLOCK), ProxyError::Command(15)),
        // v2: family and length
        ("v2 family 4", v2(0x21, 0x41, &INET_BLOCK), ProxyError::AddressFamily(0x41)),
        ("v2 transport 3", v2(0x21, 0x13, &INET_BLOCK), ProxyError::AddressFamily(0x13)),
        ("v2 IPv4 block of 11 bytes", v2(0x21, 0x11, &INET_BLOCK[..11]), m),
        ("v2 IPv4 without a block", v2(0x21, 0x11, &[]), m),
        ("v2 IPv6 block of 35 bytes", v2(0x21, 0x21, &inet6_block()[..35]), m),
        ("v2 IPv6 length with an IPv4 block", v2(0x21, 0x21, &INET_BLOCK), m),
        ("v2 UNIX block of 215 bytes", v2(0x21, 0x31, &[0; 215]), m),
        ("v2 length over the cap", too_long, ProxyError::TooLong),
        // v2: TLVs
        ("v2 TLV cut to 2 bytes", v2(0x21, 0x11, &[&INET_BLOCK[..], &[0x04, 0]].concat()), m),
        ("v2 TLV past the end", v2(0x21, 0x11, &[&INET_BLOCK[..], &[0x04, 0, 5, 1, 2]].concat()), m),
        (
            "v2 TLV after a good one",
            { v2(0x21, 0x11, &[&INET_BLOCK[..], &tlv(0x04, b"ab"), &[0x02, 0xff, 0xff]].concat()) },
            m,
        ),
        (
            "v2 CRC32C of 3 bytes",
            v2(0x21, 0x11, &[&INET_BLOCK[..], &tlv(PP2_TYPE_CRC32C, &[0; 3])].concat()),
            m,
        ),
        ("v2 wrong CRC32C", crc_header, ProxyError::Checksum),
    ]
}

#[test]
fn malformed_headers_are_rejected() {
    let cases = malformed();
    assert!(cases.len() >= 25);
    for (name, input, expected) in cases {
        let got = parse(&input);
        match got {
            Err(e) if discriminant(&e) == discriminant(&expected) => {
                if !matches!(expected, ProxyError::Malformed(_)) {
                    assert_eq!(e, expected, "{name}");
                }
            }
            other => panic!("{name}: expected {expected:?}, got {other:?}"),
        }
    }
}

#[test]
fn malformed_headers_are_rejected_before_they_end() {
    // §2.1: "abort the connection as soon as possible". Each of these is already wrong
    // without its CRLF (or, for v2, its address block).
    let early: [&[u8]; 14] = [
        b"PROXY TCP7",
        b"PROXY TCP4  ",
        b"PROXY UNKNOWNX",
        b"PROXY TCP4 256",
        b"PROXY TCP4 1.2.3.4.",
        b"PROXY TCP4 01",
        b"PROXY TCP4 1.2.3.4  ",
        b"PROXY TCP4 1.2.3.4 5.6.7.8 +",
        b"PROXY TCP4 1.2.3.4 5.6.7.8 65536",
        b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2 ",
        b"PROXY TCP6 2001:::",
        b"PROXY TCP6 fe80::1%",
        b"PROXY TCP4 1.2.3.4 5.6.7.8 1\r",
        b"\r\n\r\n\0\r\nQUIT\n\x11",
    ];
    for input in early {
        assert!(parse(input).is_err(), "{:?} should already be rejected", String::from_utf8_lossy(input));
    }
    // The first bytes of a broken v1 line whose fields are still arriving are fine...
    assert_eq!(parse(b"PROXY TCP4 1.2.3.4 5.6.7.8 6553"), Ok(Parsed::Incomplete));
    assert_eq!(parse(b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r"), Ok(Parsed::Incomplete));
    // ...and v2 length problems show at byte 16, before any address byte.
    let short = v2(0x21, 0x11, &INET_BLOCK[..11]);
    assert!(matches!(parse(&short[..16]), Err(ProxyError::Malformed(_))));
    let mut huge = v2(0x21, 0x11, &[]);
    huge[14..16].copy_from_slice(&u16::MAX.to_be_bytes());
    assert_eq!(parse(&huge), Err(ProxyError::TooLong));
}

#[test]
fn v2_crc32c_is_verified() {
    let mut header = v2(0x21, 0x11, &[&INET_BLOCK[..], &tlv(PP2_TYPE_CRC32C, &[0; 4])].concat());
    let mut crc = Crc32c::new();
    crc.update(&header);
    let at = header.len() - 4;
    header[at..].copy_from_slice(&crc.finish().to_be_bytes());
    assert_eq!(parse(&header), Ok(done(header.len(), Some("192.0.2.1:56324"), Some("198.51.100.7:443"))));
    // Any flipped bit in the covered bytes is caught.
    header[16] ^= 1;
    assert_eq!(parse(&header), Err(ProxyError::Checksum));
}

#[test]
fn crc32c_known_answer() {
    // The standard check value of CRC-32C (RFC 3720 §B.4 and every CRC catalogue).
    let mut crc = Crc32c::new();
    crc.update(b"123456789");
    assert_eq!(crc.finish(), 0xe306_9283);
}

#[test]
fn encoders_round_trip() {
    let pairs = [
        ("192.0.2.1:56324", "198.51.100.7:443"),
        ("0.0.0.0:0", "255.255.255.255:65535"),
        ("[2001:db8::1]:56324", "[2001:db8::2]:443"),
        ("[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535", "[::]:0"),
    ];
    for (s, d) in pairs {
        let v1 = encode_v1(addr(s), addr(d));
        assert_eq!(parse(v1.as_bytes()), Ok(done(v1.len(), Some(s), Some(d))), "{v1:?}");
        assert!(v1.len() <= V1_MAX_LEN);
        let v2 = encode_v2(addr(s), addr(d));
        assert_eq!(parse(&v2), Ok(done(v2.len(), Some(s), Some(d))), "{v2:?}");
    }
    assert_eq!(
        encode_v1(addr("192.0.2.1:1"), addr("198.51.100.7:2")),
        "PROXY TCP4 192.0.2.1 198.51.100.7 1 2\r\n"
    );
    assert_eq!(encode_v2(addr("192.0.2.1:56324"), addr("198.51.100.7:443")), v2(0x21, 0x11, &INET_BLOCK));
}

#[test]
fn encoders_unify_mixed_families_as_ipv4_mapped() {
    let (s, d) = (addr("192.0.2.1:1"), addr("[2001:db8::2]:2"));
    let mapped = Some("[::ffff:192.0.2.1]:1");
    let v1 = encode_v1(s, d);
    assert_eq!(v1, "PROXY TCP6 ::ffff:192.0.2.1 2001:db8::2 1 2\r\n");
    assert_eq!(parse(v1.as_bytes()), Ok(done(v1.len(), mapped, Some("[2001:db8::2]:2"))));
    let v2 = encode_v2(s, d);
    assert_eq!(parse(&v2), Ok(done(52, mapped, Some("[2001:db8::2]:2"))));
}

#[test]
fn errors_explain_themselves() {
    let all = [
        ProxyError::NotProxy,
        ProxyError::Malformed("v1: bad port"),
        ProxyError::TooLong,
        ProxyError::Version(1),
        ProxyError::Command(2),
        ProxyError::AddressFamily(0x41),
        ProxyError::Checksum,
    ];
    for e in all {
        let text = e.to_string();
        assert!(text.contains("PROXY"), "{text}");
    }
    assert_eq!(ProxyError::Malformed("v1: bad port").to_string(), "malformed PROXY header: v1: bad port");
    assert_eq!(
        ProxyError::AddressFamily(0x41).to_string(),
        "PROXY v2 header with undefined address family/transport byte 0x41"
    );
}

/// A deterministic xorshift generator, so the mutation test below needs no dependency.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[test]
fn mutated_headers_never_panic_and_errors_are_final() {
    // Flip random bytes of valid headers and feed every prefix. Besides "no panic", check the
    // property the reactor relies on: once a prefix is rejected, no longer input is accepted,
    // and once a header is complete, more bytes do not change it.
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    let headers: Vec<Vec<u8>> = valid().into_iter().map(|(_, h, _)| h).collect();
    for round in 0..2_000 {
        let mut input = headers[round % headers.len()].clone();
        input.extend_from_slice(b"payload");
        for _ in 0..1 + rng.next() % 3 {
            let at = (rng.next() as usize) % input.len();
            input[at] = match rng.next() % 4 {
                0 => b' ',
                1 => b'\r',
                2 => (rng.next() % 10) as u8 + b'0',
                _ => rng.next() as u8,
            };
        }
        let mut previous = Ok(Parsed::Incomplete);
        for end in 0..=input.len() {
            let now = parse(&input[..end]);
            match (&previous, &now) {
                (Err(_), Ok(_)) => panic!("{input:?}: rejected at {} bytes, accepted at {end}", end - 1),
                (Ok(Parsed::Done { .. }), _) => assert_eq!(now, previous, "{input:?} at {end}"),
                _ => {}
            }
            previous = now;
        }
    }
}

/// Lower-case hex to bytes, for the captured vectors below.
fn unhex(hex: &str) -> Vec<u8> {
    (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap()).collect()
}

#[test]
fn headers_captured_from_haproxy() {
    // What HAProxy 2.6 (`server … send-proxy-v2 check`, `option httpchk`) really sent to a
    // backend on loopback: a health check, then `curl --interface 127.0.0.2` through it.
    let check = unhex("0d0a0d0a000d0a515549540a20000000474554202f20485454502f312e310d0a");
    assert_eq!(parse(&check), Ok(done(16, None, None)), "LOCAL: use the real endpoints");
    assert_eq!(&check[16..], b"GET / HTTP/1.1\r\n");

    let relayed = unhex("0d0a0d0a000d0a515549540a2111000c7f0000027f000001a414733c474554202f78");
    assert_eq!(parse(&relayed), Ok(done(28, Some("127.0.0.2:42004"), Some("127.0.0.1:29500"))));
    assert_eq!(&relayed[28..], b"GET /x");
}
