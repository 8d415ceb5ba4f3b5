//! Test support: one moto server per test process, and a stack of its own for every test.
//!
//! If moto cannot start, the test fails with a message that says how to fix it; it is never
//! skipped.

use std::collections::BTreeMap;

use aws_config::SdkConfig;
use rand::Rng;
use threadstorm::aws::AwsClients;
use threadstorm::config::{Config, ConfigError};
use threadstorm::resources::{FunctionSpec, Resource};

use crate::{Moto, Stack, StackOptions, Template};

/// The public base URL test stacks are configured with (nothing listens there unless a test
/// starts it).
pub const LOCAL_BASE_URL: &str = "http://localhost:3000";

/// A freshly created stack in the shared moto server.
pub struct TestStack {
    pub moto: &'static Moto,
    pub sdk: SdkConfig,
    pub stack: Stack,
    pub aws: AwsClients,
}

impl TestStack {
    /// Starts moto on first use and creates every resource of template.yaml under a new prefix.
    pub async fn new() -> TestStack {
        Self::with_options(StackOptions::local(LOCAL_BASE_URL)).await
    }

    pub async fn with_options(options: StackOptions) -> TestStack {
        let moto = Moto::shared();
        let sdk = moto.sdk_config();
        let template = match Template::load_workspace() {
            Ok(t) => t,
            Err(err) => panic!("{err}"),
        };
        let stack = match Stack::create(&sdk, &template, &unique_stack_name(), options).await {
            Ok(stack) => stack,
            Err(err) => panic!(
                "creating the local stack in moto at {}: {err}",
                moto.endpoint()
            ),
        };
        let aws = AwsClients::from_sdk_config(&sdk);
        TestStack {
            moto,
            sdk,
            stack,
            aws,
        }
    }

    /// The physical name of `resource` (table name, queue URL, secret ARN, key id).
    pub fn name(&self, resource: Resource) -> String {
        match self.stack.reference(resource.logical_id()) {
            Ok(name) => name.to_owned(),
            Err(err) => panic!("{err}"),
        }
    }

    /// The environment `function` gets in this stack, as Lambda would give it.
    pub fn env(&self, function: &FunctionSpec) -> BTreeMap<String, String> {
        match self
            .stack
            .function_env(function.logical_id, self.moto.endpoint())
        {
            Ok(env) => env,
            Err(err) => panic!("{err}"),
        }
    }

    /// `function`'s configuration in this stack, read exactly as the function reads it.
    pub fn config(&self, function: &FunctionSpec) -> Result<Config, ConfigError> {
        let env = self.env(function);
        Config::from_lookup(function, |name| env.get(name).cloned())
    }
}

/// `t` and ten random letters and digits: a valid prefix for every kind of resource name.
pub fn unique_stack_name() -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    let suffix: String = (0..10)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect();
    format!("t{suffix}")
}
