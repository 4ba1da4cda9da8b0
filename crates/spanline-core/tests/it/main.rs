//! spanline-core's behaviour tests, one binary (one link on a small machine).

/// The context store: span fields, late fields, `set`, inheritance.
mod context;
/// `ContextLayer::filter`: context spans kept under any filter.
mod filter;
/// Redaction inside JSON context values; the `ContextLayer`'s keys.
mod redact;
/// `LineLayer` and `LineSink`: one encoding shared, room, oversize.
mod sink;
/// `ContextLayer::span_close_lines`: a line per closed span, with its duration.
mod span_close;
