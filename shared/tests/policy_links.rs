//! The content policy and the Threads emulator must agree on links: a post the policy lets
//! through must not then fail at container creation with the link limit, or a storm could stop
//! half-published. The policy may count more strictly than the emulator, never more loosely.

use proptest::prelude::*;
use threadstorm::policy::{ContentPolicy, PostDraft, Rejection};

/// Link-like words as people write them: schemes in either case, `www.`, paths with queries,
/// fragments, trailing slashes and Wikipedia-style brackets, wrapped in sentence punctuation.
fn word() -> impl Strategy<Value = String> {
    prop_oneof![
        "[(\"']?(https?|HTTPS?)://(www\\.)?[a-cA-C]{1,3}\\.[a-c]{2,3}(/[a-cA-C0-9./_#?=&%-]{0,6}(_\\(b\\))?)?[.,;:!?)'\"]{0,2}",
        "[(\"']?(www|WWW)\\.[a-c]{1,3}\\.[a-c]{2,3}(/[a-cA-C0-9./_#?=&%-]{0,6}(_\\(b\\))?)?[.,)]{0,2}",
        "[a-z]{1,4}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    #[test]
    fn the_policy_never_accepts_links_the_emulator_refuses(
        words in proptest::collection::vec(word(), 5..9),
        attachment in proptest::option::of("https://[a-c]{1,2}\\.[a-c]{2}/?"),
    ) {
        let text = words.join(" ");
        let emulator = threads_emulator::unique_links(&text, attachment.as_deref());
        let mut post = PostDraft::text(text.clone());
        post.link_attachment = attachment.clone();
        let too_many = ContentPolicy::default()
            .check_post(&post)
            .err()
            .is_some_and(|r| r.iter().any(|r| matches!(r, Rejection::TooManyLinks { .. })));
        prop_assert!(
            emulator <= 5 || too_many,
            "the emulator counts {} links in {:?} (+ {:?}) but the policy accepts it",
            emulator, text, attachment
        );
    }
}
