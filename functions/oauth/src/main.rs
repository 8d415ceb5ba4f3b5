//! Connects Threads accounts: OAuth start, callback and logout.

use lambda_http::{Error, run, service_fn};
use threadstorm::oauth::routes::OAuth;
use threadstorm::{resources, runtime};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let deps = runtime::start(&resources::OAUTH).await?;
    let oauth = OAuth::from_deps(&deps).await?;
    run(service_fn(|request| async {
        Ok::<_, Error>(oauth.handle(request).await)
    }))
    .await
}
