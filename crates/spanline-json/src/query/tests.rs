//! The query language's tests, in one file because they share the sample
//! lines and the helpers that read and match them: the grammar (as parsed
//! trees), its errors with their columns, the limits, and evaluation.

#![allow(clippy::unwrap_used)] // test code: a panic is a failure report

use crate::read::{Level, Record};
use proptest::prelude::*;
use serde_json::{json, Value};

use super::parse::{MAX_DEPTH, MAX_REGEXES};
use super::{Expr, Folded, Key, Num, Order, Query, Term, Test};

// ---------------------------------------------------------------------------
// The grammar, read back as an s-expression.

fn show(expr: &Expr) -> String {
    let list = |op: &str, items: &[Expr]| {
        let inner: Vec<String> = items.iter().map(show).collect();
        format!("({op} {})", inner.join(" "))
    };
    match expr {
        Expr::And(items) => list("and", items),
        Expr::Or(items) => list("or", items),
        Expr::Not(inner) => format!("(not {})", show(inner)),
        Expr::Term(Term::Exists(key)) => format!("exists({})", show_key(key)),
        Expr::Term(Term::Text(word)) => format!("{:?}", word.word),
        Expr::Term(Term::Test { key, test, negated }) => {
            let key = show_key(key);
            let no = if *negated { "!" } else { "" };
            match test {
                Test::Eq(op) => format!("{key}{no}={:?}", op.text),
                Test::Contains(part) => format!("{key}{no}~={part:?}"),
                Test::Regex(regex) => format!("{key}{no}=~{:?}", regex.as_str()),
                Test::Order(order, op) => {
                    let order = match order {
                        Order::Lt => "<",
                        Order::Le => "<=",
                        Order::Gt => ">",
                        Order::Ge => ">=",
                    };
                    format!("{key}{order}{:?}", op.text)
                }
                Test::In(ops) => {
                    let values: Vec<String> = ops.iter().map(|o| format!("{:?}", o.text)).collect();
                    let not = if *negated { " not" } else { "" };
                    format!("{key}{not} in [{}]", values.join(" "))
                }
            }
        }
    }
}

fn show_key(key: &Key) -> String {
    match key {
        Key::Level => "@level".into(),
        Key::Message => "@message".into(),
        Key::Target => "@target".into(),
        Key::Field(name) => name.clone(),
    }
}

/// The query, parsed and shown; panics with the error.
fn tree(query: &str) -> String {
    show(&Query::parse(query).unwrap_or_else(|e| panic!("{e}")).expr)
}

#[test]
fn each_operator() {
    for (query, shown) in [
        ("user_id=42", r#"user_id="42""#),
        ("user_id==42", r#"user_id="42""#),
        ("user_id!=42", r#"user_id!="42""#),
        ("path~=/admin", r#"path~="/admin""#),
        ("path!~=/admin", r#"path!~="/admin""#),
        ("target=~^app::db", r#"@target=~"^app::db""#),
        ("target!~health", r#"@target!=~"health""#),
        ("ms<250", r#"ms<"250""#),
        ("ms<=250", r#"ms<="250""#),
        ("ms>250.5", r#"ms>"250.5""#),
        ("ms>=-1", r#"ms>="-1""#),
        (
            "tenant in (acme, \"big co\")",
            r#"tenant in ["acme" "big co"]"#,
        ),
        ("tenant not in (test)", r#"tenant not in ["test"]"#),
        ("exists(job_id)", "exists(job_id)"),
        ("timeout", r#""timeout""#),
        (r#""disk full""#, r#""disk full""#),
    ] {
        assert_eq!(tree(query), shown, "{query}");
    }
}

#[test]
fn special_keys_and_aliases() {
    assert_eq!(tree("level=warn"), r#"@level="warn""#);
    assert_eq!(
        tree("msg~=x message~=y"),
        r#"(and @message~="x" @message~="y")"#
    );
    assert_eq!(
        tree("logger=a target=b"),
        r#"(and @target="a" @target="b")"#
    );
    assert_eq!(tree("http.status=1"), r#"http.status="1""#);
    assert_eq!(tree(r#""weird key"=1"#), r#"weird key="1""#);
    assert_eq!(
        tree("@timestamp=x logging.googleapis.com/trace=y"),
        r#"(and @timestamp="x" logging.googleapis.com/trace="y")"#
    );
}

#[test]
fn precedence_not_then_and_then_or() {
    assert_eq!(
        tree("a=1 or b=2 and c=3"),
        r#"(or a="1" (and b="2" c="3"))"#
    );
    assert_eq!(
        tree("a=1 and b=2 or c=3"),
        r#"(or (and a="1" b="2") c="3")"#
    );
    assert_eq!(tree("not a=1 and b=2"), r#"(and (not a="1") b="2")"#);
    assert_eq!(tree("not a=1 or b=2"), r#"(or (not a="1") b="2")"#);
    assert_eq!(tree("not (a=1 or b=2)"), r#"(not (or a="1" b="2"))"#);
    assert_eq!(tree("(a=1 or b=2) c=3"), r#"(and (or a="1" b="2") c="3")"#);
    assert_eq!(tree("not not a=1"), r#"(not (not a="1"))"#);
    assert_eq!(tree("a=1 or b=2 or c=3"), r#"(or a="1" b="2" c="3")"#);
}

#[test]
fn adjacent_terms_are_and() {
    assert_eq!(
        tree("level>=warn timeout"),
        r#"(and @level>="warn" "timeout")"#
    );
    assert_eq!(tree("a b or c"), r#"(or (and "a" "b") "c")"#);
    assert_eq!(tree("a not b"), r#"(and "a" (not "b"))"#);
    assert_eq!(tree("a (b or c)"), r#"(and "a" (or "b" "c"))"#);
    assert_eq!(tree("a=1 b=2 and c=3"), r#"(and a="1" b="2" c="3")"#);
}

#[test]
fn keywords_in_any_case_and_symbols() {
    assert_eq!(
        tree("a=1 AND b=2 Or NOT c=3"),
        r#"(or (and a="1" b="2") (not c="3"))"#
    );
    assert_eq!(
        tree("a=1 && b=2 || !c=3"),
        r#"(or (and a="1" b="2") (not c="3"))"#
    );
    assert_eq!(tree("!(a=1)"), r#"(not a="1")"#);
    assert_eq!(tree("k NOT IN (x)"), r#"k not in ["x"]"#);
    assert_eq!(tree("EXISTS (k)"), "exists(k)");
    assert_eq!(tree("exists"), r#""exists""#, "a word without parentheses");
    // A keyword begins no longer name.
    assert_eq!(tree("order=1 android"), r#"(and order="1" "android")"#);
    assert_eq!(tree("notice"), r#""notice""#);
}

#[test]
fn spaces_are_free_around_operators() {
    assert_eq!(tree("  status >= 500  "), r#"status>="500""#);
    assert_eq!(tree("k in(a,b)"), r#"k in ["a" "b"]"#);
    assert_eq!(tree("k in ( a , b )"), r#"k in ["a" "b"]"#);
    assert_eq!(tree("( a=1 )"), r#"a="1""#);
    assert_eq!(tree("a=1\tb=2\nc=3"), r#"(and a="1" b="2" c="3")"#);
    assert_eq!(
        tree("a=1\u{a0}b=2"),
        r#"(and a="1" b="2")"#,
        "unicode space"
    );
}

#[test]
fn quoting_and_bare_values() {
    assert_eq!(tree(r#"k="a \"b\" c""#), r#"k="a \"b\" c""#);
    assert_eq!(tree(r#"k="a\\b""#), r#"k="a\\b""#);
    assert_eq!(tree(r#"k="line\nnext\ttab""#), r#"k="line\nnext\ttab""#);
    assert_eq!(tree(r#"k="a\/b""#), r#"k="a/b""#);
    // Other escapes stay as written: a regex's `\d` means `\d`.
    assert_eq!(tree(r#"k=~"^\d+$""#), r#"k=~"^\\d+$""#);
    assert_eq!(tree(r#"k="and""#), r#"k="and""#, "a keyword, quoted");
    assert_eq!(tree(r#"k="""#), r#"k="""#, "empty");
    assert_eq!(tree("path=/a/b?x=1&y=2"), r#"path="/a/b?x=1&y=2""#);
    assert_eq!(tree("k=a=b"), r#"k="a=b""#);
    assert_eq!(tree("url=http://x:80/"), r#"url="http://x:80/""#);
    assert_eq!(tree("k=é"), r#"k="é""#);
    assert_eq!(tree("http://x"), r#""http://x""#, "a word, not a key");
    assert_eq!(tree(r#"k="*""#), r#"k="*""#, "a quoted star is a star");
}

#[test]
fn numbers_are_read_once() {
    assert_eq!(Num::parse("42"), Some(Num::Int(42)));
    assert_eq!(Num::parse("-7"), Some(Num::Int(-7)));
    assert_eq!(Num::parse("+7"), Some(Num::Int(7)));
    assert_eq!(Num::parse("2.5"), Some(Num::Float(2.5)));
    assert_eq!(Num::parse("1e3"), Some(Num::Float(1000.0)));
    assert_eq!(Num::parse(".5"), Some(Num::Float(0.5)));
    assert_eq!(
        Num::parse("18446744073709551616"),
        Some(Num::Int(18_446_744_073_709_551_616))
    );
    for not_a_number in [
        "", "inf", "NaN", "infinity", "-inf", "0x10", "1_000", "1.2.3", "1e999", "abc", "-",
    ] {
        assert_eq!(Num::parse(not_a_number), None, "{not_a_number}");
    }
}

/// The column and a piece of the message of each wrong query.
#[test]
fn errors_point_at_the_column() {
    for (query, column, says) in [
        ("", 0, "ends too soon"),
        ("   ", 3, "ends too soon"),
        ("level>=", 7, "expected a value"),
        ("level>= and x", 8, "`and` is a keyword"),
        ("(user_id=42", 11, "expected `)`"),
        ("(", 1, "expected a term"),
        ("()", 1, "expected a term"),
        ("tenant in (acme", 15, "expected `,` or `)`"),
        ("tenant in acme", 10, "expected `(`"),
        ("tenant in ()", 11, "expected a value"),
        ("tenant in (a,)", 13, "expected a value"),
        ("a=1 or", 6, "a term after `or`"),
        ("a=1 and", 7, "a term after `and`"),
        ("a=1 and or b", 8, "a term after `and`"),
        ("not", 3, "a term after `not`"),
        ("!", 1, "a term after `not`"),
        ("\"open", 5, "closing `\"`"),
        ("k=\"open\\", 8, "closing `\"`"),
        ("x=1 )", 4, "unexpected `)`"),
        (")", 0, "unexpected `)`"),
        ("exists(", 7, "expected a key"),
        ("exists(a", 8, "expected `)`"),
        ("exists(a b)", 9, "expected `)`"),
        ("target=~(", 8, "expected a value"),
        ("target=~[a", 8, "invalid regex: unclosed character class"),
        (r#"target=~"(""#, 8, "invalid regex: unclosed group"),
        (r#"a=1 target!~"[z-a]""#, 12, "invalid regex"),
        ("level>=wrn", 7, "`wrn` is not a level"),
        ("level in (warn, loud)", 16, "`loud` is not a level"),
        ("k=*", 2, "write exists(key)"),
        ("k in (a, *)", 9, "write exists(key)"),
        ("k~~=x", 1, "hl's regex operator"),
        ("k !~~= x", 2, "hl's regex operator"),
        ("k=or", 2, "`or` is a keyword"),
    ] {
        let Err(err) = Query::parse(query) else {
            panic!("{query:?} parsed");
        };
        assert_eq!(err.column(), column, "{query:?}: {err}");
        let text = err.to_string();
        assert!(
            text.starts_with(&format!("invalid query at column {}: ", column + 1)),
            "{text}"
        );
        assert!(text.contains(says), "{query:?}: {text}");
        assert!(
            text.ends_with(&format!("  {query}\n  {}^", " ".repeat(column))),
            "{text}"
        );
    }
}

#[test]
fn the_caret_counts_characters_and_a_newline_stays_on_its_line() {
    let err = Query::parse("é=1 ) x").unwrap_err();
    assert_eq!(err.column(), 5, "bytes");
    assert!(err.to_string().ends_with("  é=1 ) x\n      ^"), "{err}");
    let err = Query::parse("a=1\n)").unwrap_err();
    assert!(err.to_string().ends_with("  a=1 )\n      ^"), "{err}");
}

#[test]
fn nesting_is_bounded_and_never_exhausts_the_stack() {
    let deep = |n: usize| format!("{}a=1{}", "(".repeat(n), ")".repeat(n));
    assert!(Query::parse(&deep(MAX_DEPTH)).is_ok());
    let err = Query::parse(&deep(MAX_DEPTH + 1)).unwrap_err();
    assert_eq!(err.column(), MAX_DEPTH, "{err}");
    assert!(err.to_string().contains("nested too deeply"), "{err}");
    assert!(Query::parse(&format!("{}a", "not ".repeat(MAX_DEPTH))).is_ok());
    // Hostile input, on a small stack (tokio's workers have 2 MiB; this
    // is a quarter of that, in a debug build).
    std::thread::Builder::new()
        .stack_size(512 * 1024)
        .spawn(move || {
            assert!(Query::parse(&deep(MAX_DEPTH)).is_ok());
            assert!(Query::parse(&"(".repeat(100_000)).is_err());
            assert!(Query::parse(&"not ".repeat(100_000)).is_err());
            assert!(Query::parse(&"!".repeat(100_000)).is_err());
            assert!(Query::parse(&"(not ".repeat(50_000)).is_err());
            // Long but flat: fine.
            let flat = vec!["a=1"; 20_000].join(" or ");
            let query = Query::parse(&flat).unwrap();
            assert!(query.matches(&record(&[("a", json!(1))])));
        })
        .unwrap()
        .join()
        .unwrap();
}

#[test]
fn regexes_are_bounded() {
    let many = |n: usize| vec!["k=~a"; n].join(" or ");
    assert!(Query::parse(&many(MAX_REGEXES)).is_ok());
    let err = Query::parse(&many(MAX_REGEXES + 1)).unwrap_err();
    assert!(err.to_string().contains("too many regexes"), "{err}");
    let err = Query::parse(r#"k=~"(?:\w{100}){100}""#).unwrap_err();
    assert_eq!(err.column(), 3);
    assert!(err.to_string().contains("regex too large"), "{err}");
}

// ---------------------------------------------------------------------------
// Matching records built by hand.

fn record(fields: &[(&str, Value)]) -> Record {
    Record {
        fields: fields
            .iter()
            .map(|(k, v)| ((*k).to_string(), v.clone()))
            .collect(),
        ..Record::default()
    }
}

fn is(query: &str, record: &Record) -> bool {
    Query::parse(query)
        .unwrap_or_else(|e| panic!("{e}"))
        .matches(record)
}

#[test]
fn numbers_compare_as_numbers() {
    let r = record(&[
        ("n", json!(42)),
        ("f", json!(2.5)),
        ("big", json!(9_007_199_254_740_993_u64)),
        ("neg", json!(-3)),
    ]);
    assert!(is("n=42", &r) && is("n=42.0", &r) && is("n=4.2e1", &r));
    assert!(!is("n=042x", &r) && is("n!=43", &r));
    assert!(is("n>41 n<43 n>=42 n<=42", &r));
    assert!(is("f>2 f<3 f=2.5", &r));
    assert!(is("neg<0 neg=-3", &r));
    assert!(is("n in (1, 42)", &r) && is("n not in (1, 2)", &r));
    // Integers exactly, above 2^53 too.
    assert!(is("big=9007199254740993", &r));
    assert!(!is("big=9007199254740992", &r));
    assert!(is("big>9007199254740992", &r));
    // Not a number in the query: the number's text.
    assert!(is("n~=4", &r) && is("n=~^4[0-9]$", &r) && is("f~=.5", &r));
    assert!(is("n<4a", &r), "\"42\" < \"4a\" as text");
}

#[test]
fn strings_compare_as_text_and_order_by_the_number_they_hold() {
    let r = record(&[
        ("s", json!("42")),
        ("status", json!("unknown")),
        ("version", json!("10")),
        ("name", json!("bob")),
    ]);
    assert!(is("s=42", &r), "the same text");
    assert!(!is("s=42.0", &r), "a string field compares as text");
    assert!(is("version>9", &r), "the number it holds: 10 > 9");
    assert!(
        !is("status>=500", &r) && !is("status<500", &r),
        "holds no number"
    );
    assert!(is("name>alice name<carol", &r), "text order");
    assert!(
        is("name~=ob", &r) && !is("name~=OB", &r),
        "~= is case-sensitive"
    );
}

#[test]
fn bools_nulls_arrays_and_objects() {
    let r = record(&[
        ("ok", json!(true)),
        ("no", json!(false)),
        ("gone", json!(null)),
        ("tags", json!(["admin", "beta", 7])),
        ("empty", json!([])),
        ("obj", json!({"a": 1})),
    ]);
    assert!(is("ok=true no=false gone=null", &r));
    assert!(!is("ok=false", &r) && is("ok!=false", &r));
    assert!(is("tags=admin tags=7 tags>5 tags=~^be", &r), "any element");
    assert!(!is("tags=root", &r) && is("tags!=root", &r));
    assert!(is("tags not in (root, x)", &r) && !is("tags not in (beta)", &r));
    assert!(!is("empty=x", &r) && is("empty!=x", &r) && is("exists(empty)", &r));
    assert!(is(r#"obj="{\"a\":1}" obj~=a obj.a=1"#, &r));
}

#[test]
fn a_missing_key_fails_each_test_and_passes_its_negation() {
    let r = record(&[("present", json!(1))]);
    for (test, negation) in [
        ("k=1", "k!=1"),
        ("k~=1", "k!~=1"),
        ("k=~1", "k!~1"),
        ("k in (1)", "k not in (1)"),
    ] {
        assert!(!is(test, &r), "{test}");
        assert!(is(negation, &r), "{negation}");
        assert!(is(&format!("not {test}"), &r), "not {test}");
    }
    for order in ["k<1", "k<=1", "k>1", "k>=1"] {
        assert!(!is(order, &r) && is(&format!("not {order}"), &r));
    }
    assert!(!is("exists(k)", &r) && is("exists(present)", &r));
}

#[test]
fn levels_order_and_read_any_word() {
    let mut r = record(&[]);
    r.level = Some(Level::Warn);
    assert!(is("level=warn level=WARNING level=40", &r));
    assert!(is("level>=warn level>info level<error level<=critical", &r));
    assert!(!is("level>warn", &r) && !is("level<warn", &r));
    assert!(is("level in (error, warning)", &r) && is("level not in (info)", &r));
    assert!(is("level~=ar level=~^w level!~^e", &r), "its name, as text");
    r.level = None;
    assert!(!is("level>=trace", &r) && is("level!=warn", &r) && !is("exists(level)", &r));
}

#[test]
fn message_and_target() {
    let mut r = record(&[]);
    assert!(!is("exists(message)", &r) && !is("exists(target)", &r));
    r.message = "payment failed".into();
    r.target = "app::pay".into();
    assert!(is(r#"message="payment failed" msg~=fail"#, &r));
    assert!(is("target=app::pay logger=~::pay$ exists(message)", &r));
}

#[test]
fn a_word_alone_searches_values_messages_and_errors_in_any_case() {
    let mut r = record(&[
        ("user", json!("Ann")),
        ("n", json!(4711)),
        ("nested", json!({"deep": ["Needle"]})),
        ("key_only", json!(1)),
    ]);
    r.message = "Cache MISS".into();
    r.target = "app::db".into();
    r.errors = vec![(
        "error".into(),
        vec!["request failed".into(), "connection Reset".into()],
    )];
    for hit in [
        "miss",
        "CACHE",
        "ann",
        "471",
        "needle",
        "app::",
        "RESET",
        r#""cache miss""#,
    ] {
        assert!(is(hit, &r), "{hit}");
    }
    for miss in ["key_only", "deep", "user", "cache-miss", "nothing"] {
        assert!(!is(miss, &r), "{miss}: keys are not searched");
    }
}

#[test]
fn folding_follows_unicode() {
    let word = |w: &str| Folded::new(w.to_string());
    assert!(word("école").is_in("ÉCOLE NORMALE"));
    assert!(word("ΟΔΟΣ").is_in("η οδοσ"), "Σ folds as σ on both sides");
    assert!(word("straße").is_in("STRAßE"));
    assert!(word("x").is_in("🙂x"));
    assert!(!word("ab").is_in("a"));
    assert!(word("").is_in(""));
    assert!(!word("é").is_in("e"));
    assert!(word("ABC").is_in("xxaBc"), "ASCII: either case");
    assert!(!word("abc").is_in("ab"));
}

// ---------------------------------------------------------------------------
// Real lines, read by spanline-json's reader.

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
fn the_brief_line() {
    let line = Record::read(
        r#"{"timestamp":"2026-12-06T10:00:00.000000Z","level":"WARN","message":"slow","target":"app","user_id":42}"#,
    )
    .unwrap();
    for query in [
        "level>=warn and user_id=42",
        "level=warn user_id>=40 target=app",
        "slow",
        "SLOW and not fast",
        "user_id in (1, 42)",
        "exists(user_id) and not exists(tenant)",
    ] {
        assert!(Query::parse(query).unwrap().matches(&line), "{query}");
    }
    for query in ["level>warn", "user_id!=42", "target=~^lib", "fast"] {
        assert!(!Query::parse(query).unwrap().matches(&line), "{query}");
    }
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
    assert_eq!(
        hits("tenant!~=co"),
        ["cache miss", "login ok", "payment failed", "disk full"]
    );
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
    assert_eq!(hits("target=svc"), ["disk full"], "bunyan's name");
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
    assert_eq!(hits("user_id=7 OR tenant=acme"), ["cache miss", "login ok"]);
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
    assert_eq!(hits("503"), ["slow query"], "a number, nested");
    assert_eq!(hits(r#""big co" slow"#), ["slow query"]);
    assert_eq!(
        hits("tenant"),
        Vec::<String>::new(),
        "keys are not searched"
    );
    assert_eq!(
        hits(r#""and""#),
        Vec::<String>::new(),
        "a keyword, quoted, is a word"
    );
}

#[test]
fn highlights_skip_what_is_negated() {
    let query = Query::parse(r#"a b~=x c!~=y not d (e or not f) "g h""#).unwrap();
    assert_eq!(query.highlights(), ["a", "x", "e", "g h"]);
}

// ---------------------------------------------------------------------------
// Arbitrary text.

proptest! {
    #[test]
    fn any_text_is_a_query_or_an_error_never_a_panic(text in "\\PC{0,60}") {
        match Query::parse(&text) {
            Ok(query) => {
                for line in LINES {
                    let _ = query.matches(&Record::read(line).unwrap());
                }
                let _ = query.highlights();
            }
            Err(e) => {
                prop_assert!(e.column() <= text.len());
                let _ = e.to_string();
            }
        }
    }

    #[test]
    fn operator_soup_never_panics(text in "[a-z =!~<>()\",.*^$&|\\\\é\t]{0,40}") {
        if let Err(e) = Query::parse(&text) {
            prop_assert!(e.column() <= text.len());
            prop_assert!(text.is_char_boundary(e.column()));
            let _ = e.to_string();
        }
    }

    /// Each negated operator is `not` of its positive one, whatever the
    /// record holds (or lacks).
    #[test]
    fn negations_agree_with_not(
        value in prop_oneof![
            Just(None),
            Just(Some(json!(42))),
            Just(Some(json!("42"))),
            Just(Some(json!("ab"))),
            Just(Some(json!(true))),
            Just(Some(json!(null))),
            Just(Some(json!([1, "ab"]))),
            Just(Some(json!({"x": "ab"}))),
        ],
        wanted in prop_oneof![Just("42"), Just("ab"), Just("4"), Just("true"), Just("x")],
    ) {
        let r = match &value {
            Some(v) => record(&[("k", v.clone())]),
            None => record(&[]),
        };
        for (positive, negative) in [
            (format!("k={wanted}"), format!("k!={wanted}")),
            (format!("k~={wanted}"), format!("k!~={wanted}")),
            (format!("k=~{wanted}"), format!("k!~{wanted}")),
            (format!("k in ({wanted}, zz)"), format!("k not in ({wanted}, zz)")),
        ] {
            prop_assert_eq!(is(&positive, &r), !is(&negative, &r), "{} / {}", positive, negative);
            prop_assert_eq!(is(&negative, &r), is(&format!("not {positive}"), &r));
        }
    }
}

// ---------------------------------------------------------------------------
// `matches_line` (a `LineView`, values parsed on demand) answers as
// `matches` on the line's `Record`, for any line and any query.

/// Keys where the two readers could part: every preset's and producer's
/// time, level, message and target keys, ECS's names, causes, the shapes a
/// view leaves to `Record`, a dotted path's parent and a key with an
/// escape.
const KEYS: &[&str] = &[
    "timestamp",
    "time",
    "@timestamp",
    "ts",
    "level",
    "severity",
    "log.level",
    "lvl",
    "message",
    "msg",
    "event",
    "target",
    "logger",
    "log.logger",
    "name",
    "user_id",
    "user.id",
    "trace.id",
    "error",
    "error.message",
    "error_sources",
    "error.sources",
    "exception",
    "error.stack_trace",
    "fields",
    "spans",
    "span",
    "http",
    "http.status",
    "tenant",
    "n",
];

fn json_value() -> impl Strategy<Value = String> {
    let scalar = prop_oneof![
        Just("42".to_string()),
        Just("-7".to_string()),
        Just("30".to_string()),
        Just("2.5".to_string()),
        Just("1e3".to_string()),
        Just(r#""Error: x""#.to_string()),
        Just("18446744073709551616".to_string()),
        Just("true".to_string()),
        Just("null".to_string()),
        Just(r#""WARN""#.to_string()),
        Just(r#""notice""#.to_string()),
        Just(r#""high""#.to_string()),
        Just(r#""42""#.to_string()),
        Just(r#""acme""#.to_string()),
        Just(r#""a\"b\u00e9\n""#.to_string()),
        Just(r#""""#.to_string()),
        Just(r#""2026-12-06T10:00:00Z""#.to_string()),
    ];
    scalar.prop_recursive(2, 8, 3, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..3).prop_map(|v| format!("[{}]", v.join(","))),
            prop::collection::vec(
                (prop::sample::select(&["status", "x", "id"][..]), inner),
                0..3
            )
            .prop_map(|kv| {
                let pairs: Vec<String> = kv.iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
                format!("{{{}}}", pairs.join(","))
            }),
        ]
    })
}

fn json_line() -> impl Strategy<Value = String> {
    let key = prop_oneof![
        8 => prop::sample::select(KEYS).prop_map(|k| format!("\"{k}\"")),
        1 => Just(r#""ten\u0061nt""#.to_string()),
    ];
    prop::collection::vec((key, json_value()), 0..8).prop_map(|pairs| {
        let pairs: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}:{v}")).collect();
        format!("{{{}}}", pairs.join(","))
    })
}

fn query_text() -> impl Strategy<Value = String> {
    let key = prop::sample::select(
        &[
            "level",
            "message",
            "target",
            "user_id",
            "trace_id",
            "error",
            "http.status",
            "http.x",
            "tenant",
            "n",
            "time",
            "timestamp",
            "severity",
            "name",
            "msg",
            "error_sources",
            "exception",
            "event",
            "lvl",
            "\"log.level\"",
            "http",
        ][..],
    );
    let value = prop::sample::select(
        &[
            "42",
            "30",
            "warn",
            "info",
            "acme",
            "\"a\\\"b\"",
            "2.5",
            "true",
            "null",
            "x",
            "-7",
        ][..],
    );
    let op = prop::sample::select(&["=", "!=", "~=", "!~=", "=~", "<", ">=", ">"][..]);
    let term = prop_oneof![
        4 => (key.clone(), op, value.clone()).prop_map(|(k, o, v)| {
            // A level compared in order needs a level word.
            let v = if k == "level" && matches!(o, "<" | ">=" | ">" | "=" | "!=") { "warn" } else { v };
            format!("{k}{o}{v}")
        }),
        1 => (key.clone(), value.clone(), value).prop_map(|(k, a, b)| {
            let (a, b) = if k == "level" { ("warn", "info") } else { (a, b) };
            format!("{k} in ({a}, {b})")
        }),
        1 => key.prop_map(|k| format!("exists({k})")),
        1 => prop::sample::select(&["acme", "42", "WARN", "é", "status", "ab", "1000", "true", "Error: x", "x\"", "2026"][..])
            .prop_map(|w| if w.contains([' ', '"']) { format!("{w:?}") } else { w.to_string() }),
    ];
    term.prop_recursive(2, 6, 3, |inner| {
        prop_oneof![
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("({a} and {b})")),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("({a} or {b})")),
            inner.prop_map(|a| format!("not {a}")),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]
    #[test]
    fn a_line_is_matched_as_its_record_is(line in json_line(), query in query_text()) {
        let query = Query::parse(&query).unwrap_or_else(|e| panic!("{e}"));
        let by_record = Record::read(&line).map(|r| query.matches(&r));
        prop_assert_eq!(query.matches_line(&line), by_record, "{}", line);
    }
}

#[test]
fn a_line_view_reads_shapes_it_leaves_to_the_record() {
    // Nested, chains written whole, escaped keys: read as a Record, with
    // the same answer.
    let query = Query::parse("user_id=42").unwrap();
    for line in [
        r#"{"fields":{"message":"m","user_id":42},"level":"INFO"}"#,
        r#"{"message":"m","exception":"boom","user_id":42}"#,
        r#"{"message":"m","user\u005fid":42}"#,
    ] {
        assert!(crate::read::LineView::read(line).is_none(), "{line}");
        assert_eq!(query.matches_line(line), Some(true), "{line}");
    }
    assert_eq!(query.matches_line("[1]"), None);
    assert_eq!(query.matches_line("{\"user_id\":42"), None);
}
