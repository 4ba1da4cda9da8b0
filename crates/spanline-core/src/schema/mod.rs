//! The shape of a JSON line, and the encoder that writes one event into it.
//!
//! It lives in core so that every line sink (JSON, Redis, yours) writes the
//! same bytes for the same schema, and can share them (see
//! [`LineLayer`](crate::LineLayer)). The rooms: `preset` (the presets as
//! data), `builder`, `flat` (the event's fields and the flattened context)
//! and `nested` (tracing-subscriber's `span`/`spans`).

mod builder;
mod callsite;
mod errors;
mod flat;
mod nested;
pub(crate) mod preset;

use std::sync::Arc;

use tracing_core::{Event, Metadata, Subscriber};
use tracing_log::NormalizeEvent;
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;

pub use builder::SchemaBuilder;
pub use errors::{ErrorStyle, ParseErrorStyleError};
pub use preset::{ParsePresetError, Preset, ReservedKey};

use crate::event::Clock;
use crate::fields::ValueSink;
use crate::keys::{KeyParts, KeySet};
use crate::time::{Precision, Timestamp};
use flat::EventVisitor;
use preset::{write_level, LevelStyle, Reserved};

/// The ECS version the `Ecs` preset declares.
pub(crate) const ECS_VERSION: &str = "8.11.0";

/// The shape of one JSON line, and its encoder.
///
/// Cheap to clone: clones share one identity, which is what lets several
/// line sinks share one encoded line ([`LineLayer`](crate::LineLayer)).
///
/// # Key precedence
///
/// A line never holds the same key twice. When two sources define one key:
/// reserved keys (timestamp, level, message, target and the preset's own) >
/// event fields > the nearest span > its ancestors > keys set with
/// [`set`](crate::set) > static fields. A user field that collides with a
/// reserved key is kept as `fields.<key>`; a context value shadowed by an
/// event field or a nearer span is left out of that line.
///
/// No key is both a value and, followed by a dot, the start of another key
/// (`a` beside `a.b`, `log` beside ECS's `log.level`): Elasticsearch,
/// OpenSearch and Datadog expand dotted keys into objects, and reject such
/// a line. The key written later is renamed `fields.<key>` as in a
/// collision; a user key named `fields` is written `fields_`.
///
/// # Encoding
///
/// Strings are escaped (`"`, `\`, control characters C0 and C1, DEL,
/// U+2028, U+2029 and the bidi overrides), in keys, values and inside JSON
/// values alike; numbers follow
/// the [`NumberPolicy`](crate::NumberPolicy); `Debug` values become strings; byte slices become
/// lower-case hex strings; an error recorded with `record_error` becomes its
/// `Display` plus `<field>_sources`, the chain of `source()` messages (no
/// dot, so `error` is not also an object).
/// Records from the `log` crate take their target, file and line from the
/// `log.*` fields, which are not printed.
///
/// ```
/// use spanline_core::{Clock, Preset, Schema, Timestamp};
/// let schema = Schema::builder(Preset::Structlog)
///     .static_field("service", "billing")
///     .clock(Clock::fixed(Timestamp::from_unix(0, 0)))
///     .build();
/// assert_eq!(schema.preset(), Preset::Structlog);
/// ```
#[derive(Clone, Debug)]
pub struct Schema {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    id: u64,
    preset: Preset,
    /// The reserved keys' names, indexed by `ReservedKey as usize`.
    names: [String; 4],
    /// Pre-escaped `"key":` for timestamp, level, message, target.
    key_ts: Vec<u8>,
    key_level: Vec<u8>,
    key_message: Vec<u8>,
    key_target: Vec<u8>,
    /// Every top-level key the schema writes itself.
    reserved: Reserved,
    level_style: LevelStyle,
    precision: Precision,
    values: ValueSink,
    clock: Clock,
    /// Fixed fragments after the target, each starting with `,`.
    head: Vec<u8>,
    /// `(key, encoded value)`, written last, each unless shadowed.
    statics: Vec<(String, String)>,
    /// The file and line keys, when source locations are on.
    source_location: Option<[String; 2]>,
    /// Targets with `.` for `::`.
    dotted_targets: bool,
    /// How error fields are written.
    errors: ErrorStyle,
    /// Set only for presets that write Cloud Logging's trace.
    gcp_project: Option<String>,
    /// Keys whose values are written as `"[redacted]"`.
    redact: crate::Redact,
}

impl Schema {
    /// Starts a schema from a preset.
    ///
    /// ```
    /// let schema = spanline_core::Schema::builder(spanline_core::Preset::Bunyan).service("svc").build();
    /// assert_eq!(schema.preset(), spanline_core::Preset::Bunyan);
    /// ```
    pub fn builder(preset: Preset) -> SchemaBuilder {
        SchemaBuilder::new(preset)
    }

    /// The preset this schema was built from.
    ///
    /// ```
    /// assert_eq!(spanline_core::Schema::default().preset(), spanline_core::Preset::Flat);
    /// ```
    pub fn preset(&self) -> Preset {
        self.inner.preset
    }

    /// An identity shared by clones of this schema, and by no other schema.
    ///
    /// ```
    /// let a = spanline_core::Schema::default();
    /// assert_eq!(a.clone().id(), a.id());
    /// assert_ne!(spanline_core::Schema::default().id(), a.id());
    /// ```
    pub fn id(&self) -> u64 {
        self.inner.id
    }

    /// The schema's clock.
    ///
    /// ```
    /// let at = spanline_core::Timestamp::from_unix(0, 0);
    /// let schema = spanline_core::Schema::builder(spanline_core::Preset::Flat).clock(spanline_core::Clock::fixed(at)).build();
    /// assert_eq!(schema.clock().now(), at);
    /// ```
    pub fn clock(&self) -> Clock {
        self.inner.clock
    }

    /// The key the schema writes for `key`, after renames.
    ///
    /// ```
    /// let schema = spanline_core::Schema::builder(spanline_core::Preset::Ecs).build();
    /// assert_eq!(schema.key_name(spanline_core::ReservedKey::Timestamp), "@timestamp");
    /// ```
    pub fn key_name(&self, key: ReservedKey) -> &str {
        &self.inner.names[key as usize]
    }
}

impl Default for Schema {
    fn default() -> Self {
        Schema::builder(Preset::Flat).build()
    }
}

impl From<Preset> for Schema {
    /// A schema with the preset's defaults.
    ///
    /// ```
    /// let schema = spanline_core::Schema::from(spanline_core::Preset::Ecs);
    /// assert_eq!(schema.preset(), spanline_core::Preset::Ecs);
    /// ```
    fn from(preset: Preset) -> Self {
        Schema::builder(preset).build()
    }
}

impl From<SchemaBuilder> for Schema {
    /// Builds the schema, so that a builder can be passed where a schema is
    /// wanted.
    ///
    /// ```
    /// use spanline_core::{Preset, Schema};
    /// let schema: Schema = Schema::builder(Preset::Structlog).service("api").into();
    /// assert_eq!(schema.preset(), Preset::Structlog);
    /// ```
    fn from(builder: SchemaBuilder) -> Self {
        builder.build()
    }
}

impl Schema {
    /// Encodes `event` as one JSON line, with its span context, into `buf`
    /// (appended, ending with `\n`), at time `at`.
    ///
    /// Never fails: every value has a JSON form. Line sinks get this line
    /// from [`LineLayer`](crate::LineLayer) without calling it; call it
    /// yourself in a layer that needs the bytes some other way.
    ///
    /// ```
    /// use tracing_subscriber::{layer::Context, prelude::*, registry::LookupSpan, Layer};
    /// struct Mine(spanline_core::Schema);
    /// impl<S: tracing::Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Mine {
    ///     fn on_event(&self, event: &tracing::Event<'_>, ctx: Context<'_, S>) {
    ///         let mut line = Vec::new();
    ///         self.0.encode_event(event, &ctx, self.0.clock().now(), &mut line);
    ///         assert!(line.ends_with(b"}\n"));
    ///     }
    /// }
    /// let subscriber = tracing_subscriber::registry().with(spanline_core::ContextLayer::new()).with(Mine(Default::default()));
    /// tracing::subscriber::with_default(subscriber, || tracing::info!("hello"));
    /// ```
    pub fn encode_event<S>(
        &self,
        event: &Event<'_>,
        ctx: &Context<'_, S>,
        at: Timestamp,
        buf: &mut Vec<u8>,
    ) where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        let inner = &*self.inner;
        let normalized = event.normalized_metadata();
        let meta: &Metadata<'_> = normalized.as_ref().unwrap_or_else(|| event.metadata());
        let nested = inner.preset.spec().nested;

        let mut keys = KeySet::new();
        if inner.reserved.shadows_prefixed {
            for r in &inner.reserved.names {
                keys.insert(KeyParts::plain(r));
            }
        }

        buf.push(b'{');
        buf.extend_from_slice(&inner.key_ts);
        buf.push(b'"');
        at.write_rfc3339(buf, inner.precision);
        buf.extend_from_slice(b"\",");
        buf.extend_from_slice(&inner.key_level);
        // Critical: an ERROR event with `critical = true`. Looked for only
        // on a callsite that has the field.
        let critical = *meta.level() == tracing_core::Level::ERROR
            && !nested
            && meta.fields().field(preset::CRITICAL).is_some()
            && is_critical(event);
        write_level(buf, *meta.level(), inner.level_style, critical);
        if nested {
            buf.extend_from_slice(b",\"fields\":{");
        }

        // One pass over the event's fields. The header (message, target and
        // the preset's fixed keys) is written when the message comes by,
        // which is first for events from tracing's macros; otherwise it is
        // inserted in front of the fields already written.
        // Nested lines keep their fields' keys apart (inside `fields`).
        let mut field_keys = nested.then(KeySet::new);
        let no_reserved = Reserved::default();
        let reserved = if nested {
            &no_reserved
        } else {
            &inner.reserved
        };
        // A `log` record's metadata is made per record: decided per field.
        let callsite_keys = normalized
            .is_none()
            .then(|| callsite::keys_of(inner.id, event.metadata(), reserved))
            .flatten();
        let mut visitor = EventVisitor {
            schema: self,
            meta,
            start: buf.len(),
            header_done: false,
            values: inner.values,
            buf,
            keys: match field_keys.as_mut() {
                Some(field_keys) => field_keys,
                None => &mut keys,
            },
            reserved,
            callsite_keys: callsite_keys.as_deref(),
            is_log: normalized.is_some(),
            redact: (!inner.redact.is_empty()).then_some(&inner.redact),
            critical,
        };
        event.record(&mut visitor);
        let (start, header_done) = (visitor.start, visitor.header_done);
        if !header_done {
            self.insert_header(buf, start, meta, None);
            // Nested fields without a message: the first field's comma goes.
            if nested && buf.get(start) == Some(&b',') {
                buf.remove(start);
            }
        }
        if nested {
            buf.push(b'}');
            self.write_target(meta, buf);
        }

        // The context is looked up only now, after the event's fields are
        // written: field `Debug` impls are user code that may log or record,
        // and must not run while a span lock is held.
        let node = crate::context::event_node(ctx, event);
        let dynamic = node.as_ref().and_then(|n| n.dynamic().load());
        let redact = &inner.redact;
        // OpenTelemetry's ids come before the context, so that they win
        // over a `trace_id` the context holds (the same id once the trace
        // continues an incoming `traceparent`), and lose to event fields.
        #[cfg(feature = "opentelemetry")]
        let otel = crate::context::stored_event_otel(event);
        #[cfg(feature = "opentelemetry")]
        let otel = otel.as_ref().map(|ids| {
            flat::write_user_pair(
                buf,
                &mut keys,
                &inner.reserved,
                "trace_id",
                &ids.trace_json(),
            );
            flat::write_user_pair(buf, &mut keys, &inner.reserved, "span_id", &ids.span_json());
            (ids.trace_id(), ids.span_id())
        });
        #[cfg(not(feature = "opentelemetry"))]
        let otel = None;
        if nested {
            nested::write_spans(event, ctx, buf, redact);
        } else if let Some(node) = node.as_deref() {
            self.write_context(node, buf, &mut keys);
        }
        self.write_gcp_trace(node.as_deref(), otel, buf);
        for (k, v) in dynamic.iter().flat_map(|d| d.iter()).flat_map(|d| d.iter()) {
            flat::write_user_pair_with(buf, &mut keys, &inner.reserved, k, |buf| {
                // The mask, or the value with hidden keys inside it masked.
                redact.write_json(buf, k, v.as_bytes());
            });
        }
        for (k, v) in &inner.statics {
            if !inner.reserved.contains(k) {
                flat::write_pair(
                    buf,
                    &mut keys,
                    KeyParts::plain(k),
                    redact.json(k, v.as_bytes()),
                );
            }
        }
        buf.extend_from_slice(b"}\n");
    }
}

/// The event's `critical` field is `true`.
fn is_critical(event: &Event<'_>) -> bool {
    struct Find(bool);
    impl tracing_core::field::Visit for Find {
        fn record_bool(&mut self, field: &tracing_core::field::Field, value: bool) {
            if field.name() == preset::CRITICAL {
                self.0 = value;
            }
        }
        fn record_debug(&mut self, _: &tracing_core::field::Field, _: &dyn std::fmt::Debug) {}
    }
    let mut find = Find(false);
    event.record(&mut find);
    find.0
}
