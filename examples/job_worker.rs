//! A background job whose log lines stream live through Redis: the job runs
//! under a `JobId`, every line it logs is published to `logs:{job_id}` (and
//! `logs:global`), and this program subscribes to the job's channel and
//! prints what arrives, as a live log view would.
//!
//! Run with: `cargo run --example job_worker`
//! (Redis at `SPANLINE_REDIS_URL`, default `redis://127.0.0.1:6379`; watch
//! from another terminal with `redis-cli psubscribe 'logs:*'`.)

use std::time::Duration;

use spanline::context::{ContextSnapshot, JobId};
use spanline::{ContextLayer, JsonLayer};
use spanline_redis::RedisLayer;
use tracing::{info, info_span, warn};
use tracing_subscriber::prelude::*;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::var("SPANLINE_REDIS_URL")
        .unwrap_or_else(|_| "redis://127.0.0.1:6379".to_string());

    // Lines go to stderr as JSON, and to Redis, encoded once.
    let json = JsonLayer::builder()
        .schema(spanline::core::Schema::builder(spanline::core::Preset::Flat).service("job_worker"))
        .with_writer(std::io::stderr)
        .build();
    let (redis, guard) = RedisLayer::builder(&url)
        .schema(json.schema().clone())
        .build()?;
    let stats = redis.stats();
    tracing_subscriber::registry()
        .with(ContextLayer::new())
        .with(json)
        .with(redis)
        .init();

    // A web request enqueues a job: its payload carries the context.
    let job_id = JobId::new("report");
    let payload = {
        let _request = info_span!("request", request_id = "req-42", job_id = %job_id).entered();
        info!("job enqueued");
        serde_json::to_string(&ContextSnapshot::capture())?
    };

    // Subscribe to the job's channel before the job runs: pub/sub keeps no backlog.
    let channel = format!("logs:{job_id}");
    let client = redis::Client::open(url.as_str())?;
    let mut con = client.get_connection_with_timeout(Duration::from_secs(2))?;
    let mut view = con.as_pubsub();
    view.subscribe(&channel)?;
    view.set_read_timeout(Some(Duration::from_secs(2)))?;

    // The worker restores the context: every line carries job_id and request_id.
    let worker = std::thread::spawn(move || {
        let snapshot: ContextSnapshot = match serde_json::from_str(&payload) {
            Ok(snapshot) => snapshot,
            Err(error) => return warn!(%error, "bad job payload"),
        };
        let _job = snapshot.restore("build_report").entered();
        for step in ["fetching rows", "aggregating", "rendering", "uploading"] {
            info!(step, "working");
            std::thread::sleep(Duration::from_millis(100));
        }
        info!(rows = 1234, "report ready");
    });

    // The live view: print the job's lines as they arrive, until the last.
    let mut received = 0;
    let mut finished = false;
    while let Ok(message) = view.get_message() {
        received += 1;
        let line = String::from_utf8_lossy(message.get_payload_bytes()).into_owned();
        finished = line.contains("report ready");
        #[allow(clippy::disallowed_macros)] // stdout is this example's live view
        {
            println!("[{}] {line}", message.get_channel_name());
        }
        if finished {
            break;
        }
    }
    let _ = worker.join();
    drop(guard); // flush what is still queued
    if !finished {
        return Err(format!("received {received} lines on {channel} but not the last; is Redis up at {url}? {stats:?}").into());
    }
    Ok(())
}
