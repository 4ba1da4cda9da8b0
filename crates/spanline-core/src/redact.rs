//! [`Redact`]: keys whose values never leave the process, at any depth of
//! a JSON value.
//!
//! Why one file: it is one concept, which keys are hidden (whole keys and
//! `*` patterns, ignoring case) and hiding them in already encoded JSON at
//! any depth; both read the same compiled key set, and its tests read
//! both.

use std::borrow::Cow;
use std::sync::Arc;

/// Keys whose values are written as `"[redacted]"` by every sink that is
/// given them: event fields, span fields and context alike, and keys at any
/// depth inside a JSON value ([`json`](crate::json), `valuable`), before
/// any byte leaves the process. An error field that is hidden loses its
/// cause chain too. Empty by default; `password`, `authorization`, `token`
/// and `secret` are common choices.
///
/// Keys match whole and ignoring ASCII case (`Authorization` is
/// `authorization`; `password` does not hide `password_hint`). A key with
/// `*` is a pattern: `*` stands for any run of characters, none included,
/// so `*token*` hides `token`, `api_token` and `X-Token-Id`, `*_secret`
/// hides `client_secret`, and `api_*` hides `api_key`. `*` is the only
/// wildcard.
///
/// ```
/// let redact = spanline_core::Redact::new(["password", "Authorization", "*token*", "api_*"]);
/// assert!(redact.hides("authorization") && redact.hides("PASSWORD"));
/// assert!(redact.hides("refresh_token") && redact.hides("TokenId") && redact.hides("api_key"));
/// assert!(!redact.hides("password_hint") && !redact.hides("tok") && !redact.hides("my_api"));
/// assert!(!spanline_core::Redact::default().hides("password"));
/// ```
///
/// Inside a JSON value, the value of every hidden key is masked, in objects
/// within objects and arrays alike:
///
/// ```
/// let redact = spanline_core::Redact::new(["password", "*token*"]);
/// let cfg = r#"{"db":{"host":"h","password":"p1"},"list":[{"api_token":"t1"}],"n":1}"#;
/// assert_eq!(
///     redact.scrub_json(cfg),
///     r#"{"db":{"host":"h","password":"[redacted]"},"list":[{"api_token":"[redacted]"}],"n":1}"#
/// );
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Redact {
    /// `None` when empty: a check then costs one branch.
    keys: Option<Arc<Keys>>,
}

#[derive(Debug, PartialEq, Eq)]
struct Keys {
    /// Whole keys, in lower case, sorted.
    exact: Box<[Box<str>]>,
    /// Keys with `*`, in lower case, sorted.
    patterns: Box<[Pattern]>,
}

/// A key with `*`, cut at its stars: `api_*` is a prefix, `*_secret` a
/// suffix, `*token*` a piece anywhere, `a*b*c` all three.
#[derive(Debug, PartialEq, Eq)]
struct Pattern {
    /// As given, in lower case (for [`Redact::keys`]).
    text: Box<str>,
    prefix: Box<[u8]>,
    suffix: Box<[u8]>,
    /// The pieces between stars, in order.
    middle: Box<[Box<[u8]>]>,
    /// The shortest key it matches.
    min_len: usize,
    /// The bytes a key must hold to match ([`byte_set`]): most keys are
    /// turned down by this one test.
    needs: u64,
}

impl Redact {
    /// What a hidden value is written as.
    pub const MASK: &'static str = "[redacted]";
    /// [`MASK`](Self::MASK) as a JSON string.
    pub(crate) const MASK_JSON: &'static [u8] = b"\"[redacted]\"";

    /// Hides `keys`: whole keys, or patterns with `*` (blank ones are
    /// ignored).
    ///
    /// See the type's example.
    pub fn new<I, S>(keys: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let (mut patterns, mut exact): (Vec<Box<str>>, Vec<Box<str>>) = keys
            .into_iter()
            .map(|k| k.as_ref().trim().to_ascii_lowercase().into_boxed_str())
            .filter(|k| !k.is_empty())
            .partition(|k| k.contains('*'));
        for list in [&mut exact, &mut patterns] {
            list.sort();
            list.dedup();
        }
        let empty = exact.is_empty() && patterns.is_empty();
        Self {
            keys: (!empty).then(|| {
                Arc::new(Keys {
                    exact: exact.into(),
                    patterns: patterns.into_iter().map(Pattern::new).collect(),
                })
            }),
        }
    }

    /// True when no key is hidden.
    ///
    /// ```
    /// assert!(spanline_core::Redact::default().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.keys.is_none()
    }

    /// Is `key`'s value hidden?
    ///
    /// See the type's example.
    #[inline]
    pub fn hides(&self, key: &str) -> bool {
        match &self.keys {
            None => false,
            Some(keys) => keys.hides(key),
        }
    }

    /// `json`, or the mask's JSON when `key` is hidden.
    #[inline]
    pub(crate) fn json<'v>(&self, key: &str, json: &'v [u8]) -> &'v [u8] {
        if self.hides(key) {
            Self::MASK_JSON
        } else {
            json
        }
    }

    /// Appends the value of `key` as it may leave the process: the mask
    /// when `key` is hidden, else `json` (one JSON value) with the value of
    /// every hidden key inside it masked, at any depth. For a sink of your
    /// own that copies context values (from
    /// [`CtxView::for_each_json`](crate::CtxView::for_each_json)) into its
    /// output.
    ///
    /// ```
    /// let redact = spanline_core::Redact::new(["password"]);
    /// let mut buf = Vec::new();
    /// redact.write_json(&mut buf, "password", br#""hunter2""#);
    /// buf.push(b' ');
    /// redact.write_json(&mut buf, "cfg", br#"{"user":"u","password":"p"}"#);
    /// assert_eq!(buf, br#""[redacted]" {"user":"u","password":"[redacted]"}"#);
    /// ```
    pub fn write_json(&self, buf: &mut Vec<u8>, key: &str, json: &[u8]) {
        match &self.keys {
            None => buf.extend_from_slice(json),
            Some(keys) if keys.hides(key) => buf.extend_from_slice(Self::MASK_JSON),
            Some(keys) => {
                keys.scrub(buf, json);
            }
        }
    }

    /// `json` (JSON text) with the value of every hidden key masked, at any
    /// depth; borrowed when nothing is hidden in it. Only keys are looked
    /// at: a secret inside a string (JSON text escaped into a string, free
    /// text such as `password=hunter2`) is not found.
    ///
    /// See the type's second example.
    #[doc(hidden)]
    pub fn scrub_json<'a>(&self, json: &'a str) -> Cow<'a, str> {
        let Some(keys) = &self.keys else {
            return Cow::Borrowed(json);
        };
        let bytes = json.as_bytes();
        let first = if is_container(bytes) {
            keys.next_hidden(bytes, 0)
        } else {
            None
        };
        let Some(first) = first else {
            return Cow::Borrowed(json);
        };
        let mut out = Vec::with_capacity(json.len());
        keys.mask_from(&mut out, bytes, 0, first);
        // Cut only at ASCII bytes, so still UTF-8.
        match String::from_utf8(out) {
            Ok(text) => Cow::Owned(text),
            Err(e) => Cow::Owned(String::from_utf8_lossy(e.as_bytes()).into_owned()),
        }
    }

    /// Appends `json` (one JSON value) with hidden keys inside it masked.
    #[inline]
    pub(crate) fn scrub_into(&self, buf: &mut Vec<u8>, json: &[u8]) {
        match &self.keys {
            None => buf.extend_from_slice(json),
            Some(keys) => {
                keys.scrub(buf, json);
            }
        }
    }

    /// Masks hidden keys inside the JSON value at the end of `buf`, from
    /// `start`: in place (no copy, no allocation) when none is there.
    #[cfg(feature = "serde")]
    pub(crate) fn scrub_tail(&self, buf: &mut Vec<u8>, start: usize) {
        let Some(keys) = &self.keys else { return };
        let json = buf.get(start..).unwrap_or_default();
        if !is_container(json) {
            return;
        }
        let Some((value, end)) = keys.next_hidden(json, 0) else {
            return;
        };
        // From the first hidden value on, the text is rewritten.
        let rest = buf.split_off(start + value);
        keys.mask_from(buf, &rest, 0, (0, end - value));
    }

    /// The keys that the current thread's subscriber keeps out of
    /// everything that leaves the process: those given to its
    /// [`ContextLayer`](crate::ContextLayer) with
    /// [`ContextLayer::redact`](crate::ContextLayer::redact). Empty without
    /// a `ContextLayer`. `ContextSnapshot::capture` reads it, to leave
    /// hidden keys out of `BAGGAGE`, headers and job payloads.
    ///
    /// ```
    /// use tracing_subscriber::prelude::*;
    /// let layer = spanline_core::ContextLayer::new().redact(["user_id"]);
    /// tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
    ///     assert!(spanline_core::Redact::current().hides("user_id"));
    /// });
    /// assert!(spanline_core::Redact::current().is_empty());
    /// ```
    pub fn current() -> Self {
        tracing_core::dispatcher::get_default(|dispatch| dispatch.downcast_ref::<Redact>().cloned())
            .unwrap_or_default()
    }

    /// The hidden keys, in lower case: whole keys, then patterns, each
    /// sorted.
    ///
    /// ```
    /// let redact = spanline_core::Redact::new(["Token", "*_secret", "password"]);
    /// assert_eq!(redact.keys().collect::<Vec<_>>(), ["password", "token", "*_secret"]);
    /// ```
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.keys.iter().flat_map(|k| {
            k.exact
                .iter()
                .map(|k| &**k)
                .chain(k.patterns.iter().map(|p| &*p.text))
        })
    }
}

impl Keys {
    #[inline]
    fn hides(&self, key: &str) -> bool {
        if self.exact.iter().any(|k| k.eq_ignore_ascii_case(key)) {
            return true;
        }
        !self.patterns.is_empty() && self.matches_pattern(key)
    }

    /// Out of line: whole keys alone are the common case.
    #[inline(never)]
    fn matches_pattern(&self, key: &str) -> bool {
        let key = key.as_bytes();
        let has = byte_set(key);
        self.patterns
            .iter()
            .any(|p| p.needs & !has == 0 && p.matches(key))
    }

    /// The first hidden key's value in `json` from `at` on, as the range
    /// of its bytes. `json` is one JSON value (spanline's own encoding, or
    /// text that was checked); in anything else nothing panics, and a
    /// value that does not end runs to the end of the text.
    fn next_hidden(&self, json: &[u8], mut at: usize) -> Option<(usize, usize)> {
        while let Some(quote) = json
            .get(at..)
            .and_then(|rest| rest.iter().position(|&b| b == b'"'))
        {
            let start = at + quote;
            let end = string_end(json, start);
            at = end;
            // In JSON, a string followed by `:` is a key.
            let colon = skip_space(json, end);
            if json.get(colon) != Some(&b':') {
                continue;
            }
            if json
                .get(start..end)
                .is_some_and(|key| self.hides_json_key(key))
            {
                let value = skip_space(json, colon + 1);
                return Some((value, value_end(json, value)));
            }
        }
        None
    }

    /// Copies `json` into `out` with the value of every hidden key masked;
    /// true when one was.
    fn scrub(&self, out: &mut Vec<u8>, json: &[u8]) -> bool {
        // Only an object holds keys: a string, number or literal is copied.
        let first = if is_container(json) {
            self.next_hidden(json, 0)
        } else {
            None
        };
        let Some(first) = first else {
            out.extend_from_slice(json);
            return false;
        };
        self.mask_from(out, json, 0, first);
        true
    }

    /// Copies `json[copied..]` into `out`, masking `hidden` (the next
    /// hidden value) and every one after it.
    fn mask_from(
        &self,
        out: &mut Vec<u8>,
        json: &[u8],
        mut copied: usize,
        mut hidden: (usize, usize),
    ) {
        loop {
            let (value, end) = hidden;
            out.extend_from_slice(json.get(copied..value).unwrap_or_default());
            out.extend_from_slice(Redact::MASK_JSON);
            copied = end;
            match self.next_hidden(json, end) {
                Some(next) => hidden = next,
                None => break,
            }
        }
        out.extend_from_slice(json.get(copied..).unwrap_or_default());
    }

    /// `key`: a JSON string with its quotes.
    fn hides_json_key(&self, key: &[u8]) -> bool {
        let Ok(key) = std::str::from_utf8(key) else {
            return false;
        };
        crate::encode::decode_str(key).is_some_and(|key| self.hides(&key))
    }
}

impl Pattern {
    /// `text`: lower case, with at least one `*`.
    fn new(text: Box<str>) -> Self {
        let mut pieces: Vec<&[u8]> = text.as_bytes().split(|&b| b == b'*').collect();
        // `split` gives one more piece than there are stars: the first and
        // last are the prefix and suffix (empty when it starts or ends
        // with a star).
        let suffix: Box<[u8]> = pieces.pop().unwrap_or_default().into();
        let prefix: Box<[u8]> = if pieces.is_empty() {
            Box::default()
        } else {
            pieces.remove(0).into()
        };
        let middle: Box<[Box<[u8]>]> = pieces
            .into_iter()
            .filter(|p| !p.is_empty())
            .map(Box::from)
            .collect();
        let min_len = prefix.len() + suffix.len() + middle.iter().map(|m| m.len()).sum::<usize>();
        let needs = byte_set(
            &text
                .as_bytes()
                .iter()
                .copied()
                .filter(|&b| b != b'*')
                .collect::<Vec<_>>(),
        );
        Self {
            text,
            prefix,
            suffix,
            middle,
            min_len,
            needs,
        }
    }

    /// Whether `key` matches, ignoring ASCII case: the prefix at the start,
    /// the suffix at the end, each middle piece after the one before (the
    /// leftmost place for each is the best one).
    fn matches(&self, key: &[u8]) -> bool {
        if key.len() < self.min_len {
            return false;
        }
        let (Some(head), Some(tail)) = (
            key.get(..self.prefix.len()),
            key.get(key.len() - self.suffix.len()..),
        ) else {
            return false;
        };
        if !head.eq_ignore_ascii_case(&self.prefix) || !tail.eq_ignore_ascii_case(&self.suffix) {
            return false;
        }
        let mut rest = key
            .get(self.prefix.len()..key.len() - self.suffix.len())
            .unwrap_or_default();
        for piece in self.middle.iter() {
            match find_ignoring_case(rest, piece) {
                Some(at) => rest = rest.get(at + piece.len()..).unwrap_or_default(),
                None => return false,
            }
        }
        true
    }
}

/// The bytes of `bytes`, in lower case, as bits: byte `b` sets bit
/// `b % 64`. Bytes share bits (a filter, not a set): a key whose bits miss
/// one of a pattern's cannot match it.
#[inline]
fn byte_set(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0u64, |set, &b| {
        set | (1u64 << (b.to_ascii_lowercase() & 63))
    })
}

/// Where `needle` (lower case, not empty) first is in `hay`, ignoring ASCII
/// case: a scan for its first byte, a compare of the rest at each hit.
fn find_ignoring_case(hay: &[u8], needle: &[u8]) -> Option<usize> {
    let (&first, rest) = needle.split_first()?;
    let last = hay.len().checked_sub(needle.len())?;
    let mut i = 0;
    while i <= last {
        let skip = hay
            .get(i..=last)
            .unwrap_or_default()
            .iter()
            .position(|b| b.to_ascii_lowercase() == first)?;
        i += skip;
        if hay
            .get(i + 1..i + needle.len())
            .is_some_and(|w| w.eq_ignore_ascii_case(rest))
        {
            return Some(i);
        }
        i += 1;
    }
    None
}

/// Whether `json` is an object or an array (whitespace before it aside):
/// only those can hold a key.
#[inline]
pub(crate) fn is_container(json: &[u8]) -> bool {
    match json.first() {
        Some(b'{' | b'[') => true,
        Some(b' ' | b'\t' | b'\n' | b'\r') => {
            matches!(json.get(skip_space(json, 0)), Some(b'{' | b'['))
        }
        _ => false,
    }
}

/// The index after the string starting at `start` (a `"`): past its
/// closing quote, or the end of the text.
fn string_end(json: &[u8], start: usize) -> usize {
    let mut i = start + 1;
    while let Some(&b) = json.get(i) {
        match b {
            b'\\' => i += 2,
            b'"' => return i + 1,
            _ => i += 1,
        }
    }
    json.len()
}

fn skip_space(json: &[u8], mut i: usize) -> usize {
    while json
        .get(i)
        .is_some_and(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
    {
        i += 1;
    }
    i
}

/// The index after the value starting at `start`: a string, an object or
/// array (to its matching bracket, strings inside skipped), or a number or
/// literal.
fn value_end(json: &[u8], start: usize) -> usize {
    match json.get(start) {
        Some(b'"') => string_end(json, start),
        Some(b'{' | b'[') => {
            let mut depth = 0usize;
            let mut i = start;
            while let Some(&b) = json.get(i) {
                match b {
                    b'"' => {
                        i = string_end(json, i);
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth = depth.saturating_sub(1);
                        if depth == 0 {
                            return i + 1;
                        }
                    }
                    _ => {}
                }
                i += 1;
            }
            json.len()
        }
        _ => {
            let mut i = start;
            while json
                .get(i)
                .is_some_and(|b| !matches!(b, b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r'))
            {
                i += 1;
            }
            i
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // test code: a panic is a failure report

    use super::*;

    fn scrub(keys: &[&str], json: &str) -> String {
        Redact::new(keys).scrub_json(json).into_owned()
    }

    #[test]
    fn patterns_match_whole_keys_with_stars_for_any_run() {
        let cases: &[(&str, &str, bool)] = &[
            ("*token*", "token", true),
            ("*token*", "API_TOKEN_ID", true),
            ("*token*", "tokens", true),
            ("*token*", "toke", false),
            ("*_secret", "client_secret", true),
            ("*_secret", "_secret", true),
            ("*_secret", "secret", false),
            ("*_secret", "client_secret_id", false),
            ("api_*", "api_", true),
            ("api_*", "API_KEY", true),
            ("api_*", "my_api_key", false),
            ("a*b*c", "aXXbYYc", true),
            ("a*b*c", "abcabc", true),
            ("a*b*c", "acb", false),
            ("*", "anything", true),
            ("**x", "x", true),
            ("pass*word", "password", true),
            ("pass*word", "pass-the-word", true),
            ("pass*word", "passwords", false),
        ];
        for &(pattern, key, hidden) in cases {
            assert_eq!(Redact::new([pattern]).hides(key), hidden, "{pattern} {key}");
        }
        // Non-ASCII keys: compared byte for byte, case folded for ASCII only.
        assert!(Redact::new(["*clé*"]).hides("MA_clé_API"));
        assert!(!Redact::new(["*clé*"]).hides("MA_CLÉ"));
    }

    /// The textbook glob (backtracking to the last star), which the
    /// pieces-based match must equal.
    fn reference_glob(pattern: &[u8], key: &[u8]) -> bool {
        let (mut p, mut k, mut star) = (0, 0, None);
        while k < key.len() {
            if pattern.get(p) == Some(&b'*') {
                star = Some((p, k));
                p += 1;
            } else if pattern.get(p) == Some(&key[k].to_ascii_lowercase()) {
                p += 1;
                k += 1;
            } else if let Some((sp, sk)) = star {
                star = Some((sp, sk + 1));
                p = sp + 1;
                k = sk + 1;
            } else {
                return false;
            }
        }
        pattern[p..].iter().all(|&c| c == b'*')
    }

    #[test]
    fn patterns_equal_the_textbook_glob() {
        let alphabet = b"ab*_";
        let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = |n: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % n as u64) as usize
        };
        for _ in 0..20_000 {
            let pattern: Vec<u8> = (0..next(7)).map(|_| alphabet[next(4)]).collect();
            let key: Vec<u8> = (0..next(9)).map(|_| b"aAbB_"[next(5)]).collect();
            let (pattern, key) = (
                String::from_utf8(pattern).unwrap(),
                String::from_utf8(key).unwrap(),
            );
            if !pattern.contains('*') {
                continue;
            }
            assert_eq!(
                Redact::new([&pattern]).hides(&key),
                reference_glob(pattern.as_bytes(), key.as_bytes()),
                "{pattern:?} {key:?}"
            );
        }
    }

    #[test]
    fn hidden_keys_are_masked_at_any_depth() {
        let keys = &["password", "*token*"];
        assert_eq!(
            scrub(
                keys,
                r#"{"password":"x","db":{"Password":{"a":[1,"}"]},"n":2},"list":[{"token":"z"},{"x_token_y":[1,2]}],"s":"password"}"#
            ),
            r#"{"password":"[redacted]","db":{"Password":"[redacted]","n":2},"list":[{"token":"[redacted]"},{"x_token_y":"[redacted]"}],"s":"password"}"#
        );
        // Whitespace (serde_json's pretty form), numbers, literals, escapes in keys.
        assert_eq!(
            scrub(
                keys,
                "{ \"pass\\u0077ord\" : 12.5e3 ,\n \"ok\": true, \"token\": null, \"k\\\"\": \"v\" }"
            ),
            "{ \"pass\\u0077ord\" : \"[redacted]\" ,\n \"ok\": true, \"token\": \"[redacted]\", \"k\\\"\": \"v\" }"
        );
        // Values that only look like keys are left alone.
        let text = r#"["password",{"a":"password:"},"\"password\":1"]"#;
        assert_eq!(scrub(keys, text), text);
        assert!(matches!(
            Redact::new(keys).scrub_json(text),
            Cow::Borrowed(_)
        ));
    }

    #[test]
    fn broken_text_never_panics() {
        let redact = Redact::new(["password"]);
        for text in [
            r#"{"password""#,
            r#"{"password":"#,
            r#"{"password": "unterminated"#,
            r#"{"password":{"a":[1,2"#,
            r#"{"password":}"#,
            r#""\"#,
            "{\"password\":\"\\",
            "}}]]{\"password\":1",
        ] {
            let out = redact.scrub_json(text);
            assert!(
                !out.contains("unterminated") && !out.contains("1,2"),
                "{out}"
            );
        }
    }

    #[test]
    fn write_json_masks_the_key_or_inside_the_value() {
        let redact = Redact::new(["secret"]);
        let mut buf = Vec::new();
        redact.write_json(&mut buf, "SECRET", b"[1]");
        redact.write_json(&mut buf, "v", br#"[{"secret":1}]"#);
        redact.write_json(&mut buf, "s", br#""secret""#);
        assert_eq!(buf, br#""[redacted]"[{"secret":"[redacted]"}]"secret""#);
        let mut buf = Vec::new();
        Redact::default().write_json(&mut buf, "secret", br#"{"secret":1}"#);
        assert_eq!(buf, br#"{"secret":1}"#);
    }
}
