use std::path::PathBuf;
use std::time::Duration;

use spanline_redis::Mode;
use spanline_testkit::{Browser, RedisServer};
use spanline_web::{Console, Source};

use crate::{publish, serve};

const WAIT: Duration = Duration::from_secs(30);

/// The rows on the page.
const ROWS: &str = "document.querySelectorAll('#lines .row').length";
/// The messages of the rows, in order.
const MESSAGES: &str = "[...document.querySelectorAll('#lines .row .msg')].map(e => e.textContent)";

/// Where screenshots go: the target directory, and docs/img when
/// `SPANLINE_UPDATE_SCREENSHOTS` is set.
fn screenshot(browser: &mut Browser, name: &str) {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    let dir = target.join("screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    browser.screenshot(&path);
    assert!(std::fs::metadata(&path).unwrap().len() > 1000, "{path:?}");
    if std::env::var_os("SPANLINE_UPDATE_SCREENSHOTS").is_some() {
        let docs = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/img");
        std::fs::create_dir_all(&docs).unwrap();
        std::fs::copy(&path, docs.join(name)).unwrap();
    }
}

/// Sets the value of the page's element `id`, as a user would (`event`
/// tells the page).
fn set_input(browser: &mut Browser, id: &str, value: &str, event: &str) {
    browser.eval(&format!(
        "(() => {{ const e = document.getElementById('{id}'); e.value = {value:?}; \
         e.dispatchEvent(new Event('{event}')); }})()"
    ));
}

fn messages(browser: &mut Browser) -> Vec<String> {
    serde_json::from_value(browser.eval(MESSAGES)).unwrap()
}

#[test]
fn a_job_page_shows_live_lines_its_end_then_the_backlog_and_markup_as_text() {
    let redis = RedisServer::start();
    let served = serve(Console::builder(redis.url()).source(Source::Streams));
    let mut browser = Browser::start();
    let page = format!("{}/jobs/import_42", served.base);
    browser.open(&page);
    browser.wait_for(
        "document.getElementById('state').textContent === 'live (streams)'",
        WAIT,
    );
    let payload = r#"<img src=x onerror="window.hacked=1">"#;
    // Published while the page is open; the job's span closes at the end.
    publish(&redis, Mode::Both, Some("import_42"), || {
        tracing::info!(rows = 1200, table = "users", "import started");
        tracing::warn!(payload, "odd input");
        let error = std::io::Error::other("disk full");
        tracing::error!(error = &error as &dyn std::error::Error, "write failed");
    });
    browser.wait_for(&format!("{ROWS} === 4"), WAIT);
    assert_eq!(
        messages(&mut browser),
        ["import started", "odd input", "write failed", "job ended"]
    );
    assert_eq!(
        browser.eval("document.getElementById('state').textContent"),
        "job ended"
    );
    assert_eq!(
        browser.eval("document.querySelectorAll('#lines .row.end').length"),
        1
    );
    // Opened again: the backlog, all of it.
    browser.open(&page);
    browser.wait_for(&format!("{ROWS} === 4"), WAIT);
    // The payload is text: shown as written, no element made, nothing run.
    let shown = browser.eval("document.querySelectorAll('#lines .row')[1].textContent");
    assert!(shown.as_str().unwrap().contains(payload), "{shown}");
    assert_eq!(
        browser.eval("document.querySelectorAll('#lines img').length"),
        0
    );
    assert_eq!(browser.eval("window.hacked === undefined"), true);
    // Fields and the level.
    let first = browser.eval("document.querySelectorAll('#lines .row')[0].textContent");
    assert!(first.as_str().unwrap().contains("rows=1200"), "{first}");
    assert_eq!(
        browser.eval("document.querySelectorAll('#lines .row')[2].className"),
        "row lvl-ERROR"
    );
    let error = browser.eval("document.querySelector('#lines .row .err').textContent");
    assert_eq!(error, "error: disk full");
    // A click shows the raw JSON.
    let raw = browser.eval(
        "document.querySelectorAll('#lines .row')[0].click(); \
         JSON.parse(document.querySelector('#lines .raw').textContent).message",
    );
    assert_eq!(raw, "import started");
    screenshot(&mut browser, "console-job.png");
}

#[test]
fn the_global_page_lists_recent_jobs_and_follows_every_line() {
    let redis = RedisServer::start();
    publish(&redis, Mode::Both, Some("build_7"), || {
        tracing::info!(step = 1, "compiling");
        tracing::warn!(step = 2, "slow test");
    });
    publish(&redis, Mode::Both, Some("report_9"), || {
        tracing::info!(pages = 3, "rendering");
        tracing::error!(page = 2, "chart failed");
    });
    publish(&redis, Mode::Both, None, || {
        tracing::info!("health check ok")
    });
    let served = serve(Console::builder(redis.url()));
    let mut browser = Browser::start();
    browser.open(&served.base);
    // Five lines and the two jobs' ends.
    browser.wait_for(&format!("{ROWS} === 7"), WAIT);
    let jobs = browser.wait_for(
        "(() => { const j = [...document.querySelectorAll('#jobs a.job-id')].map(a => a.textContent); \
         return j.length === 2 && j; })()",
        WAIT,
    );
    // Newest first, each linking to its page under the console's path.
    assert_eq!(jobs, serde_json::json!(["report_9", "build_7"]));
    let href = browser.eval("document.querySelector('#jobs a').getAttribute('href')");
    assert_eq!(href, "/logs/jobs/report_9");
    let meta = browser.eval("document.querySelector('#jobs .meta').textContent");
    assert!(meta.as_str().unwrap().contains("ERROR"), "{meta}");
    screenshot(&mut browser, "console-global.png");
}

#[test]
fn after_a_redis_restart_lines_resume_with_none_missing_and_none_twice() {
    let mut redis = RedisServer::start();
    let served = serve(Console::builder(redis.url()).source(Source::Streams));
    let mut browser = Browser::start();
    browser.open(&format!("{}/jobs/etl_1", served.base));
    publish(&redis, Mode::Streams, Some("etl_1"), || {
        for i in 0..5 {
            tracing::info!("line {i}");
        }
    });
    browser.wait_for(&format!("{ROWS} === 6"), WAIT);
    redis.stop();
    let state = browser.wait_for(
        "(() => { const s = document.getElementById('state').textContent; \
         return s.startsWith('Redis unavailable') && s; })()",
        WAIT,
    );
    assert!(state.as_str().unwrap().contains("retrying"), "{state}");
    redis.restart();
    publish(&redis, Mode::Streams, Some("etl_1"), || {
        for i in 5..10 {
            tracing::info!("line {i}");
        }
    });
    browser.wait_for(&format!("{ROWS} === 12"), WAIT);
    browser.wait_for(
        "document.getElementById('state').textContent === 'job ended'",
        WAIT,
    );
    // Nothing more arrives: no line twice.
    std::thread::sleep(Duration::from_millis(800));
    let mut expected: Vec<String> = (0..5).map(|i| format!("line {i}")).collect();
    expected.push("job ended".into());
    expected.extend((5..10).map(|i| format!("line {i}")));
    expected.push("job ended".into());
    assert_eq!(messages(&mut browser), expected);
}

#[test]
fn a_page_opened_before_its_publisher_follows_the_stream_once_it_appears() {
    let redis = RedisServer::start();
    let served = serve(Console::builder(redis.url()));
    let mut browser = Browser::start();
    browser.open(&format!("{}/jobs/early_1", served.base));
    // Nothing written yet: no stream, so the channel.
    browser.wait_for(
        "document.getElementById('state').textContent === 'live (pub/sub)'",
        WAIT,
    );
    publish(&redis, Mode::Streams, Some("early_1"), || {
        (0..3).for_each(|i| tracing::info!(i, "streamed {i}"))
    });
    browser.wait_for(
        "document.getElementById('state').textContent === 'job ended'",
        WAIT,
    );
    browser.wait_for(&format!("{ROWS} === 4"), WAIT);
    assert_eq!(
        messages(&mut browser),
        ["streamed 0", "streamed 1", "streamed 2", "job ended"]
    );
    // A reload reads the stream from the start.
    browser.open(&format!("{}/jobs/early_1", served.base));
    browser.wait_for(&format!("{ROWS} === 4"), WAIT);
}

#[test]
fn on_pub_sub_a_reconnect_marks_where_lines_may_be_missing() {
    let mut redis = RedisServer::start();
    let served = serve(Console::builder(redis.url()).source(Source::PubSub));
    let mut browser = Browser::start();
    browser.open(&format!("{}/jobs/live_1", served.base));
    browser.wait_for(
        "document.getElementById('state').textContent === 'live (pub/sub)'",
        WAIT,
    );
    publish(&redis, Mode::PubSub, Some("live_1"), || {
        tracing::info!("before")
    });
    browser.wait_for(&format!("{ROWS} === 2"), WAIT);
    redis.restart();
    // The mark comes once the channel is subscribed again.
    browser.wait_for(
        "document.querySelectorAll('#lines .gap').length === 1",
        WAIT,
    );
    publish(&redis, Mode::PubSub, Some("live_1"), || {
        tracing::info!("after")
    });
    browser.wait_for(&format!("{ROWS} === 4"), WAIT);
    let order = browser.eval(
        "[...document.querySelectorAll('#lines > div')].map(e => e.classList.contains('gap') ? 'gap' : e.querySelector('.msg').textContent)",
    );
    assert_eq!(
        order,
        serde_json::json!(["before", "job ended", "gap", "after", "job ended"])
    );
    // The count counts lines, not the gap's row.
    assert_eq!(
        browser.eval("document.getElementById('counts').textContent"),
        "4 lines, 4 shown"
    );
}

#[test]
fn the_views_hide_fields_copy_ids_download_load_earlier_start_from_a_time_and_split() {
    let redis = RedisServer::start();
    let served = serve(Console::builder(redis.url()).backlog(10));
    // 30 lines, a few milliseconds before a time `since`, then 5 more.
    let mut since = 0;
    publish(&redis, Mode::Streams, Some("views_1"), || {
        for i in 0..30 {
            if i % 10 == 9 {
                tracing::warn!(i, user = "ann", "row {i}");
            } else {
                tracing::info!(i, user = "ann", "row {i}");
            }
        }
        tracing::info!("evil\u{202e}gnp.exe\u{2028}next");
        std::thread::sleep(Duration::from_millis(30));
        since = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis();
        std::thread::sleep(Duration::from_millis(30));
        (0..5).for_each(|i| tracing::info!(i, "late {i}"));
    });
    let mut browser = Browser::start();
    browser.open(&format!("{}/jobs/views_1", served.base));
    // The backlog: the last 10 of 37 lines (30, the odd one, 5, the end).
    browser.wait_for(&format!("{ROWS} === 10"), WAIT);
    assert_eq!(
        browser.eval("document.getElementById('counts').textContent"),
        "10 lines, 10 shown"
    );
    // Times to the millisecond.
    let time = browser.eval("document.querySelector('#lines .row .time').textContent");
    let time = time.as_str().unwrap();
    assert!(
        time.len() == 12
            && time.as_bytes()[8] == b'.'
            && time[9..].bytes().all(|b| b.is_ascii_digit()),
        "{time}"
    );
    // Bidi overrides and line separators are shown escaped.
    let text = browser.eval("document.getElementById('lines').textContent");
    let text = text.as_str().unwrap();
    assert!(text.contains("evil\\u{202e}gnp.exe\\u{2028}next"), "{text}");
    assert!(!text.contains('\u{202e}') && !text.contains('\u{2028}'));

    // Load earlier: the 27 lines before, from the stream.
    browser.eval("document.getElementById('earlier').click()");
    browser.wait_for(&format!("{ROWS} === 37"), WAIT);
    assert_eq!(messages(&mut browser)[0], "row 0");
    browser.wait_for(
        "document.getElementById('earlier').textContent === 'no earlier lines'",
        WAIT,
    );

    // A click on a field's name hides it everywhere; its chip shows it again.
    browser.eval("document.querySelector('#lines .k[data-key=user]').click()");
    assert_eq!(
        browser.eval("document.querySelectorAll('#lines .k[data-key=user]').length"),
        0
    );
    assert_eq!(
        browser.eval("document.querySelectorAll('#lines .k[data-key=i]').length"),
        35
    );
    browser.eval("document.querySelector('#hidden-fields .chip').click()");
    assert_eq!(
        browser.eval("document.querySelectorAll('#lines .k[data-key=user]').length"),
        30
    );

    // Download: what is shown (the level filter applied), as JSON lines.
    browser.eval(
        "(() => { const made = URL.createObjectURL; \
         URL.createObjectURL = (blob) => { window.downloaded = blob; return made.call(URL, blob); }; })()",
    );
    set_input(&mut browser, "level", "3", "change");
    browser.eval("document.getElementById('download').click()");
    let lines = browser.eval("window.downloaded.text()");
    let lines: Vec<serde_json::Value> = lines
        .as_str()
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let warned: Vec<&str> = lines
        .iter()
        .map(|l| l["message"].as_str().unwrap())
        .collect();
    assert_eq!(warned, ["row 9", "row 19", "row 29"]);
    set_input(&mut browser, "level", "0", "change");

    // Copy: the full id, from the job's page.
    browser.eval(
        "navigator.clipboard.writeText = async (text) => { window.copied = text; }; \
         document.getElementById('copy-job').click()",
    );
    browser.wait_for("window.copied === 'views_1'", WAIT);
    assert_eq!(
        browser.eval("document.getElementById('copy-job').textContent"),
        "copied"
    );

    // From a time on: the 5 late lines and the end, nothing older.
    browser.eval(&format!(
        "(() => {{ const d = new Date({since}); const p = (n, w) => String(n).padStart(w, '0'); \
         const e = document.getElementById('from'); \
         e.value = d.getFullYear() + '-' + p(d.getMonth() + 1, 2) + '-' + p(d.getDate(), 2) + 'T' + \
           p(d.getHours(), 2) + ':' + p(d.getMinutes(), 2) + ':' + p(d.getSeconds(), 2) + '.' + p(d.getMilliseconds(), 3); \
         e.dispatchEvent(new Event('change')); }})()"
    ));
    browser.wait_for(&format!("{ROWS} === 6"), WAIT);
    assert_eq!(messages(&mut browser)[0], "late 0");
    assert_eq!(
        browser.eval("document.querySelectorAll('#lines .gap').length"),
        0
    );

    // The split view: this job beside the global feed, each with its own
    // search; the global page lists the job by its full id, with a copy button.
    browser.open(&format!("{}/split?a=views_1&b=", served.base));
    let pane = |side: &str, expr: &str| {
        format!("(() => {{ const d = document.getElementById('pane-{side}').contentDocument; return d && {expr}; }})()")
    };
    browser.wait_for(
        &pane("a", "d.querySelectorAll('#lines .row').length === 10"),
        WAIT,
    );
    browser.wait_for(
        &pane("b", "d.querySelectorAll('#lines .row').length === 10"),
        WAIT,
    );
    browser.wait_for(
        &pane(
            "b",
            "d.querySelector('#jobs .job-id')?.textContent === 'views_1'",
        ),
        WAIT,
    );
    assert_eq!(
        browser.eval(&pane("b", "d.querySelector('#jobs .copy').textContent")),
        "copy id"
    );
    let global_rows = browser.eval(&pane("b", "d.querySelectorAll('#lines .row').length"));
    browser.eval(&pane(
        "a",
        "(() => { const e = d.getElementById('search'); e.value = 'late 3'; \
         e.dispatchEvent(new KeyboardEvent('keydown', { key: 'Enter' })); return true; })()",
    ));
    browser.wait_for(
        &pane("a", "d.querySelectorAll('#lines .row').length === 1"),
        WAIT,
    );
    assert_eq!(
        browser.eval(&pane("b", "d.querySelectorAll('#lines .row').length")),
        global_rows,
        "the other pane keeps its own search"
    );
    screenshot(&mut browser, "console-split.png");
}

#[test]
fn the_level_filter_and_search_choose_the_rows() {
    let redis = RedisServer::start();
    publish(&redis, Mode::Streams, Some("mixed_1"), || {
        tracing::debug!(user = "ann", "cache miss");
        tracing::info!(user = "bob", "login");
        tracing::warn!(user = "ann", "slow query");
        tracing::error!(user = "cid", "payment failed");
    });
    let served = serve(Console::builder(redis.url()));
    let mut browser = Browser::start();
    browser.open(&format!("{}/jobs/mixed_1", served.base));
    browser.wait_for(&format!("{ROWS} === 5"), WAIT);
    let set_level = |b: &mut Browser, v: u8| set_input(b, "level", &v.to_string(), "change");
    set_level(&mut browser, 3);
    assert_eq!(messages(&mut browser), ["slow query", "payment failed"]);
    set_level(&mut browser, 0);
    // The search is spanline's query language, matched on the server: the
    // page reconnects with it and shows what comes back.
    // Waits until the rows are `shown`, in order.
    let search = |b: &mut Browser, q: &str, shown: &[&str]| {
        set_input(b, "search", q, "input");
        let want = serde_json::to_string(shown).unwrap();
        b.wait_for(&format!("JSON.stringify({MESSAGES}) === {want:?}"), WAIT);
    };
    // A field's value...
    search(&mut browser, "user=ann", &["cache miss", "slow query"]);
    // ...the grammar: levels in order, and, not...
    search(
        &mut browser,
        "level>=warn and not user=cid",
        &["slow query"],
    );
    // ...and a word alone, anywhere, whatever the case, marked where it is.
    search(&mut browser, "PAYMENT", &["payment failed"]);
    assert_eq!(
        browser.eval("[...document.querySelectorAll('#lines mark')].map(m => m.textContent)"),
        serde_json::json!(["payment"])
    );
    // A query that is wrong says where, and the rows stay.
    set_input(&mut browser, "search", "level>=", "input");
    browser.wait_for(
        "document.getElementById('search-error').textContent.includes('column 8')",
        WAIT,
    );
    assert_eq!(messages(&mut browser), ["payment failed"]);
    search(
        &mut browser,
        "",
        &[
            "cache miss",
            "login",
            "slow query",
            "payment failed",
            "job ended",
        ],
    );
    assert_eq!(
        browser.eval("document.getElementById('search-error').textContent"),
        ""
    );
    // Paused, new lines wait; resumed, they show.
    browser.eval("document.getElementById('pause').click()");
    publish(&redis, Mode::Streams, Some("mixed_1"), || {
        tracing::info!("while paused")
    });
    browser.wait_for(
        "document.getElementById('counts').textContent.includes('2 new while paused')",
        WAIT,
    );
    assert_eq!(browser.eval(ROWS), 5);
    browser.eval("document.getElementById('pause').click()");
    browser.wait_for(&format!("{ROWS} === 7"), WAIT);
}

#[test]
fn a_flood_of_lines_keeps_the_row_count_bounded_and_the_page_responsive() {
    let redis = RedisServer::start();
    let served = serve(Console::builder(redis.url()).source(Source::Streams));
    let mut browser = Browser::start();
    browser.open(&format!("{}/jobs/flood_1", served.base));
    browser.wait_for(
        "document.getElementById('state').textContent === 'live (streams)'",
        WAIT,
    );
    // 20,000 lines at once, written straight to the job's stream.
    let mut con = redis.client().get_connection().unwrap();
    for chunk in 0..20 {
        let mut pipe = redis::pipe();
        for i in 0..1000 {
            let n = chunk * 1000 + i;
            let line = format!(
                r#"{{"timestamp":"2026-12-02T12:00:00Z","level":"INFO","message":"flood {n}","job_id":"flood_1","n":{n}}}"#
            );
            pipe.cmd("XADD")
                .arg("logs:flood_1")
                .arg("*")
                .arg("line")
                .arg(line)
                .ignore();
        }
        pipe.exec(&mut con).unwrap();
    }
    browser.wait_for(
        "document.getElementById('counts').textContent.startsWith('20,000 lines')",
        Duration::from_secs(60),
    );
    let rows = browser.eval(ROWS).as_u64().unwrap();
    assert!((1..=5000).contains(&rows), "{rows} rows");
    // The newest lines are the ones kept, in order.
    let last = browser.eval("document.querySelector('#lines .row:last-child .msg').textContent");
    assert_eq!(last, "flood 19999");
    // The page still answers, and a search brings the line back from the
    // stream, matched on the server.
    set_input(&mut browser, "search", "\"flood 19998\"", "input");
    browser.wait_for(
        &format!("JSON.stringify({MESSAGES}) === '[\"flood 19998\"]'"),
        WAIT,
    );
}

#[test]
fn a_console_with_a_token_opens_with_it_and_streams_on_its_cookie() {
    let redis = RedisServer::start();
    publish(&redis, Mode::Streams, Some("secret_1"), || {
        tracing::info!("hidden")
    });
    let served = serve(Console::builder(redis.url()).token("t0ken"));
    let mut browser = Browser::start();
    browser.open(&format!("{}/jobs/secret_1", served.base));
    assert_eq!(
        browser.eval("document.querySelectorAll('#lines').length"),
        0,
        "without the token there is no page"
    );
    browser.open(&format!("{}/jobs/secret_1?token=t0ken", served.base));
    browser.wait_for(&format!("{ROWS} === 2"), WAIT);
    assert_eq!(messages(&mut browser), ["hidden", "job ended"]);
}

#[test]
fn behind_an_authenticating_proxy_the_page_says_who_is_signed_in_and_streams() {
    let redis = RedisServer::start();
    // Served alone (the peer address is known), trusting this address.
    let console = Console::builder(redis.url())
        .trust_proxy("Remote-User", ["127.0.0.1".parse().unwrap()])
        .unwrap()
        .build()
        .unwrap();
    let (base, _runtime) = crate::serve_alone(console);
    let mut browser = Browser::start();
    // Without the proxy's header: refused.
    browser.open(&format!("{base}/jobs/proxied_1"));
    let text = browser.eval("document.body.textContent");
    assert!(
        text.as_str().unwrap().contains("authenticating proxy"),
        "{text}"
    );
    // Through the proxy (its header on every request, the event stream's too).
    browser.set_headers(&[("Remote-User", "ann")]);
    browser.open(&format!("{base}/jobs/proxied_1"));
    browser.wait_for(
        "document.getElementById('state').textContent.startsWith('live')",
        WAIT,
    );
    assert_eq!(
        browser.eval("document.getElementById('user').textContent"),
        "signed in as ann"
    );
    publish(&redis, Mode::Streams, Some("proxied_1"), || {
        tracing::info!("through the proxy")
    });
    browser.wait_for(&format!("{ROWS} === 2"), WAIT);
    assert_eq!(messages(&mut browser)[0], "through the proxy");
}
