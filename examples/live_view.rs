//! The live log console embedded in an app: a small axum service that
//! starts background jobs and nests the console's router at `/logs`, so
//! each job's lines can be watched in the browser as they happen.
//!
//! Run with: `cargo run --example live_view --features web`, then open
//! <http://127.0.0.1:3000/> and start a job (`PORT` changes the port;
//! Redis at `SPANLINE_REDIS_URL`, default `redis://127.0.0.1:6379`).
//!
//! The publisher writes streams and channels (`Mode::Both`): the console
//! shows a job's backlog when its page opens after the job started, and a
//! reloaded page resumes exactly where it was.

use std::time::Duration;

use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use spanline::context::{JobId, RequestContextLayer};
use spanline::redis::{Mode, RedisLayer};
use spanline::web::Console;
use spanline::{ContextLayer, PrettyLayer};
use tracing::{info, info_span, warn, Instrument};
use tracing_subscriber::prelude::*;

/// The app: its own page, a job starter, and the console under `/logs`.
fn app(console: &Console) -> Router {
    Router::new()
        .route("/", get(|| async { Html(HOME) }))
        .route("/health", get(|| async { "ok" }))
        .route("/jobs", post(start_job))
        .layer(RequestContextLayer::new())
        .nest("/logs", console.router())
}

/// Starts a job in the background and sends the browser to its page.
async fn start_job() -> Response {
    let job_id = JobId::new("report");
    info!(job_id = %job_id, "job created");
    tokio::spawn(run_job(job_id.clone()));
    Redirect::to(&format!("/logs/jobs/{job_id}")).into_response()
}

/// The job: a few seconds of work; every line goes to its channel and
/// stream because `job_id` is in its context.
async fn run_job(job_id: JobId) {
    let span = info_span!(parent: None, "job", job_id = %job_id);
    async {
        info!(rows = 1200, "job started");
        for step in 1..=5u32 {
            tokio::time::sleep(Duration::from_millis(600)).await;
            if step == 3 {
                warn!(step, latency_ms = 840, "slow step");
            } else {
                info!(step, progress = step * 20, "step done");
            }
        }
        info!("job finished");
    }
    .instrument(span)
    .await;
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::var("SPANLINE_REDIS_URL")
        .unwrap_or_else(|_| "redis://127.0.0.1:6379".to_string());
    let (redis, _guard) = RedisLayer::builder(&url).mode(Mode::Both).build()?;
    tracing_subscriber::registry()
        .with(ContextLayer::new().filter(tracing_subscriber::filter::LevelFilter::INFO))
        .with(PrettyLayer::new())
        .with(redis)
        .init();
    let console = Console::builder(&url).build()?;
    let port = std::env::var("PORT").unwrap_or_else(|_| "3000".to_string());
    let listener = tokio::net::TcpListener::bind(format!("127.0.0.1:{port}")).await?;
    info!(addr = %listener.local_addr()?, "open http://{}/", listener.local_addr()?);
    axum::serve(listener, app(&console)).await?;
    Ok(())
}

const HOME: &str = r#"<!doctype html><html><head><meta charset="utf-8"><title>jobs</title></head>
<body style="font:15px system-ui,sans-serif;margin:2em">
<h1>Jobs</h1>
<form method="post" action="/jobs"><button>Start a job</button></form>
<p><a href="/logs">All logs</a> (the console, with every recent job)</p>
</body></html>"#;
