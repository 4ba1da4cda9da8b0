//! [`JobId`]: ids for background jobs, safe wherever they become a name
//! (a Redis channel, a file, a metric label).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A job's id, `{prefix}_{uuid v7 in hex}`, checked against
/// `[A-Za-z0-9_:-]{1,100}`.
///
/// UUID v7 ids sort by creation time, so a list of jobs sorts the way they
/// were started.
///
/// ```
/// use spanline_context::JobId;
/// let id = JobId::new("build");
/// assert!(id.as_str().starts_with("build_"));
/// assert_eq!(id.as_str().len(), "build_".len() + 32);
/// assert_eq!(JobId::parse(id.as_str()).unwrap(), id);
/// assert!(JobId::parse("logs:*").is_err());
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct JobId(String);

/// Why a string is not a [`JobId`] (spanline-core's, where the job id
/// syntax lives).
pub use spanline_core::JobIdError;

fn allowed(c: char) -> bool {
    spanline_core::job_id_char(c)
}

impl JobId {
    /// The longest valid id, in bytes.
    ///
    /// ```
    /// assert_eq!(spanline_context::JobId::new(&"x".repeat(500)).as_str().len(), spanline_context::JobId::MAX_LEN);
    /// ```
    pub const MAX_LEN: usize = spanline_core::JOB_ID_MAX_LEN;

    /// A new id with the given prefix. Characters of `prefix` outside
    /// `[A-Za-z0-9_:-]` become `-`, and the prefix is cut to fit
    /// [`JobId::MAX_LEN`], so the result is always valid.
    ///
    /// ```
    /// let id = spanline_context::JobId::new("export");
    /// assert!(id.as_str().starts_with("export_"));
    /// ```
    pub fn new(prefix: &str) -> Self {
        let uuid = uuid::Uuid::now_v7();
        let mut id: String = prefix
            .chars()
            .map(|c| if allowed(c) { c } else { '-' })
            .take(Self::MAX_LEN - 33)
            .collect();
        id.push('_');
        id.push_str(uuid.simple().encode_lower(&mut uuid::Uuid::encode_buffer()));
        Self(id)
    }

    /// Checks `s` and wraps it.
    ///
    /// ```
    /// assert!(spanline_context::JobId::parse("export_0193").is_ok());
    /// assert!(spanline_context::JobId::parse("global channel").is_err());
    /// ```
    pub fn parse(s: &str) -> Result<Self, JobIdError> {
        spanline_core::check_job_id(s)?;
        Ok(Self(s.to_string()))
    }

    /// The id as text.
    ///
    /// ```
    /// let id = spanline_context::JobId::parse("build:7").unwrap();
    /// assert_eq!(id.as_str(), "build:7");
    /// ```
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A `JobId` binds as its text, so `spanline::set("job_id", &job_id)` routes
/// the lines that follow to the job's Redis channel.
///
/// ```
/// use tracing_subscriber::prelude::*;
/// let subscriber = tracing_subscriber::registry().with(spanline_core::ContextLayer::new());
/// tracing::subscriber::with_default(subscriber, || {
///     let job_id = spanline_context::JobId::new("build");
///     let _job = tracing::info_span!("job").entered();
///     spanline_context::set("job_id", &job_id).unwrap();
///     assert_eq!(spanline_context::current().get("job_id").unwrap().to_string(), job_id.as_str());
/// });
/// ```
impl spanline_core::ContextValue for JobId {
    fn write_json(&self, buf: &mut Vec<u8>, _: &spanline_core::NumberPolicy) {
        spanline_core::write_str(buf, &self.0);
    }
}

impl FromStr for JobId {
    type Err = JobIdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl TryFrom<String> for JobId {
    type Error = JobIdError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<JobId> for String {
    fn from(id: JobId) -> Self {
        id.0
    }
}

impl AsRef<str> for JobId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_hostile_ids() {
        for bad in [
            "",
            "*",
            "{x}",
            "a\nb",
            "logs:*",
            "é",
            "a b",
            &"x".repeat(101),
        ] {
            assert!(JobId::parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!(JobId::parse(&"x".repeat(100)).unwrap().as_str().len(), 100);
        assert!(matches!(
            JobId::parse("ab*"),
            Err(JobIdError::InvalidChar { found: '*', at: 2 })
        ));
    }

    #[test]
    fn new_sanitizes_and_bounds_the_prefix() {
        let id = JobId::new("send email/now");
        assert!(id.as_str().starts_with("send-email-now_"));
        let long = JobId::new(&"p".repeat(500));
        assert_eq!(long.as_str().len(), JobId::MAX_LEN);
        assert!(JobId::parse(long.as_str()).is_ok());
        assert!(JobId::new("a") < JobId::new("a") || JobId::new("a") != JobId::new("a"));
    }

    #[test]
    fn serde_validates() {
        let id = JobId::new("job");
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(serde_json::from_str::<JobId>(&json).unwrap(), id);
        assert!(serde_json::from_str::<JobId>("\"bad id\"").is_err());
    }
}
