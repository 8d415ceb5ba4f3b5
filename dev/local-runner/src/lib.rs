//! ThreadStorm's local runner: the function binaries that are deployed, each run as a child
//! process behind a local Lambda Runtime API, and fed as AWS would feed them — an API Gateway
//! REST front, SQS event source mappings and EventBridge schedules, all read from template.yaml —
//! against moto on loopback.
//!
//! ```no_run
//! # async fn demo() -> Result<(), local_runner::RunnerError> {
//! use local_runner::{Runner, RunnerOptions};
//! let runner = Runner::start(RunnerOptions::default()).await?;
//! println!("API at {:?}", runner.api_url());
//! let result = runner.invoke("SchedulerFunction", &serde_json::json!({})).await?;
//! println!("{:?} in {:?}", result.outcome, result.duration);
//! runner.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! The README of this crate lists what is faithful to AWS and what is simplified.

pub mod apigw;
pub mod binaries;
pub mod demo;
pub mod events;
pub mod functions;
pub mod invocation;
pub mod process;
pub mod runner;
pub mod runtime_api;
pub mod schedule;
mod serve;
pub mod sqs_mapping;

pub use binaries::Binaries;
pub use invocation::{
    BatchMessage, BatchRecord, ColdStart, ErrorBody, Invocation, InvocationRecord, Outcome,
    OutcomeKind, StartCause, Trigger,
};
pub use process::{FunctionLogs, FunctionState};
pub use runner::{AwsEndpoint, MappingInfo, Runner, RunnerError, RunnerOptions, ScheduleInfo};
