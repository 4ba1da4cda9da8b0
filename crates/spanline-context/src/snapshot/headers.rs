//! The HTTP form: `traceparent`, `tracestate`, `baggage` and
//! `x-request-id` for an outgoing call; the first three read, allow-listed,
//! from an incoming one.

use super::{ContextSnapshot, DEFAULT_KEYS};

impl ContextSnapshot {
    /// Headers for an outgoing call: `traceparent` (a child of this
    /// snapshot's), `tracestate`, `baggage`, and `x-request-id` when the
    /// snapshot holds a `request_id`.
    ///
    /// ```
    /// let mut snap = spanline_context::ContextSnapshot::new();
    /// snap.insert("request_id", "r-1").unwrap();
    /// let headers = snap.to_headers();
    /// assert_eq!(headers["x-request-id"], "r-1");
    /// assert_eq!(headers["baggage"], "request_id=r-1");
    /// ```
    pub fn to_headers(&self) -> http::HeaderMap {
        let mut headers = http::HeaderMap::new();
        let mut put = |name: &'static str, value: String| {
            if let Ok(value) = http::HeaderValue::from_str(&value) {
                headers.insert(name, value);
            }
        };
        if let Some(tp) = &self.traceparent {
            let tp = if self.parent_is_span { *tp } else { tp.child() };
            put("traceparent", tp.to_string());
        }
        if let Some(ts) = &self.tracestate {
            put("tracestate", ts.clone());
        }
        if !self.entries.is_empty() {
            put("baggage", self.to_baggage());
        }
        if let Some(id) = self.get("request_id") {
            put("x-request-id", id.to_string());
        }
        headers
    }

    /// Reads `traceparent`, `tracestate` and `baggage` from incoming headers,
    /// leniently, keeping only the [`DEFAULT_KEYS`] of the baggage (the rest
    /// is counted in [`dropped`](Self::dropped)). Accept baggage only from
    /// trusted peers: anyone can send it.
    ///
    /// ```
    /// let mut headers = http::HeaderMap::new();
    /// headers.insert("baggage", "tenant=acme,debug=1".parse().unwrap());
    /// let snap = spanline_context::ContextSnapshot::from_headers(&headers);
    /// assert_eq!((snap.get("tenant"), snap.get("debug"), snap.dropped()), (Some("acme"), None, 1));
    /// ```
    pub fn from_headers(headers: &http::HeaderMap) -> Self {
        let text = |name: &str| {
            headers
                .get_all(name)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .collect::<Vec<_>>()
                .join(",")
        };
        let mut snap = Self::from_baggage(&text("baggage"));
        snap.retain_keys(|k| DEFAULT_KEYS.contains(&k));
        let tp = text("traceparent");
        if !tp.is_empty() {
            match tp.parse() {
                Ok(tp) => snap.traceparent = Some(tp),
                Err(_) => snap.dropped += 1,
            }
        }
        let ts = text("tracestate");
        snap.tracestate = (!ts.is_empty() && ts.len() <= 512).then_some(ts);
        snap
    }
}
