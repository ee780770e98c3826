//! Logs and traces. Logs go to stderr (text, or JSON with `TERN_LOG_FORMAT=json`) so stdout
//! stays clean for the start banner and the CLI's `--json` output. Traces are exported over
//! OTLP/HTTP (protobuf) only when `OTEL_EXPORTER_OTLP_ENDPOINT` is set.
//!
//! Why the async-runtime batch processor: the SDK's default batch processor exports from its
//! own thread with `block_on`, and the async reqwest client it would use needs a Tokio
//! reactor that thread does not have, so spans were dropped (or the exporter panicked). The
//! processor used here runs its export loop as a Tokio task, and `shutdown` flushes it.

use opentelemetry::trace::TracerProvider as _;
use opentelemetry::KeyValue;
use opentelemetry_sdk::trace::span_processor_with_async_runtime::BatchSpanProcessor;
use opentelemetry_sdk::trace::SdkTracerProvider;
use opentelemetry_sdk::Resource;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

use crate::config::LogFormat;

/// The variable that turns trace export on (standard OpenTelemetry name).
pub const OTLP_ENDPOINT_VAR: &str = "OTEL_EXPORTER_OTLP_ENDPOINT";

#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error("invalid log filter: {0}")]
    Filter(String),
    #[error("could not build the OTLP exporter for {endpoint}: {reason}")]
    Exporter { endpoint: String, reason: String },
    #[error("could not install the log subscriber: {0}")]
    Install(String),
}

/// Keeps the trace pipeline alive; `shutdown` flushes what is buffered.
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

/// Crates whose own spans must not be exported: the exporter's HTTP client would otherwise
/// trace its own export requests, forever.
fn exported(target: &str) -> bool {
    const NOISY: &[&str] = &["hyper", "h2", "reqwest", "tower", "opentelemetry", "rustls", "sqlx"];
    !NOISY.iter().any(|n| target.starts_with(n))
}

/// Installs the global subscriber. Must run inside the Tokio runtime (the batch span
/// processor spawns its task there).
pub fn init(format: LogFormat, filter: &str, node_id: &str) -> Result<Telemetry, TelemetryError> {
    let env_filter = EnvFilter::try_new(filter).map_err(|e| TelemetryError::Filter(e.to_string()))?;
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let fmt_layer = match format {
        LogFormat::Text => tracing_subscriber::fmt::layer()
            .with_ansi(ansi)
            .with_writer(std::io::stderr)
            .boxed(),
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .with_writer(std::io::stderr)
            .boxed(),
    };

    let endpoint = std::env::var(OTLP_ENDPOINT_VAR).ok().filter(|e| !e.trim().is_empty());
    let (provider, otel_layer) = match endpoint {
        None => (None, None),
        Some(endpoint) => {
            let provider = tracer_provider(node_id).map_err(|reason| TelemetryError::Exporter {
                endpoint: endpoint.clone(),
                reason,
            })?;
            let layer = tracing_opentelemetry::layer()
                .with_tracer(provider.tracer("tern"))
                .with_filter(tracing_subscriber::filter::filter_fn(|m| exported(m.target())));
            (Some(provider), Some(layer))
        }
    };

    tracing_subscriber::registry()
        .with(env_filter)
        .with(fmt_layer)
        .with(otel_layer)
        .try_init()
        .map_err(|e| TelemetryError::Install(e.to_string()))?;
    Ok(Telemetry { provider })
}

fn tracer_provider(node_id: &str) -> Result<SdkTracerProvider, String> {
    use opentelemetry_otlp::WithExportConfig as _;
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
        .build()
        .map_err(|e| e.to_string())?;
    let processor = BatchSpanProcessor::builder(exporter, opentelemetry_sdk::runtime::Tokio).build();
    let resource = Resource::builder()
        .with_service_name("tern")
        .with_attribute(KeyValue::new("service.instance.id", node_id.to_owned()))
        .build();
    Ok(SdkTracerProvider::builder()
        .with_span_processor(processor)
        .with_resource(resource)
        .build())
}

impl Telemetry {
    /// Whether spans are being exported.
    pub fn exporting(&self) -> bool {
        self.provider.is_some()
    }

    /// Exports every buffered span and stops the pipeline. The processor answers through a
    /// blocking channel while its task runs on the runtime, so this waits on a blocking thread.
    pub async fn shutdown(self) {
        let Some(provider) = self.provider else {
            return;
        };
        let result = tokio::task::spawn_blocking(move || provider.shutdown()).await;
        match result {
            Ok(Ok(())) => {}
            Ok(Err(e)) => eprintln!("tern: could not flush traces: {e}"),
            Err(e) => eprintln!("tern: could not flush traces: {e}"),
        }
    }
}
