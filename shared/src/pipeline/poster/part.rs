//! Publishing one part exactly once.
//!
//! Take the part's idempotency record; create its container (replying to the previous part's
//! media id); checkpoint the container id BEFORE publishing; wait until it is ready; publish,
//! retrying "not ready" (4279009) on the same container; complete the record with the media id.
//! Whenever the outcome of a publish is unknown (5xx, code 10, timeout, a crash before the
//! record was completed) the container's status is read first: PUBLISHED means done, and the
//! media id is found again in the account's posts or the parent's replies. When it cannot be
//! found, the part is marked uncertain in the PostsTable so that Meta's `publish` webhook can
//! report the media id (see `webhooks::reconcile`); the next attempt uses that id.

use std::future::Future;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::PosterDeps;
use crate::clock::EpochMillis;
use crate::pipeline::idempotency::{Begin, Fenced, IdempotencyKey, OwnerToken, PayloadHash};
use crate::pipeline::results::PublishedPart;
use crate::posts::{MediaType, PartContent, Reason, Storm, UncertainPart};
use crate::threads::{
    AccessToken, ContainerId, ContainerStatus, ListThreads, MediaId, NewContainer, ThreadsError,
    ThreadsMedia, UserId, backoff_between,
};

/// A part on Threads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Published {
    pub media_id: MediaId,
    pub container_id: Option<ContainerId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permalink: Option<String>,
}

/// Why a part was not published, by what happens next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PartError {
    /// Try the message again (bounded by its receive count).
    Retry(String),
    /// Threads' rate limit: defer the storm until `not_before`.
    Defer { not_before: i64, reason: String },
    /// Threads refused the token: the account must be connected again.
    Reauth(String),
    /// Will not succeed as it is.
    Fail(Reason),
}

/// What the checkpoint saves: the container, and when it was created.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Checkpoint {
    container_id: ContainerId,
    created_at: i64,
}

/// Everything one part's publish needs.
pub(super) struct PartJob<'a> {
    pub deps: &'a PosterDeps,
    pub token: &'a AccessToken,
    pub user: &'a UserId,
    pub storm: &'a Storm,
    pub index: usize,
    pub content: &'a PartContent,
    /// The previous part's media id: this part replies to it.
    pub parent: Option<&'a MediaId>,
    /// The storm's parts published before this one (their media ids are never this part's).
    pub earlier: &'a [PublishedPart],
    /// When the invocation ends (Unix ms): the idempotency record's in-progress deadline.
    pub deadline_ms: i64,
    pub now: i64,
}

impl PartJob<'_> {
    /// `publish#<storm>#<part>`; a storm id is printable ASCII, so this cannot be refused.
    fn key(&self) -> Result<IdempotencyKey, PartError> {
        IdempotencyKey::new("publish", &format!("{}#{:03}", self.storm.id, self.index))
            .map_err(|e| PartError::Fail(internal(e.to_string())))
    }

    /// A digest of what this part publishes, so a record is never reused for other content.
    fn payload(&self) -> PayloadHash {
        let body = serde_json::json!({
            "content": self.content,
            "reply_to": self.parent.map(MediaId::as_str),
        });
        PayloadHash::of(body.to_string().as_bytes())
    }

    /// Publishes the part unless it was published before.
    pub async fn run(&self) -> Result<Published, PartError> {
        let key = self.key()?;
        let ledger = &self.deps.ledger;
        let now = EpochMillis::new(self.now.saturating_mul(1000));
        let begun = ledger
            .begin(
                &key,
                &self.payload(),
                EpochMillis::new(self.deadline_ms),
                now,
            )
            .await
            .map_err(|e| PartError::Retry(e.to_string()))?;
        let (owner, checkpoint) = match begun {
            Begin::AlreadyCompleted { data } => {
                return serde_json::from_str(&data).map_err(|e| {
                    PartError::Fail(internal(format!(
                        "part {} was published but its record is unreadable: {e}",
                        self.index + 1
                    )))
                });
            }
            Begin::InProgress { .. } => {
                return Err(PartError::Retry(format!(
                    "part {} is being published by another invocation",
                    self.index + 1
                )));
            }
            Begin::PayloadMismatch => {
                return Err(PartError::Fail(internal(format!(
                    "part {} has a publish record for different content",
                    self.index + 1
                ))));
            }
            Begin::Acquired { owner, checkpoint } => (owner, checkpoint),
        };
        let saved = checkpoint.and_then(|raw| serde_json::from_str::<Checkpoint>(&raw).ok());
        let resumed = saved.is_some();

        let outcome = match self.publish_from(&owner, saved).await {
            Ok(published) => {
                if resumed {
                    // An earlier attempt may have left the part marked uncertain: settled now.
                    self.settled().await;
                }
                let data = serde_json::to_string(&published)
                    .map_err(|e| PartError::Retry(e.to_string()))?;
                match ledger.complete(&key, &owner, &data, now).await {
                    Ok(Fenced::Applied) => return Ok(published),
                    Ok(Fenced::LostOwnership) => Err(PartError::Retry(format!(
                        "part {} was taken over while publishing",
                        self.index + 1
                    ))),
                    // Published but not recorded: the next attempt reads the container's status.
                    Err(e) => Err(PartError::Retry(e.to_string())),
                }
            }
            Err(e) => Err(e),
        };
        // The part is not done: let the next attempt take the record at once instead of waiting
        // for this invocation's deadline. The checkpoint stays, so that attempt reads the
        // container's status before it publishes anything.
        match ledger.release(&key, &owner).await {
            Ok(Fenced::Applied) => {}
            Ok(Fenced::LostOwnership) => {
                tracing::warn!(
                    part = self.index,
                    "idempotency record was taken over before release"
                );
            }
            Err(e) => {
                tracing::warn!(error = %e, part = self.index, "idempotency record not released; it frees at its deadline");
            }
        }
        outcome
    }

    /// From a checkpoint (an earlier attempt's container) or from scratch.
    async fn publish_from(
        &self,
        owner: &OwnerToken,
        saved: Option<Checkpoint>,
    ) -> Result<Published, PartError> {
        let since = saved.as_ref().map_or(self.now, |s| s.created_at);
        let container = match saved {
            Some(saved) => {
                let status = self.status(&saved.container_id).await?;
                match status {
                    ContainerStatus::Published => {
                        return self.recover(&saved.container_id, since).await;
                    }
                    ContainerStatus::Finished | ContainerStatus::InProgress => {
                        Some(saved.container_id)
                    }
                    ContainerStatus::Error(failure) => {
                        return Err(PartError::Fail(Reason::new(
                            "container_error",
                            format!("Part {}: {}", self.index + 1, failure.describe()),
                        )));
                    }
                    // Never published and no longer publishable: a new container is safe.
                    ContainerStatus::Expired => None,
                }
            }
            None => None,
        };
        let (container, since) = match container {
            Some(c) => (c, since),
            None => (self.create_and_checkpoint(owner).await?, self.now),
        };
        if self.content.media_type != MediaType::Text {
            self.wait_until_ready(&container).await?;
        }
        self.publish_same_container(&container, since).await
    }

    async fn create_and_checkpoint(&self, owner: &OwnerToken) -> Result<ContainerId, PartError> {
        let container = self.create().await?;
        let checkpoint = Checkpoint {
            container_id: container.clone(),
            created_at: self.now,
        };
        let data =
            serde_json::to_string(&checkpoint).map_err(|e| PartError::Retry(e.to_string()))?;
        match self
            .deps
            .ledger
            .checkpoint(&self.key()?, owner, &data)
            .await
        {
            Ok(Fenced::Applied) => Ok(container),
            Ok(Fenced::LostOwnership) => Err(PartError::Retry(format!(
                "part {} was taken over before publishing",
                self.index + 1
            ))),
            // Not checkpointed, so never published: the unused container expires by itself.
            Err(e) => Err(PartError::Retry(e.to_string())),
        }
    }

    async fn create(&self) -> Result<ContainerId, PartError> {
        let threads = &self.deps.threads;
        let mut container = self.container()?;
        if let MediaType::Carousel = self.content.media_type {
            let mut children = Vec::with_capacity(self.content.children.len());
            for child in &self.content.children {
                let mut item = match child.media_type {
                    MediaType::Video => NewContainer::video(&child.url),
                    _ => NewContainer::image(&child.url),
                }
                .carousel_item();
                if let Some(alt) = &child.alt_text {
                    item = item.alt_text(alt);
                }
                let id = self
                    .transient(|| threads.create_container(self.token, self.user, &item))
                    .await
                    .map_err(|e| self.classify(e))?;
                self.wait_until_ready(&id).await?;
                children.push(id);
            }
            container.media = crate::threads::Media::Carousel { children };
        }
        self.transient(|| threads.create_container(self.token, self.user, &container))
            .await
            .map_err(|e| self.classify(e))
    }

    /// The container this part asks for (a carousel's children are filled in by `create`).
    fn container(&self) -> Result<NewContainer, PartError> {
        let c = self.content;
        let missing = |field: &str| {
            PartError::Fail(Reason::new(
                "validation",
                format!("Part {}: {field} is missing", self.index + 1),
            ))
        };
        let mut container = match c.media_type {
            MediaType::Text => NewContainer::text(c.text.clone().unwrap_or_default()),
            MediaType::Image => {
                NewContainer::image(c.image_url.clone().ok_or_else(|| missing("image_url"))?)
            }
            MediaType::Video => {
                NewContainer::video(c.video_url.clone().ok_or_else(|| missing("video_url"))?)
            }
            MediaType::Carousel => NewContainer::carousel(Vec::new()),
        };
        if c.media_type != MediaType::Text
            && let Some(text) = &c.text
        {
            container = container.with_text(text);
        }
        if let Some(parent) = self.parent {
            container = container.reply_to(parent.clone());
        }
        if let Some(name) = &c.reply_control {
            let control = crate::policy::reply_control(name).ok_or_else(|| {
                PartError::Fail(Reason::new(
                    "validation",
                    format!("Part {}: unknown reply_control {name:?}", self.index + 1),
                ))
            })?;
            container = container.reply_control(control);
        }
        if let Some(quote) = &c.quote_post_id {
            container = container.quote(quote.clone());
        }
        if let Some(link) = &c.link_attachment {
            container = container.link_attachment(link);
        }
        if let Some(tag) = &c.topic_tag {
            container = container.topic_tag(tag);
        }
        if let Some(alt) = &c.alt_text {
            container = container.alt_text(alt);
        }
        Ok(container)
    }

    /// Polls the container until FINISHED, with backoff, a bounded number of times.
    async fn wait_until_ready(&self, container: &ContainerId) -> Result<(), PartError> {
        let settings = &self.deps.settings;
        for attempt in 0..settings.readiness_polls {
            match self.status(container).await? {
                ContainerStatus::Finished => return Ok(()),
                ContainerStatus::InProgress => self.pause(attempt).await,
                ContainerStatus::Error(failure) => {
                    return Err(PartError::Fail(Reason::new(
                        "container_error",
                        format!("Part {}: {}", self.index + 1, failure.describe()),
                    )));
                }
                ContainerStatus::Expired => {
                    return Err(PartError::Retry(
                        "the container expired while waiting".into(),
                    ));
                }
                // Published already (only possible for a container from a checkpoint).
                ContainerStatus::Published => return Ok(()),
            }
        }
        Err(PartError::Retry(format!(
            "part {}: the container was still processing after {} checks",
            self.index + 1,
            settings.readiness_polls
        )))
    }

    /// Publishes `container`, retrying "not ready" on the same container; never creates another.
    async fn publish_same_container(
        &self,
        container: &ContainerId,
        since: i64,
    ) -> Result<Published, PartError> {
        let settings = &self.deps.settings;
        let threads = &self.deps.threads;
        let mut last = String::new();
        // Whether every failed attempt was "not ready": only then is the reason
        // `container_not_ready`; a 5xx that did not publish is temporary trouble instead.
        let mut only_not_ready = true;
        for attempt in 0..settings.publish_attempts {
            if attempt > 0 {
                self.pause(attempt - 1).await;
            }
            match threads.publish(self.token, self.user, container).await {
                Ok(media_id) => {
                    return Ok(Published {
                        media_id,
                        container_id: Some(container.clone()),
                        permalink: None,
                    });
                }
                Err(ThreadsError::RetrySameContainer { reason, .. }) => last = reason,
                Err(ThreadsError::UncertainPublish { reason, .. }) => {
                    // It may have gone through: the container says.
                    let status = match self.status(container).await {
                        Ok(status) => status,
                        Err(e) => {
                            self.mark_uncertain(container, since).await;
                            return Err(e);
                        }
                    };
                    match status {
                        ContainerStatus::Published => return self.recover(container, since).await,
                        ContainerStatus::Finished | ContainerStatus::InProgress => {
                            only_not_ready = false;
                            last = reason;
                        }
                        ContainerStatus::Error(failure) => {
                            return Err(PartError::Fail(Reason::new(
                                "container_error",
                                format!("Part {}: {}", self.index + 1, failure.describe()),
                            )));
                        }
                        ContainerStatus::Expired => {
                            return Err(PartError::Retry("the container expired".into()));
                        }
                    }
                }
                Err(other) => return Err(self.classify(other)),
            }
        }
        if !only_not_ready {
            return Err(PartError::Retry(format!(
                "part {}: publishing failed {} times without publishing: {last}",
                self.index + 1,
                settings.publish_attempts
            )));
        }
        Err(PartError::Fail(Reason::new(
            "container_not_ready",
            format!(
                "Part {}: Threads kept answering that the container was not ready after {} \
                 publish attempts; nothing was published for this part. Submit the storm again \
                 later. ({last})",
                self.index + 1,
                settings.publish_attempts
            ),
        )))
    }

    /// The container's status, retrying transient failures; "not found yet" reads as
    /// in-progress (eventual consistency right after creation).
    async fn status(&self, container: &ContainerId) -> Result<ContainerStatus, PartError> {
        let threads = &self.deps.threads;
        match self
            .transient(|| threads.container_status(self.token, container))
            .await
        {
            Ok(status) => Ok(status),
            Err(ThreadsError::RetrySameContainer { .. }) => Ok(ContainerStatus::InProgress),
            Err(e) => Err(self.classify(e)),
        }
    }

    /// A PUBLISHED container's media id, found among the account's posts (first part) or the
    /// parent's replies (later parts) by its text; failing that, the media id Meta's `publish`
    /// webhook reported for this part while it was uncertain. If neither is known the part is
    /// marked uncertain, so that webhook can settle it.
    async fn recover(&self, container: &ContainerId, since: i64) -> Result<Published, PartError> {
        let looked_up = self.find_published(container).await;
        if let Ok(Some(found)) = looked_up {
            return Ok(found);
        }
        if let Some(found) = self.reported_by_webhook(container) {
            return Ok(found);
        }
        self.mark_uncertain(container, since).await;
        Err(match looked_up {
            Err(e) => e,
            Ok(_) => PartError::Retry(format!(
                "part {}: container {container} is PUBLISHED but its post is not listed yet",
                self.index + 1
            )),
        })
    }

    /// The media id a `publish` webhook recorded on this part (see `webhooks::reconcile`).
    fn reported_by_webhook(&self, container: &ContainerId) -> Option<Published> {
        let part = self.storm.parts.get(self.index)?;
        let media_id = part.media_id.clone()?;
        tracing::info!(part = self.index, media = %media_id, "published container settled by the publish webhook");
        Some(Published {
            media_id,
            container_id: Some(container.clone()),
            permalink: part.permalink.clone(),
        })
    }

    /// Remembers this part as uncertain, best effort: without the mark only the webhook's help
    /// is lost, and the poster keeps looking for the post itself.
    async fn mark_uncertain(&self, container: &ContainerId, since: i64) {
        let part = UncertainPart {
            storm_id: self.storm.id.clone(),
            index: self.index,
            container_id: Some(container.clone()),
            media_type: self.content.media_type,
            since,
            published_before: self.earlier.iter().map(|p| p.media_id.clone()).collect(),
        };
        if let Err(e) = self
            .deps
            .posts
            .mark_uncertain(&self.storm.account_id, &part, self.now)
            .await
        {
            tracing::warn!(error = %e, part = self.index, "uncertain part not marked");
        }
    }

    /// Forgets an uncertain mark once the part is published, best effort (a stale mark on a part
    /// with a media id is ignored by the webhook).
    async fn settled(&self) {
        if let Err(e) = self
            .deps
            .posts
            .clear_uncertain(&self.storm.account_id, &self.storm.id, self.index)
            .await
        {
            tracing::warn!(error = %e, part = self.index, "uncertain mark not cleared");
        }
    }

    /// The post this container became, looked up on Threads by its text.
    async fn find_published(
        &self,
        container: &ContainerId,
    ) -> Result<Option<Published>, PartError> {
        let threads = &self.deps.threads;
        let text = self.content.text.as_deref().unwrap_or_default();
        let matches = |m: &ThreadsMedia| m.text.as_deref().unwrap_or_default() == text;
        let mut after: Option<String> = None;
        for _ in 0..self.deps.settings.recovery_pages {
            let page = match self.parent {
                None => {
                    let filter = ListThreads {
                        limit: Some(100),
                        ..ListThreads::default()
                    };
                    self.transient(|| {
                        threads.list_threads(self.token, self.user, &filter, after.as_deref())
                    })
                    .await
                }
                Some(parent) => {
                    self.transient(|| threads.list_replies(self.token, parent, after.as_deref()))
                        .await
                }
            }
            .map_err(|e| self.classify(e))?;
            // Newest first: the oldest match is the one this container became.
            if let Some(found) = page.data.iter().rev().find(|m| matches(m)) {
                tracing::info!(part = self.index, media = %found.id, "published container recovered");
                return Ok(Some(Published {
                    media_id: found.id.clone(),
                    container_id: Some(container.clone()),
                    permalink: found.permalink.clone(),
                }));
            }
            match page.next_cursor() {
                Some(next) => after = Some(next.to_owned()),
                None => break,
            }
        }
        Ok(None)
    }

    /// Runs `call`, retrying transient failures with backoff a bounded number of times.
    async fn transient<T, F, Fut>(&self, mut call: F) -> Result<T, ThreadsError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, ThreadsError>>,
    {
        let mut attempt = 0;
        loop {
            match call().await {
                Err(ThreadsError::Transient { .. })
                    if attempt + 1 < self.deps.settings.transient_attempts =>
                {
                    self.pause(attempt).await;
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    async fn pause(&self, attempt: u32) {
        let s = &self.deps.settings;
        tokio::time::sleep(backoff_between(attempt, s.backoff_base, s.backoff_cap)).await;
    }

    fn classify(&self, err: ThreadsError) -> PartError {
        let part = self.index + 1;
        match err {
            ThreadsError::Transient { reason, .. }
            | ThreadsError::UncertainPublish { reason, .. }
            | ThreadsError::RetrySameContainer { reason, .. } => PartError::Retry(reason),
            ThreadsError::RateLimited {
                reason,
                retry_after,
                ..
            } => {
                let wait = retry_after
                    .unwrap_or(self.deps.settings.rate_limit_wait)
                    .max(Duration::from_secs(1));
                PartError::Defer {
                    not_before: self.now + i64::try_from(wait.as_secs()).unwrap_or(i64::MAX / 2),
                    reason,
                }
            }
            ThreadsError::NeedsReauth { reason, .. } => PartError::Reauth(reason),
            ThreadsError::Validation { reason, .. } => {
                PartError::Fail(Reason::new("validation", format!("Part {part}: {reason}")))
            }
            ThreadsError::PermanentOther { reason, .. } => PartError::Fail(Reason::new(
                "threads_refused",
                format!("Part {part}: {reason}"),
            )),
        }
    }
}

fn internal(text: String) -> Reason {
    Reason::new(
        "internal",
        format!("{text}; nothing more was published. Contact support with the storm id."),
    )
}
