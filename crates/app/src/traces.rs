//! Logs and traces: the `tracing` subscriber the binary installs. Logs go
//! to stderr as text or JSON (`log_format`); traces are exported over
//! OTLP/HTTP when the standard OpenTelemetry variables name a collector
//! (`OTEL_EXPORTER_OTLP_ENDPOINT` or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`;
//! `OTEL_EXPORTER_OTLP_PROTOCOL` `http/protobuf`, the default, or
//! `http/json`; `OTEL_SERVICE_NAME`, default `secureai`;
//! `OTEL_SDK_DISABLED=true` turns it off).
//!
//! Spans: one per request (`GET /api/v1/users/:param0`, with method,
//! route, status), one per database statement (sea-orm's, with the
//! database system and operation, never the values), and one per outbound
//! call (SMTP, identity provider, webhook).

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig as _;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{EnvFilter, Layer as _};

use crate::config::{Config, LogFormat};

/// The log writer's thread and the trace exporter, flushed and stopped by
/// [`Telemetry::shutdown`].
#[derive(Debug)]
pub struct Telemetry {
    traces: Option<SdkTracerProvider>,
    _logs: tracing_appender::non_blocking::WorkerGuard,
}

impl Telemetry {
    /// Whether spans are exported.
    pub fn exports_traces(&self) -> bool {
        self.traces.is_some()
    }

    /// Sends the spans still buffered and stops the exporter, then writes
    /// the log lines still queued.
    pub async fn shutdown(self) {
        if let Some(provider) = self.traces {
            let stopped = tokio::task::spawn_blocking(move || provider.shutdown()).await;
            if let Ok(Err(error)) = stopped {
                eprintln!("secureai: the last traces could not be sent: {error}");
            }
        }
    }
}

/// Whether the environment names an OTLP collector for traces.
fn collector_configured() -> bool {
    let set = |name: &str| std::env::var(name).is_ok_and(|v| !v.trim().is_empty());
    let disabled = std::env::var("OTEL_SDK_DISABLED").is_ok_and(|v| v.eq_ignore_ascii_case("true"));
    !disabled && (set("OTEL_EXPORTER_OTLP_ENDPOINT") || set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))
}

fn tracer_provider() -> anyhow::Result<SdkTracerProvider> {
    let json = std::env::var("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
        .or_else(|_| std::env::var("OTEL_EXPORTER_OTLP_PROTOCOL"))
        .is_ok_and(|p| p.trim() == "http/json");
    let protocol = if json {
        opentelemetry_otlp::Protocol::HttpJson
    } else {
        opentelemetry_otlp::Protocol::HttpBinary
    };
    let exporter =
        opentelemetry_otlp::SpanExporter::builder().with_http().with_protocol(protocol).build()?;
    let batches =
        opentelemetry_sdk::trace::span_processor_with_async_runtime::BatchSpanProcessor::builder(
            exporter,
            opentelemetry_sdk::runtime::Tokio,
        )
        .build();
    let name = std::env::var("OTEL_SERVICE_NAME").unwrap_or_else(|_| "secureai".to_owned());
    let resource = opentelemetry_sdk::Resource::builder().with_service_name(name).build();
    Ok(SdkTracerProvider::builder().with_span_processor(batches).with_resource(resource).build())
}

/// Installs the subscriber: logs always, traces when a collector is
/// configured. Call once, inside the runtime.
///
/// # Errors
/// When the trace exporter cannot be built from the environment.
pub fn init(config: &Config) -> anyhow::Result<Telemetry> {
    // Spans made only for traces (`secureai_trace`) never reach the logs.
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        EnvFilter::new(format!("{},sqlx=warn,sea_orm=warn,secureai_trace=off", config.log))
    });
    // Lines are formatted where they happen and written by a thread of
    // their own, in batches (one write per batch, not per line); never
    // dropped: a full queue makes the caller wait.
    let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .lossy(false)
        .thread_name("secureai-logs")
        .finish(std::io::BufWriter::new(std::io::stderr()));
    let logs = tracing_subscriber::fmt::layer().with_writer(writer);
    let logs = match config.log_format {
        LogFormat::Json => logs.json().flatten_event(true).with_current_span(false).boxed(),
        LogFormat::Text => logs.boxed(),
    };
    let traces = if collector_configured() { Some(tracer_provider()?) } else { None };
    let spans = traces.as_ref().map(|provider| {
        // Ours, and sea-orm's statement spans; nothing else.
        let wanted = Targets::new()
            .with_target("secureai", LevelFilter::INFO)
            .with_target("sea_orm", LevelFilter::INFO)
            .with_default(LevelFilter::OFF);
        tracing_opentelemetry::layer().with_tracer(provider.tracer("secureai")).with_filter(wanted)
    });
    tracing_subscriber::registry().with(logs.with_filter(filter)).with(spans).init();
    Ok(Telemetry { traces, _logs: guard })
}
