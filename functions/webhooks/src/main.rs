//! Receives Meta's signed webhooks and the deauthorize and data-deletion callbacks.

use lambda_http::{Error, run, service_fn};
use threadstorm::webhooks::routes::Webhooks;
use threadstorm::{resources, runtime};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let deps = runtime::start(&resources::WEBHOOKS).await?;
    let webhooks = Webhooks::from_deps(&deps).await?;
    run(service_fn(|request| async {
        Ok::<_, Error>(webhooks.handle(request).await)
    }))
    .await
}
