//! ContextSnapshot: round trips through serde, the environment and HTTP
//! headers, limits, and hostile input.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report

use std::collections::HashMap;

use spanline_context::{ContextSnapshot, SnapshotError, TraceParent};
use spanline_core::ContextLayer;
use spanline_testkit::Capture;
use tracing_subscriber::prelude::*;

const TP: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

fn sample() -> ContextSnapshot {
    let mut snap = ContextSnapshot::new();
    snap.set_traceparent(Some(TP.parse().unwrap()));
    snap.insert("request_id", "r-1").unwrap();
    snap.insert("user_id", "alice smith, \"admin\"; 100% é")
        .unwrap();
    snap.insert("tenant", "acme").unwrap();
    snap
}

#[test]
fn serde_round_trip_is_versioned() {
    let snap = sample();
    let json = serde_json::to_value(&snap).unwrap();
    assert_eq!(json["v"], 2);
    assert_eq!(json["traceparent"], TP);
    assert_eq!(json["fields"]["tenant"], "acme");
    let back: ContextSnapshot = serde_json::from_value(json).unwrap();
    assert_eq!(back, snap);
    assert_eq!(back.get("user_id"), Some("alice smith, \"admin\"; 100% é"));
}

#[test]
fn serde_keeps_json_types_and_order() {
    let mut snap = ContextSnapshot::new();
    snap.insert("request_id", "r-1").unwrap();
    snap.insert("user_id", 7u64).unwrap();
    snap.insert("delta", -3i32).unwrap();
    snap.insert("ratio", 0.25).unwrap();
    snap.insert("admin", true).unwrap();
    snap.insert("zip", "02134").unwrap();
    let json = serde_json::to_string(&snap).unwrap();
    assert_eq!(
        json,
        r#"{"v":2,"fields":{"request_id":"r-1","user_id":7,"delta":-3,"ratio":0.25,"admin":true,"zip":"02134"}}"#
    );
    let back: ContextSnapshot = serde_json::from_str(&json).unwrap();
    assert_eq!(back, snap);
    let types: Vec<String> = back.values().map(|(_, v)| v.to_json()).collect();
    assert_eq!(types, [r#""r-1""#, "7", "-3", "0.25", "true", r#""02134""#]);
}

#[test]
fn version_1_payloads_are_still_read_as_strings() {
    let v1 = r#"{"v":1,"traceparent":"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01","baggage":"request_id=r-1,user_id=7"}"#;
    let snap: ContextSnapshot = serde_json::from_str(v1).unwrap();
    assert_eq!(snap.get_json("user_id").as_deref(), Some(r#""7""#));
    assert_eq!(snap.traceparent().unwrap().to_string(), TP);
}

#[test]
fn serde_input_is_strict() {
    let bad = [
        r#"{"v":3,"fields":{}}"#,
        r#"{"v":2,"baggage":"a=b"}"#,
        r#"{"v":1,"fields":{"a":"b"}}"#,
        r#"{"v":2,"fields":{"a":{"nested":1}}}"#,
        r#"{"v":2,"fields":{"a":[1]}}"#,
        r#"{"v":2,"fields":{"a":null}}"#,
        r#"{"v":2,"fields":{"bad key":1}}"#,
        r#"{"v":2,"fields":{"k":"line\nbreak"}}"#,
        r#"{"v":2,"fields":[1,2]}"#,
        r#"{"baggage":"a=b"}"#,
        r#"{"v":1,"traceparent":"00-00000000000000000000000000000000-00f067aa0ba902b7-01"}"#,
        r#"{"v":1,"baggage":"novalue"}"#,
        r#"{"v":1,"baggage":"k=%0A"}"#,
        r#"{"v":1,"baggage":"bad key=v"}"#,
        r#"{"v":1,"baggage":"k=%zz"}"#,
    ];
    for input in bad {
        assert!(
            serde_json::from_str::<ContextSnapshot>(input).is_err(),
            "{input}"
        );
    }
}

#[test]
fn environment_round_trip() {
    let snap = sample();
    let env: HashMap<&str, String> = snap.to_env().into_iter().collect();
    assert_eq!(env["TRACEPARENT"], TP);
    assert!(env["BAGGAGE"].starts_with("request_id=r-1,user_id=alice%20smith"));
    assert!(
        env["BAGGAGE"].bytes().all(|b| b.is_ascii_graphic()),
        "wire form is baggage octets only"
    );
    let back = ContextSnapshot::from_env_vars(|name| env.get(name).cloned());
    assert_eq!(back, snap);
    assert!(ContextSnapshot::from_env_vars(|_| None).is_empty());
}

#[test]
fn headers_round_trip_with_a_child_traceparent() {
    let snap = sample();
    let headers = snap.to_headers();
    assert_eq!(headers["x-request-id"], "r-1");
    let child: TraceParent = headers["traceparent"].to_str().unwrap().parse().unwrap();
    assert_eq!(child.trace_id(), "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_ne!(
        child.parent_id(),
        "00f067aa0ba902b7",
        "an outgoing call is a new child"
    );
    let back = ContextSnapshot::from_headers(&headers);
    assert_eq!(back.get("user_id"), snap.get("user_id"));
    assert_eq!(back.traceparent().unwrap().trace_id(), child.trace_id());
}

#[test]
fn outside_input_is_lenient_and_counted() {
    let baggage = "ok=1, bad key=2,novalue,ctl=%0D%0A,pct=%zz,k2=v2;prop=1,=empty";
    let snap = ContextSnapshot::from_baggage(baggage);
    assert_eq!(snap.iter().collect::<Vec<_>>(), [("ok", "1"), ("k2", "v2")]);
    assert_eq!(snap.dropped(), 5);

    let snap = ContextSnapshot::from_env_vars(|name| {
        (name == "TRACEPARENT").then(|| "garbage".to_string())
    });
    assert!(snap.traceparent().is_none());
    assert_eq!(snap.dropped(), 1);
}

#[test]
fn limits_are_enforced() {
    let mut snap = ContextSnapshot::new();
    for i in 0..ContextSnapshot::MAX_ENTRIES {
        snap.insert(&format!("k{i}"), "v").unwrap();
    }
    assert_eq!(
        snap.insert("one_more", "v"),
        Err(SnapshotError::TooManyEntries)
    );
    snap.insert("k0", "replacing is fine").unwrap();
    assert_eq!(snap.len(), ContextSnapshot::MAX_ENTRIES);

    let mut snap = ContextSnapshot::new();
    let big = "x".repeat(ContextSnapshot::MAX_VALUE_LEN);
    snap.insert("a", &big).unwrap();
    assert!(matches!(
        snap.insert("b", &big),
        Err(SnapshotError::TooLarge(_))
    ));
    assert!(matches!(
        snap.insert("c", format!("{big}x")),
        Err(SnapshotError::ValueTooLong(_))
    ));
    assert!(matches!(
        snap.insert("bad key", "v"),
        Err(SnapshotError::InvalidKey(_))
    ));
    assert!(matches!(
        snap.insert("k", "line\nbreak"),
        Err(SnapshotError::InvalidValue(_))
    ));

    // Outside input past the limits: kept up to them, the rest counted.
    let many: Vec<String> = (0..100).map(|i| format!("k{i}=v")).collect();
    let snap = ContextSnapshot::from_baggage(&many.join(","));
    assert_eq!(snap.len(), ContextSnapshot::MAX_ENTRIES);
    assert_eq!(snap.dropped(), 100 - ContextSnapshot::MAX_ENTRIES);
    let huge = format!("a={},b={}", "y".repeat(4000), "z".repeat(4000));
    let huge = format!("{huge},c={}", "w".repeat(2000));
    let snap = ContextSnapshot::from_baggage(&huge);
    assert!(snap.to_baggage().len() <= ContextSnapshot::MAX_BYTES);
    assert_eq!(snap.dropped(), 1);
}

#[test]
fn capture_and_restore_carry_the_context_into_a_job() {
    let capture = Capture::new();
    let subscriber = spanline_testkit::json_subscriber(&capture);
    tracing::subscriber::with_default(subscriber, || {
        let payload = {
            let _req = tracing::info_span!(
                "request",
                request_id = "r-9",
                trace_id = "4bf92f3577b34da6a3ce929d0e0e4736",
                route = "/not/carried",
                user_id = tracing::field::Empty
            )
            .entered();
            spanline_context::set("user_id", 7u32).unwrap();
            serde_json::to_string(&ContextSnapshot::capture()).unwrap()
        };
        assert!(
            !payload.contains("route"),
            "only allow-listed keys cross: {payload}"
        );
        let snap: ContextSnapshot = serde_json::from_str(&payload).unwrap();
        let _job = snap.restore("send_email").entered();
        tracing::info!("job line");
    });
    let line = &capture.json_lines()[0];
    assert_eq!(line["request_id"], "r-9");
    assert_eq!(line["user_id"], 7, "the type crosses the job payload");
    assert_eq!(line["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_eq!(line["task"], "send_email");
    assert!(line.get("route").is_none());
}

#[test]
fn serde_bounds_hostile_field_maps() {
    let many: Vec<String> = (0..10_000).map(|i| format!("\"k{i}\":1")).collect();
    let input = format!(r#"{{"v":2,"fields":{{{}}}}}"#, many.join(","));
    let err = serde_json::from_str::<ContextSnapshot>(&input).unwrap_err();
    assert!(err.to_string().contains("more than 64 keys"), "{err}");
}

#[test]
fn inherited_baggage_is_allow_listed() {
    let snap = ContextSnapshot::from_env_vars(|name| {
        (name == "BAGGAGE").then(|| "request_id=r-1,secret=hunter2,job_id=j-1".to_string())
    });
    assert_eq!(
        snap.iter().collect::<Vec<_>>(),
        [("request_id", "r-1"), ("job_id", "j-1")]
    );
    assert_eq!(snap.dropped(), 1, "the refused key is counted");

    let mut headers = http::HeaderMap::new();
    headers.insert("baggage", "tenant=acme,password=x".parse().unwrap());
    let snap = ContextSnapshot::from_headers(&headers);
    assert_eq!(snap.iter().collect::<Vec<_>>(), [("tenant", "acme")]);
    assert_eq!(snap.dropped(), 1);
}

#[test]
fn capture_with_adds_keys_to_the_defaults() {
    let subscriber = tracing_subscriber::registry().with(ContextLayer::new());
    tracing::subscriber::with_default(subscriber, || {
        let _req = tracing::info_span!(
            "request",
            request_id = "r-1",
            route = "/users/{id}",
            method = "GET",
            attempt = 2,
            secret = "no"
        )
        .entered();
        let snap = ContextSnapshot::capture_with(&["route", "method", "attempt", "request_id"]);
        let keys: Vec<&str> = snap.iter().map(|(k, _)| k).collect();
        assert_eq!(keys, ["request_id", "route", "method", "attempt"]);
        assert_eq!(snap.get_json("attempt").as_deref(), Some("2"));
    });
}

// ==== redacted keys stay in the process (issue 30) ====

/// With the `ContextLayer` hiding `user_id`, `tenant` and `*token*` (what
/// `SPANLINE_REDACT=user_id,tenant,*token*` gives through `init()`), a
/// secret planted in each is in no variable, header or payload made from a
/// capture, while the lines say `[redacted]` and other keys travel.
#[test]
fn redacted_context_keys_never_leave_the_process() {
    const SECRETS: [&str; 4] = [
        "UID-SECRET",
        "TENANT-SECRET",
        "TOKEN-SECRET",
        "NESTED-SECRET",
    ];
    let hidden = ["user_id", "tenant", "*token*"];
    let capture = Capture::new();
    let subscriber = tracing_subscriber::registry()
        .with(ContextLayer::new().redact(hidden))
        .with(
            spanline_json::JsonLayer::builder()
                .schema(spanline_core::Schema::builder(spanline_core::Preset::Flat).redact(hidden))
                .with_writer(capture.clone())
                .build(),
        );
    let (snaps, env, headers, payloads) = tracing::subscriber::with_default(subscriber, || {
        let _req = tracing::info_span!(
            "request",
            request_id = "r-1",
            user_id = "UID-SECRET",
            tenant = "TENANT-SECRET",
            session_token = "TOKEN-SECRET",
            cfg = spanline_core::json(
                serde_json::json!({"db": {"api_token": "NESTED-SECRET", "host": "h"}})
            ),
        )
        .entered();
        tracing::info!("working");
        let snaps = [
            ContextSnapshot::capture(),
            ContextSnapshot::capture_with(&["session_token", "cfg"]),
            ContextSnapshot::capture_keys(&[
                "user_id",
                "tenant",
                "session_token",
                "cfg",
                "request_id",
            ]),
            ContextSnapshot::from_view(
                &spanline_context::current(),
                &["user_id", "tenant", "request_id"],
            ),
        ];
        let env = ContextSnapshot::capture_env();
        let headers: Vec<String> = snaps
            .iter()
            .flat_map(|s| {
                s.to_headers()
                    .iter()
                    .map(|(k, v)| format!("{k}: {}", v.to_str().unwrap()))
                    .collect::<Vec<_>>()
            })
            .collect();
        let payloads: Vec<String> = snaps
            .iter()
            .map(|s| serde_json::to_string(s).unwrap())
            .collect();
        (snaps, env, headers, payloads)
    });
    let mut leaving: Vec<String> = Vec::new();
    leaving.extend(env.iter().map(|(k, v)| format!("{k}={v}")));
    for snap in &snaps {
        leaving.extend(snap.to_env().into_iter().map(|(k, v)| format!("{k}={v}")));
        leaving.extend(snap.iter().map(|(k, v)| format!("{k}={v}")));
        assert_eq!(snap.get("request_id"), Some("r-1"), "{snap:?}");
        assert_eq!((snap.get("user_id"), snap.get("tenant")), (None, None));
        assert_eq!(snap.dropped(), 0, "left out, not counted as invalid");
    }
    leaving.extend(headers);
    leaving.extend(payloads);
    for text in &leaving {
        for secret in SECRETS {
            assert!(!text.contains(secret), "{secret} in {text}");
        }
    }
    assert!(
        leaving.iter().any(|t| t == "BAGGAGE=request_id=r-1"),
        "{leaving:?}"
    );
    // The carried object keeps its other keys, its hidden one masked.
    let cfg = snaps[1].get("cfg").unwrap();
    assert_eq!(cfg, r#"{"db":{"api_token":"[redacted]","host":"h"}}"#);
    // And the line itself masks them.
    let line = &capture.json_lines()[0];
    assert_eq!(line["user_id"], "[redacted]");
    assert_eq!(line["tenant"], "[redacted]");
    assert_eq!(line["session_token"], "[redacted]");
    assert_eq!(line["cfg"]["db"]["api_token"], "[redacted]");
}

/// Without keys given to the `ContextLayer`, a capture carries what it
/// always did (the lines' own redaction does not change it).
#[test]
fn without_context_layer_keys_captures_are_unchanged() {
    let subscriber = tracing_subscriber::registry().with(ContextLayer::new());
    tracing::subscriber::with_default(subscriber, || {
        let _req = tracing::info_span!("request", request_id = "r-1", user_id = 7).entered();
        let snap = ContextSnapshot::capture();
        assert_eq!(snap.get_json("user_id").as_deref(), Some("7"));
    });
}
