//! Pipeline stage: content policy and 24-hour duplicate check.

use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use threadstorm::pipeline::dedupe::{DedupeDeps, lambda};
use threadstorm::{resources, runtime};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let deps = runtime::start(&resources::DEDUPE).await?;
    let stage = DedupeDeps::from_runtime(&deps)?;
    run(service_fn(|event: LambdaEvent<_>| {
        let context = event.context.clone();
        runtime::in_invocation(deps.function.name, &context, lambda(&stage, event))
    }))
    .await
}
