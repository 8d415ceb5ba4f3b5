//! Pipeline stage: publishes to Threads exactly once.

use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use threadstorm::pipeline::poster::{PosterDeps, lambda};
use threadstorm::{resources, runtime};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let deps = runtime::start(&resources::POSTER).await?;
    let stage = PosterDeps::from_runtime(&deps).await?;
    run(service_fn(|event: LambdaEvent<_>| {
        let context = event.context.clone();
        runtime::in_invocation(deps.function.name, &context, lambda(&stage, event))
    }))
    .await
}
