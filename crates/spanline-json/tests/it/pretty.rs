//! The console renderer: layout, error chains, colours, and safety against
//! hostile values.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report

use std::fmt;

use spanline_core::{Clock, ContextLayer, Timestamp};
use spanline_json::PrettyLayer;
use spanline_testkit::Capture;
use tracing::{info, info_span, warn};
use tracing_subscriber::prelude::*;

fn render(ansi: bool, f: impl FnOnce()) -> String {
    let capture = Capture::new();
    let pretty = PrettyLayer::new()
        .with_writer(capture.clone())
        .with_ansi(ansi)
        .with_clock(Clock::fixed(Timestamp::from_unix(1_763_758_369, 0)));
    let subscriber = tracing_subscriber::registry()
        .with(ContextLayer::new())
        .with(pretty);
    tracing::subscriber::with_default(subscriber, f);
    capture.text()
}

#[test]
fn layout_matches_structlog_console() {
    let out = render(false, || {
        let _req = info_span!("request", request_id = "r-1", ip = "shadowed").entered();
        info!(
            ip = "1.2.3.4",
            user_id = 42,
            note = "two words",
            "user logged in"
        );
    });
    assert_eq!(
        out,
        format!("2025-11-21 20:52:49 [info     ] user logged in                 [{}] ip=1.2.3.4 user_id=42 note=\"two words\" request_id=r-1\n", module_path!())
    );
}

#[test]
fn error_chain_is_printed_under_the_line() {
    #[derive(Debug)]
    struct Outer(Inner);
    #[derive(Debug)]
    struct Inner;
    impl fmt::Display for Outer {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("charge failed")
        }
    }
    impl fmt::Display for Inner {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("gateway timeout")
        }
    }
    impl std::error::Error for Outer {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }
    impl std::error::Error for Inner {}
    let err = Outer(Inner);
    let out = render(false, || {
        warn!(error = &err as &dyn std::error::Error, "payment failed")
    });
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3);
    assert!(lines[0].contains("[warning  ] payment failed"));
    assert!(lines[0].ends_with("error=\"charge failed\""));
    assert_eq!(lines[1], "    error: charge failed");
    assert_eq!(lines[2], "      caused by: gateway timeout");
}

#[test]
fn hostile_values_cannot_move_the_cursor_or_forge_lines() {
    let hostile = "ok\n2025-11-21 00:00:00 [info     ] forged\r\u{1b}[2J\u{1b}]0;title\u{7}\u{9b}31m\u{202e}evil";
    let out = render(false, || {
        let _s = info_span!("s", ctx = hostile).entered();
        info!(v = hostile, d = ?hostile, "{hostile}");
    });
    assert_eq!(out.matches('\n').count(), 1, "one line: {out:?}");
    assert!(out.ends_with('\n'));
    for bad in ['\r', '\u{1b}', '\u{7}', '\u{9b}', '\u{202e}'] {
        assert!(!out.contains(bad), "{bad:?} leaked into {out:?}");
    }
    assert!(out.contains("\\u{1b}[2J"), "{out}");
}

#[test]
fn colours_only_when_asked() {
    let plain = render(false, || info!("m"));
    assert!(!plain.contains('\u{1b}'));
    let coloured = render(true, || info!(k = 1, "m"));
    assert!(
        coloured.contains("\u{1b}[32;1minfo     \u{1b}[0m"),
        "{coloured:?}"
    );
    assert!(
        coloured.contains("\u{1b}[36mk\u{1b}[0m=\u{1b}[35m1\u{1b}[0m"),
        "{coloured:?}"
    );
}

/// A `Debug` and `Display` that write half, then fail: `format!` panics on
/// such an impl.
struct Broken;

impl fmt::Debug for Broken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("half")?;
        Err(fmt::Error)
    }
}

impl fmt::Display for Broken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("half")?;
        Err(fmt::Error)
    }
}

#[derive(Debug)]
struct BrokenError(Broken);

impl fmt::Display for BrokenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl std::error::Error for BrokenError {}

#[test]
fn failing_debug_and_display_impls_are_marked_never_a_panic() {
    let out = render(false, || {
        info!(v = ?Broken, "debug fails");
        info!(d = %Broken, "display fails");
        let err = BrokenError(Broken);
        warn!(error = &err as &dyn std::error::Error, "error fails");
    });
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 4, "three lines and the error chain: {out}");
    assert!(lines[0].ends_with(r#"v="half[fmt error]""#), "{}", lines[0]);
    assert!(lines[1].ends_with(r#"d="half[fmt error]""#), "{}", lines[1]);
    assert!(
        lines[2].ends_with(r#"error="half[fmt error]""#),
        "{}",
        lines[2]
    );
    assert_eq!(lines[3].trim(), "error: half[fmt error]");
}

#[test]
fn every_error_style_reads_back_as_a_chain() {
    use spanline_core::{ErrorStyle, Preset, Schema};
    use spanline_testkit::{QueryFailed, TimedOut};
    let cause = "timed out after 5s";
    for (style, key, chain) in [
        (
            ErrorStyle::Chain,
            "error",
            vec!["query failed".to_string(), cause.to_string()],
        ),
        (
            ErrorStyle::Ecs,
            "error.stack_trace",
            vec![
                "QueryFailed: query failed".to_string(),
                format!("TimedOut: {cause}"),
            ],
        ),
        (
            ErrorStyle::Traceback,
            "exception",
            vec![
                "QueryFailed: query failed".to_string(),
                format!("TimedOut: {cause}"),
            ],
        ),
        (
            ErrorStyle::Dicts,
            "exception",
            vec![
                "QueryFailed: query failed".to_string(),
                format!("TimedOut: {cause}"),
            ],
        ),
    ] {
        let capture = spanline_testkit::Capture::new();
        let subscriber = tracing_subscriber::registry()
            .with(spanline_core::ContextLayer::new())
            .with(
                spanline_json::JsonLayer::builder()
                    .schema(Schema::builder(Preset::Flat).errors(style))
                    .with_writer(capture.clone())
                    .build(),
            );
        tracing::subscriber::with_default(subscriber, || {
            warn!(
                error = &QueryFailed(TimedOut) as &dyn std::error::Error,
                "payment failed"
            );
        });
        let line = spanline_json::PrettyLine::from_json(&capture.text()).unwrap();
        assert_eq!(
            line.errors,
            [(key.to_string(), chain)],
            "{style:?}: {line:?}"
        );
    }
}

#[test]
fn critical_lines_show_critical_as_structlog_s_console_does() {
    let out = render(false, || {
        tracing::error!(critical = true, rss_mb = 4096, "out of memory");
        tracing::error!(critical = false, "plain error");
        warn!(critical = true, "only errors are critical");
    });
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines[0].contains("[critical ] out of memory"),
        "{}",
        lines[0]
    );
    assert!(
        !lines[0].contains("critical="),
        "the marker is the level: {}",
        lines[0]
    );
    assert!(
        lines[1].contains("[error    ] plain error") && lines[1].contains("critical=false"),
        "{}",
        lines[1]
    );
    assert!(lines[2].contains("[warning  ]"), "{}", lines[2]);
    // Read back from any preset's JSON line.
    for json in [
        r#"{"timestamp":"2026-12-03T10:00:00Z","level":"critical","event":"oom"}"#,
        r#"{"timestamp":"2026-12-03T10:00:00Z","level":"CRITICAL","message":"oom"}"#,
        r#"{"time":"2026-12-03T10:00:00Z","level":60,"msg":"oom"}"#,
        r#"{"time":"2026-12-03T10:00:00Z","severity":"CRITICAL","message":"oom"}"#,
    ] {
        let line = spanline_json::PrettyLine::from_json(json).unwrap();
        assert_eq!(line.level, "critical", "{json}");
    }
}
