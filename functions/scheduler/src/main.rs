//! Scheduled sweep: enqueues due, deferred and never-enqueued posts.

use lambda_runtime::{Error, run, service_fn};
use threadstorm::pipeline::scheduler::{SchedulerDeps, lambda};
use threadstorm::{resources, runtime};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let deps = runtime::start(&resources::SCHEDULER).await?;
    let sweep = SchedulerDeps::from_runtime(&deps)?;
    run(service_fn(|event| lambda(&sweep, event))).await
}
