//! An axum service whose every log line carries the request's context: the
//! handler, a nested `#[instrument]` function, a spawned task, a blocking
//! closure, a thread, and a background job that runs under a restored
//! snapshot, all with the same `request_id` (and `user_id` once known).
//!
//! Run with: `cargo run --example axum_service`, then
//! `curl -i localhost:3001/users/7` (`PORT` changes the port; `RUST_LOG`
//! filters; JSON lines when stdout is not a terminal).

use axum::extract::{Extension, Path};
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use spanline::context::{ContextSnapshot, JobId, RequestContextLayer};
use tokio::sync::mpsc;
use tracing::{info, instrument, warn};

/// A job as a queue would carry it: its data and the context it came from.
#[derive(Serialize, Deserialize)]
struct WelcomeEmail {
    job_id: JobId,
    user: u64,
    ctx: ContextSnapshot,
}

/// The service's router, with the request-context middleware, and a job
/// worker running on the current tokio runtime.
pub(crate) fn app(middleware: RequestContextLayer) -> Router {
    let (jobs, queue) = mpsc::channel::<String>(64);
    tokio::spawn(job_worker(queue));
    Router::new()
        .route("/users/{id}", get(get_user))
        .route("/health", get(|| async { "ok" }))
        .layer(Extension(jobs))
        .layer(middleware)
}

#[derive(Serialize)]
struct User {
    id: u64,
    name: String,
}

async fn get_user(
    Path(id): Path<u64>,
    Extension(jobs): Extension<mpsc::Sender<String>>,
) -> Json<User> {
    info!(id, "loading user");
    authenticate(id);
    let name = load_user(id).await;

    spanline::context::spawn(async move { info!(id, "audit record written") })
        .await
        .ok();
    spanline::context::spawn_blocking(|| info!("password hash checked"))
        .await
        .ok();
    let thread = spanline::context::thread::spawn(|| info!("cache warmed"));
    if thread.join().is_err() {
        warn!("cache thread panicked");
    }

    // Enqueue a job: its payload carries the context as a snapshot.
    let job = WelcomeEmail {
        job_id: JobId::new("welcome"),
        user: id,
        ctx: ContextSnapshot::capture(),
    };
    let sent = match serde_json::to_string(&job) {
        Ok(payload) => jobs.send(payload).await.is_ok(),
        Err(_) => false,
    };
    if sent {
        info!(job_id = %job.job_id, "welcome email enqueued");
    } else {
        warn!("job queue unavailable");
    }
    Json(User { id, name })
}

/// A stand-in for real authentication: the user is known only now, and
/// every later line of the request shows it.
fn authenticate(user: u64) {
    if let Err(error) = spanline::set("user_id", user) {
        warn!(%error, "the user could not be bound to the request");
    }
}

#[instrument(fields(table = "users"))]
async fn load_user(id: u64) -> String {
    info!(rows = 1, "query done");
    format!("user-{id}")
}

/// Runs jobs in its own task, outside any request: the context comes from
/// each job's snapshot alone.
async fn job_worker(mut queue: mpsc::Receiver<String>) {
    while let Some(payload) = queue.recv().await {
        let job: WelcomeEmail = match serde_json::from_str(&payload) {
            Ok(job) => job,
            Err(error) => {
                warn!(%error, "dropping malformed job");
                continue;
            }
        };
        let span = job.ctx.restore("send_welcome_email");
        if let Some(id) = span.id() {
            let _ = spanline::core::set_in(&id, "job_id", &job.job_id);
        }
        let _job = span.entered();
        info!(user = job.user, "welcome email sent");
    }
}

#[cfg_attr(test, allow(dead_code))]
#[tokio::main]
async fn main() -> std::io::Result<()> {
    // RUST_LOG, SPANLINE_FORMAT and the rest; the request spans keep their
    // context on WARN lines whatever RUST_LOG says.
    let _guard = spanline::builder().service("axum_service").init();

    let port = std::env::var("PORT").unwrap_or_else(|_| "3001".to_string());
    let listener = tokio::net::TcpListener::bind(format!("127.0.0.1:{port}")).await?;
    info!(addr = %listener.local_addr()?, "listening");
    axum::serve(listener, app(RequestContextLayer::new())).await
}
