use std::net::SocketAddr;

use spanline_redis::Mode;
use spanline_testkit::RedisServer;
use spanline_web::{Console, ConsoleError};

use crate::{get, publish, serve, serve_alone};

const ROUTES: &[&str] = &[
    "",
    "/jobs/job_1",
    "/api/jobs",
    "/events",
    "/jobs/job_1/events",
    "/jobs/job_1/history?before=1-0",
    "/api/history?before=1-0",
    "/split?a=job_1&b=",
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

/// The ids of a job's lines, from its event stream.
fn ids_of(url: &str) -> Vec<String> {
    let all = get(url, &[], |got| got.contains("job ended"));
    all.lines()
        .filter_map(|l| l.strip_prefix("id: "))
        .map(str::to_owned)
        .collect()
}

#[test]
fn history_reads_the_lines_before_a_line_and_since_starts_at_a_time() {
    let redis = RedisServer::start();
    // Two batches a few milliseconds apart, `since` between them.
    let mut since = 0;
    publish(&redis, Mode::Streams, Some("hist"), || {
        (0..10).for_each(|i| tracing::info!(i, "first {i}"));
        std::thread::sleep(std::time::Duration::from_millis(20));
        since = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis();
        std::thread::sleep(std::time::Duration::from_millis(20));
        (0..5).for_each(|i| tracing::info!(i, "second {i}"));
    });
    let served = serve(Console::builder(redis.url()));
    let ids = ids_of(&format!("{}/jobs/hist/events", served.base));
    assert_eq!(ids.len(), 16, "15 lines and the end: {ids:?}");
    // The 4 lines before the first of the second batch.
    let url = format!("{}/jobs/hist/history?before={}&n=4", served.base, ids[10]);
    let body = get(&url, &[], |got| got.contains("\"more\""));
    let json: serde_json::Value =
        serde_json::from_str(&body[body.find("\r\n\r\n").unwrap() + 4..]).unwrap();
    let lines = json["lines"].as_array().unwrap();
    let messages: Vec<&str> = lines
        .iter()
        .map(|l| l["line"]["message"].as_str().unwrap())
        .collect();
    assert_eq!(messages, ["first 6", "first 7", "first 8", "first 9"]);
    assert_eq!(lines[3]["id"], ids[9].as_str());
    assert_eq!(json["more"], true);
    // The search applies to history too; nothing before the first line.
    let url = format!(
        "{}/jobs/hist/history?before={}&q=first%205",
        served.base, ids[10]
    );
    let body = get(&url, &[], |got| got.contains("\"more\""));
    assert!(
        body.contains("first 5") && !body.contains("first 4"),
        "{body}"
    );
    let url = format!("{}/jobs/hist/history?before={}", served.base, ids[0]);
    assert!(
        get(&url, &[], |got| got.contains("\"more\"")).ends_with(r#"{"lines":[],"more":false}"#)
    );
    // From a time on: the second batch (and the end), nothing older, no gap.
    let from = get(
        &format!("{}/jobs/hist/events?since={since}", served.base),
        &[],
        |got| got.contains("job ended"),
    );
    let shown: Vec<&str> = from
        .lines()
        .filter(|l| l.starts_with("data: {\"raw\""))
        .collect();
    assert_eq!(shown.len(), 6, "{from}");
    assert!(
        shown[0].contains("second 0") && !from.contains("first"),
        "{from}"
    );
    assert!(!from.contains("event: gap"), "{from}");
    // Bad input is refused with the reason.
    for bad in ["history?before=xyz", "history", "events?since=yesterday"] {
        let response = head(&format!("{}/jobs/hist/{bad}", served.base), &[]);
        assert_eq!(status(&response), 400, "{bad}: {response}");
    }
}

#[test]
fn an_authenticating_proxy_lets_its_users_in_and_no_one_else() {
    let loopback: std::net::IpAddr = "127.0.0.1".parse().unwrap();
    // Behind the proxy, no token: its users come in, nobody else.
    let console = Console::builder("redis://127.0.0.1:1")
        .trust_proxy("Remote-User", [loopback])
        .unwrap()
        .build()
        .unwrap();
    let (base, _runtime) = serve_alone(console);
    let page = get(&format!("{base}/"), &[("Remote-User", "ann")], |got| {
        got.contains("</html>")
    });
    assert_eq!(status(&page), 200, "{page}");
    assert!(page.contains(r#"data-user="ann""#), "{page}");
    let markup = get(
        &format!("{base}/"),
        &[("Remote-User", "<b>eve</b>")],
        |got| got.contains("</html>"),
    );
    assert!(
        markup.contains(r#"data-user="&lt;b&gt;eve&lt;/b&gt;""#),
        "the name is text: {markup}"
    );
    for headers in [
        &[][..],
        &[("Remote-User", "")][..],
        &[("X-Other", "ann")][..],
    ] {
        let refused = head(&format!("{base}/api/jobs"), headers);
        assert_eq!(status(&refused), 401, "{headers:?}: {refused}");
    }
    // A proxy elsewhere: this address's header is not believed, but the
    // token still works.
    let elsewhere: std::net::IpAddr = "127.0.0.2".parse().unwrap();
    let console = Console::builder("redis://127.0.0.1:1")
        .token("s3cret")
        .trust_proxy("Remote-User", [elsewhere])
        .unwrap()
        .build()
        .unwrap();
    let (base, _runtime2) = serve_alone(console);
    let refused = head(&format!("{base}/"), &[("Remote-User", "ann")]);
    assert_eq!(status(&refused), 401, "{refused}");
    let token = head(&format!("{base}/"), &[("Authorization", "Bearer s3cret")]);
    assert_eq!(status(&token), 200, "{token}");
    // A header name that is not one is an error, not a console that
    // believes nobody.
    let bad = Console::builder("redis://127.0.0.1:1").trust_proxy("Remote User", [loopback]);
    assert!(matches!(bad, Err(ConsoleError::Header(_))), "{bad:?}");
}
