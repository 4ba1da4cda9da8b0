//! [`hand_off_job`]: the job of the current span goes on elsewhere, so its
//! outermost span here does not end it (see [`crate::job_end`]).

use tracing_core::span::Id;
use tracing_subscriber::registry::LookupSpan;

use crate::context::view::job_of;
use crate::job_end::HandedOff;

/// Says that the job of the current span is handed on: its outermost span
/// in this process does not end the job when it closes; the span that
/// receives it (restored from a snapshot, or detached) does.
/// `ContextSnapshot::capture` and `capture().detached()` call it; call it
/// yourself when you hand a job on by other means.
///
/// ```
/// use std::sync::{Arc, Mutex};
/// use tracing_subscriber::prelude::*;
/// use spanline_core::{ContextLayer, JobEnds, OnJobEnd};
///
/// let ended = Arc::new(Mutex::new(0));
/// let count = ended.clone();
/// let hook: Arc<OnJobEnd> = Arc::new(move |_: &str| *count.lock().unwrap() += 1);
/// let dispatch = tracing::Dispatch::new(tracing_subscriber::registry().with(ContextLayer::new()));
/// dispatch.downcast_ref::<JobEnds>().unwrap().subscribe(&hook);
/// tracing::dispatcher::with_default(&dispatch, || {
///     let _enqueue = tracing::info_span!("request", job_id = "build_1").entered();
///     spanline_core::hand_off_job(); // the job goes on in a worker
/// });
/// assert_eq!(*ended.lock().unwrap(), 0);
/// ```
pub fn hand_off_job() {
    let _ = tracing_core::dispatcher::get_default(|dispatch| {
        let registry = dispatch.downcast_ref::<tracing_subscriber::Registry>()?;
        let id = dispatch.current_span().id()?.clone();
        mark_outermost(registry, &id);
        Some(())
    });
}

/// Marks every span from `id` up to the outermost one that carries the
/// same job id: whichever of them closes last as the job's outermost span
/// (an inner one, once the outer one's `job_id` changed) hands it on.
fn mark_outermost(registry: &tracing_subscriber::Registry, id: &Id) {
    let Some(span) = registry.span(id) else {
        return;
    };
    let Some(job) = job_of(&span) else {
        return;
    };
    let mut next = Some(span);
    while let Some(span) = next {
        if job_of(&span).as_deref() != Some(job.as_str()) {
            break;
        }
        {
            let mut extensions = span.extensions_mut();
            match extensions.get_mut::<HandedOff>() {
                Some(HandedOff(jobs)) if jobs.contains(&job) => {}
                Some(HandedOff(jobs)) => jobs.push(job.clone()),
                None => extensions.insert(HandedOff(vec![job.clone()])),
            }
        }
        next = span.parent();
    }
}
