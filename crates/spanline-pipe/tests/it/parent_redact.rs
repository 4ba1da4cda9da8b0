//! The parent redacts what it re-emits, whatever the child did: a child
//! that forwards its secrets in clear (no `ForwardLayer::redact`, as a
//! child run without `SPANLINE_REDACT`, or a writer of the wire format in
//! another language) has them written as `[redacted]` by a
//! `Forwarder::redact` parent, at any depth. The child is this test binary
//! again (`parent_redact::child`, its role in `SPANLINE_PIPE_REDACT_ROLE`).

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report

use std::process::Stdio;

use serde_json::{Map, Value};
use spanline_core::ContextLayer;
use spanline_pipe::{ForwardLayer, Forwarder, Receiver};
use tracing::{info, info_span};
use tracing_subscriber::prelude::*;

const ROLE: &str = "SPANLINE_PIPE_REDACT_ROLE";

/// Every secret the child logs; none may reach the parent's output.
const SECRETS: &[&str] = &[
    "SPAN-TOKEN-1",
    "LATE-TOKEN-2",
    "EVENT-PASSWORD-3",
    "NESTED-PASSWORD-4",
    "NESTED-TOKEN-5",
    "SET-TOKEN-6",
    "ERROR-PASSWORD-7",
    "ERROR-CAUSE-8",
    "BIG-NESTED-TOKEN-9",
    "UPPER-PASSWORD-10",
];

/// The child: forwards without redacting anything.
#[test]
fn child() {
    if std::env::var(ROLE).is_err() {
        return;
    }
    tracing_subscriber::registry()
        .with(ContextLayer::new())
        .with(ForwardLayer::from_env())
        .init();
    let job = info_span!(
        "job",
        job_id = "j-1",
        token = "SPAN-TOKEN-1",
        late = tracing::field::Empty
    );
    let _job = job.enter();
    job.record("late", "kept");
    let _login = info_span!("login", token = tracing::field::Empty).entered();
    tracing::Span::current().record("token", "LATE-TOKEN-2");
    spanline_core::set("token", "SET-TOKEN-6").ok();
    let cfg = serde_json::json!({
        "user": "ann",
        "password": "NESTED-PASSWORD-4",
        "db": {"hosts": [{"name": "h1", "token": "NESTED-TOKEN-5"}]}
    });
    info!(
        password = "EVENT-PASSWORD-3",
        PASSWORD = "UPPER-PASSWORD-10",
        cfg = spanline_core::json(&cfg),
        user = "ann",
        "small record"
    );
    let err = Wrong(std::io::Error::other("ERROR-CAUSE-8"));
    tracing::error!(password = &err as &dyn std::error::Error, "rejected");
    // Over one atomic write: the child's slow path, the parent's too.
    let big = "x".repeat(5_000);
    let nested = serde_json::json!({"a": {"token": "BIG-NESTED-TOKEN-9"}});
    info!(
        big = big.as_str(),
        nested = spanline_core::json(&nested),
        "large record"
    );
}

/// An error whose message and cause are secrets.
#[derive(Debug)]
struct Wrong(std::io::Error);

impl std::fmt::Display for Wrong {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ERROR-PASSWORD-7")
    }
}

impl std::error::Error for Wrong {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

fn run_child() -> Vec<Map<String, Value>> {
    spanline_testkit::capture_json(|| {
        let mut cmd = spanline_testkit::this_test_binary("parent_redact::child");
        cmd.env(ROLE, "plain")
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let status = Forwarder::new("unredacted")
            .redact(["password", "token"])
            .spawn(&mut cmd)
            .unwrap()
            .wait()
            .unwrap();
        assert!(status.success());
    })
}

fn line<'a>(lines: &'a [Map<String, Value>], message: &str) -> &'a Map<String, Value> {
    lines
        .iter()
        .find(|l| l["message"] == message)
        .unwrap_or_else(|| panic!("no {message:?} in {lines:#?}"))
}

#[test]
fn a_child_that_does_not_redact_is_redacted_by_the_parent() {
    let lines = run_child();
    let text = serde_json::to_string(&lines).unwrap();
    for secret in SECRETS {
        assert!(!text.contains(secret), "{secret} leaked: {text}");
    }
    let small = line(&lines, "small record");
    assert_eq!(small["password"], "[redacted]");
    assert_eq!(small["PASSWORD"], "[redacted]", "keys match ignoring case");
    assert_eq!(small["user"], "ann");
    assert_eq!(small["token"], "[redacted]", "span fields and context");
    assert_eq!(small["late"], "kept");
    assert_eq!(small["job_id"], "j-1");
    assert_eq!(
        small["cfg"],
        serde_json::json!({
            "user": "ann",
            "password": "[redacted]",
            "db": {"hosts": [{"name": "h1", "token": "[redacted]"}]}
        }),
        "nested keys, the rest of the value kept"
    );
    let failed = line(&lines, "rejected");
    assert_eq!(failed["password"], "[redacted]");
    assert!(
        failed.keys().all(|k| !k.starts_with("password_")),
        "no cause chain: {failed:?}"
    );
    let large = line(&lines, "large record");
    assert_eq!(
        large["nested"],
        serde_json::json!({"a": {"token": "[redacted]"}})
    );
    assert_eq!(large["token"], "[redacted]");
}

#[test]
fn excerpts_of_bad_records_are_redacted() {
    let lines = spanline_testkit::capture_json(|| {
        let mut receiver = Receiver::new(tracing::Span::none()).redact(["password"]);
        // Not a record (no `t`), and a record cut short at the end.
        receiver.feed_line(br#"{"user":"ann","password":"BAD-1","n":1}"#);
        receiver.finish(br#"{"t":"ev","fields":{"password":"CUT-2"#);
    });
    let text = serde_json::to_string(&lines).unwrap();
    assert!(!text.contains("BAD-1") && !text.contains("CUT-2"), "{text}");
    assert_eq!(
        line(&lines, "unparseable record from the child")["record"],
        r#"{"user":"ann","password":"[redacted]","n":1}"#
    );
    assert_eq!(
        line(&lines, "truncated record at the end of the child's stream")["record"],
        r#"{"t":"ev","fields":{"password":"[redacted]""#
    );
}

#[test]
fn without_redaction_nothing_changes() {
    let lines = spanline_testkit::capture_json(|| {
        let mut receiver = Receiver::new(tracing::Span::none());
        receiver.feed_line(br#"{"t":"ev","pid":1,"ts":[0,0],"span":null,"level":"INFO","target":"t","fields":{"message":"m","password":"p","cfg":{"token":"t"}}}"#);
    });
    assert_eq!(lines[0]["password"], "p");
    assert_eq!(lines[0]["cfg"], serde_json::json!({"token": "t"}));
}
