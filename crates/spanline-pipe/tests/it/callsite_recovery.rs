//! A long-lived parent: the callsites a child interned count against the
//! running children's limit (16,384) only while it runs, so one parent
//! process runs more children than that limit allows at once, and a late
//! child's records still get callsites of their own (their targets, so the
//! parent's per-target filters apply, and their levels). Past a child's own
//! budget (1,024) the overflow path still says what it does.
//!
//! The children are this test binary again (`callsite_recovery::child`),
//! writing wire records to descriptor 3 by hand, as a child in another
//! language would, each event with a target of its own.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report

use std::io::Write;
use std::process::Stdio;

use serde_json::{Map, Value};
use spanline_pipe::Forwarder;

const PREFIX: &str = "SPANLINE_PIPE_CALLSITE_PREFIX";
const COUNT: &str = "SPANLINE_PIPE_CALLSITE_COUNT";

/// The running children's limit (`MAX_LIVE_CALLSITES` in src/callsite.rs).
const LIVE_LIMIT: usize = 16_384;
/// A child's own budget (`MAX_CALLSITES_PER_CHILD`).
const CHILD_BUDGET: usize = 1_024;

const LEVELS: [&str; 5] = ["TRACE", "DEBUG", "INFO", "WARN", "ERROR"];

/// The child: `COUNT` events, each of its own target `{PREFIX}::t{i}`, its
/// level cycling through the five.
#[test]
fn child() {
    let (Ok(prefix), Ok(count)) = (std::env::var(PREFIX), std::env::var(COUNT)) else {
        return;
    };
    let count: usize = count.parse().unwrap();
    let pipe = std::fs::OpenOptions::new()
        .write(true)
        .open(format!("/proc/self/fd/{}", spanline_pipe::FD))
        .unwrap();
    let mut out = std::io::BufWriter::new(pipe);
    let pid = std::process::id();
    for i in 0..count {
        let level = LEVELS[i % LEVELS.len()];
        writeln!(
            out,
            r#"{{"t":"ev","pid":{pid},"ts":[0,0],"span":null,"level":"{level}","target":"{prefix}::t{i}","fields":{{"message":"m{i}","i":{i}}}}}"#
        )
        .unwrap();
    }
    out.flush().unwrap();
}

/// Runs one child under the current subscriber.
fn run_child(prefix: &str, count: usize) {
    let mut cmd = spanline_testkit::this_test_binary("callsite_recovery::child");
    cmd.env(PREFIX, prefix)
        .env(COUNT, count.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let status = Forwarder::new(prefix)
        .spawn(&mut cmd)
        .unwrap()
        .wait()
        .unwrap();
    assert!(status.success());
}

fn of_child<'a>(lines: &'a [Map<String, Value>], prefix: &str) -> Vec<&'a Map<String, Value>> {
    lines
        .iter()
        .filter(|l| l["name"] == prefix && l["message"].as_str().unwrap().starts_with('m'))
        .collect()
}

/// Each of `prefix`'s records on a callsite of its own: its target and
/// level, not the generic one.
#[track_caller]
fn assert_own_callsites(lines: &[Map<String, Value>], prefix: &str, count: usize) {
    let got = of_child(lines, prefix);
    assert_eq!(got.len(), count, "every record of {prefix}");
    for (i, line) in got.iter().enumerate() {
        assert_eq!(line["message"], format!("m{i}"));
        assert_eq!(line["target"], format!("{prefix}::t{i}"), "{line:?}");
        assert_eq!(line["level"], LEVELS[i % LEVELS.len()], "{line:?}");
        assert_eq!(line["i"], i, "its own fields, as fields: {line:?}");
    }
}

#[test]
fn a_long_lived_parent_runs_more_children_than_the_live_limit() {
    // 17 children of 1,000 new callsites each, one after the other: more
    // than the running children may hold at once, in one process.
    let per_child = 1_000;
    let children = LIVE_LIMIT / per_child + 1;
    let prefixes: Vec<String> = (0..children).map(|c| format!("child{c}")).collect();
    let lines = spanline_testkit::capture_json(|| {
        for prefix in &prefixes {
            run_child(prefix, per_child);
        }
        // One that invents more than its own budget, then one more.
        run_child("inventor", CHILD_BUDGET + 76);
        run_child("late", 50);
    });
    let warnings: Vec<_> = lines
        .iter()
        .filter(|l| l["message"].as_str().unwrap().contains("callsites"))
        .collect();
    assert_eq!(warnings.len(), 1, "only the inventor's: {warnings:?}");
    assert_eq!(warnings[0]["name"], "inventor");
    assert_eq!(warnings[0]["level"], "WARN");
    assert_eq!(warnings[0]["limit"], CHILD_BUDGET);
    assert_eq!(
        warnings[0]["message"],
        "too many distinct callsites from this child; further ones are forwarded through a generic one"
    );
    for prefix in &prefixes {
        assert_own_callsites(&lines, prefix, per_child);
    }
    // The inventor: its budget on callsites of its own, the rest through
    // the generic one, which keeps the target and the fields.
    let inventor = of_child(&lines, "inventor");
    assert_eq!(inventor.len(), CHILD_BUDGET + 76, "every record arrived");
    for (i, line) in inventor.iter().enumerate() {
        assert_eq!(line["level"], LEVELS[i % LEVELS.len()], "{line:?}");
        if i < CHILD_BUDGET {
            assert_eq!(line["target"], format!("inventor::t{i}"));
        } else {
            assert_eq!(line["target"], "spanline_pipe::overflow", "{line:?}");
            assert_eq!(line["child_target"], format!("inventor::t{i}"));
            assert_eq!(line["child_fields"], format!(r#"{{"i":{i}}}"#));
        }
    }
    // After the inventor, a child still gets callsites of its own.
    assert_own_callsites(&lines, "late", 50);
}
