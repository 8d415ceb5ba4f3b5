//! A post as submitted, before any container exists: what the content policy checks and what the
//! duplicate fingerprint is taken over. Fields hold what the user sent, unvalidated.

/// What a post shows besides its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DraftMedia {
    Text,
    Image {
        url: String,
    },
    Video {
        url: String,
    },
    /// 2–20 images or videos, each its own carousel-item container at publish time.
    Carousel {
        items: Vec<CarouselItem>,
    },
}

/// Whether a carousel item is an image or a video.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ItemKind {
    Image,
    Video,
}

/// One image or video of a carousel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CarouselItem {
    pub kind: ItemKind,
    pub url: String,
    pub alt_text: Option<String>,
}

/// One post, or one part of a storm.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostDraft {
    pub media: DraftMedia,
    /// The text (the caption, for media).
    pub text: Option<String>,
    /// TEXT posts only: an http(s) URL shown as a link preview.
    pub link_attachment: Option<String>,
    pub topic_tag: Option<String>,
    /// Image and video posts: a description for screen readers.
    pub alt_text: Option<String>,
    /// As sent: one of Threads' reply-control names (see [`crate::threads::ReplyControl`]).
    pub reply_control: Option<String>,
}

impl PostDraft {
    fn of(media: DraftMedia) -> Self {
        PostDraft {
            media,
            text: None,
            link_attachment: None,
            topic_tag: None,
            alt_text: None,
            reply_control: None,
        }
    }

    pub fn text(text: impl Into<String>) -> Self {
        PostDraft {
            text: Some(text.into()),
            ..Self::of(DraftMedia::Text)
        }
    }

    pub fn image(url: impl Into<String>) -> Self {
        Self::of(DraftMedia::Image { url: url.into() })
    }

    pub fn video(url: impl Into<String>) -> Self {
        Self::of(DraftMedia::Video { url: url.into() })
    }

    pub fn carousel(items: Vec<CarouselItem>) -> Self {
        Self::of(DraftMedia::Carousel { items })
    }

    pub fn with_text(mut self, text: impl Into<String>) -> Self {
        self.text = Some(text.into());
        self
    }

    pub fn with_link_attachment(mut self, url: impl Into<String>) -> Self {
        self.link_attachment = Some(url.into());
        self
    }

    pub fn with_topic_tag(mut self, tag: impl Into<String>) -> Self {
        self.topic_tag = Some(tag.into());
        self
    }

    pub fn with_alt_text(mut self, text: impl Into<String>) -> Self {
        self.alt_text = Some(text.into());
        self
    }

    pub fn with_reply_control(mut self, control: impl Into<String>) -> Self {
        self.reply_control = Some(control.into());
        self
    }
}
