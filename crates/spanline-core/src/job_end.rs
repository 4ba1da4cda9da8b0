//! The end of a job's run, seen by the [`ContextLayer`](crate::ContextLayer)
//! and told to the layers that asked ([`JobEnds`]).
//!
//! A job's run ends when the outermost span that carries its `job_id` in
//! this process closes (after every task and thread holding it let go),
//! unless the job was handed on from that span: a `ContextSnapshot` that
//! carries the `job_id` was captured there (the job goes on in the worker
//! that restores it), or detached work was started there (the job goes on
//! in it). The span that receives the job, a restored or detached root,
//! ends it instead. The context layer sees every span close whatever the
//! filters say, so a layer behind a per-layer filter that hides the job's
//! spans (a Redis layer at WARN) still learns of the end.

use std::sync::{Arc, Weak};

use arc_swap::ArcSwap;

/// Called with a job id when the job's run ends.
#[doc(hidden)]
pub type OnJobEnd = dyn Fn(&str) + Send + Sync;

/// Where a subscriber's [`ContextLayer`](crate::ContextLayer) tells of job
/// ends. A layer finds it through the dispatch it is registered with
/// (`on_register_dispatch`) and subscribes; the Redis layer publishes its
/// `job ended` line from there.
///
/// ```
/// use std::sync::{Arc, Mutex};
/// use tracing_subscriber::prelude::*;
/// use spanline_core::{ContextLayer, JobEnds, OnJobEnd};
///
/// let ended = Arc::new(Mutex::new(Vec::<String>::new()));
/// let seen = ended.clone();
/// let hook: Arc<OnJobEnd> = Arc::new(move |job: &str| seen.lock().unwrap().push(job.to_string()));
/// let dispatch = tracing::Dispatch::new(tracing_subscriber::registry().with(ContextLayer::new()));
/// dispatch.downcast_ref::<JobEnds>().unwrap().subscribe(&hook);
/// tracing::dispatcher::with_default(&dispatch, || {
///     let job = tracing::info_span!("job", job_id = "build_1");
///     job.in_scope(|| tracing::info_span!("step", job_id = "build_1").in_scope(|| {}));
/// });
/// assert_eq!(*ended.lock().unwrap(), ["build_1"]); // once, when the outer span closed
/// ```
#[derive(Clone, Default)]
#[doc(hidden)]
pub struct JobEnds {
    hooks: Arc<ArcSwap<Vec<Weak<OnJobEnd>>>>,
}

impl std::fmt::Debug for JobEnds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobEnds")
            .field("hooks", &self.hooks.load().len())
            .finish()
    }
}

impl JobEnds {
    /// Calls `hook` at every job end, as long as the caller keeps `hook`
    /// (only a weak reference is kept).
    ///
    /// See [`JobEnds`]'s example.
    #[doc(hidden)]
    pub fn subscribe(&self, hook: &Arc<OnJobEnd>) {
        let hook = Arc::downgrade(hook);
        self.hooks.rcu(|hooks| {
            let mut next: Vec<Weak<OnJobEnd>> = hooks
                .iter()
                .filter(|h| h.strong_count() > 0)
                .cloned()
                .collect();
            // Subscribing twice (a layer finds the same context layer from
            // two hooks) must not publish an end twice.
            if !next.iter().any(|h| Weak::ptr_eq(h, &hook)) {
                next.push(hook.clone());
            }
            next
        });
    }

    /// True when no layer listens: the context layer then does no work at
    /// span close.
    pub(crate) fn is_empty(&self) -> bool {
        self.hooks.load().is_empty()
    }

    pub(crate) fn announce(&self, job_id: &str) {
        for hook in self.hooks.load().iter().filter_map(Weak::upgrade) {
            hook(job_id);
        }
    }
}

/// The jobs handed on from a span (see the module docs): its close ends
/// none of them, but a job it carries later (its `job_id` recorded again)
/// still ends there.
#[derive(Debug, Default)]
pub(crate) struct HandedOff(pub(crate) Vec<String>);
