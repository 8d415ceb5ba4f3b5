//! Media containers: creation with Meta's validation (500 UTF-8 bytes, five unique links, topic
//! tag, carousel, link attachment, alt text, reply target) and the status a container reports
//! as it moves IN_PROGRESS → FINISHED → PUBLISHED, or ERROR, or EXPIRED after 24 hours.

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};

use crate::calls::Call;
use crate::error::GraphError;
use crate::faults::Fault;
use crate::json::{JsonText, Obj};
use crate::request::{GraphRequest, Params};
use crate::state::{App, Container, ContainerStatus, Ctx, Inner, MediaKind, Session, millis};

/// Meta's limit on `text`, counted in UTF-8 bytes in practice.
pub const TEXT_LIMIT_BYTES: usize = 500;
pub const LINK_LIMIT: usize = 5;
pub const ALT_TEXT_LIMIT: usize = 1_000;
pub const TEXT_ATTACHMENT_LIMIT: usize = 10_000;
pub const TOPIC_TAG_LIMIT: usize = 50;
pub const REPLY_CONTROLS: [&str; 5] = [
    "everyone",
    "accounts_you_follow",
    "mentioned_only",
    "parent_post_author_only",
    "followers_only",
];

/// `POST /v1.0/{user}/threads` (also `/me/threads`), parameters in the query or the form.
pub async fn create(
    State(app): State<App>,
    Path(user): Path<String>,
    req: GraphRequest,
) -> Response {
    app.graph(Call::Create, |inner, ctx| {
        create_container(inner, ctx, &user, &req)
    })
    .await
}

fn create_container(
    inner: &mut Inner,
    ctx: &Ctx<'_>,
    user_path: &str,
    req: &GraphRequest,
) -> Result<Response, GraphError> {
    let session = crate::tokens::authenticate(inner, req.token.as_deref(), ctx.now_ms)?;
    let user = crate::media::resolve_user(&session, user_path, "post")?;
    let p = &req.params;
    session.require(&["threads_basic", "threads_content_publish"])?;
    if p.non_empty("reply_to_id").is_some() {
        session.require(&["threads_manage_replies"])?;
    }
    let mut container = validate(inner, p, &user)?;
    let id = inner.next_container_id();
    container.id = id.clone();
    container.created_ms = ctx.now_ms;
    container.ready_ms = ctx.now_ms + millis(ctx.config.readiness_delay);
    if let Some(Fault::ContainerError(message)) = ctx.fault {
        container.error = Some(message.clone());
    }
    if container.kind == Some(MediaKind::Carousel) {
        // A carousel is ready when its last child is, and fails with any child.
        for child in container.children.clone() {
            if let Some(child) = inner.containers.get(&child) {
                container.ready_ms = container.ready_ms.max(child.ready_ms);
                if container.error.is_none() {
                    container.error.clone_from(&child.error);
                }
            }
        }
    }
    let auto_publish = p.flag("auto_publish_text");
    inner.containers.insert(id.clone(), container);
    let answer_id = if auto_publish {
        crate::publishing::publish_now(inner, ctx, &session, &id)?
    } else {
        id
    };
    let mut body = Obj::new();
    body.str("id", &answer_id);
    Ok(JsonText::ok(body.text()).into_response())
}

/// Every rule Meta applies at creation, in the order a request meets them.
fn validate(inner: &Inner, p: &Params, user: &str) -> Result<Container, GraphError> {
    let kind = p
        .non_empty("media_type")
        .ok_or_else(|| GraphError::missing_param("media_type"))?;
    let kind = MediaKind::parse(kind).ok_or_else(|| {
        GraphError::invalid_param("Param media_type must be one of {TEXT, IMAGE, VIDEO, CAROUSEL}")
    })?;
    let text = p.non_empty("text").map(str::to_string);
    if text.as_ref().is_some_and(|t| t.len() > TEXT_LIMIT_BYTES) {
        return Err(GraphError::text_too_long());
    }
    if kind == MediaKind::Text && text.is_none() && p.non_empty("text_attachment").is_none() {
        return Err(GraphError::missing_param("text"));
    }
    let media_url = match kind {
        MediaKind::Image => Some(public_url(p, "image_url")?),
        MediaKind::Video => Some(public_url(p, "video_url")?),
        MediaKind::Text | MediaKind::Carousel => None,
    };
    let is_carousel_item = p.flag("is_carousel_item");
    if is_carousel_item && !matches!(kind, MediaKind::Image | MediaKind::Video) {
        return Err(GraphError::invalid_param(
            "Param is_carousel_item is only supported for IMAGE and VIDEO containers",
        ));
    }
    let children = if kind == MediaKind::Carousel {
        carousel_children(inner, p, user)?
    } else {
        Vec::new()
    };
    let link_attachment = match p.non_empty("link_attachment") {
        Some(_) if kind != MediaKind::Text => {
            return Err(GraphError::invalid_param(
                "Param link_attachment is only supported for TEXT posts",
            ));
        }
        Some(_) => Some(public_url(p, "link_attachment")?),
        None => None,
    };
    let links = unique_links(
        text.as_deref().unwrap_or_default(),
        link_attachment.as_deref(),
    );
    if links > LINK_LIMIT {
        return Err(GraphError::link_limit_exceeded(links));
    }
    let topic_tag = p.get("topic_tag").map(str::to_string);
    if let Some(tag) = &topic_tag {
        let chars = tag.chars().count();
        if chars == 0 || chars > TOPIC_TAG_LIMIT || tag.contains(['.', '&']) {
            return Err(GraphError::threads_param(
                "Param topic_tag must be 1 to 50 characters long and cannot contain periods (.) or ampersands (&)",
            ));
        }
    }
    let reply_control = p.non_empty("reply_control").map(str::to_string);
    if reply_control
        .as_deref()
        .is_some_and(|c| !REPLY_CONTROLS.contains(&c))
    {
        return Err(GraphError::invalid_param(format!(
            "Param reply_control must be one of {{{}}}",
            REPLY_CONTROLS.join(", ")
        )));
    }
    let alt_text = p.non_empty("alt_text").map(str::to_string);
    if alt_text
        .as_ref()
        .is_some_and(|a| a.chars().count() > ALT_TEXT_LIMIT)
    {
        return Err(GraphError::invalid_param(
            "Param alt_text must be at most 1000 characters long.",
        ));
    }
    if p.non_empty("text_attachment")
        .is_some_and(|t| t.chars().count() > TEXT_ATTACHMENT_LIMIT)
    {
        return Err(GraphError::invalid_param(
            "Param text_attachment must be at most 10000 characters long.",
        ));
    }
    let reply_to_id = p.non_empty("reply_to_id").map(str::to_string);
    if let Some(parent) = &reply_to_id {
        existing_media(inner, "reply_to_id", parent)?;
    }
    let quote_post_id = p.non_empty("quote_post_id").map(str::to_string);
    if let Some(quoted) = &quote_post_id {
        existing_media(inner, "quote_post_id", quoted)?;
    }
    if p.flag("auto_publish_text") && kind != MediaKind::Text {
        return Err(GraphError::invalid_param(
            "Param auto_publish_text is only supported for TEXT posts",
        ));
    }
    Ok(Container {
        owner: user.to_string(),
        kind: Some(kind),
        text,
        media_url,
        alt_text,
        is_carousel_item,
        children,
        reply_to_id,
        reply_control,
        quote_post_id,
        link_attachment,
        topic_tag,
        ..Container::default()
    })
}

/// A required http(s) URL parameter.
fn public_url(p: &Params, name: &str) -> Result<String, GraphError> {
    let raw = p.require(name)?;
    match url::Url::parse(raw) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some() => {
            Ok(raw.to_string())
        }
        _ => Err(GraphError::invalid_param(format!(
            "Param {name} must be a valid URL"
        ))),
    }
}

/// A reply or quote target must be a live media id; a container id is the classic mistake.
fn existing_media(inner: &Inner, name: &str, id: &str) -> Result<(), GraphError> {
    if inner.live_media(id).is_some() {
        Ok(())
    } else if inner.containers.contains_key(id) {
        Err(GraphError::invalid_param(format!(
            "Param {name} must be the id of a published Threads media, not of a media container"
        )))
    } else {
        Err(GraphError::invalid_param(format!(
            "Param {name} must be a valid Threads media id"
        )))
    }
}

/// 2–20 existing, unused carousel-item containers of the same user.
fn carousel_children(inner: &Inner, p: &Params, user: &str) -> Result<Vec<String>, GraphError> {
    let children = p.list("children");
    if !(2..=20).contains(&children.len()) {
        return Err(GraphError::invalid_param(
            "Param children must contain between 2 and 20 container ids",
        ));
    }
    for id in &children {
        let usable = inner
            .containers
            .get(id)
            .is_some_and(|c| c.owner == user && c.is_carousel_item && c.media_id.is_none());
        if !usable {
            return Err(GraphError::invalid_param(format!(
                "Param children contains an invalid carousel item container id: {id}"
            )));
        }
    }
    Ok(children)
}

/// Unique links in a post: `http(s)://` and `www.` URLs in the text, plus a link attachment
/// that is not one of them. Trailing punctuation and a trailing slash do not make a link new.
pub fn unique_links(text: &str, link_attachment: Option<&str>) -> usize {
    let mut seen: Vec<String> = text.split_whitespace().filter_map(link_key).collect();
    seen.extend(link_attachment.and_then(link_key));
    seen.sort();
    seen.dedup();
    seen.len()
}

fn link_key(word: &str) -> Option<String> {
    let word = word.trim_start_matches(['(', '[', '<', '"', '\'']);
    let word = word.trim_end_matches(['.', ',', ';', ':', '!', '?', ')', ']', '>', '"', '\'']);
    let lower = word.to_ascii_lowercase();
    let rest = lower
        .strip_prefix("https://")
        .or_else(|| lower.strip_prefix("http://"))
        .or_else(|| lower.starts_with("www.").then_some(lower.as_str()))?;
    let rest = rest
        .strip_prefix("www.")
        .unwrap_or(rest)
        .trim_end_matches('/');
    (!rest.is_empty()).then(|| rest.to_string())
}

/// `GET /v1.0/{container-id}?fields=id,status,error_message`.
pub fn status_report(
    container: &Container,
    session: &Session,
    ctx: &Ctx<'_>,
    fields: &[String],
) -> Result<Response, GraphError> {
    if container.owner != session.user_id {
        return Err(GraphError::unknown_object("get", &container.id));
    }
    let status = container.status(ctx.now_ms, ctx.config.container_ttl);
    let mut obj = Obj::new();
    let wanted = if fields.is_empty() {
        vec!["id".to_string()]
    } else {
        fields.to_vec()
    };
    for field in &wanted {
        match field.as_str() {
            "id" => {
                obj.str("id", &container.id);
            }
            "status" => {
                obj.str("status", status.name());
            }
            "error_message" => {
                if let (ContainerStatus::Error, Some(message)) = (status, &container.error) {
                    obj.str("error_message", message);
                }
            }
            other => return Err(GraphError::nonexisting_field(other)),
        }
    }
    Ok(JsonText::ok(obj.text()).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_are_counted_once_whatever_their_punctuation() {
        assert_eq!(unique_links("see https://a.example/x.", None), 1);
        assert_eq!(
            unique_links("https://a.example/x and (https://a.example/x/)", None),
            1
        );
        assert_eq!(unique_links("www.a.example and https://a.example", None), 1);
        assert_eq!(
            unique_links("https://a.example", Some("https://b.example")),
            2
        );
        assert_eq!(
            unique_links("https://a.example", Some("https://a.example/")),
            1
        );
        assert_eq!(unique_links("no links here, e.g. none", None), 0);
    }
}
