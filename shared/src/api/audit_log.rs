//! `GET /v1/audit`: the caller's own audit records; administrators (`manage_users`) read
//! everyone's, optionally one user's. Filters: `user`, `category`, `from`, `to` (RFC 3339 or Unix
//! seconds), `limit`, `cursor`. Records were redacted when written; an administrator reading
//! someone else's records is itself recorded.

use lambda_http::{Body, Request, Response};
use serde_json::json;

use super::{Api, Ctx, time_param};
use crate::audit::log::{self, Cursor, Filter};
use crate::audit::{AuditRecord, Category, Outcome};
use crate::edge::{self, Problem};
use crate::rbac::{self, Permission, Target};
use crate::users::UserId;

pub const DEFAULT_PAGE: i32 = 50;
pub const MAX_PAGE: i32 = 100;

pub(super) async fn list(
    api: &Api,
    ctx: &Ctx<'_>,
    req: &Request,
) -> Result<Response<Body>, Problem> {
    let me = ctx.principal.user_id.as_str();
    let admin = rbac::has(ctx.principal.role, Permission::ManageUsers);
    let user = edge::query(req, "user")
        .map(|raw| {
            UserId::parse(&raw).map_err(|_| {
                Problem::bad_request("invalid_parameter", "user is a ThreadStorm user id")
                    .with_field("user")
            })
        })
        .transpose()?;
    let user = match (user, admin) {
        (Some(user), true) => Some(user.to_string()),
        (None, true) => None,
        (None, false) => Some(me.to_owned()),
        (Some(user), false) => {
            // Someone else's records: refused (and audited) like any other user's resource.
            api.authorize(ctx, Target::OwnedBy(user.as_str())).await?;
            Some(user.to_string())
        }
    };
    let category = edge::query(req, "category")
        .map(|raw| {
            Category::parse(&raw).ok_or_else(|| {
                Problem::bad_request(
                    "invalid_parameter",
                    "category is one of authentication, authorization, data_access, system, \
                     security",
                )
                .with_field("category")
            })
        })
        .transpose()?;
    let from = time_param(req, "from")?;
    let to = time_param(req, "to")?;
    if let (Some(from), Some(to)) = (from, to)
        && from > to
    {
        return Err(Problem::bad_request(
            "invalid_parameter",
            "from is after to: give the period's start as from and its end as to",
        )
        .with_field("from"));
    }
    let limit = match edge::query(req, "limit") {
        None => DEFAULT_PAGE,
        Some(raw) => raw
            .parse::<i32>()
            .ok()
            .filter(|n| (1..=MAX_PAGE).contains(n))
            .ok_or_else(|| {
                Problem::bad_request(
                    "invalid_parameter",
                    format!("limit is a number from 1 to {MAX_PAGE}"),
                )
                .with_field("limit")
            })?,
    };
    let after = edge::query(req, "cursor")
        .map(|raw| {
            Cursor::decode(&raw, user.as_deref()).ok_or_else(|| {
                Problem::bad_request(
                    "invalid_parameter",
                    "cursor is the next_cursor of an earlier page with the same user",
                )
                .with_field("cursor")
            })
        })
        .transpose()?;
    let filter = Filter {
        user: user.clone(),
        category,
        from_ms: from.map(|s| s.saturating_mul(1000)),
        to_ms: to.map(|s| s.saturating_mul(1000).saturating_add(999)),
        limit,
        after,
    };
    let page = log::read(&api.dynamodb, &api.audit_table, &filter)
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "audit log unavailable");
            Problem::unavailable()
        })?;
    if user.as_deref() != Some(me) {
        api.audit
            .record_best_effort(
                AuditRecord::new(Category::DataAccess, "audit.read", Outcome::Success)
                    .user(me)
                    .description("read other users' audit records")
                    .metadata(json!({
                        "user": user,
                        "category": category.map(Category::as_str),
                        "records": page.entries.len(),
                    }))
                    .caller(ctx.caller),
            )
            .await;
    }
    Ok(edge::json_response(
        200,
        &json!({
            "items": page.entries,
            "next_cursor": page.next.map(|c| c.encode()),
        }),
    ))
}
