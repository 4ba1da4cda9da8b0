use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use apalis_core::task::builder::TaskBuilder;
use apalis_core::task::metadata::Metadata;
use apalis_core::task::task_id::TaskId;
use apalis_core::task::Task;
use futures_util::FutureExt;
use spanline_apalis::{JobContextLayer, WithContext};
use spanline_core::{ContextLayer, JobEnds, OnJobEnd};
use tower_layer::Layer;
use tower_service::Service;
use tracing_subscriber::prelude::*;

/// How a job's run goes.
#[derive(Clone, Copy, Debug)]
enum Outcome {
    Succeed,
    Fail,
    Panic,
}

/// A worker's service: logs in the job, then ends as told, on its
/// second poll (the job's future is polled while the span is entered).
#[derive(Clone)]
struct Job(Outcome);

impl Service<Task<u32>> for Job {
    type Response = ();
    type Error = String;
    type Future = Pin<Box<dyn Future<Output = Result<(), String>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), String>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, task: Task<u32>) -> Self::Future {
        let outcome = self.0;
        Box::pin(async move {
            let ctx = spanline_context::current();
            assert_eq!(ctx.get("request_id").unwrap().to_string(), "r-1");
            assert!(ctx.get("job_id").is_some());
            tracing::warn!(n = task.args, "working");
            // A follow-up task pushed from the job is a job of its own: it
            // carries the request's context, not this job's id (which
            // would hand this job's end on to it).
            let next = spanline_apalis::task(0u32);
            let carried =
                <spanline_apalis::JobContext as Metadata>::extract(next.ctx().metadata()).unwrap();
            assert_eq!(carried.snapshot().get("request_id"), Some("r-1"));
            assert_eq!(carried.snapshot().get("job_id"), None);
            match outcome {
                Outcome::Succeed => Ok(()),
                Outcome::Fail => Err("failed".to_string()),
                Outcome::Panic => panic!("the job panicked"),
            }
        })
    }
}

#[test]
fn a_jobs_run_ends_once_whether_it_succeeds_fails_or_panics() {
    let ended = Arc::new(Mutex::new(Vec::<String>::new()));
    let seen = ended.clone();
    let hook: Arc<OnJobEnd> = Arc::new(move |job: &str| seen.lock().unwrap().push(job.into()));
    let dispatch = tracing::Dispatch::new(tracing_subscriber::registry().with(ContextLayer::new()));
    dispatch.downcast_ref::<JobEnds>().unwrap().subscribe(&hook);
    tracing::dispatcher::with_default(&dispatch, || {
        for (n, outcome) in [Outcome::Succeed, Outcome::Fail, Outcome::Panic]
            .into_iter()
            .enumerate()
        {
            let id = format!("01JOB{n}");
            let task = {
                let _request = tracing::info_span!("request", request_id = "r-1").entered();
                TaskBuilder::new(n as u32)
                    .with_context()
                    .task_id(TaskId::from_string(id.clone()))
                    .build()
            };
            let mut service = JobContextLayer::new("job").layer(Job(outcome));
            let run =
                std::panic::catch_unwind(AssertUnwindSafe(|| service.call(task).now_or_never()));
            match outcome {
                Outcome::Succeed => assert_eq!(run.unwrap(), Some(Ok(()))),
                Outcome::Fail => assert_eq!(run.unwrap(), Some(Err("failed".into()))),
                Outcome::Panic => assert!(run.is_err()),
            }
            assert_eq!(
                *ended.lock().unwrap(),
                [id],
                "{outcome:?}: one end, for the task's id"
            );
            ended.lock().unwrap().clear();
        }
    });
}

#[test]
fn a_task_id_that_is_no_job_id_gets_a_new_one_and_a_task_without_context_runs() {
    let dispatch = tracing::Dispatch::new(tracing_subscriber::registry().with(ContextLayer::new()));
    tracing::dispatcher::with_default(&dispatch, || {
        let task = TaskBuilder::new(1u32)
            .task_id(TaskId::from_string("no spaces allowed"))
            .build();
        #[derive(Clone)]
        struct Read;
        impl Service<Task<u32>> for Read {
            type Response = (Option<String>, Option<String>);
            type Error = ();
            type Future = std::future::Ready<Result<Self::Response, ()>>;
            fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), ()>> {
                Poll::Ready(Ok(()))
            }
            fn call(&mut self, _: Task<u32>) -> Self::Future {
                let ctx = spanline_context::current();
                std::future::ready(Ok((
                    ctx.get("job_id").map(|v| v.to_string()),
                    ctx.get("request_id").map(|v| v.to_string()),
                )))
            }
        }
        let mut service = JobContextLayer::new("resize").layer(Read);
        let (job_id, request_id) = service.call(task).now_or_never().unwrap().unwrap();
        let job_id = job_id.unwrap();
        assert!(job_id.starts_with("resize_"), "{job_id}");
        assert!(spanline_context::JobId::parse(&job_id).is_ok());
        assert_eq!(request_id, None);
    });
}

#[test]
fn a_task_whose_context_is_malformed_runs_without_it_and_says_so() {
    let lines = spanline_testkit::capture_json(|| {
        let mut store = apalis_core::task::metadata::MetadataStore::new();
        store
            .insert(spanline_apalis::METADATA_KEY, "{\"v\":99")
            .unwrap();
        let task = TaskBuilder::new(1u32)
            .with_metadata(store)
            .task_id(TaskId::from_string("01BAD"))
            .build();
        let mut service = JobContextLayer::new("job").layer(Job(Outcome::Succeed));
        // The job asserts a request_id: without the context it has none.
        let run = std::panic::catch_unwind(AssertUnwindSafe(|| service.call(task).now_or_never()));
        assert!(run.is_err(), "the job ran without the request's context");
    });
    let warning = lines
        .iter()
        .find(|l| l["target"] == spanline_apalis::TARGET)
        .expect("a warning");
    assert_eq!(warning["level"], "WARN");
    assert_eq!(warning["job_id"], "01BAD", "{warning:?}");
    assert!(
        warning["error"].as_str().unwrap().contains("malformed"),
        "{warning:?}"
    );
}
