//! The AWS service clients, built once per process from the environment.
//!
//! `aws_config` reads region, credentials and `AWS_ENDPOINT_URL` from the environment, so the same
//! binary talks to AWS or to a local moto server without a code change.

use aws_config::{AppName, BehaviorVersion, SdkConfig};

/// The four service clients ThreadStorm uses. Cheap to clone (each is an `Arc` inside).
#[derive(Clone, Debug)]
pub struct AwsClients {
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub kms: aws_sdk_kms::Client,
    pub secrets: aws_sdk_secretsmanager::Client,
}

impl AwsClients {
    /// Loads the shared SDK configuration from the environment and builds every client from it.
    /// Requests name the function in their user agent (`app/threadstorm-<function>`), so
    /// CloudTrail (and the local stack's request counts) tell the functions apart.
    pub async fn from_env(function: &str) -> Self {
        let mut loader = aws_config::defaults(BehaviorVersion::latest());
        if let Ok(name) = AppName::new(format!("threadstorm-{function}")) {
            loader = loader.app_name(name);
        }
        Self::from_sdk_config(&loader.load().await)
    }

    pub fn from_sdk_config(sdk: &SdkConfig) -> Self {
        AwsClients {
            dynamodb: aws_sdk_dynamodb::Client::new(sdk),
            sqs: aws_sdk_sqs::Client::new(sdk),
            kms: aws_sdk_kms::Client::new(sdk),
            secrets: aws_sdk_secretsmanager::Client::new(sdk),
        }
    }
}

/// A short description of an SDK error for logs and error messages: `Code: message` for a service
/// error, the error chain otherwise (timeouts, connection failures). Leaves out the raw response.
pub fn describe_error<E, R>(err: &aws_sdk_kms::error::SdkError<E, R>) -> String
where
    E: aws_sdk_kms::error::ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    match err.as_service_error() {
        Some(service) => format!(
            "{}: {}",
            service.code().unwrap_or("UnknownError"),
            service.message().unwrap_or("no message")
        ),
        None => aws_sdk_kms::error::DisplayErrorContext(err).to_string(),
    }
}
