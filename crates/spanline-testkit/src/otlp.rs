//! [`OtlpReceiver`]: a real OTLP logs endpoint on a free loopback port,
//! over gRPC (tonic's server) or HTTP/protobuf (axum), that keeps every
//! record it is sent.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::logs::v1::logs_service_server::{
    LogsService, LogsServiceServer,
};
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue};
use opentelemetry_proto::tonic::logs::v1::LogRecord;
use prost::Message;

/// Every request received, in order.
type Requests = Arc<Mutex<Vec<ExportLogsServiceRequest>>>;

/// An OTLP logs receiver; stopped when dropped.
///
/// ```no_run
/// let receiver = spanline_testkit::OtlpReceiver::grpc();
/// // point an exporter at receiver.endpoint(), log, then:
/// let records = receiver.wait_for(1, std::time::Duration::from_secs(5));
/// assert_eq!(records[0].body(), "ready");
/// ```
#[derive(Debug)]
pub struct OtlpReceiver {
    addr: SocketAddr,
    requests: Requests,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

/// One record as received, with its resource's and scope's names.
#[derive(Clone, Debug)]
pub struct Received {
    /// The resource's attributes (`service.name`, …).
    pub resource: Vec<KeyValue>,
    /// The instrumentation scope's name.
    pub scope: String,
    /// The record itself.
    pub record: LogRecord,
}

impl Received {
    /// The body as text (strings without quotes).
    pub fn body(&self) -> String {
        self.record.body.as_ref().map(any_text).unwrap_or_default()
    }

    /// An attribute of the record, as text; `None` when absent.
    pub fn attr(&self, key: &str) -> Option<String> {
        find(&self.record.attributes, key)
    }

    /// An attribute of the resource, as text.
    pub fn resource_attr(&self, key: &str) -> Option<String> {
        find(&self.resource, key)
    }

    /// The record's trace id in lowercase hex (empty when it has none).
    pub fn trace_id(&self) -> String {
        hex(&self.record.trace_id)
    }

    /// The record's span id in lowercase hex (empty when it has none).
    pub fn span_id(&self) -> String {
        hex(&self.record.span_id)
    }
}

fn find(attrs: &[KeyValue], key: &str) -> Option<String> {
    attrs
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
        .map(any_text)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// An `AnyValue` as text: strings as they are, lists as `[a, b]`, maps as
/// `{k: v}`.
pub fn any_text(value: &AnyValue) -> String {
    match &value.value {
        Some(Value::StringValue(s)) => s.clone(),
        Some(Value::BoolValue(b)) => b.to_string(),
        Some(Value::IntValue(i)) => i.to_string(),
        Some(Value::DoubleValue(d)) => d.to_string(),
        Some(Value::BytesValue(b)) => hex(b),
        Some(Value::ArrayValue(list)) => {
            let items: Vec<String> = list.values.iter().map(any_text).collect();
            format!("[{}]", items.join(", "))
        }
        Some(Value::KvlistValue(map)) => {
            let items: Vec<String> = map
                .values
                .iter()
                .map(|kv| {
                    format!(
                        "{}: {}",
                        kv.key,
                        kv.value.as_ref().map(any_text).unwrap_or_default()
                    )
                })
                .collect();
            format!("{{{}}}", items.join(", "))
        }
        _ => String::new(),
    }
}

struct Keep(Requests);

#[tonic::async_trait]
impl LogsService for Keep {
    async fn export(
        &self,
        request: tonic::Request<ExportLogsServiceRequest>,
    ) -> Result<tonic::Response<ExportLogsServiceResponse>, tonic::Status> {
        keep(&self.0, request.into_inner());
        Ok(tonic::Response::new(ExportLogsServiceResponse::default()))
    }
}

fn keep(requests: &Requests, request: ExportLogsServiceRequest) {
    requests
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(request);
}

impl OtlpReceiver {
    /// A receiver of OTLP/gRPC on a free loopback port.
    ///
    /// # Panics
    ///
    /// When no port or thread can be had.
    pub fn grpc() -> Self {
        Self::start(true)
    }

    /// A receiver of OTLP over HTTP/protobuf (`POST /v1/logs`) on a free
    /// loopback port.
    ///
    /// # Panics
    ///
    /// When no port or thread can be had.
    pub fn http() -> Self {
        Self::start(false)
    }

    fn start(grpc: bool) -> Self {
        let requests = Requests::default();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (bound, addr) = std::sync::mpsc::channel();
        let kept = requests.clone();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap_or_else(|e| panic!("a runtime for the OTLP receiver: {e}"));
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                    .await
                    .unwrap_or_else(|e| panic!("a port for the OTLP receiver: {e}"));
                let _ = bound.send(listener.local_addr().ok());
                let stopped = async {
                    let _ = stopped.await;
                };
                if grpc {
                    let _ = tonic::transport::Server::builder()
                        .add_service(LogsServiceServer::new(Keep(kept)))
                        .serve_with_incoming_shutdown(
                            tonic::transport::server::TcpIncoming::from(listener),
                            stopped,
                        )
                        .await;
                } else {
                    let app = axum::Router::new().route(
                        "/v1/logs",
                        axum::routing::post(move |body: axum::body::Bytes| {
                            let kept = kept.clone();
                            async move {
                                match ExportLogsServiceRequest::decode(body) {
                                    Ok(request) => {
                                        keep(&kept, request);
                                        let reply = ExportLogsServiceResponse::default();
                                        (
                                            axum::http::StatusCode::OK,
                                            [("content-type", "application/x-protobuf")],
                                            reply.encode_to_vec(),
                                        )
                                    }
                                    Err(_) => (
                                        axum::http::StatusCode::BAD_REQUEST,
                                        [("content-type", "text/plain")],
                                        b"not an ExportLogsServiceRequest".to_vec(),
                                    ),
                                }
                            }
                        }),
                    );
                    let _ = axum::serve(listener, app)
                        .with_graceful_shutdown(stopped)
                        .await;
                }
            });
        });
        let addr = addr
            .recv()
            .ok()
            .flatten()
            .unwrap_or_else(|| panic!("the OTLP receiver did not start"));
        Self {
            addr,
            requests,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// The endpoint to export to: `http://127.0.0.1:{port}` (an HTTP
    /// exporter adds `/v1/logs`).
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every request received so far.
    pub fn requests(&self) -> Vec<ExportLogsServiceRequest> {
        self.requests
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Every record received so far, in order.
    pub fn records(&self) -> Vec<Received> {
        let mut out = Vec::new();
        for request in self.requests() {
            for resource_logs in request.resource_logs {
                let resource = resource_logs
                    .resource
                    .map(|r| r.attributes)
                    .unwrap_or_default();
                for scope_logs in resource_logs.scope_logs {
                    let scope = scope_logs.scope.map(|s| s.name).unwrap_or_default();
                    for record in scope_logs.log_records {
                        out.push(Received {
                            resource: resource.clone(),
                            scope: scope.clone(),
                            record,
                        });
                    }
                }
            }
        }
        out
    }

    /// Waits until at least `n` records arrived (or `timeout`), and returns
    /// every record received.
    pub fn wait_for(&self, n: usize, timeout: Duration) -> Vec<Received> {
        let deadline = Instant::now() + timeout;
        loop {
            let records = self.records();
            if records.len() >= n || Instant::now() >= deadline {
                return records;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for OtlpReceiver {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
