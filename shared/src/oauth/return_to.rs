//! Where the browser may be sent after connecting an account: only relative paths from an
//! allowlist, so `/oauth/start?return_to=` can never become an open redirect.

/// Paths (and their sub-paths) a user may return to.
pub const ALLOWED_PREFIXES: &[&str] = &["/", "/app", "/settings", "/accounts"];

/// The default after a successful connection.
pub const DEFAULT: &str = "/";

/// `Some(path)` when `candidate` is a safe relative path on the allowlist.
pub fn validate(candidate: &str) -> Option<String> {
    let path_end = candidate.find(['?', '#']).unwrap_or(candidate.len());
    let path = &candidate[..path_end];
    let safe = candidate.len() <= 512
        && path.starts_with('/')
        && !path.starts_with("//")
        && !candidate.contains(['\\', '\r', '\n', '\t'])
        && !candidate.chars().any(char::is_control)
        && !path
            .split('/')
            .any(|segment| segment == ".." || segment == ".")
        && !path.contains('%')
        && !path.contains(':');
    if !safe {
        return None;
    }
    let allowed = ALLOWED_PREFIXES.iter().any(|prefix| {
        path == *prefix || (*prefix != "/" && path.starts_with(&format!("{prefix}/")))
    });
    allowed.then(|| candidate.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_allowlisted_paths_pass() {
        for ok in [
            "/",
            "/app",
            "/app/storms/1",
            "/settings?tab=accounts",
            "/accounts#new",
        ] {
            assert_eq!(validate(ok).as_deref(), Some(ok), "{ok}");
        }
    }

    #[test]
    fn other_hosts_and_tricks_are_refused() {
        for bad in [
            "https://evil.example/",
            "//evil.example",
            "///evil.example",
            "/\\evil.example",
            "\\\\evil.example",
            "http:/evil.example",
            "javascript:alert(1)",
            "/app/../../evil",
            "/%2F%2Fevil.example",
            "/app%2F..%2F",
            "evil",
            "",
            "/admin",
            "/app\r\nSet-Cookie: x=y",
            "/app\u{0}",
        ] {
            assert_eq!(validate(bad), None, "{bad:?}");
        }
    }
}
