//! ThreadStorm's HTTP API: posts, storms, inbox, audit and admin routes.

use lambda_http::Error;
use threadstorm::{resources, runtime};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let deps = runtime::start(&resources::API).await?;
    runtime::serve_http(&deps, |_request| async {
        runtime::not_implemented_response(deps.function.name)
    })
    .await
}
