//! Counts every AWS request a client sends (each attempt, as AWS bills it), by service and
//! operation, read from the request's `X-Amz-Target` header (DynamoDB, SQS and KMS all speak
//! JSON over `X-Amz-Target`).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use aws_config::SdkConfig;
// The SDK re-exports the interceptor types; every service crate shares them.
use aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::error::BoxError;
use threadstorm::aws::AwsClients;

/// Request counts, e.g. `{"DynamoDB.PutItem": 3, "SQS.SendMessageBatch": 1}`.
pub type Counts = BTreeMap<String, u64>;

#[derive(Debug, Clone, Default)]
pub struct RequestCounter(Arc<Mutex<Counts>>);

impl RequestCounter {
    pub fn snapshot(&self) -> Counts {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn reset(&self) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }

    /// Requests whose key starts with `service` (`DynamoDB`, `SQS`, `KMS`).
    pub fn total(&self, service: &str) -> u64 {
        self.snapshot()
            .iter()
            .filter(|(k, _)| k.starts_with(service))
            .map(|(_, v)| v)
            .sum()
    }

    /// Clients built from `sdk` that count into this counter.
    pub fn clients(&self, sdk: &SdkConfig) -> AwsClients {
        let dynamodb = aws_sdk_dynamodb::config::Builder::from(sdk)
            .interceptor(self.clone())
            .build();
        let sqs = aws_sdk_sqs::config::Builder::from(sdk)
            .interceptor(self.clone())
            .build();
        let kms = aws_sdk_kms::config::Builder::from(sdk)
            .interceptor(self.clone())
            .build();
        let secrets = aws_sdk_secretsmanager::config::Builder::from(sdk)
            .interceptor(self.clone())
            .build();
        AwsClients {
            dynamodb: aws_sdk_dynamodb::Client::from_conf(dynamodb),
            sqs: aws_sdk_sqs::Client::from_conf(sqs),
            kms: aws_sdk_kms::Client::from_conf(kms),
            secrets: aws_sdk_secretsmanager::Client::from_conf(secrets),
        }
    }
}

impl Intercept for RequestCounter {
    fn name(&self) -> &'static str {
        "RequestCounter"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let target = context
            .request()
            .headers()
            .get("x-amz-target")
            .unwrap_or("unknown.unknown");
        let (service, operation) = target.split_once('.').unwrap_or(("unknown", target));
        let service = match service {
            s if s.starts_with("DynamoDB") => "DynamoDB",
            s if s.starts_with("AmazonSQS") => "SQS",
            s if s.starts_with("TrentService") => "KMS",
            s if s.starts_with("secretsmanager") => "SecretsManager",
            other => other,
        };
        let mut counts = self.0.lock().unwrap_or_else(|e| e.into_inner());
        *counts.entry(format!("{service}.{operation}")).or_default() += 1;
        Ok(())
    }
}

/// `after - before`, dropping zeros.
pub fn diff(before: &Counts, after: &Counts) -> Counts {
    after
        .iter()
        .map(|(k, v)| (k.clone(), v - before.get(k).copied().unwrap_or(0)))
        .filter(|(_, v)| *v > 0)
        .collect()
}
