//! Connects Threads accounts: OAuth start, callback and logout.

use lambda_http::{Error, run, service_fn};
use threadstorm::{resources, runtime};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let deps = runtime::start(&resources::OAUTH).await?;
    run(service_fn(|_request| async {
        Ok::<_, Error>(runtime::not_implemented_response(deps.function.name))
    }))
    .await
}
