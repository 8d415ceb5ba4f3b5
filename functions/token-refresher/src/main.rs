//! Scheduled refresh of long-lived Threads tokens before they expire.

use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use threadstorm::refresher::Refresher;
use threadstorm::{resources, runtime};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let deps = runtime::start(&resources::TOKEN_REFRESHER).await?;
    let refresher = Refresher::from_deps(&deps).await?;
    run(service_fn(|event: LambdaEvent<serde_json::Value>| {
        runtime::in_invocation(deps.function.name, &event.context, refresher.run())
    }))
    .await
}
