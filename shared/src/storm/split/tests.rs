use proptest::prelude::*;
use unicode_segmentation::UnicodeSegmentation;

use super::*;

fn plain(text: &str) -> Vec<String> {
    split(text, SplitOptions::default()).expect("splits")
}

fn numbered(text: &str) -> Vec<String> {
    split(text, SplitOptions::numbered()).expect("splits")
}

fn with_limit(text: &str, limit_bytes: usize) -> Vec<String> {
    let options = SplitOptions {
        limit_bytes,
        numbering: Numbering::None,
    };
    split(text, options).expect("splits")
}

fn sentence(n: usize, len: usize) -> String {
    let body = format!("Sentence {n} ");
    let fill = "x".repeat(len.saturating_sub(body.len() + 1));
    format!("{body}{fill}.")
}

#[test]
fn a_text_that_fits_is_one_trimmed_unnumbered_part() {
    assert_eq!(plain("  Hello,\n\n  world!  \n"), ["Hello,\n\n  world!"]);
    assert_eq!(numbered("Hello"), ["Hello"]);
    let exactly = format!("{}🚀", "a".repeat(496));
    assert_eq!(plain(&exactly), std::slice::from_ref(&exactly));
    assert_eq!(numbered(&exactly), [exactly]);
}

#[test]
fn nothing_but_whitespace_is_refused() {
    for text in ["", "  \n\t ", "\u{3000}"] {
        assert_eq!(
            split(text, SplitOptions::default()),
            Err(Rejection::Empty { part: 1 })
        );
    }
}

#[test]
fn paragraphs_are_cut_at_blank_lines_first() {
    let p1 = sentence(1, 300);
    let p2 = format!("{}\n{}", sentence(2, 100), sentence(3, 100));
    let p3 = sentence(4, 300);
    let text = format!("{p1}\n\n{p2}\r\n \r\n{p3}");
    assert_eq!(plain(&text), [p1, p2, p3]);
}

#[test]
fn a_paragraph_too_long_is_cut_between_sentences() {
    let sentences: Vec<String> = (1..=6).map(|n| sentence(n, 150)).collect();
    let text = sentences.join(" ");
    // Three 150-byte sentences and two spaces fill 452 bytes; a fourth would not fit.
    assert_eq!(
        plain(&text),
        [sentences[..3].join(" "), sentences[3..].join(" ")]
    );
}

#[test]
fn a_sentence_too_long_is_cut_at_spaces() {
    let words: Vec<String> = (0..120).map(|i| format!("word{i:03}")).collect();
    let text = words.join(" ");
    let parts = plain(&text);
    assert!(parts.iter().all(|p| p.len() <= 500));
    assert_eq!(parts.join(" "), text);
    // 62 seven-byte words and their spaces fill 495 bytes.
    assert_eq!(parts[0].split(' ').count(), 62);
}

#[test]
fn cjk_without_spaces_is_cut_between_sentences_then_characters() {
    let sentence = "今日は晴れです。"; // 24 bytes
    let text = sentence.repeat(30);
    let parts = plain(&text);
    assert!(parts.iter().all(|p| p.len() <= 500 && p.ends_with('。')));
    assert_eq!(parts.concat(), text);
    let run = "漢".repeat(200); // 600 bytes, one sentence, no spaces
    let parts = plain(&run);
    assert_eq!(
        parts.iter().map(String::len).collect::<Vec<_>>(),
        [498, 102]
    );
    assert_eq!(parts.concat(), run);
}

#[test]
fn a_word_longer_than_a_part_is_cut_between_grapheme_clusters() {
    for cluster in ["👨‍👩‍👧‍👦", "🇫🇷", "e\u{301}", "👍🏽", "ก\u{E34}\u{E48}"]
    {
        let word = cluster.repeat(600 / cluster.len() + 3);
        let parts = plain(&word);
        assert!(parts.len() >= 2, "{cluster}");
        for part in &parts {
            assert!(part.len() <= 500);
            assert!(
                part.graphemes(true).all(|g| g == cluster),
                "{cluster:?} was cut"
            );
        }
        assert_eq!(parts.concat(), word);
    }
}

#[test]
fn a_link_is_never_cut_even_at_a_sentence_boundary_inside_it() {
    // Unicode sentence segmentation breaks after the `?` in a query string.
    let link = "https://example.com/search?Q=Rust&page=2";
    let filler = "word ".repeat(95);
    let text = format!("{filler}{link} and more words after it.");
    for limit in 470..=520 {
        let parts = with_limit(&text, limit);
        assert!(
            parts.iter().any(|p| p.contains(link)),
            "limit {limit}: {parts:?}"
        );
    }
}

#[test]
fn a_link_longer_than_a_part_is_refused_naming_it() {
    let link = format!("https://example.com/{}", "p".repeat(600));
    let text = format!("Read this: {link} now");
    let err = split(&text, SplitOptions::default()).unwrap_err();
    assert_eq!(
        err,
        Rejection::UnsplittableLink {
            link: link.clone(),
            bytes: link.len(),
            limit: 500
        }
    );
    assert_eq!(err.code(), "unsplittable_link");
    // With numbering the room is the limit less the suffix (` 1/2`, 4 bytes).
    let link = format!("https://example.com/{}", "p".repeat(477)); // 497 bytes
    let text = format!("Read this: {link} now");
    assert!(matches!(
        split(&text, SplitOptions::numbered()),
        Err(Rejection::UnsplittableLink { limit: 496, .. })
    ));
    assert!(split(&text, SplitOptions::default()).is_ok());
}

#[test]
fn a_grapheme_cluster_longer_than_a_part_is_refused() {
    let zalgo = format!("a{}", "\u{301}".repeat(300)); // one 601-byte cluster
    let err = split(&format!("ok {zalgo} ok"), SplitOptions::default()).unwrap_err();
    assert_eq!(
        err,
        Rejection::UnsplittableCharacter {
            bytes: 601,
            limit: 500
        }
    );
}

#[test]
fn numbered_parts_end_with_k_of_n_and_count_it() {
    let words: Vec<String> = (0..300).map(|i| format!("w{i:04}")).collect();
    let text = words.join(" ");
    let parts = numbered(&text);
    let n = parts.len();
    assert!(n > 2);
    for (i, part) in parts.iter().enumerate() {
        assert!(part.len() <= 500, "{}", part.len());
        assert!(part.ends_with(&format!(" {}/{n}", i + 1)), "{part}");
    }
    let bodies: Vec<&str> = parts
        .iter()
        .map(|p| p.rsplit_once(' ').unwrap().0)
        .collect();
    assert_eq!(bodies.join(" "), text);
}

#[test]
fn numbering_width_grows_from_nine_to_ten_parts() {
    // Four 123-byte words fill 495 bytes: room enough beside ` 9/9` (4 bytes), not beside
    // ` 10/10` (6 bytes). Forty words make ten parts of four at first, so the split is redone
    // with the two-digit reserve, three words a part.
    let word = "a".repeat(123);
    let text = vec![word.as_str(); 40].join(" ");
    let parts = numbered(&text);
    assert_eq!(parts.len(), 14);
    assert!(parts.iter().all(|p| p.len() <= 500));
    assert!(parts[13].ends_with(" 14/14"));
    assert!(parts[0].ends_with(" 1/14"));
    // Thirty-six words are nine full parts: one digit is enough and the parts are 499 bytes.
    let text = vec![word.as_str(); 36].join(" ");
    let parts = numbered(&text);
    assert_eq!(parts.len(), 9);
    assert!(parts.iter().all(|p| p.len() == 499));
}

#[test]
fn text_inside_a_part_is_kept_byte_for_byte() {
    let p1 = "Line one\nline  two\twith a tab.";
    let p2 = sentence(9, 480);
    let text = format!("{p1}\n\n\n{p2}");
    assert_eq!(plain(&text), [p1.to_owned(), p2]);
}

// --- properties ---------------------------------------------------------------------------

/// Checks everything a split promises about `text`, returning the parts' bodies.
fn assert_split_promises(text: &str, options: SplitOptions) -> Result<(), TestCaseError> {
    let doc = Doc::new(text);
    let result = split(text, options);
    let parts = match result {
        Ok(parts) => parts,
        Err(Rejection::Empty { .. }) => {
            prop_assert!(
                text.chars().all(char::is_whitespace) || doc.trim(0..text.len()).is_empty()
            );
            return Ok(());
        }
        Err(Rejection::UnsplittableLink { link, bytes, limit }) => {
            prop_assert!(bytes > limit && limit <= options.limit_bytes);
            prop_assert!(doc.links.iter().any(|l| text[l.clone()] == link));
            return Ok(());
        }
        Err(Rejection::UnsplittableCharacter { bytes, limit }) => {
            prop_assert!(bytes > limit && limit <= options.limit_bytes);
            prop_assert!(text.graphemes(true).any(|g| g.len() > limit));
            return Ok(());
        }
        Err(other) => return Err(TestCaseError::fail(format!("unexpected {other:?}"))),
    };
    prop_assert!(!parts.is_empty());
    let n = parts.len();
    let mut cursor = 0;
    for (i, part) in parts.iter().enumerate() {
        prop_assert!(
            part.len() <= options.limit_bytes,
            "{} > {}",
            part.len(),
            options.limit_bytes
        );
        let body = if options.numbering == Numbering::Suffix && n > 1 {
            let suffix = format!(" {}/{n}", i + 1);
            prop_assert!(part.ends_with(&suffix), "{part:?} lacks {suffix:?}");
            &part[..part.len() - suffix.len()]
        } else {
            part.as_str()
        };
        prop_assert!(!body.is_empty());
        let first = body.graphemes(true).next().unwrap_or_default();
        let last = body.graphemes(true).next_back().unwrap_or_default();
        prop_assert!(
            !first.chars().all(char::is_whitespace),
            "starts with whitespace: {body:?}"
        );
        prop_assert!(
            !last.chars().all(char::is_whitespace),
            "ends with whitespace: {body:?}"
        );
        // The body is the next slice of the text; only whitespace was dropped before it.
        let found = text[cursor..].find(body);
        prop_assert!(found.is_some(), "{body:?} is not in the text");
        let start = cursor + found.unwrap_or_default();
        prop_assert!(
            text[cursor..start].chars().all(char::is_whitespace),
            "dropped {:?}",
            &text[cursor..start]
        );
        let end = start + body.len();
        for cut in [start, end] {
            prop_assert!(
                doc.boundaries.binary_search(&cut).is_ok(),
                "cut at {cut} splits a grapheme"
            );
            prop_assert!(
                !doc.links.iter().any(|l| l.start < cut && cut < l.end),
                "cut at {cut} splits a link"
            );
        }
        cursor = end;
    }
    prop_assert!(text[cursor..].chars().all(char::is_whitespace));
    Ok(())
}

/// Text built from the hard cases: words, sentences, paragraphs, emoji sequences, flags,
/// combining marks, CJK without spaces, links with query strings.
fn storm_text() -> impl Strategy<Value = String> {
    let token = prop_oneof![
        4 => "[a-zA-Z]{1,12}",
        1 => Just("👨‍👩‍👧‍👦".to_owned()),
        1 => Just("🇫🇷🇯🇵".to_owned()),
        1 => Just("cafe\u{301}".to_owned()),
        1 => Just("今日は晴れです。明日は雨。".to_owned()),
        1 => Just("https://example.com/a?q=1&r=Two#frag".to_owned()),
        1 => Just("www.example.org/path/".to_owned()),
        1 => "[a-z]{20,90}",
    ];
    let sep = prop_oneof![
        6 => Just(" "),
        2 => Just(". "),
        1 => Just("? "),
        1 => Just("\n"),
        1 => Just("\n\n"),
        1 => Just("  \r\n\r\n"),
    ];
    proptest::collection::vec((token, sep), 1..120).prop_map(|pairs| {
        pairs
            .into_iter()
            .map(|(t, s)| format!("{t}{s}"))
            .collect::<String>()
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn splits_of_arbitrary_text_keep_every_promise(
        text in any::<String>(),
        limit in 8usize..80,
        numbered in any::<bool>(),
    ) {
        let numbering = if numbered { Numbering::Suffix } else { Numbering::None };
        assert_split_promises(&text, SplitOptions { limit_bytes: limit, numbering })?;
    }

    #[test]
    fn splits_of_storm_like_text_keep_every_promise(
        text in storm_text(),
        limit in 40usize..600,
        numbered in any::<bool>(),
    ) {
        let numbering = if numbered { Numbering::Suffix } else { Numbering::None };
        assert_split_promises(&text, SplitOptions { limit_bytes: limit, numbering })?;
    }

    #[test]
    fn splits_at_500_bytes_never_exceed_500(text in storm_text(), numbered in any::<bool>()) {
        let options = if numbered { SplitOptions::numbered() } else { SplitOptions::default() };
        assert_split_promises(&text, options)?;
    }

    #[test]
    fn words_come_back_in_order(
        words in proptest::collection::vec("[a-zA-Z0-9,;'-]{1,15}", 1..300),
        seps in proptest::collection::vec(prop_oneof![Just(" "), Just(". "), Just("\n"), Just("\n\n")], 300),
        limit in 30usize..200,
        numbered in any::<bool>(),
    ) {
        let text: String = words.iter().zip(&seps).map(|(w, s)| format!("{w}{s}")).collect();
        let numbering = if numbered { Numbering::Suffix } else { Numbering::None };
        let parts = split(&text, SplitOptions { limit_bytes: limit, numbering })
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        let n = parts.len();
        let bodies: Vec<&str> = parts
            .iter()
            .map(|p| if numbering == Numbering::Suffix && n > 1 {
                p.rsplit_once(' ').map_or(p.as_str(), |(body, _)| body)
            } else {
                p.as_str()
            })
            .collect();
        let rejoined = bodies.join(" ");
        prop_assert_eq!(
            rejoined.split_whitespace().collect::<Vec<_>>(),
            text.split_whitespace().collect::<Vec<_>>()
        );
    }
}
