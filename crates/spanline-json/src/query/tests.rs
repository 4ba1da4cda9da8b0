#![allow(clippy::unwrap_used)] // test code: a panic is a failure report

use proptest::prelude::*;
use spanline_core::read::Record;

use super::Query;

const LINES: &[&str] = &[
    r#"{"timestamp":"2026-12-06T10:00:00Z","level":"DEBUG","message":"cache miss","target":"app::cache","user_id":7}"#,
    r#"{"timestamp":"2026-12-06T10:00:01Z","level":"INFO","message":"login ok","target":"app::auth","user_id":42,"tenant":"acme","http":{"status":200}}"#,
    r#"{"timestamp":"2026-12-06T10:00:02Z","level":"WARN","message":"slow query","target":"app::db","user_id":42,"tenant":"big co","http":{"status":503},"ms":1200.5}"#,
    r#"{"@timestamp":"2026-12-06T10:00:03Z","log.level":"error","message":"payment failed","log.logger":"app::pay","user.id":"u-9","error.message":"card declined"}"#,
    r#"{"time":1796551204000,"level":60,"msg":"disk full","name":"svc","v":0}"#,
];

/// The messages of the lines `query` matches.
fn hits(query: &str) -> Vec<String> {
    let query = Query::parse(query).unwrap_or_else(|e| panic!("{e}"));
    LINES
        .iter()
        .map(|l| Record::read(l).unwrap())
        .filter(|r| query.matches(r))
        .map(|r| r.message)
        .collect()
}

#[test]
fn comparisons() {
    assert_eq!(hits("user_id=42"), ["login ok", "slow query"]);
    assert_eq!(
        hits("user_id!=42"),
        ["cache miss", "payment failed", "disk full"],
        "missing differs"
    );
    assert_eq!(hits("tenant~=co"), ["slow query"]);
    assert_eq!(hits(r#"tenant="big co""#), ["slow query"]);
    assert_eq!(hits("http.status>=500"), ["slow query"]);
    assert_eq!(hits("ms>1000 and ms<1300"), ["slow query"]);
    assert_eq!(
        hits(r#"target=~"^app::(db|pay)$""#),
        ["slow query", "payment failed"]
    );
    assert_eq!(hits("target!~app"), ["disk full"]);
    assert_eq!(
        hits("target=~^app::d"),
        ["slow query"],
        "bare: no space or parenthesis"
    );
    assert_eq!(
        hits("user_id=u-9"),
        ["payment failed"],
        "ECS's user.id by its own name"
    );
    assert_eq!(hits("msg=\"disk full\""), ["disk full"]);
}

#[test]
fn levels_are_ordered() {
    assert_eq!(
        hits("level>=warn"),
        ["slow query", "payment failed", "disk full"]
    );
    assert_eq!(hits("level=critical"), ["disk full"], "bunyan's 60");
    assert_eq!(hits("level<info"), ["cache miss"]);
    assert_eq!(
        hits("level in (debug, error)"),
        ["cache miss", "payment failed"]
    );
}

#[test]
fn boolean_logic_lists_and_existence() {
    assert_eq!(hits("level>=warn and user_id=42"), ["slow query"]);
    assert_eq!(
        hits("level>=warn user_id=42"),
        ["slow query"],
        "adjacent terms: and"
    );
    assert_eq!(hits("user_id=7 or tenant=acme"), ["cache miss", "login ok"]);
    assert_eq!(hits("not user_id=42 and level<=info"), ["cache miss"]);
    assert_eq!(
        hits("(user_id=7 or user_id=42) and not level=debug"),
        ["login ok", "slow query"]
    );
    assert_eq!(
        hits(r#"tenant in (acme, "big co")"#),
        ["login ok", "slow query"]
    );
    assert_eq!(
        hits("tenant not in (acme)"),
        ["cache miss", "slow query", "payment failed", "disk full"]
    );
    assert_eq!(hits("exists(http.status)"), ["login ok", "slow query"]);
    assert_eq!(
        hits("not exists(tenant)"),
        ["cache miss", "payment failed", "disk full"]
    );
}

#[test]
fn a_word_alone_searches_everything() {
    assert_eq!(
        hits("QUERY"),
        ["slow query"],
        "case-insensitive, the message"
    );
    assert_eq!(hits("declined"), ["payment failed"], "an error chain");
    assert_eq!(hits("acme"), ["login ok"], "a field's value");
    assert_eq!(hits(r#""big co" slow"#), ["slow query"]);
    assert_eq!(
        hits(r#""and""#),
        Vec::<String>::new(),
        "a keyword, quoted, is a word"
    );
}

#[test]
fn errors_point_at_the_column() {
    for (query, column) in [
        ("level>=", 7),
        ("(user_id=42", 11),
        ("tenant in (acme", 15),
        ("a=1 or", 6),
        ("\"open", 5),
        ("x=1 )", 4),
        ("target=~(", 8),
        (r#"target=~"(""#, 11),
    ] {
        let err = Query::parse(query).unwrap_err();
        assert_eq!(err.column(), column, "{query:?}: {err}");
        let text = err.to_string();
        assert!(text.starts_with("invalid query at column"), "{text}");
        assert!(
            text.contains(&format!("  {query}\n  {}^", " ".repeat(column))),
            "{text}"
        );
    }
}

proptest! {
    #[test]
    fn any_text_is_a_query_or_an_error_never_a_panic(text in "\\PC{0,40}") {
        if let Ok(query) = Query::parse(&text) {
            let record = Record::read(LINES[1]).unwrap();
            let _ = query.matches(&record);
        }
    }

    #[test]
    fn operator_soup_never_panics(text in "[a-z =!~<>()\",.*^$\\\\]{0,30}") {
        let _ = Query::parse(&text);
    }
}
