//! The content fingerprint behind the 24-hour duplicate check: one account posting the same
//! content again within a day is refused, however the copy was re-typed (case, spacing, hidden
//! characters, full-width letters).

use sha2::{Digest, Sha256};

use super::draft::{DraftMedia, ItemKind, PostDraft};
use super::normalise::normalised_for_dedup;

/// Bumped if what goes into the hash ever changes, so old and new fingerprints never collide.
const DOMAIN: &[u8] = b"threadstorm/content-fingerprint/v1";

/// SHA-256 (lowercase hex) over the account and, for each part in order, what a reader sees:
/// the text in [`normalised_for_dedup`] form, the media kind and URLs, and the link attachment.
/// Topic tag, alt text and reply control are left out: the same words and pictures under another
/// tag are still the same post to a reader.
///
/// Every field is length-prefixed, so no two different inputs share an encoding (no separator
/// character can be forged from inside a text). A missing text and an empty one are the same.
pub fn content_fingerprint(account_id: &str, parts: &[PostDraft]) -> String {
    let mut hash = Hash(Sha256::new());
    hash.field(DOMAIN);
    hash.field(account_id.as_bytes());
    hash.count(parts.len());
    for part in parts {
        hash.field(normalised_for_dedup(part.text.as_deref().unwrap_or_default()).as_bytes());
        match &part.media {
            DraftMedia::Text => hash.field(b"text"),
            DraftMedia::Image { url } => {
                hash.field(b"image");
                hash.field(url.as_bytes());
            }
            DraftMedia::Video { url } => {
                hash.field(b"video");
                hash.field(url.as_bytes());
            }
            DraftMedia::Carousel { items } => {
                hash.field(b"carousel");
                hash.count(items.len());
                for item in items {
                    hash.field(match item.kind {
                        ItemKind::Image => b"image",
                        ItemKind::Video => b"video",
                    });
                    hash.field(item.url.as_bytes());
                }
            }
        }
        match &part.link_attachment {
            None => hash.field(b"no-link"),
            Some(link) => {
                hash.field(b"link");
                hash.field(link.as_bytes());
            }
        }
    }
    hex::encode(hash.0.finalize())
}

struct Hash(Sha256);

impl Hash {
    fn field(&mut self, bytes: &[u8]) {
        self.count(bytes.len());
        self.0.update(bytes);
    }

    fn count(&mut self, n: usize) {
        self.0.update((n as u64).to_be_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::draft::CarouselItem;
    use proptest::prelude::*;

    fn texts(parts: &[&str]) -> Vec<PostDraft> {
        parts.iter().map(|t| PostDraft::text(*t)).collect()
    }

    #[test]
    fn retyped_copies_have_the_same_fingerprint() {
        let a = content_fingerprint("acct-1", &texts(&["Hello  World", "Part two"]));
        let b = content_fingerprint(
            "acct-1",
            &texts(&[" hello\u{200B} world\n", "ＰＡＲＴ\ttwo"]),
        );
        assert_eq!(a, b);
        assert_eq!(a.len(), 64);
        assert!(
            a.chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        );
    }

    #[test]
    fn account_part_boundaries_and_media_tell_content_apart() {
        let base = content_fingerprint("acct-1", &texts(&["ab", "c"]));
        assert_ne!(base, content_fingerprint("acct-2", &texts(&["ab", "c"])));
        assert_ne!(base, content_fingerprint("acct-1", &texts(&["a", "bc"])));
        assert_ne!(base, content_fingerprint("acct-1", &texts(&["ab c"])));
        assert_ne!(
            base,
            content_fingerprint("acct-1", &texts(&["ab", "c", ""]))
        );
        // An account id cannot absorb the start of a part.
        assert_ne!(
            content_fingerprint("acct-1a", &texts(&["b"])),
            content_fingerprint("acct-1", &texts(&["ab"]))
        );
        let image = |url: &str| vec![PostDraft::image(url).with_text("look")];
        assert_ne!(
            content_fingerprint("acct-1", &image("https://cdn.example/1.jpg")),
            content_fingerprint("acct-1", &image("https://cdn.example/2.jpg"))
        );
        assert_ne!(
            content_fingerprint("acct-1", &image("https://cdn.example/1.jpg")),
            content_fingerprint("acct-1", &texts(&["look"]))
        );
        let carousel = |kind| {
            vec![PostDraft::carousel(vec![CarouselItem {
                kind,
                url: "https://cdn.example/1".into(),
                alt_text: None,
            }])]
        };
        assert_ne!(
            content_fingerprint("acct-1", &carousel(ItemKind::Image)),
            content_fingerprint("acct-1", &carousel(ItemKind::Video))
        );
        let linked = vec![PostDraft::text("read").with_link_attachment("https://a.example")];
        assert_ne!(
            content_fingerprint("acct-1", &linked),
            content_fingerprint("acct-1", &texts(&["read"]))
        );
    }

    #[test]
    fn tag_and_reply_control_do_not_make_a_copy_new() {
        let plain = texts(&["same words"]);
        let tagged = vec![
            PostDraft::text("same words")
                .with_topic_tag("news")
                .with_reply_control("mentioned_only"),
        ];
        assert_eq!(
            content_fingerprint("acct-1", &plain),
            content_fingerprint("acct-1", &tagged)
        );
    }

    proptest! {
        #[test]
        fn fingerprint_depends_only_on_the_normalised_text(
            parts in proptest::collection::vec(any::<String>(), 0..4)
        ) {
            let drafts: Vec<PostDraft> = parts.iter().map(PostDraft::text).collect();
            let normalised: Vec<PostDraft> = parts
                .iter()
                .map(|p| PostDraft::text(normalised_for_dedup(p)))
                .collect();
            prop_assert_eq!(
                content_fingerprint("acct", &drafts),
                content_fingerprint("acct", &normalised)
            );
        }
    }
}
