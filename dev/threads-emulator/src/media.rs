//! The read side and deletion: profiles (`/me`), a container's status or a media object's
//! fields behind one `/{id}`, the paginated `/{user}/threads` list, replies, insights, and
//! `DELETE /{media-id}` under the delete quota.

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::calls::Call;
use crate::clock::graph_timestamp;
use crate::error::GraphError;
use crate::json::{JsonText, Obj, array};
use crate::quotas::QuotaKind;
use crate::request::GraphRequest;
use crate::state::{App, Ctx, Inner, Media, MediaInsights, Session};
use crate::tokens::authenticate;

const DEFAULT_PAGE: usize = 25;
const MAX_PAGE: usize = 100;

/// `me`, or the caller's own id; anyone else's id is an object the caller cannot see.
pub fn resolve_user(session: &Session, path: &str, method: &str) -> Result<String, GraphError> {
    if path == "me" || path == session.user_id {
        Ok(session.user_id.clone())
    } else {
        Err(GraphError::unknown_object(method, path))
    }
}

fn username(ctx: &Ctx<'_>, user_id: &str) -> String {
    ctx.config
        .user(user_id)
        .map_or_else(|| format!("user_{user_id}"), |u| u.username.clone())
}

/// `GET /v1.0/{id}`: a profile, a container's status, or a media object.
pub async fn get_object(
    State(app): State<App>,
    Path(id): Path<String>,
    req: GraphRequest,
) -> Response {
    let call = if app.lock().containers.contains_key(&id) {
        Call::Status
    } else {
        Call::Read
    };
    app.graph(call, |inner, ctx| object(inner, ctx, &id, &req))
        .await
}

fn object(
    inner: &mut Inner,
    ctx: &Ctx<'_>,
    id: &str,
    req: &GraphRequest,
) -> Result<Response, GraphError> {
    let session = authenticate(inner, req.token.as_deref(), ctx.now_ms)?;
    session.require(&["threads_basic"])?;
    let fields = req.params.list("fields");
    if let Some(container) = inner.containers.get(id) {
        return crate::containers::status_report(container, &session, ctx, &fields);
    }
    if let Some(media) = inner.live_media(id) {
        let body = media_fields(media, ctx, &fields)?;
        return Ok(JsonText::ok(body).into_response());
    }
    let user = resolve_user(&session, id, "get")?;
    Ok(JsonText::ok(profile(ctx, &user, &fields)?).into_response())
}

fn profile(ctx: &Ctx<'_>, user_id: &str, fields: &[String]) -> Result<String, GraphError> {
    let user = ctx.config.user(user_id);
    let mut obj = Obj::new();
    for field in with_default(fields) {
        match field.as_str() {
            "id" => obj.str("id", user_id),
            "username" => obj.str("username", &username(ctx, user_id)),
            "name" => obj.str("name", user.map_or("", |u| u.name.as_str())),
            "threads_profile_picture_url" => obj.str(
                "threads_profile_picture_url",
                user.map_or("", |u| u.threads_profile_picture_url.as_str()),
            ),
            "threads_biography" => obj.str(
                "threads_biography",
                user.map_or("", |u| u.threads_biography.as_str()),
            ),
            "is_verified" => obj.bool("is_verified", user.is_some_and(|u| u.is_verified)),
            other => return Err(GraphError::nonexisting_field(other)),
        };
    }
    Ok(obj.text())
}

/// Graph's default field list is just `id`.
fn with_default(fields: &[String]) -> Vec<String> {
    if fields.is_empty() {
        vec!["id".to_string()]
    } else {
        fields.to_vec()
    }
}

fn permalink(ctx: &Ctx<'_>, media: &Media) -> String {
    format!(
        "https://www.threads.com/@{}/post/{}",
        username(ctx, &media.owner),
        media.shortcode
    )
}

fn id_object(id: &str) -> String {
    let mut obj = Obj::new();
    obj.str("id", id);
    obj.text()
}

/// A media object with the requested fields; absent values are left out, as Graph does.
fn media_fields(media: &Media, ctx: &Ctx<'_>, fields: &[String]) -> Result<String, GraphError> {
    let mut obj = Obj::new();
    for field in with_default(fields) {
        let f = field.as_str();
        match f {
            "id" => {
                obj.str(f, &media.id);
            }
            "media_product_type" => {
                obj.str(f, "THREADS");
            }
            "media_type" => {
                obj.str(f, media.kind.read_name());
            }
            "media_url" => {
                if let Some(url) = &media.media_url {
                    obj.str(f, url);
                }
            }
            "permalink" => {
                obj.str(f, &permalink(ctx, media));
            }
            "owner" => {
                obj.raw(f, id_object(&media.owner));
            }
            "username" => {
                obj.str(f, &username(ctx, &media.owner));
            }
            "text" => {
                if let Some(text) = &media.text {
                    obj.str(f, text);
                }
            }
            "timestamp" => {
                obj.str(f, &graph_timestamp(media.published_ms.div_euclid(1000)));
            }
            "shortcode" => {
                obj.str(f, &media.shortcode);
            }
            "children" => {
                if !media.children.is_empty() {
                    let mut data = Obj::new();
                    data.raw("data", array(media.children.iter().map(|c| id_object(c))));
                    obj.raw(f, data.text());
                }
            }
            "is_quote_post" => {
                obj.bool(f, media.quote_post_id.is_some());
            }
            "quoted_post" => {
                if let Some(quoted) = &media.quote_post_id {
                    obj.raw(f, id_object(quoted));
                }
            }
            "alt_text" => {
                if let Some(alt) = &media.alt_text {
                    obj.str(f, alt);
                }
            }
            "link_attachment_url" => {
                if let Some(link) = &media.link_attachment {
                    obj.str(f, link);
                }
            }
            "topic_tag" => {
                if let Some(tag) = &media.topic_tag {
                    obj.str(f, tag);
                }
            }
            "is_reply" => {
                obj.bool(f, media.reply_to_id.is_some());
            }
            "replied_to" => {
                if let Some(parent) = &media.reply_to_id {
                    obj.raw(f, id_object(parent));
                }
            }
            "root_post" => {
                obj.raw(f, id_object(&media.root_id));
            }
            "reply_audience" => {
                obj.str(f, media.reply_control.as_deref().unwrap_or("everyone"));
            }
            "hide_status" => {
                obj.str(f, "NOT_HUSHED");
            }
            other => return Err(GraphError::nonexisting_field(other)),
        }
    }
    Ok(obj.text())
}

/// `GET /v1.0/{user}/threads`: the user's posts (replies excluded), newest first.
pub async fn list_threads(
    State(app): State<App>,
    Path(user): Path<String>,
    req: GraphRequest,
) -> Response {
    app.graph(Call::Read, |inner, ctx| {
        let session = authenticate(inner, req.token.as_deref(), ctx.now_ms)?;
        session.require(&["threads_basic"])?;
        let user = resolve_user(&session, &user, "get")?;
        let mut items: Vec<&Media> = inner
            .media
            .values()
            .filter(|m| m.owner == user && !m.deleted && !m.is_carousel_child)
            .filter(|m| m.reply_to_id.is_none())
            .collect();
        newest_first(&mut items);
        page(ctx, &req, &format!("/v1.0/{user}/threads"), items)
    })
    .await
}

/// `GET /v1.0/{id}/replies`: a user's own replies, or a post's top-level replies.
pub async fn list_replies(
    State(app): State<App>,
    Path(id): Path<String>,
    req: GraphRequest,
) -> Response {
    app.graph(Call::Read, |inner, ctx| {
        let session = authenticate(inner, req.token.as_deref(), ctx.now_ms)?;
        session.require(&["threads_basic"])?;
        let mut items: Vec<&Media> = if id == "me" || id == session.user_id {
            inner
                .media
                .values()
                .filter(|m| m.owner == session.user_id && !m.deleted)
                .filter(|m| m.reply_to_id.is_some())
                .collect()
        } else {
            session.require(&["threads_read_replies"])?;
            inner
                .live_media(&id)
                .ok_or_else(|| GraphError::unknown_object("get", &id))?;
            inner
                .media
                .values()
                .filter(|m| !m.deleted && m.reply_to_id.as_deref() == Some(id.as_str()))
                .collect()
        };
        newest_first(&mut items);
        page(ctx, &req, &format!("/v1.0/{id}/replies"), items)
    })
    .await
}

/// `GET /v1.0/{media}/conversation`: every reply below a post, at any depth.
pub async fn conversation(
    State(app): State<App>,
    Path(id): Path<String>,
    req: GraphRequest,
) -> Response {
    app.graph(Call::Read, |inner, ctx| {
        let session = authenticate(inner, req.token.as_deref(), ctx.now_ms)?;
        session.require(&["threads_basic", "threads_read_replies"])?;
        inner
            .live_media(&id)
            .ok_or_else(|| GraphError::unknown_object("get", &id))?;
        let mut below = vec![id.clone()];
        let mut items: Vec<&Media> = Vec::new();
        while let Some(parent) = below.pop() {
            for m in inner.media.values() {
                if !m.deleted && m.reply_to_id.as_deref() == Some(parent.as_str()) {
                    below.push(m.id.clone());
                    items.push(m);
                }
            }
        }
        newest_first(&mut items);
        page(ctx, &req, &format!("/v1.0/{id}/conversation"), items)
    })
    .await
}

fn newest_first(items: &mut [&Media]) {
    items.sort_by(|a, b| {
        b.published_ms
            .cmp(&a.published_ms)
            .then_with(|| b.id.len().cmp(&a.id.len()))
            .then_with(|| b.id.cmp(&a.id))
    });
}

fn cursor(media_id: &str) -> String {
    URL_SAFE_NO_PAD.encode(media_id.as_bytes())
}

fn uncursor(cursor: &str) -> Option<String> {
    let bytes = URL_SAFE_NO_PAD.decode(cursor.trim_end_matches('=')).ok()?;
    String::from_utf8(bytes).ok()
}

/// One page of `items` with Graph's `paging` (cursors, `next`, `previous`), honouring
/// `limit`, `after`, `before`, `since` and `until`.
fn page(
    ctx: &Ctx<'_>,
    req: &GraphRequest,
    path: &str,
    items: Vec<&Media>,
) -> Result<Response, GraphError> {
    let p = &req.params;
    let limit = match p.non_empty("limit") {
        Some(raw) => raw
            .parse::<usize>()
            .map_err(|_| GraphError::invalid_param("Param limit must be a positive integer"))?
            .clamp(1, MAX_PAGE),
        None => DEFAULT_PAGE,
    };
    let (since, until) = (p.unix_time("since")?, p.unix_time("until")?);
    let items: Vec<&Media> = items
        .into_iter()
        .filter(|m| since.is_none_or(|s| m.published_ms.div_euclid(1000) >= s))
        .filter(|m| until.is_none_or(|u| m.published_ms.div_euclid(1000) <= u))
        .collect();
    let position = |c: &str| -> Result<usize, GraphError> {
        let id = uncursor(c).ok_or_else(|| GraphError::invalid_param("Invalid cursor"))?;
        items
            .iter()
            .position(|m| m.id == id)
            .ok_or_else(|| GraphError::invalid_param("Invalid cursor"))
    };
    let (start, end) = if let Some(after) = p.non_empty("after") {
        let start = position(after)? + 1;
        (start, (start + limit).min(items.len()))
    } else if let Some(before) = p.non_empty("before") {
        let end = position(before)?;
        (end.saturating_sub(limit), end)
    } else {
        (0, limit.min(items.len()))
    };
    let window = items.get(start..end).unwrap_or_default();
    let data: Vec<String> = window
        .iter()
        .map(|m| media_fields(m, ctx, &p.list("fields")))
        .collect::<Result<_, _>>()?;
    let mut body = Obj::new();
    body.raw("data", array(data));
    if let (Some(first), Some(last)) = (window.first(), window.last()) {
        let mut cursors = Obj::new();
        cursors
            .str("before", &cursor(&first.id))
            .str("after", &cursor(&last.id));
        let mut paging = Obj::new();
        paging.raw("cursors", cursors.text());
        if end < items.len() {
            paging.str(
                "next",
                &page_url(ctx, req, path, limit, "after", &cursor(&last.id)),
            );
        }
        if start > 0 {
            paging.str(
                "previous",
                &page_url(ctx, req, path, limit, "before", &cursor(&first.id)),
            );
        }
        body.raw("paging", paging.text());
    }
    Ok(JsonText::ok(body.text()).into_response())
}

fn page_url(
    ctx: &Ctx<'_>,
    req: &GraphRequest,
    path: &str,
    limit: usize,
    direction: &str,
    cursor: &str,
) -> String {
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    for name in ["fields", "since", "until", "access_token"] {
        if let Some(value) = req.params.non_empty(name) {
            query.append_pair(name, value);
        }
    }
    query.append_pair("limit", &limit.to_string());
    query.append_pair(direction, cursor);
    format!("{}{path}?{}", ctx.base_url, query.finish())
}

const METRICS: [(&str, &str, &str); 7] = [
    (
        "views",
        "Views",
        "The number of times your post was viewed.",
    ),
    ("likes", "Likes", "The number of likes on your post."),
    ("replies", "Replies", "The number of replies on your post."),
    (
        "reposts",
        "Reposts",
        "The number of times your post was reposted.",
    ),
    (
        "quotes",
        "Quotes",
        "The number of times your post was quoted.",
    ),
    (
        "shares",
        "Shares",
        "The number of times your post was shared.",
    ),
    (
        "clicks",
        "Clicks",
        "The number of clicks on links in your post.",
    ),
];

/// A post's counter by metric name (`clicks` for any other).
pub fn metric_value(insights: &MediaInsights, name: &str) -> u64 {
    match name {
        "views" => insights.views,
        "likes" => insights.likes,
        "replies" => insights.replies,
        "reposts" => insights.reposts,
        "quotes" => insights.quotes,
        "shares" => insights.shares,
        _ => insights.clicks,
    }
}

/// `GET /v1.0/{media}/insights?metric=views,likes,…`.
pub async fn insights(
    State(app): State<App>,
    Path(id): Path<String>,
    req: GraphRequest,
) -> Response {
    app.graph(Call::Insights, |inner, ctx| {
        let session = authenticate(inner, req.token.as_deref(), ctx.now_ms)?;
        session.require(&["threads_basic", "threads_manage_insights"])?;
        let media = inner
            .live_media(&id)
            .filter(|m| m.owner == session.user_id)
            .ok_or_else(|| GraphError::unknown_object("get", &id))?;
        let metrics = req.params.list("metric");
        if metrics.is_empty() {
            return Err(GraphError::missing_param("metric"));
        }
        let mut items = Vec::new();
        for name in &metrics {
            let (_, title, description) = METRICS
                .iter()
                .find(|(n, _, _)| n == name)
                .ok_or_else(|| {
                    GraphError::invalid_param(format!(
                        "metric[{}] must be one of the following values: views, likes, replies, reposts, quotes, shares, clicks",
                        items.len()
                    ))
                })?;
            let mut value = Obj::new();
            value.raw("value", metric_value(&media.insights, name).to_string());
            let mut item = Obj::new();
            item.str("name", name)
                .str("period", "lifetime")
                .raw("values", format!("[{}]", value.text()))
                .str("title", title)
                .str("description", description)
                .str("id", &format!("{id}/insights/{name}/lifetime"));
            items.push(item.text());
        }
        let mut body = Obj::new();
        body.raw("data", array(items));
        Ok(JsonText::ok(body.text()).into_response())
    })
    .await
}

/// `DELETE /v1.0/{media-id}` → `{"success":true,"deleted_id":"…"}`, 100 a day.
pub async fn delete(State(app): State<App>, Path(id): Path<String>, req: GraphRequest) -> Response {
    app.graph(Call::Delete, |inner, ctx| {
        let session = authenticate(inner, req.token.as_deref(), ctx.now_ms)?;
        session.require(&["threads_basic", "threads_delete"])?;
        inner
            .live_media(&id)
            .filter(|m| m.owner == session.user_id && !m.is_carousel_child)
            .ok_or_else(|| GraphError::unknown_object("delete", &id))?;
        inner.quotas.check(
            &session.user_id,
            QuotaKind::Delete,
            ctx.now_ms,
            &ctx.config.quotas,
        )?;
        if let Some(media) = inner.media.get_mut(&id) {
            media.deleted = true;
        }
        inner
            .quotas
            .record(&session.user_id, QuotaKind::Delete, ctx.now_ms);
        let mut body = Obj::new();
        body.bool("success", true).str("deleted_id", &id);
        Ok(JsonText::ok(body.text()).into_response())
    })
    .await
}

/// Sets a media object's counters; false when there is no such media.
pub fn set_insights(inner: &mut Inner, media_id: &str, insights: MediaInsights) -> bool {
    match inner.media.get_mut(media_id) {
        Some(media) => {
            media.insights = insights;
            true
        }
        None => false,
    }
}
