//! Job ids and the channel names built from them: the one place that says
//! what a job id may hold, for the context, Redis and CLI crates.

use std::fmt;

/// The longest valid job id, in bytes.
///
/// ```
/// assert!(spanline_core::check_job_id(&"x".repeat(spanline_core::JOB_ID_MAX_LEN)).is_ok());
/// assert!(spanline_core::check_job_id(&"x".repeat(spanline_core::JOB_ID_MAX_LEN + 1)).is_err());
/// ```
pub const JOB_ID_MAX_LEN: usize = 100;

/// Why a string is not a job id (or a channel prefix).
///
/// ```
/// let err = spanline_core::check_job_id("a b").unwrap_err();
/// assert_eq!(err, spanline_core::JobIdError::InvalidChar { found: ' ', at: 1 });
/// assert_eq!(err.to_string(), "job id has ' ' at byte 1; allowed are A-Z a-z 0-9 _ : -");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum JobIdError {
    /// The id is empty.
    Empty,
    /// The id is longer than [`JOB_ID_MAX_LEN`] bytes (the length given).
    TooLong(usize),
    /// The id holds a character outside `[A-Za-z0-9_:-]`, at this byte offset.
    InvalidChar {
        /// The offending character.
        found: char,
        /// Its byte offset.
        at: usize,
    },
    /// `global` names the global channel, not a job's.
    Global,
}

impl fmt::Display for JobIdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JobIdError::Empty => f.write_str("job id is empty"),
            JobIdError::TooLong(n) => {
                write!(f, "job id is {n} bytes long, more than {JOB_ID_MAX_LEN}")
            }
            JobIdError::InvalidChar { found, at } => write!(
                f,
                "job id has {found:?} at byte {at}; allowed are A-Z a-z 0-9 _ : -"
            ),
            JobIdError::Global => {
                f.write_str("`global` and `global:…` name the global feed, not a job")
            }
        }
    }
}

impl std::error::Error for JobIdError {}

/// True for the characters a job id may hold: `[A-Za-z0-9_:-]`.
///
/// ```
/// assert!(spanline_core::job_id_char('-') && !spanline_core::job_id_char('*'));
/// ```
pub fn job_id_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | ':' | '-')
}

/// Checks a job id: 1 to [`JOB_ID_MAX_LEN`] bytes of `[A-Za-z0-9_:-]`, so it
/// is safe wherever it becomes a name (a Redis channel, a file, a label).
///
/// ```
/// assert!(spanline_core::check_job_id("export_0193").is_ok());
/// assert_eq!(spanline_core::check_job_id(""), Err(spanline_core::JobIdError::Empty));
/// ```
pub fn check_job_id(id: &str) -> Result<(), JobIdError> {
    check(id, JOB_ID_MAX_LEN)
}

fn check(s: &str, max: usize) -> Result<(), JobIdError> {
    if s.is_empty() {
        return Err(JobIdError::Empty);
    }
    if s.len() > max {
        return Err(JobIdError::TooLong(s.len()));
    }
    match s.char_indices().find(|&(_, c)| !job_id_char(c)) {
        Some((at, found)) => Err(JobIdError::InvalidChar { found, at }),
        None => Ok(()),
    }
}

/// The names of the channels (and streams) lines go to: `{prefix}:global`
/// for every line, `{prefix}:{job_id}` for a job's.
///
/// ```
/// let channels = spanline_core::Channels::new("logs")?;
/// assert_eq!(channels.global(), "logs:global");
/// assert_eq!(channels.job("build_1")?, "logs:build_1");
/// assert!(channels.job("global").is_err(), "that is the global channel");
/// assert!(channels.job("logs:*").is_err());
/// # Ok::<(), spanline_core::JobIdError>(())
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
    /// assert_eq!(spanline_core::Channels::default().global(), "logs:global");
    /// ```
    pub const DEFAULT_PREFIX: &'static str = "logs";

    /// The longest prefix, in bytes.
    ///
    /// ```
    /// assert!(spanline_core::Channels::new(&"p".repeat(51)).is_err());
    /// ```
    pub const MAX_PREFIX_LEN: usize = 50;

    /// Channels under `prefix`: 1 to [`MAX_PREFIX_LEN`](Self::MAX_PREFIX_LEN)
    /// bytes of the job id alphabet.
    ///
    /// ```
    /// assert!(spanline_core::Channels::new("staging:logs").is_ok());
    /// assert!(spanline_core::Channels::new("logs*").is_err());
    /// ```
    pub fn new(prefix: &str) -> Result<Self, JobIdError> {
        check(prefix, Self::MAX_PREFIX_LEN)?;
        Ok(Self {
            start: format!("{prefix}:"),
        })
    }

    /// The prefix.
    ///
    /// ```
    /// assert_eq!(spanline_core::Channels::default().prefix(), "logs");
    /// ```
    pub fn prefix(&self) -> &str {
        &self.start[..self.start.len() - 1]
    }

    /// The global channel, `{prefix}:global`.
    ///
    /// ```
    /// assert_eq!(spanline_core::Channels::new("app")?.global(), "app:global");
    /// # Ok::<(), spanline_core::JobIdError>(())
    /// ```
    pub fn global(&self) -> String {
        format!("{}global", self.start)
    }

    /// A job's channel, `{prefix}:{job_id}`, when `job_id` is a valid job id
    /// other than `global` and not under it (`global:…` names the global
    /// feed's shards, see spanline-redis's `read::global_shards`).
    ///
    /// ```
    /// let channels = spanline_core::Channels::default();
    /// assert_eq!(channels.job("a b"), Err(spanline_core::JobIdError::InvalidChar { found: ' ', at: 1 }));
    /// assert_eq!(channels.job("global:shards"), Err(spanline_core::JobIdError::Global));
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
