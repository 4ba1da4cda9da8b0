//! [`SnapshotError`]: why a snapshot, or an entry of one, was rejected.

use std::fmt;

use super::ContextSnapshot;

/// Why a snapshot, or an entry of one, was rejected.
///
/// ```
/// let mut snap = spanline_context::ContextSnapshot::new();
/// let err = snap.insert("user id", "x").unwrap_err();
/// assert!(matches!(err, spanline_context::SnapshotError::InvalidKey(_)));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SnapshotError {
    /// The key is not an HTTP token (letters, digits, `!#$%&'*+-.^_|~` and backtick).
    InvalidKey(String),
    /// The value holds a control character.
    InvalidValue(String),
    /// The value is longer than [`ContextSnapshot::MAX_VALUE_LEN`].
    ValueTooLong(usize),
    /// The snapshot would hold more than [`ContextSnapshot::MAX_ENTRIES`] keys.
    TooManyEntries,
    /// The encoded baggage would be longer than [`ContextSnapshot::MAX_BYTES`].
    TooLarge(usize),
    /// The `traceparent` is invalid.
    TraceParent(crate::traceparent::TraceParentError),
    /// A serialized snapshot has a version this library does not read.
    UnsupportedVersion(u32),
    /// A serialized snapshot's baggage is malformed.
    Malformed(String),
}

impl fmt::Display for SnapshotError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SnapshotError::InvalidKey(k) => write!(f, "context key {k:?} is not an HTTP token"),
            SnapshotError::InvalidValue(v) => {
                write!(f, "context value {v:?} holds a control character")
            }
            SnapshotError::ValueTooLong(n) => {
                write!(
                    f,
                    "context value is {n} bytes, more than {}",
                    ContextSnapshot::MAX_VALUE_LEN
                )
            }
            SnapshotError::TooManyEntries => {
                write!(
                    f,
                    "context snapshot holds more than {} keys",
                    ContextSnapshot::MAX_ENTRIES
                )
            }
            SnapshotError::TooLarge(n) => {
                write!(
                    f,
                    "context snapshot encodes to {n} bytes, more than {}",
                    ContextSnapshot::MAX_BYTES
                )
            }
            SnapshotError::TraceParent(e) => e.fmt(f),
            SnapshotError::UnsupportedVersion(v) => {
                write!(f, "context snapshot version {v} is not supported")
            }
            SnapshotError::Malformed(m) => write!(f, "malformed context snapshot: {m}"),
        }
    }
}

impl std::error::Error for SnapshotError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            SnapshotError::TraceParent(e) => Some(e),
            _ => None,
        }
    }
}
