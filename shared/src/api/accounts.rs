//! `GET /v1/accounts`: the caller's connected Threads accounts (never their tokens).

use lambda_http::{Body, Response};
use serde_json::json;

use super::{Api, Ctx};
use crate::edge::{self, Problem};

pub(super) async fn list(api: &Api, ctx: &Ctx<'_>) -> Result<Response<Body>, Problem> {
    let accounts = api
        .accounts
        .list_by_owner(ctx.principal.user_id.as_str())
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "accounts unavailable");
            Problem::unavailable()
        })?;
    let items: Vec<_> = accounts
        .iter()
        .map(|a| {
            json!({
                "account_id": a.account_id,
                "username": a.username,
                "status": a.status.as_str(),
                "token_expires_at": a.token_expires_at,
            })
        })
        .collect();
    Ok(edge::json_response(200, &json!({ "items": items })))
}
