//! ThreadStorm's HTTP API: posts, storms, accounts, inbox, audit and admin routes.

use lambda_http::Error;
use threadstorm::api::Api;
use threadstorm::{resources, runtime};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let deps = runtime::start(&resources::API).await?;
    let api = Api::from_deps(&deps).await?;
    runtime::serve_http(&deps, |request| api.handle(request)).await
}
