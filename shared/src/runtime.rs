//! Start-up shared by every function: configuration, JSON logs, AWS clients — in that order, once.
//! Then the serving loop of every function: one log span per invocation (request id, function,
//! cold start) and the request metrics (per route for the HTTP functions), written whether the
//! handler answers or fails.
//!
//! Also the honest answer of a handler that is not built yet: a clear "not implemented" error,
//! never a fake success.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt, Response};
use tracing::Instrument;

use crate::audit::Audit;
use crate::aws::AwsClients;
use crate::config::{Config, ConfigError, LogLevel};
use crate::metrics::{Metric, Metrics, dimension};
use crate::resources::FunctionSpec;
use crate::secrets::SecretReader;
use crate::threads::{ThreadsClient, ThreadsConfig};
use crate::vault::Vault;

/// What a handler needs: the function's configuration and its AWS clients.
#[derive(Clone, Debug)]
pub struct Deps {
    pub function: &'static FunctionSpec,
    pub config: Config,
    pub aws: AwsClients,
}

/// Why a function's dependencies could not be built at start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("the Threads client could not be built: {0}")]
    Threads(String),
    #[error("the token vault could not open: {0}")]
    Vault(String),
}

impl Deps {
    /// The Threads client for the configured hosts; `timeouts` (connect, whole call) replace the
    /// client's own where a function must answer sooner.
    pub fn threads_client(
        &self,
        timeouts: Option<(Duration, Duration)>,
    ) -> Result<ThreadsClient, StartError> {
        let threads = &self.config.threads;
        let config = ThreadsConfig::new(&threads.graph_url, &threads.authorize_url)
            .map_err(|e| StartError::Threads(e.to_string()))?;
        let config = match timeouts {
            Some((connect, call)) => config.with_timeouts(connect, call),
            None => config,
        };
        ThreadsClient::new(config).map_err(|e| StartError::Threads(e.to_string()))
    }

    /// The token vault the configuration asks for ([`Vault::open`]), auditing each opening.
    pub async fn vault(
        &self,
        secrets: Arc<SecretReader>,
        audit: Audit,
    ) -> Result<Vault, StartError> {
        Vault::open(&self.config, self.aws.kms.clone(), secrets, audit)
            .await
            .map_err(|e| StartError::Vault(e.to_string()))
    }
}

/// Reads the configuration, starts JSON logging at `LOG_LEVEL` and builds the AWS clients.
///
/// A configuration error is returned (and printed) before anything else happens, so Lambda
/// reports it as an init error naming the variable.
pub async fn start(function: &'static FunctionSpec) -> Result<Deps, ConfigError> {
    let config = match Config::from_env(function) {
        Ok(config) => config,
        Err(err) => {
            eprintln!(
                r#"{{"level":"ERROR","function":"{}","message":{:?}}}"#,
                function.name,
                err.to_string()
            );
            return Err(err);
        }
    };
    init_logging(function, &config);
    let aws = AwsClients::from_env(function.name).await;
    tracing::info!(region = %config.region, production_mode = config.production_mode, "initialised");
    Ok(Deps {
        function,
        config,
        aws,
    })
}

fn init_logging(function: &FunctionSpec, config: &Config) {
    let filter = tracing_subscriber::EnvFilter::new(log_filter(function, config.log_level));
    use tracing_subscriber::util::SubscriberInitExt;
    if json_logs(filter, std::io::stdout).try_init().is_err() {
        // A subscriber is already installed (tests call start more than once): keep it.
        return;
    }
    tracing::debug!(function = function.name, "logging started");
}

/// The JSON log format: one event per line, its fields flattened, and `spans` — every span it was
/// written in, outermost first — so a line logged inside a stage's own span still carries the
/// invocation span's request id, function and cold start; `span` is the innermost one.
fn json_logs<W>(
    filter: tracing_subscriber::EnvFilter,
    writer: W,
) -> impl tracing::Subscriber + Send + Sync + 'static
where
    W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_current_span(true)
        .with_span_list(true)
        .with_target(false)
        .with_ansi(false)
        .without_time()
        .with_env_filter(filter)
        .with_writer(writer)
        .finish()
}

/// The log filter for `level`: ThreadStorm's own code (the library and the function's binary) at
/// `level`, dependencies never below `info` — the AWS SDK's and hyper's debug output carries request
/// and response bodies (a KMS data key's plaintext among them), which must never reach the logs.
/// The Lambda runtime only from `warn`: its per-invocation span would otherwise come before ours
/// in every line's `spans`, and ours carries the same request id.
pub fn log_filter(function: &FunctionSpec, level: LogLevel) -> String {
    const RUNTIME: &str = "lambda_runtime=warn";
    match level {
        LogLevel::Debug | LogLevel::Trace => {
            let own = function.name.replace('-', "_");
            let level = level.as_str();
            format!("info,{RUNTIME},threadstorm={level},{own}={level}")
        }
        LogLevel::Info => format!("info,{RUNTIME}"),
        _ => level.as_str().to_owned(),
    }
}

static COLD_START: AtomicBool = AtomicBool::new(true);

/// True for the first invocation of this process (a cold start), false afterwards.
fn take_cold_start() -> bool {
    COLD_START.swap(false, Ordering::Relaxed)
}

/// The span every log line of one invocation is written in: request id, function, cold start.
pub fn invocation_span(function: &str, request_id: &str) -> tracing::Span {
    tracing::info_span!(
        "invocation",
        request_id = %request_id,
        function = %function,
        cold_start = take_cold_start()
    )
}

/// `work` (one event's handling) inside its invocation span, for queue, schedule and rotation
/// functions — counted as one request of the function (`request_count`, `request_duration_ms`,
/// and `errors` when it returns an error or panics), so every function has an error rate.
pub fn in_invocation<F, T, E>(
    function: &'static str,
    context: &lambda_runtime::Context,
    work: F,
) -> impl Future<Output = Result<T, E>> + use<F, T, E>
where
    F: Future<Output = Result<T, E>>,
{
    let request_id = context.request_id.clone();
    // Boxed, so the futures that hold this one do not nest the handler's whole state machine in
    // their own type: the rotation handler's is deep enough to overflow rustc's query depth.
    let work = Box::pin(work);
    async move {
        let span = invocation_span(function, &request_id);
        let mut scope = RequestScope::new(function, String::new());
        scope.metrics.property("request_id", request_id);
        let outcome = work.instrument(span).await;
        scope.finish(outcome.is_err());
        outcome
    }
}

/// Serves an HTTP function: every request is answered by `handler` inside its invocation span,
/// and counted (`request_count`, `errors`, `request_duration_ms`) per route template.
pub async fn serve_http<H, F>(deps: &Deps, handler: H) -> Result<(), lambda_http::Error>
where
    H: Fn(Request) -> F + Sync,
    F: Future<Output = Response<Body>> + Send,
{
    let function = deps.function.name;
    let handler = &handler;
    lambda_http::run(lambda_http::service_fn(
        move |request: Request| async move {
            Ok::<_, lambda_http::Error>(observe_http(function, request, handler).await)
        },
    ))
    .await
}

/// Answers one request with `handler`, logging in its invocation span and writing its request
/// metrics, also when the handler panics.
pub async fn observe_http<H, F>(function: &str, request: Request, handler: H) -> Response<Body>
where
    H: FnOnce(Request) -> F,
    F: Future<Output = Response<Body>>,
{
    let request_id = request
        .lambda_context_ref()
        .map(|c| c.request_id.clone())
        .unwrap_or_default();
    let span = invocation_span(function, &request_id);
    let mut scope = RequestScope::new(function, route(&request));
    scope.metrics.property("request_id", request_id);
    let response = handler(request).instrument(span).await;
    scope.finish(response.status().is_server_error());
    response
}

/// The route template API Gateway matched (`/meta/deletion-status/{code}`), never the raw path,
/// so the `route` dimension has as many values as template.yaml has routes. Empty (and so left
/// out of the metrics) when the request did not come through API Gateway.
pub fn route(request: &Request) -> String {
    match request.request_context_ref() {
        Some(RequestContext::ApiGatewayV1(context)) => {
            context.resource_path.clone().unwrap_or_default()
        }
        _ => String::new(),
    }
}

/// The request metrics of one invocation. Dropped without [`RequestScope::finish`] — the handler
/// panicked — it counts the request as an error; either way the metrics are written on drop.
struct RequestScope {
    metrics: Metrics,
    route: String,
    started: Instant,
    finished: bool,
}

impl RequestScope {
    fn new(function: &str, route: String) -> Self {
        RequestScope {
            metrics: Metrics::new(function),
            route,
            started: Instant::now(),
            finished: false,
        }
    }

    fn finish(mut self, failed: bool) {
        self.record(failed);
    }

    fn record(&mut self, failed: bool) {
        self.finished = true;
        let millis = self.started.elapsed().as_secs_f64() * 1000.0;
        let route = [(dimension::ROUTE, self.route.as_str())];
        self.metrics
            .put_with(Metric::RequestCount, &route, 1.0)
            .put_with(Metric::Errors, &route, if failed { 1.0 } else { 0.0 })
            .put_with(Metric::RequestDurationMs, &route, millis);
    }
}

impl Drop for RequestScope {
    fn drop(&mut self) {
        if !self.finished {
            self.record(true);
        }
        // `metrics` is dropped next, which writes what was recorded.
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lambda_http::aws_lambda_events::apigw::ApiGatewayProxyRequestContext;

    fn detached_scope(function: &str, route: &str) -> RequestScope {
        RequestScope {
            metrics: Metrics::detached(function),
            route: route.to_owned(),
            started: Instant::now(),
            finished: false,
        }
    }

    #[test]
    fn a_request_is_counted_per_route_with_its_duration_and_no_error() {
        let mut scope = detached_scope("webhooks", "/meta/deletion-status/{code}");
        scope.record(false);
        let docs = scope.metrics.documents(0);
        assert_eq!(docs.len(), 1);
        let doc = &docs[0];
        assert_eq!(doc["service"], "webhooks");
        assert_eq!(doc["route"], "/meta/deletion-status/{code}");
        assert_eq!(doc["request_count"], 1);
        assert_eq!(doc["errors"], 0);
        assert!(
            doc["request_duration_ms"]
                .as_f64()
                .is_some_and(|ms| ms >= 0.0)
        );
        assert_eq!(
            doc["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            serde_json::json!([["service", "route"], ["service"]])
        );
    }

    #[test]
    fn a_server_error_counts_as_an_error_and_a_client_error_does_not() {
        for (status, errors) in [(200, 0), (404, 0), (429, 0), (503, 1), (500, 1)] {
            let mut scope = detached_scope("oauth", "/oauth/start");
            scope.record(status >= 500);
            assert_eq!(scope.metrics.documents(0)[0]["errors"], errors, "{status}");
            scope.finished = true;
        }
    }

    #[test]
    fn a_scope_dropped_unfinished_records_an_error() {
        let mut scope = detached_scope("api", "/v1/{proxy+}");
        // What Drop does when the handler never finished (it panicked).
        assert!(!scope.finished);
        scope.record(true);
        assert_eq!(scope.metrics.documents(0)[0]["errors"], 1);
    }

    #[tokio::test]
    async fn an_invocation_returns_what_its_work_returned() {
        let context = lambda_runtime::Context::default();
        let ok: Result<u8, String> = in_invocation("gate", &context, async { Ok(7) }).await;
        assert_eq!(ok, Ok(7));
        let failed: Result<u8, String> =
            in_invocation("gate", &context, async { Err("down".to_owned()) }).await;
        assert_eq!(failed, Err("down".to_owned()));
    }

    #[test]
    fn the_route_is_the_template_path_never_the_raw_path() {
        let mut context = ApiGatewayProxyRequestContext::default();
        context.resource_path = Some("/meta/deletion-status/{code}".into());
        context.path = Some("/live/meta/deletion-status/abc123".into());
        let request =
            Request::default().with_request_context(RequestContext::ApiGatewayV1(context));
        assert_eq!(route(&request), "/meta/deletion-status/{code}");
        assert_eq!(route(&Request::default()), "");
    }

    #[tokio::test]
    async fn observe_http_returns_the_handlers_answer() {
        let res = observe_http("oauth", Request::default(), |_req| async {
            crate::edge::response(418, "text/plain", "teapot")
        })
        .await;
        assert_eq!(res.status(), 418);
    }

    #[test]
    fn debug_logging_never_opens_dependencies_below_info() {
        let f = &crate::resources::RESULT_SINK;
        assert_eq!(log_filter(f, LogLevel::Info), "info,lambda_runtime=warn");
        assert_eq!(log_filter(f, LogLevel::Warn), "warn");
        assert_eq!(
            log_filter(f, LogLevel::Debug),
            "info,lambda_runtime=warn,threadstorm=debug,result_sink=debug"
        );
        assert!(tracing_subscriber::EnvFilter::try_new(log_filter(f, LogLevel::Trace)).is_ok());
    }

    /// A writer that keeps what the log format wrote.
    #[derive(Clone, Default)]
    struct Captured(Arc<std::sync::Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            if let Ok(mut kept) = self.0.lock() {
                kept.extend_from_slice(buf);
            }
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_line_logged_in_a_stage_span_carries_the_invocation_ids() {
        let captured = Captured::default();
        let writer = captured.clone();
        let filter = log_filter(&crate::resources::GATE, LogLevel::Info);
        let subscriber = json_logs(tracing_subscriber::EnvFilter::new(filter), move || {
            writer.clone()
        });
        tracing::subscriber::with_default(subscriber, || {
            // What lambda_runtime opens around every invocation, before ours.
            let runtime = tracing::info_span!(
                target: "lambda_runtime::layers::trace",
                "Lambda runtime invoke",
                requestId = "req-42"
            );
            let _runtime = runtime.enter();
            let invocation = invocation_span("gate", "req-42");
            let _outer = invocation.enter();
            let stage = tracing::info_span!("run", stage = "gate", messages = 3);
            let _inner = stage.enter();
            tracing::info!(deferred = 1, "batch done");
        });
        let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        let line: serde_json::Value = serde_json::from_str(text.trim()).unwrap();
        assert_eq!(line["message"], "batch done");
        assert_eq!(line["level"], "INFO");
        assert_eq!(line["span"]["stage"], "gate", "the innermost span: {line}");
        let outermost = &line["spans"][0];
        assert_eq!(outermost["name"], "invocation", "{line}");
        assert_eq!(outermost["request_id"], "req-42");
        assert_eq!(outermost["function"], "gate");
        assert!(outermost["cold_start"].is_boolean(), "{line}");
    }

    #[test]
    fn only_the_first_invocation_is_a_cold_start() {
        // Other tests may have taken it already; after one take it stays false.
        let _ = take_cold_start();
        assert!(!take_cold_start());
    }
}
