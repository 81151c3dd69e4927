//! Logs and traces: the `tracing` subscriber the binary installs. Logs go
//! to stderr as text or JSON (`log_format`); traces are exported over
//! OTLP/HTTP when the standard OpenTelemetry variables name a collector
//! (`OTEL_EXPORTER_OTLP_ENDPOINT` or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`;
//! `OTEL_EXPORTER_OTLP_PROTOCOL` `http/protobuf`, the default, or
//! `http/json`; `OTEL_SERVICE_NAME`, default `secureai`;
//! `OTEL_SDK_DISABLED=true` turns it off).
//!
//! Spans: one per request (named by its method, with the route template
//! and status as attributes), one per database statement (sea-orm's, with the
//! database system and operation, never the values), and one per outbound
//! call (SMTP, identity provider, webhook).

use std::io::Write as _;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig as _;
use opentelemetry_sdk::trace::{SdkTracerProvider, SpanProcessor};
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
    logs: BatchedStderr,
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
                let said = format!("secureai: the last traces could not be sent: {error}\n");
                let _ = std::io::stderr().lock().write_all(said.as_bytes());
            }
        }
        self.logs.flush();
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
    Ok(SdkTracerProvider::builder()
        .with_span_processor(WithoutStatementErrors(batches))
        .with_resource(resource)
        .build())
}

/// Drops what a failed statement's span says of the error (sea-orm records
/// the database's message): a database may quote the values in it —
/// MariaDB's "Duplicate entry 'ada@example.com' for key …" — and the
/// statement spans must carry none. The span still says it failed.
#[derive(Debug)]
struct WithoutStatementErrors<P>(P);

impl<P: SpanProcessor> SpanProcessor for WithoutStatementErrors<P> {
    fn on_start(&self, span: &mut opentelemetry_sdk::trace::Span, cx: &opentelemetry::Context) {
        self.0.on_start(span, cx);
    }

    fn on_end(&self, mut span: opentelemetry_sdk::trace::SpanData) {
        if span.name.starts_with("sea_orm.") {
            span.attributes.retain(|kv| !kv.key.as_str().starts_with("exception."));
            span.events.events.retain(|e| !e.name.starts_with("exception"));
        }
        self.0.on_end(span);
    }

    fn force_flush(&self) -> opentelemetry_sdk::error::OTelSdkResult {
        self.0.force_flush()
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> opentelemetry_sdk::error::OTelSdkResult {
        self.0.shutdown_with_timeout(timeout)
    }

    fn set_resource(&mut self, resource: &opentelemetry_sdk::Resource) {
        self.0.set_resource(resource);
    }
}

/// Installs the subscriber: logs always, traces when a collector is
/// configured. Call once, inside the runtime.
///
/// # Errors
/// When the trace exporter cannot be built from the environment.
pub fn init(config: &Config) -> anyhow::Result<Telemetry> {
    // Spans made only for traces (`secureai_trace`) never reach the logs,
    // whatever `RUST_LOG` says.
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(format!("{},sqlx=warn,sea_orm=warn", config.log)));
    let filter = match "secureai_trace=off".parse() {
        Ok(directive) => filter.add_directive(directive),
        Err(_) => filter,
    };
    let writer = BatchedStderr::start();
    let logs = tracing_subscriber::fmt::layer().with_writer(writer.clone());
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
    Ok(Telemetry { traces, logs: writer })
}

/// How long a log line may wait in the buffer.
const FLUSH_EVERY: Duration = Duration::from_millis(100);

/// A buffer this large is written out at once.
const FLUSH_AT: usize = 64 * 1024;

/// Log lines gathered and written to stderr in batches: when the buffer
/// holds [`FLUSH_AT`] bytes, when a line arrives [`FLUSH_EVERY`] after the
/// last write, every [`FLUSH_EVERY`] by a thread of its own, and at exit.
/// One write per batch instead of one per line, and no thread to wake per
/// line: under load, logging each request costs its formatting and a copy.
#[derive(Clone, Debug)]
struct BatchedStderr(Arc<Mutex<Batch>>);

#[derive(Debug)]
struct Batch {
    buffer: Vec<u8>,
    written: Instant,
}

impl Batch {
    fn take(&mut self) -> Vec<u8> {
        self.written = Instant::now();
        std::mem::replace(&mut self.buffer, Vec::with_capacity(FLUSH_AT))
    }
}

/// Writes what was gathered. Stderr's lock is taken before the buffer is
/// let go, so batches keep their order; the write itself happens without
/// the buffer, so a slow reader of stderr holds up the writers of batches,
/// not the threads gathering lines. Nowhere to report a failure to write
/// the logs: the batch is dropped (a closed stderr must not stop the
/// service).
fn write_gathered(mut batch: std::sync::MutexGuard<'_, Batch>) {
    let mut stderr = std::io::stderr().lock();
    let lines = batch.take();
    drop(batch);
    if !lines.is_empty() {
        let _ = stderr.write_all(&lines);
    }
}

impl BatchedStderr {
    fn start() -> Self {
        let batch = Batch { buffer: Vec::with_capacity(FLUSH_AT), written: Instant::now() };
        let writer = Self(Arc::new(Mutex::new(batch)));
        let flusher = Arc::downgrade(&writer.0);
        let _ = std::thread::Builder::new().name("secureai-logs".into()).spawn(move || {
            while let Some(batch) = flusher.upgrade() {
                std::thread::sleep(FLUSH_EVERY);
                write_gathered(lock(&batch));
            }
        });
        writer
    }

    fn flush(&self) {
        write_gathered(lock(&self.0));
    }
}

fn lock(batch: &Mutex<Batch>) -> std::sync::MutexGuard<'_, Batch> {
    batch.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl std::io::Write for BatchedStderr {
    fn write(&mut self, line: &[u8]) -> std::io::Result<usize> {
        let mut batch = lock(&self.0);
        batch.buffer.extend_from_slice(line);
        if batch.buffer.len() >= FLUSH_AT || batch.written.elapsed() >= FLUSH_EVERY {
            write_gathered(batch);
        }
        Ok(line.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        BatchedStderr::flush(self);
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for BatchedStderr {
    type Writer = Self;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}
