//! Pipeline stage: final statuses, storm completion, metrics and audit.

use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use threadstorm::pipeline::results::{ResultSinkDeps, lambda};
use threadstorm::{resources, runtime};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let deps = runtime::start(&resources::RESULT_SINK).await?;
    let stage = ResultSinkDeps::from_runtime(&deps)?;
    run(service_fn(|event: LambdaEvent<_>| {
        let context = event.context.clone();
        runtime::in_invocation(deps.function.name, &context, lambda(&stage, event))
    }))
    .await
}
