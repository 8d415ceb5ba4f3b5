//! `/v1/posts` and `/v1/storms`: submit, read, list and cancel.
//!
//! A post is a storm of one part; both are stored and published the same way, and either route
//! reads either by id. Submissions are checked whole (shape, then the content policy) and answered
//! 202 with the stored storm and its `Location`; nothing is stored when they are refused.

use lambda_http::http::{HeaderValue, header};
use lambda_http::{Body, Request, Response};
use serde::Deserialize;
use serde_json::json;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::{Api, Ctx};
use crate::edge::{self, Problem};
use crate::pipeline::intake::{self, NewStorm};
use crate::posts::view::{storm_json, summary_json};
use crate::posts::{
    AccountId, CarouselChild, ListAfter, MediaType, Moved, PartContent, StatusName, StormId,
};
use crate::rbac::Target;
use crate::storm::split::{Numbering, SplitOptions, split};
use crate::threads::MediaId;

/// Listing page size: default and most.
pub const DEFAULT_PAGE: i32 = 20;
pub const MAX_PAGE: i32 = 100;

/// When to publish: RFC 3339 (`2026-12-24T09:00:00Z`) or Unix seconds.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum When {
    Unix(i64),
    Text(String),
}

impl When {
    fn unix(&self) -> Result<i64, Problem> {
        match self {
            When::Unix(at) => Ok(*at),
            When::Text(text) => OffsetDateTime::parse(text, &Rfc3339)
                .map(OffsetDateTime::unix_timestamp)
                .map_err(|_| invalid_publish_at()),
        }
    }
}

fn invalid_publish_at() -> Problem {
    Problem::bad_request(
        "invalid_publish_at",
        "publish_at is an RFC 3339 time such as 2026-12-24T09:00:00Z, or Unix seconds",
    )
    .with_field("publish_at")
}

/// One post's content as the API takes it. `media_type` may be left out: it is CAROUSEL with
/// `children`, IMAGE with `image_url`, VIDEO with `video_url`, TEXT otherwise.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct ContentInput {
    #[serde(default)]
    media_type: Option<MediaType>,
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    image_url: Option<String>,
    #[serde(default)]
    video_url: Option<String>,
    #[serde(default)]
    children: Vec<CarouselChild>,
    #[serde(default)]
    reply_control: Option<String>,
    #[serde(default)]
    topic_tag: Option<String>,
    #[serde(default)]
    quote_post_id: Option<MediaId>,
    #[serde(default)]
    link_attachment: Option<String>,
    #[serde(default)]
    alt_text: Option<String>,
}

impl ContentInput {
    fn into_part(self) -> PartContent {
        let media_type = self.media_type.unwrap_or(if !self.children.is_empty() {
            MediaType::Carousel
        } else if self.image_url.is_some() {
            MediaType::Image
        } else if self.video_url.is_some() {
            MediaType::Video
        } else {
            MediaType::Text
        });
        PartContent {
            media_type,
            text: self.text,
            image_url: self.image_url,
            video_url: self.video_url,
            children: self.children,
            reply_control: self.reply_control,
            topic_tag: self.topic_tag,
            quote_post_id: self.quote_post_id,
            link_attachment: self.link_attachment,
            alt_text: self.alt_text,
        }
    }
}

/// `POST /v1/storms`: `parts`, or `text` with `auto_split: true`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct StormInput {
    account_id: AccountId,
    #[serde(default)]
    publish_at: Option<When>,
    #[serde(default)]
    parts: Option<Vec<ContentInput>>,
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    auto_split: bool,
    /// Add ` k/n` to every part (counted within the 500 bytes).
    #[serde(default)]
    numbering: bool,
}

fn parse_body<T: serde::de::DeserializeOwned>(req: &Request) -> Result<T, Problem> {
    super::parse_required_body(req)
}

pub(super) async fn create_post(
    api: &Api,
    ctx: &Ctx<'_>,
    req: &Request,
) -> Result<Response<Body>, Problem> {
    let new = post_from_fields(parse_body(req)?)?;
    submit(api, ctx, new, "posts").await.map_err(as_post_field)
}

/// A problem intake found in a post's one part, named by the post's own field (`text`, not
/// `parts[0].text`, which a post does not have).
fn as_post_field(mut problem: Problem) -> Problem {
    problem.field = problem
        .field
        .and_then(|field| match field.strip_prefix("parts[0].") {
            Some(own) => Some(own.to_owned()),
            None if field == "parts" => None,
            None => Some(field),
        });
    problem
}

/// A post's own fields, then its content, checked as strictly as a storm part is.
fn post_from_fields(
    mut fields: serde_json::Map<String, serde_json::Value>,
) -> Result<NewStorm, Problem> {
    let account_id: AccountId = match fields.remove("account_id") {
        Some(value) => serde_json::from_value(value).map_err(|_| {
            Problem::bad_request("invalid_account_id", "account_id is a Threads user id")
                .with_field("account_id")
        })?,
        None => {
            return Err(Problem::bad_request(
                "missing_field",
                "account_id names the connected Threads account to publish to",
            )
            .with_field("account_id"));
        }
    };
    let publish_at = fields
        .remove("publish_at")
        .filter(|v| !v.is_null())
        .map(|value| {
            serde_json::from_value::<When>(value)
                .map_err(|_| invalid_publish_at())
                .and_then(|when| when.unix())
        })
        .transpose()?;
    let content: ContentInput = super::from_json(serde_json::Value::Object(fields))?;
    Ok(NewStorm {
        account_id,
        parts: vec![content.into_part()],
        publish_at,
    })
}

/// The most posts one `POST /v1/posts:batch` takes.
pub const MAX_BATCH: usize = 100;

/// `POST /v1/posts:batch`: `{"posts": [post, …]}`, each checked and submitted on its own exactly
/// as `POST /v1/posts` would; the answer has one result per post, in order.
pub(super) async fn create_batch(
    api: &Api,
    ctx: &Ctx<'_>,
    req: &Request,
) -> Result<Response<Body>, Problem> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Batch {
        posts: Vec<serde_json::Value>,
    }
    let batch: Batch = parse_body(req)?;
    if batch.posts.is_empty() || batch.posts.len() > MAX_BATCH {
        return Err(Problem::bad_request(
            "invalid_batch",
            format!(
                "posts is a list of 1 to {MAX_BATCH} posts; this one has {}",
                batch.posts.len()
            ),
        )
        .with_field("posts"));
    }
    let mut results = Vec::with_capacity(batch.posts.len());
    let (mut accepted, mut refused) = (0usize, 0usize);
    for (index, value) in batch.posts.into_iter().enumerate() {
        let outcome = match value {
            serde_json::Value::Object(fields) => match post_from_fields(fields) {
                Ok(new) => {
                    intake::submit(&api.intake, ctx.principal.user_id.as_str(), new, api.now())
                        .await
                        .map_err(|e| as_post_field(Problem::from(e)))
                }
                Err(problem) => Err(problem),
            },
            _ => Err(Problem::bad_request(
                "malformed_body",
                "each post is a JSON object",
            )),
        };
        results.push(match outcome {
            Ok(storm) => {
                accepted += 1;
                json!({"index": index, "status": 202, "post": storm_json(&storm)})
            }
            Err(problem) => {
                refused += 1;
                let field = problem
                    .field
                    .as_ref()
                    .map(|f| format!("posts[{index}].{f}"))
                    .unwrap_or_else(|| format!("posts[{index}]"));
                json!({
                    "index": index,
                    "status": problem.status,
                    "error": {"code": problem.code, "detail": problem.detail, "field": field},
                })
            }
        });
    }
    Ok(edge::json_response(
        200,
        &json!({"accepted": accepted, "refused": refused, "results": results}),
    ))
}

pub(super) async fn create_storm(
    api: &Api,
    ctx: &Ctx<'_>,
    req: &Request,
) -> Result<Response<Body>, Problem> {
    let input: StormInput = parse_body(req)?;
    let from_text = input.text.is_some();
    let parts = match (input.parts, input.text, input.auto_split) {
        (Some(parts), None, false) => {
            if input.numbering {
                return Err(Problem::bad_request(
                    "numbering_needs_auto_split",
                    "numbering applies to auto_split text; number explicit parts yourself",
                )
                .with_field("numbering"));
            }
            parts.into_iter().map(ContentInput::into_part).collect()
        }
        (None, Some(text), true) => {
            let options = if input.numbering {
                SplitOptions {
                    numbering: Numbering::Suffix,
                    ..SplitOptions::default()
                }
            } else {
                SplitOptions::default()
            };
            split(&text, options)
                .map_err(|rejection| {
                    Problem::new(422, "cannot_split", rejection.reason()).with_field("text")
                })?
                .into_iter()
                .map(PartContent::text)
                .collect()
        }
        (None, Some(_), false) => {
            return Err(Problem::bad_request(
                "auto_split_required",
                "send parts, or text with auto_split: true",
            )
            .with_field("auto_split"));
        }
        _ => {
            return Err(Problem::bad_request(
                "parts_or_text",
                "send either parts (a list) or text with auto_split: true, not both",
            )
            .with_field("parts"));
        }
    };
    let new = NewStorm {
        account_id: input.account_id,
        parts,
        publish_at: input.publish_at.as_ref().map(When::unix).transpose()?,
    };
    submit(api, ctx, new, "storms")
        .await
        .map_err(|mut problem| {
            // Parts split from `text` are the request's `text` (too many of them, say).
            if from_text
                && problem
                    .field
                    .as_deref()
                    .is_some_and(|f| f.starts_with("parts"))
            {
                problem.field = Some("text".to_owned());
            }
            problem
        })
}

async fn submit(
    api: &Api,
    ctx: &Ctx<'_>,
    new: NewStorm,
    collection: &str,
) -> Result<Response<Body>, Problem> {
    let storm = intake::submit(&api.intake, ctx.principal.user_id.as_str(), new, api.now()).await?;
    let mut res = edge::json_response(202, &storm_json(&storm));
    if let Ok(location) = HeaderValue::from_str(&format!("/v1/{collection}/{}", storm.id)) {
        res.headers_mut().insert(header::LOCATION, location);
    }
    Ok(res)
}

/// The storm named by the path, authorised for the route's action.
async fn load(api: &Api, ctx: &Ctx<'_>) -> Result<crate::posts::Storm, Problem> {
    let id = ctx
        .params
        .get("id")
        .and_then(|raw| StormId::parse(raw).ok())
        .ok_or_else(Problem::not_found)?;
    let storm = api
        .posts
        .load(&id)
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "posts unavailable");
            Problem::unavailable()
        })?
        .ok_or_else(Problem::not_found)?;
    api.authorize(ctx, Target::OwnedBy(&storm.owner_user_id))
        .await?;
    Ok(storm)
}

pub(super) async fn get(api: &Api, ctx: &Ctx<'_>) -> Result<Response<Body>, Problem> {
    let storm = load(api, ctx).await?;
    Ok(edge::json_response(200, &storm_json(&storm)))
}

/// Cancels a storm that has not started publishing; 409 once it has.
pub(super) async fn cancel(api: &Api, ctx: &Ctx<'_>) -> Result<Response<Body>, Problem> {
    let storm = load(api, ctx).await?;
    let moved = api
        .posts
        .cancel(&storm.id, &storm.owner_user_id, api.now())
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "posts unavailable");
            Problem::unavailable()
        })?;
    match moved {
        Moved::Moved => {
            let storm = api
                .posts
                .load(&storm.id)
                .await
                .ok()
                .flatten()
                .unwrap_or(storm);
            Ok(edge::json_response(200, &storm_json(&storm)))
        }
        Moved::Stale { current } => {
            let status = current.map_or("gone", |s| s.name().as_str());
            Err(Problem::new(
                409,
                "not_cancellable",
                format!(
                    "this storm is {status}; only scheduled, queued or deferred ones can be cancelled"
                ),
            ))
        }
    }
}

/// A listing's `account` query parameter: a Threads user id, when given.
pub(super) fn account_param(req: &Request) -> Result<Option<AccountId>, Problem> {
    edge::query(req, "account")
        .map(|raw| {
            AccountId::parse(&raw).map_err(|_| {
                Problem::bad_request("invalid_parameter", "account is a Threads user id")
                    .with_field("account")
            })
        })
        .transpose()
}

/// A listing's `limit` query parameter: 1 to [`MAX_PAGE`], [`DEFAULT_PAGE`] when absent.
pub(super) fn page_limit(req: &Request) -> Result<i32, Problem> {
    match edge::query(req, "limit") {
        None => Ok(DEFAULT_PAGE),
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
            }),
    }
}

/// `GET /v1/posts?status=&account=&limit=&cursor=`: the caller's storms, newest first.
pub(super) async fn list(
    api: &Api,
    ctx: &Ctx<'_>,
    req: &Request,
) -> Result<Response<Body>, Problem> {
    let status = edge::query(req, "status")
        .map(|raw| {
            StatusName::parse(&raw).ok_or_else(|| {
                Problem::bad_request(
                    "invalid_parameter",
                    "status is one of scheduled, queued, deferred, publishing, published, \
                     rejected, failed, cancelled",
                )
                .with_field("status")
            })
        })
        .transpose()?;
    let account = account_param(req)?;
    if let Some(account) = &account {
        // Only one of the caller's own accounts narrows the listing; any other is a 404, as in
        // the inbox and analytics, so an id reveals nothing.
        let held = api.accounts.get(account).await.map_err(|e| {
            tracing::error!(error = %e, "accounts unavailable");
            Problem::unavailable()
        })?;
        if held.is_none_or(|a| a.owner_user_id != ctx.principal.user_id.as_str()) {
            return Err(Problem::not_found());
        }
    }
    let limit = page_limit(req)?;
    let after = edge::query(req, "cursor")
        .map(|raw| {
            ListAfter::decode(&raw).ok_or_else(|| {
                Problem::bad_request(
                    "invalid_parameter",
                    "cursor is the next_cursor of an earlier page",
                )
                .with_field("cursor")
            })
        })
        .transpose()?;
    let (page, next) = api
        .posts
        .list_by_owner(ctx.principal.user_id.as_str(), limit, after.as_ref())
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "posts unavailable");
            Problem::unavailable()
        })?;
    let items: Vec<_> = page
        .iter()
        .filter(|s| status.is_none_or(|want| s.status.name() == want))
        .filter(|s| account.as_ref().is_none_or(|want| &s.account_id == want))
        .map(summary_json)
        .collect();
    Ok(edge::json_response(
        200,
        &json!({
            "items": items,
            "next_cursor": next.map(|n| n.encode()),
        }),
    ))
}
