//! How a line writes an error value (a field recorded as `&dyn Error`):
//! the [`ErrorStyle`]s, and the chain renderers they use.

use std::error::Error;
use std::fmt;

use crate::encode;
use crate::fields::{sources, type_name};

/// How an error field (`error = &err as &dyn Error`) is written. Each
/// preset has its own default; [`SchemaBuilder::errors`](crate::SchemaBuilder::errors)
/// picks another.
///
/// Samples for `error = QueryFailed` whose `source()` is `TimedOut`:
///
/// | style | written |
/// |---|---|
/// | `Chain` (flat, bunyan, gcp, nested) | `"error":"query failed","error_sources":["timed out after 5s"]` |
/// | `Ecs` (ecs) | `"error.message":"query failed","error.type":"QueryFailed","error.stack_trace":"QueryFailed: query failed\nCaused by: TimedOut: timed out after 5s"` |
/// | `Traceback` (structlog) | `"exception":"TimedOut: timed out after 5s\n\nThe above exception was the direct cause of the following exception:\n\nQueryFailed: query failed"` |
/// | `Dicts` | `"exception":[{"exc_type":"QueryFailed","exc_value":"query failed","exc_notes":[],"syntax_error":null,"is_cause":false,"frames":[],"is_group":false,"exceptions":[]},{"exc_type":"TimedOut",…,"is_cause":true,…}]` |
///
/// The type names come from the start of each error's `Debug` text (a
/// derived `Debug` starts with the type or variant name; `std::io::Error`
/// is named as such); where it starts with no such name, the type is left
/// out. Rust errors carry no frames, so tracebacks have none.
///
/// ```
/// use spanline_core::{ErrorStyle, Preset, Schema};
/// let style: ErrorStyle = "traceback".parse().unwrap();
/// let schema = Schema::builder(Preset::Flat).errors(style).build();
/// ```
///
/// [`SchemaBuilder::errors`](crate::SchemaBuilder::errors) shows a line
/// written with a style.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorStyle {
    /// The error's `Display` under the field's name, and the messages of
    /// its causes, outermost first, as `<field>_sources` (left out when
    /// there is no cause).
    Chain,
    /// Elastic Common Schema's error fields, for a field named `error`:
    /// `error.message`, `error.type` (when known) and, when there is a
    /// cause, `error.stack_trace`, the chain as text, outermost first
    /// (`Caused by:` lines). Other error fields are written as `Chain`.
    Ecs,
    /// structlog's `format_exc_info`: the chain as text, deepest cause
    /// first, joined by Python's "The above exception was the direct cause
    /// of the following exception:". A field named `error` or `exception`
    /// is written as `exception`.
    Traceback,
    /// structlog's `dict_tracebacks`: a list with one object per error,
    /// the error first and its causes after (`is_cause: true`), under
    /// `exception` as for `Traceback`.
    Dicts,
}

impl ErrorStyle {
    const ALL: [(ErrorStyle, &'static str); 4] = [
        (ErrorStyle::Chain, "chain"),
        (ErrorStyle::Ecs, "ecs"),
        (ErrorStyle::Traceback, "traceback"),
        (ErrorStyle::Dicts, "dicts"),
    ];

    /// The style's name, as `FromStr` reads it.
    ///
    /// ```
    /// assert_eq!(spanline_core::ErrorStyle::Dicts.name(), "dicts");
    /// ```
    pub fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(s, _)| *s == self)
            .map_or("chain", |(_, n)| n)
    }

    /// The key an error field is written under.
    pub(crate) fn key(self, field: &'static str) -> &'static str {
        match self {
            ErrorStyle::Traceback | ErrorStyle::Dicts
                if field == "error" || field == "exception" =>
            {
                EXCEPTION
            }
            ErrorStyle::Ecs if field == "error" => ECS_MESSAGE,
            _ => field,
        }
    }
}

impl std::str::FromStr for ErrorStyle {
    type Err = ParseErrorStyleError;

    /// Parses `chain`, `ecs`, `traceback` or `dicts`, case-insensitively.
    ///
    /// ```
    /// let err = "frames".parse::<spanline_core::ErrorStyle>().unwrap_err();
    /// assert_eq!(err.to_string(), "unknown error style `frames` (expected chain, ecs, traceback or dicts)");
    /// ```
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let wanted = s.trim();
        Self::ALL
            .iter()
            .find(|(_, n)| n.eq_ignore_ascii_case(wanted))
            .map(|(style, _)| *style)
            .ok_or_else(|| ParseErrorStyleError {
                name: s.to_string(),
            })
    }
}

/// An error style name that [`ErrorStyle`]'s `FromStr` does not know.
///
/// ```
/// assert_eq!("x".parse::<spanline_core::ErrorStyle>().unwrap_err().name(), "x");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseErrorStyleError {
    name: String,
}

impl ParseErrorStyleError {
    /// The name that was given.
    ///
    /// See [`ParseErrorStyleError`]'s example.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl fmt::Display for ParseErrorStyleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown error style `{}` (expected chain, ecs, traceback or dicts)",
            self.name
        )
    }
}

impl std::error::Error for ParseErrorStyleError {}

/// structlog's key for an error.
pub(crate) const EXCEPTION: &str = "exception";
/// The ECS error fields.
pub(crate) const ECS_MESSAGE: &str = "error.message";
pub(crate) const ECS_TYPE: &str = "error.type";
pub(crate) const ECS_STACK: &str = "error.stack_trace";
/// Python's words between two links of a chain.
const DIRECT_CAUSE: &str =
    "\n\nThe above exception was the direct cause of the following exception:\n\n";

/// The error and its causes, outermost first.
fn chain<'a>(
    err: &'a (dyn Error + 'static),
) -> impl Iterator<Item = &'a (dyn Error + 'static)> + 'a {
    std::iter::once(err).chain(sources(err))
}

/// `Type: message`, or the message when the type is not known.
fn headline(err: &(dyn Error + 'static)) -> String {
    let message = encode::display_string(&err);
    match type_name(err) {
        Some(name) => format!("{name}: {message}"),
        None => message,
    }
}

/// ECS's `error.stack_trace`: the chain, outermost first.
pub(crate) fn write_caused_by(buf: &mut Vec<u8>, err: &(dyn Error + 'static)) {
    let text: Vec<String> = chain(err).map(headline).collect();
    encode::write_str(buf, &text.join("\nCaused by: "));
}

/// structlog's `format_exc_info` text: deepest cause first.
pub(crate) fn write_traceback(buf: &mut Vec<u8>, err: &(dyn Error + 'static)) {
    let mut text: Vec<String> = chain(err).map(headline).collect();
    text.reverse();
    encode::write_str(buf, &text.join(DIRECT_CAUSE));
}

/// structlog's `dict_tracebacks` list: the error, then its causes.
pub(crate) fn write_dicts(buf: &mut Vec<u8>, err: &(dyn Error + 'static)) {
    buf.push(b'[');
    for (i, link) in chain(err).enumerate() {
        if i > 0 {
            buf.push(b',');
        }
        buf.push(b'{');
        if let Some(name) = type_name(link) {
            buf.extend_from_slice(b"\"exc_type\":");
            encode::write_str(buf, &name);
            buf.push(b',');
        }
        buf.extend_from_slice(b"\"exc_value\":");
        encode::write_display(buf, &link);
        buf.extend_from_slice(b",\"exc_notes\":[],\"syntax_error\":null,\"is_cause\":");
        buf.extend_from_slice(if i > 0 { b"true" } else { b"false" });
        buf.extend_from_slice(b",\"frames\":[],\"is_group\":false,\"exceptions\":[]}");
    }
    buf.push(b']');
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // test code: a panic is a failure report

    use super::*;

    #[derive(Debug)]
    struct QueryFailed(TimedOut);
    #[derive(Debug)]
    struct TimedOut;
    impl fmt::Display for QueryFailed {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("query failed")
        }
    }
    impl fmt::Display for TimedOut {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("timed out after 5s")
        }
    }
    impl Error for QueryFailed {
        fn source(&self) -> Option<&(dyn Error + 'static)> {
            Some(&self.0)
        }
    }
    impl Error for TimedOut {}

    /// An error whose `Debug` is its message, as anyhow's is.
    struct Message;
    impl fmt::Debug for Message {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("Disk full: no space left")
        }
    }
    impl fmt::Display for Message {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("disk full")
        }
    }
    impl Error for Message {}

    fn text(
        write: fn(&mut Vec<u8>, &(dyn Error + 'static)),
        err: &(dyn Error + 'static),
    ) -> String {
        let mut buf = Vec::new();
        write(&mut buf, err);
        String::from_utf8(buf).unwrap()
    }

    #[test]
    fn type_names_come_from_derived_debug_only() {
        assert_eq!(
            type_name(&QueryFailed(TimedOut)).as_deref(),
            Some("QueryFailed")
        );
        assert_eq!(type_name(&TimedOut).as_deref(), Some("TimedOut"));
        assert_eq!(type_name(&Message), None);
        let io = std::io::Error::new(std::io::ErrorKind::TimedOut, "slow");
        assert_eq!(type_name(&io).as_deref(), Some("std::io::Error"));
        assert_eq!(type_name(&fmt::Error).as_deref(), Some("Error"));
    }

    #[test]
    fn chains_render_in_each_order() {
        let err = QueryFailed(TimedOut);
        assert_eq!(
            text(write_traceback, &err),
            r#""TimedOut: timed out after 5s\n\nThe above exception was the direct cause of the following exception:\n\nQueryFailed: query failed""#
        );
        assert_eq!(
            text(write_caused_by, &err),
            r#""QueryFailed: query failed\nCaused by: TimedOut: timed out after 5s""#
        );
        assert_eq!(text(write_traceback, &Message), r#""disk full""#);
        let dicts: serde_json::Value = serde_json::from_str(&text(write_dicts, &err)).unwrap();
        assert_eq!(dicts[0]["exc_type"], "QueryFailed");
        assert_eq!(dicts[0]["is_cause"], false);
        assert_eq!(dicts[1]["exc_value"], "timed out after 5s");
        assert_eq!(dicts[1]["is_cause"], true);
    }
}
