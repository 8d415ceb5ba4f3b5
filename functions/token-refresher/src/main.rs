//! Scheduled refresh of long-lived Threads tokens.

use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use threadstorm::{resources, runtime};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let deps = runtime::start(&resources::TOKEN_REFRESHER).await?;
    run(service_fn(|_event: LambdaEvent<serde_json::Value>| async {
        Err::<(), _>(runtime::NotImplemented {
            function: deps.function.name,
        })
    }))
    .await
}
