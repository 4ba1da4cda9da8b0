//! The W3C `baggage` text (`k=v,k2=v2`, values percent-encoded): read
//! leniently from outside input, strictly from version 1 of the serde
//! form; the form the environment and the headers carry, and what
//! [`ContextSnapshot::MAX_BYTES`] measures.

use super::{is_token, ContextSnapshot, SnapshotError, SnapshotValue};

impl ContextSnapshot {
    /// The W3C `baggage` form: `k=v,k2=v2`, values percent-encoded.
    ///
    /// ```
    /// let mut snap = spanline_context::ContextSnapshot::new();
    /// snap.insert("request_id", "r-1").unwrap();
    /// snap.insert("user_id", "ann lee").unwrap();
    /// assert_eq!(snap.to_baggage(), "request_id=r-1,user_id=ann%20lee");
    /// ```
    pub fn to_baggage(&self) -> String {
        encode_baggage(&self.entries)
    }

    /// Reads a W3C `baggage` value leniently (see the type's docs).
    ///
    /// ```
    /// let snap = spanline_context::ContextSnapshot::from_baggage("request_id=r-1;ttl=5, user_id=ann%20lee");
    /// assert_eq!(snap.get("user_id"), Some("ann lee"));
    /// ```
    pub fn from_baggage(baggage: &str) -> Self {
        let mut snap = Self::new();
        snap.merge_baggage(baggage);
        snap
    }

    fn merge_baggage(&mut self, baggage: &str) {
        for member in baggage.split(',') {
            let member = member.trim();
            if member.is_empty() {
                continue;
            }
            // Properties (`;k=v`) are allowed by the format; spanline keeps
            // only the value.
            let pair = member.split(';').next().unwrap_or_default();
            let parsed = pair
                .split_once('=')
                .and_then(|(k, v)| Some((k.trim(), percent_decode(v.trim())?)))
                .filter(|(k, _)| is_token(k));
            let inserted = parsed.is_some_and(|(k, v)| self.insert(k, v).is_ok());
            if !inserted {
                self.dropped += 1;
            }
        }
    }

    pub(super) fn strict_baggage(
        baggage: &str,
    ) -> Result<Vec<(String, SnapshotValue)>, SnapshotError> {
        let mut snap = Self::new();
        for member in baggage.split(',').filter(|m| !m.is_empty()) {
            let (k, v) = member.split_once('=').ok_or_else(|| {
                SnapshotError::Malformed(format!("member without '=': {member:.64}"))
            })?;
            let v = percent_decode(v).ok_or_else(|| {
                SnapshotError::Malformed(format!("bad percent-encoding: {v:.64}"))
            })?;
            snap.insert(k, v)?;
        }
        Ok(snap.entries)
    }
}

fn encode_baggage(entries: &[(String, SnapshotValue)]) -> String {
    let mut out = String::new();
    for (i, (k, v)) in entries.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(k);
        out.push('=');
        percent_encode(v.as_str(), &mut out);
    }
    out
}

pub(super) fn encoded_len(entries: &[(String, SnapshotValue)]) -> usize {
    encode_baggage(entries).len()
}

/// Bytes that travel as they are in a baggage value (W3C `baggage-octet`,
/// less `%`, which introduces an escape).
fn is_baggage_octet(b: u8) -> bool {
    matches!(b, 0x21 | 0x23..=0x24 | 0x26..=0x2b | 0x2d..=0x3a | 0x3c..=0x5b | 0x5d..=0x7e)
}

fn percent_encode(value: &str, out: &mut String) {
    for &b in value.as_bytes() {
        if is_baggage_octet(b) {
            out.push(b as char);
        } else {
            out.push('%');
            out.push(char::from(b"0123456789ABCDEF"[(b >> 4) as usize]));
            out.push(char::from(b"0123456789ABCDEF"[(b & 0xf) as usize]));
        }
    }
}

fn percent_decode(value: &str) -> Option<String> {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}
