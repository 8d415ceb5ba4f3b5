//! `GET /v1/inbox`: the replies and mentions Meta's webhooks delivered for the caller's own
//! connected accounts, newest first, a page at a time.
//!
//! Only the caller's accounts are ever read: the `account` filter must name one of them (404
//! otherwise, as for any resource that is not theirs), and the cursor only bounds keys inside
//! those accounts' partitions.

use lambda_http::{Body, Request, Response};
use serde_json::json;

use super::posts::{account_param, page_limit};
use super::{Api, Ctx};
use crate::edge::{self, Problem};
use crate::inbox::{InboxAfter, InboxItem};

pub(super) async fn list(
    api: &Api,
    ctx: &Ctx<'_>,
    req: &Request,
) -> Result<Response<Body>, Problem> {
    let wanted = account_param(req)?;
    let limit = usize::try_from(page_limit(req)?).unwrap_or(1);
    let after = edge::query(req, "cursor")
        .map(|raw| {
            InboxAfter::decode(&raw).ok_or_else(|| {
                Problem::bad_request(
                    "invalid_parameter",
                    "cursor is the next_cursor of an earlier page",
                )
                .with_field("cursor")
            })
        })
        .transpose()?;
    let mut accounts: Vec<_> = api
        .accounts
        .list_by_owner(ctx.principal.user_id.as_str())
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "accounts unavailable");
            Problem::unavailable()
        })?
        .into_iter()
        .map(|a| a.account_id)
        .collect();
    if let Some(wanted) = wanted {
        if !accounts.contains(&wanted) {
            return Err(Problem::not_found());
        }
        accounts = vec![wanted];
    }
    let (items, next) = api
        .inbox
        .page(&accounts, limit, after.as_ref())
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "inbox unavailable");
            Problem::unavailable()
        })?;
    Ok(edge::json_response(
        200,
        &json!({
            "items": items.iter().map(InboxItem::to_json).collect::<Vec<_>>(),
            "next_cursor": next.map(|n| n.encode()),
        }),
    ))
}
