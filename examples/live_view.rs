//! The live log view: a web page starts a job and shows its log lines as
//! they happen, streamed from Redis (`logs:{job_id}`) to the browser over
//! server-sent events; a second page follows `logs:global`.
//!
//! Run with: `cargo run --example live_view`, then open
//! <http://127.0.0.1:3000/> (`PORT` changes the port; Redis at
//! `SPANLINE_REDIS_URL`, default `redis://127.0.0.1:6379`).

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures_util::stream::Stream;
use spanline::context::{JobId, RequestContextLayer};
use tokio::sync::mpsc;
use tracing::{info, info_span, warn, Instrument};

/// The message of a job's last line: the page closes its stream on it.
const LAST_LINE: &str = "job finished";

#[derive(Clone)]
struct AppState {
    redis: redis::Client,
}

/// The app's router: pages, the job starter, and the two event streams.
pub(crate) fn app(redis: redis::Client) -> Router {
    Router::new()
        .route("/", get(|| async { Html(JOB_PAGE) }))
        .route("/global", get(|| async { Html(GLOBAL_PAGE) }))
        .route("/health", get(|| async { "ok" }))
        .route("/jobs", post(new_job))
        .route("/jobs/{id}/events", get(job_events))
        .route("/global/events", get(global_events))
        .layer(RequestContextLayer::new())
        .with_state(AppState { redis })
}

/// Names a job; it starts when its page subscribes to its lines.
async fn new_job() -> Json<serde_json::Value> {
    let job_id = JobId::new("demo");
    info!(job_id = %job_id, "job created");
    Json(serde_json::json!({ "job_id": job_id.as_str() }))
}

/// Streams `logs:{id}` and starts the job once subscribed, so no line is
/// missed (pub/sub keeps no backlog).
async fn job_events(State(state): State<AppState>, Path(id): Path<String>) -> Response {
    let Ok(job_id) = JobId::parse(&id) else {
        return (StatusCode::BAD_REQUEST, "invalid job id").into_response();
    };
    let (lines, subscribed) = subscribe(state.redis, format!("logs:{job_id}"), true);
    if subscribed.await.is_err() {
        return (StatusCode::SERVICE_UNAVAILABLE, "Redis is unreachable").into_response();
    }
    tokio::spawn(run_job(job_id));
    sse(lines).into_response()
}

async fn global_events(State(state): State<AppState>) -> Response {
    let (lines, subscribed) = subscribe(state.redis, "logs:global".into(), false);
    if subscribed.await.is_err() {
        return (StatusCode::SERVICE_UNAVAILABLE, "Redis is unreachable").into_response();
    }
    sse(lines).into_response()
}

/// The job: a few seconds of work, every line published to its channel by
/// the Redis layer because `job_id` is in its context.
async fn run_job(job_id: JobId) {
    let span = info_span!(parent: None, "job", job_id = %job_id);
    async {
        info!("job started");
        for step in 1..=5u32 {
            tokio::time::sleep(Duration::from_millis(300)).await;
            info!(step, progress = step * 20, "step done");
        }
        info!("{LAST_LINE}");
    }
    .instrument(span)
    .await;
}

/// Subscribes on a thread of its own (the Redis client is synchronous) and
/// forwards each payload; `subscribed` resolves once the subscription is
/// active. A job stream ends after its last line.
fn subscribe(
    client: redis::Client,
    channel: String,
    job: bool,
) -> (mpsc::Receiver<String>, tokio::sync::oneshot::Receiver<()>) {
    let (tx, rx) = mpsc::channel(256);
    let (ready, subscribed) = tokio::sync::oneshot::channel();
    tokio::task::spawn_blocking(move || {
        let Ok(mut con) = client.get_connection_with_timeout(Duration::from_secs(2)) else {
            return;
        };
        let mut pubsub = con.as_pubsub();
        if pubsub.subscribe(&channel).is_err()
            || pubsub
                .set_read_timeout(Some(Duration::from_millis(500)))
                .is_err()
        {
            return;
        }
        let _ = ready.send(());
        loop {
            match pubsub.get_message() {
                Ok(msg) => {
                    let line = String::from_utf8_lossy(msg.get_payload_bytes()).into_owned();
                    let last = job && line.contains(&format!("\"message\":\"{LAST_LINE}\""));
                    if tx.blocking_send(line).is_err() || last {
                        return; // the page went away, or the job is over
                    }
                }
                Err(e) if e.is_timeout() => {
                    if tx.is_closed() {
                        return;
                    }
                }
                Err(_) => return,
            }
        }
    });
    (rx, subscribed)
}

/// Each line as an SSE `message`; a `done` event when the stream ends.
fn sse(lines: mpsc::Receiver<String>) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let stream = futures_util::stream::unfold(Some(lines), |lines| async move {
        let mut lines = lines?;
        match lines.recv().await {
            Some(line) => Some((Ok(Event::default().data(line)), Some(lines))),
            None => Some((Ok(Event::default().event("done").data("end")), None)),
        }
    });
    Sse::new(stream).keep_alive(KeepAlive::default())
}

#[cfg_attr(test, allow(dead_code))]
#[tokio::main]
async fn main() -> std::io::Result<()> {
    let url = std::env::var("SPANLINE_REDIS_URL")
        .unwrap_or_else(|_| "redis://127.0.0.1:6379".to_string());
    let _guard = spanline::builder()
        .redis_url(url.clone())
        .service("live_view")
        .try_init()
        .map_err(std::io::Error::other)?;
    let redis = redis::Client::open(url.as_str()).map_err(std::io::Error::other)?;
    let port = std::env::var("PORT").unwrap_or_else(|_| "3000".to_string());
    let listener = tokio::net::TcpListener::bind(format!("127.0.0.1:{port}")).await?;
    info!(addr = %listener.local_addr()?, "live view listening");
    if let Err(error) = axum::serve(listener, app(redis)).await {
        warn!(%error, "server stopped");
    }
    Ok(())
}

const JOB_PAGE: &str = concat!(
    r#"<!doctype html><html><head><meta charset="utf-8"><title>live view</title><style>"#,
    "body{font:14px/1.4 system-ui,sans-serif;margin:2em;background:#111;color:#ddd}pre{background:#000;padding:1em;min-height:20em;white-space:pre-wrap}.WARN,.warning{color:#fc3}.ERROR,.error{color:#f66}button{font-size:1em;padding:.4em 1em}",
    r#"</style></head><body>
<h1>Job log</h1>
<p><button id="start">Start a job</button> <span id="job"></span> · <a href="/global">global feed</a></p>
<pre id="log"></pre>
<script>
const log = document.getElementById('log');
function show(text) {
  let line;
  try {
    const v = JSON.parse(text);
    const extra = Object.entries(v).filter(([k]) => !['timestamp','level','message','target','job_id','service'].includes(k))
      .map(([k, x]) => k + '=' + (typeof x === 'string' ? x : JSON.stringify(x))).join(' ');
    line = document.createElement('div');
    line.className = 'line ' + v.level;
    line.textContent = [(v.timestamp || '').slice(11, 23), v.level, v.message, extra].join('  ');
  } catch (_) {
    line = document.createElement('div');
    line.textContent = text;
  }
  log.appendChild(line);
}
async function start() {
  document.getElementById('start').disabled = true;
  const job = await (await fetch('/jobs', { method: 'POST' })).json();
  document.getElementById('job').textContent = job.job_id;
  const es = new EventSource('/jobs/' + job.job_id + '/events');
  es.onmessage = (e) => show(e.data);
  es.addEventListener('done', () => { es.close(); document.title = 'done'; });
}
document.getElementById('start').onclick = start;
if (new URLSearchParams(location.search).has('autostart')) start();
</script></body></html>"#
);

const GLOBAL_PAGE: &str = concat!(
    r#"<!doctype html><html><head><meta charset="utf-8"><title>global feed</title><style>"#,
    "body{font:14px/1.4 system-ui,sans-serif;margin:2em;background:#111;color:#ddd}pre{background:#000;padding:1em;white-space:pre-wrap}",
    r#"</style></head><body><h1>Global feed</h1><p><a href="/">job page</a></p><pre id="log"></pre>
<script>
const log = document.getElementById('log');
const es = new EventSource('/global/events');
es.onmessage = (e) => { const d = document.createElement('div'); d.textContent = e.data; log.appendChild(d); };
</script></body></html>"#
);
