//! [`OtlpLayerBuilder`]: every option, each with the OpenTelemetry
//! environment variable it follows.

use std::time::Duration;

use spanline_core::Schema;

use crate::export::{check_env_endpoint, endpoint_for, timeout_from_env, BuildError, Protocol};
use crate::guard::OtlpGuard;
use crate::layer::OtlpLayer;
use crate::worker::{start, Settings, Started};

/// Every option of an [`OtlpLayer`]; unset ones follow OpenTelemetry's
/// environment variables, as its SDK does.
///
/// ```no_run
/// use std::time::Duration;
/// let (layer, guard) = spanline_otlp::OtlpLayer::builder()
///     .endpoint("http://127.0.0.1:4317") // else OTEL_EXPORTER_OTLP_[LOGS_]ENDPOINT
///     .protocol(spanline_otlp::Protocol::Grpc) // else OTEL_EXPORTER_OTLP_[LOGS_]PROTOCOL
///     .service_name("billing")           // else OTEL_SERVICE_NAME / OTEL_RESOURCE_ATTRIBUTES
///     .capacity(8_192)                   // records queued at most
///     .batch_size(512)                   // records per export at most
///     .batch_delay(Duration::from_millis(200))
///     .timeout(Duration::from_secs(10))  // else OTEL_EXPORTER_OTLP_[LOGS_]TIMEOUT
///     .build()?;
/// # Ok::<(), spanline_otlp::BuildError>(())
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct OtlpLayerBuilder {
    pub(crate) endpoint: Option<String>,
    pub(crate) protocol: Option<Protocol>,
    pub(crate) service_name: Option<String>,
    pub(crate) schema: Schema,
    pub(crate) capacity: usize,
    pub(crate) batch_size: usize,
    pub(crate) batch_delay: Duration,
    pub(crate) timeout: Option<Duration>,
    pub(crate) shutdown_timeout: Duration,
    pub(crate) max_line: usize,
}

impl Default for OtlpLayerBuilder {
    fn default() -> Self {
        Self {
            endpoint: None,
            protocol: None,
            service_name: None,
            schema: Schema::default(),
            capacity: 8_192,
            batch_size: 512,
            batch_delay: Duration::from_millis(200),
            timeout: None,
            shutdown_timeout: Duration::from_secs(5),
            max_line: 1 << 20,
        }
    }
}

impl OtlpLayer {
    /// A builder with every option at its default (see
    /// [`OtlpLayerBuilder`](OtlpLayerBuilder)).
    ///
    /// ```
    /// let builder = spanline_otlp::OtlpLayer::builder().service_name("api");
    /// # drop(builder);
    /// ```
    pub fn builder() -> OtlpLayerBuilder {
        OtlpLayerBuilder::default()
    }
}

impl OtlpLayerBuilder {
    /// The collector's base URL, `http://host:port`: as is for gRPC, with
    /// `/v1/logs` added for HTTP unless it ends so already (default:
    /// `OTEL_EXPORTER_OTLP_LOGS_ENDPOINT`, as is, else
    /// `OTEL_EXPORTER_OTLP_ENDPOINT`, else the protocol's localhost port).
    pub fn endpoint(mut self, url: impl Into<String>) -> Self {
        self.endpoint = Some(url.into());
        self
    }

    /// gRPC or HTTP/protobuf (default: [`Protocol::from_env`]).
    pub fn protocol(mut self, protocol: Protocol) -> Self {
        self.protocol = Some(protocol);
        self
    }

    /// The resource's `service.name` (default: `OTEL_SERVICE_NAME`, else
    /// `service.name` in `OTEL_RESOURCE_ATTRIBUTES`, else the SDK's
    /// `unknown_service`).
    pub fn service_name(mut self, name: impl Into<String>) -> Self {
        self.service_name = Some(name.into());
        self
    }

    /// The schema lines are encoded with before they are read back as
    /// records: give the JSON layer's (`json.schema().clone()`) and the
    /// line is encoded once for both (default: flat). Its preset decides
    /// nothing in the record; its redaction and context do.
    pub fn schema(mut self, schema: Schema) -> Self {
        self.schema = schema;
        self
    }

    /// Records queued at most (default 8,192, at least 1); beyond, new
    /// ones are dropped and counted
    /// ([`OtlpStats::dropped_queue_full`](crate::OtlpStats::dropped_queue_full)).
    pub fn capacity(mut self, records: usize) -> Self {
        self.capacity = records.max(1);
        self
    }

    /// Records sent in one export at most (default 512, at least 1).
    pub fn batch_size(mut self, records: usize) -> Self {
        self.batch_size = records.max(1);
        self
    }

    /// How long a record waits for others to fill its batch (default
    /// 200 ms).
    pub fn batch_delay(mut self, delay: Duration) -> Self {
        self.batch_delay = delay;
        self
    }

    /// How long one export may take before its records are counted failed
    /// (default: `OTEL_EXPORTER_OTLP_LOGS_TIMEOUT`, else
    /// `OTEL_EXPORTER_OTLP_TIMEOUT`, in milliseconds, else 10 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// How long dropping the guard waits for queued records (default 5 s).
    pub fn shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.shutdown_timeout = timeout;
        self
    }

    /// The longest line taken, in bytes (default 1 MiB); longer ones are
    /// dropped and counted
    /// ([`OtlpStats::dropped_oversize`](crate::OtlpStats::dropped_oversize)).
    pub fn max_line(mut self, bytes: usize) -> Self {
        self.max_line = bytes;
        self
    }

    /// Starts the worker and its exporter.
    ///
    /// # Errors
    ///
    /// A protocol this build lacks, an endpoint that is not an `http://`
    /// URL, or the exporter's own refusal: see [`BuildError`].
    pub fn build(self) -> Result<(OtlpLayer, OtlpGuard), BuildError> {
        let protocol = match self.protocol {
            Some(p) => p,
            None => Protocol::from_env()?,
        };
        let built = match protocol {
            Protocol::Grpc => cfg!(feature = "grpc"),
            Protocol::HttpProtobuf => cfg!(feature = "http"),
        };
        if !built {
            return Err(BuildError::NotBuilt(protocol));
        }
        let endpoint = match &self.endpoint {
            Some(url) => Some(endpoint_for(url, protocol)?),
            None => check_env_endpoint().map(|()| None)?,
        };
        let Started {
            shared,
            control,
            handle,
        } = start(Settings {
            protocol,
            endpoint,
            timeout: self.timeout.unwrap_or_else(timeout_from_env),
            service_name: self.service_name,
            capacity: self.capacity,
            batch_size: self.batch_size,
            batch_delay: self.batch_delay,
        })?;
        let layer = OtlpLayer::new(self.schema, shared.clone(), self.max_line);
        let guard = OtlpGuard::new(shared, control, handle, self.shutdown_timeout);
        Ok((layer, guard))
    }
}
