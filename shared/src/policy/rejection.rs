//! Why content is refused before anything reaches Threads: one typed value per problem, each with
//! a stable machine code (for the API, metrics and tests) and a reason a person can act on.
//!
//! Part numbers are 1-based everywhere (in the values and in the messages), as a user counts.

use std::fmt;

/// One problem with a post or storm. See [`Rejection::code`] for the stable codes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.reason())]
pub enum Rejection {
    /// A storm with no parts at all.
    NoParts,
    /// A storm with more parts than ThreadStorm publishes as one storm.
    TooManyParts { count: usize, limit: usize },
    /// A TEXT post whose text is missing or only whitespace/invisible characters.
    Empty { part: usize },
    /// Text longer than Threads accepts, in UTF-8 bytes.
    TooLong {
        part: usize,
        bytes: usize,
        limit: usize,
    },
    /// More unique links than Threads accepts; `links` are the distinct ones counted, as written.
    TooManyLinks {
        part: usize,
        count: usize,
        limit: usize,
        links: Vec<String>,
    },
    /// A prohibited term (named as configured) found in `field` after normalisation.
    ProhibitedTerm {
        part: usize,
        field: &'static str,
        term: String,
    },
    /// A field Threads would refuse (`topic_tag`, `alt_text`, `link_attachment`, `image_url`,
    /// `video_url`, `children`, `reply_control`), with what is wrong.
    InvalidField {
        part: usize,
        field: &'static str,
        reason: String,
    },
    /// Splitting: a link longer than one part can hold; links are never cut.
    UnsplittableLink {
        link: String,
        bytes: usize,
        limit: usize,
    },
    /// Splitting: one character (a grapheme cluster, e.g. a letter with hundreds of combining
    /// marks) longer than one part can hold.
    UnsplittableCharacter { bytes: usize, limit: usize },
}

impl Rejection {
    /// A stable, machine-readable code. Never change one; add new ones.
    pub fn code(&self) -> &'static str {
        match self {
            Rejection::NoParts => "no_parts",
            Rejection::TooManyParts { .. } => "too_many_parts",
            Rejection::Empty { .. } => "empty_text",
            Rejection::TooLong { .. } => "text_too_long",
            Rejection::TooManyLinks { .. } => "too_many_links",
            Rejection::ProhibitedTerm { .. } => "prohibited_term",
            Rejection::InvalidField { .. } => "invalid_field",
            Rejection::UnsplittableLink { .. } => "unsplittable_link",
            Rejection::UnsplittableCharacter { .. } => "unsplittable_character",
        }
    }

    /// The 1-based part the problem is in, when it is in one part.
    pub fn part(&self) -> Option<usize> {
        match self {
            Rejection::Empty { part }
            | Rejection::TooLong { part, .. }
            | Rejection::TooManyLinks { part, .. }
            | Rejection::ProhibitedTerm { part, .. }
            | Rejection::InvalidField { part, .. } => Some(*part),
            Rejection::NoParts
            | Rejection::TooManyParts { .. }
            | Rejection::UnsplittableLink { .. }
            | Rejection::UnsplittableCharacter { .. } => None,
        }
    }

    /// What is wrong and what to do about it, for the person who submitted the content.
    pub fn reason(&self) -> String {
        match self {
            Rejection::NoParts => "The storm has no parts; add at least one post.".to_owned(),
            Rejection::TooManyParts { count, limit } => format!(
                "The storm has {count} parts; at most {limit} are published as one storm. \
                 Shorten it or publish it as several storms."
            ),
            Rejection::Empty { part } => format!(
                "Part {part} has no text; a text post needs some. Add text or remove the part."
            ),
            Rejection::TooLong { part, bytes, limit } => format!(
                "Part {part} is {bytes} bytes long; Threads allows {limit} bytes of UTF-8 \
                 (emoji and curly quotes take 3–4 bytes each). Remove {} or split the part.",
                count_of(bytes.saturating_sub(*limit), "byte")
            ),
            Rejection::TooManyLinks {
                part,
                count,
                limit,
                links,
            } => format!(
                "Part {part} has {count} different links; Threads allows {limit}. Remove {}: {}.",
                count_of(count.saturating_sub(*limit), "link"),
                links.join(", ")
            ),
            Rejection::ProhibitedTerm { part, field, term } => {
                let place = if *field == "text" {
                    String::new()
                } else {
                    format!(" ({field})")
                };
                format!(
                    "Part {part}{place} contains \"{term}\", a term this service does not allow \
                     (brand protection). Remove or reword it."
                )
            }
            Rejection::InvalidField {
                part,
                field,
                reason,
            } => format!("Part {part}: {field} {reason}."),
            Rejection::UnsplittableLink { link, bytes, limit } => format!(
                "The link {} is {bytes} bytes long, more than the {limit} bytes one part can hold, \
                 and a link is never cut. Use a shorter link.",
                abbreviated(link)
            ),
            Rejection::UnsplittableCharacter { bytes, limit } => format!(
                "The text holds a single character of {bytes} bytes (a letter with many \
                 combining marks), more than the {limit} bytes one part can hold. Remove it."
            ),
        }
    }
}

/// "1 byte", "3 bytes".
fn count_of(n: usize, unit: &str) -> String {
    if n == 1 {
        format!("1 {unit}")
    } else {
        format!("{n} {unit}s")
    }
}

/// A long link, shortened for a message (the full value stays in the rejection).
fn abbreviated(link: &str) -> String {
    const SHOWN: usize = 60;
    match link.char_indices().nth(SHOWN) {
        Some((end, _)) => format!("{}…", &link[..end]),
        None => link.to_owned(),
    }
}

/// Every problem found in a post or storm: never empty, in part order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejections {
    // Kept apart so "never empty" is a property of the type, not a promise.
    first: Rejection,
    rest: Vec<Rejection>,
}

impl Rejections {
    /// `None` when there is nothing to reject.
    pub(crate) fn from_vec(rejections: Vec<Rejection>) -> Option<Self> {
        let mut all = rejections.into_iter();
        let first = all.next()?;
        Some(Rejections {
            first,
            rest: all.collect(),
        })
    }

    /// The first problem: the one a status line shows.
    pub fn first(&self) -> &Rejection {
        &self.first
    }

    /// Every problem, in part order.
    pub fn iter(&self) -> impl Iterator<Item = &Rejection> {
        std::iter::once(&self.first).chain(&self.rest)
    }

    pub fn count(&self) -> usize {
        1 + self.rest.len()
    }

    /// The first problem's code.
    pub fn code(&self) -> &'static str {
        self.first.code()
    }

    /// Every reason, one after another.
    pub fn reason(&self) -> String {
        let reasons: Vec<String> = self.iter().map(Rejection::reason).collect();
        reasons.join(" ")
    }
}

impl From<Rejection> for Rejections {
    fn from(first: Rejection) -> Self {
        Rejections {
            first,
            rest: Vec::new(),
        }
    }
}

impl fmt::Display for Rejections {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.reason())
    }
}

impl std::error::Error for Rejections {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_name_the_part_and_the_fix() {
        let too_long = Rejection::TooLong {
            part: 2,
            bytes: 501,
            limit: 500,
        };
        assert_eq!(too_long.code(), "text_too_long");
        assert_eq!(too_long.part(), Some(2));
        assert!(too_long.reason().starts_with("Part 2 is 501 bytes long"));
        assert!(too_long.reason().contains("Remove 1 byte or split"));
        let term = Rejection::ProhibitedTerm {
            part: 1,
            field: "topic_tag",
            term: "Glimmr".into(),
        };
        assert!(
            term.to_string()
                .contains("Part 1 (topic_tag) contains \"Glimmr\"")
        );
    }

    #[test]
    fn long_links_are_abbreviated_in_messages_only() {
        let link = format!("https://a.example/{}", "x".repeat(600));
        let r = Rejection::UnsplittableLink {
            link: link.clone(),
            bytes: link.len(),
            limit: 494,
        };
        assert!(r.reason().len() < 400);
        assert!(r.reason().contains("…"));
        assert!(matches!(r, Rejection::UnsplittableLink { link: ref l, .. } if *l == link));
    }

    #[test]
    fn rejections_are_never_empty() {
        assert!(Rejections::from_vec(Vec::new()).is_none());
        let r = Rejections::from(Rejection::NoParts);
        assert_eq!(r.code(), "no_parts");
        assert_eq!(r.count(), 1);
    }
}
