//! Spawning threads that keep the current context.

/// `std::thread::spawn` that keeps the current context: the thread runs
/// inside the current span, with the current subscriber.
///
/// ```
/// let handle = spanline_context::thread::spawn(|| tracing::info!("in the caller's span"));
/// handle.join().unwrap();
/// ```
pub fn spawn<F, T>(f: F) -> std::thread::JoinHandle<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    std::thread::spawn(crate::capture().wrap(f))
}
