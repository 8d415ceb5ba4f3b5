//! ThreadStorm's HTTP API: posts, storms, accounts, inbox, audit and admin routes.

use lambda_http::{Error, run, service_fn};
use threadstorm::api::Api;
use threadstorm::{resources, runtime};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let deps = runtime::start(&resources::API).await?;
    let api = Api::from_deps(&deps)?;
    run(service_fn(|request| async {
        Ok::<_, Error>(api.handle(request).await)
    }))
    .await
}
