//! Content policy: everything Threads would refuse, and everything ThreadStorm refuses (brand
//! protection), checked on a whole post or storm before anything is published.
//!
//! A storm is checked as a whole: if any part is wrong the storm is rejected with every problem
//! named by part, so no storm is ever half-published because part 3 was invalid. Pure functions;
//! the dedupe stage (and the API, to answer early) call them.

mod draft;
mod fingerprint;
pub mod links;
mod normalise;
mod rejection;
mod terms;

use std::ops::RangeInclusive;

pub use draft::{CarouselItem, DraftMedia, ItemKind, PostDraft};
pub use fingerprint::content_fingerprint;
pub use normalise::{fold, normalised_for_dedup};
pub use rejection::{Rejection, Rejections};
pub use terms::{DEFAULT_PROHIBITED_TERMS, ProhibitedTerms};

use crate::threads::ReplyControl;

/// Threads' limit on `text`, in UTF-8 bytes (what it enforces in practice, not characters).
pub const TEXT_LIMIT_BYTES: usize = 500;
/// Threads' limit on unique links per post (text links plus a differing link attachment).
pub const LINK_LIMIT: usize = 5;
pub const TOPIC_TAG_MAX_CHARS: usize = 50;
pub const ALT_TEXT_MAX_CHARS: usize = 1_000;
pub const CAROUSEL_ITEMS: RangeInclusive<usize> = 2..=20;
/// The most parts ThreadStorm publishes as one storm: what one storm's write can hold. The gate
/// reserves quota for a whole storm at once (one post and n−1 replies of the 1,000 a day), so an
/// unbounded storm could wait for capacity forever; 99 parts is far beyond what readers follow
/// and leaves room for other posts.
pub const MAX_STORM_PARTS: usize = crate::posts::MAX_PARTS;

const REPLY_CONTROLS: [ReplyControl; 5] = [
    ReplyControl::Everyone,
    ReplyControl::AccountsYouFollow,
    ReplyControl::MentionedOnly,
    ReplyControl::ParentPostAuthorOnly,
    ReplyControl::FollowersOnly,
];

/// The reply control named `name` exactly as Threads spells it (`accounts_you_follow`, …).
pub fn reply_control(name: &str) -> Option<ReplyControl> {
    REPLY_CONTROLS.into_iter().find(|c| c.as_str() == name)
}

/// The rules a post or storm must pass. Build once from configuration and share.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContentPolicy {
    terms: ProhibitedTerms,
    max_parts: usize,
}

impl Default for ContentPolicy {
    /// Threads' limits and the default prohibited terms.
    fn default() -> Self {
        ContentPolicy::new(ProhibitedTerms::default())
    }
}

impl ContentPolicy {
    pub fn new(terms: ProhibitedTerms) -> Self {
        ContentPolicy {
            terms,
            max_parts: MAX_STORM_PARTS,
        }
    }

    pub fn terms(&self) -> &ProhibitedTerms {
        &self.terms
    }

    /// A single post (reported as part 1).
    pub fn check_post(&self, post: &PostDraft) -> Result<(), Rejections> {
        self.check_storm(std::slice::from_ref(post))
    }

    /// A whole storm, every part, before any is published. All problems are reported.
    pub fn check_storm(&self, parts: &[PostDraft]) -> Result<(), Rejections> {
        if parts.is_empty() {
            return Err(Rejection::NoParts.into());
        }
        if parts.len() > self.max_parts {
            return Err(Rejection::TooManyParts {
                count: parts.len(),
                limit: self.max_parts,
            }
            .into());
        }
        let mut problems = Vec::new();
        for (index, post) in parts.iter().enumerate() {
            self.check_part(index + 1, post, &mut problems);
        }
        match Rejections::from_vec(problems) {
            None => Ok(()),
            Some(rejections) => Err(rejections),
        }
    }

    fn check_part(&self, part: usize, post: &PostDraft, out: &mut Vec<Rejection>) {
        let is_text = post.media == DraftMedia::Text;
        let text = post.text.as_deref().unwrap_or_default();
        if is_text && normalised_for_dedup(text).is_empty() {
            out.push(Rejection::Empty { part });
        }
        if text.len() > TEXT_LIMIT_BYTES {
            out.push(Rejection::TooLong {
                part,
                bytes: text.len(),
                limit: TEXT_LIMIT_BYTES,
            });
        }
        self.check_text_field(part, "text", text, out);

        let attachment = post.link_attachment.as_deref();
        if let Some(link) = attachment {
            if !is_text {
                out.push(invalid(
                    part,
                    "link_attachment",
                    "is only allowed on text posts",
                ));
            } else if !links::is_http_url(link) {
                let reason = format!("must be an http(s) URL{}", control_character_note(link));
                out.push(invalid(part, "link_attachment", reason));
            }
        }
        let attachment = attachment.filter(|l| is_text && links::is_http_url(l));
        check_links(part, text, attachment, out);

        if let Some(tag) = &post.topic_tag {
            check_topic_tag(part, tag, out);
            self.check_text_field(part, "topic_tag", tag, out);
        }
        self.check_alt_text(part, "alt_text", post.alt_text.as_deref(), out);
        if let Some(control) = &post.reply_control
            && reply_control(control).is_none()
        {
            let names: Vec<&str> = REPLY_CONTROLS.iter().map(|c| c.as_str()).collect();
            out.push(invalid(
                part,
                "reply_control",
                format!("must be one of {}", names.join(", ")),
            ));
        }

        match &post.media {
            DraftMedia::Text => {}
            DraftMedia::Image { url } => check_media_url(part, "image_url", url, None, out),
            DraftMedia::Video { url } => check_media_url(part, "video_url", url, None, out),
            DraftMedia::Carousel { items } => {
                if !CAROUSEL_ITEMS.contains(&items.len()) {
                    out.push(invalid(
                        part,
                        "children",
                        format!(
                            "must hold {} to {} images or videos; this carousel has {}",
                            CAROUSEL_ITEMS.start(),
                            CAROUSEL_ITEMS.end(),
                            items.len()
                        ),
                    ));
                }
                for (i, item) in items.iter().enumerate() {
                    let field = match item.kind {
                        ItemKind::Image => "image_url",
                        ItemKind::Video => "video_url",
                    };
                    check_media_url(part, field, &item.url, Some(i + 1), out);
                    self.check_alt_text(part, "alt_text", item.alt_text.as_deref(), out);
                }
            }
        }
    }

    /// What every field a reader sees must pass: no prohibited term, no character that is not
    /// text (see [`disallowed_character`]).
    fn check_text_field(
        &self,
        part: usize,
        field: &'static str,
        value: &str,
        out: &mut Vec<Rejection>,
    ) {
        if let Some(c) = value.chars().find(|&c| disallowed_character(c)) {
            out.push(invalid(
                part,
                field,
                format!(
                    "contains the control character U+{:04X}, which is not text; remove it",
                    u32::from(c)
                ),
            ));
        }
        if let Some(term) = self.terms.find_in(value) {
            out.push(Rejection::ProhibitedTerm {
                part,
                field,
                term: term.to_owned(),
            });
        }
    }

    fn check_alt_text(
        &self,
        part: usize,
        field: &'static str,
        alt: Option<&str>,
        out: &mut Vec<Rejection>,
    ) {
        let Some(alt) = alt else { return };
        let chars = alt.chars().count();
        if chars > ALT_TEXT_MAX_CHARS {
            out.push(invalid(
                part,
                field,
                format!("is {chars} characters long; Threads allows {ALT_TEXT_MAX_CHARS}"),
            ));
        }
        self.check_text_field(part, field, alt, out);
    }
}

/// A character no post should carry: a control character other than tab, line feed and carriage
/// return (NUL, escape sequences, C1 controls), or a bidirectional override (U+202D, U+202E),
/// which shows the text after it in another order than it is stored — a term written backwards
/// behind one reads forwards and passes the brand filter.
pub(crate) fn disallowed_character(c: char) -> bool {
    (c.is_control() && !matches!(c, '\t' | '\n' | '\r')) || matches!(c, '\u{202D}' | '\u{202E}')
}

/// Unique links: the text's counted links plus an attachment that differs from all of them.
fn check_links(part: usize, text: &str, attachment: Option<&str>, out: &mut Vec<Rejection>) {
    let mut distinct: Vec<(String, &str)> = Vec::new();
    for link in links::counted_links(text).into_iter().chain(attachment) {
        let key = links::link_key(link);
        if !distinct.iter().any(|(k, _)| *k == key) {
            distinct.push((key, link));
        }
    }
    if distinct.len() > LINK_LIMIT {
        out.push(Rejection::TooManyLinks {
            part,
            count: distinct.len(),
            limit: LINK_LIMIT,
            links: distinct.into_iter().map(|(_, l)| l.to_owned()).collect(),
        });
    }
}

fn check_topic_tag(part: usize, tag: &str, out: &mut Vec<Rejection>) {
    let chars = tag.chars().count();
    let problem = if tag.trim().is_empty() {
        Some("must not be blank".to_owned())
    } else if chars > TOPIC_TAG_MAX_CHARS {
        Some(format!(
            "is {chars} characters long; Threads allows 1 to {TOPIC_TAG_MAX_CHARS}"
        ))
    } else if fold(tag).contains(['.', '&']) {
        // Folded too, so a full-width `．` or `＆` is refused like the plain one.
        Some("must not contain '.' or '&'".to_owned())
    } else {
        None
    };
    if let Some(reason) = problem {
        out.push(invalid(part, "topic_tag", reason));
    }
}

fn check_media_url(
    part: usize,
    field: &'static str,
    url: &str,
    item: Option<usize>,
    out: &mut Vec<Rejection>,
) {
    if !links::is_https_url(url) {
        // The URL itself is not echoed: media URLs are often signed and carry credentials.
        let note = control_character_note(url);
        let reason = match item {
            Some(i) => format!("of carousel item {i} must be an https URL{note}"),
            None => format!("must be an https URL{note}"),
        };
        out.push(invalid(part, field, reason));
    }
}

/// Why a URL that otherwise looks like one is not: it holds a character no URL does.
fn control_character_note(url: &str) -> String {
    url.chars()
        .find(|&c| disallowed_character(c))
        .map(|c| {
            format!(
                "; it holds the control character U+{:04X}, which no URL does",
                u32::from(c)
            )
        })
        .unwrap_or_default()
}

fn invalid(part: usize, field: &'static str, reason: impl Into<String>) -> Rejection {
    Rejection::InvalidField {
        part,
        field,
        reason: reason.into(),
    }
}

#[cfg(test)]
mod tests;
