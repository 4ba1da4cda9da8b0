//! From the options to the installed stack: [`Plan::parse`] reads every
//! option of the table (each through [`Settings`], so one precedence rule
//! holds for all), and [`Plan::install`] composes the layers in the order
//! the context contract needs.

use std::sync::Arc;

use spanline_core::{ContextLayer, ErrorStyle, Preset, Schema};
use spanline_json::{JsonLayer, PrettyLayer};
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::layer::Layered;
use tracing_subscriber::prelude::*;
use tracing_subscriber::{EnvFilter, Layer, Registry};

use crate::error::InitError;
use crate::guard::{Guard, SetFilter};
use crate::options::{self as opt, Opt, Settings};
use crate::output::{self, Destination, Format, Output, Rotation};

/// A layer of the application's own, put under spanline's.
pub(crate) type ExtraLayer =
    Box<dyn tracing_subscriber::Layer<tracing_subscriber::Registry> + Send + Sync>;

/// Decides whether a misconfiguration stops `init` (`Err`) or is reported
/// and replaced by the default (`Ok`).
pub(crate) type Problem<'a> = &'a mut dyn FnMut(InitError) -> Result<(), InitError>;

/// Every option, parsed.
#[derive(Debug)]
pub(crate) struct Plan {
    filter: EnvFilter,
    reload_filter: bool,
    format: Format,
    preset: Preset,
    service: Option<String>,
    output: Output,
    file: Option<String>,
    rotation: Rotation,
    non_blocking: bool,
    #[cfg_attr(not(feature = "local-time"), allow(dead_code))]
    local_time: bool,
    threads: (bool, bool),
    span_close: bool,
    dotted_targets: bool,
    errors: Option<ErrorStyle>,
    source_location: bool,
    context_keys: Vec<String>,
    context_level: LevelFilter,
    redact: Vec<String>,
    redis_url: Option<String>,
    redis_cluster: bool,
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    redis_global_shards: Option<usize>,
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    redis_capacity: Option<usize>,
    #[cfg(feature = "redis")]
    redis_mode: Option<spanline_redis::Mode>,
    #[cfg(feature = "redis")]
    redis_overflow: Option<spanline_redis::Overflow>,
    otlp_endpoint: Option<String>,
    #[cfg_attr(not(all(feature = "pipe", unix)), allow(dead_code))]
    forward: bool,
    pub(crate) debug_config: bool,
}

/// `true`/`false` as environment variables spell them.
fn parse_bool(value: &str) -> Option<bool> {
    match value.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Some(true),
        "0" | "false" | "no" | "off" | "" => Some(false),
        _ => None,
    }
}

/// An option's value parsed by `parse`; a value it refuses goes to
/// `problem`, naming the option where it was set (`None` when `problem`
/// lets `init` go on: the default).
fn value<T>(
    settings: &Settings,
    opt: &Opt,
    parse: impl Fn(&str) -> Option<T>,
    problem: Problem<'_>,
) -> Result<Option<T>, InitError> {
    let Some((text, source)) = settings.get(opt) else {
        return Ok(None);
    };
    match parse(text) {
        Some(v) => Ok(Some(v)),
        None => problem(InitError::Invalid {
            name: opt.name(source),
            value: text.to_string(),
            expected: opt.takes,
        })
        .map(|()| None),
    }
}

/// A yes/no option, off unless set.
fn flag(settings: &Settings, opt: &Opt, problem: Problem<'_>) -> Result<bool, InitError> {
    Ok(value(settings, opt, parse_bool, problem)?.unwrap_or(false))
}

/// `pubsub`, `streams` or `both`.
#[cfg(feature = "redis")]
fn parse_mode(text: &str) -> Option<spanline_redis::Mode> {
    match text.trim().to_ascii_lowercase().as_str() {
        "pubsub" | "pub/sub" => Some(spanline_redis::Mode::PubSub),
        "streams" => Some(spanline_redis::Mode::Streams),
        "both" => Some(spanline_redis::Mode::Both),
        _ => None,
    }
}

/// `drop-newest`, `drop-oldest`, `block:<ms>` or `block-forever`.
#[cfg(feature = "redis")]
fn parse_overflow(text: &str) -> Option<spanline_redis::Overflow> {
    use spanline_redis::Overflow;
    let text = text.trim().to_ascii_lowercase();
    match text.as_str() {
        "drop-newest" => Some(Overflow::DropNewest),
        "drop-oldest" => Some(Overflow::DropOldest),
        "block-forever" => Some(Overflow::BlockForever),
        _ => text
            .strip_prefix("block:")
            .and_then(|ms| ms.parse::<u64>().ok())
            .map(|ms| Overflow::Block {
                max_wait: std::time::Duration::from_millis(ms),
            }),
    }
}

impl Plan {
    /// Parses every option of `settings`.
    pub(crate) fn parse(settings: &Settings, problem: Problem<'_>) -> Result<Self, InitError> {
        let directives = settings.get(&opt::FILTER).map_or("", |(v, _)| v);
        let (filter, bad) = crate::filter::parse_lenient(directives);
        if !bad.is_empty() {
            let kept = filter.to_string();
            problem(InitError::Filter(
                crate::filter::FilterError::new(bad).with_kept(kept),
            ))?;
        }
        let format = match settings.get(&opt::FORMAT) {
            Some((name, _)) => match name.parse() {
                Ok(format) => format,
                Err(e) => problem(e).map(|()| Format::Auto)?,
            },
            None => Format::Auto,
        };
        let preset = match settings.get(&opt::PRESET) {
            Some((name, _)) => match name.parse::<Preset>() {
                Ok(preset) => preset,
                Err(e) => problem(InitError::UnknownPreset(e)).map(|()| Preset::Flat)?,
            },
            None => Preset::Flat,
        };
        let local_time = match value(
            settings,
            &opt::TIME,
            |v| match v.trim().to_ascii_lowercase().as_str() {
                "utc" => Some(false),
                "local" => Some(true),
                _ => None,
            },
            problem,
        )? {
            Some(true) if !cfg!(feature = "local-time") => problem(InitError::Invalid {
                name: "SPANLINE_TIME",
                value: "local".into(),
                expected: "utc (local needs spanline's `local-time` feature)",
            })
            .map(|()| false)?,
            other => other.unwrap_or(false),
        };
        let threads = value(
            settings,
            &opt::THREADS,
            |v| match v.trim().to_ascii_lowercase().as_str() {
                "none" => Some((false, false)),
                "names" => Some((true, false)),
                "ids" => Some((false, true)),
                "both" => Some((true, true)),
                _ => None,
            },
            problem,
        )?
        .unwrap_or((false, false));
        #[cfg(feature = "redis")]
        let redis_mode = value(settings, &opt::REDIS_MODE, parse_mode, problem)?;
        #[cfg(feature = "redis")]
        let redis_overflow = value(settings, &opt::REDIS_OVERFLOW, parse_overflow, problem)?;
        Ok(Plan {
            filter,
            reload_filter: flag(settings, &opt::RELOAD_FILTER, problem)?,
            format,
            preset,
            service: settings.get(&opt::SERVICE).map(|(v, _)| v.to_string()),
            output: value(settings, &opt::OUTPUT, |v| v.parse().ok(), problem)?.unwrap_or_default(),
            file: settings.get(&opt::FILE).map(|(v, _)| v.to_string()),
            rotation: value(settings, &opt::ROTATION, |v| v.parse().ok(), problem)?
                .unwrap_or_default(),
            non_blocking: flag(settings, &opt::NON_BLOCKING, problem)?,
            local_time,
            threads,
            span_close: flag(settings, &opt::SPAN_CLOSE, problem)?,
            dotted_targets: flag(settings, &opt::DOTTED_TARGETS, problem)?,
            errors: value(settings, &opt::ERRORS, |v| v.parse().ok(), problem)?,
            source_location: flag(settings, &opt::SOURCE_LOCATION, problem)?,
            context_keys: settings.list(&opt::CONTEXT_KEYS).to_vec(),
            context_level: value(
                settings,
                &opt::CONTEXT_LEVEL,
                |v| v.trim().parse().ok(),
                problem,
            )?
            .unwrap_or(LevelFilter::INFO),
            redact: settings.list(&opt::REDACT).to_vec(),
            redis_url: settings.get(&opt::REDIS_URL).map(|(v, _)| v.to_string()),
            redis_cluster: flag(settings, &opt::REDIS_CLUSTER, problem)?,
            redis_global_shards: value(
                settings,
                &opt::REDIS_GLOBAL_SHARDS,
                |v| v.trim().parse().ok().filter(|n| (1..=1024).contains(n)),
                problem,
            )?,
            redis_capacity: value(
                settings,
                &opt::REDIS_CAPACITY,
                |v| v.trim().replace(['_', ','], "").parse().ok(),
                problem,
            )?,
            #[cfg(feature = "redis")]
            redis_mode,
            #[cfg(feature = "redis")]
            redis_overflow,
            otlp_endpoint: settings
                .get(&opt::OTLP_ENDPOINT)
                .map(|(v, _)| v.trim().to_string())
                .filter(|v| !v.is_empty()),
            forward: value(settings, &opt::FORWARD, parse_bool, problem)?.unwrap_or(true),
            debug_config: flag(settings, &opt::DEBUG_CONFIG, problem)?,
        })
    }

    /// Composes the layers and installs them as the global subscriber.
    pub(crate) fn install(
        self,
        layers: Vec<ExtraLayer>,
        problem: Problem<'_>,
    ) -> Result<Guard, InitError> {
        let mut context = ContextLayer::new()
            .span_close_lines(self.span_close)
            .context_level(self.context_level)
            .redact(&self.redact);
        for key in &self.context_keys {
            context = context.context_key(key.clone());
        }
        // Fields on every line: the service, and the context handed down by
        // a parent process (TRACEPARENT, BAGGAGE), below anything logged here.
        let mut fields: Vec<(String, String)> = Vec::new();
        if let Some(service) = &self.service {
            fields.push(("service".into(), service.clone()));
        }
        let extra_keys: Vec<&str> = self.context_keys.iter().map(String::as_str).collect();
        let inherited = spanline_context::ContextSnapshot::from_env_with(&extra_keys);
        if let Some(tp) = inherited.traceparent() {
            fields.push(("trace_id".into(), tp.trace_id().to_string()));
        }
        for (key, value) in inherited.iter() {
            fields.push((key.to_string(), value.to_string()));
        }

        let mut schema = Schema::builder(self.preset)
            .redact(&self.redact)
            .dotted_targets(self.dotted_targets)
            .with_source_location(self.source_location);
        if let Some(style) = self.errors {
            schema = schema.errors(style);
        }
        if let Some(service) = &self.service {
            schema = schema.service(service.clone());
        }
        for (key, value) in fields.iter().filter(|(k, _)| k != "service") {
            schema = schema.static_field(key.clone(), value.clone());
        }
        let schema = schema.build();

        #[cfg(all(feature = "pipe", unix))]
        let forward = self
            .forward
            .then(spanline_pipe::ForwardLayer::from_env)
            .flatten()
            .map(|forward| forward.redact(&self.redact));
        // Started by a Forwarder: the parent re-emits every line, so this
        // process prints nothing itself (or each line would show twice), and
        // publishes nothing to Redis either: the parent publishes its lines.
        #[cfg(all(feature = "pipe", unix))]
        let local = forward.is_none();
        #[cfg(not(all(feature = "pipe", unix)))]
        let local = true;

        let mut guard = Guard::default();
        let mut outputs = Outputs::default();
        let writer = if local {
            self.local_layer(&schema, &fields, &mut outputs, problem)?
        } else {
            None
        };
        // Like Redis, a forwarding child sends nothing over OTLP: the
        // parent sends its lines.
        let otlp_endpoint = self.otlp_endpoint.clone().filter(|_| local);
        #[cfg(feature = "otlp")]
        let otlp_guard = match otlp_endpoint {
            Some(url) => match self.otlp_layer(&url, &schema) {
                Ok((layer, otlp_guard)) => {
                    guard.otlp_stats = Some(layer.stats());
                    outputs.otlp = Some(layer);
                    Some(otlp_guard)
                }
                Err(e) => problem(e).map(|()| None)?,
            },
            None => None,
        };
        #[cfg(not(feature = "otlp"))]
        if otlp_endpoint.is_some() {
            problem(InitError::OtlpNotBuilt)?;
        }
        let redis_url = self.redis_url.clone().filter(|_| local);
        #[cfg(feature = "redis")]
        let redis_guard = match redis_url {
            Some(url) => match self.redis_layer(&url, schema) {
                Ok((layer, redis_guard)) => {
                    guard.redis_stats = Some(layer.stats());
                    outputs.redis = Some(layer);
                    Some(redis_guard)
                }
                Err(e) => problem(e).map(|()| None)?,
            },
            None => None,
        };
        #[cfg(not(feature = "redis"))]
        if redis_url.is_some() || (self.redis_cluster && local) {
            let _ = schema;
            problem(InitError::RedisNotBuilt)?;
        }
        #[cfg(all(feature = "pipe", unix))]
        {
            outputs.forward = forward;
        }

        let installed = if self.reload_filter {
            let (filter, handle) = tracing_subscriber::reload::Layer::new(self.filter);
            let set: SetFilter =
                Arc::new(move |filter| handle.reload(filter).map_err(|e| e.to_string()));
            guard.set_filter = Some(set);
            compose(layers, context.filter(filter), outputs)
        } else {
            compose(layers, context.filter(self.filter), outputs)
        };
        if let Err(e) = installed {
            problem(InitError::AlreadySet(e.to_string()))?;
            return Ok(Guard::default());
        }
        // Publishing and writing live as long as the process; at exit they
        // are flushed, or their loss reported.
        if let Some(writer) = writer {
            crate::exit::keep_writer(writer);
        }
        #[cfg(feature = "redis")]
        if let Some(redis_guard) = redis_guard {
            guard.redis = crate::exit::keep_redis(redis_guard);
        }
        #[cfg(feature = "otlp")]
        if let Some(otlp_guard) = otlp_guard {
            guard.otlp = crate::exit::keep_otlp(otlp_guard);
        }
        // Records of the `log` crate become events; another logger may be
        // set already, which is the application's choice.
        let _ = tracing_log::LogTracer::init();
        Ok(guard)
    }

    /// The layer that writes lines here: JSON or pretty, to stdout, stderr
    /// or a file, from the logging thread or the writer thread (returned,
    /// with its counts, to be kept until exit).
    fn local_layer(
        &self,
        schema: &Schema,
        fields: &[(String, String)],
        outputs: &mut Outputs,
        problem: Problem<'_>,
    ) -> Result<Option<output::Writer>, InitError> {
        let file = match &self.file {
            Some(path) => match output::open_file(path, self.rotation) {
                Ok(file) => Some(file),
                Err(reason) => problem(InitError::File(reason)).map(|()| None)?,
            },
            None => None,
        };
        let terminal = file.is_none() && self.output.is_terminal();
        let pretty = match self.format {
            Format::Pretty => true,
            Format::Json => false,
            Format::Auto => terminal,
        };
        let mut destination = match file {
            Some(file) => Destination::File(Arc::new(file)),
            None => Destination::Std(self.output),
        };
        let mut writer = None;
        if self.non_blocking {
            let (queued, worker) = output::queued(destination);
            destination = queued;
            writer = Some(worker);
        }
        if pretty {
            // Colours on a terminal, unless NO_COLOR (https://no-color.org) is set.
            let ansi = terminal && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
            let layer = fields.iter().fold(
                PrettyLayer::new()
                    .with_writer(destination)
                    .with_ansi(ansi)
                    .redact(&self.redact)
                    .with_thread_names(self.threads.0)
                    .with_thread_ids(self.threads.1),
                |layer, (k, v)| layer.with_field(k.clone(), v.clone()),
            );
            #[cfg(feature = "local-time")]
            let layer = layer.with_local_time(self.local_time);
            outputs.pretty = Some(layer);
        } else {
            outputs.json = Some(
                JsonLayer::builder()
                    .schema(schema.clone())
                    .with_writer(destination)
                    .build(),
            );
        }
        Ok(writer)
    }

    /// The OTLP layer of `url`; the protocol, the timeout and the resource
    /// follow the `OTEL_*` variables (spanline-otlp reads them).
    #[cfg(feature = "otlp")]
    fn otlp_layer(
        &self,
        url: &str,
        schema: &Schema,
    ) -> Result<(spanline_otlp::OtlpLayer, spanline_otlp::OtlpGuard), InitError> {
        let mut builder = spanline_otlp::OtlpLayer::builder()
            .endpoint(url)
            .schema(schema.clone());
        if let Some(service) = &self.service {
            builder = builder.service_name(service.clone());
        }
        builder.build().map_err(InitError::Otlp)
    }

    /// The Redis layer of `url` (a cluster's comma-separated nodes).
    #[cfg(feature = "redis")]
    fn redis_layer(
        &self,
        urls: &str,
        schema: Schema,
    ) -> Result<(spanline_redis::RedisLayer, spanline_redis::RedisGuard), InitError> {
        let nodes: Vec<&str> = urls
            .split(',')
            .map(str::trim)
            .filter(|u| !u.is_empty())
            .collect();
        let mut builder = if self.redis_cluster {
            // Without spanline-redis's `cluster` feature, building it says so.
            spanline_redis::RedisLayer::builder_cluster(&nodes)
        } else if nodes.len() > 1 {
            return Err(InitError::Invalid {
                name: "SPANLINE_REDIS_URL",
                value: format!("{} URLs", nodes.len()),
                expected:
                    "one URL (several are a cluster's nodes: set SPANLINE_REDIS_CLUSTER=true)",
            });
        } else {
            spanline_redis::RedisLayer::builder(urls.trim())
        };
        builder = builder.schema(schema);
        if let Some(n) = self.redis_global_shards {
            builder = builder.global_shards(n);
        }
        if let Some(mode) = self.redis_mode {
            builder = builder.mode(mode);
        }
        if let Some(lines) = self.redis_capacity {
            let bytes = lines
                .saturating_mul(1024)
                .max(spanline_redis::RedisLayer::DEFAULT_MAX_QUEUED_BYTES);
            builder = builder.capacity(lines.max(1), bytes);
        }
        if let Some(overflow) = self.redis_overflow {
            builder = builder.overflow(overflow);
        }
        builder.build().map_err(InitError::Redis)
    }
}

/// The subscriber under spanline's layers: the application's own layers
/// on the registry.
type Stacked = Layered<Option<Vec<ExtraLayer>>, Registry>;

/// The layers after the `ContextLayer`; each is there or not.
#[derive(Default)]
struct Outputs {
    pretty: Option<PrettyLayer<Destination>>,
    json: Option<JsonLayer<Destination>>,
    #[cfg(feature = "redis")]
    redis: Option<spanline_redis::RedisLayer>,
    #[cfg(feature = "otlp")]
    otlp: Option<spanline_otlp::OtlpLayer>,
    #[cfg(all(feature = "pipe", unix))]
    forward: Option<spanline_pipe::ForwardLayer>,
}

/// Installs the registry with the application's layers, the
/// `ContextLayer` with its filter, then the output layers. The filter goes
/// to the ContextLayer, not in front of the registry: it decides which
/// lines are written, while spans that carry context are kept whatever it
/// says (see ContextLayer's docs). The output layers have no filter of
/// their own.
fn compose<F>(
    layers: Vec<ExtraLayer>,
    context: ContextLayer<F>,
    outputs: Outputs,
) -> Result<(), tracing_subscriber::util::TryInitError>
where
    F: Layer<Stacked> + Send + Sync + 'static,
{
    let registry = tracing_subscriber::registry()
        // An empty Vec of layers disables every callsite (its interest is
        // `never`); `None` is neutral.
        .with((!layers.is_empty()).then_some(layers))
        .with(context)
        .with(outputs.pretty)
        .with(outputs.json);
    #[cfg(feature = "redis")]
    let registry = registry.with(outputs.redis);
    #[cfg(feature = "otlp")]
    let registry = registry.with(outputs.otlp);
    #[cfg(all(feature = "pipe", unix))]
    let registry = registry.with(outputs.forward);
    registry.try_init()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::options::{Settings, Values, ALL};

    /// Every value the table shows for an option parses: the table's
    /// samples and the parsers agree.
    #[test]
    fn every_sample_of_the_table_parses() {
        for opt in ALL {
            for sample in opt.samples {
                let builder: Values = [(opt.key, vec![sample.to_string()])].into_iter().collect();
                let settings = Settings::resolve(&builder, &|_| None, &Values::new());
                let parsed = Plan::parse(&settings, &mut |e| Err(e));
                assert!(parsed.is_ok(), "{} = {sample}: {:?}", opt.key, parsed.err());
            }
        }
    }

    #[test]
    fn a_bad_value_names_where_it_was_set() {
        let env = |name: &str| (name == "SPANLINE_THREADS").then(|| "all".to_string());
        let settings = Settings::resolve(&Values::new(), &env, &Values::new());
        let err = Plan::parse(&settings, &mut |e| Err(e)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "SPANLINE_THREADS=\"all\": expected names, ids, both, none"
        );
        let file: Values = [("threads", vec!["all".to_string()])].into_iter().collect();
        let settings = Settings::resolve(&Values::new(), &|_| None, &file);
        let err = Plan::parse(&settings, &mut |e| Err(e)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "threads=\"all\": expected names, ids, both, none"
        );
    }
}
