use std::net::SocketAddr;

use spanline_redis::Mode;
use spanline_testkit::RedisServer;
use spanline_web::{Console, ConsoleError};

use crate::{get, publish, serve};

const ROUTES: &[&str] = &[
    "",
    "/jobs/job_1",
    "/api/jobs",
    "/events",
    "/jobs/job_1/events",
    "/assets/console.js",
    "/assets/console.css",
];

fn status(response: &str) -> u16 {
    response
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {response:?}"))
}

/// Enough of a response to see its status and headers.
fn head(url: &str, headers: &[(&str, &str)]) -> String {
    get(url, headers, |got| got.contains("\r\n\r\n"))
}

#[test]
fn off_loopback_the_console_refuses_to_start_without_a_token() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let off: SocketAddr = "0.0.0.0:0".parse().unwrap();
    // No token, an empty one, or one of blanks: none protects anything.
    for token in [None, Some(""), Some(" \t ")] {
        let mut builder = Console::builder("redis://127.0.0.1:1");
        if let Some(token) = token {
            builder = builder.token(token);
        }
        let refused = runtime.block_on(builder.build().unwrap().serve(off));
        assert!(
            matches!(refused, Err(ConsoleError::TokenRequired(_))),
            "{token:?}: {refused:?}"
        );
        let message = refused.unwrap_err().to_string();
        assert!(message.contains("token"), "{message}");
    }
}

#[test]
fn with_a_token_every_route_needs_it_and_a_cookie_keeps_it() {
    let redis = RedisServer::start();
    let served = serve(Console::builder(redis.url()).token("s3cret-token"));
    for route in ROUTES {
        let url = format!("{}{route}", served.base);
        let refused = head(&url, &[]);
        assert_eq!(status(&refused), 401, "{route}: {refused}");
        assert!(refused.contains("content-security-policy"), "{refused}");
        assert_eq!(
            status(&head(&url, &[("Cookie", "spanline_token=wrong")])),
            401
        );
        assert_eq!(
            status(&head(&url, &[("Authorization", "Bearer s3cret-token")])),
            200,
            "{route}"
        );
        assert_eq!(
            status(&head(
                &url,
                &[("Cookie", "a=b; spanline_token=s3cret-token")]
            )),
            200,
            "{route}"
        );
    }
    let first = head(&format!("{}?token=s3cret-token", served.base), &[]);
    assert_eq!(status(&first), 200);
    assert!(
        first.contains("set-cookie: spanline_token=s3cret-token; HttpOnly; SameSite=Strict"),
        "{first}"
    );
}

#[test]
fn every_response_carries_the_content_security_policy() {
    let redis = RedisServer::start();
    let served = serve(Console::builder(redis.url()));
    for route in ROUTES {
        let response = head(&format!("{}{route}", served.base), &[]);
        assert_eq!(status(&response), 200, "{route}");
        assert!(
            response.contains("content-security-policy: default-src 'none'; script-src 'self'"),
            "{route}: {response}"
        );
        assert!(response.contains("x-content-type-options: nosniff"));
    }
    let bad = head(&format!("{}/jobs/not%20a%20job/events", served.base), &[]);
    assert_eq!(status(&bad), 400, "{bad}");
    assert_eq!(
        status(&head(&format!("{}/jobs/a%22b", served.base), &[])),
        400
    );
}

#[test]
fn a_stream_resumes_after_the_last_event_id() {
    let redis = RedisServer::start();
    publish(&redis, Mode::Streams, Some("job_1"), || {
        for i in 0..4 {
            tracing::info!(i, "line {i}");
        }
    });
    let served = serve(Console::builder(redis.url()));
    let url = format!("{}/jobs/job_1/events", served.base);
    let all = get(&url, &[], |got| got.contains("job ended"));
    let ids: Vec<&str> = all.lines().filter_map(|l| l.strip_prefix("id: ")).collect();
    assert_eq!(ids.len(), 5, "four lines and the job's end: {all}");
    assert!(
        all.contains(r#"data: {"state":"live","source":"streams"}"#),
        "{all}"
    );
    let resumed = get(&url, &[("Last-Event-ID", ids[1])], |got| {
        got.contains("job ended")
    });
    let messages: Vec<&str> = resumed
        .lines()
        .filter(|l| l.starts_with("data: {\"raw\""))
        .collect();
    assert_eq!(messages.len(), 3, "{resumed}");
    assert!(messages[0].contains("line 2") && messages[1].contains("line 3"));
    assert!(
        messages[2].contains(r#""end":true"#),
        "the job's end, as read"
    );
    assert!(
        !resumed.contains("event: gap"),
        "nothing is missing: {resumed}"
    );
    // Trimmed past the last line shown: the stream says lines may be missing.
    let mut con = redis.client().get_connection().unwrap();
    redis::cmd("XTRIM")
        .arg("logs:job_1")
        .arg("MAXLEN")
        .arg(2)
        .exec(&mut con)
        .unwrap();
    let trimmed = get(&url, &[("Last-Event-ID", ids[0])], |got| {
        got.contains("job ended")
    });
    let gap = trimmed.find("event: gap").expect("a gap is marked");
    assert!(gap < trimmed.find("line 3").unwrap(), "{trimmed}");
    assert!(!trimmed.contains("line 1"), "{trimmed}");
}

#[test]
fn the_redis_password_is_never_shown() {
    let redis = RedisServer::start();
    let mut admin = redis.client().get_connection().unwrap();
    redis::cmd("CONFIG")
        .arg("SET")
        .arg("requirepass")
        .arg("right-password")
        .exec(&mut admin)
        .unwrap();
    let url = format!("redis://:wrong-password@127.0.0.1:{}", redis.port());
    let served = serve(Console::builder(&url));
    let stream = get(&format!("{}/events", served.base), &[], |got| {
        got.contains("unavailable")
    });
    assert!(stream.contains(r#""state":"unavailable""#), "{stream}");
    assert!(!stream.contains("wrong-password"), "{stream}");
    let jobs = get(&format!("{}/api/jobs", served.base), &[], |_| false);
    assert!(!jobs.contains("wrong-password"), "{jobs}");
    let console = Console::builder(&url).build().unwrap();
    assert!(!format!("{console:?}").contains("wrong-password"));
}
