//! `threads_publish`: turns a FINISHED container into a media object, checks the rolling
//! quotas, and writes the publish into the record tests read. A container publishes at most
//! once; every refusal here leaves the state as it was.

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};

use crate::calls::Call;
use crate::error::GraphError;
use crate::ids;
use crate::json::{JsonText, Obj};
use crate::quotas::QuotaKind;
use crate::request::GraphRequest;
use crate::state::{
    App, ContainerStatus, Ctx, Inner, Media, MediaInsights, MediaKind, PublishedPost, Session,
    millis,
};

/// `POST /v1.0/{user}/threads_publish?creation_id={container-id}` (query or form).
pub async fn publish(
    State(app): State<App>,
    Path(user): Path<String>,
    req: GraphRequest,
) -> Response {
    app.graph(Call::Publish, |inner, ctx| {
        publish_op(inner, ctx, &user, &req)
    })
    .await
}

fn publish_op(
    inner: &mut Inner,
    ctx: &Ctx<'_>,
    user_path: &str,
    req: &GraphRequest,
) -> Result<Response, GraphError> {
    let session = crate::tokens::authenticate(inner, req.token.as_deref(), ctx.now_ms)?;
    crate::media::resolve_user(&session, user_path, "post")?;
    session.require(&["threads_basic", "threads_content_publish"])?;
    let creation_id = req.params.require("creation_id")?;
    let media_id = publish_now(inner, ctx, &session, creation_id)?;
    let mut body = Obj::new();
    body.str("id", &media_id);
    Ok(JsonText::ok(body.text()).into_response())
}

/// Publishes one of the caller's containers, or says why not. Shared by `threads_publish`
/// and `auto_publish_text`.
pub fn publish_now(
    inner: &mut Inner,
    ctx: &Ctx<'_>,
    session: &Session,
    creation_id: &str,
) -> Result<String, GraphError> {
    // Someone else's container is as invisible as a missing one.
    let container = inner
        .containers
        .get(creation_id)
        .filter(|c| c.owner == session.user_id)
        .ok_or_else(GraphError::media_not_found)?
        .clone();
    if container.reply_to_id.is_some() {
        session.require(&["threads_manage_replies"])?;
    }
    if container.is_carousel_item {
        return Err(GraphError::invalid_param(
            "A carousel item cannot be published on its own; publish its CAROUSEL container",
        ));
    }
    match container.status(ctx.now_ms, ctx.config.container_ttl) {
        ContainerStatus::InProgress => return Err(GraphError::media_not_found()),
        ContainerStatus::Finished
            if ctx.now_ms < container.ready_ms + millis(ctx.config.not_found_after_ready) =>
        {
            return Err(GraphError::media_not_found());
        }
        ContainerStatus::Finished => {}
        ContainerStatus::Published => {
            return Err(GraphError::already_published(
                container.media_id.as_deref().unwrap_or_default(),
            ));
        }
        ContainerStatus::Error => {
            return Err(GraphError::threads_param(format!(
                "The media container could not be published: its status is ERROR ({})",
                container.error.as_deref().unwrap_or("UNKNOWN")
            )));
        }
        ContainerStatus::Expired => {
            return Err(GraphError::threads_param(
                "The media container has expired: it was not published within 24 hours",
            ));
        }
    }
    let parent = match &container.reply_to_id {
        Some(parent) => Some(
            inner
                .live_media(parent)
                .ok_or_else(|| {
                    GraphError::invalid_param("Param reply_to_id must be a valid Threads media id")
                })?
                .root_id
                .clone(),
        ),
        None => None,
    };
    let quota = if parent.is_some() {
        QuotaKind::Reply
    } else {
        QuotaKind::Post
    };
    inner
        .quotas
        .check(&session.user_id, quota, ctx.now_ms, &ctx.config.quotas)?;

    let kind = container.kind.unwrap_or(MediaKind::Text);
    let (number, media_id) = inner.next_media_id();
    let mut children = Vec::new();
    for child_id in &container.children {
        if let Some(child) = inner.containers.get(child_id).cloned() {
            let (child_number, child_media) = inner.next_media_id();
            inner.media.insert(
                child_media.clone(),
                Media {
                    id: child_media.clone(),
                    owner: child.owner.clone(),
                    kind: child.kind.unwrap_or(MediaKind::Image),
                    text: None,
                    media_url: child.media_url.clone(),
                    alt_text: child.alt_text.clone(),
                    children: Vec::new(),
                    is_carousel_child: true,
                    reply_to_id: None,
                    root_id: media_id.clone(),
                    quote_post_id: None,
                    reply_control: None,
                    link_attachment: None,
                    topic_tag: None,
                    shortcode: ids::shortcode(child_number),
                    published_ms: ctx.now_ms,
                    deleted: false,
                    insights: MediaInsights::default(),
                },
            );
            if let Some(c) = inner.containers.get_mut(child_id) {
                c.media_id = Some(child_media.clone());
            }
            children.push(child_media);
        }
    }
    inner.media.insert(
        media_id.clone(),
        Media {
            id: media_id.clone(),
            owner: container.owner.clone(),
            kind,
            text: container.text.clone(),
            media_url: container.media_url.clone(),
            alt_text: container.alt_text.clone(),
            children,
            is_carousel_child: false,
            reply_to_id: container.reply_to_id.clone(),
            root_id: parent.unwrap_or_else(|| media_id.clone()),
            quote_post_id: container.quote_post_id.clone(),
            reply_control: container.reply_control.clone(),
            link_attachment: container.link_attachment.clone(),
            topic_tag: container.topic_tag.clone(),
            shortcode: ids::shortcode(number),
            published_ms: ctx.now_ms,
            deleted: false,
            insights: MediaInsights::default(),
        },
    );
    if let Some(c) = inner.containers.get_mut(creation_id) {
        c.media_id = Some(media_id.clone());
    }
    inner.quotas.record(&session.user_id, quota, ctx.now_ms);
    let sequence = inner.published.len() as u64 + 1;
    inner.published.push(PublishedPost {
        sequence,
        media_id: media_id.clone(),
        container_id: container.id.clone(),
        owner_user_id: container.owner.clone(),
        media_type: kind.create_name().to_string(),
        text: container.text.clone(),
        reply_to_id: container.reply_to_id.clone(),
        quote_post_id: container.quote_post_id.clone(),
        topic_tag: container.topic_tag.clone(),
        link_attachment: container.link_attachment.clone(),
        published_at: ctx.now_s(),
        published_at_ms: ctx.now_ms,
    });
    Ok(media_id)
}
