//! Text folding shared by brand matching and duplicate detection: two texts a reader cannot tell
//! apart (full-width letters, hidden joiners, different case or spacing) fold to the same string.
//!
//! Folding is: drop invisible characters, NFKC, lowercase, then drop and NFKC once more (lowercasing
//! and dropping can each leave a string that NFKC would change again, and folding must be
//! idempotent). Lowercase is Rust's full Unicode lowercase, not full case folding: `ß` and `ss`
//! stay different, which only matters for brand terms spelt with them.

use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;
use unicode_segmentation::UnicodeSegmentation;

/// Unicode's Default_Ignorable_Code_Point ranges (DerivedCoreProperties): characters that render
/// as nothing. They include the ones used to break up a brand name — U+200B–U+200D, U+2060,
/// U+FEFF, the soft hyphen U+00AD — and also bidi controls, variation selectors and tag
/// characters, which hide words just as well.
const INVISIBLE: &[(char, char)] = &[
    ('\u{00AD}', '\u{00AD}'),
    ('\u{034F}', '\u{034F}'),
    ('\u{061C}', '\u{061C}'),
    ('\u{115F}', '\u{1160}'),
    ('\u{17B4}', '\u{17B5}'),
    ('\u{180B}', '\u{180F}'),
    ('\u{200B}', '\u{200F}'),
    ('\u{202A}', '\u{202E}'),
    ('\u{2060}', '\u{206F}'),
    ('\u{3164}', '\u{3164}'),
    ('\u{FE00}', '\u{FE0F}'),
    ('\u{FEFF}', '\u{FEFF}'),
    ('\u{FFA0}', '\u{FFA0}'),
    ('\u{FFF0}', '\u{FFF8}'),
    ('\u{1BCA0}', '\u{1BCA3}'),
    ('\u{1D173}', '\u{1D17A}'),
    ('\u{E0000}', '\u{E0FFF}'),
];

/// Whether `c` renders as nothing (see [`INVISIBLE`]).
pub fn is_invisible(c: char) -> bool {
    INVISIBLE.iter().any(|&(lo, hi)| (lo..=hi).contains(&c))
}

/// Invisible characters removed, NFKC, lowercase. Whitespace is left as it is.
pub fn fold(text: &str) -> String {
    let once: String = text
        .chars()
        .filter(|&c| !is_invisible(c))
        .nfkc()
        .flat_map(char::to_lowercase)
        .collect();
    once.chars().filter(|&c| !is_invisible(c)).nfkc().collect()
}

/// The form in which two posts count as the same content for the 24-hour duplicate check:
/// [`fold`]ed, every run of whitespace made one space, trimmed.
pub fn normalised_for_dedup(text: &str) -> String {
    let folded = fold(text);
    let mut out = String::with_capacity(folded.len());
    for word in folded.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out
}

/// The words of already-folded text, for whole-word matching: Unicode word segmentation
/// (UAX #29, which also separates CJK ideographs), then each word cut again at any character that
/// is neither alphanumeric nor a combining mark. The second cut makes `ace's`, `glimmr.com` and
/// `glimmr_official` contain the words `ace` and `glimmr`, while `aces`, `acetone` and
/// `glimmr2024` stay single words that match nothing.
pub fn words(folded: &str) -> impl Iterator<Item = &str> {
    folded.unicode_words().flat_map(|word| {
        word.split(|c: char| !(c.is_alphanumeric() || is_combining_mark(c)))
            .filter(|w| !w.is_empty())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn hidden_and_wide_letters_fold_to_plain_lowercase() {
        assert_eq!(fold("Glim\u{200D}mr"), "glimmr");
        assert_eq!(fold("ＧＬＩＭＭＲ"), "glimmr");
        assert_eq!(fold("A\u{200B}ce"), "ace");
        assert_eq!(fold("soft\u{00AD}ware"), "software");
        assert_eq!(fold("\u{FEFF}𝐆𝐥𝐢𝐦𝐦𝐫"), "glimmr");
        // Dropping a joiner between a letter and its accent lets the accent compose.
        assert_eq!(fold("e\u{200B}\u{301}"), "é");
    }

    #[test]
    fn dedup_form_collapses_spacing_and_case() {
        assert_eq!(
            normalised_for_dedup("  Hello,\u{00A0}\n\tWORLD \u{200B} "),
            "hello, world"
        );
        assert_eq!(normalised_for_dedup("\u{200B}\u{2060} \n"), "");
    }

    #[test]
    fn words_split_at_punctuation_inside_words() {
        let w = |s: &str| words(&fold(s)).map(str::to_owned).collect::<Vec<_>>();
        assert_eq!(
            w("Ace's glimmr.com #Glimmr"),
            ["ace", "s", "glimmr", "com", "glimmr"]
        );
        assert_eq!(
            w("aces glimmr2024 glimmr_official"),
            ["aces", "glimmr2024", "glimmr", "official"]
        );
        assert_eq!(w("品牌名"), ["品", "牌", "名"]);
        // A virama is a combining mark, so a Devanagari word stays whole.
        assert_eq!(w("नमस्ते दुनिया"), ["नमस्ते", "दुनिया"]);
    }

    proptest! {
        #[test]
        fn folding_is_idempotent(text in any::<String>()) {
            let once = fold(&text);
            prop_assert_eq!(fold(&once), once.clone());
            let dedup = normalised_for_dedup(&text);
            prop_assert_eq!(normalised_for_dedup(&dedup), dedup);
        }

        #[test]
        fn folding_is_idempotent_on_tricky_characters(
            text in proptest::collection::vec(
                prop_oneof![
                    Just('\u{200D}'), Just('\u{00AD}'), Just('\u{301}'), Just('\u{3164}'),
                    Just('\u{FFA0}'), Just('\u{0130}'), Just('ẞ'), Just('Σ'), Just('ǅ'),
                    Just('\u{00A0}'), Just('\u{2000}'), Just('e'), Just(' '), Just('\u{1100}'),
                    Just('\u{1161}'), Just('\u{11A8}'), Just('ﬁ'), Just('㈀'), Just('\u{0345}'),
                    Just('\u{0F73}'), Just('ｶ'), Just('\u{FF9E}'), any::<char>(),
                ],
                0..24,
            ).prop_map(|cs| cs.into_iter().collect::<String>())
        ) {
            let once = fold(&text);
            prop_assert_eq!(fold(&once), once.clone());
            let dedup = normalised_for_dedup(&text);
            prop_assert_eq!(normalised_for_dedup(&dedup), dedup);
        }
    }
}
