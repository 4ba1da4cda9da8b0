//! The options of [`init`](crate::init), in one table.
//!
//! Each option is one [`Opt`]: its configuration-file key, its environment
//! variable, its builder method, the values it takes, its default and what
//! it does. The table drives every place an option is read: the
//! [`Builder`](crate::Builder) stores its values under the option's key,
//! the environment is read by the option's variable, a
//! [`Config`](crate::Config) accepts exactly the table's keys, and the
//! table in docs/guide.md is generated from it (a test fails when they
//! differ). [`Settings::resolve`] applies one rule to every option: the
//! builder's value, else the environment's, else the file's, else the
//! default; a list is the union of the three.

use std::collections::BTreeMap;
use std::fmt::Write as _;

/// How an option's values from several places combine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// One value: the first of the builder's, the environment's, the file's.
    One,
    /// A list: every value of the builder, the environment (comma-separated)
    /// and the file. Used for keys to hide or keep, where a key named in any
    /// place must count.
    List,
}

/// One option of `init()`.
#[derive(Debug)]
pub(crate) struct Opt {
    /// The configuration file's key.
    pub(crate) key: &'static str,
    /// The environment variable, if the environment may set it.
    pub(crate) env: Option<&'static str>,
    /// The builder method, as the docs show it.
    #[cfg_attr(not(test), allow(dead_code))] // the docs' table, made in a test
    pub(crate) method: &'static str,
    /// The values it takes, for the docs and for error messages.
    pub(crate) takes: &'static str,
    /// What it is when nothing sets it.
    pub(crate) default: &'static str,
    /// What it does (one line of the docs' table).
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) doc: &'static str,
    pub(crate) kind: Kind,
    /// Two values it takes, for the test that checks the precedence of
    /// every option.
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) samples: [&'static str; 2],
}

impl Opt {
    /// The name to show for a value that came from `source`.
    pub(crate) fn name(&self, source: Source) -> &'static str {
        match (source, self.env) {
            (Source::Env, Some(env)) => env,
            _ => self.key,
        }
    }
}

macro_rules! options {
    ($($id:ident { $($field:ident: $value:expr),* $(,)? })*) => {
        $(pub(crate) const $id: Opt = Opt { $($field: $value),* };)*
        /// Every option, in the docs' order.
        pub(crate) const ALL: &[&Opt] = &[$(&$id),*];
    };
}

options! {
    FILTER {
        key: "filter", env: Some("RUST_LOG"), method: "filter(..)",
        takes: "`EnvFilter` directives", default: "`info`",
        doc: "which lines are written; `warning`, `critical`, `fatal` and Python's numeric levels are understood; a directive that does not parse, or a mistyped level (`warnn`), is skipped and named on stderr. Spans that carry context are kept whatever it says (see [Filtering](#filtering))",
        kind: Kind::One, samples: ["debug", "warn"],
    }
    RELOAD_FILTER {
        key: "reload_filter", env: Some("SPANLINE_RELOAD_FILTER"), method: "reload_filter(..)",
        takes: "`true`, `false`", default: "`false`",
        doc: "`Guard::set_filter` changes the filter while running (see [Outputs and filters at run time](#outputs-and-filters-at-run-time)); off, the filter costs no lock per event",
        kind: Kind::One, samples: ["true", "false"],
    }
    FORMAT {
        key: "format", env: Some("SPANLINE_FORMAT"), method: "format(..)",
        takes: "`json`, `pretty`, `auto`", default: "`auto`",
        doc: "JSON lines, or the readable console format; `auto` is pretty on a terminal and JSON otherwise",
        kind: Kind::One, samples: ["json", "pretty"],
    }
    PRESET {
        key: "preset", env: Some("SPANLINE_PRESET"), method: "preset(..)",
        takes: "`flat`, `structlog`, `bunyan`, `gcp`, `ecs`, `nested`", default: "`flat`",
        doc: "the keys and shape of JSON lines ([presets.md](presets.md))",
        kind: Kind::One, samples: ["structlog", "ecs"],
    }
    SERVICE {
        key: "service", env: Some("SPANLINE_SERVICE"), method: "service(..)",
        takes: "a name", default: "none",
        doc: "a `service` field on every line (the pretty format shows it too)",
        kind: Kind::One, samples: ["billing", "api"],
    }
    OUTPUT {
        key: "output", env: Some("SPANLINE_OUTPUT"), method: "output(..)",
        takes: "`stdout`, `stderr`", default: "`stdout`",
        doc: "where lines are written (`auto` looks at that stream), unless `file` is set",
        kind: Kind::One, samples: ["stderr", "stdout"],
    }
    FILE {
        key: "file", env: Some("SPANLINE_FILE"), method: "file(..)",
        takes: "a path", default: "none",
        doc: "write lines to this file instead of `output` (appended; its folder is created); JSON unless `format` says pretty",
        kind: Kind::One, samples: ["/var/log/app/app.log", "app.log"],
    }
    ROTATION {
        key: "rotation", env: Some("SPANLINE_ROTATION"), method: "rotation(..)",
        takes: "`never`, `daily`, `hourly`, `minutely`", default: "`never`",
        doc: "a new `file` every day, hour or minute, named `app.log.2026-12-06` (tracing-appender's rolling files)",
        kind: Kind::One, samples: ["daily", "hourly"],
    }
    NON_BLOCKING {
        key: "non_blocking", env: Some("SPANLINE_NON_BLOCKING"), method: "non_blocking(..)",
        takes: "`true`, `false`", default: "`false`",
        doc: "lines go to a writer thread through a queue of 128,000 lines, so a stalled reader of stdout never blocks logging; lines beyond the queue are dropped, counted and reported on stderr",
        kind: Kind::One, samples: ["true", "false"],
    }
    TIME {
        key: "time", env: Some("SPANLINE_TIME"), method: "local_time(..)",
        takes: "`local`, `utc`", default: "`utc`",
        doc: "the pretty format's times (`local`: `TZ`, else the system's zone; feature `local-time`, on by default). JSON lines stay UTC",
        kind: Kind::One, samples: ["local", "utc"],
    }
    THREADS {
        key: "threads", env: Some("SPANLINE_THREADS"), method: "threads(..)",
        takes: "`names`, `ids`, `both`, `none`", default: "`none`",
        doc: "the thread on every pretty line (`thread=`, `thread_id=`)",
        kind: Kind::One, samples: ["names", "both"],
    }
    SPAN_CLOSE {
        key: "span_close", env: Some("SPANLINE_SPAN_CLOSE"), method: "span_close(..)",
        takes: "`true`, `false`", default: "`false`",
        doc: "one more line when a span closes, `\"message\":\"span closed\"` with `span` (its name), `duration_ms`, `busy_ms` (entered) and `idle_ms`, in every format; the span's level and target, so `RUST_LOG` decides on it (tracing-subscriber's `FmtSpan::CLOSE`, with numbers)",
        kind: Kind::One, samples: ["true", "false"],
    }
    DOTTED_TARGETS {
        key: "dotted_targets", env: Some("SPANLINE_DOTTED_TARGETS"), method: "dotted_targets(..)",
        takes: "`true`, `false`", default: "`false`",
        doc: "targets written `myapp.api` instead of `myapp::api` (the logger names Python pipelines key on)",
        kind: Kind::One, samples: ["true", "false"],
    }
    ERRORS {
        key: "errors", env: Some("SPANLINE_ERRORS"), method: "errors(..)",
        takes: "`chain`, `ecs`, `traceback`, `dicts`", default: "the preset's",
        doc: "how error fields are written on JSON lines: `chain` (`error`, `error_sources`), `ecs` (`error.message`, `error.type`, `error.stack_trace`), `traceback` (structlog's `exception` text), `dicts` (structlog's `dict_tracebacks`); the default is `traceback` for structlog, `ecs` for ecs, else `chain`",
        kind: Kind::One, samples: ["dicts", "ecs"],
    }
    SOURCE_LOCATION {
        key: "source_location", env: Some("SPANLINE_SOURCE_LOCATION"), method: "with_source_location(..)",
        takes: "`true`, `false`", default: "`false`",
        doc: "the event's file and line on JSON lines, under the preset's keys (`filename`/`lineno`, `log.origin.file.*`, `sourceLocation`)",
        kind: Kind::One, samples: ["true", "false"],
    }
    CONTEXT_KEYS {
        key: "context_keys", env: Some("SPANLINE_CONTEXT_KEYS"), method: "context_key(..)",
        takes: "keys (a list; comma-separated)", default: "none",
        doc: "more keys that make a span a context span (kept, with its fields, under any `RUST_LOG`) and that an inherited `BAGGAGE` may carry, beside `request_id`, `trace_id`, `user_id`, `job_id`, `tenant`",
        kind: Kind::List, samples: ["batch_id", "shard"],
    }
    CONTEXT_LEVEL {
        key: "context_level", env: Some("SPANLINE_CONTEXT_LEVEL"), method: "context_level(..)",
        takes: "`trace`, `debug`, `info`, `warn`, `error`, `off`", default: "`info`",
        doc: "spans at this level or above keep their fields on the lines inside them whatever `RUST_LOG` says ([context.md](context.md), the contract)",
        kind: Kind::One, samples: ["debug", "warn"],
    }
    REDACT {
        key: "redact", env: Some("SPANLINE_REDACT"), method: "redact(..)",
        takes: "keys (a list; comma-separated)", default: "none",
        doc: "keys whose values are written as `[redacted]` on every line of every sink, at any depth inside JSON values; `*` makes a pattern (`*token*`, `api_*`); redacted context keys never leave the process in `BAGGAGE`, job payloads or headers, and children's lines are redacted by the parent (see [Redaction](#redaction))",
        kind: Kind::List, samples: ["password", "token"],
    }
    REDIS_URL {
        key: "redis_url", env: Some("SPANLINE_REDIS_URL"), method: "redis_url(..)",
        takes: "a `redis://` URL (a cluster: comma-separated nodes)", default: "off",
        doc: "also publish every line to Redis ([redis.md](redis.md)); a Redis that cannot be reached or refuses the login is said once on stderr, with what happens to lines",
        kind: Kind::One, samples: ["redis://127.0.0.1:1", "redis://127.0.0.1:2"],
    }
    REDIS_CLUSTER {
        key: "redis_cluster", env: Some("SPANLINE_REDIS_CLUSTER"), method: "redis_cluster(..)",
        takes: "`true`, `false`", default: "`false`",
        doc: "`redis_url` holds a Redis Cluster's nodes (some or all); sharded pub/sub, the global feed spread over shards (feature `redis-cluster`; [scale.md](scale.md))",
        kind: Kind::One, samples: ["false", "true"],
    }
    REDIS_GLOBAL_SHARDS {
        key: "redis_global_shards", env: Some("SPANLINE_REDIS_GLOBAL_SHARDS"), method: "redis_global_shards(..)",
        takes: "1 to 1024", default: "16 on a cluster, 1 on one server",
        doc: "how many channels (and streams) `logs:global:{T}` the global feed is spread over, so no master takes every line ([scale.md](scale.md))",
        kind: Kind::One, samples: ["4", "8"],
    }
    REDIS_MODE {
        key: "redis_mode", env: Some("SPANLINE_REDIS_MODE"), method: "redis_mode(..)",
        takes: "`pubsub`, `streams`, `both`", default: "`pubsub`",
        doc: "pub/sub channels, streams (kept, for history and gap-free resumes), or both ([redis.md](redis.md))",
        kind: Kind::One, samples: ["both", "streams"],
    }
    REDIS_CAPACITY {
        key: "redis_capacity", env: Some("SPANLINE_REDIS_CAPACITY"), method: "redis_capacity(..)",
        takes: "a number of lines", default: "8,192",
        doc: "lines waiting in the Redis queue at most, the batch being sent not included (bytes budget: 1 KiB a line, at least 8 MiB)",
        kind: Kind::One, samples: ["1000", "50000"],
    }
    REDIS_OVERFLOW {
        key: "redis_overflow", env: Some("SPANLINE_REDIS_OVERFLOW"), method: "redis_overflow(..)",
        takes: "`drop-newest`, `drop-oldest`, `block:<ms>`, `block-forever`", default: "`drop-newest`",
        doc: "what happens to a line when the Redis queue is full",
        kind: Kind::One, samples: ["drop-oldest", "block:5"],
    }
    OTLP_ENDPOINT {
        key: "otlp_endpoint", env: Some("SPANLINE_OTLP_ENDPOINT"), method: "otlp_endpoint(..)",
        takes: "an `http://` URL", default: "off",
        doc: "also send every line as an OpenTelemetry LogRecord to this collector (feature `otlp`); `OTEL_EXPORTER_OTLP_PROTOCOL` picks `grpc` or `http/protobuf` (the default), `OTEL_EXPORTER_OTLP_TIMEOUT` and `OTEL_SERVICE_NAME` apply, `/v1/logs` is added for HTTP ([opentelemetry.md](opentelemetry.md))",
        kind: Kind::One, samples: ["http://127.0.0.1:4317", "http://127.0.0.1:4318"],
    }
    FORWARD {
        key: "forward", env: None, method: "forward(..)",
        takes: "`true`, `false`", default: "`true`",
        doc: "when started by a parent's `Forwarder` (which sets `SPANLINE_FORWARD`), forward every line to it, print nothing locally and publish nothing to Redis: the parent re-emits and publishes each line once ([pipe.md](pipe.md)); `false`: never forward",
        kind: Kind::One, samples: ["false", "true"],
    }
    DEBUG_CONFIG {
        key: "debug_config", env: Some("SPANLINE_DEBUG_CONFIG"), method: "debug_config(..)",
        takes: "`true`, `false`", default: "`false`",
        doc: "print every option's effective value on stderr at start, and where it came from (builder, environment, file, default)",
        kind: Kind::One, samples: ["true", "false"],
    }
}

/// The option of a configuration file's key (`rust_log` is `filter`).
pub(crate) fn by_key(key: &str) -> Option<&'static Opt> {
    let key = if key == "rust_log" { "filter" } else { key };
    ALL.iter().copied().find(|opt| opt.key == key)
}

/// Where an option's value came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Source {
    Builder,
    Env,
    File,
}

impl Source {
    fn describe(self) -> &'static str {
        match self {
            Source::Builder => "the builder",
            Source::Env => "the environment",
            Source::File => "the configuration file",
        }
    }
}

/// Values set for options, by key: a builder's or a file's.
pub(crate) type Values = BTreeMap<&'static str, Vec<String>>;

/// Every option's effective value, with where it came from.
#[derive(Debug, Default)]
pub(crate) struct Settings {
    values: BTreeMap<&'static str, (Vec<String>, Vec<Source>)>,
}

impl Settings {
    /// Applies the one rule to every option: for one value, the builder's,
    /// else the environment's (an empty variable is unset), else the file's;
    /// for a list, all of them.
    pub(crate) fn resolve(
        builder: &Values,
        env: &dyn Fn(&str) -> Option<String>,
        file: &Values,
    ) -> Self {
        let mut values = BTreeMap::new();
        for opt in ALL {
            let from_env =
                opt.env
                    .and_then(env)
                    .filter(|v| !v.trim().is_empty())
                    .map(|v| match opt.kind {
                        Kind::One => vec![v],
                        Kind::List => v
                            .split(',')
                            .map(str::trim)
                            .filter(|k| !k.is_empty())
                            .map(str::to_string)
                            .collect(),
                    });
            let places = [
                (builder.get(opt.key).cloned(), Source::Builder),
                (from_env, Source::Env),
                (file.get(opt.key).cloned(), Source::File),
            ];
            let mut found = places
                .into_iter()
                .filter_map(|(v, source)| v.filter(|v| !v.is_empty()).map(|v| (v, source)));
            let resolved = match opt.kind {
                Kind::One => found.next().map(|(v, source)| (v, vec![source])),
                Kind::List => {
                    let (mut all, mut sources) = (Vec::new(), Vec::new());
                    for (v, source) in found {
                        all.extend(
                            v.into_iter()
                                .filter(|k| !all.contains(k))
                                .collect::<Vec<_>>(),
                        );
                        sources.push(source);
                    }
                    (!all.is_empty()).then_some((all, sources))
                }
            };
            if let Some(resolved) = resolved {
                values.insert(opt.key, resolved);
            }
        }
        Self { values }
    }

    /// A one-value option's value and its source, if anything set it.
    pub(crate) fn get(&self, opt: &Opt) -> Option<(&str, Source)> {
        let (values, sources) = self.values.get(opt.key)?;
        Some((values.first()?.as_str(), *sources.first()?))
    }

    /// A list option's values.
    pub(crate) fn list(&self, opt: &Opt) -> &[String] {
        self.values.get(opt.key).map_or(&[], |(v, _)| v.as_slice())
    }

    /// One line per option: its effective value and where it came from.
    /// A Redis URL's password is never shown.
    pub(crate) fn describe(&self) -> String {
        let mut out = String::new();
        for opt in ALL {
            let shown = match self.values.get(opt.key) {
                Some((values, sources)) => {
                    let value = values
                        .iter()
                        .map(|v| {
                            if opt.key == REDIS_URL.key {
                                hide_password(v)
                            } else {
                                v.clone()
                            }
                        })
                        .collect::<Vec<_>>()
                        .join(",");
                    let from = sources.iter().map(|s| s.describe()).collect::<Vec<_>>();
                    format!("{value:?} (from {})", from.join(" + "))
                }
                None => format!("{} (the default)", opt.default.replace('`', "")),
            };
            let _ = writeln!(out, "  {} = {shown}", opt.key);
        }
        out
    }
}

/// `redis://user:secret@host` -> `redis://user:…@host`, for every node of
/// a comma-separated list.
fn hide_password(urls: &str) -> String {
    urls.split(',')
        .map(|url| match (url.find("://"), url.rfind('@')) {
            (Some(scheme), Some(at)) if at > scheme => {
                let userinfo = &url[scheme + 3..at];
                let user = userinfo.split(':').next().unwrap_or_default();
                format!("{}{user}:…{}", &url[..scheme + 3], &url[at..])
            }
            _ => url.to_string(),
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// The docs' table of options (docs/guide.md, between the markers).
#[cfg(test)]
fn markdown() -> String {
    let mut out = String::from(
        "| config key | environment | builder | takes | default | what it does |\n|---|---|---|---|---|---|\n",
    );
    for opt in ALL {
        let env = opt.env.map_or("-".to_string(), |e| format!("`{e}`"));
        let _ = writeln!(
            out,
            "| `{}` | {env} | `{}` | {} | {} | {} |",
            opt.key, opt.method, opt.takes, opt.default, opt.doc
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(pairs: &[(&'static str, &str)]) -> Values {
        pairs
            .iter()
            .map(|(k, v)| (*k, vec![(*v).to_string()]))
            .collect()
    }

    /// The one rule, for every option of the table.
    #[test]
    fn every_option_follows_builder_then_environment_then_file() {
        for opt in ALL {
            let [a, b] = opt.samples;
            let env_of = |value: &'static str| {
                move |name: &str| (Some(name) == opt.env).then(|| value.to_string())
            };
            let none = |_: &str| None;
            let ctx = opt.key;
            match opt.kind {
                Kind::One => {
                    let s = Settings::resolve(
                        &values(&[(opt.key, a)]),
                        &env_of(b),
                        &values(&[(opt.key, b)]),
                    );
                    assert_eq!(
                        s.get(opt),
                        Some((a, Source::Builder)),
                        "{ctx}: the builder wins"
                    );
                    if opt.env.is_some() {
                        let s =
                            Settings::resolve(&Values::new(), &env_of(a), &values(&[(opt.key, b)]));
                        assert_eq!(
                            s.get(opt),
                            Some((a, Source::Env)),
                            "{ctx}: then the environment"
                        );
                        let s = Settings::resolve(
                            &Values::new(),
                            &env_of(""),
                            &values(&[(opt.key, b)]),
                        );
                        assert_eq!(
                            s.get(opt),
                            Some((b, Source::File)),
                            "{ctx}: an empty variable is unset"
                        );
                    }
                    let s = Settings::resolve(&Values::new(), &none, &values(&[(opt.key, b)]));
                    assert_eq!(s.get(opt), Some((b, Source::File)), "{ctx}: then the file");
                    let s = Settings::resolve(&Values::new(), &none, &Values::new());
                    assert_eq!(s.get(opt), None, "{ctx}: else the default");
                }
                Kind::List => {
                    let s = Settings::resolve(
                        &values(&[(opt.key, a)]),
                        &env_of(b),
                        &values(&[(opt.key, a)]),
                    );
                    assert_eq!(s.list(opt), [a, b], "{ctx}: a list is the union, once each");
                }
            }
        }
    }

    #[test]
    fn keys_and_variables_are_unique_and_named_alike() {
        for (i, opt) in ALL.iter().enumerate() {
            assert!(ALL[..i]
                .iter()
                .all(|o| o.key != opt.key && (o.env.is_none() || o.env != opt.env)));
            if let Some(env) = opt.env.filter(|e| *e != "RUST_LOG") {
                assert_eq!(
                    env,
                    format!("SPANLINE_{}", opt.key.to_ascii_uppercase()),
                    "{}",
                    opt.key
                );
            }
            assert!(opt.method.starts_with(|c: char| c.is_ascii_lowercase()));
        }
        assert_eq!(by_key("rust_log").map(|o| o.key), Some("filter"));
    }

    #[test]
    fn the_description_names_sources_and_hides_passwords() {
        let env = |name: &str| {
            (name == "SPANLINE_REDIS_URL")
                .then(|| "redis://app:s3cret@h:6379,redis://h2".to_string())
        };
        let s = Settings::resolve(&values(&[("service", "billing")]), &env, &Values::new());
        let text = s.describe();
        assert!(
            text.contains("service = \"billing\" (from the builder)"),
            "{text}"
        );
        assert!(
            text.contains("redis_url = \"redis://app:…@h:6379,redis://h2\" (from the environment)"),
            "{text}"
        );
        assert!(!text.contains("s3cret"), "{text}");
        assert!(text.contains("format = auto (the default)"), "{text}");
    }

    /// docs/guide.md's table is this table; `SPANLINE_BLESS=1` rewrites it.
    #[test]
    fn the_guide_shows_this_table() {
        const START: &str = "<!-- options: generated from src/options.rs; SPANLINE_BLESS=1 cargo test -p spanline --lib options -->\n";
        const END: &str = "<!-- options end -->";
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/guide.md");
        let guide = std::fs::read_to_string(path).unwrap();
        let start = guide
            .find(START)
            .expect("the start marker in docs/guide.md")
            + START.len();
        let end = start + guide[start..].find(END).expect("the end marker");
        let table = markdown();
        if std::env::var_os("SPANLINE_BLESS").is_some() {
            std::fs::write(path, format!("{}{table}{}", &guide[..start], &guide[end..])).unwrap();
        } else {
            assert_eq!(
                guide[start..end],
                table,
                "docs/guide.md: run SPANLINE_BLESS=1 cargo test -p spanline --lib options"
            );
        }
    }
}
