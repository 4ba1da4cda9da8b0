//! The worker's side: each task runs inside the context its pusher had,
//! with its `job_id`, and its run ends once.

use std::sync::Arc;
use std::task::{Context, Poll};

use apalis_core::task::metadata::Metadata;
use apalis_core::task::Task;
use spanline_context::{ContextSnapshot, JobId};
use tower_layer::Layer;
use tower_service::Service;
use tracing::instrument::{Instrument, Instrumented};
use tracing::Span;

use crate::carry::{JobContext, JobContextError};

/// The target of this crate's own lines (a task whose context cannot be
/// read).
pub const TARGET: &str = "spanline::apalis";

/// A tower layer for an apalis worker (`WorkerBuilder::layer`): each task
/// runs inside a root span that carries the context of the code that pushed
/// it (its `request_id`, `user_id`, `trace_id`…, from [`JobContext`]) and
/// its `job_id`, so that:
/// - every line of the job carries them, in its tasks and threads too
///   (`spanline::context::spawn`), under any `RUST_LOG`: the span is a
///   context span;
/// - with spanline's Redis layer, the job's lines go to `logs:{job_id}`;
/// - the job's run ends once, when the task's future completes or is
///   dropped (succeeded, failed, panicked, timed out), with one `job ended`
///   line on its channel.
///
/// The `job_id` is the apalis task id (a ULID), so the job's channel is
/// found from the task; a task id that is no valid job id (custom string
/// ids) gets a new one, `{name}_…`. The span is spanline's `restored` span
/// with `task = name`.
///
/// ```
/// use apalis_core::task::Task;
/// use apalis_core::task::builder::TaskBuilder;
/// use spanline_apalis::{JobContextLayer, WithContext};
/// use tower_layer::Layer;
/// use tower_service::Service;
/// use tracing_subscriber::prelude::*;
///
/// // A service that reads the context its task runs in.
/// #[derive(Clone)]
/// struct Handler;
/// impl Service<Task<u32>> for Handler {
///     type Response = String;
///     type Error = std::convert::Infallible;
///     type Future = std::future::Ready<Result<String, std::convert::Infallible>>;
///     fn poll_ready(&mut self, _: &mut std::task::Context<'_>) -> std::task::Poll<Result<(), Self::Error>> {
///         std::task::Poll::Ready(Ok(()))
///     }
///     fn call(&mut self, _task: Task<u32>) -> Self::Future {
///         let ctx = spanline_context::current();
///         std::future::ready(Ok(format!("{} {}", ctx.get("request_id").unwrap(), ctx.get("job_id").unwrap())))
///     }
/// }
///
/// let subscriber = tracing_subscriber::registry().with(spanline_core::ContextLayer::new());
/// tracing::subscriber::with_default(subscriber, || {
///     let task = {
///         let _request = tracing::info_span!("request", request_id = "r-1").entered();
///         TaskBuilder::new(7).with_context().build()
///     };
///     let mut worker = JobContextLayer::new("welcome").layer(Handler);
///     let said = futures_util::FutureExt::now_or_never(worker.call(task)).unwrap().unwrap();
///     assert!(said.starts_with("r-1 welcome_"), "{said}");
/// });
/// ```
#[derive(Clone, Debug)]
pub struct JobContextLayer {
    name: Arc<str>,
}

impl JobContextLayer {
    /// Runs tasks as jobs named `name` (the span's `task`, and the prefix
    /// of a `job_id` made when the task id is none).
    ///
    /// See the type's example.
    #[must_use]
    pub fn new(name: &str) -> Self {
        Self {
            name: Arc::from(name),
        }
    }
}

impl<S> Layer<S> for JobContextLayer {
    type Service = JobContextService<S>;

    fn layer(&self, inner: S) -> JobContextService<S> {
        JobContextService {
            inner,
            name: Arc::clone(&self.name),
        }
    }
}

/// The service [`JobContextLayer`] makes: `inner`, run in each task's
/// context.
#[derive(Clone, Debug)]
pub struct JobContextService<S> {
    inner: S,
    name: Arc<str>,
}

impl<S, Args> Service<Task<Args>> for JobContextService<S>
where
    S: Service<Task<Args>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Instrumented<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, task: Task<Args>) -> Self::Future {
        let span = job_span(&self.name, &task);
        // The inner service's own work at the call is in the job too.
        let future = span.in_scope(|| self.inner.call(task));
        future.instrument(span)
    }
}

/// The job's root span: the pusher's context restored, `job_id` bound.
fn job_span<Args>(name: &str, task: &Task<Args>) -> Span {
    let ctx = task.ctx();
    let context = JobContext::extract(ctx.metadata());
    let span = match &context {
        Ok(context) => context.snapshot().restore(name),
        Err(_) => ContextSnapshot::new().restore(name),
    };
    let job_id = ctx
        .task_id()
        .and_then(|id| JobId::parse(&id.to_string()).ok())
        .unwrap_or_else(|| JobId::new(name));
    if let Some(id) = span.id() {
        let _ = spanline_core::set_in(&id, "job_id", job_id);
    }
    if let Err(error @ JobContextError::Malformed(_)) = &context {
        span.in_scope(|| {
            tracing::warn!(target: TARGET, %error, "the task's context could not be read; the job runs without it");
        });
    }
    span
}
