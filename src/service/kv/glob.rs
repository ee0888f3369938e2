//! Glob-style pattern matching for `KEYS`, `SCAN … MATCH`, `CONFIG GET` and pub/sub patterns
//! (`PSUBSCRIBE`, `PUBSUB CHANNELS`), with Redis's semantics (its `stringmatchlen` in
//! `util.c`).
//!
//! | pattern  | matches                                                    |
//! |----------|------------------------------------------------------------|
//! | `*`      | any run of bytes, the empty one included                   |
//! | `?`      | exactly one byte                                           |
//! | `[abc]`  | one of `a`, `b`, `c`                                       |
//! | `[^abc]` | one byte that is none of them                              |
//! | `[a-z]`  | one byte in the range (`[z-a]` is the same range)          |
//! | `\x`     | `x` literally, also inside brackets; a trailing `\` is itself |
//!
//! As in Redis, the empty text is matched only by the empty pattern: `*` matches any run
//! of bytes *within* a text, but needs a byte of text to start.
//!
//! Redis quirks kept: an unterminated `[abc` acts as if closed at the end of the pattern.
//!
//! Redis matches recursively at each `*`, which needs a depth limit against hostile patterns.
//! Here a single backtrack point does the same job without recursion: each of `?`, `[…]` and a
//! literal consumes exactly one byte, so when the rest of the pattern fails after a `*`, the
//! only choice worth revisiting is how much *the most recent* `*` swallowed. That bounds the
//! work by `pattern × text` with no stack growth, whatever the peer sends.

/// True when `text` matches `pattern` as a whole.
pub fn matches(pattern: &[u8], text: &[u8]) -> bool {
    // Redis's matcher needs a byte of text to start: only the empty pattern matches the empty
    // text, so `PSUBSCRIBE *` does not hear a channel named "" (KEYS and SCAN skip matching
    // for `*` itself, as Redis does, so they still list a key "").
    if text.is_empty() {
        return pattern.is_empty();
    }
    let mut p = 0;
    let mut t = 0;
    // The most recent `*`: where the pattern resumes after it, and where in `text` it was tried.
    let mut star: Option<(usize, usize)> = None;
    while let Some(&c) = text.get(t) {
        match pattern.get(p) {
            Some(b'*') => {
                p += 1;
                star = Some((p, t));
                continue;
            }
            Some(_) => {
                if let Some((true, next)) = one(pattern, p, c) {
                    p = next;
                    t += 1;
                    continue;
                }
            }
            None => {}
        }
        // Mismatch: let the last `*` swallow one more byte, or fail if there is none.
        match star {
            Some((after, tried)) => {
                p = after;
                t = tried + 1;
                star = Some((after, t));
            }
            None => return false,
        }
    }
    // Text used up: only `*`s may remain.
    pattern.get(p..).unwrap_or_default().iter().all(|&b| b == b'*')
}

/// Matches the single-byte element at `pattern[p]` (not `*`) against `c`. Returns whether it
/// matched and where the next element starts; `None` only if `p` is past the end.
fn one(pattern: &[u8], p: usize, c: u8) -> Option<(bool, usize)> {
    let at = |i: usize| pattern.get(i).copied();
    match at(p)? {
        b'?' => Some((true, p + 1)),
        b'\\' if at(p + 1).is_some() => Some((at(p + 1) == Some(c), p + 2)),
        b'[' => Some(bracket(pattern, p + 1, c)),
        literal => Some((literal == c, p + 1)),
    }
}

/// A `[…]` class whose body starts at `p`. Returns (matched, index after the `]`).
fn bracket(pattern: &[u8], mut p: usize, c: u8) -> (bool, usize) {
    let at = |i: usize| pattern.get(i).copied();
    let negate = at(p) == Some(b'^');
    if negate {
        p += 1;
    }
    let mut matched = false;
    loop {
        match (at(p), at(p + 1), at(p + 2)) {
            // Unterminated class: Redis treats the end of the pattern as the `]`.
            (None, _, _) => break,
            (Some(b']'), _, _) => {
                p += 1;
                break;
            }
            (Some(b'\\'), Some(escaped), _) => {
                matched |= escaped == c;
                p += 2;
            }
            (Some(start), Some(b'-'), Some(end)) => {
                let (low, high) = if start <= end { (start, end) } else { (end, start) };
                matched |= (low..=high).contains(&c);
                p += 3;
            }
            (Some(member), _, _) => {
                matched |= member == c;
                p += 1;
            }
        }
    }
    (matched != negate, p)
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn redis_glob_corner_cases() {
        let yes: &[(&str, &str)] = &[
            ("*", "anything"),
            ("h?llo", "hello"),
            ("h*llo", "hllo"),
            ("h*llo", "heeeello"),
            ("h[ae]llo", "hallo"),
            ("h[^e]llo", "hallo"),
            ("h[a-b]llo", "hbllo"),
            ("h[b-a]llo", "hallo"),
            ("a\\*b", "a*b"),
            ("a[\\]]b", "a]b"),
            ("a\\", "a\\"),
            ("a[bc", "ab"),
            ("*a*b*c*", "xxaxxbxxcxx"),
            ("user:*:name", "user:42:name"),
            ("[*]", "*"),
            ("**x", "x"),
            ("a?", "a\n"),
        ];
        for (pattern, text) in yes {
            assert!(matches(pattern.as_bytes(), text.as_bytes()), "{pattern} ~ {text}");
        }
        let no: &[(&str, &str)] = &[
            ("h?llo", "hllo"),
            ("h[ae]llo", "hillo"),
            ("h[^e]llo", "hello"),
            ("h[a-b]llo", "hcllo"),
            ("a\\*b", "axb"),
            ("abc", "ab"),
            ("ab", "abc"),
            ("*a", "ab"),
            ("?", ""),
            ("*", ""),
            ("**", ""),
            ("[]", "a"),
            ("a[bc", "abc"),
        ];
        for (pattern, text) in no {
            assert!(!matches(pattern.as_bytes(), text.as_bytes()), "{pattern} !~ {text}");
        }
    }

    #[test]
    fn hostile_pattern_is_cheap() {
        let pattern = "*a".repeat(500) + "b";
        let text = "a".repeat(5000);
        assert!(!matches(pattern.as_bytes(), text.as_bytes()));
    }
}
