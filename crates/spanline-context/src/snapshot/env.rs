//! The environment form, for a child process: `TRACEPARENT`,
//! `TRACESTATE` and `BAGGAGE`, written by the parent and read, allow-listed,
//! by the child.

use super::{ContextSnapshot, DEFAULT_KEYS};

impl ContextSnapshot {
    /// The environment variables for a child process: `TRACEPARENT`,
    /// `TRACESTATE` and `BAGGAGE` (each only when set).
    ///
    /// ```
    /// let mut snap = spanline_context::ContextSnapshot::new();
    /// snap.insert("request_id", "r-1").unwrap();
    /// let mut cmd = std::process::Command::new("true");
    /// cmd.envs(snap.to_env());
    /// ```
    pub fn to_env(&self) -> Vec<(&'static str, String)> {
        let mut vars = Vec::new();
        if let Some(tp) = &self.traceparent {
            vars.push(("TRACEPARENT", tp.to_string()));
        }
        if let Some(ts) = &self.tracestate {
            vars.push(("TRACESTATE", ts.clone()));
        }
        if !self.entries.is_empty() {
            vars.push(("BAGGAGE", self.to_baggage()));
        }
        vars
    }

    /// The current context's variables for a child process
    /// ([`capture`](Self::capture), then [`to_env`](Self::to_env)), in the
    /// form `spanline_pipe::Forwarder::env_with` takes.
    ///
    /// ```
    /// use tracing_subscriber::prelude::*;
    /// let subscriber = tracing_subscriber::registry().with(spanline_core::ContextLayer::new());
    /// tracing::subscriber::with_default(subscriber, || {
    ///     let _req = tracing::info_span!("request", request_id = "r-1").entered();
    ///     let vars = spanline_context::ContextSnapshot::capture_env();
    ///     assert_eq!(vars, [("BAGGAGE".to_string(), "request_id=r-1".to_string())]);
    /// });
    /// ```
    pub fn capture_env() -> Vec<(String, String)> {
        Self::capture()
            .to_env()
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect()
    }

    /// Reads `TRACEPARENT`, `TRACESTATE` and `BAGGAGE` from this process's
    /// environment, leniently, keeping only the [`DEFAULT_KEYS`] of the
    /// baggage. Empty when none is set.
    ///
    /// See [`ContextSnapshot`]'s example.
    pub fn from_env() -> Self {
        Self::from_env_vars(|name| std::env::var(name).ok())
    }

    /// Like [`from_env`](Self::from_env), keeping the baggage keys `extra`
    /// too, beside the [`DEFAULT_KEYS`] (as [`capture_with`](Self::capture_with)
    /// captures them): a parent that carries `batch_id` hands it to a child
    /// that reads it with `from_env_with(&["batch_id"])`.
    ///
    /// ```
    /// # // A doctest is its own process, with no other thread yet.
    /// # std::env::set_var("BAGGAGE", "job_id=j-1,batch_id=b-7,secret=x");
    /// let snap = spanline_context::ContextSnapshot::from_env_with(&["batch_id"]);
    /// assert_eq!((snap.get("job_id"), snap.get("batch_id")), (Some("j-1"), Some("b-7")));
    /// assert_eq!((snap.get("secret"), snap.dropped()), (None, 1));
    /// ```
    pub fn from_env_with(extra: &[&str]) -> Self {
        Self::read_env(
            |name| std::env::var(name).ok(),
            |k| DEFAULT_KEYS.contains(&k) || extra.contains(&k),
        )
    }

    /// Like [`from_env`](Self::from_env), reading variables through `var`.
    /// Baggage keys outside [`DEFAULT_KEYS`] are left out and counted.
    ///
    /// ```
    /// let snap = spanline_context::ContextSnapshot::from_env_vars(|name| {
    ///     (name == "BAGGAGE").then(|| "job_id=j-1,secret=hunter2".to_string())
    /// });
    /// assert_eq!(snap.get("job_id"), Some("j-1"));
    /// assert_eq!((snap.get("secret"), snap.dropped()), (None, 1));
    /// ```
    pub fn from_env_vars(var: impl Fn(&str) -> Option<String>) -> Self {
        Self::read_env(var, |k| DEFAULT_KEYS.contains(&k))
    }

    fn read_env(var: impl Fn(&str) -> Option<String>, allowed: impl Fn(&str) -> bool) -> Self {
        let mut snap = var("BAGGAGE")
            .map(|b| Self::from_baggage(&b))
            .unwrap_or_default();
        snap.retain_keys(allowed);
        if let Some(tp) = var("TRACEPARENT") {
            match tp.parse() {
                Ok(tp) => snap.traceparent = Some(tp),
                Err(_) => snap.dropped += 1,
            }
        }
        snap.tracestate =
            var("TRACESTATE").filter(|ts| ts.len() <= 512 && !ts.chars().any(char::is_control));
        snap
    }
}
