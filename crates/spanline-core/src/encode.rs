//! Direct JSON encoding primitives: string escaping, numbers, and an
//! escaping [`fmt::Write`] adapter for `Debug` and `Display` values.
//!
//! Everything writes bytes straight into a `Vec<u8>`: no `serde_json::Value`,
//! no intermediate `String`, and no UTF-8 re-validation (the input is already
//! `&str`, and escaping never splits a code point).
//!
//! Why one file: it is one concept, the bytes of a JSON value, and the fast
//! escaper's tables, its vector path and the tests that hold it equal to a
//! byte-by-byte reference (a quarter of the file) belong beside each other;
//! split, each half would be read with the other open.

use std::fmt;

/// How numbers that JSON cannot carry faithfully are written.
///
/// JSON parsers in JavaScript and many log pipelines read numbers as `f64`,
/// which holds integers exactly only up to 2^53, and JSON has no NaN or
/// infinity. The same policy applies in every spanline layer.
///
/// ```
/// use spanline_core::{ContextLayer, CtxView, NonFinite, NumberPolicy};
/// use tracing_subscriber::prelude::*;
/// let policy = NumberPolicy { big_ints_as_strings: true, non_finite: NonFinite::String };
/// let layer = ContextLayer::new().with_number_policy(policy);
/// tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
///     let _job = tracing::info_span!("job", id = u64::MAX, ratio = f64::NAN).entered();
///     let ctx = CtxView::current().unwrap();
///     assert_eq!(ctx.get("id").unwrap().as_json(), r#""18446744073709551615""#);
///     assert_eq!(ctx.get("ratio").unwrap().as_json(), r#""NaN""#);
/// });
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct NumberPolicy {
    /// Write integers whose magnitude is above 2^53 as JSON strings.
    /// Default: `false` (bare numbers, exact for parsers with 64-bit integers).
    pub big_ints_as_strings: bool,
    /// How NaN and the infinities are written. Default: [`NonFinite::Null`].
    pub non_finite: NonFinite,
}

/// How NaN and infinities are written (see [`NumberPolicy`]).
///
/// ```
/// use spanline_core::{ContextLayer, CtxView, NonFinite, NumberPolicy};
/// use tracing_subscriber::prelude::*;
/// let policy = NumberPolicy { non_finite: NonFinite::String, ..NumberPolicy::default() };
/// let layer = ContextLayer::new().with_number_policy(policy);
/// tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
///     let _job = tracing::info_span!("job", rate = f64::INFINITY).entered();
///     assert_eq!(CtxView::current().unwrap().get("rate").unwrap().as_json(), r#""inf""#);
/// });
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum NonFinite {
    /// `null`, as `serde_json` does.
    #[default]
    Null,
    /// `"NaN"`, `"inf"`, `"-inf"`.
    String,
}

/// The largest integer an `f64` holds exactly.
const MAX_SAFE_INT: u64 = 1 << 53;

impl NumberPolicy {
    /// Writes an unsigned integer.
    pub(crate) fn write_u64(&self, buf: &mut Vec<u8>, v: u64) {
        let quote = self.big_ints_as_strings && v > MAX_SAFE_INT;
        write_int(buf, itoa::Buffer::new().format(v), quote);
    }

    /// Writes a signed integer.
    pub(crate) fn write_i64(&self, buf: &mut Vec<u8>, v: i64) {
        let quote = self.big_ints_as_strings && v.unsigned_abs() > MAX_SAFE_INT;
        write_int(buf, itoa::Buffer::new().format(v), quote);
    }

    /// Writes a 128-bit unsigned integer.
    pub(crate) fn write_u128(&self, buf: &mut Vec<u8>, v: u128) {
        let quote = self.big_ints_as_strings && v > u128::from(MAX_SAFE_INT);
        write_int(buf, itoa::Buffer::new().format(v), quote);
    }

    /// Writes a 128-bit signed integer.
    pub(crate) fn write_i128(&self, buf: &mut Vec<u8>, v: i128) {
        let quote = self.big_ints_as_strings && v.unsigned_abs() > u128::from(MAX_SAFE_INT);
        write_int(buf, itoa::Buffer::new().format(v), quote);
    }

    /// Writes a float; NaN and infinities follow [`NumberPolicy::non_finite`].
    pub(crate) fn write_f64(&self, buf: &mut Vec<u8>, v: f64) {
        if v.is_finite() {
            if !write_short_decimal(buf, v) {
                buf.extend_from_slice(ryu::Buffer::new().format_finite(v).as_bytes());
            }
            return;
        }
        match self.non_finite {
            NonFinite::Null => buf.extend_from_slice(b"null"),
            NonFinite::String if v.is_nan() => buf.extend_from_slice(br#""NaN""#),
            NonFinite::String if v > 0.0 => buf.extend_from_slice(br#""inf""#),
            NonFinite::String => buf.extend_from_slice(br#""-inf""#),
        }
    }
}

/// Writes floats with at most three decimals (latencies, ratios, prices)
/// without the general shortest-representation algorithm.
///
/// Exact: `n / 1000` with `n` an integer below 2^53 is computed with one
/// correctly rounded division, so when it equals `v`, the decimal text of
/// `n / 1000` parses back to `v`. Returns false when `v` is not such a value.
fn write_short_decimal(buf: &mut Vec<u8>, v: f64) -> bool {
    let scaled = v * 1000.0;
    // `v` is finite, so `scaled` is finite or infinite, never NaN.
    if v == 0.0 || scaled.abs() >= 9.0e15 || scaled != scaled.trunc() {
        return false;
    }
    let n = scaled as i64;
    if n as f64 / 1000.0 != v {
        return false;
    }
    if n < 0 {
        buf.push(b'-');
    }
    let n = n.unsigned_abs();
    buf.extend_from_slice(itoa::Buffer::new().format(n / 1000).as_bytes());
    buf.push(b'.');
    let frac = n % 1000;
    let digits = [
        b'0' + (frac / 100) as u8,
        b'0' + (frac / 10 % 10) as u8,
        b'0' + (frac % 10) as u8,
    ];
    let keep = if frac.is_multiple_of(100) {
        1
    } else if frac.is_multiple_of(10) {
        2
    } else {
        3
    };
    buf.extend_from_slice(&digits[..keep]);
    true
}

fn write_int(buf: &mut Vec<u8>, digits: &str, quote: bool) {
    if quote {
        buf.push(b'"');
        buf.extend_from_slice(digits.as_bytes());
        buf.push(b'"');
    } else {
        buf.extend_from_slice(digits.as_bytes());
    }
}

/// Writes `true` or `false`.
pub(crate) fn write_bool(buf: &mut Vec<u8>, v: bool) {
    buf.extend_from_slice(if v { b"true" } else { b"false" });
}

// ==== string escaping ====

/// For each byte: 0 when it is copied as is, otherwise the character after the
/// backslash (`u` for the `\u00XX` form). Bytes >= 0x80 are parts of UTF-8
/// sequences and are copied unchanged.
static ESCAPE: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut i = 0;
    while i < 0x20 {
        table[i] = b'u';
        i += 1;
    }
    table[b'\n' as usize] = b'n';
    table[b'\r' as usize] = b'r';
    table[b'\t' as usize] = b't';
    table[0x08] = b'b';
    table[0x0c] = b'f';
    table[b'"' as usize] = b'"';
    table[b'\\' as usize] = b'\\';
    // DEL is valid JSON, but escaping it keeps lines safe to print on a terminal.
    table[0x7f] = b'u';
    // Lead bytes of the C1 controls (U+0080-U+009F), of the line and
    // paragraph separators (U+2028, U+2029) and of the bidi overrides
    // (U+202A-U+202E, U+2066-U+2069): valid JSON too, but they drive
    // terminals, end lines in JavaScript and in editors, and reorder text,
    // so a line could hide or forge what it says. Go's encoding/json and
    // Python's json.dumps escape U+2028 and U+2029 too. `m`: look at the
    // whole character.
    table[0xc2] = b'm';
    table[0xe2] = b'm';
    table
};

/// The code point of a C1 control, line or paragraph separator or bidi
/// override starting at `bytes`, with its length in bytes.
#[inline]
fn unsafe_char(bytes: &[u8]) -> Option<(u32, usize)> {
    match *bytes {
        [0xc2, b, ..] if (0x80..=0x9f).contains(&b) => Some((u32::from(b), 2)),
        // U+2028, U+2029 and U+202A-U+202E: one range of third bytes.
        [0xe2, 0x80, b, ..] if (0xa8..=0xae).contains(&b) => {
            Some((0x2000 | u32::from(b & 0x3f), 3))
        }
        [0xe2, 0x81, b, ..] if (0xa6..=0xa9).contains(&b) => {
            Some((0x2040 | u32::from(b & 0x3f), 3))
        }
        _ => None,
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Appends the JSON escape of `s` (without quotes) to `buf`.
///
/// Clean runs are copied with one `extend_from_slice`; only `"`, `\`, control
/// characters (C0 and C1), DEL, the line and paragraph separators (U+2028,
/// U+2029) and the bidi overrides are escaped. Other non-ASCII text is
/// copied as UTF-8.
pub(crate) fn escape_str(buf: &mut Vec<u8>, s: &str) {
    let bytes = s.as_bytes();
    let mut pos = 0;
    if bytes.len() >= 256 {
        pos = copy_clean_blocks(buf, bytes);
    }
    // Most strings need no escaping at all: one scan, one copy.
    let rest = bytes.get(pos..).unwrap_or_default();
    let first = clean_prefix_len(rest);
    if first == rest.len() {
        buf.extend_from_slice(rest);
        return;
    }
    buf.reserve(rest.len() + 8);
    buf.extend_from_slice(&rest[..first]);
    pos += first;
    // Copy each clean run in one go (found 16 bytes at a time), then
    // handle the one byte after it, and go on: escapes are rare.
    loop {
        let Some(&b) = bytes.get(pos) else { return };
        match ESCAPE[b as usize] {
            b'm' => match unsafe_char(&bytes[pos..]) {
                Some((code, len)) => {
                    buf.extend_from_slice(b"\\u");
                    for shift in [12, 8, 4, 0] {
                        buf.push(HEX[((code >> shift) & 0xf) as usize]);
                    }
                    pos += len;
                }
                // The lead byte of a harmless character (`°`, `—`): its
                // continuation bytes are clean.
                None => {
                    buf.push(b);
                    pos += 1;
                }
            },
            b'u' => {
                buf.extend_from_slice(&[
                    b'\\',
                    b'u',
                    b'0',
                    b'0',
                    HEX[(b >> 4) as usize],
                    HEX[(b & 0xf) as usize],
                ]);
                pos += 1;
            }
            0 => {
                buf.push(b);
                pos += 1;
            }
            esc => {
                buf.extend_from_slice(&[b'\\', esc]);
                pos += 1;
            }
        }
        let rest = bytes.get(pos..).unwrap_or_default();
        let clean = clean_prefix_len(rest);
        buf.extend_from_slice(&rest[..clean]);
        pos += clean;
    }
}

/// Appends JSON text that is already one JSON value (from serde_json, a
/// `valuable` value, a child process) with the characters
/// [`escape_str`] escapes beyond JSON's own rules (C1 controls, U+2028,
/// U+2029, bidi overrides) written as `\uXXXX`: in valid JSON such
/// characters are inside strings, where the escape means the same
/// character. ASCII text, the usual case, is one check and one copy.
pub(crate) fn extend_json(buf: &mut Vec<u8>, json: &[u8]) {
    if is_ascii(json) {
        return buf.extend_from_slice(json);
    }
    let mut rest = json;
    while let Some(i) = rest.iter().position(|&b| b == 0xc2 || b == 0xe2) {
        buf.extend_from_slice(rest.get(..i).unwrap_or_default());
        let at = rest.get(i..).unwrap_or_default();
        let len = match unsafe_char(at) {
            Some((code, len)) => {
                buf.extend_from_slice(b"\\u");
                for shift in [12, 8, 4, 0] {
                    buf.push(HEX[((code >> shift) & 0xf) as usize]);
                }
                len
            }
            None => {
                buf.extend_from_slice(at.get(..1).unwrap_or_default());
                1
            }
        };
        rest = at.get(len..).unwrap_or_default();
    }
    buf.extend_from_slice(rest);
}

/// Whether every byte is ASCII: one OR over all of them, which the
/// compiler vectorizes whole (`<[u8]>::is_ascii` ends in a byte loop).
#[inline]
fn is_ascii(bytes: &[u8]) -> bool {
    bytes.iter().fold(0u8, |all, &b| all | b) < 0x80
}

/// [`extend_json`] on the end of `buf`, from `start`, in place when there
/// is nothing to escape.
#[cfg(feature = "serde")]
pub(crate) fn escape_json_tail(buf: &mut Vec<u8>, start: usize) {
    let Some(tail) = buf.get(start..) else { return };
    if is_ascii(tail) {
        return;
    }
    let tail = buf.split_off(start);
    extend_json(buf, &tail);
}

/// A long value: copies its clean 64-byte blocks as they are checked (one
/// pass over the bytes, while they are in cache); returns how many bytes it
/// copied. Out of line, so short strings do not carry it.
#[inline(never)]
fn copy_clean_blocks(buf: &mut Vec<u8>, bytes: &[u8]) -> usize {
    buf.reserve(bytes.len() + 8);
    let mut pos = 0;
    while let Some(block) = bytes.get(pos..pos + 64) {
        let Ok(block) = <&[u8; 64]>::try_from(block) else {
            break;
        };
        if needs_look(block) {
            break;
        }
        buf.extend_from_slice(block);
        pos += 64;
    }
    pos
}

/// Whether a 64-byte block holds a byte worth a look: an ASCII control,
/// `"`, `\\`, DEL or any non-ASCII byte. Written so the compiler turns it
/// into vector compares.
#[inline(always)]
fn needs_look(block: &[u8; 64]) -> bool {
    let mut look = 0u8;
    for &b in block {
        look |=
            u8::from(b < 0x20) | u8::from(b >= 0x7f) | u8::from(b == b'"') | u8::from(b == b'\\');
    }
    look != 0
}

/// The length of the longest prefix of `bytes` that needs no escaping.
/// Long runs go 32 bytes a step, in a form the compiler turns into vector
/// compares; the rest 8 bytes a step; a block with a byte worth a look
/// (ASCII controls, `"`, `\\`, DEL, any non-ASCII byte) is checked exactly,
/// so most non-ASCII text stays on the fast path.
#[inline]
fn clean_prefix_len(bytes: &[u8]) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let special = |b: &u8| ESCAPE[*b as usize] != 0;
    // A key or a short value: a byte at a time through the table costs
    // less than setting up the word tests.
    if bytes.len() < 16 {
        return bytes.iter().position(special).unwrap_or(bytes.len());
    }
    let mut done = 0;
    while let Some(block) = bytes.get(done..done + 64) {
        let Ok(block) = <&[u8; 64]>::try_from(block) else {
            break;
        };
        if needs_look(block) {
            if let Some(i) = block.iter().position(special) {
                return done + i;
            }
        }
        done += 64;
    }
    while let Some(chunk) = bytes.get(done..done + 8) {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let x = u64::from_le_bytes(word);
        // A byte of `y` is zero  =>  its high bit is set (with possible
        // false positives above a zero byte: only a flag, checked exactly).
        let has_zero = |y: u64| y.wrapping_sub(ONES) & !y & HIGH;
        let low = x & !HIGH;
        let control = !(low + ONES * 0x60) & !x & HIGH;
        let high = ((low + ONES) | x) & HIGH;
        let flagged = control
            | high
            | has_zero(x ^ (ONES * u64::from(b'"')))
            | has_zero(x ^ (ONES * u64::from(b'\\')));
        if flagged != 0 {
            if let Some(i) = chunk.iter().position(special) {
                return done + i;
            }
        }
        done += 8;
    }
    let tail = bytes.get(done..).unwrap_or_default();
    done + tail.iter().position(special).unwrap_or(tail.len())
}

/// Appends `s` as a quoted JSON string.
///
/// ```
/// let mut buf = Vec::new();
/// spanline_core::write_str(&mut buf, "a\tb");
/// assert_eq!(buf, br#""a\tb""#);
/// ```
pub fn write_str(buf: &mut Vec<u8>, s: &str) {
    buf.reserve(s.len() + 2);
    buf.push(b'"');
    escape_str(buf, s);
    buf.push(b'"');
}

/// A [`fmt::Write`] that JSON-escapes everything written to it, so `Debug`
/// and `Display` values stream into the line without a temporary `String`.
#[derive(Debug)]
pub(crate) struct EscapeWriter<'a> {
    buf: &'a mut Vec<u8>,
}

impl<'a> EscapeWriter<'a> {
    /// Wraps a buffer.
    pub(crate) fn new(buf: &'a mut Vec<u8>) -> Self {
        Self { buf }
    }
}

impl fmt::Write for EscapeWriter<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        escape_str(self.buf, s);
        Ok(())
    }
}

/// Writes a `Debug` or `Display` value as a quoted JSON string.
///
/// A formatting error (a broken `Debug` impl) leaves what was written so far
/// followed by [`FMT_ERROR`], and the string is still closed, so the line
/// stays valid JSON.
pub(crate) fn write_display(buf: &mut Vec<u8>, value: &dyn fmt::Display) {
    use fmt::Write as _;
    buf.push(b'"');
    if write!(EscapeWriter::new(buf), "{value}").is_err() {
        buf.extend_from_slice(FMT_ERROR.as_bytes());
    }
    buf.push(b'"');
}

/// Writes a `Debug` value as a quoted JSON string (see [`write_display`]).
pub(crate) fn write_debug(buf: &mut Vec<u8>, value: &dyn fmt::Debug) {
    use fmt::Write as _;
    buf.push(b'"');
    if write!(EscapeWriter::new(buf), "{value:?}").is_err() {
        buf.extend_from_slice(FMT_ERROR.as_bytes());
    }
    buf.push(b'"');
}

/// What follows the text of a value whose `Debug` or `Display` returned an
/// error, in every layer.
pub(crate) const FMT_ERROR: &str = "[fmt error]";

/// `value.to_string()` that never panics: a `Display` that returns an error
/// (which makes `format!` and `to_string` panic) gives what it wrote, then
/// `[fmt error]`.
pub(crate) fn display_string(value: &dyn fmt::Display) -> String {
    use fmt::Write as _;
    let mut out = String::new();
    if write!(out, "{value}").is_err() {
        out.push_str(FMT_ERROR);
    }
    out
}

/// `format!("{value:?}")` that never panics (see [`display_string`]).
pub(crate) fn debug_string(value: &dyn fmt::Debug) -> String {
    use fmt::Write as _;
    let mut out = String::new();
    if write!(out, "{value:?}").is_err() {
        out.push_str(FMT_ERROR);
    }
    out
}

/// Decodes a JSON string literal (with its quotes) that spanline wrote.
///
/// Returns `None` when `json` is not a string. Borrowed when nothing is
/// escaped, which is the usual case for ids.
///
/// ```
/// assert_eq!(spanline_core::decode_json_str(r#""a\"b""#).unwrap(), "a\"b");
/// assert!(spanline_core::decode_json_str("42").is_none());
/// ```
#[doc(hidden)]
pub fn decode_json_str(json: &str) -> Option<std::borrow::Cow<'_, str>> {
    decode_str(json)
}

pub(crate) fn decode_str(json: &str) -> Option<std::borrow::Cow<'_, str>> {
    let inner = json.strip_prefix('"')?.strip_suffix('"')?;
    if !inner.contains('\\') {
        return Some(std::borrow::Cow::Borrowed(inner));
    }
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next()? {
            'n' => out.push('\n'),
            'r' => out.push('\r'),
            't' => out.push('\t'),
            'b' => out.push('\u{8}'),
            'f' => out.push('\u{c}'),
            'u' => {
                let hex: String = chars.by_ref().take(4).collect();
                let code = u32::from_str_radix(&hex, 16).ok()?;
                // spanline writes \u only for control characters, never surrogates.
                out.push(char::from_u32(code).unwrap_or('\u{fffd}'));
            }
            other => out.push(other),
        }
    }
    Some(std::borrow::Cow::Owned(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn number_writers_and_display_that_never_panics() {
        let numbers = NumberPolicy::default();
        let mut buf = Vec::new();
        numbers.write_u128(&mut buf, 1 << 70);
        buf.push(b' ');
        numbers.write_f64(&mut buf, 0.5);
        assert_eq!(buf, b"1180591620717411303424 0.5");
        struct Broken;
        impl fmt::Display for Broken {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("half")?;
                Err(fmt::Error)
            }
        }
        assert_eq!(display_string(&Broken), "half[fmt error]");
        assert_eq!(debug_string(&Some(1)), "Some(1)");
    }

    #[test]
    fn writers_escape_display_and_debug_values() {
        use std::fmt::Write;
        let mut buf = Vec::new();
        write!(EscapeWriter::new(&mut buf), "{:?}", "q\"").unwrap();
        assert_eq!(buf, br#"\"q\\\"\""#);
        let mut buf = Vec::new();
        write_display(&mut buf, &std::net::Ipv4Addr::LOCALHOST);
        assert_eq!(buf, br#""127.0.0.1""#);
        let mut buf = Vec::new();
        write_debug(&mut buf, &Some(1));
        assert_eq!(buf, br#""Some(1)""#);
        assert_eq!(FMT_ERROR, "[fmt error]");
    }

    fn esc(s: &str) -> String {
        let mut buf = Vec::new();
        write_str(&mut buf, s);
        String::from_utf8(buf).unwrap()
    }

    #[test]
    fn escapes_round_trip_through_serde_json() {
        for s in [
            "",
            "plain",
            "q\"b\\",
            "\u{0}\u{1f}\u{7f}",
            "é✓😀",
            "\n\r\t\u{8}\u{c}",
        ] {
            let back: String = serde_json::from_str(&esc(s)).unwrap();
            assert_eq!(back, s);
            assert_eq!(decode_str(&esc(s)).unwrap(), s);
        }
    }

    #[test]
    fn c1_controls_and_bidi_overrides_are_escaped_everywhere_else_kept() {
        let hostile: Vec<char> = (0x80..=0x9f)
            .chain(0x2028..=0x202e)
            .chain(0x2066..=0x2069)
            .filter_map(char::from_u32)
            .collect();
        for c in &hostile {
            for pad in 0..10 {
                let s = format!("{}{c}x", "a".repeat(pad));
                let out = esc(&s);
                assert!(out.contains(&format!("\\u{:04x}", *c as u32)), "{out}");
                assert!(!out.contains(*c), "{out}");
                let back: String = serde_json::from_str(&out).unwrap();
                assert_eq!(back, s);
            }
        }
        // Neighbours in the same ranges of bytes are not touched.
        for ok in [
            '\u{a0}', '©', '\u{2027}', '\u{202f}', '—', '\u{2065}', '\u{206a}', '€',
        ] {
            assert_eq!(esc(&ok.to_string()), format!("\"{ok}\""));
        }
    }

    #[test]
    fn clean_prefix_finds_every_special_byte_at_every_offset() {
        for special in (0u8..0x20).chain([b'"', b'\\', 0x7f, 0xc2, 0xe2]) {
            for len in 0..20 {
                for at in 0..len {
                    let mut bytes = vec![b'a'; len];
                    bytes[at] = special;
                    assert_eq!(
                        clean_prefix_len(&bytes),
                        at,
                        "byte {special:#x} at {at} of {len}"
                    );
                }
            }
        }
        // Text without the lead bytes of C1 controls and bidi overrides
        // (0xc2, 0xe2) is clean; with them, it takes the slow path, which
        // keeps every harmless character (`✓` is e2 9c 93).
        let text = "é😀 plain text with some length";
        assert_eq!(clean_prefix_len(text.as_bytes()), text.len());
        assert_eq!(clean_prefix_len("é✓".as_bytes()), 2);
        assert_eq!(esc("é✓"), "\"é✓\"");
    }

    #[test]
    fn short_decimals_round_trip() {
        for v in [
            3.25, -3.25, 0.1, 0.001, 1.0, -1.0, 123456.789, 1e12, 0.3, 2.675, 1.5e-3, 7.0e15,
            0.0005, 1e-300, -0.0, 0.0,
        ] {
            let mut buf = Vec::new();
            NumberPolicy::default().write_f64(&mut buf, v);
            let text = String::from_utf8(buf).unwrap();
            let back: f64 = text.parse().unwrap();
            assert_eq!(back.to_bits(), v.to_bits(), "{v} wrote {text}");
        }
        let mut buf = Vec::new();
        NumberPolicy::default().write_f64(&mut buf, 3.25);
        assert_eq!(buf, b"3.25");
    }

    #[test]
    fn numbers_follow_policy() {
        let strict = NumberPolicy {
            big_ints_as_strings: true,
            non_finite: NonFinite::String,
        };
        let mut buf = Vec::new();
        strict.write_i64(&mut buf, -(1 << 53));
        buf.push(b' ');
        strict.write_i128(&mut buf, i128::MIN);
        buf.push(b' ');
        strict.write_f64(&mut buf, f64::NEG_INFINITY);
        buf.push(b' ');
        NumberPolicy::default().write_f64(&mut buf, f64::INFINITY);
        buf.push(b' ');
        NumberPolicy::default().write_f64(&mut buf, 0.1);
        assert_eq!(
            String::from_utf8(buf).unwrap(),
            r#"-9007199254740992 "-170141183460469231731687303715884105728" "-inf" null 0.1"#
        );
    }
}

#[cfg(test)]
mod escape_tests {
    use super::*;

    /// The byte-by-byte escaper the fast one must equal.
    fn reference(s: &str) -> Vec<u8> {
        let bytes = s.as_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < bytes.len() {
            let b = bytes[i];
            match ESCAPE[b as usize] {
                0 => out.push(b),
                b'm' => match unsafe_char(&bytes[i..]) {
                    Some((code, len)) => {
                        out.extend_from_slice(format!("\\u{code:04x}").as_bytes());
                        i += len;
                        continue;
                    }
                    None => out.push(b),
                },
                b'u' => out.extend_from_slice(format!("\\u{b:04x}").as_bytes()),
                esc => out.extend_from_slice(&[b'\\', esc]),
            }
            i += 1;
        }
        out
    }

    #[test]
    fn the_fast_escaper_equals_the_byte_by_byte_one() {
        let pieces = [
            "a", "bc", "\"", "\\", "\n", "\u{7f}", "é", "°", "\u{9b}", "\u{85}", "\u{202e}",
            "\u{202a}", "—", "😀", "\u{2066}", "\u{2069}", "\u{1b}", "\t", "xxxxxxxx", "\u{2028}",
            "\u{2029}", "\u{2027}", "\u{202f}",
        ];
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..20_000 {
            let mut s = String::new();
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let len = (seed % 40) as usize;
            let mut r = seed;
            for _ in 0..len {
                r = r
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                s.push_str(pieces[(r >> 33) as usize % pieces.len()]);
            }
            let mut fast = Vec::new();
            escape_str(&mut fast, &s);
            assert_eq!(fast, reference(&s), "{s:?}");
        }
    }

    #[test]
    fn long_values_take_the_block_path_and_stay_exact() {
        let clean = "abcdefghijklmnopqrstuvwxyz0123456789 ".repeat(60);
        for special in [
            "\"", "\\", "\n", "\u{7f}", "é", "\u{9b}", "\u{202e}", "—", "😀", "\u{2028}",
            "\u{2029}",
        ] {
            for at in [0, 1, 63, 64, 65, 255, 256, 257, 1000, clean.len()] {
                let mut s = clean.clone();
                s.insert_str(at, special);
                let mut fast = b"prefix".to_vec();
                escape_str(&mut fast, &s);
                let mut expected = b"prefix".to_vec();
                expected.extend(reference(&s));
                assert_eq!(fast, expected, "{special:?} at {at}");
            }
        }
    }
}
