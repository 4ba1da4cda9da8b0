//! Keeping request spans through `RUST_LOG`.

/// The target of the request span and the "request finished" line of the
/// HTTP middleware.
///
/// ```
/// assert_eq!(spanline_context::REQUEST_TARGET, "spanline::request");
/// ```
pub const REQUEST_TARGET: &str = "spanline::request";

/// An `EnvFilter` directive that keeps request spans and their lines at
/// INFO whatever `RUST_LOG` says, so WARN lines still carry `request_id`.
///
/// ```
/// let directive: tracing_subscriber::filter::Directive = spanline_context::REQUEST_DIRECTIVE.parse().unwrap();
/// assert!(directive.to_string().contains("request"));
/// ```
pub const REQUEST_DIRECTIVE: &str = "spanline::request=info";

/// Adds [`REQUEST_DIRECTIVE`] to `filter`, so that `RUST_LOG=warn` keeps the
/// request span and WARN lines keep `request_id`.
///
/// ```
/// let filter = spanline_context::add_request_directive(tracing_subscriber::EnvFilter::new("warn"));
/// assert!(filter.to_string().contains("spanline::request=info"));
/// ```
#[cfg(feature = "env-filter")]
pub fn add_request_directive(
    filter: tracing_subscriber::EnvFilter,
) -> tracing_subscriber::EnvFilter {
    match REQUEST_DIRECTIVE.parse() {
        Ok(directive) => filter.add_directive(directive),
        Err(_) => filter,
    }
}
