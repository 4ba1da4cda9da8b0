//! Property test: in every preset, no line has a key that is a value and
//! also, followed by a dot, the start of another key (Elasticsearch and
//! OpenSearch expand dotted keys into objects and reject such a line), and
//! no event field is lost on the way: a key that would conflict is renamed
//! `fields.<key>`.
//!
//! Field names are drawn at random from a pool of dotted, reserved and
//! plain names, so events and spans are made on callsites built at run
//! time (tracing's macros need names known at compile time).

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report

use std::sync::OnceLock;

use proptest::prelude::*;
use serde_json::{Map, Value};
use spanline_core::{ContextLayer, Preset, Schema};
use spanline_json::JsonLayer;
use spanline_testkit::Capture;
use tracing_core::callsite::{Callsite, Identifier};
use tracing_core::field::{FieldSet, Value as FieldValue};
use tracing_core::metadata::Kind;
use tracing_core::{Event, Interest, Level, Metadata};
use tracing_subscriber::prelude::*;

/// Names that collide with each other, with reserved keys of the presets,
/// and with the keys spanline writes itself.
const NAMES: &[&str] = &[
    "a",
    "a.b",
    "a.b.c",
    "b",
    "b.c",
    "error",
    "error_sources",
    "err",
    "log",
    "log.level",
    "log.origin",
    "fields",
    "fields.level",
    "fields.a",
    "level",
    "timestamp",
    "time",
    "target",
    "logger",
    "event",
    "msg",
    "ecs",
    "ecs.version",
    "@timestamp",
    "severity",
    "logging",
    "logging.googleapis",
    "service",
    "trace_id",
    "span",
    "spans",
    "name",
    "pid",
    "v",
    "x.y",
    "x",
];

/// A callsite made at run time, leaked (a test: a few hundred of them).
struct Dyn(OnceLock<Metadata<'static>>);

impl Callsite for Dyn {
    fn set_interest(&self, _: Interest) {}
    fn metadata(&self) -> &Metadata<'static> {
        self.0.get().expect("set before use")
    }
}

fn callsite(names: &[&'static str], kind: Kind) -> &'static Metadata<'static> {
    let cs: &'static Dyn = Box::leak(Box::new(Dyn(OnceLock::new())));
    let names: &'static [&'static str] = Box::leak(names.to_vec().into_boxed_slice());
    let fields = FieldSet::new(names, Identifier(cs));
    let meta = Metadata::new("dyn", "app", Level::INFO, None, None, None, fields, kind);
    let meta = cs.0.get_or_init(|| meta);
    tracing_core::callsite::register(cs);
    meta
}

#[derive(Debug, Clone)]
enum Val {
    Text(String),
    Num(i64),
    Error(String, String),
}

#[derive(Debug)]
struct Chain(String, Option<Box<Chain>>);
impl std::fmt::Display for Chain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}
impl std::error::Error for Chain {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.1
            .as_deref()
            .map(|c| c as &(dyn std::error::Error + 'static))
    }
}

/// Dispatches an event (or opens a span) of `fields` on a new callsite;
/// `message` first for events, as tracing's macros write it.
fn with_values<R>(
    fields: &[(&'static str, Val)],
    kind: Kind,
    f: impl FnOnce(&'static Metadata<'static>, &tracing_core::field::ValueSet<'_>) -> R,
) -> R {
    let event = kind == Kind::EVENT;
    let mut names: Vec<&'static str> = Vec::new();
    if event {
        names.push("message");
    }
    names.extend(fields.iter().map(|(n, _)| *n));
    let meta = callsite(&names, kind);
    let texts: Vec<Option<String>> = fields
        .iter()
        .map(|(_, v)| match v {
            Val::Text(s) => Some(s.clone()),
            _ => None,
        })
        .collect();
    let nums: Vec<i64> = fields
        .iter()
        .map(|(_, v)| if let Val::Num(n) = v { *n } else { 0 })
        .collect();
    let errors: Vec<Option<Chain>> = fields
        .iter()
        .map(|(_, v)| match v {
            Val::Error(top, cause) => Some(Chain(
                top.clone(),
                Some(Box::new(Chain(cause.clone(), None))),
            )),
            _ => None,
        })
        .collect();
    let message = format_args!("m");
    let mut values: Vec<Option<&dyn FieldValue>> = Vec::new();
    if event {
        values.push(Some(&message));
    }
    let error_refs: Vec<Option<&(dyn std::error::Error + 'static)>> = errors
        .iter()
        .map(|e| e.as_ref().map(|c| c as &(dyn std::error::Error + 'static)))
        .collect();
    for (i, (_, v)) in fields.iter().enumerate() {
        values.push(Some(match v {
            Val::Text(_) => texts[i].as_ref().unwrap() as &dyn FieldValue,
            Val::Num(_) => &nums[i] as &dyn FieldValue,
            Val::Error(..) => error_refs[i].as_ref().unwrap() as &dyn FieldValue,
        }));
    }
    let set = meta.fields().value_set_all(&values);
    f(meta, &set)
}

fn value() -> impl Strategy<Value = Val> {
    prop_oneof![
        "[a-z]{0,4}".prop_map(Val::Text),
        any::<i64>().prop_map(Val::Num),
        ("[a-z]{1,4}", "[a-z]{1,4}").prop_map(|(a, b)| Val::Error(a, b)),
    ]
}

/// Distinct names from the pool, each with a value.
fn fields() -> impl Strategy<Value = Vec<(&'static str, Val)>> {
    prop::collection::btree_map(prop::sample::select(NAMES), value(), 0..8)
        .prop_map(|m| m.into_iter().collect())
}

fn preset() -> impl Strategy<Value = Preset> {
    prop::sample::select(Preset::ALL.to_vec())
}

/// Every key of `object` and of the objects inside it (not arrays' items:
/// `spans` holds one object per span, checked each on its own).
fn check(object: &Map<String, Value>, line: &str) -> Result<(), TestCaseError> {
    for key in object.keys() {
        let path = format!("{key}.");
        if let Some(other) = object.keys().find(|k| k.starts_with(&path)) {
            return Err(TestCaseError::fail(format!(
                "`{key}` is a value and `{other}` a path under it: {line}"
            )));
        }
    }
    for value in object.values() {
        match value {
            Value::Object(inner) => check(inner, line)?,
            Value::Array(items) => {
                for item in items {
                    if let Value::Object(inner) = item {
                        check(inner, line)?;
                    }
                }
            }
            _ => {}
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn no_key_is_both_a_value_and_a_dotted_path_and_no_event_field_is_lost(
        preset in preset(),
        spans in prop::collection::vec(fields(), 0..3),
        event in fields(),
        source_location in any::<bool>(),
    ) {
        let capture = Capture::new();
        let mut schema = Schema::builder(preset).service("svc").static_field("x.y", "static");
        if preset == Preset::Gcp {
            schema = schema.gcp_project("p");
        }
        if source_location {
            schema = schema.with_source_location(true);
        }
        let subscriber = tracing_subscriber::registry()
            .with(ContextLayer::new())
            .with(JsonLayer::builder().schema(schema).with_writer(capture.clone()).build());
        tracing::subscriber::with_default(subscriber, || {
            let entered: Vec<_> = spans
                .iter()
                .map(|fields| with_values(fields, Kind::SPAN, tracing::Span::new).entered())
                .collect();
            with_values(&event, Kind::EVENT, |meta, values| {
                tracing_core::dispatcher::get_default(|d| d.event(&Event::new(meta, values)));
            });
            drop(entered);
        });
        let text = capture.text();
        let line = spanline_testkit::parse_strict(text.trim_end()).map_err(TestCaseError::fail)?;
        check(&line, &text)?;
        // Every event field is somewhere: under its name, or renamed.
        let holder = match (preset, line.get("fields")) {
            (Preset::Nested, Some(Value::Object(fields))) => fields,
            _ => &line,
        };
        let prefixed = |key: &str| ["", "fields.", "fields.fields."].map(|p| format!("{p}{key}"));
        for (name, value) in &event {
            // Under its name, or the preset's (ECS's `trace.id`), or
            // structlog's `exception` for an error.
            let is_error = matches!(value, Val::Error(..));
            let written = match *name {
                "fields" => "fields_",
                "error" | "exception" if is_error && preset == Preset::Structlog => "exception",
                other => preset.aliases().iter().find(|(k, _)| *k == other).map_or(other, |(_, a)| *a),
            };
            let found = prefixed(written).iter().any(|k| holder.contains_key(k));
            prop_assert!(found, "{} lost: {}", name, text);
            if let Val::Error(_, cause) = value {
                // Its chain too, in the preset's shape (a field named
                // `<name>_sources` may hold the plain key, and the chain be
                // renamed).
                let has_cause = |key: &str| {
                    prefixed(key).iter().any(|k| match holder.get(k) {
                        Some(Value::String(text)) => text.contains(&format!(": {cause}")) || text.ends_with(cause.as_str()),
                        Some(Value::Array(items)) => items == &[Value::from(cause.clone())],
                        _ => false,
                    })
                };
                let found = match preset {
                    Preset::Structlog => has_cause(written),
                    Preset::Ecs if *name == "error" => has_cause("error.stack_trace"),
                    // The chain keeps the field's own name.
                    _ => has_cause(&format!("{name}_sources")),
                };
                prop_assert!(found, "{}'s chain lost: {}", name, text);
            }
        }
    }
}
