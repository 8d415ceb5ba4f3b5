//! Prohibited terms (brand protection): words and phrases no post may contain, matched as whole
//! words after folding (see [`super::normalise`]), so hidden joiners, full-width letters and case
//! do not get a term through, while longer words that merely contain it (`Acetone`) pass.

use super::normalise::{fold, words};

/// The terms used when `PROHIBITED_TERMS` is not set.
///
/// ThreadStorm publishes through Meta's API, so the misuse it must prevent is a post claiming a
/// partnership with, or an endorsement by, Meta or Threads. Bare names ("Meta", "Threads",
/// "Instagram") are not on the list: posts about Threads are the norm here. Phrases such as
/// "Threads official", "Meta approved" or "endorsed by Meta" are not either, because they turn up
/// in ordinary sentences ("Meta approved the change") and in disclaimers ("not endorsed by
/// Meta"). What is left are affirmative claims of a status that only Meta can grant. Operators
/// who need other terms (their clients' brands, say) set `PROHIBITED_TERMS`.
pub const DEFAULT_PROHIBITED_TERMS: &[&str] = &[
    "Official Meta Partner",
    "Official Threads Partner",
    "Meta Verified Partner",
    "Threads Verified Partner",
    "Meta Certified Partner",
    "Threads Certified Partner",
];

/// A term as configured, and the folded words it matches.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Term {
    configured: String,
    words: Vec<String>,
}

/// The compiled list of prohibited terms. Build it once (from configuration) and share it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProhibitedTerms {
    terms: Vec<Term>,
}

impl Default for ProhibitedTerms {
    fn default() -> Self {
        // The defaults are constants with words in them, so none is refused; `filter_map` keeps
        // this free of a panic path all the same.
        ProhibitedTerms {
            terms: DEFAULT_PROHIBITED_TERMS
                .iter()
                .filter_map(|t| Term::new(t).ok())
                .collect(),
        }
    }
}

impl ProhibitedTerms {
    /// Terms from a list. A term without any word in it (empty, punctuation, invisible
    /// characters) could never match, so it is refused as a configuration mistake; repeats are
    /// dropped.
    pub fn new<I, S>(terms: I) -> Result<Self, String>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut compiled: Vec<Term> = Vec::new();
        for term in terms {
            let term = Term::new(term.as_ref())?;
            if !compiled.iter().any(|t| t.words == term.words) {
                compiled.push(term);
            }
        }
        Ok(ProhibitedTerms { terms: compiled })
    }

    /// The `PROHIBITED_TERMS` format: comma-separated terms. Blank entries (a trailing comma)
    /// are skipped; a term cannot contain a comma.
    pub fn parse_list(value: &str) -> Result<Self, String> {
        let entries = value.split(',').map(str::trim).filter(|t| !t.is_empty());
        let terms = Self::new(entries)?;
        if terms.terms.is_empty() {
            return Err("lists no term; leave it unset for the default list".to_owned());
        }
        Ok(terms)
    }

    /// The terms as configured.
    pub fn terms(&self) -> impl Iterator<Item = &str> {
        self.terms.iter().map(|t| t.configured.as_str())
    }

    /// The first configured term that `text` contains as whole words, as configured.
    pub fn find_in(&self, text: &str) -> Option<&str> {
        if self.terms.is_empty() {
            return None;
        }
        let folded = fold(text);
        let text_words: Vec<&str> = words(&folded).collect();
        self.terms
            .iter()
            .find(|term| {
                text_words
                    .windows(term.words.len())
                    .any(|window| window.iter().eq(term.words.iter()))
            })
            .map(|term| term.configured.as_str())
    }
}

impl Term {
    fn new(configured: &str) -> Result<Self, String> {
        let configured = configured.trim();
        let folded = fold(configured);
        let words: Vec<String> = words(&folded).map(str::to_owned).collect();
        if words.is_empty() {
            return Err(format!("{configured:?} has no letters or digits to match"));
        }
        Ok(Term {
            configured: configured.to_owned(),
            words,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b1() -> ProhibitedTerms {
        ProhibitedTerms::new(["Glimmr", "Ace"]).unwrap()
    }

    #[test]
    fn b1_disguised_terms_are_found_and_named_as_configured() {
        let terms = b1();
        assert_eq!(terms.find_in("Try Glim\u{200D}mr today"), Some("Glimmr"));
        assert_eq!(terms.find_in("Try ＧＬＩＭＭＲ today"), Some("Glimmr"));
        assert_eq!(terms.find_in("ACE deals!"), Some("Ace"));
    }

    #[test]
    fn b1_words_that_merely_contain_a_term_pass() {
        let terms = b1();
        assert_eq!(terms.find_in("Our space program"), None);
        assert_eq!(terms.find_in("Acetone is flammable"), None);
    }

    #[test]
    fn b1_neighbours() {
        let terms = b1();
        // Same word, other disguises.
        for text in [
            "ＡＣＥ",
            "A\u{200B}ce",
            "a\u{00AD}ce",
            "\u{FEFF}Ace",
            "𝐀𝐜𝐞 deals",
            "#Glimmr",
            "@glimmr",
            "glimmr.com",
            "the glimmr_official account",
            "(Ace)",
            "ace-deals",
            "品牌 Ace 品牌",
        ] {
            assert!(terms.find_in(text).is_some(), "{text:?} should match");
        }
        // A possessive names the brand: `Ace's` is the word `Ace` and a suffix.
        assert_eq!(terms.find_in("Ace's deals"), Some("Ace"));
        assert_eq!(terms.find_in("Ace’s deals"), Some("Ace"));
        // Other words.
        for text in [
            "aces high",
            "Glimmrs",
            "glimmr2024",
            "faceted",
            "place",
            "Glimmer",
            "",
        ] {
            assert_eq!(terms.find_in(text), None, "{text:?} should pass");
        }
    }

    #[test]
    fn phrases_match_as_word_sequences() {
        let terms = ProhibitedTerms::new(["Meta Verified Partner"]).unwrap();
        assert!(terms.find_in("We are a META  verified\npartner!").is_some());
        assert!(terms.find_in("a Meta-Verified Partner").is_some());
        assert!(terms.find_in("Meta Verified partners").is_none());
        assert!(
            terms
                .find_in("Meta Verified is a partner program")
                .is_none()
        );
        assert!(terms.find_in("MetaVerified Partner").is_none());
    }

    #[test]
    fn default_terms_leave_ordinary_posts_about_threads_alone() {
        let terms = ProhibitedTerms::default();
        assert_eq!(terms.terms().count(), DEFAULT_PROHIBITED_TERMS.len());
        for text in [
            "New on Threads: storms!",
            "Meta approved the change to the Threads API today.",
            "ThreadStorm is not affiliated with or endorsed by Meta or Threads.",
            "Threads official docs say 500 bytes.",
            "I just got Meta Verified.",
        ]
        .into_iter()
        .chain(crate::product::DISCLAIMERS)
        {
            assert_eq!(terms.find_in(text), None, "{text}");
        }
        assert_eq!(
            terms.find_in("We are an official META partner"),
            Some("Official Meta Partner")
        );
    }

    #[test]
    fn configured_lists_are_checked() {
        let terms = ProhibitedTerms::parse_list(" Glimmr , Ace,, ace ,").unwrap();
        assert_eq!(terms.terms().collect::<Vec<_>>(), ["Glimmr", "Ace"]);
        assert!(ProhibitedTerms::parse_list(" , ,").is_err());
        let err = ProhibitedTerms::parse_list("Glimmr, \u{200B}, Ace").unwrap_err();
        assert!(err.contains("no letters or digits"), "{err}");
        assert!(ProhibitedTerms::parse_list("!!!").is_err());
    }

    #[test]
    fn an_empty_list_matches_nothing() {
        let none = ProhibitedTerms::new(Vec::<String>::new()).unwrap();
        assert_eq!(none.find_in("anything at all"), None);
    }
}
