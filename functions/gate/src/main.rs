//! Pipeline stage: kill switch and quota reservations.

use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use threadstorm::pipeline::gate::{GateDeps, lambda};
use threadstorm::{resources, runtime};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let deps = runtime::start(&resources::GATE).await?;
    let stage = GateDeps::from_runtime(&deps)?;
    run(service_fn(|event: LambdaEvent<_>| {
        let context = event.context.clone();
        runtime::in_invocation(deps.function.name, &context, lambda(&stage, event))
    }))
    .await
}
