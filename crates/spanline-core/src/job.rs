//! Job ids: the one place that says what a job id may hold, for the
//! context, Redis and web crates (and the channel names built from them).

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
#[doc(hidden)]
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
    if id.is_empty() {
        return Err(JobIdError::Empty);
    }
    if id.len() > JOB_ID_MAX_LEN {
        return Err(JobIdError::TooLong(id.len()));
    }
    match id.char_indices().find(|&(_, c)| !job_id_char(c)) {
        Some((at, found)) => Err(JobIdError::InvalidChar { found, at }),
        None => Ok(()),
    }
}
