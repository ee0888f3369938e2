//! Chat: fan-out. Each member's line must reach every *other* member, once, in order.
//!
//! A request is one line, `L <sender> <k> <padding>\n`, padded to `size` bytes. The server
//! delivers it to everyone else as `<name>: L <sender> <k> <padding>\n`, where `<name>` is the
//! sender's guest name (which we do not need: the sender's index travels in the line). The
//! request is complete when all other members have received it — its [`Audience`] is
//! [`Audience::Others`] — so its latency is the time until the *last* member heard it.
//!
//! Verification, on each receiving member:
//!
//! * lines from the server (`*** …`) are skipped, except that the welcome line marks the
//!   member as joined ([`Workload::ready`]); nobody sends until every member has joined
//!   ([`Workload::start_together`]), or early lines would miss late members;
//! * our own lines must never come back (the server does not echo a member's own lines);
//! * from each sender, numbers must arrive in order without gaps: a lost, duplicated or
//!   reordered line is a mismatch; so is any change to the padding;
//! * lines from someone else in the room (a person with `nc`) are skipped.

use std::collections::HashMap;

use super::{Answer, Audience, Verdict, Workload};

/// Longest line accepted from the server before calling it a mismatch. The server's own
/// limit (`--chat-max-line`, default 4096) plus room for a name.
const MAX_LINE: usize = 8 * 1024;

/// The chat workload.
#[derive(Debug)]
pub struct ChatLoad {
    size: usize,
    /// Whether each member got its welcome line.
    joined: Vec<bool>,
    /// A server notice (`*** …`) a member got before any welcome: why it was turned away.
    refusal: Vec<Option<String>>,
    /// `(receiver, sender)` → the number of the next line the receiver must get from the sender.
    next: HashMap<(usize, usize), u64>,
}

impl ChatLoad {
    /// Lines of `size` bytes (a lower bound: the header is never cut) for `conns` members.
    pub fn new(size: usize, conns: usize) -> Self {
        ChatLoad { size, joined: vec![false; conns], refusal: vec![None; conns], next: HashMap::new() }
    }
}

/// Padding bytes of line `k` of member `conn`: whatever brings the line, header `L conn k `
/// and newline included, to `size` bytes, and at least one, so the check always has
/// something to check.
fn padding_len(size: usize, conn: usize, k: u64) -> usize {
    let header = format!("L {conn} {k} ").len();
    size.saturating_sub(header + 1).max(1)
}

fn pad(k: u64, i: usize) -> u8 {
    b'a' + ((k as usize + i) % 26) as u8
}

/// `L <number>` and a space: the start of one of our lines, whatever follows. A line that
/// starts so and does not parse was ours and got damaged, not a person's chatter.
fn looks_like_ours(body: &[u8]) -> bool {
    let Some(rest) = body.strip_prefix(b"L ") else {
        return false;
    };
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    digits > 0 && rest.get(digits) == Some(&b' ')
}

/// Parses `L <sender> <k> <padding>` (after the `name: ` prefix).
fn parse_body(body: &[u8]) -> Option<(usize, u64, &[u8])> {
    let rest = body.strip_prefix(b"L ")?;
    let mut parts = rest.splitn(3, |&b| b == b' ');
    let sender = std::str::from_utf8(parts.next()?).ok()?.parse().ok()?;
    let k = std::str::from_utf8(parts.next()?).ok()?.parse().ok()?;
    Some((sender, k, parts.next()?))
}

impl Workload for ChatLoad {
    fn name(&self) -> &'static str {
        "chat"
    }

    fn encode(&mut self, conn: usize, k: u64, out: &mut Vec<u8>) {
        out.extend_from_slice(format!("L {conn} {k} ").as_bytes());
        out.extend((0..padding_len(self.size, conn, k)).map(|i| pad(k, i)));
        out.push(b'\n');
    }

    fn parse(&mut self, conn: usize, input: &[u8]) -> Verdict {
        let Some(end) = input.iter().position(|&b| b == b'\n') else {
            if input.len() > MAX_LINE {
                return Verdict::Mismatch(format!("a line longer than {MAX_LINE} bytes"));
            }
            return Verdict::Incomplete;
        };
        let line = &input[..end];
        let len = end + 1;
        if line.starts_with(b"***") {
            if let (Some(joined), Some(refusal)) = (self.joined.get_mut(conn), self.refusal.get_mut(conn)) {
                if line.starts_with(b"*** welcome") {
                    *joined = true;
                } else if !*joined {
                    *refusal = Some(String::from_utf8_lossy(line).into_owned());
                }
            }
            return Verdict::Skip(len);
        }
        let Some(colon) = line.windows(2).position(|w| w == b": ") else {
            return Verdict::Skip(len); // not a member's line: an action (`* x waves`), say
        };
        let body = &line[colon + 2..];
        let Some((sender, k, padding)) = parse_body(body) else {
            if looks_like_ours(body) {
                return Verdict::Mismatch(format!(
                    "a load line cut short: {:?}",
                    String::from_utf8_lossy(body)
                ));
            }
            return Verdict::Skip(len); // somebody else in the room
        };
        if sender == conn {
            return Verdict::Mismatch(format!("member {conn} received its own line #{k}"));
        }
        let next = self.next.entry((conn, sender)).or_insert(0);
        if k != *next {
            return Verdict::Mismatch(format!(
                "member {conn} got line #{k} of member {sender}, expected #{next} (lost, duplicated or reordered)"
            ));
        }
        if let Some(i) = padding.iter().enumerate().position(|(i, &b)| b != pad(k, i)) {
            return Verdict::Mismatch(format!("line #{k} of member {sender}: padding byte {i} changed"));
        }
        let expected = padding_len(self.size, sender, k);
        if padding.len() != expected {
            return Verdict::Mismatch(format!(
                "line #{k} of member {sender}: {} bytes of padding, sent {expected}",
                padding.len()
            ));
        }
        *next += 1;
        Verdict::Ok { len, answers: Answer::Request { conn: sender, k } }
    }

    fn audience(&self) -> Audience {
        Audience::Others
    }

    fn ready(&self, conn: usize) -> bool {
        self.joined.get(conn).copied().unwrap_or(false)
    }

    fn turned_away(&self, conn: usize) -> Option<&str> {
        self.refusal.get(conn)?.as_deref()
    }

    fn start_together(&self) -> bool {
        true
    }

    /// A member that left is gone: a new connection would be a new member, with a new name,
    /// that missed what was said meanwhile.
    fn can_reopen(&self, _conn: usize, _next_k: u64) -> bool {
        false
    }

    fn heard(&self, receiver: usize, sender: usize) -> u64 {
        self.next.get(&(receiver, sender)).copied().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_relayed_line_answers_its_sender_in_order() {
        let mut w = ChatLoad::new(32, 2);
        assert!(!w.ready(1));
        assert_eq!(w.parse(1, b"*** welcome, you are guest-2 (2 members here).\n"), Verdict::Skip(47));
        assert!(w.ready(1));
        let mut line = b"guest-1: ".to_vec();
        w.encode(0, 0, &mut line);
        assert_eq!(line.len(), 9 + 32);
        let ok = Verdict::Ok { len: line.len(), answers: Answer::Request { conn: 0, k: 0 } };
        assert_eq!(w.parse(1, &line), ok);
        // The same line again is a duplicate.
        assert!(matches!(w.parse(1, &line), Verdict::Mismatch(_)));
        assert_eq!(w.heard(1, 0), 1);
        assert_eq!(w.heard(0, 1), 0);
    }

    #[test]
    fn a_line_that_lost_its_end_is_a_mismatch_not_someone_elses_chatter() {
        let mut w = ChatLoad::new(32, 2);
        let mut line = b"guest-1: ".to_vec();
        w.encode(0, 0, &mut line);
        let whole = line.clone();
        // Padding cut short, padding gone, and the line cut right after its number.
        for cut in [whole.len() - 5, whole.len() - 26, b"guest-1: L 0 0".len(), b"guest-1: L 0 ".len()] {
            let mut damaged = whole[..cut].to_vec();
            damaged.push(b'\n');
            assert!(
                matches!(w.parse(1, &damaged), Verdict::Mismatch(_)),
                "{:?}",
                String::from_utf8_lossy(&damaged)
            );
        }
        // A person's line that merely starts with L is theirs.
        assert_eq!(w.parse(1, b"bob: L is for lunch\n"), Verdict::Skip(20));
        assert_eq!(
            w.parse(1, &whole),
            Verdict::Ok { len: whole.len(), answers: Answer::Request { conn: 0, k: 0 } }
        );
    }
}
