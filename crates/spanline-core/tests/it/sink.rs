//! LineLayer: one encoding per event and schema, shared by every line sink
//! in any order; the room check before encoding; oversize lines refused and
//! counted. (Re-entrant events need the global default dispatcher: see
//! crates/spanline-json/tests/reentrancy.rs, through JsonLayer.)

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report

use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use spanline_core::{ContextLayer, LineEvent, LineLayer, LineSink, Preset, Refusal, Schema};
use tracing_subscriber::prelude::*;

/// Keeps what it is offered, and what it was refused.
#[derive(Clone, Default)]
struct Memory {
    lines: Arc<Mutex<Vec<Vec<u8>>>>,
    refused: Arc<Mutex<Vec<Refusal>>>,
    jobs: Arc<Mutex<Vec<Option<String>>>>,
    max: Option<usize>,
    room: Option<Arc<AtomicUsize>>,
}

impl LineSink for Memory {
    fn ready(&self, _event: &LineEvent<'_>) -> bool {
        match &self.room {
            Some(room) => room
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok(),
            None => true,
        }
    }
    fn accept(&self, line: &[u8], event: &LineEvent<'_>) {
        self.lines.lock().unwrap().push(line.to_vec());
        self.jobs.lock().unwrap().push(event.job_id());
    }
    fn max_line(&self) -> usize {
        self.max.unwrap_or(usize::MAX)
    }
    fn refused(&self, refusal: Refusal, _event: &LineEvent<'_>) {
        self.refused.lock().unwrap().push(refusal);
    }
}

impl Memory {
    fn lines(&self) -> Vec<Vec<u8>> {
        self.lines.lock().unwrap().clone()
    }
}

/// A field value that counts how often it is formatted: once per encoding.
#[derive(Clone, Default)]
struct Counted(Arc<AtomicUsize>);

impl fmt::Debug for Counted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fetch_add(1, Ordering::SeqCst);
        f.write_str("counted")
    }
}

#[test]
fn sinks_on_one_schema_share_one_encoding_in_any_order() {
    let schema = Schema::from(Preset::Structlog);
    let (a, b) = (Memory::default(), Memory::default());
    let counted = Counted::default();
    let subscriber = tracing_subscriber::registry()
        .with(ContextLayer::new())
        .with(LineLayer::new(schema.clone(), a.clone()))
        .with(LineLayer::new(schema, b.clone()));
    tracing::subscriber::with_default(subscriber, || {
        let _job = tracing::info_span!("job", job_id = "build_1").entered();
        for i in 0..3 {
            tracing::info!(i, value = ?counted, "shared");
        }
    });
    assert_eq!(
        counted.0.load(Ordering::SeqCst),
        3,
        "one encoding per event"
    );
    assert_eq!(a.lines().len(), 3);
    assert_eq!(a.lines(), b.lines(), "byte-identical lines");
    let first = String::from_utf8(a.lines()[0].clone()).unwrap();
    assert!(first.ends_with("}\n") && first.contains(r#""event":"shared""#));
    assert_eq!(
        *a.jobs.lock().unwrap(),
        vec![Some("build_1".to_string()); 3]
    );
}

#[test]
fn sinks_on_different_schemas_encode_for_themselves() {
    let (a, b) = (Memory::default(), Memory::default());
    let counted = Counted::default();
    let subscriber = tracing_subscriber::registry()
        .with(ContextLayer::new())
        .with(LineLayer::new(Schema::from(Preset::Flat), a.clone()))
        .with(LineLayer::new(Schema::from(Preset::Flat), b.clone()));
    tracing::subscriber::with_default(subscriber, || {
        tracing::info!(value = ?counted, "twice");
    });
    assert_eq!(counted.0.load(Ordering::SeqCst), 2);
    assert_eq!(a.lines().len(), 1);
    assert_eq!(b.lines().len(), 1);
}

#[test]
fn a_sink_without_room_costs_no_encoding() {
    let room = Arc::new(AtomicUsize::new(1));
    let sink = Memory {
        room: Some(room),
        ..Memory::default()
    };
    let counted = Counted::default();
    let subscriber = tracing_subscriber::registry()
        .with(ContextLayer::new())
        .with(LineLayer::new(Schema::default(), sink.clone()));
    tracing::subscriber::with_default(subscriber, || {
        for _ in 0..3 {
            tracing::info!(value = ?counted, "maybe");
        }
    });
    assert_eq!(sink.lines().len(), 1);
    assert_eq!(
        counted.0.load(Ordering::SeqCst),
        1,
        "refused before encoding"
    );
}

#[test]
fn oversize_lines_are_refused_and_counted() {
    let sink = Memory {
        max: Some(200),
        ..Memory::default()
    };
    let layer = LineLayer::new(Schema::default(), sink.clone());
    let stats = layer.stats();
    let subscriber = tracing_subscriber::registry()
        .with(ContextLayer::new())
        .with(layer);
    tracing::subscriber::with_default(subscriber, || {
        tracing::info!("short");
        tracing::info!(big = "x".repeat(500), "long");
    });
    assert_eq!(sink.lines().len(), 1);
    assert_eq!(stats.oversize(), 1);
    let refused = sink.refused.lock().unwrap().clone();
    assert!(
        matches!(refused[..], [Refusal::Oversize { len }] if len > 500),
        "{refused:?}"
    );
}

#[test]
fn without_a_context_layer_each_sink_encodes_alone() {
    let (a, b) = (Memory::default(), Memory::default());
    let at = spanline_core::Timestamp::from_unix(0, 0);
    let schema = Schema::builder(Preset::Flat)
        .clock(spanline_core::Clock::fixed(at))
        .build();
    let counted = Counted::default();
    let subscriber = tracing_subscriber::registry()
        .with(LineLayer::new(schema.clone(), a.clone()))
        .with(LineLayer::new(schema, b.clone()));
    tracing::subscriber::with_default(subscriber, || {
        tracing::info!(n = 1, value = ?counted, "one");
        tracing::info!(n = 2, value = ?counted, "two");
    });
    // Nothing tells two events apart without the ContextLayer's count:
    // nothing is shared, and nothing is mixed up.
    assert_eq!(counted.0.load(Ordering::SeqCst), 4);
    assert_eq!(a.lines(), b.lines());
    assert_eq!(a.lines().len(), 2);
    assert_ne!(a.lines()[0], a.lines()[1]);
}

/// A sink composed *under* the context layer (its `on_event` runs before
/// the context layer's, as with `init()`'s `with_layer`) gets each event's
/// own context, and so does the shared line. Failed before: the context
/// was stored in `on_event`, so such a sink got the previous event's.
#[test]
fn a_sink_under_the_context_layer_gets_each_events_own_context() {
    let under = Memory::default();
    let over = Memory::default();
    let subscriber = tracing_subscriber::registry()
        .with(LineLayer::new(Schema::default(), under.clone()))
        .with(ContextLayer::new())
        .with(LineLayer::new(Schema::default(), over.clone()));
    let log = |i: u32| tracing::info!(i, "same callsite, same address");
    tracing::subscriber::with_default(subscriber, || {
        {
            let _a = tracing::info_span!("a", request_id = "a").entered();
            log(1);
        }
        log(2);
        {
            let _b = tracing::info_span!("b", request_id = "b", user_id = 7).entered();
            log(3);
        }
        log(4);
    });
    let contexts = |m: &Memory| -> Vec<(Option<String>, Option<u64>)> {
        m.lines()
            .iter()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_slice(l).unwrap();
                (
                    v["request_id"].as_str().map(str::to_string),
                    v["user_id"].as_u64(),
                )
            })
            .collect()
    };
    let expected = vec![
        (Some("a".to_string()), None),
        (None, None),
        (Some("b".to_string()), Some(7)),
        (None, None),
    ];
    assert_eq!(contexts(&under), expected);
    assert_eq!(contexts(&over), expected);
}

/// `with_event_context` keys beat every span and the static fields, as a
/// span's would (the pipe writes a child's context with it).
#[test]
fn an_event_context_beats_spans_and_static_fields() {
    let memory = Memory::default();
    let schema = spanline_core::Schema::builder(Preset::Flat)
        .service("svc")
        .build();
    let subscriber = tracing_subscriber::registry()
        .with(ContextLayer::new())
        .with(LineLayer::new(schema, memory.clone()));
    tracing::subscriber::with_default(subscriber, || {
        let _launch = tracing::info_span!("launch", k = "parent", name = "leaf").entered();
        spanline_core::with_event_context(&[("service", "\"v1\""), ("k", "\"child\"")], || {
            tracing::info!("forwarded")
        });
    });
    let line: serde_json::Value = serde_json::from_slice(&memory.lines()[0]).unwrap();
    assert_eq!(line["service"], "v1", "{line}");
    assert_eq!(line["k"], "child", "{line}");
    assert_eq!(line["name"], "leaf", "{line}");
}
