//! JSON values inside a line: [`Json`] wraps a `serde::Serialize` value so
//! that spanline writes it as a JSON object, array or scalar, not as a
//! string, while every other layer sees its JSON text through `Debug`.
//!
//! tracing hands a layer such a value only as `&dyn Debug` (its `Value`
//! trait is sealed), so the wrapper and spanline's writer agree through a
//! per-thread flag: the writer offers before formatting a value; the
//! wrapper, when offered, takes the offer and writes its JSON text in one
//! piece; the writer copies that text unquoted, after checking that it is
//! one JSON value. Any other `Debug` value (one that holds a wrapper inside
//! included) is escaped into a string as before.

use std::cell::Cell;
use std::fmt;

use crate::encode;

const IDLE: u8 = 0;
const OFFERED: u8 = 1;
const TAKEN: u8 = 2;

thread_local! {
    static EMBED: Cell<u8> = const { Cell::new(IDLE) };
}

/// Sets the flag, returning what it was (`IDLE` while the thread ends).
fn swap(state: u8) -> u8 {
    EMBED.try_with(|e| e.replace(state)).unwrap_or(IDLE)
}

/// Called by a wrapper about to write its JSON text: true when the writer
/// offered to embed it.
fn take_offer() -> bool {
    EMBED
        .try_with(|e| {
            let offered = e.get() == OFFERED;
            if offered {
                e.set(TAKEN);
            }
            offered
        })
        .unwrap_or(false)
}

/// Writes a `Debug` value as JSON: embedded unquoted when it is a [`Json`]
/// (or [`JsonText`]) value, else a quoted, escaped string, as
/// [`write_debug`](crate::encode::write_debug) writes it. An embedded value has the
/// keys `redact` hides masked at any depth, and the characters spanline
/// escapes in strings (C1 controls, U+2028, U+2029, bidi overrides)
/// escaped.
pub(crate) fn write_debug_value(
    buf: &mut Vec<u8>,
    value: &dyn fmt::Debug,
    redact: Option<&crate::Redact>,
) {
    use fmt::Write as _;
    // Restored after: a `Debug` impl may log, and format values, itself.
    let before = swap(OFFERED);
    let start = buf.len();
    let mut out = Writer {
        start,
        buf,
        mode: Mode::Undecided,
    };
    let ok = write!(out, "{value:?}").is_ok();
    out.finish(ok);
    if out.mode == Mode::Raw {
        finish_raw(out.buf, start, redact);
    }
    swap(before);
}

/// The JSON text of an embedded value, from `start` to the end of `buf`,
/// made ready for a line: hidden keys masked, unsafe characters escaped.
fn finish_raw(buf: &mut Vec<u8>, start: usize, redact: Option<&crate::Redact>) {
    if let Some(redact) = redact {
        redact.scrub_tail(buf, start);
    }
    encode::escape_json_tail(buf, start);
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Undecided,
    /// One piece of JSON text from a wrapper, copied as it came.
    Raw,
    Escaped,
}

struct Writer<'b> {
    buf: &'b mut Vec<u8>,
    start: usize,
    mode: Mode,
}

impl Writer<'_> {
    /// What was copied raw becomes the start of an escaped string.
    fn quote_raw(&mut self) {
        let raw = self.buf.split_off(self.start);
        self.buf.push(b'"');
        encode::escape_str(self.buf, &String::from_utf8_lossy(&raw));
        self.mode = Mode::Escaped;
    }

    fn finish(&mut self, ok: bool) {
        if self.mode == Mode::Undecided {
            // Nothing written: an empty string.
            swap(IDLE);
            self.buf.push(b'"');
            self.mode = Mode::Escaped;
        }
        if self.mode == Mode::Raw && !(ok && is_one_value(&self.buf[self.start..])) {
            self.quote_raw();
        }
        if self.mode == Mode::Escaped {
            if !ok {
                self.buf.extend_from_slice(encode::FMT_ERROR.as_bytes());
            }
            self.buf.push(b'"');
        }
    }
}

impl fmt::Write for Writer<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        match self.mode {
            Mode::Undecided => {
                // The first piece decides; the offer ends here either way,
                // so a wrapper nested in another value's `Debug` is text.
                if swap(IDLE) == TAKEN {
                    self.mode = Mode::Raw;
                    self.buf.extend_from_slice(s.as_bytes());
                } else {
                    self.mode = Mode::Escaped;
                    self.buf.push(b'"');
                    encode::escape_str(self.buf, s);
                }
            }
            // A wrapper writes once: more text means it was not alone.
            Mode::Raw => {
                self.quote_raw();
                encode::escape_str(self.buf, s);
            }
            Mode::Escaped => encode::escape_str(self.buf, s),
        }
        Ok(())
    }
}

/// The bytes are exactly one JSON value (the check that keeps a line
/// valid whatever a `Debug` impl does).
fn is_one_value(bytes: &[u8]) -> bool {
    serde_json::from_slice::<serde::de::IgnoredAny>(bytes).is_ok()
}

/// A `serde::Serialize` value that spanline writes as JSON: a struct or
/// map as an object, a sequence as an array, `None` as `null`, in every
/// preset, in span fields and [`set`](crate::set) values, across the
/// child-process pipe and on Redis. Other layers (tracing-subscriber's
/// `fmt`, the console renderer) show its JSON text.
///
/// Log it with `?`, or with [`json`] which adds the `?` for you. A value
/// that fails to serialize (a map with non-string keys, an `Err` from a
/// `Serialize` impl) is written as a string that says why.
///
/// ```
/// use tracing_subscriber::{layer::Context, prelude::*, Layer};
/// #[derive(serde::Serialize)]
/// struct User { id: u32, roles: Vec<&'static str> }
///
/// struct Fields;
/// impl<S: tracing::Subscriber> Layer<S> for Fields {
///     fn on_event(&self, event: &tracing::Event<'_>, _ctx: Context<'_, S>) {
///         let mut buf = Vec::new();
///         event.record(&mut spanline_core::JsonFields::new(&mut buf, Default::default()));
///         assert_eq!(buf, br#""message":"payload","user":{"id":7,"roles":["admin"]},"tags":["a","b"]"#);
///     }
/// }
/// tracing::subscriber::with_default(tracing_subscriber::registry().with(Fields), || {
///     let user = User { id: 7, roles: vec!["admin"] };
///     tracing::info!(user = spanline_core::json(&user), tags = ?spanline_core::Json(["a", "b"]), "payload");
/// });
/// ```
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Json<T>(pub T);

/// Wraps a value for a field: `info!(user = spanline_core::json(&user))`
/// is `info!(user = ?spanline_core::Json(&user))`.
///
/// ```
/// let value = spanline_core::json(vec![1, 2]);
/// assert_eq!(format!("{value:?}"), "[1,2]");
/// ```
pub fn json<T: serde::Serialize>(value: T) -> tracing_core::field::DebugValue<Json<T>> {
    tracing_core::field::debug(Json(value))
}

impl<T: serde::Serialize> fmt::Debug for Json<T> {
    /// The value's JSON text (compact).
    ///
    /// ```
    /// assert_eq!(format!("{:?}", spanline_core::Json(Some("a"))), r#""a""#);
    /// assert_eq!(format!("{:?}", spanline_core::Json(None::<u8>)), "null");
    /// ```
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Serialized first: user code, which may log, runs before the offer
        // is taken.
        match serde_json::to_string(&self.0) {
            Ok(text) => {
                take_offer();
                f.write_str(&text)
            }
            Err(e) => write!(f, "[not serializable as JSON: {e}]"),
        }
    }
}

impl<T: serde::Serialize> crate::ContextValue for Json<T> {
    /// For [`set`](crate::set): the value as JSON.
    ///
    /// ```
    /// use spanline_core::ContextValue;
    /// let mut buf = Vec::new();
    /// spanline_core::Json([1, 2]).write_json(&mut buf, &Default::default());
    /// assert_eq!(buf, b"[1,2]");
    /// ```
    fn write_json(&self, buf: &mut Vec<u8>, _: &crate::NumberPolicy) {
        // Stored as it is: each sink masks its own hidden keys when it
        // writes the value.
        write_debug_value(buf, self, None);
    }
}

/// JSON text that was checked to be one JSON value, written unquoted as
/// [`Json`] values are: for re-emitting a value that arrived as JSON (the
/// child-process pipe does).
///
/// ```
/// let text = spanline_core::JsonText::new(r#"{"id":7}"#).unwrap();
/// assert_eq!(format!("{text:?}"), r#"{"id":7}"#);
/// assert!(spanline_core::JsonText::new("{oops").is_none());
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct JsonText<'a>(&'a str);

impl<'a> JsonText<'a> {
    /// The text, when it is exactly one JSON value.
    ///
    /// See [`JsonText`]'s example.
    pub fn new(text: &'a str) -> Option<Self> {
        is_one_value(text.as_bytes()).then_some(Self(text))
    }

    /// The JSON text.
    ///
    /// ```
    /// assert_eq!(spanline_core::JsonText::new("[1]").unwrap().as_str(), "[1]");
    /// ```
    pub fn as_str(&self) -> &'a str {
        self.0
    }
}

impl fmt::Debug for JsonText<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        take_offer();
        f.write_str(self.0)
    }
}

/// A `valuable` value (tracing's `record_value`, behind `--cfg
/// tracing_unstable` and the `valuable` feature), written as JSON.
#[cfg(all(tracing_unstable, feature = "valuable"))]
pub(crate) fn write_valuable(
    buf: &mut Vec<u8>,
    value: valuable::Value<'_>,
    redact: Option<&crate::Redact>,
) {
    let start = buf.len();
    if serde_json::to_writer(&mut *buf, &valuable_serde::Serializable::new(value)).is_err() {
        buf.truncate(start);
        encode::write_str(buf, "[not serializable as JSON]");
        return;
    }
    finish_raw(buf, start, redact);
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // test code: a panic is a failure report

    use super::*;

    fn written(value: &dyn fmt::Debug) -> String {
        let mut buf = Vec::new();
        write_debug_value(&mut buf, value, None);
        String::from_utf8(buf).unwrap()
    }

    #[derive(serde::Serialize)]
    struct User {
        id: u32,
        name: &'static str,
    }

    #[test]
    fn a_wrapper_is_embedded_and_anything_else_is_a_string() {
        assert_eq!(
            written(&Json(User {
                id: 7,
                name: "a\"b"
            })),
            r#"{"id":7,"name":"a\"b"}"#
        );
        assert_eq!(written(&Json(None::<u8>)), "null");
        assert_eq!(written(&vec![1, 2]), r#""[1, 2]""#);
        assert_eq!(written(&"x"), r#""\"x\"""#);
        // After a wrapper, plain values are strings again.
        assert_eq!(written(&[1]), r#""[1]""#);
    }

    #[test]
    fn a_wrapper_inside_another_value_is_text() {
        #[derive(Debug)]
        #[allow(dead_code)] // read through Debug
        struct Outer(Json<[u8; 2]>);
        assert_eq!(written(&Outer(Json([1, 2]))), r#""Outer([1,2])""#);

        // Forwarding with text after: not one value, so a string.
        struct Trailing(Json<u8>);
        impl fmt::Debug for Trailing {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)?;
                f.write_str(" and more")
            }
        }
        assert_eq!(written(&Trailing(Json(3))), r#""3 and more""#);

        // Forwarding alone: the wrapper's value.
        struct Alone(Json<u8>);
        impl fmt::Debug for Alone {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
        assert_eq!(written(&Alone(Json(3))), "3");
    }

    #[test]
    fn a_forged_take_cannot_write_invalid_json() {
        struct Forged;
        impl fmt::Debug for Forged {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                take_offer();
                f.write_str("{not json")
            }
        }
        assert_eq!(written(&Forged), r#""{not json""#);
    }

    #[test]
    fn a_failed_serialization_says_why() {
        let map: std::collections::BTreeMap<(u8, u8), u8> = [((1, 2), 3)].into();
        let text = written(&Json(map));
        assert!(text.starts_with("\"[not serializable as JSON: "), "{text}");
    }

    #[test]
    fn nothing_written_is_an_empty_string_and_errors_are_marked() {
        struct Nothing;
        impl fmt::Debug for Nothing {
            fn fmt(&self, _: &mut fmt::Formatter<'_>) -> fmt::Result {
                Ok(())
            }
        }
        assert_eq!(written(&Nothing), r#""""#);
        struct Broken;
        impl fmt::Debug for Broken {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                take_offer();
                f.write_str("[1]")?;
                Err(fmt::Error)
            }
        }
        assert_eq!(written(&Broken), r#""[1][fmt error]""#);
    }
}
