//! The list of recent jobs: built by following the global feed, keyed by
//! each line's `job_id`, with the time and level of each job's last line,
//! and whether its run has ended (the Redis layer's `job ended` line, which
//! is not counted as one of the job's lines).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde::Serialize;
use spanline_json::read::Record;

use crate::follow::{Item, Link, Sink};

/// Jobs kept in the list; the least recently seen goes first.
const MAX_JOBS: usize = 500;

/// One job of the list.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub(crate) struct Job {
    pub(crate) job_id: String,
    /// The last line's time, as the line wrote it.
    pub(crate) time: Option<serde_json::Value>,
    pub(crate) level: Option<String>,
    pub(crate) lines: u64,
    /// The job's `job ended` line came after its last line.
    pub(crate) ended: bool,
    /// Order of last sight: larger is newer.
    #[serde(skip)]
    seen: u64,
}

/// The jobs seen on the global feed, and the feed's connection state.
#[derive(Debug, Default)]
pub(crate) struct Jobs {
    jobs: HashMap<String, Job>,
    tick: u64,
    pub(crate) link: Option<Link>,
}

impl Jobs {
    pub(crate) fn add(&mut self, line: &str) {
        // spanline-json's reader: every preset's keys, the nested shape.
        let Some(record) = Record::read(line) else {
            return;
        };
        let Some(job_id) = ["job_id", "job.id"]
            .iter()
            .find_map(|k| record.get(k).and_then(|v| v.as_str()))
        else {
            return;
        };
        if spanline_core::check_job_id(job_id).is_err() {
            return;
        }
        self.tick += 1;
        let time = (!record.time_text.is_empty())
            .then(|| serde_json::Value::String(record.time_text.clone()));
        // The console's level classes: `INFO`, `WARN`, ...
        let level = record.level.map(|l| l.name().to_ascii_uppercase());
        if !self.jobs.contains_key(job_id) && self.jobs.len() >= MAX_JOBS {
            if let Some(oldest) = self
                .jobs
                .values()
                .min_by_key(|j| j.seen)
                .map(|j| j.job_id.clone())
            {
                self.jobs.remove(&oldest);
            }
        }
        let job = self.jobs.entry(job_id.to_owned()).or_insert_with(|| Job {
            job_id: job_id.to_owned(),
            time: None,
            level: None,
            lines: 0,
            ended: false,
            seen: 0,
        });
        job.seen = self.tick;
        if record.get("job_end").and_then(serde_json::Value::as_bool) == Some(true) {
            job.ended = true;
            return;
        }
        job.time = time;
        job.level = level;
        job.lines += 1;
        job.ended = false;
    }

    /// The jobs, newest first.
    pub(crate) fn list(&self) -> Vec<Job> {
        let mut jobs: Vec<Job> = self.jobs.values().cloned().collect();
        jobs.sort_by_key(|j| std::cmp::Reverse(j.seen));
        jobs
    }
}

/// Feeds the list from a follower of the global feed, until the console
/// is dropped.
pub(crate) struct Indexer(pub(crate) std::sync::Weak<Mutex<Jobs>>);

impl Sink for Indexer {
    fn send(&mut self, item: Item) -> bool {
        let Some(jobs) = self.0.upgrade() else {
            return false;
        };
        let Ok(mut jobs) = jobs.lock() else {
            return false;
        };
        match item {
            Item::Line { line, .. } => jobs.add(&line),
            Item::State(link) => jobs.link = Some(link),
            Item::Gap(_) => {}
        }
        true
    }

    fn open(&self) -> bool {
        self.0.strong_count() > 0
    }
}

/// Shared by the console's handlers.
pub(crate) type SharedJobs = Arc<Mutex<Jobs>>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jobs_are_listed_newest_first_with_their_last_line() {
        let mut jobs = Jobs::default();
        jobs.add(r#"{"timestamp":"t1","level":"INFO","message":"a","job_id":"a_1"}"#);
        jobs.add(r#"{"timestamp":"t2","level":"INFO","message":"b","job_id":"b_1"}"#);
        jobs.add(r#"{"timestamp":"t3","level":"ERROR","message":"a","job_id":"a_1"}"#);
        jobs.add(r#"{"timestamp":"t4","level":"INFO","message":"no job"}"#);
        jobs.add(r#"{"timestamp":"t5","level":"INFO","job_id":"<bad id>"}"#);
        jobs.add("not json");
        // The nested preset keeps fields apart.
        jobs.add(r#"{"timestamp":"t6","level":"WARN","fields":{"job_id":"c_1"}}"#);
        let list = jobs.list();
        let ids: Vec<&str> = list.iter().map(|j| j.job_id.as_str()).collect();
        assert_eq!(ids, ["c_1", "a_1", "b_1"]);
        assert_eq!(list[1].level.as_deref(), Some("ERROR"));
        assert_eq!(list[1].lines, 2);
        // A job's end line marks it ended, and is not one of its lines.
        jobs.add(r#"{"timestamp":"t7","level":"INFO","message":"job ended","job_id":"a_1","job_end":true}"#);
        let a = jobs.list().into_iter().find(|j| j.job_id == "a_1").unwrap();
        assert!(a.ended);
        assert_eq!((a.lines, a.level.as_deref()), (2, Some("ERROR")));
        assert_eq!(list[1].time, Some(serde_json::json!("t3")));
    }

    #[test]
    fn the_list_is_bounded() {
        let mut jobs = Jobs::default();
        for i in 0..MAX_JOBS + 10 {
            jobs.add(&format!(r#"{{"level":"INFO","job_id":"j{i}"}}"#));
        }
        let list = jobs.list();
        assert_eq!(list.len(), MAX_JOBS);
        assert_eq!(list[0].job_id, format!("j{}", MAX_JOBS + 9));
        assert!(list.iter().all(|j| j.job_id != "j0"));
    }
}
