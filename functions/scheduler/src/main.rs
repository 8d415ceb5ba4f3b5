//! Scheduled sweep: enqueues due, deferred and never-enqueued posts.

use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use threadstorm::pipeline::scheduler::{SchedulerDeps, lambda};
use threadstorm::{resources, runtime};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let deps = runtime::start(&resources::SCHEDULER).await?;
    let sweep = SchedulerDeps::from_runtime(&deps)?;
    run(service_fn(|event: LambdaEvent<_>| {
        let context = event.context.clone();
        runtime::in_invocation(deps.function.name, &context, lambda(&sweep, event))
    }))
    .await
}
