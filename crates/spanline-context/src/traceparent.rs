//! W3C `traceparent`: parsing and formatting, without OpenTelemetry.

use std::fmt;
use std::str::FromStr;

/// A W3C trace context `traceparent`: `00-{trace id}-{parent id}-{flags}`.
///
/// ```
/// use spanline_context::TraceParent;
/// let tp: TraceParent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".parse().unwrap();
/// assert_eq!(tp.trace_id(), "4bf92f3577b34da6a3ce929d0e0e4736");
/// assert!(tp.sampled());
/// assert!("00-00000000000000000000000000000000-00f067aa0ba902b7-01".parse::<TraceParent>().is_err());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TraceParent {
    trace_id: [u8; 16],
    parent_id: [u8; 8],
    flags: u8,
}

/// Why a `traceparent` was rejected.
///
/// ```
/// let err = "00-zz".parse::<spanline_context::TraceParent>().unwrap_err();
/// assert!(err.to_string().starts_with("invalid traceparent"));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TraceParentError(&'static str);

impl fmt::Display for TraceParentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid traceparent: {}", self.0)
    }
}

impl std::error::Error for TraceParentError {}

fn hex_into(s: &str, out: &mut [u8]) -> Result<(), TraceParentError> {
    if s.len() != out.len() * 2 {
        return Err(TraceParentError("a field has the wrong length"));
    }
    for (i, byte) in out.iter_mut().enumerate() {
        let digit = |c: u8| match c {
            b'0'..=b'9' => Ok(c - b'0'),
            b'a'..=b'f' => Ok(c - b'a' + 10),
            _ => Err(TraceParentError("not lower-case hex")),
        };
        *byte = digit(s.as_bytes()[2 * i])? << 4 | digit(s.as_bytes()[2 * i + 1])?;
    }
    Ok(())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl TraceParent {
    /// A traceparent for `trace_id` (32 lower-case hex digits) with a new
    /// random parent id, sampled.
    ///
    /// ```
    /// let tp = spanline_context::TraceParent::for_trace("4bf92f3577b34da6a3ce929d0e0e4736").unwrap();
    /// assert!(tp.sampled());
    /// ```
    pub fn for_trace(trace_id: &str) -> Result<Self, TraceParentError> {
        let mut tp = Self {
            trace_id: [0; 16],
            parent_id: [0; 8],
            flags: 1,
        };
        hex_into(trace_id, &mut tp.trace_id)?;
        if tp.trace_id == [0; 16] {
            return Err(TraceParentError("all-zero trace id"));
        }
        Ok(tp.child())
    }

    /// The same trace with a new random parent id, for an outgoing call.
    ///
    /// ```
    /// let tp: spanline_context::TraceParent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".parse().unwrap();
    /// assert_eq!(tp.child().trace_id(), tp.trace_id());
    /// assert_ne!(tp.child().parent_id(), tp.parent_id());
    /// ```
    #[must_use]
    pub fn child(&self) -> Self {
        let random = uuid::Uuid::now_v7();
        let mut parent_id = [0u8; 8];
        parent_id.copy_from_slice(&random.as_bytes()[8..16]);
        parent_id[7] |= 1; // never all zero
        Self { parent_id, ..*self }
    }

    /// The trace id, 32 lower-case hex digits.
    ///
    /// ```
    /// let tp: spanline_context::TraceParent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".parse().unwrap();
    /// assert_eq!(tp.trace_id(), "4bf92f3577b34da6a3ce929d0e0e4736");
    /// ```
    pub fn trace_id(&self) -> String {
        hex(&self.trace_id)
    }

    /// The parent (span) id, 16 lower-case hex digits.
    ///
    /// ```
    /// let tp: spanline_context::TraceParent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".parse().unwrap();
    /// assert_eq!(tp.parent_id(), "00f067aa0ba902b7");
    /// ```
    pub fn parent_id(&self) -> String {
        hex(&self.parent_id)
    }

    /// Whether the caller sampled this trace.
    ///
    /// ```
    /// let tp: spanline_context::TraceParent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00".parse().unwrap();
    /// assert!(!tp.sampled());
    /// ```
    pub fn sampled(&self) -> bool {
        self.flags & 1 == 1
    }
}

impl FromStr for TraceParent {
    type Err = TraceParentError;

    /// Parses version 00, and later versions by their first four fields as
    /// the specification asks; rejects version ff, upper-case hex and
    /// all-zero ids.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if s.len() > 512 {
            return Err(TraceParentError("too long"));
        }
        let mut parts = s.split('-');
        let (Some(version), Some(trace), Some(parent), Some(flags)) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(TraceParentError("expected version-traceid-parentid-flags"));
        };
        let mut v = [0u8; 1];
        hex_into(version, &mut v)?;
        if v[0] == 0xff || (v[0] == 0 && parts.next().is_some()) {
            return Err(TraceParentError("unsupported version"));
        }
        let mut tp = Self {
            trace_id: [0; 16],
            parent_id: [0; 8],
            flags: 0,
        };
        hex_into(trace, &mut tp.trace_id)?;
        hex_into(parent, &mut tp.parent_id)?;
        let mut f = [0u8; 1];
        hex_into(flags, &mut f)?;
        tp.flags = f[0];
        if tp.trace_id == [0; 16] || tp.parent_id == [0; 8] {
            return Err(TraceParentError("all-zero id"));
        }
        Ok(tp)
    }
}

#[cfg(feature = "opentelemetry")]
impl TraceParent {
    /// An OpenTelemetry context whose remote parent is this traceparent.
    pub(crate) fn to_otel(self) -> opentelemetry::Context {
        use opentelemetry::trace::{SpanContext, TraceContextExt, TraceFlags, TraceState};
        let parent = SpanContext::new(
            opentelemetry::TraceId::from_bytes(self.trace_id),
            opentelemetry::SpanId::from_bytes(self.parent_id),
            TraceFlags::new(self.flags),
            true,
            TraceState::default(),
        );
        opentelemetry::Context::new().with_remote_span_context(parent)
    }

    /// The traceparent of an OpenTelemetry span context, when it is valid.
    pub(crate) fn from_otel(sc: &opentelemetry::trace::SpanContext) -> Option<Self> {
        sc.is_valid().then(|| Self {
            trace_id: sc.trace_id().to_bytes(),
            parent_id: sc.span_id().to_bytes(),
            flags: sc.trace_flags().to_u8(),
        })
    }
}

impl fmt::Display for TraceParent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "00-{}-{}-{:02x}",
            hex(&self.trace_id),
            hex(&self.parent_id),
            self.flags
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects() {
        let s = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        assert_eq!(s.parse::<TraceParent>().unwrap().to_string(), s);
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
        ] {
            assert!(bad.parse::<TraceParent>().is_err(), "{bad}");
        }
        // A later version may carry more fields.
        assert!(
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-future"
                .parse::<TraceParent>()
                .is_ok()
        );
    }

    #[test]
    fn child_keeps_the_trace() {
        let tp = TraceParent::for_trace("4bf92f3577b34da6a3ce929d0e0e4736").unwrap();
        let child = tp.child();
        assert_eq!(child.trace_id(), tp.trace_id());
        assert_ne!(child.parent_id(), "0000000000000000");
    }
}
