//! `GET /v1/analytics`: publishing figures from ThreadStorm's own records — the caller's storms
//! created in a period, counted by status per Threads account. (Threads' own insights — views,
//! likes — are not fetched here.)

use std::collections::BTreeMap;

use lambda_http::{Body, Request, Response};
use serde_json::json;

use super::{Api, Ctx, time_param};
use crate::edge::{self, Problem};
use crate::posts::{AccountId, ListAfter, StatusName};
use crate::rbac::Target;

/// The default and longest period, in seconds.
pub const DEFAULT_PERIOD: i64 = 30 * 86_400;
pub const MAX_PERIOD: i64 = 366 * 86_400;
/// Listing pages read at most (100 storms each); beyond that the figures say `complete: false`.
const MAX_PAGES: usize = 50;

pub(super) async fn summary(
    api: &Api,
    ctx: &Ctx<'_>,
    req: &Request,
) -> Result<Response<Body>, Problem> {
    let to = time_param(req, "to")?.unwrap_or_else(|| api.now());
    let from = time_param(req, "from")?.unwrap_or(to - DEFAULT_PERIOD);
    if from > to || to - from > MAX_PERIOD {
        return Err(Problem::bad_request(
            "invalid_parameter",
            "from is before to, and the period is at most 366 days",
        )
        .with_field("from"));
    }
    let account = edge::query(req, "account")
        .map(|raw| {
            AccountId::parse(&raw).map_err(|_| {
                Problem::bad_request("invalid_parameter", "account is a Threads user id")
                    .with_field("account")
            })
        })
        .transpose()?;
    if let Some(account) = &account {
        // Another user's account is refused like any other user's resource (404, audited).
        let stored = api.accounts.get(account).await.map_err(|e| {
            tracing::error!(error = %e, "accounts unavailable");
            Problem::unavailable()
        })?;
        let Some(stored) = stored else {
            return Err(Problem::not_found());
        };
        api.authorize(ctx, Target::OwnedBy(&stored.owner_user_id))
            .await?;
    }

    let mut per_account: BTreeMap<String, BTreeMap<&'static str, u64>> = BTreeMap::new();
    let mut published_posts: BTreeMap<String, u64> = BTreeMap::new();
    let mut after: Option<ListAfter> = None;
    let mut complete = false;
    'pages: for _ in 0..MAX_PAGES {
        let (page, next) = api
            .posts
            .list_by_owner(ctx.principal.user_id.as_str(), 100, after.as_ref())
            .await
            .map_err(|e| {
                tracing::error!(error = %e, "posts unavailable");
                Problem::unavailable()
            })?;
        for storm in &page {
            if storm.created_at > to {
                continue;
            }
            if storm.created_at < from {
                complete = true;
                break 'pages;
            }
            if account.as_ref().is_some_and(|a| a != &storm.account_id) {
                continue;
            }
            let status = storm.status.name();
            *per_account
                .entry(storm.account_id.to_string())
                .or_default()
                .entry(status.as_str())
                .or_default() += 1;
            if status == StatusName::Published {
                *published_posts
                    .entry(storm.account_id.to_string())
                    .or_default() += storm.part_count as u64;
            }
        }
        match next {
            Some(next) => after = Some(next),
            None => {
                complete = true;
                break;
            }
        }
    }
    let mut totals: BTreeMap<&'static str, u64> = BTreeMap::new();
    let accounts: Vec<_> = per_account
        .iter()
        .map(|(account_id, counts)| {
            for (status, n) in counts {
                *totals.entry(status).or_default() += n;
            }
            json!({
                "account_id": account_id,
                "storms": counts.values().sum::<u64>(),
                "by_status": counts,
                "posts_published": published_posts.get(account_id).copied().unwrap_or(0),
            })
        })
        .collect();
    Ok(edge::json_response(
        200,
        &json!({
            "from": from,
            "to": to,
            "accounts": accounts,
            "totals": {"storms": totals.values().sum::<u64>(), "by_status": totals},
            "complete": complete,
        }),
    ))
}
