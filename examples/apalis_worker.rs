//! Background jobs in apalis that carry the request's context, as a Celery
//! base task carried `logger_context`: a request pushes three tasks into
//! apalis's Redis storage; a worker runs them with
//! `spanline::apalis::JobContextLayer`, so every line of every job carries
//! the request's `request_id`, `user_id` and `trace_id`, and the task's
//! `job_id`; each job's lines are published to `logs:{job_id}` (and
//! `logs:global`), then one `job ended` line. The program exits when the
//! jobs are done.
//!
//! Run with: `cargo run --example apalis_worker --features apalis`
//! (Redis for the queue and the logs at `SPANLINE_REDIS_URL`, default
//! `redis://127.0.0.1:6379`; watch from another terminal with
//! `redis-cli psubscribe 'logs:*'`. The queue is named after this process,
//! so it shares nothing with another run.)

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use apalis_core::backend::TaskSink;
use apalis_core::error::{AbortError, BoxDynError};
use apalis_core::task::builder::TaskBuilder;
use apalis_core::worker::builder::WorkerBuilder;
use apalis_redis::{Config, RedisStorage};
use spanline::apalis::{JobContextLayer, WithContext};

const JOBS: usize = 3;
static DONE: AtomicUsize = AtomicUsize::new(0);

#[derive(serde::Serialize, serde::Deserialize)]
struct Welcome {
    user: u64,
    attempt: u32,
}

/// The job: its lines, and those of a task it spawns, carry the request's
/// context and the job's id.
async fn send_welcome(job: Welcome) -> Result<(), BoxDynError> {
    tracing::info!(user = job.user, "rendering the welcome email");
    let user = job.user;
    spanline::context::spawn(async move { tracing::info!(user, "sending it") }).await?;
    DONE.fetch_add(1, Ordering::SeqCst);
    if job.attempt == 2 {
        // A failed job ends too: one `job ended` line, after this one.
        tracing::warn!(user = job.user, "the mail server said no");
        // Not retried: apalis's Redis storage retries any other error
        // (whatever `max_attempts` says), about a second later.
        return Err(AbortError::new("mail server unavailable").into());
    }
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::var("SPANLINE_REDIS_URL")
        .unwrap_or_else(|_| "redis://127.0.0.1:6379".to_string());
    // JSON lines on stdout, and every line to Redis at `url`.
    let guard = spanline::builder()
        .service("apalis_worker")
        .redis_url(url.clone())
        .try_init()?;

    let queue = format!("spanline-example-{}", std::process::id());
    let mut storage: RedisStorage<Welcome, _> =
        RedisStorage::new(apalis_redis::connect(url.as_str()).await?)
            .with_config(Config::default().queue(queue));

    // A web request pushes the jobs: each task carries the request's context.
    {
        let _request = tracing::info_span!(
            "request",
            request_id = "req-7f3a",
            user_id = 42u64,
            trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
        )
        .entered();
        for attempt in 0..JOBS as u32 {
            let task = TaskBuilder::new(Welcome { user: 42, attempt })
                .with_context()
                .build();
            storage.push_task(task).await?;
        }
        tracing::info!(jobs = JOBS, "welcome emails queued");
    }

    let worker = WorkerBuilder::new("welcome-worker")
        .backend(storage)
        .layer(JobContextLayer::new("send_welcome"))
        .build(send_welcome);
    let done = async {
        while DONE.load(Ordering::SeqCst) < JOBS {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // Let the last job's future finish, and its run end.
        tokio::time::sleep(Duration::from_millis(200)).await;
        Ok::<(), std::io::Error>(())
    };
    tokio::time::timeout(Duration::from_secs(60), worker.run_until(done)).await??;
    if let Some(stats) = guard.redis_stats() {
        tracing::info!(published_so_far = stats.published(), "jobs done");
    }
    Ok(())
}
