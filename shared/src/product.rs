//! What ThreadStorm says about itself wherever users see it: name, version and the disclaimers.

use serde_json::{Value, json};

pub const NAME: &str = "ThreadStorm";
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Shown on every user-facing surface (the API root, the OAuth pages, the README).
pub const DISCLAIMERS: [&str; 3] = [
    "ThreadStorm is not affiliated with Meta Platforms, Inc.",
    "Threads is a trademark of Meta Platforms, Inc.",
    "ThreadStorm is an independent third-party service.",
];

/// The body of `GET /`.
pub fn about() -> Value {
    json!({ "name": NAME, "version": VERSION, "disclaimers": DISCLAIMERS })
}

/// A small HTML page for browsers (OAuth results), with the disclaimers in its footer. `title` and
/// `message` are escaped.
pub fn page(title: &str, message: &str) -> String {
    let footer: String = DISCLAIMERS
        .iter()
        .map(|d| format!("<li>{}</li>", escape(d)))
        .collect();
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title} · {NAME}</title></head>\
         <body><h1>{title}</h1><p>{message}</p><footer><ul>{footer}</ul></footer></body></html>",
        title = escape(title),
        message = escape(message),
    )
}

/// Minimal HTML escaping for text content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn about_names_the_product_and_all_three_disclaimers() {
        let body = about();
        assert_eq!(body["name"], "ThreadStorm");
        assert_eq!(body["disclaimers"].as_array().unwrap().len(), 3);
    }

    #[test]
    fn pages_escape_what_they_are_given_and_carry_the_disclaimers() {
        let html = page("Denied <script>", "you said \"no\" & that's fine");
        assert!(!html.contains("<script>"));
        assert!(
            html.contains("&lt;script&gt;")
                && html.contains("&quot;no&quot; &amp; that&#39;s fine")
        );
        for d in DISCLAIMERS {
            assert!(html.contains(&escape(d)));
        }
    }
}
