//! Redaction at any depth for context values that arrive as JSON (a
//! `RawJson` bound with `set`, a forwarded child's context through
//! `with_event_context`), and the `ContextLayer`'s own keys, found through
//! the subscriber. (JSON values logged with `spanline_core::json` need the
//! `serde` feature: see crates/spanline-json/tests/it/redact.rs.)

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report

use std::sync::{Arc, Mutex};

use spanline_core::{
    ContextLayer, LineEvent, LineLayer, LineSink, Preset, RawJson, Redact, Schema,
};
use tracing_subscriber::prelude::*;

#[derive(Clone, Default)]
struct Memory(Arc<Mutex<Vec<u8>>>);

impl LineSink for Memory {
    fn accept(&self, line: &[u8], _event: &LineEvent<'_>) {
        self.0.lock().unwrap().extend_from_slice(line);
    }
}

impl Memory {
    fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }
}

fn lines(preset: Preset, redact: &[&str], f: impl FnOnce()) -> String {
    let memory = Memory::default();
    let subscriber = tracing_subscriber::registry()
        .with(ContextLayer::new())
        .with(LineLayer::new(
            Schema::builder(preset).redact(redact).build(),
            memory.clone(),
        ));
    tracing::subscriber::with_default(subscriber, f);
    memory.text()
}

#[test]
fn json_context_values_are_masked_inside_in_every_preset() {
    for preset in Preset::ALL {
        let text = lines(preset, &["password", "*token*"], || {
            let _span = tracing::info_span!("job", job_id = "j-1").entered();
            spanline_core::set(
                "bound",
                RawJson(r#"[{"api_token":"LEAK-1","keep":"kept-1"}]"#),
            )
            .unwrap();
            spanline_core::with_event_context(
                &[("child", r#"{"db":{"password":"LEAK-2","host":"kept-2"}}"#)],
                || tracing::info!("forwarded"),
            );
        });
        assert!(!text.contains("LEAK"), "{preset:?}: {text}");
        assert!(
            text.contains(r#""bound":[{"api_token":"[redacted]","keep":"kept-1"}]"#),
            "{preset:?}: {text}"
        );
        if preset != Preset::Nested {
            // The Nested preset writes spans, not the forwarded context.
            assert!(
                text.contains(r#""child":{"db":{"password":"[redacted]","host":"kept-2"}}"#),
                "{preset:?}: {text}"
            );
        }
    }
    // Nothing hidden: as they came.
    let text = lines(Preset::Flat, &[], || {
        let _span = tracing::info_span!("job").entered();
        spanline_core::set("bound", RawJson(r#"{"password":"p"}"#)).unwrap();
        tracing::info!("plain");
    });
    assert!(text.contains(r#""bound":{"password":"p"}"#), "{text}");
}

#[test]
fn separators_in_json_from_elsewhere_are_escaped() {
    let text = lines(Preset::Flat, &[], || {
        let _span = tracing::info_span!("job").entered();
        spanline_core::set("raw", RawJson("\"a\u{2028}b\"")).unwrap();
        spanline_core::with_event_context(&[("child", "[\"c\u{2029}d\u{202e}\"]")], || {
            tracing::info!(v = "e\u{2028}f", "g\u{2029}h")
        });
    });
    assert!(
        !text.contains('\u{2028}') && !text.contains('\u{2029}'),
        "{text}"
    );
    for escaped in [
        r#""raw":"a\u2028b""#,
        r#""child":["c\u2029d\u202e"]"#,
        r#""v":"e\u2028f""#,
        r#""message":"g\u2029h""#,
    ] {
        assert!(text.contains(escaped), "{escaped} in {text}");
    }
}

#[test]
fn the_context_layer_s_keys_are_found_through_the_subscriber() {
    assert!(
        Redact::current().is_empty(),
        "no subscriber, nothing hidden"
    );
    let layer = ContextLayer::new().redact(["user_id", "*_secret"]);
    let subscriber = tracing_subscriber::registry()
        .with(layer)
        .with(LineLayer::new(Schema::default(), Memory::default()));
    tracing::subscriber::with_default(subscriber, || {
        let current = Redact::current();
        assert!(current.hides("USER_ID") && current.hides("db_secret"));
        assert!(!current.hides("request_id"));
        // The store keeps values as they are: application code reads them.
        let _span = tracing::info_span!("request", user_id = 7).entered();
        let view = spanline_core::CtxView::current().unwrap();
        assert_eq!(view.get("user_id").unwrap().as_json(), "7");
    });
    // A subscriber without keys: nothing hidden.
    let plain = tracing_subscriber::registry().with(ContextLayer::new());
    tracing::subscriber::with_default(plain, || assert!(Redact::current().is_empty()));
}
