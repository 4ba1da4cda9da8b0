//! OpenTelemetry correlation (feature `opentelemetry`): the ids on every
//! line are the ids of the spans tracing-opentelemetry exports, and an
//! incoming `traceparent` is continued, so spanline's `trace_id` and
//! OpenTelemetry's are one id.
//!
//! Spans are exported to memory by the SDK's simple processor as each one
//! ends; nothing leaves the machine.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report

use std::sync::{Arc, Mutex};

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{SdkTracerProvider, SpanData, SpanExporter};
use serde_json::{Map, Value};
use spanline::context::{ContextSnapshot, RequestContextLayer};
use spanline::{ContextLayer, JsonLayer, Preset, Schema};
use spanline_testkit::Capture;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tracing_subscriber::prelude::*;

/// Keeps every exported span.
#[derive(Clone, Debug, Default)]
struct Exported(Arc<Mutex<Vec<SpanData>>>);

impl SpanExporter for Exported {
    fn export(
        &self,
        batch: Vec<SpanData>,
    ) -> impl std::future::Future<Output = OTelSdkResult> + Send {
        self.0.lock().unwrap().extend(batch);
        std::future::ready(Ok(()))
    }
}

impl Exported {
    /// The exported span named `name` (exactly one).
    fn span(&self, name: &str) -> SpanData {
        let spans = self.0.lock().unwrap();
        let found: Vec<_> = spans.iter().filter(|s| s.name == name).collect();
        assert_eq!(found.len(), 1, "spans named {name}: {:?}", names(&spans));
        found[0].clone()
    }
}

fn names(spans: &[SpanData]) -> Vec<String> {
    spans.iter().map(|s| s.name.to_string()).collect()
}

fn ids(span: &SpanData) -> (String, String) {
    let sc = &span.span_context;
    (
        format!("{:032x}", sc.trace_id()),
        format!("{:016x}", sc.span_id()),
    )
}

/// Runs `f` under tracing-opentelemetry's layer, spanline's context layer
/// and a JSON layer of `preset`; returns the lines and the exported spans.
fn run(preset: Preset, f: impl FnOnce()) -> (Vec<Map<String, Value>>, Exported) {
    run_filtered("trace", preset, f)
}

/// [`run`] with `directives` on the context layer, as `init()` puts
/// `RUST_LOG` there.
fn run_filtered(
    directives: &str,
    preset: Preset,
    f: impl FnOnce(),
) -> (Vec<Map<String, Value>>, Exported) {
    let exported = Exported::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exported.clone())
        .build();
    let capture = Capture::new();
    let filter = tracing_subscriber::EnvFilter::new(directives);
    let subscriber = tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")))
        .with(ContextLayer::new().filter(filter))
        .with(
            JsonLayer::builder()
                .schema(Schema::builder(preset).gcp_project("proj"))
                .with_writer(capture.clone())
                .build(),
        );
    tracing::subscriber::with_default(subscriber, f);
    provider.force_flush().unwrap();
    (capture.json_lines(), exported)
}

fn line<'a>(lines: &'a [Map<String, Value>], message: &str) -> &'a Map<String, Value> {
    lines
        .iter()
        .find(|l| l["message"] == message)
        .unwrap_or_else(|| panic!("no line {message:?} in {lines:?}"))
}

fn line_ids(line: &Map<String, Value>) -> (String, String) {
    (
        line["trace_id"].as_str().unwrap().to_string(),
        line["span_id"].as_str().unwrap().to_string(),
    )
}

#[test]
fn every_line_carries_the_ids_of_its_exported_span() {
    let (lines, exported) = run(Preset::Flat, || {
        tracing::info!("outside");
        let outer = tracing::info_span!("outer", request_id = "r-1");
        let _outer = outer.enter();
        tracing::info!("in outer");
        let inner = tracing::info_span!("inner", step = 1);
        inner.in_scope(|| tracing::warn!("in inner"));
        // An explicit parent, not the entered span, decides the ids.
        tracing::info!(parent: &inner, "explicit parent");
        drop(inner);
        tracing::info!("outer again");
    });
    let (outer, inner) = (exported.span("outer"), exported.span("inner"));
    assert_eq!(line_ids(line(&lines, "in outer")), ids(&outer));
    assert_eq!(line_ids(line(&lines, "outer again")), ids(&outer));
    assert_eq!(line_ids(line(&lines, "in inner")), ids(&inner));
    assert_eq!(line_ids(line(&lines, "explicit parent")), ids(&inner));
    assert_eq!(ids(&outer).0, ids(&inner).0, "one trace");
    assert_eq!(inner.parent_span_id, outer.span_context.span_id());
    let (trace, span) = line_ids(line(&lines, "in inner"));
    assert_eq!((trace.len(), span.len()), (32, 16));
    assert!(trace
        .bytes()
        .chain(span.bytes())
        .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
    // Context still there; no ids outside a span.
    assert_eq!(line(&lines, "in inner")["request_id"], "r-1");
    let outside = line(&lines, "outside");
    assert!(!outside.contains_key("trace_id") && !outside.contains_key("span_id"));
}

/// Production runs `RUST_LOG=warn`: the request span (a context span) is
/// still exported and its WARN line carries its ids; a plain DEBUG span is
/// gone for both the log and the trace (INFO spans are context: kept).
#[test]
fn under_rust_log_warn_context_spans_keep_their_ids() {
    let (lines, exported) = run_filtered("warn", Preset::Flat, || {
        let _request = tracing::info_span!("request", request_id = "r-9").entered();
        tracing::info!("hidden");
        let _plain = tracing::debug_span!("plain").entered();
        tracing::warn!("slow");
    });
    assert_eq!(lines.len(), 1, "{lines:?}");
    let slow = line(&lines, "slow");
    assert_eq!(line_ids(slow), ids(&exported.span("request")));
    assert_eq!(slow["request_id"], "r-9");
    let names = names(&exported.0.lock().unwrap());
    assert!(!names.contains(&"plain".to_string()), "{names:?}");
}

#[test]
fn an_event_field_named_trace_id_wins_and_the_context_id_is_shadowed() {
    let (lines, exported) = run(Preset::Flat, || {
        // A context `trace_id` that is not OpenTelemetry's: the line has one
        // trace_id, OpenTelemetry's (JSON lines with unique keys are checked
        // by `json_lines`).
        let _s = tracing::info_span!("work", trace_id = "not-otel").entered();
        tracing::info!("shadowed");
        tracing::info!(trace_id = "mine", "field wins");
    });
    let work = exported.span("work");
    assert_eq!(line_ids(line(&lines, "shadowed")), ids(&work));
    assert_eq!(line(&lines, "field wins")["trace_id"], "mine");
    assert_eq!(line(&lines, "field wins")["span_id"], ids(&work).1.as_str());
}

#[test]
fn cloud_logging_trace_and_span_come_from_opentelemetry() {
    let (lines, exported) = run(Preset::Gcp, || {
        let _s = tracing::info_span!("gcp").entered();
        tracing::info!("hello");
    });
    let (trace, span) = ids(&exported.span("gcp"));
    let hello = line(&lines, "hello");
    assert_eq!(
        hello["logging.googleapis.com/trace"],
        format!("projects/proj/traces/{trace}").as_str()
    );
    assert_eq!(hello["logging.googleapis.com/spanId"], span.as_str());
}

#[test]
fn the_nested_preset_carries_the_ids_at_the_top() {
    let (lines, exported) = run(Preset::Nested, || {
        let _s = tracing::info_span!("nested").entered();
        tracing::info!("hello");
    });
    let hello = lines
        .iter()
        .find(|l| l["fields"]["message"] == "hello")
        .unwrap();
    assert_eq!(line_ids(hello), ids(&exported.span("nested")));
}

#[test]
fn a_job_snapshot_continues_the_trace_of_the_span_that_captured_it() {
    let (lines, exported) = run(Preset::Flat, || {
        let payload = {
            let _enqueue = tracing::info_span!("enqueue", request_id = "r-2").entered();
            let snap = ContextSnapshot::capture();
            // An outgoing call's parent is this very span, not a made-up one.
            let headers = snap.to_headers();
            let tp = headers["traceparent"].to_str().unwrap().to_string();
            tracing::info!(traceparent = %tp, "enqueued");
            serde_json::to_string(&snap).unwrap()
        };
        let snap: ContextSnapshot = serde_json::from_str(&payload).unwrap();
        let _job = snap.restore("build").entered();
        tracing::info!("job line");
    });
    let (enqueue, restored) = (exported.span("enqueue"), exported.span("restored"));
    let (trace, enqueue_id) = ids(&enqueue);
    let enqueued = line(&lines, "enqueued");
    assert_eq!(
        enqueued["traceparent"],
        format!("00-{trace}-{enqueue_id}-01").as_str()
    );
    assert_eq!(ids(&restored).0, trace, "the job continues the trace");
    assert_eq!(restored.parent_span_id, enqueue.span_context.span_id());
    assert!(restored.parent_span_is_remote);
    let job = line(&lines, "job line");
    assert_eq!(line_ids(job), ids(&restored));
    assert_eq!(job["request_id"], "r-2");
}

/// The composition docs/context.md recommends: tower-http's `TraceLayer`
/// inside the request context, over real HTTP on loopback, with an
/// incoming `traceparent`.
#[test]
fn an_incoming_traceparent_is_continued_through_request_context_and_trace_layer() {
    use axum::routing::get;
    use tower_http::trace::TraceLayer;

    const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
    const PARENT: &str = "00f067aa0ba902b7";
    let (lines, exported) = run(Preset::Flat, || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let app = axum::Router::new()
                .route(
                    "/work",
                    get(|| async {
                        tracing::info!("handled");
                        "ok"
                    }),
                )
                .layer(TraceLayer::new_for_http().make_span_with(
                    |req: &http::Request<axum::body::Body>| {
                        tracing::debug_span!("http", method = %req.method(), path = %req.uri().path())
                    },
                ))
                .layer(RequestContextLayer::new());
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            tokio::spawn(async move { axum::serve(listener, app).await });
            let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
            let head = format!(
                "GET /work?token=s3cret HTTP/1.1\r\nhost: x\r\ntraceparent: 00-{TRACE}-{PARENT}-01\r\nconnection: close\r\n\r\n"
            );
            stream.write_all(head.as_bytes()).await.unwrap();
            let mut reply = Vec::new();
            stream.read_to_end(&mut reply).await.unwrap();
            assert!(reply.starts_with(b"HTTP/1.1 200"), "{}", String::from_utf8_lossy(&reply));
        });
    });
    let (request, http) = (exported.span("request"), exported.span("http"));
    assert_eq!(
        ids(&request).0,
        TRACE,
        "OpenTelemetry continues the caller's trace"
    );
    assert_eq!(format!("{:016x}", request.parent_span_id), PARENT);
    assert!(request.parent_span_is_remote);
    assert_eq!(http.parent_span_id, request.span_context.span_id());

    let request_id = line(&lines, "request finished")["request_id"].clone();
    let ours = [ids(&request).1, ids(&http).1];
    for l in &lines {
        assert_eq!(l["trace_id"], TRACE, "one trace id, never two: {l:?}");
        assert!(
            ours.contains(&l["span_id"].as_str().unwrap().to_string()),
            "{l:?}"
        );
        assert_eq!(l["request_id"], request_id, "{l:?}");
        assert!(
            !serde_json::to_string(l).unwrap().contains("s3cret"),
            "{l:?}"
        );
    }
    assert_eq!(line_ids(line(&lines, "handled")), ids(&http));
    let trace_layer_lines: Vec<_> = lines
        .iter()
        .filter(|l| l["target"].as_str().unwrap().starts_with("tower_http"))
        .collect();
    assert!(!trace_layer_lines.is_empty(), "{lines:?}");
    for l in trace_layer_lines {
        assert_eq!(line_ids(l), ids(&http));
    }
}
