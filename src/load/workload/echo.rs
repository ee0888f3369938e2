//! Echo: each request is `size` bytes that name themselves, and must come back exactly.
//!
//! A message is an 8-byte big-endian *tag* — the sending connection in the high 24 bits, its
//! sequence number in the low 40 — followed by filler computed from the tag. The same bytes
//! serve TCP (where messages run together in one stream) and UDP (one message per datagram).
//!
//! ```text
//!   0        8                                               size
//!   ├────────┼─────────────────────────────────────────────────┤
//!   │  tag   │ filler: byte i = tag + 31·i (mod 256)           │
//!   └────────┴─────────────────────────────────────────────────┘
//! ```
//!
//! The filler makes every corruption visible: a flipped byte breaks the pattern at that byte,
//! a dropped or duplicated byte shifts everything after it (neighbouring bytes differ by 31,
//! never 0), and a message from another connection or an earlier round carries another tag.
//! Checking is done byte by byte on whatever has arrived, so a wrong byte is reported as soon
//! as it is read, not when a whole message is in.

use super::{Answer, Verdict, Workload};

/// Bytes of the tag at the front of every message: the smallest allowed `--size`.
pub const TAG_LEN: usize = 8;

const SEQ_BITS: u32 = 40;
const SEQ_MASK: u64 = (1 << SEQ_BITS) - 1;

/// The echo workload, over TCP or UDP.
#[derive(Debug, Clone)]
pub struct EchoLoad {
    size: usize,
}

impl EchoLoad {
    /// Messages of `size` bytes (at least [`TAG_LEN`]; smaller sizes are raised to it).
    pub fn new(size: usize) -> Self {
        EchoLoad { size: size.max(TAG_LEN) }
    }
}

/// The tag of request `k` of connection `conn`.
pub fn tag(conn: usize, k: u64) -> u64 {
    ((conn as u64) << SEQ_BITS) | (k & SEQ_MASK)
}

/// The filler byte at offset `i` of a message tagged `tag`.
fn filler(tag: u64, i: usize) -> u8 {
    tag.wrapping_add((i as u64).wrapping_mul(31)) as u8
}

/// Writes message `k` of connection `conn`, `size` bytes (at least [`TAG_LEN`]), to `out`.
pub fn message(conn: usize, k: u64, size: usize, out: &mut Vec<u8>) {
    let tag = tag(conn, k);
    out.extend_from_slice(&tag.to_be_bytes());
    out.extend((TAG_LEN..size).map(|i| filler(tag, i)));
}

/// Which request a whole message names, `(conn, k)`, if it is one: `size` bytes whose filler
/// matches its tag. Otherwise what is wrong with it.
pub fn check(message: &[u8], size: usize) -> Result<(usize, u64), String> {
    if message.len() != size {
        return Err(format!("{} bytes, sent {size}", message.len()));
    }
    let Some(head) = message.first_chunk::<TAG_LEN>() else {
        return Err(format!("{} bytes, shorter than a tag", message.len()));
    };
    let tag = u64::from_be_bytes(*head);
    match wrong_byte(message, tag) {
        Some(wrong) => Err(wrong),
        None => Ok(names(tag)),
    }
}

/// The first byte of `bytes` (a message's front, tag included) that breaks the pattern of
/// `tag`, described; `None` if every byte there is right.
fn wrong_byte(bytes: &[u8], tag: u64) -> Option<String> {
    let i = (TAG_LEN..bytes.len()).find(|&i| bytes[i] != filler(tag, i))?;
    Some(format!("message {tag:#x}: byte {i} is {:#04x}, sent {:#04x}", bytes[i], filler(tag, i)))
}

/// The request a tag names: `(conn, k)`.
fn names(tag: u64) -> (usize, u64) {
    ((tag >> SEQ_BITS) as usize, tag & SEQ_MASK)
}

impl Workload for EchoLoad {
    fn name(&self) -> &'static str {
        "echo"
    }

    fn encode(&mut self, conn: usize, k: u64, out: &mut Vec<u8>) {
        message(conn, k, self.size, out);
    }

    fn parse(&mut self, _conn: usize, input: &[u8]) -> Verdict {
        let Some(head) = input.first_chunk::<TAG_LEN>() else {
            return Verdict::Incomplete;
        };
        let tag = u64::from_be_bytes(*head);
        let have = input.len().min(self.size);
        if let Some(wrong) = wrong_byte(&input[..have], tag) {
            return Verdict::Mismatch(match text_line(input) {
                // Not an echo at all but a line of text: most likely the server's own words,
                // such as the refusal a full server sends before it closes. Show them.
                Some(line) => format!("echo: the server sent text instead: {line:?}"),
                None => format!("echo of {wrong}"),
            });
        }
        if have < self.size {
            return Verdict::Incomplete;
        }
        let (conn, k) = names(tag);
        Verdict::Ok { len: self.size, answers: Answer::Request { conn, k } }
    }
}

/// The first line of `input`, if it is a whole line of printable ASCII (at most 200 bytes).
/// Messages never look like that: their filler steps by 31, through control bytes and past 127.
fn text_line(input: &[u8]) -> Option<&str> {
    let end = input.iter().take(200).position(|&b| b == b'\n')?;
    let line = input[..end].strip_suffix(b"\r").unwrap_or(&input[..end]);
    let printable = line.iter().all(|&b| b == b' ' || b.is_ascii_graphic());
    (printable && !line.is_empty()).then(|| std::str::from_utf8(line).ok()).flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_parses_as_itself_and_names_its_request() {
        let mut w = EchoLoad::new(64);
        let mut buf = Vec::new();
        w.encode(3, 41, &mut buf);
        assert_eq!(buf.len(), 64);
        assert_eq!(w.parse(3, &buf[..63]), Verdict::Incomplete);
        assert_eq!(w.parse(3, &buf), Verdict::Ok { len: 64, answers: Answer::Request { conn: 3, k: 41 } });
    }

    #[test]
    fn a_corrupt_or_missing_byte_is_a_mismatch_as_soon_as_it_arrives() {
        let mut w = EchoLoad::new(64);
        let mut buf = Vec::new();
        w.encode(0, 7, &mut buf);
        let mut corrupt = buf.clone();
        corrupt[20] ^= 1;
        assert!(matches!(w.parse(0, &corrupt[..21]), Verdict::Mismatch(_)));
        let mut dropped = buf.clone();
        dropped.remove(30);
        assert!(matches!(w.parse(0, &dropped), Verdict::Mismatch(_)));
    }

    /// A full server's refusal is a line of text: the report quotes it, so the user reads
    /// why instead of a byte offset.
    #[test]
    fn a_line_of_text_instead_of_an_echo_is_quoted() {
        let mut w = EchoLoad::new(64);
        let Verdict::Mismatch(why) = w.parse(0, b"server busy: too many connections\n") else {
            panic!("a refusal is not an echo");
        };
        assert_eq!(why, r#"echo: the server sent text instead: "server busy: too many connections""#);
        // Real messages never read as text, whatever their tag.
        for k in 0..1000 {
            let mut buf = Vec::new();
            w.encode(k % 7, k as u64 * 7919, &mut buf);
            assert_eq!(text_line(&buf), None);
        }
    }
}
