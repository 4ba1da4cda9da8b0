//! HTTP middleware: a request span with a server-made `request_id`, the
//! route template, and one "request finished" line per request.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Instant;

use http::{HeaderName, HeaderValue, Request, Response};
use pin_project_lite::pin_project;
use tracing::{field, Level, Span};

use crate::TraceParent;

use crate::filter::REQUEST_TARGET;

/// The id of the current request, in the request's extensions, for handlers.
///
/// ```
/// use axum::{routing::get, Extension, Router};
/// async fn handler(Extension(id): Extension<spanline_context::RequestId>) -> String {
///     format!("your request: {}", id.0)
/// }
/// let app: Router = Router::new().route("/", get(handler)).layer(spanline_context::RequestContextLayer::new());
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestId(pub String);

/// A `tower::Layer` that gives each HTTP request its context.
///
/// For each request it:
/// - makes a `request_id` (UUID v7). A valid incoming `x-request-id`
///   (`[A-Za-z0-9._:-]{1,128}`) is kept as `client_request_id`, and is
///   adopted as `request_id` only with
///   [`trust_incoming_request_id(true)`](Self::trust_incoming_request_id)
///   (behind your own proxy). An invalid one is ignored and counted;
/// - reads `trace_id` from a valid W3C `traceparent`;
/// - opens a root span at INFO, target [`REQUEST_TARGET`], name `request`,
///   with `request_id`, `client_request_id`, `trace_id`, `method`, `route`
///   (axum's route template with the `axum` feature, never the path or the
///   query), and `user_id`, `status`, `latency_ms` filled later
///   (`spanline_context::set("user_id", …)` after authentication);
/// - logs one "request finished" line with `status` and `latency_ms` (INFO,
///   or the level of [`finish_level`](Self::finish_level); ERROR for 5xx),
///   and sets `x-request-id` on the response.
///
/// ```
/// use axum::{routing::get, Router};
/// use spanline_context::RequestContextLayer;
///
/// let app: Router = Router::new()
///     .route("/users/{id}", get(|| async { "hello" }))
///     .route("/health", get(|| async { "ok" }))
///     .layer(
///         RequestContextLayer::new()
///             .skip_path("/health")                 // no span, no line
///             .request_id_header(http::HeaderName::from_static("x-correlation-id"))
///             .finish_level(tracing::Level::DEBUG), // 5xx stay ERROR
///     );
/// ```
///
/// Apply it with `Router::layer` so the route template is known.
#[derive(Clone, Debug)]
pub struct RequestContextLayer {
    trust_incoming: bool,
    stats: RequestStats,
    /// Paths without context or line: exact, or a prefix before `*`.
    skip: Arc<[String]>,
    header: HeaderName,
    finish_level: Level,
}

impl Default for RequestContextLayer {
    fn default() -> Self {
        Self {
            trust_incoming: false,
            stats: RequestStats::default(),
            skip: Arc::from([]),
            header: HeaderName::from_static("x-request-id"),
            finish_level: Level::INFO,
        }
    }
}

/// Counters of the middleware; cheap to clone.
///
/// ```
/// let layer = spanline_context::RequestContextLayer::new();
/// let stats = layer.stats();
/// assert_eq!(stats.invalid_request_ids(), 0);
/// ```
#[derive(Clone, Debug, Default)]
pub struct RequestStats {
    inner: Arc<Counters>,
}

#[derive(Debug, Default)]
struct Counters {
    requests: AtomicU64,
    invalid_request_ids: AtomicU64,
    invalid_traceparents: AtomicU64,
}

impl RequestStats {
    /// Requests seen.
    ///
    /// ```
    /// let stats = spanline_context::RequestContextLayer::new().stats();
    /// assert_eq!(stats.requests(), 0);
    /// ```
    pub fn requests(&self) -> u64 {
        self.inner.requests.load(Ordering::Relaxed)
    }

    /// Incoming `x-request-id` headers ignored because they were invalid.
    ///
    /// ```
    /// let stats = spanline_context::RequestContextLayer::new().stats();
    /// assert_eq!(stats.invalid_request_ids(), 0);
    /// ```
    pub fn invalid_request_ids(&self) -> u64 {
        self.inner.invalid_request_ids.load(Ordering::Relaxed)
    }

    /// Incoming `traceparent` headers ignored because they were invalid.
    ///
    /// ```
    /// let stats = spanline_context::RequestContextLayer::new().stats();
    /// assert_eq!(stats.invalid_traceparents(), 0);
    /// ```
    pub fn invalid_traceparents(&self) -> u64 {
        self.inner.invalid_traceparents.load(Ordering::Relaxed)
    }
}

impl RequestContextLayer {
    /// The layer with server-made request ids.
    ///
    /// See [`RequestContextLayer`]'s example.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adopt a valid incoming `x-request-id` as the `request_id`. Only
    /// behind a proxy you control: clients can send anything.
    ///
    /// See [`RequestContextLayer`]'s example.
    #[must_use]
    pub fn trust_incoming_request_id(mut self, trust: bool) -> Self {
        self.trust_incoming = trust;
        self
    }

    /// Requests to `path` pass through untouched: no span, no context, no
    /// "request finished" line, no request-id header (health checks, metrics
    /// scrapes). A path ending in `*` skips every path that starts with the
    /// rest (`/internal/*`). Repeat for more paths.
    ///
    /// See [`RequestContextLayer`]'s example.
    #[must_use]
    pub fn skip_path(mut self, path: impl Into<String>) -> Self {
        let mut paths = self.skip.to_vec();
        paths.push(path.into());
        self.skip = Arc::from(paths);
        self
    }

    /// The header the request id is read from (with
    /// [`trust_incoming_request_id`](Self::trust_incoming_request_id), and
    /// kept as `client_request_id`) and written to on the response
    /// (default `x-request-id`).
    ///
    /// See [`RequestContextLayer`]'s example.
    #[must_use]
    pub fn request_id_header(mut self, name: HeaderName) -> Self {
        self.header = name;
        self
    }

    /// The level of the "request finished" line (default INFO); a 5xx
    /// response or an error is always ERROR.
    ///
    /// See [`RequestContextLayer`]'s example.
    #[must_use]
    pub fn finish_level(mut self, level: Level) -> Self {
        self.finish_level = level;
        self
    }

    fn skips(&self, path: &str) -> bool {
        self.skip.iter().any(|p| match p.strip_suffix('*') {
            Some(prefix) => path.starts_with(prefix),
            None => path == p,
        })
    }

    /// The layer's counters.
    ///
    /// ```
    /// let layer = spanline_context::RequestContextLayer::new();
    /// let stats = layer.stats(); // before the layer moves into the router
    /// assert_eq!(stats.requests(), 0);
    /// ```
    pub fn stats(&self) -> RequestStats {
        self.stats.clone()
    }
}

impl<S> tower_layer::Layer<S> for RequestContextLayer {
    type Service = RequestContext<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RequestContext {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service made by [`RequestContextLayer`].
///
/// ```
/// use tower_layer::Layer;
/// // Any tower service: an axum router here.
/// let _service = spanline_context::RequestContextLayer::new().layer(axum::Router::<()>::new());
/// ```
#[derive(Clone, Debug)]
pub struct RequestContext<S> {
    inner: S,
    layer: RequestContextLayer,
}

/// A valid `x-request-id`: 1 to 128 of `[A-Za-z0-9._:-]`.
fn valid_request_id(value: &HeaderValue) -> Option<&str> {
    let bytes = value.as_bytes();
    let ok = !bytes.is_empty()
        && bytes.len() <= 128
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'));
    ok.then(|| value.to_str().ok()).flatten()
}

#[cfg(feature = "axum")]
fn route<B>(req: &Request<B>) -> String {
    req.extensions()
        .get::<axum::extract::MatchedPath>()
        .map_or_else(|| "<unmatched>".to_string(), |p| p.as_str().to_string())
}

#[cfg(not(feature = "axum"))]
fn route<B>(_req: &Request<B>) -> String {
    "<unmatched>".to_string()
}

impl<S, ReqBody, ResBody> tower_service::Service<Request<ReqBody>> for RequestContext<S>
where
    S: tower_service::Service<Request<ReqBody>, Response = Response<ResBody>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<ReqBody>) -> Self::Future {
        let start = Instant::now();
        if self.layer.skips(req.uri().path()) {
            return ResponseFuture {
                inner: self.inner.call(req),
                span: Span::none(),
                start,
                header: None,
                finish: None,
            };
        }
        let counters = &self.layer.stats.inner;
        counters.requests.fetch_add(1, Ordering::Relaxed);

        let client_id = match req.headers().get(&self.layer.header) {
            Some(value) => {
                let valid = valid_request_id(value).map(str::to_string);
                if valid.is_none() {
                    counters.invalid_request_ids.fetch_add(1, Ordering::Relaxed);
                }
                valid
            }
            None => None,
        };
        let request_id = match (&client_id, self.layer.trust_incoming) {
            (Some(id), true) => id.clone(),
            _ => uuid::Uuid::now_v7().to_string(),
        };
        let traceparent = req.headers().get("traceparent").and_then(|v| {
            let parsed = v.to_str().ok().and_then(|s| s.parse::<TraceParent>().ok());
            if parsed.is_none() {
                counters
                    .invalid_traceparents
                    .fetch_add(1, Ordering::Relaxed);
            }
            parsed
        });
        let trace_id = traceparent.map(|tp| tp.trace_id());

        let span = tracing::info_span!(
            target: REQUEST_TARGET,
            parent: None,
            "request",
            request_id = request_id.as_str(),
            client_request_id = client_id.as_deref(),
            trace_id = trace_id.as_deref(),
            method = req.method().as_str(),
            route = route(&req).as_str(),
            user_id = field::Empty,
            status = field::Empty,
            latency_ms = field::Empty,
        );
        #[cfg(feature = "opentelemetry")]
        if let Some(parent) = traceparent {
            crate::otel::continue_trace(&span, parent);
        }
        let header = HeaderValue::from_str(&request_id).ok();
        req.extensions_mut().insert(RequestId(request_id));
        let inner = span.in_scope(|| self.inner.call(req));
        ResponseFuture {
            inner,
            span,
            start,
            header: header.map(|h| (self.layer.header.clone(), h)),
            finish: Some(self.layer.finish_level),
        }
    }
}

pin_project! {
    /// The response future of [`RequestContext`].
    ///
    /// ```
    /// // Returned by `RequestContext::call`; it logs "request finished" and sets
    /// // `x-request-id` when the inner service's response is ready.
    /// fn _check<F>(_: spanline_context::ResponseFuture<F>) {}
    /// ```
    #[derive(Debug)]
    pub struct ResponseFuture<F> {
        #[pin]
        inner: F,
        span: Span,
        start: Instant,
        header: Option<(HeaderName, HeaderValue)>,
        // The finish line's level; `None` for a skipped path.
        finish: Option<Level>,
    }
}

impl<F, B, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let _entered = this.span.enter();
        let mut result = ready!(this.inner.poll(cx));
        let Some(level) = *this.finish else {
            return Poll::Ready(result);
        };
        // Milliseconds with microsecond resolution.
        let latency_ms = (this.start.elapsed().as_micros() as f64) / 1000.0;
        this.span.record("latency_ms", latency_ms);
        match &mut result {
            Ok(response) => {
                let status = response.status().as_u16();
                this.span.record("status", status);
                if let Some((name, value)) = this.header.take() {
                    response.headers_mut().insert(name, value);
                }
                let level = if status >= 500 { Level::ERROR } else { level };
                finished(level, status, latency_ms);
            }
            Err(_) => tracing::error!(target: REQUEST_TARGET, latency_ms, "request failed"),
        }
        Poll::Ready(result)
    }
}

/// The "request finished" line at `level` (tracing's macros take a
/// constant level).
fn finished(level: Level, status: u16, latency_ms: f64) {
    match level {
        Level::TRACE => {
            tracing::trace!(target: REQUEST_TARGET, status, latency_ms, "request finished")
        }
        Level::DEBUG => {
            tracing::debug!(target: REQUEST_TARGET, status, latency_ms, "request finished")
        }
        Level::INFO => {
            tracing::info!(target: REQUEST_TARGET, status, latency_ms, "request finished")
        }
        Level::WARN => {
            tracing::warn!(target: REQUEST_TARGET, status, latency_ms, "request finished")
        }
        _ => tracing::error!(target: REQUEST_TARGET, status, latency_ms, "request finished"),
    }
}
