//! Access tokens: issuing them, checking them on every call (expired → 190/463, revoked →
//! 190/460), the long-lived exchange, the refresh rules (≥ 24 h old and unexpired) and
//! `debug_token`. All ages are read on the emulator clock.

use axum::extract::State;
use axum::response::{IntoResponse, Response};

use crate::calls::Call;
use crate::error::GraphError;
use crate::ids;
use crate::json::{JsonText, Obj, quote};
use crate::request::GraphRequest;
use crate::state::{App, Ctx, Inner, Session, TokenKind, TokenRecord, millis};

/// Every scope a Threads app can be granted.
pub const ALL_SCOPES: [&str; 10] = [
    "threads_basic",
    "threads_content_publish",
    "threads_read_replies",
    "threads_manage_replies",
    "threads_manage_insights",
    "threads_delete",
    "threads_keyword_search",
    "threads_location_tagging",
    "threads_manage_mentions",
    "threads_profile_discovery",
];

/// Stores a new token and returns it.
pub fn issue(
    inner: &mut Inner,
    user_id: &str,
    scopes: Vec<String>,
    kind: TokenKind,
    ctx_now_ms: i64,
    ttl_ms: i64,
) -> String {
    let token = ids::token();
    inner.tokens.insert(
        token.clone(),
        TokenRecord {
            user_id: user_id.to_string(),
            scopes,
            kind,
            issued_ms: ctx_now_ms,
            expires_ms: ctx_now_ms + ttl_ms,
            revoked: false,
        },
    );
    token
}

/// The session behind a token, or the Graph error Meta gives for it.
pub fn authenticate(
    inner: &Inner,
    token: Option<&str>,
    now_ms: i64,
) -> Result<Session, GraphError> {
    let token = token.ok_or_else(GraphError::token_missing)?;
    let record = inner
        .tokens
        .get(token)
        .ok_or_else(GraphError::token_unparsable)?;
    check(record, now_ms)?;
    Ok(Session {
        user_id: record.user_id.clone(),
        scopes: record.scopes.clone(),
    })
}

fn check(record: &TokenRecord, now_ms: i64) -> Result<(), GraphError> {
    if record.revoked {
        Err(GraphError::token_invalidated())
    } else if now_ms >= record.expires_ms {
        Err(GraphError::token_expired(
            record.expires_ms.div_euclid(1000),
        ))
    } else {
        Ok(())
    }
}

/// Marks a token invalid; later calls with it get 190/460. Unknown tokens are ignored.
pub fn revoke(inner: &mut Inner, token: &str) -> bool {
    match inner.tokens.get_mut(token) {
        Some(record) => {
            record.revoked = true;
            true
        }
        None => false,
    }
}

/// `{"access_token","token_type":"bearer","expires_in"}`.
fn token_answer(token: &str, expires_in_s: i64) -> Response {
    let mut obj = Obj::new();
    obj.str("access_token", token)
        .str("token_type", "bearer")
        .int("expires_in", expires_in_s);
    JsonText::ok(obj.text()).into_response()
}

/// `GET /access_token?grant_type=th_exchange_token&client_secret=…&access_token={short}`.
pub async fn exchange(State(app): State<App>, req: GraphRequest) -> Response {
    app.graph(Call::TokenExchange, |inner, ctx| {
        long_lived(inner, ctx, &req)
    })
    .await
}

fn long_lived(
    inner: &mut Inner,
    ctx: &Ctx<'_>,
    req: &GraphRequest,
) -> Result<Response, GraphError> {
    if req.params.get("grant_type") != Some("th_exchange_token") {
        return Err(GraphError::invalid_param(
            "Unsupported grant_type: expected th_exchange_token",
        ));
    }
    if req.params.get("client_secret") != Some(ctx.config.app_secret.as_str()) {
        return Err(GraphError::client_secret_invalid());
    }
    let session = authenticate(inner, req.token.as_deref(), ctx.now_ms)?;
    let kind = req
        .token
        .as_deref()
        .and_then(|t| inner.tokens.get(t))
        .map(|r| r.kind);
    if kind != Some(TokenKind::ShortLived) {
        return Err(GraphError::invalid_param(
            "Only a short-lived token can be exchanged for a long-lived token",
        ));
    }
    let ttl = millis(ctx.config.long_lived_ttl);
    let token = issue(
        inner,
        &session.user_id,
        session.scopes,
        TokenKind::LongLived,
        ctx.now_ms,
        ttl,
    );
    Ok(token_answer(&token, ttl / 1000))
}

/// `GET /refresh_access_token?grant_type=th_refresh_token&access_token={long}`.
pub async fn refresh(State(app): State<App>, req: GraphRequest) -> Response {
    app.graph(Call::Refresh, |inner, ctx| refreshed(inner, ctx, &req))
        .await
}

fn refreshed(inner: &mut Inner, ctx: &Ctx<'_>, req: &GraphRequest) -> Result<Response, GraphError> {
    if req.params.get("grant_type") != Some("th_refresh_token") {
        return Err(GraphError::invalid_param(
            "Unsupported grant_type: expected th_refresh_token",
        ));
    }
    let session = authenticate(inner, req.token.as_deref(), ctx.now_ms)?;
    let old = req.token.as_deref().unwrap_or_default();
    let Some(record) = inner.tokens.get(old) else {
        return Err(GraphError::token_unparsable());
    };
    if record.kind != TokenKind::LongLived {
        return Err(GraphError::invalid_param(
            "Only a long-lived token can be refreshed",
        ));
    }
    let min_age = millis(ctx.config.refresh_min_age);
    if ctx.now_ms - record.issued_ms < min_age {
        return Err(GraphError::invalid_param(format!(
            "The access token can only be refreshed once it is at least {} hours old",
            min_age / 3_600_000
        )));
    }
    if ctx.config.refresh_revokes_old_token {
        revoke(inner, old);
    }
    let ttl = millis(ctx.config.long_lived_ttl);
    let token = issue(
        inner,
        &session.user_id,
        session.scopes,
        TokenKind::LongLived,
        ctx.now_ms,
        ttl,
    );
    Ok(token_answer(&token, ttl / 1000))
}

/// `GET /debug_token?input_token=…&access_token=…`; the inspecting token may be a user
/// token or the app token `{app_id}|{app_secret}`.
pub async fn debug(State(app): State<App>, req: GraphRequest) -> Response {
    app.graph(Call::DebugToken, |inner, ctx| {
        debug_report(inner, ctx, &req)
    })
    .await
}

fn debug_report(
    inner: &mut Inner,
    ctx: &Ctx<'_>,
    req: &GraphRequest,
) -> Result<Response, GraphError> {
    let input = req.params.require("input_token")?;
    let app_token = format!("{}|{}", ctx.config.app_id, ctx.config.app_secret);
    if req.token.as_deref() != Some(app_token.as_str()) {
        authenticate(inner, req.token.as_deref(), ctx.now_ms)?;
    }
    let mut data = Obj::new();
    match inner.tokens.get(input) {
        None => {
            let mut error = Obj::new();
            error.int("code", 190).str(
                "message",
                "Invalid OAuth access token - Cannot parse access token",
            );
            data.raw("error", error.text())
                .bool("is_valid", false)
                .raw("scopes", "[]");
        }
        Some(record) => {
            let problem = check(record, ctx.now_ms).err();
            data.str("type", "USER")
                .str("application", &ctx.config.app_name);
            if let Some(problem) = &problem {
                let mut error = Obj::new();
                error.int("code", 190).str("message", &problem.message);
                if let Some(subcode) = problem.subcode {
                    error.int("subcode", i64::from(subcode));
                }
                data.raw("error", error.text());
            }
            let scopes: Vec<String> = record.scopes.iter().map(|s| quote(s)).collect();
            data.int("expires_at", record.expires_ms.div_euclid(1000))
                .bool("is_valid", problem.is_none())
                .int("issued_at", record.issued_ms.div_euclid(1000))
                .raw("scopes", crate::json::array(scopes))
                .str("user_id", &record.user_id);
        }
    }
    let mut body = Obj::new();
    body.raw("data", data.text());
    Ok(JsonText::ok(body.text()).into_response())
}

/// A token issued "now" on the emulator clock without going through OAuth, for tests and
/// local stacks; all scopes unless given.
pub fn issue_direct(
    app: &App,
    user_id: &str,
    kind: TokenKind,
    scopes: Option<Vec<String>>,
) -> String {
    let ttl = match kind {
        TokenKind::ShortLived => app.config().short_lived_ttl,
        TokenKind::LongLived => app.config().long_lived_ttl,
    };
    let scopes = scopes.unwrap_or_else(|| ALL_SCOPES.iter().map(|s| s.to_string()).collect());
    let now_ms = app.clock().now_millis();
    issue(&mut app.lock(), user_id, scopes, kind, now_ms, millis(ttl))
}
