//! [`Captured`]: the current context, carried to another thread or task.

use tracing::{Dispatch, Span};

/// The current span and subscriber, captured to be carried elsewhere:
/// `Send + Clone`, for executors spanline does not know (rayon, a thread
/// pool, a callback).
///
/// Holding a `Captured` keeps the captured span open, so its close is only
/// logged when every copy is dropped. For fire-and-forget work that may
/// outlive the request, use [`Captured::detached`] instead.
///
/// ```
/// use tracing_subscriber::prelude::*;
/// let subscriber = tracing_subscriber::registry().with(spanline_core::ContextLayer::new());
/// tracing::subscriber::with_default(subscriber, || {
///     let _req = tracing::info_span!("request", request_id = "r-1").entered();
///     let captured = spanline_context::capture();
///     std::thread::spawn(captured.wrap(|| {
///         // This thread has the request's context and the same subscriber.
///         assert_eq!(spanline_context::current().get("request_id").unwrap().to_string(), "r-1");
///     }))
///     .join()
///     .unwrap();
/// });
/// ```
#[derive(Clone, Debug)]
#[must_use = "a capture does nothing until it is used to run something"]
pub struct Captured {
    span: Span,
    dispatch: Dispatch,
}

/// Captures the current span and subscriber.
///
/// ```
/// # use tracing_subscriber::prelude::*;
/// # let subscriber = tracing_subscriber::registry().with(spanline_core::ContextLayer::new());
/// # tracing::subscriber::with_default(subscriber, || {
/// let _req = tracing::info_span!("request", request_id = "r-1").entered();
/// let captured = spanline_context::capture();
/// assert_eq!(captured.in_scope(|| spanline_context::current().get("request_id").unwrap().to_string()), "r-1");
/// # });
/// ```
pub fn capture() -> Captured {
    Captured {
        span: Span::current(),
        dispatch: tracing::dispatcher::get_default(Dispatch::clone),
    }
}

impl Captured {
    /// Runs `f` inside the captured context, on this thread.
    ///
    /// ```
    /// # use tracing_subscriber::prelude::*;
    /// # let subscriber = tracing_subscriber::registry().with(spanline_core::ContextLayer::new());
    /// # tracing::subscriber::with_default(subscriber, || {
    /// let captured = { let _s = tracing::info_span!("s", k = 1).entered(); spanline_context::capture() };
    /// assert_eq!(captured.in_scope(|| spanline_context::current().get("k").unwrap().to_string()), "1");
    /// # });
    /// ```
    pub fn in_scope<R>(&self, f: impl FnOnce() -> R) -> R {
        tracing::dispatcher::with_default(&self.dispatch, || self.span.in_scope(f))
    }

    /// Wraps `f` so that it runs inside the captured context, wherever it is
    /// called: `std::thread::spawn(captured.wrap(f))`, `rayon::spawn(...)`.
    ///
    /// ```
    /// # use tracing_subscriber::prelude::*;
    /// # let subscriber = tracing_subscriber::registry().with(spanline_core::ContextLayer::new());
    /// # tracing::subscriber::with_default(subscriber, || {
    /// let _s = tracing::info_span!("s", k = 2).entered();
    /// let job = spanline_context::capture().wrap(|| spanline_context::current().get("k").unwrap().to_string());
    /// assert_eq!(std::thread::spawn(job).join().unwrap(), "2");
    /// # });
    /// ```
    pub fn wrap<R>(self, f: impl FnOnce() -> R) -> impl FnOnce() -> R {
        move || self.in_scope(f)
    }

    /// Wraps a function called many times, possibly on many threads at once
    /// (rayon's `for_each`, `map`).
    ///
    /// ```
    /// use rayon::prelude::*;
    /// # use tracing_subscriber::prelude::*;
    /// # let subscriber = tracing_subscriber::registry().with(spanline_core::ContextLayer::new());
    /// # tracing::subscriber::with_default(subscriber, || {
    /// let _req = tracing::info_span!("request", request_id = "r-1").entered();
    /// let ids: Vec<String> = (0..4)
    ///     .into_par_iter()
    ///     .map(spanline_context::capture().wrap_fn(|_| spanline_context::current().get("request_id").unwrap().to_string()))
    ///     .collect();
    /// assert!(ids.iter().all(|id| id == "r-1"));
    /// # });
    /// ```
    pub fn wrap_fn<A, R>(self, f: impl Fn(A) -> R + Send + Sync) -> impl Fn(A) -> R + Send + Sync {
        move |a| self.in_scope(|| f(a))
    }

    /// The captured span.
    ///
    /// ```
    /// # use tracing_subscriber::prelude::*;
    /// # let subscriber = tracing_subscriber::registry().with(spanline_core::ContextLayer::new());
    /// # tracing::subscriber::with_default(subscriber, || {
    /// let span = tracing::info_span!("s");
    /// let captured = span.in_scope(spanline_context::capture);
    /// assert_eq!(captured.span().id(), span.id());
    /// # });
    /// ```
    pub fn span(&self) -> &Span {
        &self.span
    }

    /// A new root span (target `spanline::context`, name `detached`) that
    /// `follows_from` the captured span and carries a copy of its context,
    /// without keeping it open: for work that may outlive the request.
    ///
    /// ```
    /// # use tracing_subscriber::prelude::*;
    /// # let subscriber = tracing_subscriber::registry().with(spanline_core::ContextLayer::new());
    /// # tracing::subscriber::with_default(subscriber, || {
    /// let detached = {
    ///     let _req = tracing::info_span!("request", request_id = "r-1").entered();
    ///     spanline_context::capture().detached()
    /// }; // the request span closes here
    /// let _d = detached.entered();
    /// assert_eq!(spanline_context::current().get("request_id").unwrap().to_string(), "r-1");
    /// # });
    /// ```
    pub fn detached(&self) -> Span {
        tracing::dispatcher::with_default(&self.dispatch, || {
            let span = tracing::info_span!(target: "spanline::context", parent: None, "detached");
            span.follows_from(&self.span);
            // A job goes on in the detached work: its end is there.
            self.span.in_scope(spanline_core::hand_off_job);
            if let (Some(id), Some(from)) = (span.id(), self.span.id()) {
                if let Some(view) = spanline_core::CtxView::of_span(&from) {
                    spanline_core::inherit(&id, &view);
                }
            }
            span
        })
    }

    /// The subscriber that was current when the context was captured.
    ///
    /// ```
    /// let captured = spanline_context::capture();
    /// let _same = captured.dispatch().clone();
    /// ```
    pub fn dispatch(&self) -> &Dispatch {
        &self.dispatch
    }
}
