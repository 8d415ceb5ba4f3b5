//! Start-up shared by every function: configuration, JSON logs, AWS clients — in that order, once.
//!
//! Also the honest answer of a handler that is not built yet: a clear "not implemented" error,
//! never a fake success.

use lambda_http::{Body, Response};

use crate::aws::AwsClients;
use crate::config::{Config, ConfigError};
use crate::resources::FunctionSpec;

/// What a handler needs: the function's configuration and its AWS clients.
#[derive(Clone, Debug)]
pub struct Deps {
    pub function: &'static FunctionSpec,
    pub config: Config,
    pub aws: AwsClients,
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
    let filter = tracing_subscriber::EnvFilter::new(config.log_level.as_str());
    let result = tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_current_span(true)
        .with_span_list(false)
        .with_target(false)
        .with_ansi(false)
        .without_time()
        .with_env_filter(filter)
        .try_init();
    if result.is_err() {
        // A subscriber is already installed (tests call start more than once): keep it.
        return;
    }
    tracing::debug!(function = function.name, "logging started");
}

/// The error a queue or schedule handler returns while its stage is not built: the runtime
/// reports it, the batch is retried and, in the end, lands in the dead-letter queue — nothing is
/// silently dropped or marked done.
#[derive(Debug, thiserror::Error)]
#[error("{function}: not implemented yet; nothing was processed")]
pub struct NotImplemented {
    pub function: &'static str,
}

impl From<NotImplemented> for lambda_runtime::Diagnostic {
    fn from(err: NotImplemented) -> Self {
        lambda_runtime::Diagnostic {
            error_type: "NotImplemented".into(),
            error_message: err.to_string(),
        }
    }
}

/// The answer of an HTTP function whose routes are not built yet: 501 as problem+json.
pub fn not_implemented_response(function: &'static str) -> Response<Body> {
    let body = serde_json::json!({
        "type": "about:blank",
        "title": "Not Implemented",
        "status": 501,
        "detail": format!("the {function} function is not implemented yet; nothing was done"),
    });
    crate::edge::secure(crate::edge::response(
        501,
        "application/problem+json",
        body.to_string(),
    ))
}
