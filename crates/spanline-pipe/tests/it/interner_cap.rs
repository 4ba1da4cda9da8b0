//! Past a child's callsite budget, records still arrive, through a generic
//! callsite, with a one-time warning; other children keep their own
//! callsites. Bounds on a child's spans. Its own test binary: the interner
//! is per process, and these tests fill it.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report

use spanline_pipe::Receiver;
use spanline_testkit::Capture;

#[test]
fn distinct_callsites_past_the_cap_use_a_generic_one() {
    let capture = Capture::new();
    let subscriber = spanline_testkit::json_subscriber(&capture);
    let total = 4_200;
    tracing::subscriber::with_default(subscriber, || {
        let mut receiver = Receiver::new(tracing::Span::none());
        for i in 0..total {
            let line = format!(
                r#"{{"t":"ev","pid":1,"ts":[0,0],"span":null,"level":"INFO","target":"dyn::t{i}","fields":{{"message":"m{i}","k":{i}}}}}"#
            );
            receiver.feed_line(line.as_bytes());
        }
    });
    let lines = capture.json_lines();
    let warnings = lines
        .iter()
        .filter(|l| {
            l["message"]
                .as_str()
                .unwrap()
                .starts_with("too many distinct callsites")
        })
        .count();
    assert_eq!(warnings, 1, "one warning");
    let forwarded: Vec<_> = lines
        .iter()
        .filter(|l| l["message"].as_str().unwrap().starts_with('m'))
        .collect();
    assert_eq!(forwarded.len(), total, "every record arrived");
    let last = forwarded.last().unwrap();
    assert_eq!(last["message"], format!("m{}", total - 1));
    assert_eq!(
        last["target"], "spanline_pipe::overflow",
        "the generic callsite"
    );
    assert_eq!(
        last["child_target"],
        format!("dyn::t{}", total - 1),
        "the original target is kept in a field"
    );
    assert_eq!(last["child_fields"], format!(r#"{{"k":{}}}"#, total - 1));
}

fn ev(i: usize, target: &str) -> String {
    format!(
        r#"{{"t":"ev","pid":1,"ts":[0,0],"span":null,"level":"INFO","target":"{target}","fields":{{"message":"m{i}","k":{i}}}}}"#
    )
}

#[test]
fn one_child_that_invents_targets_does_not_degrade_the_others() {
    let lines = spanline_testkit::capture_json(|| {
        let mut bad = Receiver::new(tracing::Span::none());
        for i in 0..3_000 {
            bad.feed_line(ev(i, &format!("invented::t{i}")).as_bytes());
        }
        let mut good = Receiver::new(tracing::Span::none());
        for i in 0..20 {
            good.feed_line(ev(i, &format!("good_child::m{i}")).as_bytes());
        }
    });
    let good: Vec<_> = lines
        .iter()
        .filter(|l| l["message"].as_str().unwrap().starts_with('m'))
        .skip(3_000)
        .collect();
    assert_eq!(good.len(), 20);
    for (i, line) in good.iter().enumerate() {
        assert_eq!(
            line["target"],
            format!("good_child::m{i}"),
            "its own callsite, so its own per-target filters apply"
        );
    }
}

fn span(id: u64, parent: Option<u64>) -> String {
    let parent = parent.map_or("null".to_string(), |p| p.to_string());
    format!(
        r#"{{"t":"span","pid":1,"id":{id},"parent":{parent},"name":"s","target":"deep","level":"INFO","fields":{{"d{id}":{id}}}}}"#
    )
}

#[test]
fn a_childs_spans_are_bounded_in_depth_and_number() {
    let lines = spanline_testkit::capture_json(|| {
        let mut receiver = Receiver::new(tracing::Span::none());
        // 1,000 nested spans, an event at the bottom.
        for id in 1..=1_000u64 {
            receiver.feed_line(span(id, (id > 1).then(|| id - 1)).as_bytes());
        }
        receiver.feed_line(
            br#"{"t":"ev","pid":1,"ts":[0,0],"span":1000,"level":"WARN","target":"deep","fields":{"message":"at the bottom"}}"#,
        );
        // 10,000 spans that never close.
        for id in 10_000..20_000u64 {
            receiver.feed_line(span(id, None).as_bytes());
        }
        receiver.feed_line(
            br#"{"t":"ev","pid":1,"ts":[0,0],"span":19999,"level":"WARN","target":"deep","fields":{"message":"past the cap"}}"#,
        );
    });
    let said = |text: &str| {
        lines
            .iter()
            .filter(|l| l["message"].as_str().unwrap().contains(text))
            .count()
    };
    assert_eq!(said("nested too deep"), 1, "said once");
    assert_eq!(said("too many spans open"), 1, "said once");
    let bottom = lines
        .iter()
        .find(|l| l["message"] == "at the bottom")
        .unwrap();
    assert_eq!(bottom["d1"], 1, "the outer spans' context is kept");
    assert!(bottom.get("d1000").is_none(), "folded past the depth bound");
    let past = lines
        .iter()
        .find(|l| l["message"] == "past the cap")
        .unwrap();
    assert!(past.get("d19999").is_none(), "not recreated past the bound");
}
