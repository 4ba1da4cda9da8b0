//! `spanline run` with `SPANLINE_REDACT` masks what it re-emits, whatever
//! the command did: a program that prints JSON lines (another language), a
//! writer of spanline records that does not redact, a spanline child
//! started without the variable. Every output of `spanline run` (stdout
//! and stderr) is searched for the planted secrets. Real processes.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report

use std::process::{Command, Output};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_spanline");

/// `spanline run --json` (or pretty) of `sh -c script`, with `redact` as
/// `SPANLINE_REDACT` (unset when `None`).
fn run(redact: Option<&str>, json: bool, command: &[&str]) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.arg("run");
    if json {
        cmd.arg("--json");
    } else {
        cmd.args(["--color", "never"]);
    }
    cmd.arg("--").args(command).env("RUST_LOG", "info");
    match redact {
        Some(keys) => cmd.env("SPANLINE_REDACT", keys),
        None => cmd.env_remove("SPANLINE_REDACT"),
    };
    cmd.output().unwrap()
}

fn sh(script: &str) -> [&str; 3] {
    ["sh", "-c", script]
}

/// Both outputs of `out`, as text.
fn all_output(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Fails naming the first of `secrets` found in any output of `out`.
#[track_caller]
fn assert_no_secret(out: &Output, secrets: &[&str]) {
    let text = all_output(out);
    for secret in secrets {
        assert!(!text.contains(secret), "{secret} leaked:\n{text}");
    }
}

fn json_lines(out: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l:?}: {e}")))
        .collect()
}

/// The re-emitted line whose message contains `part`.
#[track_caller]
fn line_with<'a>(lines: &'a [Value], part: &str) -> &'a Value {
    lines
        .iter()
        .find(|l| l["message"].as_str().is_some_and(|m| m.contains(part)))
        .unwrap_or_else(|| panic!("no line with {part:?} in {lines:#?}"))
}

/// A program in another language: JSON lines on stdout and stderr.
const PLAIN: &str = r#"printf '%s\n' '{"level":"info","message":"x","password":"p1-SECRET","nested":{"token":"t1-SECRET"}}'
printf '%s\n' '{"level":"error","list":[{"Password":"p2-SECRET"}],"token":{"id":"t2-SECRET"}}' >&2
printf '%s\n' 'plain text, no secret here'"#;

const PLAIN_SECRETS: &[&str] = &["p1-SECRET", "t1-SECRET", "p2-SECRET", "t2-SECRET"];

#[test]
fn a_plain_childs_json_lines_are_redacted() {
    let out = run(Some("password,token"), true, &sh(PLAIN));
    assert!(out.status.success(), "{out:?}");
    assert_no_secret(&out, PLAIN_SECRETS);
    let lines = json_lines(&out);
    let first: Value = serde_json::from_str(
        line_with(&lines, r#""message":"x""#)["message"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        first,
        serde_json::json!({"level":"info","message":"x","password":"[redacted]","nested":{"token":"[redacted]"}}),
        "the rest of the line kept"
    );
    let second = line_with(&lines, r#""level":"error""#);
    assert_eq!(second["stream"], "stderr");
    assert_eq!(
        serde_json::from_str::<Value>(second["message"].as_str().unwrap()).unwrap(),
        serde_json::json!({"level":"error","list":[{"Password":"[redacted]"}],"token":"[redacted]"})
    );
    line_with(&lines, "plain text, no secret here");

    // The pretty renderer gets the masked text as well.
    let out = run(Some("password,token"), false, &sh(PLAIN));
    assert!(out.status.success(), "{out:?}");
    assert_no_secret(&out, PLAIN_SECRETS);
    assert!(all_output(&out).contains("[redacted]"));
}

#[test]
fn without_the_variable_nothing_is_masked() {
    // The check above is not vacuous: the secrets do reach the output
    // when nothing is redacted.
    let out = run(None, true, &sh(PLAIN));
    let text = all_output(&out);
    assert!(PLAIN_SECRETS.iter().all(|s| text.contains(s)), "{text}");
}

#[test]
fn records_of_a_child_that_does_not_redact_are_redacted() {
    // A writer of spanline's wire format that redacts nothing (another
    // language), straight to the forwarding pipe (descriptor 3): a span
    // with a secret field, an event with secrets at the top, nested, in
    // its context, and a field recorded later.
    let records = r#"printf '%s\n' \
'{"t":"hello","v":1,"pid":7}' \
'{"t":"span","pid":7,"id":1,"parent":null,"name":"job","target":"worker","level":"INFO","fields":{"job_id":"j-1","token":"T-SPAN-SECRET"},"empty":["api"]}' \
'{"t":"rec","pid":7,"id":1,"fields":{"api":{"token":"T-REC-SECRET","v":2}}}' \
'{"t":"ev","pid":7,"ts":[0,0],"span":1,"level":"INFO","target":"worker","fields":{"message":"login","password":"P-EV-SECRET","cfg":{"db":[{"token":"T-NESTED-SECRET"}]},"user":"ann"},"ctx":{"token":"T-CTX-SECRET","tenant":"acme"}}' \
'{"t":"close","pid":7,"id":1}' >&3"#;
    let out = run(Some("password,token"), true, &sh(records));
    assert!(out.status.success(), "{out:?}");
    assert_no_secret(
        &out,
        &[
            "T-SPAN-SECRET",
            "T-REC-SECRET",
            "P-EV-SECRET",
            "T-NESTED-SECRET",
            "T-CTX-SECRET",
        ],
    );
    let lines = json_lines(&out);
    let login = line_with(&lines, "login");
    assert_eq!(login["target"], "worker");
    assert_eq!(login["password"], "[redacted]");
    assert_eq!(login["token"], "[redacted]");
    assert_eq!(
        login["cfg"],
        serde_json::json!({"db": [{"token": "[redacted]"}]})
    );
    assert_eq!(
        login["api"],
        serde_json::json!({"token": "[redacted]", "v": 2})
    );
    assert_eq!(login["user"], "ann");
    assert_eq!(login["tenant"], "acme");
    assert_eq!(login["job_id"], "j-1");
}

#[test]
fn a_spanline_child_started_without_the_variable_is_redacted() {
    // The child inherits the environment: `env -u` takes the variable
    // away, so the inner `spanline run` forwards its command's JSON line
    // in clear, over the pipe.
    let nested = [
        "env",
        "-u",
        "SPANLINE_REDACT",
        BIN,
        "run",
        "--json",
        "--name",
        "inner",
        "--",
        "sh",
        "-c",
        PLAIN,
    ];
    let out = run(Some("password,token"), true, &nested);
    assert!(out.status.success(), "{out:?}");
    assert_no_secret(&out, PLAIN_SECRETS);
    let lines = json_lines(&out);
    let first = line_with(&lines, r#""message":"x""#);
    assert_eq!(
        first["name"], "inner",
        "forwarded by the inner run: {first}"
    );
    assert!(first["message"]
        .as_str()
        .unwrap()
        .contains(r#""password":"[redacted]""#));

    // Without the variable on the outer one, the secret would be shown.
    let out = run(None, true, &nested);
    assert!(all_output(&out).contains("p1-SECRET"));
}

#[test]
fn long_json_lines_are_redacted_whole_or_withheld() {
    let dir = std::env::temp_dir().join(format!("spanline-run-redact-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // 100 KB, the secret at its end: past the usual 16 KiB cut, redacted
    // whole.
    let long = dir.join("long.json");
    let pad = "x".repeat(100_000);
    std::fs::write(
        &long,
        format!("{{\"pad\":\"{pad}\",\"password\":\"LONG-SECRET\"}}\n"),
    )
    .unwrap();
    // 2 MB, the secret past the 1 MiB bound: the rest is withheld.
    let huge = dir.join("huge.json");
    let pad = "y".repeat(2_000_000);
    std::fs::write(
        &huge,
        format!("{{\"pad\":\"{pad}\",\"token\":\"HUGE-SECRET\"}}\nafter the huge line\n"),
    )
    .unwrap();
    let long_path = long.to_str().unwrap();
    let huge_path = huge.to_str().unwrap();
    let out = run(
        Some("password,token"),
        true,
        &["sh", "-c", r#"cat "$0" "$1""#, long_path, huge_path],
    );
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(out.status.success());
    assert_no_secret(&out, &["LONG-SECRET", "HUGE-SECRET"]);
    let lines = json_lines(&out);
    let whole: Value = serde_json::from_str(
        line_with(&lines, r#"{"pad":"xxx"#)["message"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(whole["password"], "[redacted]", "one line, masked whole");
    let withheld = line_with(&lines, "too long to redact");
    assert_eq!(withheld["level"], "WARN");
    assert_eq!(withheld["limit"], 1024 * 1024);
    let shown: usize = lines
        .iter()
        .filter_map(|l| l["message"].as_str())
        .filter(|m| m.starts_with(r#"{"pad":"yyy"#))
        .map(str::len)
        .sum();
    assert_eq!(shown, 1024 * 1024, "the first MiB only");
    assert_eq!(
        withheld["withheld_bytes"].as_u64().unwrap() + shown as u64,
        format!("{{\"pad\":\"{pad}\",\"token\":\"HUGE-SECRET\"}}").len() as u64,
        "the rest, counted"
    );
    line_with(&lines, "after the huge line");
}

#[test]
fn keys_match_as_spanline_redact_matches_them() {
    // Whole keys ignoring case, and `*` patterns.
    let script = r#"printf '%s\n' '{"Client_Secret":"CS-SECRET","API_TOKEN_ID":"AT-SECRET","secretary":"kept"}'"#;
    let out = run(Some("*_secret,*token*"), true, &sh(script));
    assert!(out.status.success(), "{out:?}");
    assert_no_secret(&out, &["CS-SECRET", "AT-SECRET"]);
    assert!(all_output(&out).contains("kept"));
}
