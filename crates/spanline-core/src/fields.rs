//! Turning recorded `tracing` values into JSON fragments.
//!
//! [`ValueSink`] is the one place that knows how each kind of value is
//! written; span storage and event encoding both go through it.

use std::error::Error;
use std::fmt;

use crate::encode::{self, NumberPolicy};

/// Writes single values as JSON, following a [`NumberPolicy`].
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct ValueSink {
    pub(crate) numbers: NumberPolicy,
}

/// One recorded value, borrowed from the visitor call.
#[derive(Clone, Copy)]
pub(crate) enum Val<'a> {
    Str(&'a str),
    Debug(&'a dyn fmt::Debug),
    U64(u64),
    I64(i64),
    U128(u128),
    I128(i128),
    F64(f64),
    Bool(bool),
    Bytes(&'a [u8]),
    /// tracing's `record_value` (`--cfg tracing_unstable`).
    #[cfg(all(tracing_unstable, feature = "valuable"))]
    Valuable(valuable::Value<'a>),
}

impl ValueSink {
    /// Writes `v`; the keys `redact` hides are masked inside a JSON value
    /// (`Json`, `valuable`). `None` for the context store, which keeps
    /// values as they are (each sink masks with its own keys).
    pub(crate) fn write(&self, buf: &mut Vec<u8>, v: Val<'_>, redact: Option<&crate::Redact>) {
        match v {
            Val::Str(s) => encode::write_str(buf, s),
            // A `Json` value is embedded as JSON, anything else quoted.
            #[cfg(feature = "serde")]
            Val::Debug(d) => crate::embed::write_debug_value(buf, d, redact),
            #[cfg(not(feature = "serde"))]
            Val::Debug(d) => {
                let _ = redact;
                encode::write_debug(buf, d)
            }
            #[cfg(all(tracing_unstable, feature = "valuable"))]
            Val::Valuable(v) => crate::embed::write_valuable(buf, v, redact),
            Val::U64(n) => self.numbers.write_u64(buf, n),
            Val::I64(n) => self.numbers.write_i64(buf, n),
            Val::U128(n) => self.numbers.write_u128(buf, n),
            Val::I128(n) => self.numbers.write_i128(buf, n),
            Val::F64(n) => self.numbers.write_f64(buf, n),
            Val::Bool(b) => encode::write_bool(buf, b),
            Val::Bytes(bytes) => {
                // Lowercase hex keeps binary values short and printable.
                buf.push(b'"');
                for b in bytes {
                    buf.extend_from_slice(&[HEX[(b >> 4) as usize], HEX[(b & 0xf) as usize]]);
                }
                buf.push(b'"');
            }
        }
    }

    /// Writes an error's chain of sources as a JSON array of strings,
    /// outermost cause first. Stops after 32 links (a cyclic `source()`).
    pub(crate) fn write_sources(&self, buf: &mut Vec<u8>, err: &(dyn Error + 'static)) {
        buf.push(b'[');
        for (n, cause) in sources(err).enumerate() {
            if n > 0 {
                buf.push(b',');
            }
            encode::write_display(buf, &cause);
        }
        buf.push(b']');
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// The chain of an error's sources, outermost cause first, without the
/// error itself; at most 32 links (`MAX_SOURCES`), so a cyclic `source()`
/// ends. Every renderer (JSON, console, pipe) prints this chain.
///
/// ```
/// #[derive(Debug)]
/// struct Query(std::fmt::Error);
/// impl std::fmt::Display for Query {
///     fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
///         f.write_str("query failed")
///     }
/// }
/// impl std::error::Error for Query {
///     fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
///         Some(&self.0)
///     }
/// }
/// let chain: Vec<String> = spanline_core::sources(&Query(std::fmt::Error)).map(|e| e.to_string()).collect();
/// assert_eq!(chain, ["an error occurred when formatting an argument"]);
/// ```
pub fn sources<'a>(
    err: &'a (dyn Error + 'static),
) -> impl Iterator<Item = &'a (dyn Error + 'static)> + 'a {
    std::iter::successors(err.source(), |e: &&'a (dyn Error + 'static)| (*e).source())
        .take(MAX_SOURCES)
}

/// The most links of an error's chain that are written.
pub(crate) const MAX_SOURCES: usize = 32;

/// The error's type, read off the start of its `Debug` text: a name that
/// starts with a capital letter and ends the text or is followed by `(`,
/// ` {` or `;` (as derived `Debug` writes it). `None` otherwise: an
/// `anyhow` error's `Debug` is its message.
pub(crate) fn type_name(err: &(dyn Error + 'static)) -> Option<String> {
    if err.is::<std::io::Error>() {
        return Some("std::io::Error".to_string());
    }
    let text = encode::debug_string(&err);
    let end = text
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
        .unwrap_or(text.len());
    let (name, rest) = text.split_at(end);
    let starts_upper = name
        .rsplit("::")
        .next()
        .and_then(|last| last.chars().next())
        .is_some_and(|c| c.is_ascii_uppercase());
    let ends_well = rest.is_empty() || rest.starts_with(['(', ';']) || rest.starts_with(" {");
    (starts_upper && ends_well && !name.ends_with(':')).then(|| name.to_string())
}

/// Writes fields as `"name":value` pairs separated by commas (no braces),
/// the way every spanline line writes values: strings escaped, numbers by
/// the [`NumberPolicy`], `Debug` values as strings, bytes as hex, an error
/// as its message plus `"name_sources"`, the chain of its causes.
///
/// ```
/// use tracing_subscriber::{layer::Context, prelude::*, Layer};
/// struct Fields;
/// impl<S: tracing::Subscriber> Layer<S> for Fields {
///     fn on_event(&self, event: &tracing::Event<'_>, _ctx: Context<'_, S>) {
///         let mut buf = Vec::new();
///         event.record(&mut spanline_core::JsonFields::new(&mut buf, Default::default()));
///         assert_eq!(buf, br#""message":"hi","n":1.5,"ok":true"#);
///     }
/// }
/// let subscriber = tracing_subscriber::registry().with(Fields);
/// tracing::subscriber::with_default(subscriber, || tracing::info!(n = 1.5, ok = true, "hi"));
/// ```
#[derive(Debug)]
pub struct JsonFields<'b> {
    buf: &'b mut Vec<u8>,
    values: ValueSink,
    first: bool,
    redact: Option<&'b crate::Redact>,
    /// Collected when asked: each error field's type names.
    error_types: Option<Vec<ErrorTypes>>,
}

impl<'b> JsonFields<'b> {
    /// Appends to `buf`, numbers written by `numbers`.
    ///
    /// See the type's example.
    pub fn new(buf: &'b mut Vec<u8>, numbers: NumberPolicy) -> Self {
        Self {
            buf,
            values: ValueSink { numbers },
            first: true,
            redact: None,
            error_types: None,
        }
    }

    /// Also collects, for each error field, the type names of the error
    /// and of each cause (`None` where it is not known), outermost first:
    /// read them with [`error_types`](Self::error_types). The child-process
    /// pipe carries them beside the fields, so that the parent writes a
    /// child's error in its own schema's style.
    ///
    /// ```
    /// use tracing_subscriber::{layer::Context, prelude::*, Layer};
    /// struct Fields;
    /// impl<S: tracing::Subscriber> Layer<S> for Fields {
    ///     fn on_event(&self, event: &tracing::Event<'_>, _ctx: Context<'_, S>) {
    ///         let mut buf = Vec::new();
    ///         let mut fields = spanline_core::JsonFields::new(&mut buf, Default::default()).with_error_types();
    ///         event.record(&mut fields);
    ///         assert_eq!(fields.error_types(), [("error", vec![Some("Error".to_string())])]);
    ///     }
    /// }
    /// tracing::subscriber::with_default(tracing_subscriber::registry().with(Fields), || {
    ///     tracing::info!(error = &std::fmt::Error as &dyn std::error::Error, "hi");
    /// });
    /// ```
    #[must_use]
    #[doc(hidden)]
    pub fn with_error_types(mut self) -> Self {
        self.error_types = Some(Vec::new());
        self
    }

    /// The type names collected by [`with_error_types`](Self::with_error_types),
    /// by field, in the order the fields came.
    ///
    /// See [`with_error_types`](Self::with_error_types)' example.
    #[doc(hidden)]
    pub fn error_types(&self) -> &[ErrorTypes] {
        self.error_types.as_deref().unwrap_or_default()
    }

    /// Writes the values of the keys `redact` hides as `"[redacted]"`, at
    /// any depth of a JSON value ([`json`](crate::json), `valuable`) too.
    ///
    /// ```
    /// use tracing_subscriber::{layer::Context, prelude::*, Layer};
    /// struct Fields(spanline_core::Redact);
    /// impl<S: tracing::Subscriber> Layer<S> for Fields {
    ///     fn on_event(&self, event: &tracing::Event<'_>, _ctx: Context<'_, S>) {
    ///         let mut buf = Vec::new();
    ///         event.record(&mut spanline_core::JsonFields::new(&mut buf, Default::default()).redacting(&self.0));
    ///         assert_eq!(buf, br#""message":"hi","password":"[redacted]""#);
    ///     }
    /// }
    /// let layer = Fields(spanline_core::Redact::new(["password"]));
    /// tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || tracing::info!(password = "hunter2", "hi"));
    /// ```
    #[must_use]
    pub fn redacting(mut self, redact: &'b crate::Redact) -> Self {
        self.redact = Some(redact).filter(|r| !r.is_empty());
        self
    }

    fn hides(&self, name: &str) -> bool {
        self.redact.is_some_and(|r| r.hides(name))
    }

    fn key(&mut self, name: &str) {
        if !self.first {
            self.buf.push(b',');
        }
        self.first = false;
        encode::write_str(self.buf, name);
        self.buf.push(b':');
    }

    fn value(&mut self, field: &tracing_core::field::Field, v: Val<'_>) {
        self.key(field.name());
        if self.hides(field.name()) {
            return self.buf.extend_from_slice(crate::Redact::MASK_JSON);
        }
        self.values.write(self.buf, v, self.redact);
    }

    fn error(&mut self, field: &tracing_core::field::Field, err: &(dyn Error + 'static)) {
        self.key(field.name());
        if self.hides(field.name()) {
            return self.buf.extend_from_slice(crate::Redact::MASK_JSON);
        }
        encode::write_display(self.buf, &err);
        if err.source().is_some() {
            let mut key = String::with_capacity(field.name().len() + 8);
            key.push_str(field.name());
            key.push_str(crate::keys::SOURCES_SUFFIX);
            self.key(&key);
            self.values.write_sources(self.buf, err);
        }
        if let Some(types) = &mut self.error_types {
            let names = std::iter::once(err)
                .chain(sources(err))
                .map(type_name)
                .collect();
            types.push((field.name(), names));
        }
    }
}

/// One error field's type names, as [`JsonFields::error_types`] gives
/// them: the field's name, then the type of the error and of each cause,
/// outermost first (`None` where it is not known).
#[doc(hidden)]
pub type ErrorTypes = (&'static str, Vec<Option<String>>);

/// Implements `tracing::field::Visit` by forwarding every value as a [`Val`].
macro_rules! forward_visit {
    () => {
        fn record_str(&mut self, field: &::tracing_core::field::Field, value: &str) {
            self.value(field, $crate::fields::Val::Str(value));
        }
        fn record_debug(
            &mut self,
            field: &::tracing_core::field::Field,
            value: &dyn ::std::fmt::Debug,
        ) {
            self.value(field, $crate::fields::Val::Debug(value));
        }
        fn record_u64(&mut self, field: &::tracing_core::field::Field, value: u64) {
            self.value(field, $crate::fields::Val::U64(value));
        }
        fn record_i64(&mut self, field: &::tracing_core::field::Field, value: i64) {
            self.value(field, $crate::fields::Val::I64(value));
        }
        fn record_u128(&mut self, field: &::tracing_core::field::Field, value: u128) {
            self.value(field, $crate::fields::Val::U128(value));
        }
        fn record_i128(&mut self, field: &::tracing_core::field::Field, value: i128) {
            self.value(field, $crate::fields::Val::I128(value));
        }
        fn record_f64(&mut self, field: &::tracing_core::field::Field, value: f64) {
            self.value(field, $crate::fields::Val::F64(value));
        }
        fn record_bool(&mut self, field: &::tracing_core::field::Field, value: bool) {
            self.value(field, $crate::fields::Val::Bool(value));
        }
        fn record_bytes(&mut self, field: &::tracing_core::field::Field, value: &[u8]) {
            self.value(field, $crate::fields::Val::Bytes(value));
        }
        fn record_error(
            &mut self,
            field: &::tracing_core::field::Field,
            value: &(dyn ::std::error::Error + 'static),
        ) {
            self.error(field, value);
        }
        #[cfg(all(tracing_unstable, feature = "valuable"))]
        fn record_value(
            &mut self,
            field: &::tracing_core::field::Field,
            value: ::valuable::Value<'_>,
        ) {
            self.value(field, $crate::fields::Val::Valuable(value));
        }
    };
}
pub(crate) use forward_visit;

impl tracing_core::field::Visit for JsonFields<'_> {
    forward_visit!();
}
