//! Connects Threads accounts: OAuth start, callback and logout.

use lambda_http::Error;
use threadstorm::oauth::routes::OAuth;
use threadstorm::{resources, runtime};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let deps = runtime::start(&resources::OAUTH).await?;
    let oauth = OAuth::from_deps(&deps).await?;
    runtime::serve_http(&deps, |request| oauth.handle(request)).await
}
