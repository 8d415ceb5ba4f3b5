//! `GET /v1/analytics`: publishing figures from ThreadStorm's own records — the caller's storms
//! created in a period, counted by status per Threads account — and, unless `insights=false`,
//! each account's own figures from Threads over the same period (`threads_insights`: views,
//! likes, followers…). Threads failing for an account leaves that account's `insights` `null`
//! with an `insights_error` saying what to do; it never fails the answer. A token Threads refuses
//! flags its account `needs_reauth`, as the poster does.

use std::collections::BTreeMap;

use lambda_http::{Body, Request, Response};
use serde_json::{Value, json};

use super::posts::account_param;
use super::{Api, Ctx, time_param};
use crate::accounts::Account;
use crate::edge::{self, Problem};
use crate::insights::{Fetched, Missing};
use crate::posts::{AccountId, ListAfter, StatusName};
use crate::rbac::Target;
use crate::threads::InsightPeriod;

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
    if from < 0 || from > to || to - from > MAX_PERIOD {
        return Err(Problem::bad_request(
            "invalid_parameter",
            "the period starts no earlier than 1970, from is not after to, and it is at most 366 days",
        )
        .with_field("from"));
    }
    let with_insights = match edge::query(req, "insights").as_deref() {
        None | Some("true") => true,
        Some("false") => false,
        Some(_) => {
            return Err(
                Problem::bad_request("invalid_parameter", "insights is true or false")
                    .with_field("insights"),
            );
        }
    };
    let account = account_param(req)?;
    let accounts_unavailable = |e: crate::accounts::AccountError| {
        tracing::error!(error = %e, "accounts unavailable");
        Problem::unavailable()
    };
    // The accounts the answer covers: the one named, or every account the caller holds.
    let held: Vec<Account> = match &account {
        Some(account) => {
            // Another user's account is refused like any other user's resource (404, audited).
            let Some(stored) = api
                .accounts
                .get(account)
                .await
                .map_err(accounts_unavailable)?
            else {
                return Err(Problem::not_found());
            };
            api.authorize(ctx, Target::OwnedBy(&stored.owner_user_id))
                .await?;
            vec![stored]
        }
        None => api
            .accounts
            .list_by_owner(ctx.principal.user_id.as_str())
            .await
            .map_err(accounts_unavailable)?,
    };

    // Threads is asked, over the part of the period it has figures for, while ThreadStorm's
    // records are counted.
    let period = InsightPeriod::within(from, to, api.now());
    let (counted, insights) =
        tokio::join!(count_storms(api, ctx, from, to, account.as_ref()), async {
            if with_insights {
                Some(api.insights.fetch(&held, period).await)
            } else {
                None
            }
        });
    let counted = counted?;
    if let Some(fetched) = &insights {
        flag_refused_tokens(api, fetched).await;
    }

    let mut ids: Vec<String> = held.iter().map(|a| a.account_id.to_string()).collect();
    ids.extend(counted.per_account.keys().cloned());
    ids.sort();
    ids.dedup();
    let mut totals: BTreeMap<&'static str, u64> = BTreeMap::new();
    let accounts: Vec<Value> = ids
        .iter()
        .map(|account_id| {
            let counts = counted
                .per_account
                .get(account_id)
                .cloned()
                .unwrap_or_default();
            for (status, n) in &counts {
                *totals.entry(status).or_default() += n;
            }
            let mut entry = json!({
                "account_id": account_id,
                "storms": counts.values().sum::<u64>(),
                "by_status": counts,
                "posts_published": counted.published_posts.get(account_id).copied().unwrap_or(0),
            });
            if let (Some(fetched), Some(fields)) = (&insights, entry.as_object_mut()) {
                let (figures, error) = insights_of(fetched, account_id);
                fields.insert("insights".into(), figures);
                fields.insert("insights_error".into(), error);
            }
            entry
        })
        .collect();
    let mut body = json!({
        "from": from,
        "to": to,
        "accounts": accounts,
        "totals": {"storms": totals.values().sum::<u64>(), "by_status": totals},
        "complete": counted.complete,
    });
    if let (Some(fetched), Some(fields)) = (&insights, body.as_object_mut()) {
        fields.insert(
            "insights_period".into(),
            json!(period.map(|p| json!({"since": p.since, "until": p.until}))),
        );
        fields.insert("insights_complete".into(), json!(fetched.complete));
    }
    Ok(edge::json_response(200, &body))
}

/// Flags each account whose token Threads refused `needs_reauth`, as the poster does, so the
/// owner sees it and no one asks Threads with that token again. A failure only costs the flag.
async fn flag_refused_tokens(api: &Api, fetched: &Fetched) {
    for (account_id, outcome) in &fetched.accounts {
        if *outcome != Err(Missing::TokenRefused) {
            continue;
        }
        if let Err(e) = api.accounts.mark_needs_reauth(account_id).await {
            tracing::warn!(account_id = account_id.as_str(), error = %e, "account not flagged needs_reauth");
        }
    }
}

/// An account's `insights` and `insights_error`. An account the answer holds only through its
/// storms (no longer the caller's) has no token to ask with.
fn insights_of(fetched: &Fetched, account_id: &str) -> (Value, Value) {
    let outcome = AccountId::parse(account_id)
        .ok()
        .and_then(|id| fetched.accounts.get(&id));
    match outcome {
        Some(Ok(figures)) => (json!(figures), Value::Null),
        Some(Err(missing)) => (Value::Null, reason(*missing)),
        None => (Value::Null, reason(Missing::Disconnected)),
    }
}

fn reason(missing: Missing) -> Value {
    json!({"code": missing.code(), "text": missing.text()})
}

/// The caller's storms created in the period, by account and status.
struct Counted {
    per_account: BTreeMap<String, BTreeMap<&'static str, u64>>,
    published_posts: BTreeMap<String, u64>,
    complete: bool,
}

async fn count_storms(
    api: &Api,
    ctx: &Ctx<'_>,
    from: i64,
    to: i64,
    account: Option<&AccountId>,
) -> Result<Counted, Problem> {
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
            if account.is_some_and(|a| a != &storm.account_id) {
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
    Ok(Counted {
        per_account,
        published_posts,
        complete,
    })
}
