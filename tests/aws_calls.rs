//! Counts the DynamoDB (or Secrets Manager) requests a piece of code sends, by operation, as they
//! leave the client (SDK retries included: each is billed).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use aws_config::SdkConfig;
use aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};

/// Operation name (`GetItem`, `PutItem`, …) → requests sent.
#[derive(Clone, Debug, Default)]
pub struct Calls(Arc<Mutex<BTreeMap<String, usize>>>);

impl Calls {
    /// The counts so far, and starts again from zero.
    pub fn take(&self) -> BTreeMap<String, usize> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

#[derive(Debug)]
struct Counter(Calls);

impl Intercept for Counter {
    fn name(&self) -> &'static str {
        "CountAwsCalls"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        let target = context
            .request()
            .headers()
            .get("x-amz-target")
            .unwrap_or("unknown");
        let operation = target.rsplit('.').next().unwrap_or(target).to_owned();
        let mut calls = (self.0).0.lock().unwrap_or_else(|e| e.into_inner());
        *calls.entry(operation).or_default() += 1;
        Ok(())
    }
}

/// A DynamoDB client for `sdk` whose requests are counted in the returned [`Calls`].
pub fn counted_dynamodb(sdk: &SdkConfig) -> (aws_sdk_dynamodb::Client, Calls) {
    let calls = Calls::default();
    let config = aws_sdk_dynamodb::config::Builder::from(sdk)
        .interceptor(Counter(calls.clone()))
        .build();
    (aws_sdk_dynamodb::Client::from_conf(config), calls)
}

/// A Secrets Manager client for `sdk` whose requests are counted in the returned [`Calls`].
pub fn counted_secretsmanager(sdk: &SdkConfig) -> (aws_sdk_secretsmanager::Client, Calls) {
    let calls = Calls::default();
    let config = aws_sdk_secretsmanager::config::Builder::from(sdk)
        .interceptor(Counter(calls.clone()))
        .build();
    (aws_sdk_secretsmanager::Client::from_conf(config), calls)
}

/// `[("GetItem", 1), ("PutItem", 1)]` as a map, for comparing with [`Calls::take`].
pub fn expected(pairs: &[(&str, usize)]) -> BTreeMap<String, usize> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect()
}
