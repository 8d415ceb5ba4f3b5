use proptest::prelude::*;

use super::*;

fn b1() -> ContentPolicy {
    ContentPolicy::new(ProhibitedTerms::new(["Glimmr", "Ace"]).unwrap())
}

fn only(result: Result<(), Rejections>) -> Rejection {
    let rejections = result.expect_err("rejected");
    assert_eq!(rejections.count(), 1, "{rejections}");
    rejections.first().clone()
}

fn text_of(a: usize, tail: &str) -> String {
    format!("{}{tail}", "a".repeat(a))
}

#[test]
fn p1_500_bytes_with_an_emoji_is_accepted() {
    let text = text_of(496, "🚀");
    assert_eq!(text.len(), 500);
    assert_eq!(
        ContentPolicy::default().check_post(&PostDraft::text(text)),
        Ok(())
    );
}

#[test]
fn p1_501_bytes_is_rejected_as_too_long() {
    let r = only(ContentPolicy::default().check_post(&PostDraft::text(text_of(497, "🚀"))));
    assert_eq!(
        r,
        Rejection::TooLong {
            part: 1,
            bytes: 501,
            limit: 500
        }
    );
    assert_eq!(r.code(), "text_too_long");
}

#[test]
fn p1_498_characters_of_504_bytes_is_rejected() {
    let text = text_of(495, "’’’");
    assert_eq!(text.chars().count(), 498);
    let r = only(ContentPolicy::default().check_post(&PostDraft::text(text)));
    assert_eq!(
        r,
        Rejection::TooLong {
            part: 1,
            bytes: 504,
            limit: 500
        }
    );
}

#[test]
fn p1_storm_with_a_501_byte_part_2_is_rejected_whole_naming_part_2() {
    let storm = [
        PostDraft::text("Part one is fine."),
        PostDraft::text(text_of(497, "🚀")),
        PostDraft::text("Part three is fine."),
    ];
    let r = only(ContentPolicy::default().check_storm(&storm));
    assert_eq!(r.part(), Some(2));
    assert!(r.reason().starts_with("Part 2 is 501 bytes long"), "{r}");
}

#[test]
fn p1_neighbours_at_the_byte_limit() {
    let policy = ContentPolicy::default();
    // Exactly 500 bytes of various widths pass; one more byte fails.
    for text in [
        "a".repeat(500),
        "é".repeat(250),
        format!("{}{}", "’".repeat(166), "ab"),
        "🚀".repeat(125),
        // A family emoji (ZWJ sequence of 25 bytes) counted by bytes, not graphemes.
        format!("{}{}", "👨‍👩‍👧‍👦".repeat(19), "a".repeat(25)),
    ] {
        assert_eq!(text.len(), 500);
        assert_eq!(policy.check_post(&PostDraft::text(text.clone())), Ok(()));
        let longer = format!("{text}a");
        assert_eq!(
            only(policy.check_post(&PostDraft::text(longer))).code(),
            "text_too_long"
        );
    }
    // Captions count too.
    let caption = PostDraft::image("https://cdn.example/a.jpg").with_text("’".repeat(167));
    assert_eq!(only(policy.check_post(&caption)).code(), "text_too_long");
}

#[test]
fn empty_text_posts_are_rejected_but_captionless_media_is_not() {
    let policy = ContentPolicy::default();
    for text in ["", "   \n\t", "\u{200B}\u{FEFF}"] {
        assert_eq!(
            only(policy.check_post(&PostDraft::text(text))),
            Rejection::Empty { part: 1 }
        );
    }
    let no_text = PostDraft {
        text: None,
        ..PostDraft::text("")
    };
    assert_eq!(only(policy.check_post(&no_text)).code(), "empty_text");
    assert_eq!(
        policy.check_post(&PostDraft::image("https://cdn.example/a.jpg")),
        Ok(())
    );
}

#[test]
fn b1_terms_are_rejected_naming_the_configured_term() {
    let policy = b1();
    for (text, term) in [
        ("Try Glim\u{200D}mr today", "Glimmr"),
        ("Try ＧＬＩＭＭＲ today", "Glimmr"),
        ("ACE deals!", "Ace"),
    ] {
        let r = only(policy.check_post(&PostDraft::text(text)));
        assert_eq!(
            r,
            Rejection::ProhibitedTerm {
                part: 1,
                field: "text",
                term: term.into()
            },
            "{text}"
        );
        assert_eq!(r.code(), "prohibited_term");
        assert!(r.reason().contains(&format!("\"{term}\"")));
    }
}

#[test]
fn b1_ordinary_words_are_accepted() {
    let policy = b1();
    for text in ["Our space program", "Acetone is flammable", "aces high"] {
        assert_eq!(policy.check_post(&PostDraft::text(text)), Ok(()), "{text}");
    }
}

#[test]
fn b1_every_part_of_a_storm_is_checked() {
    let policy = b1();
    let storm = [
        PostDraft::text("Our space program"),
        PostDraft::text("Acetone is flammable"),
        PostDraft::text("Try Glim\u{200D}mr today"),
        PostDraft::text("and ACE deals!"),
    ];
    let rejections = policy.check_storm(&storm).expect_err("rejected");
    let found: Vec<(Option<usize>, &str)> = rejections
        .iter()
        .map(|r| match r {
            Rejection::ProhibitedTerm { part, term, .. } => (Some(*part), term.as_str()),
            other => (other.part(), other.code()),
        })
        .collect();
    assert_eq!(found, [(Some(3), "Glimmr"), (Some(4), "Ace")]);
}

#[test]
fn terms_are_checked_in_tags_and_alt_text_too() {
    let policy = b1();
    let tagged = PostDraft::text("hello").with_topic_tag("Glimmr fans");
    assert!(matches!(
        only(policy.check_post(&tagged)),
        Rejection::ProhibitedTerm {
            field: "topic_tag",
            ..
        }
    ));
    let described = PostDraft::image("https://cdn.example/a.jpg").with_alt_text("an ace card");
    assert!(matches!(
        only(policy.check_post(&described)),
        Rejection::ProhibitedTerm {
            field: "alt_text",
            ..
        }
    ));
}

#[test]
fn control_characters_and_bidi_overrides_are_refused_where_a_reader_sees_them() {
    let policy = b1();
    for (post, field, shown) in [
        (PostDraft::text("a\u{0}b"), "text", "U+0000"),
        (PostDraft::text("colour \u{1b}[31mred"), "text", "U+001B"),
        (PostDraft::text("c1 \u{85} control"), "text", "U+0085"),
        // Shown as "Glimmr" although stored backwards, which the term list would not see.
        (PostDraft::text("\u{202E}rmmilG"), "text", "U+202E"),
        (
            PostDraft::text("a").with_topic_tag("tag\u{7f}"),
            "topic_tag",
            "U+007F",
        ),
        (
            PostDraft::image("https://cdn.example/a.jpg").with_alt_text("\u{202D}alt"),
            "alt_text",
            "U+202D",
        ),
    ] {
        let r = only(policy.check_post(&post));
        assert!(
            matches!(r, Rejection::InvalidField { field: f, .. } if f == field),
            "{r:?}"
        );
        assert!(r.reason().contains(shown), "{}", r.reason());
    }
    // Line breaks, tabs, right-to-left text and its marks and emoji sequences are text.
    for fine in [
        "line one\nline two\r\n\tindented",
        "שלום עולם \u{200F}(RLM) مرحبا",
        "family 👨\u{200D}👩\u{200D}👧 and ❤\u{FE0F}",
    ] {
        assert_eq!(
            policy.check_post(&PostDraft::text(fine)),
            Ok(()),
            "{fine:?}"
        );
    }
}

#[test]
fn five_unique_links_pass_and_six_fail() {
    let policy = ContentPolicy::default();
    let five = "https://a.example https://b.example/x www.c.example http://d.example e.example/x?y \
                https://f.example";
    // e.example has no scheme and no www., so it is not counted: five links.
    assert_eq!(policy.check_post(&PostDraft::text(five)), Ok(()));
    let r = only(policy.check_post(&PostDraft::text(format!("{five} https://g.example"))));
    assert!(
        matches!(&r, Rejection::TooManyLinks { part: 1, count: 6, limit: 5, links } if links.len() == 6),
        "{r:?}"
    );
    assert_eq!(r.code(), "too_many_links");
    assert!(r.reason().contains("https://g.example"));
}

#[test]
fn repeated_links_count_once() {
    let policy = ContentPolicy::default();
    let text = "https://a.example HTTPS://A.EXAMPLE/ http://a.example (https://a.example). \
                https://b.example https://c.example https://d.example https://e.example";
    assert_eq!(policy.check_post(&PostDraft::text(text)), Ok(()));
    // The attachment is the same link as one in the text: still five.
    let same = PostDraft::text(text).with_link_attachment("https://b.example/");
    assert_eq!(policy.check_post(&same), Ok(()));
    // A differing attachment is the sixth.
    let other = PostDraft::text(text).with_link_attachment("https://f.example");
    assert_eq!(only(policy.check_post(&other)).code(), "too_many_links");
}

#[test]
fn link_attachment_must_be_an_http_url_on_a_text_post() {
    let policy = ContentPolicy::default();
    for bad in [
        "",
        "a.example",
        "ftp://a.example",
        "javascript:alert(1)",
        "https://",
    ] {
        let post = PostDraft::text("hi").with_link_attachment(bad);
        assert!(
            matches!(
                only(policy.check_post(&post)),
                Rejection::InvalidField {
                    field: "link_attachment",
                    ..
                }
            ),
            "{bad:?}"
        );
    }
    let on_image =
        PostDraft::image("https://cdn.example/a.jpg").with_link_attachment("https://a.example");
    let r = only(policy.check_post(&on_image));
    assert!(r.reason().contains("only allowed on text posts"), "{r}");
    let ok = PostDraft::text("hi").with_link_attachment("http://a.example/page");
    assert_eq!(policy.check_post(&ok), Ok(()));
}

#[test]
fn topic_tags_follow_threads_rules() {
    let policy = ContentPolicy::default();
    for good in ["r", "rust lang", &"x".repeat(50), &"é".repeat(50)] {
        let post = PostDraft::text("hi").with_topic_tag(good);
        assert_eq!(policy.check_post(&post), Ok(()), "{good:?}");
    }
    for bad in [
        "",
        "  ",
        &"x".repeat(51),
        "node.js",
        "R&D",
        "node．js",
        "R＆D",
    ] {
        let post = PostDraft::text("hi").with_topic_tag(bad);
        assert!(
            matches!(
                only(policy.check_post(&post)),
                Rejection::InvalidField {
                    field: "topic_tag",
                    ..
                }
            ),
            "{bad:?}"
        );
    }
}

#[test]
fn alt_text_is_limited_to_1000_characters() {
    let policy = ContentPolicy::default();
    let ok = PostDraft::image("https://cdn.example/a.jpg").with_alt_text("é".repeat(1000));
    assert_eq!(policy.check_post(&ok), Ok(()));
    let long = PostDraft::image("https://cdn.example/a.jpg").with_alt_text("é".repeat(1001));
    assert!(
        only(policy.check_post(&long))
            .reason()
            .contains("1001 characters")
    );
}

#[test]
fn media_urls_must_be_https_and_are_not_echoed() {
    let policy = ContentPolicy::default();
    let image = PostDraft::image("http://cdn.example/a.jpg?sig=secret");
    let r = only(policy.check_post(&image));
    assert!(matches!(
        r,
        Rejection::InvalidField {
            field: "image_url",
            ..
        }
    ));
    assert!(!r.reason().contains("secret"));
    let video = PostDraft::video("not a url");
    assert!(matches!(
        only(policy.check_post(&video)),
        Rejection::InvalidField {
            field: "video_url",
            ..
        }
    ));
    assert_eq!(
        policy.check_post(&PostDraft::video("https://cdn.example/v.mp4")),
        Ok(())
    );
    // A control character or a bidi override is not part of a URL, wherever it sits.
    for bad in [
        "https://cdn.example/a\u{0}.jpg",
        "https://cdn.example/a\u{1b}.jpg",
        "https://cdn.example/a\u{7f}.jpg",
        "https://cdn.example/a\u{9b}.jpg",
        "https://cdn.example/\u{202E}gpj.a",
    ] {
        let r = only(policy.check_post(&PostDraft::image(bad)));
        assert!(
            matches!(
                r,
                Rejection::InvalidField {
                    field: "image_url",
                    ..
                }
            ),
            "{bad:?}"
        );
        assert!(
            r.reason().contains("control character U+"),
            "{}",
            r.reason()
        );
        let attached = PostDraft::text("see").with_link_attachment(bad);
        assert!(
            matches!(
                only(policy.check_post(&attached)),
                Rejection::InvalidField {
                    field: "link_attachment",
                    ..
                }
            ),
            "{bad:?}"
        );
    }
}

#[test]
fn carousels_hold_2_to_20_https_items() {
    let policy = ContentPolicy::default();
    let item = |url: &str| CarouselItem {
        kind: ItemKind::Image,
        url: url.into(),
        alt_text: None,
    };
    let good = |n: usize| PostDraft::carousel(vec![item("https://cdn.example/a.jpg"); n]);
    assert_eq!(policy.check_post(&good(2)), Ok(()));
    assert_eq!(policy.check_post(&good(20)), Ok(()));
    for n in [0, 1, 21] {
        let r = only(policy.check_post(&good(n)));
        assert!(
            matches!(
                r,
                Rejection::InvalidField {
                    field: "children",
                    ..
                }
            ),
            "{n}"
        );
        assert!(r.reason().contains(&format!("has {n}")));
    }
    let mixed = PostDraft::carousel(vec![
        item("https://cdn.example/a.jpg"),
        CarouselItem {
            kind: ItemKind::Video,
            url: "http://cdn.example/v.mp4".into(),
            alt_text: Some("x".repeat(1001)),
        },
    ]);
    let rejections = policy.check_post(&mixed).expect_err("rejected");
    let reasons: Vec<String> = rejections.iter().map(Rejection::reason).collect();
    assert_eq!(rejections.count(), 2, "{reasons:?}");
    assert!(reasons[0].contains("video_url of carousel item 2 must be an https URL"));
    assert!(reasons[1].contains("alt_text is 1001 characters"));
}

#[test]
fn reply_control_must_be_a_threads_name() {
    let policy = ContentPolicy::default();
    for name in [
        "everyone",
        "accounts_you_follow",
        "mentioned_only",
        "parent_post_author_only",
        "followers_only",
    ] {
        let post = PostDraft::text("hi").with_reply_control(name);
        assert_eq!(policy.check_post(&post), Ok(()));
        assert_eq!(reply_control(name).map(|c| c.as_str()), Some(name));
    }
    for bad in ["", "Everyone", "nobody", "followers"] {
        let post = PostDraft::text("hi").with_reply_control(bad);
        let r = only(policy.check_post(&post));
        assert!(
            r.reason()
                .contains("must be one of everyone, accounts_you_follow")
        );
    }
}

#[test]
fn storms_must_have_between_1_and_99_parts() {
    let policy = ContentPolicy::default();
    assert_eq!(only(policy.check_storm(&[])), Rejection::NoParts);
    let part = PostDraft::text("hi");
    assert_eq!(policy.check_storm(&vec![part.clone(); 99]), Ok(()));
    assert_eq!(
        only(policy.check_storm(&vec![part; 100])),
        Rejection::TooManyParts {
            count: 100,
            limit: 99
        }
    );
}

#[test]
fn every_problem_is_reported_in_part_order() {
    let policy = b1();
    let storm = [
        PostDraft::text("fine"),
        PostDraft::text(format!("{} Ace", "a".repeat(500))).with_topic_tag("a.b"),
        PostDraft::text(""),
    ];
    let rejections = policy.check_storm(&storm).expect_err("rejected");
    let codes: Vec<(Option<usize>, &str)> =
        rejections.iter().map(|r| (r.part(), r.code())).collect();
    assert_eq!(
        codes,
        [
            (Some(2), "text_too_long"),
            (Some(2), "prohibited_term"),
            (Some(2), "invalid_field"),
            (Some(3), "empty_text"),
        ]
    );
    assert_eq!(rejections.code(), "text_too_long");
    assert!(rejections.reason().contains("Part 3 has no text"));
}

fn any_draft() -> impl Strategy<Value = PostDraft> {
    let opt = || proptest::option::of(any::<String>());
    let media = prop_oneof![
        Just(DraftMedia::Text),
        any::<String>().prop_map(|url| DraftMedia::Image { url }),
        any::<String>().prop_map(|url| DraftMedia::Video { url }),
        proptest::collection::vec((any::<String>(), opt()), 0..4).prop_map(|items| {
            DraftMedia::Carousel {
                items: items
                    .into_iter()
                    .map(|(url, alt_text)| CarouselItem {
                        kind: ItemKind::Image,
                        url,
                        alt_text,
                    })
                    .collect(),
            }
        }),
    ];
    (media, opt(), opt(), opt(), opt(), opt()).prop_map(
        |(media, text, link_attachment, topic_tag, alt_text, reply_control)| PostDraft {
            media,
            text,
            link_attachment,
            topic_tag,
            alt_text,
            reply_control,
        },
    )
}

proptest! {
    #[test]
    fn policy_never_panics_and_names_real_parts(
        storm in proptest::collection::vec(any_draft(), 0..4)
    ) {
        if let Err(rejections) = b1().check_storm(&storm) {
            for r in rejections.iter() {
                prop_assert!(!r.reason().is_empty());
                prop_assert!(!r.code().is_empty());
                if let Some(part) = r.part() {
                    prop_assert!((1..=storm.len()).contains(&part));
                }
            }
        }
    }

    #[test]
    fn texts_within_500_bytes_are_never_too_long(text in "\\PC{1,200}") {
        let verdict = ContentPolicy::default().check_post(&PostDraft::text(text.clone()));
        let too_long = verdict
            .err()
            .is_some_and(|r| r.iter().any(|r| r.code() == "text_too_long"));
        prop_assert_eq!(too_long, text.len() > TEXT_LIMIT_BYTES);
    }
}
