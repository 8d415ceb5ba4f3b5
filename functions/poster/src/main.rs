//! Pipeline stage: publishes to Threads exactly once.

use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use threadstorm::{resources, runtime};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let deps = runtime::start(&resources::POSTER).await?;
    run(service_fn(|_event: LambdaEvent<serde_json::Value>| async {
        Err::<(), _>(runtime::NotImplemented {
            function: deps.function.name,
        })
    }))
    .await
}
