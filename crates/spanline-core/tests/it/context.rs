//! The context store, read through `CtxView`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report

use spanline_core::{ContextLayer, CtxView};
use tracing::{field, info_span};
use tracing_subscriber::prelude::*;

fn with_context(f: impl FnOnce()) {
    let subscriber = tracing_subscriber::registry().with(ContextLayer::new());
    tracing::subscriber::with_default(subscriber, f);
}

fn get(key: &str) -> Option<String> {
    CtxView::current()?
        .get(key)
        .map(|v| v.as_json().to_string())
}

#[test]
fn nearest_span_wins_and_order_is_root_first() {
    with_context(|| {
        let _a = info_span!("a", x = 1, y = 1).entered();
        let _b = info_span!("b", y = 2, z = 2).entered();
        let _c = info_span!("c").entered(); // no fields: shares b's context
        let view = CtxView::current().unwrap();
        let pairs: Vec<(String, String)> = view
            .iter()
            .map(|(k, v)| (k.into_owned(), v.as_json().to_string()))
            .collect();
        assert_eq!(
            pairs,
            [
                ("x".into(), "1".into()),
                ("y".into(), "2".into()),
                ("z".into(), "2".into())
            ]
        );
    });
}

#[test]
fn late_fields_are_shared_with_existing_descendants() {
    with_context(|| {
        let root = info_span!("root", user_id = field::Empty);
        let child = info_span!(parent: &root, "child", step = 1);
        let grandchild = info_span!(parent: &child, "grandchild", step = 2);
        assert_eq!(
            grandchild.in_scope(|| get("user_id")),
            None,
            "unset late field is absent"
        );
        root.record("user_id", "alice");
        assert_eq!(
            grandchild.in_scope(|| get("user_id")).as_deref(),
            Some("\"alice\"")
        );
        assert_eq!(
            child.in_scope(|| get("user_id")).as_deref(),
            Some("\"alice\"")
        );
    });
}

#[test]
fn recording_a_fixed_field_updates_later_lines_of_that_span() {
    with_context(|| {
        let span = info_span!("s", status = 0);
        let before = info_span!(parent: &span, "before");
        span.record("status", 200);
        assert_eq!(span.in_scope(|| get("status")).as_deref(), Some("200"));
        // A fieldless child shares the node it saw at creation.
        assert_eq!(before.in_scope(|| get("status")).as_deref(), Some("0"));
    });
}

#[test]
fn set_fills_a_declared_empty_field_or_binds_on_the_root() {
    with_context(|| {
        let root = info_span!("request", request_id = "r-1", user_id = field::Empty);
        let _r = root.enter();
        let task = info_span!("task", job = "j");
        {
            let _inner = info_span!("inner", k = 1).entered();
            spanline_core::set("user_id", 7u32).unwrap();
            spanline_core::set("tenant", "acme").unwrap();
            spanline_core::set("tenant", "acme-2").expect("setting again replaces");
        }
        // Both reach spans that existed before the calls.
        assert_eq!(task.in_scope(|| get("user_id")).as_deref(), Some("7"));
        assert_eq!(
            task.in_scope(|| get("tenant")).as_deref(),
            Some("\"acme-2\"")
        );
        // A key a span declares beats a bound one.
        let _shadow = info_span!("shadow", tenant = "span").entered();
        assert_eq!(get("tenant").as_deref(), Some("\"span\""));
    });
}

#[test]
fn outside_any_span_there_is_no_context() {
    with_context(|| {
        assert!(CtxView::current().is_none());
        assert_eq!(
            spanline_core::set("k", "v"),
            Err(spanline_core::SetError::NoSpan)
        );
    });
    // Without a ContextLayer at all.
    tracing::subscriber::with_default(tracing_subscriber::registry(), || {
        let _s = info_span!("s", a = 1).entered();
        assert!(CtxView::current().is_none());
        assert_eq!(
            spanline_core::set("k", "v"),
            Err(spanline_core::SetError::NoContextLayer)
        );
    });
}

#[test]
fn values_decode_as_strings() {
    with_context(|| {
        let _s = info_span!("s", id = "a\"b\\c\n", n = 5, ok = true, d = ?vec![1, 2]).entered();
        let view = CtxView::current().unwrap();
        assert_eq!(view.get("id").unwrap().as_str().unwrap(), "a\"b\\c\n");
        assert_eq!(view.get("n").unwrap().as_str(), None);
        assert_eq!(view.get("n").unwrap().to_string(), "5");
        assert_eq!(view.get("ok").unwrap().as_json(), "true");
        assert_eq!(view.get("d").unwrap().to_string(), "[1, 2]");
    });
}

/// An inner span's field declared `Empty` and not recorded yet hides
/// nothing: the outer span's value shows until the inner one is recorded
/// (`#[instrument(fields(user_id = Empty))]` under a request span that has
/// `user_id`). Failed before: the line had no `user_id` at all.
#[test]
fn an_empty_field_hides_nothing_until_it_is_recorded() {
    with_context(|| {
        let _request = info_span!("request", user_id = 1).entered();
        let inner = info_span!("handler", user_id = tracing::field::Empty);
        let _i = inner.enter();
        let _deeper = info_span!("db", user_id = tracing::field::Empty).entered();
        assert_eq!(get("user_id").as_deref(), Some("1"));
        inner.record("user_id", 2);
        assert_eq!(get("user_id").as_deref(), Some("2"));
        spanline_core::set("user_id", 3).unwrap(); // fills the nearest Empty
        assert_eq!(get("user_id").as_deref(), Some("3"));
        let keys: Vec<_> = spanline_core::CtxView::current()
            .unwrap()
            .iter()
            .map(|(k, v)| format!("{k}={}", v.as_json()))
            .collect();
        assert_eq!(keys, ["user_id=3"], "one key, once");
    });
}
