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
//!
//! And after the *last* `*` there is nothing to revisit at all: what follows it matches a
//! fixed number of bytes, so it can only match the end of the text. Checking it there at once
//! makes the common shapes (`prefix*`, `*suffix`, `a*b`) linear, where trying every start
//! made `*` followed by 131 KB of pattern over a 256 KB key take 11 s (a review's case;
//! Redis, which tries every start too, is slower still). Only the middle of a pattern with
//! several stars can still cost `pattern × text`.

/// True when `text` matches `pattern` as a whole.
pub fn matches(pattern: &[u8], text: &[u8]) -> bool {
    matches_with(pattern, text, true)
}

/// [`matches`], with the last-star shortcut on or off (off: every start tried for every `*`,
/// the matcher the tests compare the shortcut against).
fn matches_with(pattern: &[u8], text: &[u8], last_star_shortcut: bool) -> bool {
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
                let rest = &pattern[p..];
                if last_star_shortcut && !rest.contains(&b'*') {
                    // The last `*` (no `*` byte follows, escaped or not): the rest must match
                    // the end of the text, or nothing.
                    let width = elements(rest);
                    return text.len() - t >= width && fixed(rest, &text[text.len() - width..]);
                }
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

/// How many bytes `pattern`, which has no `*`, matches: one per element.
fn elements(pattern: &[u8]) -> usize {
    let mut p = 0;
    let mut n = 0;
    while let Some((_, next)) = one(pattern, p, 0) {
        p = next;
        n += 1;
    }
    n
}

/// Whether `pattern`, which has no `*`, matches `text` (as long as [`elements`] says).
fn fixed(pattern: &[u8], text: &[u8]) -> bool {
    let mut p = 0;
    text.iter().all(|&c| match one(pattern, p, c) {
        Some((true, next)) => {
            p = next;
            true
        }
        _ => false,
    })
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

    /// The shortcut changes no answer: 200,000 random patterns (stars, classes, ranges,
    /// negations, escapes, unterminated brackets) over random texts, against the matcher
    /// without it.
    #[test]
    fn the_last_star_shortcut_agrees_with_trying_every_start() {
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move |n: usize| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % n as u64) as usize
        };
        let pattern_bytes = b"ab*?[]^-\\";
        for _ in 0..200_000 {
            let pattern: Vec<u8> = (0..next(9)).map(|_| pattern_bytes[next(pattern_bytes.len())]).collect();
            let text: Vec<u8> = (0..next(8)).map(|_| b"ab-]*"[next(5)]).collect();
            assert_eq!(
                matches(&pattern, &text),
                super::matches_with(&pattern, &text, false),
                "{:?} ~ {:?}",
                String::from_utf8_lossy(&pattern),
                String::from_utf8_lossy(&text)
            );
        }
    }

    #[test]
    fn a_long_tail_after_the_last_star_is_checked_once() {
        let mut pattern = b"*".to_vec();
        pattern.extend(std::iter::repeat_n(b'a', 100_000));
        pattern.push(b'b');
        let text = vec![b'a'; 200_000];
        assert!(!matches(&pattern, &text));
        let mut text = text;
        text.push(b'b');
        assert!(matches(&pattern, &text));
    }

    #[test]
    fn hostile_pattern_is_cheap() {
        let pattern = "*a".repeat(500) + "b";
        let text = "a".repeat(5000);
        assert!(!matches(pattern.as_bytes(), text.as_bytes()));
    }
}
