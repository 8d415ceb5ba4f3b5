//! Secrets Manager rotation steps for the secrets ThreadStorm generates.

use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use threadstorm::rotation::{RotationEvent, Rotator};
use threadstorm::{resources, runtime};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let deps = runtime::start(&resources::SECRET_ROTATION).await?;
    let rotator = Rotator::from_deps(&deps)?;
    run(service_fn(|event: LambdaEvent<RotationEvent>| {
        let context = event.context.clone();
        let rotator = &rotator;
        let work = async move { rotator.handle(&event.payload).await };
        runtime::in_invocation(deps.function.name, &context, work)
    }))
    .await
}
