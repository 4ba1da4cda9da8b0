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
}

impl ValueSink {
    pub(crate) fn write(&self, buf: &mut Vec<u8>, v: Val<'_>) {
        match v {
            Val::Str(s) => encode::write_str(buf, s),
            Val::Debug(d) => encode::write_debug(buf, d),
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
        let mut next = err.source();
        let mut n = 0;
        while let Some(cause) = next {
            if n == MAX_SOURCES {
                break;
            }
            if n > 0 {
                buf.push(b',');
            }
            encode::write_display(buf, &cause);
            next = cause.source();
            n += 1;
        }
        buf.push(b']');
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";
const MAX_SOURCES: usize = 32;

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
    };
}
pub(crate) use forward_visit;
