//! kv: RESP2 (the Redis protocol) `SET` and `GET`, alternating, every value checked.
//!
//! Each connection owns a disjoint slice of the key space: with `--keys N` and `--conns C`,
//! connection `c` uses the keys `load:c:0` … `load:c:(N/C − 1)` (at least one each), and no
//! other connection ever writes them. So the load generator knows, for every key, which
//! value it wrote last, and a `GET` can be checked exactly, however many connections run and
//! however deep they pipeline (RESP replies come back in request order, and the server
//! executes a connection's requests in order).
//!
//! Requests come in pairs; pair `p` (requests `2p` and `2p + 1` of a connection) is
//!
//! ```text
//!   SET load:c:(p mod K) value(c, p mod K, version p)       → +OK
//!   GET load:c:((p + K/2) mod K)                            → $len value(c, that key, version p − d)
//! ```
//!
//! where `K` is the connection's number of keys. The `GET` reads the key written `d = K − K/2`
//! pairs earlier, half a round (with `K = 1`, the one just written), so the expected reply is a
//! pure function of `(c, p)`: see [`KvLoad::get`]. No per-request state is kept. In the first
//! half round, before that key was written *in this run*, the `GET` reads the key just
//! written instead, so leftovers of an earlier run on the same server never matter, and nil
//! (`$-1`) is always wrong.
//!
//! A value is `--value-size` printable bytes computed from (connection, key, version) by a
//! 64-bit mix, so a stale, foreign or corrupted value differs from the expected one. `-ERR …`
//! (or any RESP error) is [`Verdict::Refused`]; anything else unexpected is a mismatch.
//!
//! A refused `SET` (`-OOM`, a value over the server's limit) leaves its key holding an older
//! version, or nothing: until a `SET` of that key succeeds again, a `GET` of it may answer
//! nil or any value of the right size. The refusal is counted apart; the server is not
//! blamed for a value it was never given.

use super::{Answer, Verdict, Workload};

/// The smallest `--value-size`: 16 letters carry about 75 bits of the value's fingerprint,
/// so a stale or foreign value cannot pass for the expected one by chance.
pub const MIN_VALUE: usize = 16;

/// The longest RESP header line accepted (`-ERR …`, `$len`) before it is a mismatch.
const MAX_LINE: usize = 4096;

/// The kv workload.
#[derive(Debug, Clone)]
pub struct KvLoad {
    /// Keys per connection (`K` above).
    per_conn: u64,
    value_size: usize,
    /// Per connection: how many replies have been judged, i.e. the `k` of the next one.
    replied: Vec<u64>,
    /// Per connection: keys whose last `SET` was refused, so their value is not known.
    unknown: Vec<std::collections::BTreeSet<u64>>,
    /// Scratch space for the expected value.
    expect: Vec<u8>,
    /// `--password`: sent as `AUTH` first on every connection.
    password: Option<String>,
    /// Per connection: its `AUTH` was answered `+OK` (always, without a password).
    authed: Vec<bool>,
}

/// Keys each connection owns when `keys` are split among `conns`: whole keys, at least one,
/// so the key space used is this times `conns`, which may differ a little from `keys`.
pub fn keys_per_conn(keys: usize, conns: usize) -> usize {
    (keys / conns.max(1)).max(1)
}

impl KvLoad {
    /// `keys` keys split among `conns` connections, values of `value_size` bytes (raised to
    /// [`MIN_VALUE`]).
    pub fn new(keys: usize, value_size: usize, conns: usize) -> Self {
        KvLoad {
            per_conn: keys_per_conn(keys, conns) as u64,
            value_size: value_size.max(MIN_VALUE),
            replied: vec![0; conns],
            unknown: vec![Default::default(); conns],
            expect: Vec::new(),
            password: None,
            authed: vec![true; conns],
        }
    }

    /// Log in with `password` (`AUTH`) on every connection before its first request.
    pub fn with_password(mut self, password: Option<String>) -> Self {
        self.password = password.filter(|p| !p.is_empty());
        self
    }

    /// The key the `SET` of pair `p` writes (at version `p`).
    fn set(&self, p: u64) -> u64 {
        p % self.per_conn
    }

    /// The key the `GET` of pair `p` reads, and the version it must find there: the key
    /// `(p + K/2) mod K`, last written by pair `p − d` with `d = K − K/2` (the pairs that write
    /// it are those `≡ p + K/2 ≡ p − d (mod K)`); before pair `d`, the key just written.
    pub fn get(&self, p: u64) -> (u64, u64) {
        let k = self.per_conn;
        let d = (k - k / 2) % k;
        match p.checked_sub(d) {
            Some(q) => ((p + k / 2) % k, q),
            None => (self.set(p), p),
        }
    }
}

/// A 64-bit mixing function (splitmix64's finaliser): every input bit changes every output bit.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// Writes the value of `key` at `version` for connection `conn`: `size` lowercase letters.
pub fn value(conn: usize, key: u64, version: u64, size: usize, out: &mut Vec<u8>) {
    let seed = mix(mix(mix(conn as u64) ^ key) ^ version);
    let mut block = 0;
    for i in 0..size {
        if i % 8 == 0 {
            block = mix(seed ^ (i as u64 / 8));
        }
        out.push(b'a' + ((block >> (8 * (i % 8))) as u8) % 26);
    }
}

/// Appends one RESP bulk string: `$len\r\nbytes\r\n`.
fn bulk(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(format!("${}\r\n", bytes.len()).as_bytes());
    out.extend_from_slice(bytes);
    out.extend_from_slice(b"\r\n");
}

/// The name of key `key` of connection `conn`.
fn key_name(conn: usize, key: u64) -> Vec<u8> {
    format!("load:{conn}:{key}").into_bytes()
}

/// The first line of `input` without its `\r\n`, and the length including it.
fn line(input: &[u8]) -> Result<Option<(&[u8], usize)>, String> {
    match input.windows(2).position(|w| w == b"\r\n") {
        Some(end) => Ok(Some((&input[..end], end + 2))),
        None if input.len() > MAX_LINE => Err(format!("no CRLF in the first {MAX_LINE} bytes of a reply")),
        None => Ok(None),
    }
}

impl Workload for KvLoad {
    fn name(&self) -> &'static str {
        "kv"
    }

    fn preamble(&mut self, conn: usize, out: &mut Vec<u8>) {
        if let (Some(password), Some(authed)) = (&self.password, self.authed.get_mut(conn)) {
            *authed = false;
            out.extend_from_slice(b"*2\r\n$4\r\nAUTH\r\n");
            bulk(out, password.as_bytes());
        }
    }

    fn ready(&self, conn: usize) -> bool {
        self.authed.get(conn).copied().unwrap_or(false)
    }

    fn encode(&mut self, conn: usize, k: u64, out: &mut Vec<u8>) {
        let p = k / 2;
        let (set, (get, _)) = (self.set(p), self.get(p));
        if k.is_multiple_of(2) {
            out.extend_from_slice(b"*3\r\n$3\r\nSET\r\n");
            bulk(out, &key_name(conn, set));
            let start = out.len();
            value(conn, set, p, self.value_size, out);
            let v = out.split_off(start);
            bulk(out, &v);
        } else {
            out.extend_from_slice(b"*2\r\n$3\r\nGET\r\n");
            bulk(out, &key_name(conn, get));
        }
    }

    /// Only if every request sent was answered: a `SET` lost with the connection may or may
    /// not have been applied, and the `GET`s after it could no longer be predicted.
    fn can_reopen(&self, conn: usize, next_k: u64) -> bool {
        self.replied.get(conn) == Some(&next_k)
    }

    fn parse(&mut self, conn: usize, input: &[u8]) -> Verdict {
        let Some(&k) = self.replied.get(conn) else {
            return Verdict::Mismatch(format!("a reply on unknown connection {conn}"));
        };
        let (head, head_len) = match line(input) {
            Ok(Some(l)) => l,
            Ok(None) => return Verdict::Incomplete,
            Err(e) => return Verdict::Mismatch(e),
        };
        let show = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
        if !self.authed[conn] {
            // The answer to this connection's `AUTH`, not to a request.
            if head != b"+OK" {
                return Verdict::Mismatch(format!("AUTH answered {:?}: is --password right?", show(head)));
            }
            self.authed[conn] = true;
            return Verdict::Skip(head_len);
        }
        let set_key = self.set(k / 2);
        let verdict = match (head.first(), k.is_multiple_of(2)) {
            (Some(b'-'), is_set) => {
                if is_set {
                    self.unknown[conn].insert(set_key);
                }
                Verdict::Refused { len: head_len, answers: Answer::Oldest, why: show(&head[1..]) }
            }
            (Some(b'+'), true) if head == b"+OK" => {
                self.unknown[conn].remove(&set_key);
                Verdict::Ok { len: head_len, answers: Answer::Oldest }
            }
            (_, true) => return Verdict::Mismatch(format!("SET answered {:?}, expected +OK", show(head))),
            (Some(b'$'), false) => {
                let (get, q) = self.get(k / 2);
                let unknown = self.unknown[conn].contains(&get);
                let Ok(n) = std::str::from_utf8(&head[1..]).unwrap_or("").parse::<i64>() else {
                    return Verdict::Mismatch(format!("GET answered a bad bulk header {:?}", show(head)));
                };
                match n {
                    -1 if unknown => Verdict::Ok { len: head_len, answers: Answer::Oldest },
                    -1 => {
                        return Verdict::Mismatch(format!(
                            "GET load:{conn}:{get} answered nil, but version {q} was set"
                        ));
                    }
                    n => {
                        if n != self.value_size as i64 {
                            return Verdict::Mismatch(format!(
                                "GET load:{conn}:{get}: a {n}-byte value, expected {}",
                                self.value_size
                            ));
                        }
                        let len = head_len + self.value_size + 2;
                        if input.len() < len {
                            return Verdict::Incomplete;
                        }
                        self.expect.clear();
                        value(conn, get, q, self.value_size, &mut self.expect);
                        let (got, end) = input[head_len..len].split_at(self.value_size);
                        if end != b"\r\n" {
                            return Verdict::Mismatch(format!(
                                "GET load:{conn}:{get}: the value is not followed by CRLF but {:?}",
                                show(end)
                            ));
                        }
                        if !unknown && got != self.expect.as_slice() {
                            // The value alone: its CRLF would read as part of it.
                            return Verdict::Mismatch(format!(
                                "GET load:{conn}:{get} answered {:?}, expected version {q}: {:?}",
                                show(got),
                                show(&self.expect)
                            ));
                        }
                        Verdict::Ok { len, answers: Answer::Oldest }
                    }
                }
            }
            (_, false) => return Verdict::Mismatch(format!("GET answered {:?}", show(head))),
        };
        self.replied[conn] += 1;
        verdict
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(w: &mut KvLoad, conn: usize, k: u64) -> String {
        let mut out = Vec::new();
        w.encode(conn, k, &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn pairs_set_then_get_a_key_written_half_a_round_ago() {
        // 8 keys over 2 connections: 4 each; GET reads the key 2 ahead, written 2 pairs ago.
        let mut w = KvLoad::new(8, 16, 2);
        let set = request(&mut w, 1, 0);
        assert!(set.starts_with("*3\r\n$3\r\nSET\r\n$8\r\nload:1:0\r\n$16\r\n"), "{set}");
        // Pair 0: key 2 is not written yet in this run, so GET reads key 0, just written.
        assert_eq!(request(&mut w, 1, 1), "*2\r\n$3\r\nGET\r\n$8\r\nload:1:0\r\n");
        assert_eq!(w.get(1), (1, 1));
        assert_eq!((w.set(2), w.get(2)), (2, (0, 0))); // writes key 2, reads key 0 of pair 0
        assert_eq!(w.get(3), (1, 1));
        assert_eq!(w.get(6), (0, 4)); // pairs 0 and 4 wrote key 0
        // 5 keys: GET reads key p + 2, written by pair p − 3.
        let w = KvLoad::new(5, 16, 1);
        assert_eq!(w.get(2), (2, 2));
        assert_eq!(w.get(3), (0, 0));
        assert_eq!(w.get(9), (1, 6));
        assert_eq!(w.set(6), 1);
    }

    #[test]
    fn replies_are_judged_in_order_against_what_was_set() {
        let mut w = KvLoad::new(1, 16, 1); // one key: every GET reads the value just set
        assert_eq!(w.parse(0, b"+O"), Verdict::Incomplete);
        assert_eq!(w.parse(0, b"+OK\r\n"), Verdict::Ok { len: 5, answers: Answer::Oldest });
        let mut reply = b"$16\r\n".to_vec();
        value(0, 0, 0, 16, &mut reply);
        reply.extend_from_slice(b"\r\n");
        assert_eq!(w.parse(0, &reply[..10]), Verdict::Incomplete);
        assert_eq!(w.parse(0, &reply), Verdict::Ok { len: reply.len(), answers: Answer::Oldest });
        // Pair 1: SET refused, then a GET that returns the old version 0: the server kept what
        // it had, as it should, so that is no mismatch (and nil would not be either).
        assert!(matches!(w.parse(0, b"-ERR out of memory\r\n"), Verdict::Refused { len: 20, .. }));
        assert_eq!(w.parse(0, &reply), Verdict::Ok { len: reply.len(), answers: Answer::Oldest });
        // Pair 2: refused again, and the key read answers nil: accepted too.
        assert!(matches!(w.parse(0, b"-OOM no\r\n"), Verdict::Refused { .. }));
        assert_eq!(w.parse(0, b"$-1\r\n"), Verdict::Ok { len: 5, answers: Answer::Oldest });
        // Pair 3: the SET succeeds again, and the GET is checked exactly again: version 0 is
        // now stale.
        assert_eq!(w.parse(0, b"+OK\r\n"), Verdict::Ok { len: 5, answers: Answer::Oldest });
        let Verdict::Mismatch(what) = w.parse(0, &reply) else { panic!("a stale version is wrong") };
        // The value is shown alone: its CRLF would read as part of it.
        assert!(what.contains("expected version") && !what.contains("\\r\\n"), "{what}");
    }

    #[test]
    fn nil_or_a_wrong_size_is_a_mismatch() {
        let mut w = KvLoad::new(4, 16, 1);
        assert_eq!(w.parse(0, b"+OK\r\n"), Verdict::Ok { len: 5, answers: Answer::Oldest });
        assert!(matches!(w.parse(0, b"$-1\r\n"), Verdict::Mismatch(_)));
        let mut w = KvLoad::new(4, 16, 1);
        assert_eq!(w.parse(0, b"+OK\r\n"), Verdict::Ok { len: 5, answers: Answer::Oldest });
        assert!(matches!(w.parse(0, b"$3\r\nabc\r\n"), Verdict::Mismatch(_)));
        assert!(matches!(KvLoad::new(4, 16, 1).parse(0, b"$3\r\n"), Verdict::Mismatch(_)));
    }

    #[test]
    fn values_differ_by_connection_key_and_version() {
        let v = |c, k, ver| {
            let mut out = Vec::new();
            value(c, k, ver, 16, &mut out);
            out
        };
        assert!(v(0, 0, 0).iter().all(u8::is_ascii_lowercase));
        assert_ne!(v(0, 0, 0), v(1, 0, 0));
        assert_ne!(v(0, 0, 0), v(0, 1, 0));
        assert_ne!(v(0, 0, 0), v(0, 0, 1));
    }
}
