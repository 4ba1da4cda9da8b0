//! The names of the channels and streams lines go to: what `{prefix}`,
//! `global` and a job id make, in one place for the writer and the readers.

use spanline_core::{check_job_id, JobIdError};

/// The names of the channels (and streams) lines go to: `{prefix}:global`
/// for every line, `{prefix}:{job_id}` for a job's.
///
/// ```
/// let channels = spanline_redis::Channels::new("logs")?;
/// assert_eq!(channels.global(), "logs:global");
/// assert_eq!(channels.job("build_1")?, "logs:build_1");
/// assert!(channels.job("global").is_err(), "that is the global channel");
/// assert!(channels.job("logs:*").is_err());
/// # Ok::<(), spanline_redis::JobIdError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Channels {
    /// `{prefix}:`.
    start: String,
}

impl Channels {
    /// The default prefix, `logs`.
    ///
    /// ```
    /// assert_eq!(spanline_redis::Channels::default().global(), "logs:global");
    /// ```
    pub const DEFAULT_PREFIX: &'static str = "logs";

    /// The longest prefix, in bytes.
    ///
    /// ```
    /// assert!(spanline_redis::Channels::new(&"p".repeat(51)).is_err());
    /// ```
    pub const MAX_PREFIX_LEN: usize = 50;

    /// Channels under `prefix`: 1 to [`MAX_PREFIX_LEN`](Self::MAX_PREFIX_LEN)
    /// bytes of the job id alphabet.
    ///
    /// ```
    /// assert!(spanline_redis::Channels::new("staging:logs").is_ok());
    /// assert!(spanline_redis::Channels::new("logs*").is_err());
    /// ```
    pub fn new(prefix: &str) -> Result<Self, JobIdError> {
        check_job_id(prefix)?;
        if prefix.len() > Self::MAX_PREFIX_LEN {
            return Err(JobIdError::TooLong(prefix.len()));
        }
        Ok(Self {
            start: format!("{prefix}:"),
        })
    }

    /// The prefix.
    ///
    /// ```
    /// assert_eq!(spanline_redis::Channels::default().prefix(), "logs");
    /// ```
    pub fn prefix(&self) -> &str {
        &self.start[..self.start.len() - 1]
    }

    /// The global channel, `{prefix}:global`.
    ///
    /// ```
    /// assert_eq!(spanline_redis::Channels::new("app")?.global(), "app:global");
    /// # Ok::<(), spanline_redis::JobIdError>(())
    /// ```
    pub fn global(&self) -> String {
        format!("{}global", self.start)
    }

    /// A job's channel, `{prefix}:{job_id}`, when `job_id` is a valid job id
    /// other than `global` and not under it (`global:…` names the global
    /// feed's shards, see [`read::global_shards`](crate::read::global_shards)).
    ///
    /// ```
    /// let channels = spanline_redis::Channels::default();
    /// assert_eq!(channels.job("a b"), Err(spanline_redis::JobIdError::InvalidChar { found: ' ', at: 1 }));
    /// assert_eq!(channels.job("global:shards"), Err(spanline_redis::JobIdError::Global));
    /// ```
    pub fn job(&self, job_id: &str) -> Result<String, JobIdError> {
        check_job_id(job_id)?;
        if job_id == "global" || job_id.starts_with("global:") {
            return Err(JobIdError::Global);
        }
        Ok(format!("{}{job_id}", self.start))
    }
}

impl Default for Channels {
    fn default() -> Self {
        Self {
            start: format!("{}:", Self::DEFAULT_PREFIX),
        }
    }
}
