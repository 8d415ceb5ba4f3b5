//! What ThreadStorm sends to and reads from the Threads Graph API (beyond OAuth).

use serde::Deserialize;
use time::OffsetDateTime;

use super::ids::{ContainerId, MediaId, UserId};

/// What a container holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Media {
    Text,
    Image {
        url: String,
    },
    Video {
        url: String,
    },
    /// 2–20 image/video containers created with `is_carousel_item`.
    Carousel {
        children: Vec<ContainerId>,
    },
}

/// Who may reply to a post.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyControl {
    Everyone,
    AccountsYouFollow,
    MentionedOnly,
    ParentPostAuthorOnly,
    FollowersOnly,
}

impl ReplyControl {
    pub fn as_str(self) -> &'static str {
        match self {
            ReplyControl::Everyone => "everyone",
            ReplyControl::AccountsYouFollow => "accounts_you_follow",
            ReplyControl::MentionedOnly => "mentioned_only",
            ReplyControl::ParentPostAuthorOnly => "parent_post_author_only",
            ReplyControl::FollowersOnly => "followers_only",
        }
    }
}

/// A container to create. Build with [`NewContainer::text`] & co., then the `with_`/`reply_to`
/// setters. The client sends it as it is: validating a post (UTF-8 bytes, links, tags) is the
/// pipeline's job, before any call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewContainer {
    pub media: Media,
    pub text: Option<String>,
    pub is_carousel_item: bool,
    /// The parent's MEDIA id (never its container id): a storm part's predecessor.
    pub reply_to_id: Option<MediaId>,
    pub reply_control: Option<ReplyControl>,
    pub quote_post_id: Option<MediaId>,
    pub link_attachment: Option<String>,
    pub topic_tag: Option<String>,
    pub alt_text: Option<String>,
}

impl NewContainer {
    fn of(media: Media) -> Self {
        NewContainer {
            media,
            text: None,
            is_carousel_item: false,
            reply_to_id: None,
            reply_control: None,
            quote_post_id: None,
            link_attachment: None,
            topic_tag: None,
            alt_text: None,
        }
    }

    pub fn text(text: impl Into<String>) -> Self {
        NewContainer {
            text: Some(text.into()),
            ..Self::of(Media::Text)
        }
    }

    pub fn image(url: impl Into<String>) -> Self {
        Self::of(Media::Image { url: url.into() })
    }

    pub fn video(url: impl Into<String>) -> Self {
        Self::of(Media::Video { url: url.into() })
    }

    pub fn carousel(children: Vec<ContainerId>) -> Self {
        Self::of(Media::Carousel { children })
    }

    /// Text (the caption, for media).
    pub fn with_text(mut self, text: impl Into<String>) -> Self {
        self.text = Some(text.into());
        self
    }

    /// Marks an image or video as a future carousel child.
    pub fn carousel_item(mut self) -> Self {
        self.is_carousel_item = true;
        self
    }

    pub fn reply_to(mut self, parent: MediaId) -> Self {
        self.reply_to_id = Some(parent);
        self
    }

    pub fn reply_control(mut self, control: ReplyControl) -> Self {
        self.reply_control = Some(control);
        self
    }

    pub fn quote(mut self, post: MediaId) -> Self {
        self.quote_post_id = Some(post);
        self
    }

    pub fn link_attachment(mut self, url: impl Into<String>) -> Self {
        self.link_attachment = Some(url.into());
        self
    }

    pub fn topic_tag(mut self, tag: impl Into<String>) -> Self {
        self.topic_tag = Some(tag.into());
        self
    }

    pub fn alt_text(mut self, text: impl Into<String>) -> Self {
        self.alt_text = Some(text.into());
        self
    }

    /// The form fields Threads reads, in a stable order.
    pub fn form(&self) -> Vec<(&'static str, String)> {
        let mut form = Vec::new();
        let kind = match &self.media {
            Media::Text => "TEXT",
            Media::Image { url } => {
                form.push(("image_url", url.clone()));
                "IMAGE"
            }
            Media::Video { url } => {
                form.push(("video_url", url.clone()));
                "VIDEO"
            }
            Media::Carousel { children } => {
                let ids: Vec<&str> = children.iter().map(ContainerId::as_str).collect();
                form.push(("children", ids.join(",")));
                "CAROUSEL"
            }
        };
        form.insert(0, ("media_type", kind.to_owned()));
        let optional = [
            ("text", self.text.clone()),
            (
                "is_carousel_item",
                self.is_carousel_item.then(|| "true".to_owned()),
            ),
            (
                "reply_to_id",
                self.reply_to_id.as_ref().map(|m| m.to_string()),
            ),
            (
                "reply_control",
                self.reply_control.map(|r| r.as_str().to_owned()),
            ),
            (
                "quote_post_id",
                self.quote_post_id.as_ref().map(|m| m.to_string()),
            ),
            ("link_attachment", self.link_attachment.clone()),
            ("topic_tag", self.topic_tag.clone()),
            ("alt_text", self.alt_text.clone()),
        ];
        form.extend(optional.into_iter().filter_map(|(k, v)| v.map(|v| (k, v))));
        form
    }
}

/// Where a container stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContainerStatus {
    InProgress,
    /// Ready to publish (publishing may still briefly answer 4279009).
    Finished,
    /// Already published: never publish it again.
    Published,
    /// Processing failed; `error_message` as Threads gave it (often just `UNKNOWN`).
    Error(ContainerFailure),
    /// Not published within 24 hours; create a new container.
    Expired,
}

/// Why a container ended in ERROR, from Threads' `error_message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerFailure {
    /// Threads' code, e.g. `FAILED_DOWNLOADING_VIDEO`, `UNKNOWN`; `None` when it gave none.
    pub code: Option<String>,
}

impl ContainerFailure {
    /// What a person can do about it.
    pub fn describe(&self) -> String {
        let Some(code) = self.code.as_deref() else {
            return "Threads marked the container ERROR without an error_message; create it again, \
                    and check the media if it repeats"
                .to_owned();
        };
        let what = match code {
            "FAILED_DOWNLOADING_VIDEO" => {
                "Threads could not download the video: host it at a public URL"
            }
            "FAILED_PROCESSING_AUDIO" => {
                "Threads could not process the video's audio: re-encode it (AAC)"
            }
            "FAILED_PROCESSING_VIDEO" => {
                "Threads could not process the video: re-encode it (H.264, MP4/MOV)"
            }
            "INVALID_ASPEC_RATIO" | "INVALID_ASPECT_RATIO" => {
                "the media's aspect ratio is not accepted"
            }
            "INVALID_BIT_RATE" => "the video's bit rate is not accepted",
            "INVALID_DURATION" => "the video is too short or too long",
            "INVALID_FRAME_RATE" => "the video's frame rate is not accepted",
            "INVALID_AUDIO_CHANNELS" => "the video's number of audio channels is not accepted",
            "INVALID_AUDIO_CHANNEL_LAYOUT" => "the video's audio channel layout is not accepted",
            "UNKNOWN" => {
                "Threads gave no detail (UNKNOWN); create the container again, and check the media \
                 if it repeats"
            }
            _ => "Threads rejected the container",
        };
        format!("{what} ({code})")
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct ContainerStatusBody {
    pub status: String,
    #[serde(default)]
    pub error_message: Option<String>,
}

impl ContainerStatusBody {
    pub(crate) fn into_status(self) -> Result<ContainerStatus, String> {
        Ok(match self.status.as_str() {
            "IN_PROGRESS" => ContainerStatus::InProgress,
            "FINISHED" => ContainerStatus::Finished,
            "PUBLISHED" => ContainerStatus::Published,
            "EXPIRED" => ContainerStatus::Expired,
            "ERROR" => ContainerStatus::Error(ContainerFailure {
                code: self.error_message.filter(|m| !m.trim().is_empty()),
            }),
            other => return Err(format!("unknown container status {other:?}")),
        })
    }
}

/// One quota: how many per how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub struct QuotaConfig {
    pub quota_total: u32,
    /// Seconds (86400: a rolling 24 hours).
    pub quota_duration: u32,
}

/// `threads_publishing_limit`, all fields requested.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub struct PublishingLimit {
    pub quota_usage: u32,
    pub config: QuotaConfig,
    pub reply_quota_usage: u32,
    pub reply_config: QuotaConfig,
    pub delete_quota_usage: u32,
    pub delete_config: QuotaConfig,
}

/// `GET /me`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Profile {
    pub id: UserId,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub threads_profile_picture_url: Option<String>,
    #[serde(default)]
    pub threads_biography: Option<String>,
    #[serde(default)]
    pub is_verified: Option<bool>,
}

/// A reference to another post (`replied_to`, `root_post`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct MediaRef {
    pub id: MediaId,
}

/// A post as `GET /{user}/threads` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ThreadsMedia {
    pub id: MediaId,
    /// Read-side names: TEXT_POST, IMAGE, VIDEO, CAROUSEL_ALBUM, AUDIO, REPOST_FACADE.
    #[serde(default)]
    pub media_type: Option<String>,
    #[serde(default)]
    pub permalink: Option<String>,
    #[serde(default)]
    pub text: Option<String>,
    /// As Threads writes it, e.g. `2024-09-12T23:17:39+0000`; see [`ThreadsMedia::posted_at`].
    #[serde(default)]
    pub timestamp: Option<String>,
    #[serde(default)]
    pub shortcode: Option<String>,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub is_reply: Option<bool>,
    #[serde(default)]
    pub replied_to: Option<MediaRef>,
    #[serde(default)]
    pub root_post: Option<MediaRef>,
}

const THREADS_TIME: &[time::format_description::FormatItem<'static>] = time::macros::format_description!(
    "[year]-[month]-[day]T[hour]:[minute]:[second][offset_hour sign:mandatory][offset_minute]"
);

impl ThreadsMedia {
    /// The timestamp, read from Threads' `+0000` form (or RFC 3339).
    pub fn posted_at(&self) -> Option<OffsetDateTime> {
        let raw = self.timestamp.as_deref()?;
        OffsetDateTime::parse(raw, THREADS_TIME)
            .or_else(|_| OffsetDateTime::parse(raw, &time::format_description::well_known::Rfc3339))
            .ok()
    }
}

/// One page of a list.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Page<T> {
    pub data: Vec<T>,
    #[serde(default)]
    pub paging: Option<Paging>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Paging {
    #[serde(default)]
    pub cursors: Option<Cursors>,
    /// Whether Threads gave a `next` link. The link itself carries the access token, so it is
    /// neither kept nor followed: the next page is asked for with the `after` cursor.
    #[serde(default, rename = "next", deserialize_with = "present")]
    pub has_next: bool,
}

fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    Option::<serde::de::IgnoredAny>::deserialize(d).map(|v| v.is_some())
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Cursors {
    #[serde(default)]
    pub before: Option<String>,
    #[serde(default)]
    pub after: Option<String>,
}

impl<T> Page<T> {
    /// The cursor of the next page, when there is one.
    pub fn next_cursor(&self) -> Option<&str> {
        let paging = self.paging.as_ref()?;
        if !paging.has_next {
            return None;
        }
        paging.cursors.as_ref()?.after.as_deref()
    }
}

/// Filters for listing one's own posts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListThreads {
    /// Unix seconds or `YYYY-MM-DD`, as Threads accepts.
    pub since: Option<String>,
    pub until: Option<String>,
    /// Page size; Threads caps it at 100.
    pub limit: Option<u32>,
}

/// A media metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    Views,
    Likes,
    Replies,
    Reposts,
    Quotes,
    Shares,
}

impl Metric {
    pub fn as_str(self) -> &'static str {
        match self {
            Metric::Views => "views",
            Metric::Likes => "likes",
            Metric::Replies => "replies",
            Metric::Reposts => "reposts",
            Metric::Quotes => "quotes",
            Metric::Shares => "shares",
        }
    }

    pub const ALL: [Metric; 6] = [
        Metric::Views,
        Metric::Likes,
        Metric::Replies,
        Metric::Reposts,
        Metric::Quotes,
        Metric::Shares,
    ];
}

/// A profile metric of `GET /{user}/threads_insights`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum UserMetric {
    Views,
    Likes,
    Replies,
    Reposts,
    Quotes,
    Clicks,
    FollowersCount,
}

impl UserMetric {
    pub fn as_str(self) -> &'static str {
        match self {
            UserMetric::Views => "views",
            UserMetric::Likes => "likes",
            UserMetric::Replies => "replies",
            UserMetric::Reposts => "reposts",
            UserMetric::Quotes => "quotes",
            UserMetric::Clicks => "clicks",
            UserMetric::FollowersCount => "followers_count",
        }
    }

    pub fn parse(name: &str) -> Option<UserMetric> {
        UserMetric::ALL.into_iter().find(|m| m.as_str() == name)
    }

    pub const ALL: [UserMetric; 7] = [
        UserMetric::Views,
        UserMetric::Likes,
        UserMetric::Replies,
        UserMetric::Reposts,
        UserMetric::Quotes,
        UserMetric::Clicks,
        UserMetric::FollowersCount,
    ];

    /// This metric's total among `items`, as [`Insight::total`] reads it.
    pub fn total_in(self, items: &[Insight]) -> Option<u64> {
        items
            .iter()
            .find(|i| i.name == self.as_str())
            .and_then(Insight::total)
    }
}

/// The Unix seconds a `threads_insights` query covers (`since`, `until`, both included).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InsightPeriod {
    pub since: i64,
    pub until: i64,
}

impl InsightPeriod {
    /// Threads' user insights start on 13 April 2024; an earlier `since` is refused.
    pub const EARLIEST: i64 = 1_712_991_600;

    /// `from`..=`to` as Threads takes it: from [`Self::EARLIEST`] at the soonest, up to `now` at
    /// the latest. `None` when nothing of it is left.
    pub fn within(from: i64, to: i64, now: i64) -> Option<InsightPeriod> {
        let since = from.max(Self::EARLIEST);
        let until = to.min(now);
        (since <= until).then_some(InsightPeriod { since, until })
    }
}

/// One insight of a post or a profile. Threads gives each figure in one of three shapes:
/// `values` (a post's lifetime figure, or a profile's time series — `views`, one value a day),
/// `total_value` (a profile's total over the period; `followers_count` now) or
/// `link_total_values` (a profile's `clicks`, one value per link).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Insight {
    pub name: String,
    #[serde(default)]
    pub period: Option<String>,
    #[serde(default)]
    pub values: Vec<InsightValue>,
    #[serde(default)]
    pub total_value: Option<InsightValue>,
    #[serde(default)]
    pub link_total_values: Vec<InsightValue>,
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct InsightValue {
    pub value: u64,
    /// The end of the day a time-series value covers (`2024-04-16T07:00:00+0000`).
    #[serde(default)]
    pub end_time: Option<String>,
    /// The link a `link_total_values` value counts.
    #[serde(default)]
    pub link_url: Option<String>,
}

impl Insight {
    /// The lifetime value (the first one given).
    pub fn value(&self) -> Option<u64> {
        self.values.first().map(|v| v.value)
    }

    /// The metric's figure over the period: `total_value` when given, else the sum of the daily
    /// `values` or of the per-link `link_total_values`; `None` when Threads gave no figure.
    pub fn total(&self) -> Option<u64> {
        if let Some(total) = &self.total_value {
            return Some(total.value);
        }
        let parts = if self.values.is_empty() {
            &self.link_total_values
        } else {
            &self.values
        };
        if parts.is_empty() {
            return None;
        }
        Some(
            parts
                .iter()
                .fold(0u64, |sum, v| sum.saturating_add(v.value)),
        )
    }
}

/// `DELETE /{media}`'s answer.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Deleted {
    pub success: bool,
    #[serde(default)]
    pub deleted_id: Option<MediaId>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct IdBody<T> {
    pub id: T,
}

#[derive(Debug, Deserialize)]
pub(crate) struct DataBody<T> {
    pub data: T,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cid(s: &str) -> ContainerId {
        ContainerId::parse(s).unwrap()
    }

    #[test]
    fn text_reply_form_has_the_parent_media_id() {
        let form = NewContainer::text("part 2")
            .reply_to(MediaId::parse("17920000000000009").unwrap())
            .reply_control(ReplyControl::AccountsYouFollow)
            .topic_tag("rust")
            .link_attachment("https://example.org/a");
        assert_eq!(
            form.form(),
            vec![
                ("media_type", "TEXT".to_owned()),
                ("text", "part 2".to_owned()),
                ("reply_to_id", "17920000000000009".to_owned()),
                ("reply_control", "accounts_you_follow".to_owned()),
                ("link_attachment", "https://example.org/a".to_owned()),
                ("topic_tag", "rust".to_owned()),
            ]
        );
    }

    #[test]
    fn media_forms_carry_their_urls_and_children() {
        let image = NewContainer::image("https://cdn.example/a.jpg")
            .alt_text("a cat")
            .carousel_item();
        assert_eq!(
            image.form(),
            vec![
                ("media_type", "IMAGE".to_owned()),
                ("image_url", "https://cdn.example/a.jpg".to_owned()),
                ("is_carousel_item", "true".to_owned()),
                ("alt_text", "a cat".to_owned()),
            ]
        );
        let video = NewContainer::video("https://cdn.example/v.mp4").with_text("look");
        assert_eq!(
            video.form()[..3],
            [
                ("media_type", "VIDEO".to_owned()),
                ("video_url", "https://cdn.example/v.mp4".to_owned()),
                ("text", "look".to_owned())
            ]
        );
        let carousel =
            NewContainer::carousel(vec![cid("1"), cid("2")]).quote(MediaId::parse("9").unwrap());
        assert_eq!(
            carousel.form(),
            vec![
                ("media_type", "CAROUSEL".to_owned()),
                ("children", "1,2".to_owned()),
                ("quote_post_id", "9".to_owned()),
            ]
        );
    }

    #[test]
    fn container_status_reads_every_state() {
        let read = |json: &str| {
            serde_json::from_str::<ContainerStatusBody>(json)
                .unwrap()
                .into_status()
        };
        assert_eq!(
            read(r#"{"id":"1","status":"IN_PROGRESS"}"#),
            Ok(ContainerStatus::InProgress)
        );
        assert_eq!(
            read(r#"{"id":"1","status":"FINISHED"}"#),
            Ok(ContainerStatus::Finished)
        );
        assert_eq!(
            read(r#"{"id":"1","status":"PUBLISHED"}"#),
            Ok(ContainerStatus::Published)
        );
        assert_eq!(
            read(r#"{"id":"1","status":"EXPIRED"}"#),
            Ok(ContainerStatus::Expired)
        );
        let err = read(r#"{"id":"1","status":"ERROR","error_message":"FAILED_DOWNLOADING_VIDEO"}"#)
            .unwrap();
        let ContainerStatus::Error(failure) = err else {
            panic!()
        };
        assert!(failure.describe().contains("could not download the video"));
        let err = read(r#"{"id":"1","status":"ERROR","error_message":"UNKNOWN"}"#).unwrap();
        let ContainerStatus::Error(failure) = err else {
            panic!()
        };
        assert!(failure.describe().contains("gave no detail (UNKNOWN)"));
        assert!(read(r#"{"id":"1","status":"DONE"}"#).is_err());
    }

    #[test]
    fn publishing_limit_reads_the_reference_shape() {
        let body = r#"{"data":[{"quota_usage":0,"config":{"quota_total":250,"quota_duration":86400},
"reply_quota_usage":0,"reply_config":{"quota_total":1000,"quota_duration":86400},
"delete_quota_usage":0,"delete_config":{"quota_total":100,"quota_duration":86400}}]}"#;
        let body: DataBody<Vec<PublishingLimit>> = serde_json::from_str(body).unwrap();
        let limit = body.data[0];
        assert_eq!(
            limit.config,
            QuotaConfig {
                quota_total: 250,
                quota_duration: 86400
            }
        );
        assert_eq!(limit.reply_config.quota_total, 1000);
        assert_eq!(limit.delete_config.quota_total, 100);
    }

    #[test]
    fn list_page_follows_after_only_when_next_exists() {
        let page: Page<ThreadsMedia> = serde_json::from_str(
            r#"{"data":[{"id":"17920000000000009","media_type":"TEXT_POST","text":"hi","timestamp":"2024-09-12T23:17:39+0000","is_reply":true,"replied_to":{"id":"17920000000000001"}}],
               "paging":{"cursors":{"before":"b","after":"a"},"next":"https://graph.threads.net/v1.0/1/threads?access_token=THx&after=a"}}"#,
        )
        .unwrap();
        assert_eq!(page.next_cursor(), Some("a"));
        let post = &page.data[0];
        assert_eq!(post.posted_at().unwrap().unix_timestamp(), 1726183059);
        assert_eq!(
            post.replied_to.as_ref().unwrap().id.as_str(),
            "17920000000000001"
        );
        // The token-bearing next link is not kept, so no Debug of a page can print it.
        assert!(!format!("{page:?}").contains("THx"));
        let last: Page<ThreadsMedia> =
            serde_json::from_str(r#"{"data":[],"paging":{"cursors":{"before":"b","after":"a"}}}"#)
                .unwrap();
        assert_eq!(last.next_cursor(), None);
    }

    #[test]
    fn insights_read_lifetime_values() {
        let body: DataBody<Vec<Insight>> = serde_json::from_str(
            r#"{"data":[{"name":"views","period":"lifetime","values":[{"value":42}],"title":"Views","description":"d","id":"1/insights/views/lifetime"}]}"#,
        )
        .unwrap();
        assert_eq!(body.data[0].value(), Some(42));
    }

    #[test]
    fn user_metrics_have_threads_names() {
        let names: Vec<&str> = UserMetric::ALL.iter().map(|m| m.as_str()).collect();
        assert_eq!(
            names,
            [
                "views",
                "likes",
                "replies",
                "reposts",
                "quotes",
                "clicks",
                "followers_count"
            ]
        );
        for metric in UserMetric::ALL {
            assert_eq!(UserMetric::parse(metric.as_str()), Some(metric));
        }
        assert_eq!(UserMetric::parse("shares"), None);
    }

    /// Meta's two shapes side by side: `views` a daily series, the others `total_value`
    /// (`followers_count` too), `clicks` per link.
    #[test]
    fn profile_insights_are_read_in_both_shapes() {
        let body: DataBody<Vec<Insight>> = serde_json::from_str(
            r#"{"data":[
              {"name":"views","period":"day","values":[
                {"value":10,"end_time":"2024-04-15T07:00:00+0000"},
                {"value":32,"end_time":"2024-04-16T07:00:00+0000"}],
               "title":"views","description":"The number of times your profile was viewed.",
               "id":"17841405793187218/insights/views/day"},
              {"name":"likes","period":"day","title":"likes","description":"d",
               "total_value":{"value":100},"id":"17841405793187218/insights/likes/day"},
              {"name":"replies","period":"day","total_value":{"value":0}},
              {"name":"followers_count","period":"day","total_value":{"value":87}},
              {"name":"clicks","period":"day","link_total_values":[
                {"value":3,"link_url":"https://example.com/a"},
                {"value":4,"link_url":"https://example.com/b"}]},
              {"name":"quotes","period":"day","values":[]}
            ]}"#,
        )
        .unwrap();
        let items = body.data;
        assert_eq!(
            items[0].values[1].end_time.as_deref(),
            Some("2024-04-16T07:00:00+0000")
        );
        assert_eq!(
            UserMetric::Views.total_in(&items),
            Some(42),
            "the days summed"
        );
        assert_eq!(UserMetric::Likes.total_in(&items), Some(100));
        assert_eq!(
            UserMetric::Replies.total_in(&items),
            Some(0),
            "a measured zero"
        );
        assert_eq!(UserMetric::FollowersCount.total_in(&items), Some(87));
        assert_eq!(UserMetric::Clicks.total_in(&items), Some(7));
        assert_eq!(UserMetric::Quotes.total_in(&items), None, "no figure given");
        assert_eq!(UserMetric::Reposts.total_in(&items), None, "not answered");
    }

    #[test]
    fn insight_periods_start_no_earlier_than_threads_has_figures_and_end_now() {
        let now = 1_800_000_000;
        assert_eq!(
            InsightPeriod::within(1_790_000_000, 1_810_000_000, now),
            Some(InsightPeriod {
                since: 1_790_000_000,
                until: now
            })
        );
        assert_eq!(
            InsightPeriod::within(1_700_000_000, 1_713_000_000, now),
            Some(InsightPeriod {
                since: InsightPeriod::EARLIEST,
                until: 1_713_000_000
            })
        );
        assert_eq!(
            InsightPeriod::within(1_600_000_000, 1_700_000_000, now),
            None
        );
        assert_eq!(InsightPeriod::within(now + 10, now + 20, now), None);
    }
}
