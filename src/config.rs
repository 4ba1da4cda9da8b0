//! [`Config`]: the options of [`init`](crate::init), read from an
//! application's own configuration file (the `[logging]` table of a TOML
//! file, a JSON or YAML section: anything serde reads).

use serde::Deserialize;

/// Every option of [`init`](crate::init), as a configuration file holds
/// them: the keys are the environment variables' names without the
/// `SPANLINE_` prefix, in lower case (`RUST_LOG` is `filter`). Every key is
/// optional; an unknown key is an error, so a typo is not silently
/// ignored. The environment overrides the file, and the [`Builder`]'s own
/// methods override both.
///
/// ```toml
/// [logging]
/// filter = "info,sqlx=warn"      # RUST_LOG
/// format = "json"                # SPANLINE_FORMAT: json, pretty, auto
/// preset = "structlog"           # SPANLINE_PRESET
/// service = "billing"            # SPANLINE_SERVICE
/// output = "stderr"              # SPANLINE_OUTPUT: stdout, stderr
/// redis_url = "redis://127.0.0.1:6379"   # SPANLINE_REDIS_URL (a cluster: comma-separated nodes)
/// redis_cluster = false          # SPANLINE_REDIS_CLUSTER: the URLs are a Redis Cluster's nodes
/// redis_global_shards = 16       # SPANLINE_REDIS_GLOBAL_SHARDS: the global feed's shards
/// redis_mode = "both"            # SPANLINE_REDIS_MODE: pubsub, streams, both
/// redis_capacity = 100000        # SPANLINE_REDIS_CAPACITY: lines queued at most
/// redis_overflow = "drop-oldest" # SPANLINE_REDIS_OVERFLOW: drop-newest, drop-oldest, block:<ms>, block-forever
/// context_keys = ["tenant"]      # spans with these fields keep their context at any level
/// redact = ["password", "authorization"]  # SPANLINE_REDACT: values written as [redacted]
/// time = "local"                 # SPANLINE_TIME: local, utc (the pretty format; feature local-time)
/// threads = "names"              # SPANLINE_THREADS: names, ids, both, none (the pretty format)
/// span_close = true              # SPANLINE_SPAN_CLOSE: a line when a span closes, with its duration
/// dotted_targets = true          # SPANLINE_DOTTED_TARGETS: `myapp.api`, not `myapp::api`
/// errors = "dicts"               # SPANLINE_ERRORS: chain, ecs, traceback, dicts (default: the preset's)
/// source_location = true         # SPANLINE_SOURCE_LOCATION: the event's file and line
/// ```
///
/// ```
/// let config: spanline::Config = serde_json::from_str(
///     r#"{"format": "json", "service": "billing", "redis_mode": "both"}"#,
/// ).unwrap();
/// let _guard = spanline::builder().config(config).init();
/// # assert!(serde_json::from_str::<spanline::Config>(r#"{"servce": "typo"}"#).is_err());
/// ```
///
/// [`Builder`]: crate::Builder
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct Config {
    /// Filter directives (`RUST_LOG`).
    #[serde(alias = "rust_log")]
    pub filter: Option<String>,
    /// `json`, `pretty` or `auto` (`SPANLINE_FORMAT`).
    pub format: Option<String>,
    /// The JSON preset (`SPANLINE_PRESET`).
    pub preset: Option<String>,
    /// A `service` field on every line (`SPANLINE_SERVICE`).
    pub service: Option<String>,
    /// `stdout` or `stderr` (`SPANLINE_OUTPUT`).
    pub output: Option<String>,
    /// Publish every line to this Redis (`SPANLINE_REDIS_URL`).
    pub redis_url: Option<String>,
    /// The URLs are a Redis Cluster's nodes (`SPANLINE_REDIS_CLUSTER`;
    /// feature `redis-cluster`).
    pub redis_cluster: Option<bool>,
    /// How many shards the global feed is spread over
    /// (`SPANLINE_REDIS_GLOBAL_SHARDS`).
    pub redis_global_shards: Option<usize>,
    /// `pubsub`, `streams` or `both` (`SPANLINE_REDIS_MODE`).
    pub redis_mode: Option<String>,
    /// Lines queued for Redis at most (`SPANLINE_REDIS_CAPACITY`).
    pub redis_capacity: Option<usize>,
    /// What happens to a line when the queue is full
    /// (`SPANLINE_REDIS_OVERFLOW`).
    pub redis_overflow: Option<String>,
    /// Forward to a parent `Forwarder` when started by one
    /// (`SPANLINE_FORWARD` is set by the parent).
    pub forward: Option<bool>,
    /// More context keys (see [`Builder::context_key`](crate::Builder::context_key)).
    pub context_keys: Vec<String>,
    /// Keys whose values are hidden on every line (see
    /// [`Builder::redact`](crate::Builder::redact)); added to
    /// `SPANLINE_REDACT`'s.
    pub redact: Vec<String>,
    /// `local` or `utc`: the pretty format's times (`SPANLINE_TIME`).
    pub time: Option<String>,
    /// `names`, `ids`, `both` or `none`: the thread on pretty lines
    /// (`SPANLINE_THREADS`).
    pub threads: Option<String>,
    /// A line when a span closes, with its duration (`SPANLINE_SPAN_CLOSE`).
    pub span_close: Option<bool>,
    /// Targets with `.` for `::` (`SPANLINE_DOTTED_TARGETS`).
    pub dotted_targets: Option<bool>,
    /// How error fields are written: `chain`, `ecs`, `traceback` or
    /// `dicts` (`SPANLINE_ERRORS`).
    pub errors: Option<String>,
    /// The event's source file and line (`SPANLINE_SOURCE_LOCATION`).
    pub source_location: Option<bool>,
}
