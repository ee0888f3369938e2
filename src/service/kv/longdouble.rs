//! `INCRBYFLOAT`'s arithmetic: the C `long double` of x86-64, done in software.
//!
//! Redis reads the stored value and the increment with `strtold`, adds them as `long double`
//! (on x86-64 the x87 80-bit format: a 64-bit significand, exponents down to 2^-16445 with
//! subnormals, up to about 1.19 × 10^4932), and stores the sum printed with `"%.17Lf"`, trailing
//! zeros trimmed. Clients see those digits, and they are not what `f64` gives: `0.1` + `0.2` is
//! `0.3` there (64 bits of significand, then 17 decimals, round the error away) where `f64`
//! printing gives `0.30000000000000004`; `10.5` + `0.1` is `10.6`, where `f64` to 17 decimals
//! gives `10.59999999999999964`. Rust has no `long double`, so this module does the three steps
//! the way the C library does them: every conversion computed exactly with a small big-integer
//! type ([`Big`]), then rounded once, to nearest, ties to even.
//!
//! * [`parse`]: `strtold` as Redis's `string2ld` uses it: decimal (`1.5e-3`, `.5`, `5.`),
//!   hexadecimal (`0x1.8p3`), `inf`/`infinity`; no leading space, nothing left over, no NaN, and
//!   neither an overflow nor a non-zero value that rounds to zero.
//! * [`add`]: the exact sum, rounded to 64 significant bits (`None` for an infinite result).
//! * [`format`]: `"%.17Lf"`, trailing zeros and a bare `.` trimmed, `-0` written `0`.
//!
//! Sizes are bounded: Redis refuses inputs of 5,120 bytes or more, and the exponent range
//! bounds every intermediate number to about 33,000 bits.

/// The longest text `string2ld` reads (Redis's `MAX_LONG_DOUBLE_CHARS`): 5 KiB - 1 bytes.
const MAX_CHARS: usize = 5 * 1024;
/// The exponent of the lowest significand bit of the smallest subnormal: 2^-16445.
const MIN_EXP: i64 = -16445;
/// The exponent of the highest bit of the largest finite value.
const MAX_TOP: i64 = 16383;
/// Significand bits.
const BITS: i64 = 64;

/// A finite `long double`: `(-1)^neg × mant × 2^exp`. `mant` is not kept normalized: a value
/// is only ever read through its bits. The default is +0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Ld {
    neg: bool,
    mant: u64,
    exp: i64,
}

/// What `strtold` gives for a text it accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Value {
    /// A finite value (zero and subnormals included).
    Finite(Ld),
    /// `inf` or `infinity`, signed: accepted as input, though no sum with it is finite.
    Infinite,
}

impl Ld {
    /// Zero, with a sign (`strtold("-0")` is negative zero; `%.17Lf` shows the sign).
    const fn zero(neg: bool) -> Ld {
        Ld { neg, mant: 0, exp: 0 }
    }
}

/// Reads `text` as Redis's `string2ld` does: `None` means "value is not a valid float". The
/// whole text must be read (a NUL byte, which would end a C string, is refused too).
pub fn parse(text: &[u8]) -> Option<Value> {
    if text.is_empty() || text.len() >= MAX_CHARS {
        return None;
    }
    // `strtold` itself skips leading white space; string2ld refuses it.
    if text.first().is_some_and(|&b| matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')) {
        return None;
    }
    let (neg, body) = match text[0] {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    if body.eq_ignore_ascii_case(b"inf") || body.eq_ignore_ascii_case(b"infinity") {
        return Some(Value::Infinite);
    }
    let hex = body.len() > 2 && body[0] == b'0' && (body[1] | 0x20) == b'x';
    let number = if hex { Number::read(&body[2..], 16)? } else { Number::read(body, 10)? };
    let Some(digits) = number.digits else {
        return Some(Value::Finite(Ld::zero(neg)));
    };
    // Out of range by far: refused before any big arithmetic (strtold's ERANGE, which
    // string2ld refuses for an infinite or a zero result).
    let magnitude = if hex {
        (digits.bits() as i64).saturating_add(number.exponent)
    } else {
        (number.len as i64).saturating_add(number.exponent)
    };
    let (too_big, too_small) = if hex { (MAX_TOP + 2, MIN_EXP - 2) } else { (4934, -4955) };
    if magnitude > too_big || magnitude < too_small {
        return None;
    }
    let value =
        if hex { round(neg, digits, number.exponent, false) } else { decimal(neg, digits, number.exponent) }?;
    // A non-zero text that rounds to zero underflowed: refused, as an overflow is.
    (value.mant != 0).then_some(Value::Finite(value))
}

/// The digits of a number's text, read as `strtold` reads them.
struct Number {
    /// The significant digits as an integer, `None` if they are all zeros.
    digits: Option<Big>,
    /// How many significant digits (decimal only: for the range check).
    len: usize,
    /// The value is `digits × base^exponent` (decimal) or `digits × 2^exponent` (hex).
    exponent: i64,
}

impl Number {
    /// Reads `[digits][.digits]` with at least one digit, then an optional exponent (`e`/`E`
    /// and a power of ten, or for hex `p`/`P` and a power of two), and nothing after: `None`
    /// for anything else (`strtold` would stop early, and string2ld refuses leftovers).
    fn read(text: &[u8], base: u32) -> Option<Number> {
        let mut digits = Big::from_u64(0);
        let (mut len, mut seen_digit, mut seen_point, mut exponent) = (0usize, false, false, 0i64);
        let mut trailing_zeros = 0i64;
        let mut i = 0;
        while let Some(&b) = text.get(i) {
            if b == b'.' && !seen_point {
                seen_point = true;
            } else if let Some(d) = char::from(b).to_digit(base) {
                seen_digit = true;
                if seen_point {
                    exponent -= 1;
                }
                // Leading zeros add nothing; trailing ones are kept as an exponent, so
                // `1000000` is one digit, not seven.
                if d == 0 {
                    if len > 0 {
                        trailing_zeros += 1;
                    }
                } else {
                    for _ in 0..trailing_zeros {
                        digits.mul_add(u64::from(base), 0);
                    }
                    len += trailing_zeros as usize + 1;
                    trailing_zeros = 0;
                    digits.mul_add(u64::from(base), u64::from(d));
                }
            } else {
                break;
            }
            i += 1;
        }
        if !seen_digit {
            return None;
        }
        exponent += trailing_zeros;
        // A hex digit is four bits, and a hex number's written exponent is a power of two.
        if base == 16 {
            exponent *= 4;
        }
        let marker = if base == 16 { b'p' } else { b'e' };
        if let Some(&b) = text.get(i) {
            if b | 0x20 != marker {
                return None;
            }
            exponent = exponent.saturating_add(read_exponent(&text[i + 1..])?);
        }
        Some(Number { digits: (len > 0).then_some(digits), len, exponent })
    }
}

/// `[+-]digits` to the end of `text`, saturated far beyond any exponent that matters.
fn read_exponent(text: &[u8]) -> Option<i64> {
    let (neg, digits) = match text.first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let value = digits.iter().fold(0i64, |n, &d| (n * 10 + i64::from(d - b'0')).min(1 << 40));
    Some(if neg { -value } else { value })
}

/// `digits × 10^exponent`, rounded: exact for a non-negative exponent, otherwise the quotient
/// by `10^-exponent` to at least 66 bits, the remainder kept as a sticky bit.
fn decimal(neg: bool, digits: Big, exponent: i64) -> Option<Ld> {
    if exponent >= 0 {
        let mut n = digits;
        n.mul_pow10(exponent as u64);
        return round(neg, n, 0, false);
    }
    let divisor = Big::pow10(exponent.unsigned_abs());
    // Shift the dividend up until the quotient has 66 bits or more (two beyond the 64 kept,
    // so the rounding bits are real quotient bits), or shift the divisor up if the quotient
    // would have many more than that.
    let up = (divisor.bits() as i64 + 66 - digits.bits() as i64).max(0);
    let mut dividend = digits;
    dividend.shl(up as usize);
    let down = (dividend.bits() as i64 - divisor.bits() as i64 - 68).max(0);
    let mut divisor = divisor;
    divisor.shl(down as usize);
    let (quotient, exact) = dividend.divide(&divisor);
    round(neg, quotient, down - up, !exact)
}

/// `n × 2^exp` (plus a little more when `sticky`: non-zero bits below `n`'s lowest) rounded to
/// 64 significant bits, to nearest, ties to even, with subnormals below 2^-16382; `None` if it
/// is too big for a `long double`.
fn round(neg: bool, n: Big, exp: i64, sticky: bool) -> Option<Ld> {
    if n.is_zero() {
        return Some(Ld::zero(neg));
    }
    // Drop bits beyond 64, and beyond the smallest subnormal's lowest bit.
    let mut shift = (n.bits() as i64 - BITS).max(MIN_EXP - exp);
    let mant = if shift <= 0 {
        shift = 0;
        n.bits_at(0)
    } else {
        let s = shift as u64;
        let kept = n.bits_at(s);
        let half = n.bit(s - 1);
        let rest = sticky || n.any_below(s - 1);
        if half && (rest || kept & 1 == 1) {
            match kept.checked_add(1) {
                Some(up) => up,
                None => {
                    shift += 1;
                    1 << 63
                }
            }
        } else {
            kept
        }
    };
    let exp = exp + shift;
    let top = exp + i64::from(64 - mant.leading_zeros()) - 1;
    if mant != 0 && top > MAX_TOP {
        return None;
    }
    Some(Ld { neg, mant, exp })
}

/// `a + b`, rounded as the x87 adds; `None` for an infinite (or NaN) sum.
pub fn add(a: Value, b: Value) -> Option<Ld> {
    let (Value::Finite(a), Value::Finite(b)) = (a, b) else {
        return None;
    };
    match (a.mant, b.mant) {
        // IEEE signs of zero sums: -0 + -0 is -0, any other sum of zeros +0.
        (0, 0) => return Some(Ld::zero(a.neg && b.neg)),
        (0, _) => return Some(b),
        (_, 0) => return Some(a),
        _ => {}
    }
    // Both at the lower exponent, exactly.
    let low = a.exp.min(b.exp);
    let mut x = Big::from_u64(a.mant);
    x.shl((a.exp - low) as usize);
    let mut y = Big::from_u64(b.mant);
    y.shl((b.exp - low) as usize);
    if a.neg == b.neg {
        x.add(&y);
        return round(a.neg, x, low, false);
    }
    // Opposite signs: the larger magnitude keeps its sign; an exact cancellation is +0.
    match x.cmp(&y) {
        std::cmp::Ordering::Equal => Some(Ld::zero(false)),
        std::cmp::Ordering::Greater => {
            x.sub(&y);
            round(a.neg, x, low, false)
        }
        std::cmp::Ordering::Less => {
            y.sub(&x);
            round(b.neg, y, low, false)
        }
    }
}

/// `value` as Redis stores an `INCRBYFLOAT` result: `"%.17Lf"`, trailing zeros trimmed (and
/// the point, if nothing follows it), `-0` as `0`.
pub fn format(value: Ld) -> Vec<u8> {
    // The value times 10^17, rounded to an integer: its digits, with the point put back.
    let mut n = Big::from_u64(value.mant);
    n.mul_pow10(17);
    if value.exp >= 0 {
        n.shl(value.exp as usize);
    } else {
        n = n.shr_round(value.exp.unsigned_abs());
    }
    let mut digits = n.to_decimal();
    if digits.len() < 18 {
        let mut padded = vec![b'0'; 18 - digits.len()];
        padded.extend_from_slice(&digits);
        digits = padded;
    }
    let point = digits.len() - 17;
    let mut out = Vec::with_capacity(digits.len() + 2);
    if value.neg {
        out.push(b'-');
    }
    out.extend_from_slice(&digits[..point]);
    let fraction = &digits[point..];
    let kept = fraction.iter().rposition(|&d| d != b'0').map_or(0, |i| i + 1);
    if kept > 0 {
        out.push(b'.');
        out.extend_from_slice(&fraction[..kept]);
    }
    if out == b"-0" {
        out.remove(0);
    }
    out
}

/// A non-negative integer of any size, 64-bit limbs, least significant first, no high zero
/// limbs: just what parsing, adding and printing `long double`s exactly needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Big {
    limbs: Vec<u64>,
}

impl Big {
    fn from_u64(n: u64) -> Big {
        let mut big = Big { limbs: vec![n] };
        big.trim();
        big
    }

    fn pow10(k: u64) -> Big {
        let mut n = Big::from_u64(1);
        n.mul_pow10(k);
        n
    }

    fn trim(&mut self) {
        while self.limbs.last() == Some(&0) {
            self.limbs.pop();
        }
    }

    fn is_zero(&self) -> bool {
        self.limbs.is_empty()
    }

    /// The number of bits up to the highest set one (0 for zero).
    fn bits(&self) -> u64 {
        self.limbs.last().map_or(0, |top| self.limbs.len() as u64 * 64 - u64::from(top.leading_zeros()))
    }

    fn bit(&self, i: u64) -> bool {
        self.limbs.get((i / 64) as usize).is_some_and(|limb| limb >> (i % 64) & 1 == 1)
    }

    /// True if any bit below bit `i` is set.
    fn any_below(&self, i: u64) -> bool {
        let (whole, part) = ((i / 64) as usize, i % 64);
        self.limbs.iter().take(whole).any(|&limb| limb != 0)
            || (part > 0 && self.limbs.get(whole).is_some_and(|&limb| limb & ((1 << part) - 1) != 0))
    }

    /// The 64 bits starting at bit `i`.
    fn bits_at(&self, i: u64) -> u64 {
        let (whole, part) = ((i / 64) as usize, i % 64);
        let low = self.limbs.get(whole).copied().unwrap_or(0) >> part;
        let high = if part == 0 { 0 } else { self.limbs.get(whole + 1).copied().unwrap_or(0) << (64 - part) };
        low | high
    }

    /// `self = self × m + a`.
    fn mul_add(&mut self, m: u64, a: u64) {
        let mut carry = u128::from(a);
        for limb in &mut self.limbs {
            let product = u128::from(*limb) * u128::from(m) + carry;
            *limb = product as u64;
            carry = product >> 64;
        }
        if carry > 0 {
            self.limbs.push(carry as u64);
        }
        self.trim();
    }

    /// `self = self × 10^k`, 19 decimal digits at a time.
    fn mul_pow10(&mut self, mut k: u64) {
        while k > 0 {
            let step = k.min(19);
            self.mul_add(10u64.pow(step as u32), 0);
            k -= step;
        }
    }

    fn shl(&mut self, n: usize) {
        if self.is_zero() {
            return;
        }
        let (whole, part) = (n / 64, n % 64);
        if part > 0 {
            let mut carry = 0;
            for limb in &mut self.limbs {
                let next = *limb >> (64 - part);
                *limb = *limb << part | carry;
                carry = next;
            }
            if carry > 0 {
                self.limbs.push(carry);
            }
        }
        self.limbs.splice(0..0, std::iter::repeat_n(0, whole));
    }

    /// `self / 2^n`, rounded to nearest, ties to even.
    fn shr_round(&self, n: u64) -> Big {
        if n == 0 {
            return self.clone();
        }
        let (whole, part) = ((n / 64) as usize, n % 64);
        let mut limbs: Vec<u64> = self.limbs.iter().skip(whole).copied().collect();
        if part > 0 {
            for i in 0..limbs.len() {
                let high = limbs.get(i + 1).map_or(0, |&next| next << (64 - part));
                limbs[i] = limbs[i] >> part | high;
            }
        }
        let mut q = Big { limbs };
        q.trim();
        let half = self.bit(n - 1);
        if half && (self.any_below(n - 1) || q.bit(0)) {
            q.add(&Big::from_u64(1));
        }
        q
    }

    fn add(&mut self, other: &Big) {
        if self.limbs.len() < other.limbs.len() {
            self.limbs.resize(other.limbs.len(), 0);
        }
        let mut carry = false;
        for (i, limb) in self.limbs.iter_mut().enumerate() {
            let (sum, c1) = limb.overflowing_add(other.limbs.get(i).copied().unwrap_or(0));
            let (sum, c2) = sum.overflowing_add(u64::from(carry));
            *limb = sum;
            carry = c1 || c2;
        }
        if carry {
            self.limbs.push(1);
        }
    }

    /// `self -= other`, for `self >= other`.
    fn sub(&mut self, other: &Big) {
        let mut borrow = false;
        for (i, limb) in self.limbs.iter_mut().enumerate() {
            let (diff, b1) = limb.overflowing_sub(other.limbs.get(i).copied().unwrap_or(0));
            let (diff, b2) = diff.overflowing_sub(u64::from(borrow));
            *limb = diff;
            borrow = b1 || b2;
        }
        self.trim();
    }

    fn cmp(&self, other: &Big) -> std::cmp::Ordering {
        self.limbs
            .len()
            .cmp(&other.limbs.len())
            .then_with(|| self.limbs.iter().rev().cmp(other.limbs.iter().rev()))
    }

    /// `self / divisor` (a quotient of a few dozen bits: one bit per step) and whether it was
    /// exact.
    fn divide(mut self, divisor: &Big) -> (Big, bool) {
        let mut quotient = Big::from_u64(0);
        let Some(top) = (self.bits() + 1).checked_sub(divisor.bits()) else {
            return (quotient, self.is_zero());
        };
        for i in (0..top).rev() {
            let mut shifted = divisor.clone();
            shifted.shl(i as usize);
            quotient.shl(1);
            if self.cmp(&shifted) != std::cmp::Ordering::Less {
                self.sub(&shifted);
                quotient.add(&Big::from_u64(1));
            }
        }
        (quotient, self.is_zero())
    }

    /// Decimal digits, most significant first ("0" for zero).
    fn to_decimal(&self) -> Vec<u8> {
        let mut n = self.clone();
        let mut chunks = Vec::new();
        while !n.is_zero() {
            // Divide by 10^19, the largest power of ten in a limb.
            let mut rest = 0u128;
            for limb in n.limbs.iter_mut().rev() {
                let current = rest << 64 | u128::from(*limb);
                *limb = (current / 10_000_000_000_000_000_000) as u64;
                rest = current % 10_000_000_000_000_000_000;
            }
            n.trim();
            chunks.push(rest as u64);
        }
        let mut out = Vec::new();
        for (i, chunk) in chunks.iter().rev().enumerate() {
            let text = if i == 0 { chunk.to_string() } else { format!("{chunk:019}") };
            out.extend_from_slice(text.as_bytes());
        }
        if out.is_empty() {
            out.push(b'0');
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What redis-server 7.0.15 stored (and answered) for `SET k <start>` then
    /// `INCRBYFLOAT k <increment>`, or the error it gave.
    #[test]
    fn sums_and_errors_are_those_of_redis() {
        const NOT_FLOAT: &str = "ERR value is not a valid float";
        const NAN_OR_INF: &str = "ERR increment would produce NaN or Infinity";
        let run = |start: &str, increment: &str| -> String {
            let (Some(a), Some(b)) = (parse(start.as_bytes()), parse(increment.as_bytes())) else {
                return NOT_FLOAT.to_string();
            };
            match add(a, b) {
                Some(sum) => String::from_utf8_lossy(&format(sum)).into_owned(),
                None => NAN_OR_INF.to_string(),
            }
        };
        let cases: &[(&str, &str, &str)] = &[
            ("10.50", "0.1", "10.6"),
            ("10.6", "-5", "5.6"),
            ("5.0e3", "2.0e2", "5200"),
            ("0.1", "0.2", "0.3"),
            ("0", "-1e-30", "0"),
            ("1", "-1", "0"),
            ("1", "-0.0", "1"),
            ("-0", "0", "0"),
            ("0", "1e-20", "0"),
            ("0", "1e20", "100000000000000000000"),
            ("100000000000000000000", "1.23456789012345678901234567890", "100000000000000000000"),
            ("0", "0.000003814697265625", "0.00000381469726562"),
            ("0", "0.000003814697265635", "0.00000381469726563"),
            ("0", "1.5e-17", "0.00000000000000002"),
            ("0", "2.5e-17", "0.00000000000000002"),
            ("0", "0.125", "0.125"),
            ("0", "1e-18", "0"),
            ("0", "-1.5e-17", "-0.00000000000000002"),
            ("0", "0x1.8p3", "12"),
            ("0", "0X.8P1", "1"),
            ("1", "0x10", "17"),
            ("0", ".5", "0.5"),
            ("0", "5.", "5"),
            ("0", "+.5e-3", "0.0005"),
            ("0", "00012.50", "12.5"),
            ("0", "0e99999", "0"),
            ("17", "3.6e-4951", "17"),
            ("0", "3.6e-4951", "0"),
            ("0", "1.9e-4951", "0"),
            ("0", "inf", NAN_OR_INF),
            ("0", "INFINITY", NAN_OR_INF),
            ("0", "-Inf", NAN_OR_INF),
            ("0", "1.19e4932", NOT_FLOAT),
            ("0", "1e5000", NOT_FLOAT),
            ("0", "1e-5000", NOT_FLOAT),
            ("0", "1e-4951", NOT_FLOAT),
            ("0", "infin", NOT_FLOAT),
            ("0", "nan", NOT_FLOAT),
            ("0", "nan(123)", NOT_FLOAT),
            ("0", "0x", NOT_FLOAT),
            ("0", "1e", NOT_FLOAT),
            ("0", "1e+", NOT_FLOAT),
            ("0", ".", NOT_FLOAT),
            ("0", " 1", NOT_FLOAT),
            ("0", "1 ", NOT_FLOAT),
            ("0", "", NOT_FLOAT),
            ("0", "1_0", NOT_FLOAT),
            ("0", "1,5", NOT_FLOAT),
            ("abc", "1", NOT_FLOAT),
            ("0", "1\0abc", NOT_FLOAT),
            ("0", "\x001", NOT_FLOAT),
            // From the third review, each checked on redis-server 7.0.15.
            ("0", "8.000003814697265625", "8.00000381469726562"),
            ("-8.000003814697265625", "0", "-8.00000381469726562"),
            ("0.000000000000000025", "0", "0.00000000000000002"),
            ("1", "1e0000000000000000000001", "11"),
            ("0x1p-16382", "-0x1p-16445", "0"),
            ("0", "0x1.0000000000000002p-16446", "0"),
            ("0", "0x1.ffffffffffffffffp16383", NOT_FLOAT),
            ("1.18973149535723176502e4932", "1e4913", NAN_OR_INF),
        ];
        for &(start, increment, expected) in cases {
            assert_eq!(run(start, increment), expected, "SET k {start:?}; INCRBYFLOAT k {increment:?}");
        }
    }

    /// Long outputs, checked digit for digit against redis-server 7.0.15: the exact binary
    /// value of a huge sum, printed in full.
    #[test]
    fn huge_sums_are_printed_in_full_as_redis_prints_them() {
        let sum = |a: &str, b: &str| {
            let (Some(a), Some(b)) = (parse(a.as_bytes()), parse(b.as_bytes())) else {
                panic!("valid floats")
            };
            String::from_utf8_lossy(&format(add(a, b).expect("finite"))).into_owned()
        };
        let big = sum("0.1", "1e300");
        assert!(
            big.starts_with(
                "10000000000000000000089973240795591938705239442732907479382600823212656465961809"
            )
        );
        assert_eq!(big.len(), 301);
        let max = sum("0", "1.18e4932");
        assert!(max.starts_with("1180000000000000000000652812918093699202690437140160471729831240061836527728446996012081496266122792"));
        assert_eq!(max.len(), 4933);
        let double_max = sum("0", "1.7976931348623157e308");
        assert!(double_max.starts_with("1797693134862315699959210467741044340483864469443291784853144207651766285231243963547018686083870855"));
    }

    #[test]
    fn rounding_is_to_nearest_even_at_the_64th_bit() {
        // 2^64 + 1 is a tie between 2^64 and 2^64 + 2: to even, 2^64.
        let tie = parse(b"18446744073709551617").expect("a float");
        let expect = Value::Finite(Ld { neg: false, mant: 1 << 63, exp: 1 });
        assert_eq!(tie, expect);
        // 2^64 + 3 is a tie between 2^64 + 2 and 2^64 + 4: to even, 2^64 + 4.
        let Some(Value::Finite(up)) = parse(b"18446744073709551619") else { panic!("a float") };
        assert_eq!(format(up), b"18446744073709551620");
    }
}
