//! What a storm is: its id, its parts' content, and the status a user sees.
//!
//! A single post is a one-part storm of kind `post`, so every stage handles one shape.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::pipeline::quota::Counts;
use crate::policy::{CarouselItem, DraftMedia, ItemKind, PostDraft};
use crate::threads::{MediaId, UserId};

/// The Threads account a storm publishes to: the connected account's Threads user id. It is also
/// the FIFO `MessageGroupId`, so each account's storms go through the pipeline in order.
pub type AccountId = UserId;

/// The most parts one storm may have: the storm item and its parts are written in one
/// TransactWriteItems, which takes at most 100 actions.
pub const MAX_PARTS: usize = 99;

const ID_PREFIX: &str = "storm_";

/// A storm's id: `storm_` and a UUID v7 in lowercase hex, so ids sort by creation time.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct StormId(String);

/// Why a string is not a storm id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a storm id: {0:?}")]
pub struct InvalidStormId(String);

impl StormId {
    /// A new id, ordered after every id made earlier.
    pub fn new() -> Self {
        StormId(format!("{ID_PREFIX}{}", uuid::Uuid::now_v7().simple()))
    }

    pub fn parse(raw: &str) -> Result<Self, InvalidStormId> {
        let hex = raw
            .strip_prefix(ID_PREFIX)
            .ok_or_else(|| InvalidStormId(shorten(raw)))?;
        if hex.len() != 32
            || !hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err(InvalidStormId(shorten(raw)));
        }
        Ok(StormId(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for StormId {
    fn default() -> Self {
        Self::new()
    }
}

/// Error messages quote at most this much of a bad input.
fn shorten(raw: &str) -> String {
    raw.chars().take(64).collect()
}

impl fmt::Display for StormId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for StormId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StormId({})", self.0)
    }
}

impl<'de> Deserialize<'de> for StormId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        StormId::parse(&raw).map_err(serde::de::Error::custom)
    }
}

impl std::str::FromStr for StormId {
    type Err = InvalidStormId;
    fn from_str(raw: &str) -> Result<Self, InvalidStormId> {
        Self::parse(raw)
    }
}

/// A post on its own, or a chain of replies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StormKind {
    Post,
    Storm,
}

impl StormKind {
    pub fn as_str(self) -> &'static str {
        match self {
            StormKind::Post => "post",
            StormKind::Storm => "storm",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "post" => Some(StormKind::Post),
            "storm" => Some(StormKind::Storm),
            _ => None,
        }
    }
}

/// What a part shows, as Threads' container `media_type` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum MediaType {
    Text,
    Image,
    Video,
    Carousel,
}

impl MediaType {
    /// The name the API and the stored items use: `TEXT`, `IMAGE`, `VIDEO`, `CAROUSEL`.
    pub fn as_str(self) -> &'static str {
        match self {
            MediaType::Text => "TEXT",
            MediaType::Image => "IMAGE",
            MediaType::Video => "VIDEO",
            MediaType::Carousel => "CAROUSEL",
        }
    }
}

/// One image or video of a carousel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CarouselChild {
    /// `IMAGE` or `VIDEO`.
    pub media_type: MediaType,
    pub url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alt_text: Option<String>,
}

/// One part's content, as submitted. The content policy checks it (whole storm, before the first
/// part is published); the poster turns it into a container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartContent {
    pub media_type: MediaType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub video_url: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub children: Vec<CarouselChild>,
    /// One of Threads' reply-control names (`everyone`, `accounts_you_follow`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_control: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic_tag: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quote_post_id: Option<MediaId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link_attachment: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alt_text: Option<String>,
}

impl PartContent {
    /// The Threads API requests publishing this part takes when nothing goes wrong: create and
    /// publish, one status read for media (Threads processes it first), and one create per
    /// carousel item.
    pub fn request_cost(&self) -> u32 {
        let children = u32::try_from(self.children.len()).unwrap_or(u32::MAX);
        match self.media_type {
            MediaType::Text => 2,
            MediaType::Carousel => children.saturating_add(3),
            MediaType::Image | MediaType::Video => 3,
        }
    }

    /// A text post.
    pub fn text(text: impl Into<String>) -> Self {
        PartContent {
            media_type: MediaType::Text,
            text: Some(text.into()),
            image_url: None,
            video_url: None,
            children: Vec::new(),
            reply_control: None,
            topic_tag: None,
            quote_post_id: None,
            link_attachment: None,
            alt_text: None,
        }
    }

    /// An image post with an optional caption.
    pub fn image(url: impl Into<String>, caption: Option<String>) -> Self {
        PartContent {
            media_type: MediaType::Image,
            image_url: Some(url.into()),
            text: caption,
            ..Self::text("")
        }
    }
}

impl From<&PartContent> for PostDraft {
    /// What the content policy checks and the duplicate fingerprint is taken over.
    fn from(part: &PartContent) -> PostDraft {
        let media = match part.media_type {
            MediaType::Text => DraftMedia::Text,
            MediaType::Image => DraftMedia::Image {
                url: part.image_url.clone().unwrap_or_default(),
            },
            MediaType::Video => DraftMedia::Video {
                url: part.video_url.clone().unwrap_or_default(),
            },
            MediaType::Carousel => DraftMedia::Carousel {
                items: part
                    .children
                    .iter()
                    .map(|c| CarouselItem {
                        kind: match c.media_type {
                            MediaType::Video => ItemKind::Video,
                            _ => ItemKind::Image,
                        },
                        url: c.url.clone(),
                        alt_text: c.alt_text.clone(),
                    })
                    .collect(),
            },
        };
        PostDraft {
            media,
            text: part.text.clone(),
            link_attachment: part.link_attachment.clone(),
            topic_tag: part.topic_tag.clone(),
            alt_text: part.alt_text.clone(),
            reply_control: part.reply_control.clone(),
        }
    }
}

/// One part of a storm: its content and, once published, where it is on Threads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    /// 0-based position in the storm.
    pub index: usize,
    pub content: PartContent,
    pub media_id: Option<MediaId>,
    pub permalink: Option<String>,
    /// When the post was deleted on Threads (Unix seconds), as Meta's `delete` webhook said.
    pub deleted_at: Option<i64>,
}

/// Why a storm was refused before anything was published.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reason {
    /// A stable machine code: `duplicate`, `text_too_long`, `forbidden`, `container_not_ready`, …
    pub code: String,
    /// What happened and what to do about it, for the person who submitted the storm.
    pub text: String,
}

impl Reason {
    pub fn new(code: impl Into<String>, text: impl Into<String>) -> Self {
        Reason {
            code: code.into(),
            text: text.into(),
        }
    }
}

/// Where a storm stands, exactly as a user sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    /// Waiting for its `publish_at`.
    Scheduled,
    /// In the pipeline.
    Queued,
    /// Waiting for capacity (quota, kill switch, Threads' rate limit) until `not_before`.
    Deferred { not_before: i64 },
    /// The poster has it: it can no longer be cancelled.
    Publishing,
    /// Every part is on Threads; the media id and permalink are the first part's.
    Published {
        media_id: MediaId,
        permalink: Option<String>,
    },
    /// Refused before anything was published (policy, validation, duplicate).
    Rejected(Reason),
    /// Publishing stopped; the reason says what a person can do.
    Failed(Reason),
    /// Cancelled by its owner before publishing began.
    Cancelled,
}

/// A status without its data: what conditions compare.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StatusName {
    Scheduled,
    Queued,
    Deferred,
    Publishing,
    Published,
    Rejected,
    Failed,
    Cancelled,
}

impl StatusName {
    pub fn as_str(self) -> &'static str {
        match self {
            StatusName::Scheduled => "scheduled",
            StatusName::Queued => "queued",
            StatusName::Deferred => "deferred",
            StatusName::Publishing => "publishing",
            StatusName::Published => "published",
            StatusName::Rejected => "rejected",
            StatusName::Failed => "failed",
            StatusName::Cancelled => "cancelled",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Some(match raw {
            "scheduled" => StatusName::Scheduled,
            "queued" => StatusName::Queued,
            "deferred" => StatusName::Deferred,
            "publishing" => StatusName::Publishing,
            "published" => StatusName::Published,
            "rejected" => StatusName::Rejected,
            "failed" => StatusName::Failed,
            "cancelled" => StatusName::Cancelled,
            _ => return None,
        })
    }

    /// Nothing more will happen to a storm in this status.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            StatusName::Published
                | StatusName::Rejected
                | StatusName::Failed
                | StatusName::Cancelled
        )
    }

    /// The owner may still cancel: nothing has been sent to Threads.
    pub fn is_cancellable(self) -> bool {
        matches!(
            self,
            StatusName::Scheduled | StatusName::Queued | StatusName::Deferred
        )
    }
}

impl fmt::Display for StatusName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Status {
    pub fn name(&self) -> StatusName {
        match self {
            Status::Scheduled => StatusName::Scheduled,
            Status::Queued => StatusName::Queued,
            Status::Deferred { .. } => StatusName::Deferred,
            Status::Publishing => StatusName::Publishing,
            Status::Published { .. } => StatusName::Published,
            Status::Rejected(_) => StatusName::Rejected,
            Status::Failed(_) => StatusName::Failed,
            Status::Cancelled => StatusName::Cancelled,
        }
    }
}

/// A storm as stored: the source of truth every stage reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Storm {
    pub id: StormId,
    pub kind: StormKind,
    /// The ThreadStorm user who submitted it; the poster re-checks they still own the account.
    pub owner_user_id: String,
    pub account_id: AccountId,
    pub parts: Vec<Part>,
    pub status: Status,
    /// When to publish (Unix seconds); `None` for "now".
    pub publish_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
    /// Bumped each time the scheduler sends the storm into the pipeline again; messages of an
    /// older version are stale and dropped, so a re-sent storm is never worked on twice.
    pub version: u32,
}

impl Storm {
    /// When a deferred storm may go again.
    pub fn not_before(&self) -> Option<i64> {
        match self.status {
            Status::Deferred { not_before } => Some(not_before),
            _ => None,
        }
    }

    /// What this storm takes from the quotas: the first part is a post, every later part a reply,
    /// and the Threads API requests its parts cost (see [`PartContent::request_cost`]).
    /// What the parts after the first `published + 1` took from the quotas: the parts a storm that
    /// failed at part `published` never attempted (always replies). `None` when there are none.
    pub fn never_attempted_cost(&self, published: usize) -> Option<Counts> {
        let rest = &self.parts[self.parts.len().min(published + 1)..];
        let replies = u32::try_from(rest.len()).unwrap_or(u32::MAX);
        let requests = rest
            .iter()
            .map(|part| part.content.request_cost())
            .fold(0u32, u32::saturating_add);
        (replies > 0).then_some(Counts {
            posts: 0,
            replies,
            requests,
        })
    }

    pub fn quota_cost(&self) -> Counts {
        let parts = u32::try_from(self.parts.len()).unwrap_or(u32::MAX);
        let requests = self
            .parts
            .iter()
            .map(|part| part.content.request_cost())
            .fold(0u32, u32::saturating_add);
        Counts {
            posts: 1,
            replies: parts.saturating_sub(1),
            requests,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn storm_ids_are_prefixed_time_ordered_and_parse_back() {
        let a = StormId::new();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let b = StormId::new();
        assert!(a.as_str().starts_with("storm_") && a.as_str().len() == 38);
        assert!(a < b, "{a} then {b}");
        assert_eq!(StormId::parse(a.as_str()), Ok(a.clone()));
        let json = serde_json::to_string(&a).unwrap();
        assert_eq!(serde_json::from_str::<StormId>(&json).unwrap(), a);
    }

    #[test]
    fn malformed_storm_ids_are_refused() {
        for bad in [
            "",
            "storm_",
            "storm_XYZ",
            "post_0190c7d8a1b27c3d8e9f001122334455",
            "storm_0190C7D8A1B27C3D8E9F001122334455",
            "storm_0190c7d8a1b27c3d8e9f00112233445",
            "storm_0190c7d8a1b27c3d8e9f0011223344556",
        ] {
            assert!(StormId::parse(bad).is_err(), "{bad:?} accepted");
        }
        assert!(serde_json::from_str::<StormId>(r#""storm_#""#).is_err());
    }

    #[test]
    fn part_content_round_trips_as_threads_names_it() {
        let part = PartContent {
            reply_control: Some("accounts_you_follow".into()),
            topic_tag: Some("rust".into()),
            ..PartContent::text("hello")
        };
        let json = serde_json::to_value(&part).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"media_type":"TEXT","text":"hello","reply_control":"accounts_you_follow","topic_tag":"rust"})
        );
        assert_eq!(serde_json::from_value::<PartContent>(json).unwrap(), part);
        let carousel: PartContent = serde_json::from_str(
            r#"{"media_type":"CAROUSEL","children":[{"media_type":"IMAGE","url":"https://a/1.jpg"},{"media_type":"VIDEO","url":"https://a/2.mp4","alt_text":"x"}]}"#,
        )
        .unwrap();
        assert_eq!(carousel.children.len(), 2);
    }

    #[test]
    fn statuses_name_themselves_and_know_what_is_final() {
        for name in [
            StatusName::Scheduled,
            StatusName::Queued,
            StatusName::Deferred,
            StatusName::Publishing,
            StatusName::Published,
            StatusName::Rejected,
            StatusName::Failed,
            StatusName::Cancelled,
        ] {
            assert_eq!(StatusName::parse(name.as_str()), Some(name));
            assert!(!(name.is_final() && name.is_cancellable()));
        }
        assert!(StatusName::parse("unknown").is_none());
        assert!(!StatusName::Publishing.is_cancellable());
    }
}
