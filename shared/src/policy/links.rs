//! Finding links in post text: which spans the splitter must keep whole, and which links count
//! toward Threads' limit of five unique links per post.
//!
//! Spans come from the `linkify` crate (it gets the edges right around brackets and trailing
//! punctuation). Two notions, on purpose:
//! - [`url_spans`] is broad — anything that looks like a link, with or without a scheme (`Node.js`,
//!   `example.com/path`) — because keeping a non-link whole costs nothing when splitting.
//! - [`counted_links`] counts what Threads turns into a link for certain: `http://`, `https://`
//!   and `www.` links, the rule the Threads emulator follows too. A bare `example.com` is not
//!   counted: telling a domain from a dotted name such as `Node.js` needs the public-suffix list,
//!   and counting every dotted name would reject ordinary posts. If Threads is seen counting bare
//!   domains, change this and the emulator together.

use std::ops::Range;

use linkify::{LinkFinder, LinkKind};

/// Byte ranges of everything in `text` that looks like a link, scheme or not, in order.
pub fn url_spans(text: &str) -> Vec<Range<usize>> {
    let mut finder = LinkFinder::new();
    finder.kinds(&[LinkKind::Url]).url_must_have_scheme(false);
    finder
        .links(text)
        .filter_map(|l| {
            // linkify takes some Unicode spaces (U+2000 EN QUAD, …) for domain characters; a link
            // never starts or ends with whitespace.
            let span = &text[l.start()..l.end()];
            let trimmed = span.trim_matches(char::is_whitespace);
            if trimmed.is_empty() {
                return None;
            }
            let start =
                l.start() + (span.len() - span.trim_start_matches(char::is_whitespace).len());
            Some(start..start + trimmed.len())
        })
        .collect()
}

/// The links in `text` that count toward the link limit, as written, in order (repeats kept).
pub fn counted_links(text: &str) -> Vec<&str> {
    url_spans(text)
        .into_iter()
        .map(|r| &text[r])
        .filter(|link| scheme_len(link).is_some() || starts_with_ignore_case(link, "www."))
        .collect()
}

/// The identity of a link for uniqueness. Folded: the `http`/`https` scheme (the same page either
/// way), the case of the host (case-insensitive by RFC 3986), and one trailing `/` (`a.example`
/// and `a.example/` are one link). Kept as written: `www.` (another host), the path, query and
/// fragment, whose case servers may honour. Folding less than Threads might only ever counts a
/// link twice, which rejects here with a clear reason rather than at Threads mid-storm.
pub fn link_key(link: &str) -> String {
    let rest = match scheme_len(link) {
        Some(n) => &link[n..],
        None => link,
    };
    let host_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (host, tail) = rest.split_at(host_end);
    let tail = tail.strip_suffix('/').unwrap_or(tail);
    let mut key = host.to_lowercase();
    key.push_str(tail);
    key
}

/// Whether `raw` is an absolute `http(s)` URL with a host, as `link_attachment` must be.
pub fn is_http_url(raw: &str) -> bool {
    parsed_with_host(raw).is_some_and(|u| matches!(u.scheme(), "http" | "https"))
}

/// Whether `raw` is an absolute `https` URL with a host, as media URLs must be (Meta's crawler
/// fetches them, and ThreadStorm never hands out plain-http media).
pub fn is_https_url(raw: &str) -> bool {
    parsed_with_host(raw).is_some_and(|u| u.scheme() == "https")
}

fn parsed_with_host(raw: &str) -> Option<url::Url> {
    // The URL parser would quietly strip surrounding spaces and percent-encode control
    // characters; a value with any is not one URL.
    if raw
        .chars()
        .any(|c| c.is_whitespace() || super::disallowed_character(c))
    {
        return None;
    }
    url::Url::parse(raw)
        .ok()
        .filter(|u| u.host_str().is_some_and(|h| !h.is_empty()))
}

/// The length of a leading `http://` or `https://`, any case.
fn scheme_len(link: &str) -> Option<usize> {
    ["https://", "http://"]
        .into_iter()
        .find(|p| starts_with_ignore_case(link, p))
        .map(str::len)
}

fn starts_with_ignore_case(s: &str, prefix: &str) -> bool {
    s.get(..prefix.len())
        .is_some_and(|head| head.eq_ignore_ascii_case(prefix))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_link_never_starts_or_ends_with_a_unicode_space() {
        for span in url_spans("\u{2000}.Aa and \u{2000}a.example\u{2000}") {
            let text = "\u{2000}.Aa and \u{2000}a.example\u{2000}";
            let link = &text[span];
            assert_eq!(link, link.trim_matches(char::is_whitespace), "{link:?}");
        }
    }

    #[test]
    fn spans_include_bare_domains_and_leave_punctuation_out() {
        let text = "see (https://en.wikipedia.org/wiki/Foo_(bar)), example.com/x?y=1. and Node.js";
        let spans: Vec<&str> = url_spans(text).into_iter().map(|r| &text[r]).collect();
        assert_eq!(
            spans,
            [
                "https://en.wikipedia.org/wiki/Foo_(bar)",
                "example.com/x?y=1",
                "Node.js"
            ]
        );
    }

    #[test]
    fn only_scheme_and_www_links_are_counted() {
        let text =
            "HTTPS://A.example/x, www.b.example, c.example, Node.js, ftp://d.example, me@e.example";
        assert_eq!(
            counted_links(text),
            ["HTTPS://A.example/x", "www.b.example"]
        );
    }

    #[test]
    fn keys_fold_scheme_host_case_and_one_trailing_slash() {
        assert_eq!(link_key("HTTPS://A.Example/Path/"), "a.example/Path");
        assert_eq!(link_key("http://a.example"), link_key("https://a.example/"));
        assert_ne!(
            link_key("https://a.example/X"),
            link_key("https://a.example/x")
        );
        assert_ne!(link_key("www.a.example"), link_key("https://a.example"));
        assert_ne!(
            link_key("https://a.example/#one"),
            link_key("https://a.example/#two")
        );
        assert_eq!(link_key("https://a.example?q=1"), "a.example?q=1");
    }

    #[test]
    fn attachment_and_media_urls_are_checked_strictly() {
        assert!(is_http_url("https://a.example/x"));
        assert!(is_http_url("http://a.example"));
        assert!(!is_http_url("ftp://a.example"));
        assert!(!is_http_url("a.example"));
        assert!(!is_http_url("https://"));
        assert!(!is_http_url(" https://a.example"));
        assert!(!is_http_url("javascript:alert(1)"));
        assert!(is_https_url("https://cdn.example/a.jpg"));
        assert!(!is_https_url("http://cdn.example/a.jpg"));
        assert!(!is_https_url("file:///etc/passwd"));
    }
}
