//! The presets against the real producers they stand in for, on the same
//! events: structlog 26 in its common JSON setups, Elastic's ecs-logging,
//! and the ECS field definitions (`@elastic/ecs`). The producers are
//! installed, pinned, by `scripts/reference_producers.sh` (`bash
//! scripts/test` runs it) into a virtualenv and an npm folder under
//! `reference_dir()`; `tests/reference/producers.py` makes their lines with
//! the virtualenv's Python. Lines are compared as parsed values, paired by
//! message; every difference allowed here is listed in docs/presets.md.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report

use std::error::Error;
use std::path::PathBuf;
use std::process::Command;

use serde_json::{json, Map, Value};
use spanline_core::{json as as_json, ErrorStyle, Preset, Schema};
use tracing::{debug, error, info, info_span, warn};

use spanline_testkit::{QueryFailed, TimedOut};

/// The events of `producers.py`'s `events()`, in the same order.
fn events() {
    info!(target: "myapp::api", attempts = 3, latency_ms = 12.5, method = "password", "user logged in");
    warn!(target: "myapp::api", free_pct = 4.5, "disk almost full");
    let err = QueryFailed(TimedOut);
    error!(target: "myapp::api", table = "users", error = &err as &dyn Error, "db call failed");
    error!(target: "myapp::api", critical = true, rss_mb = 4096, "out of memory");
    {
        let _request = info_span!("request", request_id = "r-1", user_id = 42).entered();
        info!(target: "myapp::api", path = "/api/items", "request started");
    }
    info!(
        target: "myapp::api",
        user = as_json(json!({"id": 7, "roles": ["admin", "dev"]})),
        tags = as_json(["a", "b"]),
        empty = as_json(json!({})),
        "payload"
    );
    info!(target: "myapp::api", middle_name = as_json(None::<&str>), "optional");
    debug!(target: "myapp::api", key = "k1", "cache miss");
}

fn spanline_lines(schema: Schema) -> Vec<Map<String, Value>> {
    spanline_testkit::capture_json_with(schema, events)
}

/// Where `scripts/reference_producers.sh` installs the producers:
/// `$SPANLINE_REFERENCE_DIR` (`scripts/test` sets it), else
/// `${XDG_CACHE_HOME:-~/.cache}/spanline-reference` as the script does.
fn reference_dir() -> PathBuf {
    let var = |name| std::env::var_os(name).filter(|v| !v.is_empty());
    if let Some(dir) = var("SPANLINE_REFERENCE_DIR") {
        return dir.into();
    }
    let cache = var("XDG_CACHE_HOME").map(PathBuf::from).unwrap_or_else(|| {
        var("HOME")
            .map(PathBuf::from)
            .or_else(std::env::home_dir)
            .unwrap_or_else(|| "/root".into())
            .join(".cache")
    });
    cache.join("spanline-reference")
}

/// The virtualenv's Python, where the producers are; a machine without it
/// falls back to `python3` on the `PATH` (with the producers installed some
/// other way).
fn reference_python() -> PathBuf {
    let venv = reference_dir().join("venv/bin/python");
    if venv.exists() {
        venv
    } else {
        "python3".into()
    }
}

/// The reference producer's lines for `setup` (see `producers.py`).
fn reference_lines(setup: &str) -> Vec<Map<String, Value>> {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/reference/producers.py");
    let python = reference_python();
    let out = Command::new(&python)
        .arg(script)
        .arg(setup)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "{} does not run ({e}): run bash scripts/test",
                python.display()
            )
        });
    assert!(
        out.status.success(),
        "the reference producers are not installed for {} or failed: run bash scripts/test \
         (or scripts/reference_producers.sh)\n{}",
        python.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

type Line = Map<String, Value>;

/// Pairs lines by their message key.
fn pairs<'a>(ours: &'a [Line], theirs: &'a [Line], message: &str) -> Vec<(&'a Line, &'a Line)> {
    assert_eq!(
        ours.len(),
        theirs.len(),
        "ours: {ours:#?}\ntheirs: {theirs:#?}"
    );
    theirs
        .iter()
        .map(|t| {
            let o = ours
                .iter()
                .find(|o| o[message] == t[message])
                .unwrap_or_else(|| panic!("no line of ours for {t:?}"));
            (o, t)
        })
        .collect()
}

fn is_iso_micros(v: &Value) -> bool {
    let s = v.as_str().unwrap_or_default();
    s.len() == 27 && s.ends_with('Z') && s.as_bytes()[19] == b'.' && s.as_bytes()[10] == b'T'
}

fn is_iso_millis(v: &Value) -> bool {
    let s = v.as_str().unwrap_or_default();
    s.len() == 24 && s.ends_with('Z') && s.as_bytes()[19] == b'.' && s.as_bytes()[10] == b'T'
}

fn compare_structlog(setup: &str, schema: Schema, has_logger: bool) {
    let ours = spanline_lines(schema);
    let theirs = reference_lines(setup);
    for (o, t) in pairs(&ours, &theirs, "event") {
        let (mut o, mut t) = (o.clone(), t.clone());
        assert!(
            is_iso_micros(&o["timestamp"]) && is_iso_micros(&t["timestamp"]),
            "{o:?} {t:?}"
        );
        o.remove("timestamp");
        t.remove("timestamp");
        // structlog's setups without stdlib write no logger; ours always does.
        if !has_logger {
            assert_eq!(o.remove("logger"), Some(json!("myapp::api")));
        }
        // Rust errors carry no frames: compare everything else.
        for line in [&mut o, &mut t] {
            if let Some(Value::Array(links)) = line.get_mut("exception") {
                for link in links {
                    link.as_object_mut().unwrap().remove("frames");
                }
            }
        }
        assert_eq!(o, t, "{setup}: ours, then structlog's");
    }
}

#[test]
fn structlog_preset_writes_what_structlog_writes() {
    compare_structlog("structlog-text", Schema::from(Preset::Structlog), false);
    compare_structlog(
        "structlog-dicts",
        Schema::builder(Preset::Structlog)
            .errors(ErrorStyle::Dicts)
            .build(),
        false,
    );
    compare_structlog(
        "structlog-stdlib",
        Schema::builder(Preset::Structlog)
            .dotted_targets(true)
            .build(),
        true,
    );
}

/// A line as Elasticsearch reads it: dotted keys expanded into objects.
fn expand(line: &Map<String, Value>) -> Map<String, Value> {
    let mut out = Map::new();
    for (key, value) in line {
        let value = match value {
            Value::Object(inner) => Value::Object(expand(inner)),
            other => other.clone(),
        };
        let mut parts: Vec<&str> = key.split('.').collect();
        let last = parts.pop().unwrap();
        let mut at = &mut out;
        for part in parts {
            at = at
                .entry(part)
                .or_insert_with(|| Value::Object(Map::new()))
                .as_object_mut()
                .unwrap_or_else(|| panic!("`{part}` is a value and a path in {line:?}"));
        }
        match (at.get_mut(last), value) {
            (Some(Value::Object(mine)), Value::Object(more)) => mine.extend(more),
            (Some(_), _) => panic!("`{key}` written twice in {line:?}"),
            (None, value) => {
                at.insert(last.to_string(), value);
            }
        }
    }
    out
}

/// Every leaf of an expanded line, by dotted path (objects are walked,
/// arrays and empty objects are leaves).
fn leaves(line: &Map<String, Value>) -> Vec<(String, Value)> {
    fn walk(prefix: &str, map: &Map<String, Value>, out: &mut Vec<(String, Value)>) {
        for (key, value) in map {
            let path = if prefix.is_empty() {
                key.clone()
            } else {
                format!("{prefix}.{key}")
            };
            match value {
                Value::Object(inner) if !inner.is_empty() => walk(&path, inner, out),
                other => out.push((path, other.clone())),
            }
        }
    }
    let mut out = Vec::new();
    walk("", line, &mut out);
    out
}

fn get<'a>(line: &'a Map<String, Value>, path: &str) -> Option<&'a Value> {
    let mut parts = path.split('.');
    let mut at = line.get(parts.next()?)?;
    for part in parts {
        at = at.as_object()?.get(part)?;
    }
    Some(at)
}

/// The ECS field definitions: flat name to type, from `@elastic/ecs`.
fn ecs_fields() -> Map<String, Value> {
    let flat = reference_dir().join("npm/node_modules/@elastic/ecs/generated/ecs_flat.js");
    let flat = flat.to_string_lossy();
    let out = Command::new("node")
        .args([
            "-e",
            "const {EcsFlat} = require(process.argv[1]); const out = {}; \
             for (const [k, v] of Object.entries(EcsFlat)) out[k] = v.type; \
             console.log(JSON.stringify(out));",
            &*flat,
        ])
        .output()
        .expect("node runs");
    assert!(
        out.status.success(),
        "the ECS field definitions are not installed at {flat}: run bash scripts/test \
         (or scripts/reference_producers.sh)\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The JSON value fits the ECS type.
fn fits(ecs_type: &str, value: &Value) -> bool {
    match ecs_type {
        "keyword" | "constant_keyword" | "wildcard" | "match_only_text" | "text" | "ip"
        | "version" => value.is_string(),
        "date" => is_iso_millis(value),
        "long" | "integer" | "short" | "byte" | "unsigned_long" => value.is_u64() || value.is_i64(),
        "float" | "double" | "scaled_float" | "half_float" => value.is_number(),
        "boolean" => value.is_boolean(),
        "object" | "flattened" | "nested" => value.is_object(),
        _ => false,
    }
}

fn ecs_schema() -> spanline_core::SchemaBuilder {
    Schema::builder(Preset::Ecs)
        .dotted_targets(true)
        .with_source_location(true)
}

#[test]
fn ecs_preset_writes_ecs_fields_with_their_types() {
    let fields = ecs_fields();
    let schema = ecs_schema()
        .service("billing")
        .hostname("web-1")
        .with_hostname();
    let mut lines = spanline_testkit::capture_json_with(schema, || {
        let _request = info_span!(
            "request",
            request_id = "r-1",
            trace_id = "4bf92f3577b34da6a3ce929d0e0e4736",
            span_id = "00f067aa0ba902b7",
            user_id = "u-42",
        )
        .entered();
        let err = QueryFailed(TimedOut);
        error!(target: "myapp::api", rows = 3, error = &err as &dyn Error, "db call failed");
    });
    let line = lines.remove(0);
    let doc = expand(&line);
    // Each key spanline maps is an ECS field, and its value fits the type.
    let mapped = [
        "@timestamp",
        "message",
        "log.level",
        "log.logger",
        "log.origin.file.name",
        "log.origin.file.line",
        "ecs.version",
        "process.pid",
        "host.hostname",
        "service.name",
        "trace.id",
        "span.id",
        "user.id",
        "http.request.id",
        "error.message",
        "error.type",
        "error.stack_trace",
    ];
    for path in mapped {
        let value = get(&doc, path).unwrap_or_else(|| panic!("no {path} in {line:?}"));
        let ecs_type = fields[path]
            .as_str()
            .unwrap_or_else(|| panic!("{path} is not an ECS field"));
        assert!(
            fits(ecs_type, value),
            "{path}: {value} is not an ECS {ecs_type}"
        );
    }
    // Everything else on the line is the event's own field.
    for (path, _) in leaves(&doc) {
        assert!(
            mapped.contains(&path.as_str()) || path == "rows",
            "unexpected {path}"
        );
    }
    assert_eq!(line["error.type"], "QueryFailed");
    assert_eq!(
        line["error.stack_trace"],
        "QueryFailed: query failed\nCaused by: TimedOut: timed out after 5s"
    );
}

/// Leaves ecs-logging writes and spanline does not (tracing knows no
/// function or thread ids here, and the message is not repeated).
const ONLY_ECS_LOGGING: &[&str] = &[
    "log.original",
    "log.origin.function",
    "process.name",
    "process.thread.id",
    "process.thread.name",
];

#[test]
fn ecs_preset_writes_what_ecs_logging_writes() {
    let fields = ecs_fields();
    let ours = spanline_lines(ecs_schema().build());
    let theirs = reference_lines("ecs");
    for (o, t) in pairs(&ours, &theirs, "message") {
        let (o, t) = (expand(o), expand(t));
        for (path, value) in leaves(&t) {
            if ONLY_ECS_LOGGING.contains(&path.as_str()) {
                continue;
            }
            let mine = get(&o, &path).unwrap_or_else(|| panic!("no {path} in {o:?}"));
            let same = match path.as_str() {
                "@timestamp" => is_iso_millis(mine) && is_iso_millis(&value),
                // ECS 8 against ecs-logging's 1.6; each process its pid; a
                // crate-relative path against a base name.
                "ecs.version" | "process.pid" | "log.origin.file.name" | "log.origin.file.line" => {
                    mine.is_string() == value.is_string() && mine.is_number() == value.is_number()
                }
                // Python's level name against tracing's.
                "log.level" if value == "warning" => mine == "warn",
                _ => mine == &value,
            };
            assert!(same, "{path}: ours {mine}, ecs-logging's {value}");
        }
        for (path, value) in leaves(&o) {
            if get(&t, &path).is_some() {
                continue;
            }
            // Ours only: ECS fields, or values ecs-logging leaves out
            // (`null`, `{}`).
            let ecs = fields.get(&path).and_then(Value::as_str);
            assert!(
                ecs.is_some_and(|ty| fits(ty, &value)) || value.is_null() || value == json!({}),
                "{path}: {value} is ours only and not an ECS field"
            );
        }
    }
}
