//! Under `RUST_LOG=warn`, with apalis's Redis storage and spanline's Redis
//! layer on one private redis-server: a request pushes three tasks; the
//! worker runs them (one fails) with the request's context and each
//! task's `job_id`, in the job and in a task it spawns; each job's channel
//! gets every line of the job and then one `job ended`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use apalis_core::backend::TaskSink;
use apalis_core::error::{AbortError, BoxDynError};
use apalis_core::task::builder::TaskBuilder;
use apalis_core::worker::builder::WorkerBuilder;
use apalis_redis::RedisStorage;
use serde_json::Value;
use spanline_apalis::{JobContextLayer, WithContext};
use spanline_core::ContextLayer;
use spanline_redis::RedisLayer;
use spanline_testkit::{RedisServer, Subscription};
use tracing_subscriber::prelude::*;
use tracing_subscriber::EnvFilter;

const TASKS: usize = 3;
static DONE: AtomicUsize = AtomicUsize::new(0);

#[derive(serde::Serialize, serde::Deserialize)]
struct Welcome {
    n: u32,
}

async fn welcome(job: Welcome) -> Result<(), BoxDynError> {
    let n = job.n;
    tracing::warn!(n, "sending the welcome email");
    tracing::info!(n, "hidden by RUST_LOG=warn");
    spanline_context::spawn(async move { tracing::warn!(n, "in a task of the job") })
        .await
        .ok();
    DONE.fetch_add(1, Ordering::SeqCst);
    if n == 1 {
        // Not retried: apalis's Redis storage retries any other error
        // (whatever `max_attempts` says) about a second later, which made
        // a second run of this job land in the test's window now and then.
        return Err(AbortError::new("the mail server said no").into());
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_requests_jobs_carry_its_context_to_their_channels_and_end_once() {
    let server = RedisServer::start();
    let url = server.url();
    let (layer, guard) = RedisLayer::builder(&url).build().unwrap();
    tracing_subscriber::registry()
        .with(ContextLayer::new().filter(EnvFilter::new("warn")))
        .with(layer)
        .init();
    let lines = Subscription::new(&url, &["logs:*"]);

    let mut storage = RedisStorage::new(apalis_redis::connect(url.as_str()).await.unwrap());
    {
        let _request = tracing::info_span!(
            "request",
            request_id = "r-42",
            user_id = 42u64,
            trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
        )
        .entered();
        for n in 0..TASKS as u32 {
            let task = TaskBuilder::new(Welcome { n }).with_context().build();
            storage.push_task(task).await.unwrap();
        }
    }
    let worker = WorkerBuilder::new("welcome-worker")
        .backend(storage)
        .layer(JobContextLayer::new("welcome"))
        .build(welcome);
    let all_done = async {
        while DONE.load(Ordering::SeqCst) < TASKS {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        // The last job's future completes (and its span closes) after it
        // counts itself.
        tokio::time::sleep(Duration::from_millis(200)).await;
        Ok::<(), std::io::Error>(())
    };
    tokio::time::timeout(Duration::from_secs(60), worker.run_until(all_done))
        .await
        .expect("the jobs ran within 60 s")
        .unwrap();
    drop(guard); // flushes what is queued

    // 3 jobs x 2 lines, on the global feed and each on its job's channel,
    // plus one `job ended` on each.
    let messages = lines.wait_for(3 * 2 * 2 + 3 * 2, Duration::from_secs(10));
    let parse = |p: &str| serde_json::from_str::<Value>(p).unwrap();
    let global: Vec<Value> = messages
        .iter()
        .filter(|(c, _)| c == "logs:global")
        .map(|(_, p)| parse(p))
        .collect();
    let job_lines: Vec<&Value> = global.iter().filter(|l| l.get("n").is_some()).collect();
    assert_eq!(job_lines.len(), TASKS * 2, "{global:#?}");
    assert!(
        global
            .iter()
            .all(|l| l["message"] != "hidden by RUST_LOG=warn"),
        "{global:#?}"
    );
    let mut jobs = std::collections::BTreeSet::new();
    for line in &job_lines {
        assert_eq!(line["request_id"], "r-42", "{line}");
        assert_eq!(line["user_id"], 42, "{line}");
        assert_eq!(
            line["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736",
            "{line}"
        );
        assert_eq!(line["task"], "welcome", "{line}");
        jobs.insert(line["job_id"].as_str().unwrap().to_string());
    }
    assert_eq!(jobs.len(), TASKS, "a job id per task: {jobs:?}");
    for job in &jobs {
        let channel: Vec<Value> = lines
            .payloads(&format!("logs:{job}"))
            .iter()
            .map(|p| parse(p))
            .collect();
        let ends = channel
            .iter()
            .filter(|l| l["message"] == "job ended")
            .count();
        assert_eq!(ends, 1, "one end for {job}: {channel:#?}");
        assert_eq!(
            channel.len(),
            3,
            "the job's two lines, then its end: {channel:#?}"
        );
        assert_eq!(channel[2]["message"], "job ended", "{channel:#?}");
        assert!(
            channel[..2]
                .iter()
                .all(|l| l["job_id"] == *job && l["request_id"] == "r-42"),
            "{channel:#?}"
        );
    }
}
