//! The authorization window (`/oauth/authorize`), which approves configured test users without
//! a person, and the code exchange (`/oauth/access_token`). Both follow Meta's rules: exact
//! redirect URI match, HTTPS only, `threads_basic` required, single-use one-hour codes, `#_`
//! after the redirect, and each its own error shape.

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

use crate::calls::Call;
use crate::error::{ExchangeError, GraphError, WindowError};
use crate::ids;
use crate::json::{JsonText, Obj, quote};
use crate::request::GraphRequest;
use crate::state::{App, AuthCode, Ctx, Inner, TokenKind, millis};
use crate::tokens::{ALL_SCOPES, issue};

impl From<GraphError> for WindowError {
    fn from(error: GraphError) -> WindowError {
        WindowError::new(u64::from(error.code), error.message)
    }
}

impl From<GraphError> for ExchangeError {
    fn from(error: GraphError) -> ExchangeError {
        ExchangeError {
            status: error.status,
            message: error.message,
        }
    }
}

/// `GET /oauth/authorize`. Extra parameters the emulator reads: `test_user=<id>` picks who
/// consents, `emulator_deny=1` makes them press cancel.
pub async fn authorize(State(app): State<App>, req: GraphRequest) -> Response {
    app.serve(Call::Authorize, |inner, ctx| window(inner, ctx, &req))
        .await
}

fn window(inner: &mut Inner, ctx: &Ctx<'_>, req: &GraphRequest) -> Result<Response, WindowError> {
    let params = &req.params;
    if params.get("client_id") != Some(ctx.config.app_id.as_str()) {
        return Err(WindowError::invalid_app());
    }
    let redirect_uri = params
        .non_empty("redirect_uri")
        .ok_or_else(WindowError::unlisted_redirect)?;
    check_redirect(ctx, redirect_uri)?;
    if params.get("response_type") != Some("code") {
        return Err(WindowError::new(
            100,
            "Invalid response_type: expected code",
        ));
    }
    let scopes = parse_scopes(params.get("scope").unwrap_or_default())?;
    let user = match params.non_empty("test_user") {
        Some(id) => ctx.config.user(id),
        None => match &ctx.config.default_user {
            Some(id) => ctx.config.user(id),
            None => ctx.config.users.first(),
        },
    }
    .ok_or_else(|| WindowError::new(100, "Unknown test user"))?;
    let state = params.get("state");
    if user.denies || params.flag("emulator_deny") {
        let mut pairs = vec![
            ("error", "access_denied"),
            ("error_reason", "user_denied"),
            ("error_description", "Permissions error"),
        ];
        pairs.extend(state.map(|s| ("state", s)));
        return Ok(redirect(redirect_uri, &pairs));
    }
    let code = ids::code();
    inner.codes.insert(
        code.clone(),
        AuthCode {
            client_id: ctx.config.app_id.clone(),
            redirect_uri: redirect_uri.to_string(),
            user_id: user.id.clone(),
            scopes,
            issued_ms: ctx.now_ms,
            code_challenge: params.non_empty("code_challenge").map(str::to_string),
            code_challenge_method: params
                .non_empty("code_challenge_method")
                .map(str::to_string),
            used: false,
        },
    );
    let mut pairs = vec![("code", code.as_str())];
    pairs.extend(state.map(|s| ("state", s)));
    Ok(redirect(redirect_uri, &pairs))
}

/// Meta refuses plain http (1349187) before it looks the URI up (1349168); the loopback
/// allowance lets a local stack receive the callback on `http://127.0.0.1`.
fn check_redirect(ctx: &Ctx<'_>, redirect_uri: &str) -> Result<(), WindowError> {
    let parsed = url::Url::parse(redirect_uri).map_err(|_| WindowError::unlisted_redirect())?;
    if parsed.scheme() == "http" {
        let loopback = matches!(parsed.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"));
        if !(loopback && ctx.config.allow_http_loopback_redirects) {
            return Err(WindowError::insecure_redirect());
        }
    } else if parsed.scheme() != "https" {
        return Err(WindowError::unlisted_redirect());
    }
    if ctx.config.redirect_uris.iter().any(|r| r == redirect_uri) {
        Ok(())
    } else {
        Err(WindowError::unlisted_redirect())
    }
}

/// Comma- or space-separated; every scope must be known and `threads_basic` present.
fn parse_scopes(raw: &str) -> Result<Vec<String>, WindowError> {
    let mut scopes: Vec<String> = Vec::new();
    for scope in raw
        .split([',', ' '])
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        if !ALL_SCOPES.contains(&scope) {
            return Err(WindowError::new(100, format!("Invalid Scopes: {scope}")));
        }
        if !scopes.iter().any(|s| s == scope) {
            scopes.push(scope.to_string());
        }
    }
    if !scopes.iter().any(|s| s == "threads_basic") {
        return Err(WindowError::new(
            100,
            "Invalid Scopes: threads_basic is required",
        ));
    }
    Ok(scopes)
}

/// 302 to `{uri}?{pairs}#_`, as Meta appends `#_` to every redirect.
fn redirect(uri: &str, pairs: &[(&str, &str)]) -> Response {
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        query.append_pair(k, v);
    }
    let separator = if uri.contains('?') { '&' } else { '?' };
    let location = format!("{uri}{separator}{}#_", query.finish());
    (StatusCode::FOUND, [(header::LOCATION, location)]).into_response()
}

/// `POST /oauth/access_token` (form) or `GET` with the same query parameters.
pub async fn exchange_code(State(app): State<App>, req: GraphRequest) -> Response {
    app.serve(Call::CodeExchange, |inner, ctx| {
        code_exchange(inner, ctx, &req)
    })
    .await
}

fn code_exchange(
    inner: &mut Inner,
    ctx: &Ctx<'_>,
    req: &GraphRequest,
) -> Result<Response, ExchangeError> {
    let params = &req.params;
    if params.get("grant_type") != Some("authorization_code") {
        return Err(ExchangeError::new(
            "Unsupported grant_type: expected authorization_code",
        ));
    }
    if params.get("client_id") != Some(ctx.config.app_id.as_str()) {
        return Err(ExchangeError::new("Invalid platform app"));
    }
    if params.get("client_secret") != Some(ctx.config.app_secret.as_str()) {
        return Err(ExchangeError::new("Error validating client secret."));
    }
    let code = params.non_empty("code").unwrap_or_default();
    let Some(grant) = inner.codes.get(code).filter(|c| !c.used) else {
        return Err(ExchangeError::code_not_found());
    };
    if grant.client_id != ctx.config.app_id {
        return Err(ExchangeError::code_not_found());
    }
    if ctx.now_ms - grant.issued_ms >= millis(ctx.config.code_ttl) {
        return Err(ExchangeError::new("This authorization code has expired."));
    }
    if params.get("redirect_uri") != Some(grant.redirect_uri.as_str()) {
        return Err(ExchangeError::new(
            "Error validating verification code. Please make sure your redirect_uri is identical to the one you used in the OAuth dialog request",
        ));
    }
    if ctx.config.enforce_pkce && !pkce_matches(grant, params.get("code_verifier")) {
        return Err(ExchangeError::new("Invalid code_verifier"));
    }
    let (user_id, scopes) = (grant.user_id.clone(), grant.scopes.clone());
    if let Some(grant) = inner.codes.get_mut(code) {
        grant.used = true;
    }
    let ttl = millis(ctx.config.short_lived_ttl);
    let token = issue(
        inner,
        &user_id,
        scopes,
        TokenKind::ShortLived,
        ctx.now_ms,
        ttl,
    );
    // The user id goes out as written digits: as a JSON number it may exceed 2^53.
    let user_id_json = if ctx.config.user_id_as_string {
        quote(&user_id)
    } else {
        user_id
    };
    let mut body = Obj::new();
    body.str("access_token", &token)
        .raw("user_id", user_id_json);
    Ok(JsonText::ok(body.text()).into_response())
}

/// S256 (or plain) PKCE check, for emulators configured to enforce it; a code issued
/// without a challenge passes, as at Meta.
fn pkce_matches(grant: &AuthCode, verifier: Option<&str>) -> bool {
    let Some(challenge) = &grant.code_challenge else {
        return true;
    };
    let Some(verifier) = verifier else {
        return false;
    };
    match grant.code_challenge_method.as_deref() {
        Some("plain") => verifier == challenge,
        _ => URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes())) == *challenge,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_s256_matches_case_o1() {
        let grant = AuthCode {
            client_id: String::new(),
            redirect_uri: String::new(),
            user_id: String::new(),
            scopes: vec![],
            issued_ms: 0,
            code_challenge: Some("w6Kgixo4GdOCtcS6zQP_jZ1mZ6C_aVV0H7comjW5Sas".into()),
            code_challenge_method: Some("S256".into()),
            used: false,
        };
        assert!(pkce_matches(
            &grant,
            Some("ts-verifier-0123456789abcdefghijklmnopqrstuvwxyzABCD")
        ));
        assert!(!pkce_matches(&grant, Some("another-verifier")));
        assert!(!pkce_matches(&grant, None));
    }

    #[test]
    fn scopes_need_threads_basic_and_must_be_known() {
        assert!(parse_scopes("threads_basic,threads_content_publish").is_ok());
        assert!(parse_scopes("threads_basic threads_delete").is_ok());
        assert!(parse_scopes("threads_content_publish").is_err());
        assert!(parse_scopes("threads_basic,email").is_err());
        assert!(parse_scopes("").is_err());
    }
}
