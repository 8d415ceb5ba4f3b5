//! Pipeline stage: publishes to Threads exactly once.

use lambda_runtime::{Error, run, service_fn};
use threadstorm::pipeline::poster::{PosterDeps, lambda};
use threadstorm::{resources, runtime};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let deps = runtime::start(&resources::POSTER).await?;
    let stage = PosterDeps::from_runtime(&deps).await?;
    run(service_fn(|event| lambda(&stage, event))).await
}
