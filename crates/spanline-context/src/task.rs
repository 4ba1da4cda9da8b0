//! Spawning tokio tasks that keep the current context.

use std::future::Future;

use tokio::task::JoinHandle;
use tracing::instrument::{Instrument, WithSubscriber};

use crate::capture;

/// `tokio::spawn` that keeps the current context: the task runs inside the
/// current span, with the current subscriber.
///
/// The task holds the span, so the span closes when the task ends; for work
/// that may outlive the request, use [`spawn_detached`].
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let _req = tracing::info_span!("request", request_id = "r-1").entered();
/// let handle = spanline_context::spawn(async { tracing::info!("inside the request's span") });
/// handle.await.unwrap();
/// # }
/// ```
pub fn spawn<F>(future: F) -> JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let captured = capture();
    tokio::spawn(
        future
            .instrument(captured.span().clone())
            .with_subscriber(captured.dispatch().clone()),
    )
}

/// `tokio::task::spawn_blocking` that keeps the current context.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let _req = tracing::info_span!("request", request_id = "r-1").entered();
/// let sum = spanline_context::spawn_blocking(|| (1..=10).sum::<u32>()).await.unwrap();
/// assert_eq!(sum, 55);
/// # }
/// ```
pub fn spawn_blocking<F, R>(f: F) -> JoinHandle<R>
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
    tokio::task::spawn_blocking(capture().wrap(f))
}

/// Spawns fire-and-forget work: it runs in a new root span that
/// `follows_from` the current one and carries a copy of its context, so the
/// request's span can close while the work goes on.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let handle = {
///     let _req = tracing::info_span!("request", request_id = "r-1").entered();
///     spanline_context::spawn_detached(async { tracing::info!("sending the e-mail") })
/// }; // the request is over; the e-mail goes on
/// handle.await.unwrap();
/// # }
/// ```
pub fn spawn_detached<F>(future: F) -> JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let captured = capture();
    let span = captured.detached();
    tokio::spawn(
        future
            .instrument(span)
            .with_subscriber(captured.dispatch().clone()),
    )
}
