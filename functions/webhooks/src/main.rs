//! Receives Meta's signed webhooks and the deauthorize and data-deletion callbacks.

use lambda_http::Error;
use threadstorm::webhooks::routes::Webhooks;
use threadstorm::{resources, runtime};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let deps = runtime::start(&resources::WEBHOOKS).await?;
    let webhooks = Webhooks::from_deps(&deps).await?;
    runtime::serve_http(&deps, |request| webhooks.handle(request)).await
}
