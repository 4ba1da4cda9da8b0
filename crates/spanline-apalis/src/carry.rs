//! The pusher's context in a task's metadata: captured when the task is
//! built, read back by the worker.

use std::fmt;

use apalis_core::task::builder::TaskBuilder;
use apalis_core::task::metadata::{Metadata, MetadataStore};
use apalis_core::task::Task;
use spanline_context::{ContextSnapshot, DEFAULT_KEYS};

/// The metadata key a task's context is stored under: the snapshot's
/// versioned JSON payload (`{"v":2,"traceparent":"00-…","fields":{…}}`).
pub const METADATA_KEY: &str = "spanline.context";

/// The context of the code that pushed a task (its `request_id`,
/// `user_id`, `trace_id`, … as [`ContextSnapshot::capture`] takes them),
/// carried in the task's metadata under [`METADATA_KEY`]; any apalis
/// storage that keeps metadata (Redis, Postgres, SQLite) carries it.
///
/// [`JobContextLayer`](crate::JobContextLayer) reads it in the worker;
/// [`WithContext::with_context`] and [`task`](crate::task) put it in.
///
/// ```
/// use apalis_core::task::metadata::{Metadata, MetadataStore};
/// use spanline_apalis::JobContext;
///
/// let mut snapshot = spanline_context::ContextSnapshot::new();
/// snapshot.insert("request_id", "r-1")?;
/// let mut store = MetadataStore::new();
/// JobContext::from(snapshot).inject(&mut store)?;
/// let back = JobContext::extract(&store)?;
/// assert_eq!(back.snapshot().get("request_id"), Some("r-1"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, Default)]
pub struct JobContext(ContextSnapshot);

impl JobContext {
    /// The current context, as [`ContextSnapshot::capture`] takes it (the
    /// allow-listed keys and the `traceparent`; redacted keys left out),
    /// but for `job_id`: a task is a job of its own, which the worker gives
    /// the task's id. (A snapshot that carried the pusher's `job_id` would
    /// hand the pusher's job on to the task, and the pusher's job would
    /// then end only where the task's run ends.)
    ///
    /// ```
    /// // Outside any span: nothing to carry.
    /// assert!(spanline_apalis::JobContext::capture().snapshot().is_empty());
    /// ```
    #[must_use]
    pub fn capture() -> Self {
        let keys: Vec<&str> = DEFAULT_KEYS
            .iter()
            .copied()
            .filter(|key| *key != "job_id")
            .collect();
        Self(ContextSnapshot::capture_keys(&keys))
    }

    /// The carried snapshot.
    ///
    /// See [`JobContext`]'s example.
    #[must_use]
    pub fn snapshot(&self) -> &ContextSnapshot {
        &self.0
    }
}

impl From<ContextSnapshot> for JobContext {
    fn from(snapshot: ContextSnapshot) -> Self {
        Self(snapshot)
    }
}

/// Why a task's context could not be read.
#[derive(Debug)]
#[non_exhaustive]
pub enum JobContextError {
    /// The task carries none (pushed without [`WithContext::with_context`]).
    Missing,
    /// The task's metadata under [`METADATA_KEY`] is not a snapshot payload.
    Malformed(serde_json::Error),
}

impl fmt::Display for JobContextError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Missing => write!(f, "the task carries no context ({METADATA_KEY})"),
            Self::Malformed(e) => {
                write!(f, "the task's context ({METADATA_KEY}) is malformed: {e}")
            }
        }
    }
}

impl std::error::Error for JobContextError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Missing => None,
            Self::Malformed(e) => Some(e),
        }
    }
}

impl Metadata for JobContext {
    type Error = JobContextError;

    fn extract(store: &MetadataStore) -> Result<Self, JobContextError> {
        let payload = store.get(METADATA_KEY).ok_or(JobContextError::Missing)?;
        serde_json::from_str(payload)
            .map(Self)
            .map_err(JobContextError::Malformed)
    }

    /// Stores the context, replacing one stored before (so a second
    /// `with_context` is no error, and apalis's `TaskBuilder::metadata`,
    /// which panics on one, never does here).
    fn inject(&self, store: &mut MetadataStore) -> Result<(), JobContextError> {
        // A snapshot's values are JSON already: writing it cannot fail.
        let payload = serde_json::to_string(&self.0).map_err(JobContextError::Malformed)?;
        store.replace(METADATA_KEY, payload);
        Ok(())
    }
}

/// Puts the current context into a task as it is built.
///
/// ```
/// use apalis_core::task::builder::TaskBuilder;
/// use spanline_apalis::WithContext;
///
/// let task = TaskBuilder::new("welcome 7").with_context().max_attempts(3).build();
/// assert!(task.ctx().metadata().contains_key(spanline_apalis::METADATA_KEY));
/// ```
pub trait WithContext {
    /// The task, carrying [`JobContext::capture`].
    #[must_use]
    fn with_context(self) -> Self;
}

impl<Args> WithContext for TaskBuilder<Args> {
    fn with_context(self) -> Self {
        self.metadata(&JobContext::capture())
    }
}

/// A task of `args` that carries the current context: push it with
/// apalis's `TaskSink::push_task` (`storage.push(args)` carries none).
///
/// ```
/// let _request = tracing::info_span!("request", request_id = "r-1").entered();
/// let task = spanline_apalis::task("welcome 7");
/// assert_eq!(task.args, "welcome 7");
/// ```
pub fn task<Args>(args: Args) -> Task<Args> {
    TaskBuilder::new(args).with_context().build()
}
