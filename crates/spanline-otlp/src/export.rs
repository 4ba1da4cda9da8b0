//! The exporter: the [`Protocol`] it speaks, the endpoint and timeout it
//! is given (or takes from the `OTEL_EXPORTER_OTLP_*` variables), and
//! [`BuildError`], why it could not be made.

use std::fmt;
use std::time::Duration;

/// The wire an exporter speaks, as `OTEL_EXPORTER_OTLP_PROTOCOL` names it.
///
/// ```
/// use spanline_otlp::Protocol;
/// assert_eq!(Protocol::parse("grpc"), Ok(Protocol::Grpc));
/// assert_eq!(Protocol::parse("http/protobuf"), Ok(Protocol::HttpProtobuf));
/// assert!(Protocol::parse("http/json").is_err());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Protocol {
    /// OTLP/gRPC, by default to `http://localhost:4317` (feature `grpc`).
    Grpc,
    /// OTLP/HTTP with protobuf bodies, by default to
    /// `http://localhost:4318/v1/logs` (feature `http`). The default, as
    /// OpenTelemetry's specification makes it.
    HttpProtobuf,
}

impl Protocol {
    /// The protocol a name of `OTEL_EXPORTER_OTLP_PROTOCOL` stands for.
    ///
    /// # Errors
    ///
    /// [`BuildError::Protocol`] for any other name (`http/json` included:
    /// not supported).
    pub fn parse(name: &str) -> Result<Protocol, BuildError> {
        match name.trim() {
            "grpc" => Ok(Protocol::Grpc),
            "http/protobuf" => Ok(Protocol::HttpProtobuf),
            other => Err(BuildError::Protocol(other.to_string())),
        }
    }

    /// `OTEL_EXPORTER_OTLP_LOGS_PROTOCOL`, else `OTEL_EXPORTER_OTLP_PROTOCOL`,
    /// else [`HttpProtobuf`](Protocol::HttpProtobuf).
    ///
    /// # Errors
    ///
    /// When the variable names no protocol this crate speaks.
    pub fn from_env() -> Result<Protocol, BuildError> {
        [
            "OTEL_EXPORTER_OTLP_LOGS_PROTOCOL",
            "OTEL_EXPORTER_OTLP_PROTOCOL",
        ]
        .iter()
        .find_map(|name| std::env::var(name).ok().filter(|v| !v.trim().is_empty()))
        .map_or(Ok(Protocol::HttpProtobuf), |v| Protocol::parse(&v))
    }

    /// The name `OTEL_EXPORTER_OTLP_PROTOCOL` gives it.
    ///
    /// ```
    /// assert_eq!(spanline_otlp::Protocol::Grpc.name(), "grpc");
    /// ```
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Grpc => "grpc",
            Protocol::HttpProtobuf => "http/protobuf",
        }
    }
}

/// Why an [`OtlpLayer`](crate::OtlpLayer) could not be built.
///
/// ```
/// let err = spanline_otlp::OtlpLayer::builder().endpoint("collector:4317").build().unwrap_err();
/// assert!(err.to_string().contains("http://"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum BuildError {
    /// A protocol name other than `grpc` and `http/protobuf`.
    Protocol(String),
    /// This build does not have the protocol's feature (`grpc`, `http`).
    NotBuilt(Protocol),
    /// The endpoint is not an `http://` URL (`https://` needs TLS, which
    /// spanline-otlp does not build in: export to a local collector).
    Endpoint(String),
    /// The OpenTelemetry exporter refused its configuration (its own words).
    Exporter(String),
    /// The worker thread could not be started.
    Thread(String),
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BuildError::Protocol(name) => write!(
                f,
                "OTLP protocol {name:?} is not supported: use \"grpc\" or \"http/protobuf\""
            ),
            BuildError::NotBuilt(p) => write!(
                f,
                "OTLP over {} is not in this build: enable spanline-otlp's feature `{}`",
                p.name(),
                if *p == Protocol::Grpc { "grpc" } else { "http" }
            ),
            BuildError::Endpoint(url) => write!(
                f,
                "OTLP endpoint {url:?} is not an http:// URL (https needs TLS, which spanline-otlp \
                 does not build in: export to a collector on this host or network)"
            ),
            BuildError::Exporter(e) => write!(f, "OTLP exporter: {e}"),
            BuildError::Thread(e) => write!(f, "OTLP worker thread: {e}"),
        }
    }
}

impl std::error::Error for BuildError {}

/// The URL handed to the exporter: checked, and with `/v1/logs` for HTTP.
pub(crate) fn endpoint_for(url: &str, protocol: Protocol) -> Result<String, BuildError> {
    let url = url.trim();
    let refused = || BuildError::Endpoint(url.to_string());
    let scheme = url.get(..7).ok_or_else(refused)?;
    let rest = &url[7..];
    // An OTLP endpoint is a host, a port and a path: no query, no fragment.
    if !scheme.eq_ignore_ascii_case("http://")
        || rest.is_empty()
        || rest.starts_with('/')
        || rest.contains(['?', '#'])
    {
        return Err(refused());
    }
    let url = format!("http://{}", rest.trim_end_matches('/'));
    Ok(match protocol {
        Protocol::HttpProtobuf if !url.ends_with("/v1/logs") => format!("{url}/v1/logs"),
        _ => url,
    })
}

/// With no endpoint given, the exporter takes the `OTEL_*` variables'
/// URL; it is checked here as a given one is (no TLS is built in).
pub(crate) fn check_env_endpoint() -> Result<(), BuildError> {
    for name in [
        "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT",
        "OTEL_EXPORTER_OTLP_ENDPOINT",
    ] {
        if let Some(url) = std::env::var(name).ok().filter(|u| !u.trim().is_empty()) {
            return endpoint_for(&url, Protocol::Grpc).map(drop);
        }
    }
    Ok(())
}

/// The export timeout the OpenTelemetry variables give, in milliseconds.
pub(crate) fn timeout_from_env() -> Duration {
    [
        "OTEL_EXPORTER_OTLP_LOGS_TIMEOUT",
        "OTEL_EXPORTER_OTLP_TIMEOUT",
    ]
    .iter()
    .find_map(|name| std::env::var(name).ok()?.trim().parse().ok())
    .map_or(Duration::from_secs(10), Duration::from_millis)
}

/// opentelemetry-otlp's exporter for the protocol; an unset endpoint and
/// timeout follow its `OTEL_EXPORTER_OTLP_*` variables.
pub(crate) fn exporter(
    protocol: Protocol,
    endpoint: Option<String>,
    timeout: Duration,
) -> Result<opentelemetry_otlp::LogExporter, BuildError> {
    use opentelemetry_otlp::WithExportConfig as _;
    let refused = |e: opentelemetry_otlp::ExporterBuildError| BuildError::Exporter(e.to_string());
    match protocol {
        #[cfg(feature = "grpc")]
        Protocol::Grpc => {
            let mut builder = opentelemetry_otlp::LogExporter::builder()
                .with_tonic()
                .with_timeout(timeout);
            if let Some(url) = endpoint {
                builder = builder.with_endpoint(url);
            }
            builder.build().map_err(refused)
        }
        #[cfg(feature = "http")]
        Protocol::HttpProtobuf => {
            let mut builder = opentelemetry_otlp::LogExporter::builder()
                .with_http()
                .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
                .with_timeout(timeout);
            if let Some(url) = endpoint {
                builder = builder.with_endpoint(url);
            }
            builder.build().map_err(refused)
        }
        #[allow(unreachable_patterns)] // with both features on
        other => {
            let _ = (endpoint, timeout, refused);
            Err(BuildError::NotBuilt(other))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_are_checked_and_http_gets_its_path() {
        let http = |u| endpoint_for(u, Protocol::HttpProtobuf);
        assert_eq!(http("http://c:4318").unwrap(), "http://c:4318/v1/logs");
        assert_eq!(http("http://c:4318/").unwrap(), "http://c:4318/v1/logs");
        assert_eq!(
            http("http://c:4318/v1/logs").unwrap(),
            "http://c:4318/v1/logs"
        );
        assert_eq!(
            endpoint_for("http://c:4317", Protocol::Grpc).unwrap(),
            "http://c:4317"
        );
        assert_eq!(http("HTTP://c:4318").unwrap(), "http://c:4318/v1/logs");
        for bad in [
            "c:4317",
            "https://c:4317",
            "http://",
            "ftp://c",
            "",
            "http://c:4318?x=1",
            "http://c#f",
        ] {
            assert!(http(bad).is_err(), "{bad}");
        }
    }
}
