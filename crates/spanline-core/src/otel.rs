//! OpenTelemetry ids for a line (feature `opentelemetry`).
//!
//! With `tracing-opentelemetry`'s layer in the stack, every span has an
//! OpenTelemetry span context; a line written inside a span carries its
//! `trace_id` (32 hex digits) and `span_id` (16 hex digits), so logs and the
//! exported trace join on the same ids. The context layer asks once per
//! event, for every output layer. Without that layer (or outside any span)
//! nothing is added, and the cost is one failed downcast per event in a span.

use tracing_core::span::Id;
use tracing_core::Dispatch;

use opentelemetry::trace::TraceContextExt;

/// The OpenTelemetry ids of the span an event belongs to, as lower-case hex.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct OtelIds {
    pub(crate) trace_id: [u8; 32],
    pub(crate) span_id: [u8; 16],
}

impl OtelIds {
    /// The ids of span `id`, when tracing-opentelemetry's layer in
    /// `dispatch` tracks it and its context is valid. Starts the span's
    /// OpenTelemetry context if it was not started yet, as entering it
    /// would. The caller must hold no lock on the span's extensions.
    pub(crate) fn of_span(id: &Id, dispatch: &Dispatch) -> Option<OtelIds> {
        let cx = tracing_opentelemetry::get_otel_context(id, dispatch)?;
        let span = cx.span();
        let sc = span.span_context();
        if !sc.is_valid() {
            return None;
        }
        Some(OtelIds {
            trace_id: hex(sc.trace_id().to_bytes()),
            span_id: hex(sc.span_id().to_bytes()),
        })
    }

    /// The trace id as text (always ASCII hex).
    pub(crate) fn trace_id(&self) -> &str {
        std::str::from_utf8(&self.trace_id).unwrap_or_default()
    }

    /// The trace id as a JSON string.
    pub(crate) fn trace_json(&self) -> [u8; 34] {
        quoted(self.trace_id)
    }

    /// The span id as a JSON string.
    pub(crate) fn span_json(&self) -> [u8; 18] {
        quoted(self.span_id)
    }

    /// The span id as text (always ASCII hex).
    pub(crate) fn span_id(&self) -> &str {
        std::str::from_utf8(&self.span_id).unwrap_or_default()
    }
}

fn quoted<const N: usize, const M: usize>(text: [u8; N]) -> [u8; M] {
    let mut out = [b'"'; M];
    if let Some(inner) = out.get_mut(1..=N) {
        inner.copy_from_slice(&text);
    }
    out
}

fn hex<const N: usize, const M: usize>(bytes: [u8; N]) -> [u8; M] {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = [b'0'; M];
    for (i, b) in bytes.iter().enumerate() {
        if let Some([hi, lo]) = out.get_mut(2 * i..2 * i + 2) {
            *hi = DIGITS[usize::from(b >> 4)];
            *lo = DIGITS[usize::from(b & 0xf)];
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn hex_is_lower_case_and_padded() {
        let out: [u8; 4] = super::hex([0x0a, 0xf0]);
        assert_eq!(&out, b"0af0");
    }
}
